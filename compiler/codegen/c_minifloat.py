"""C helpers of the storage-only dtypes: minifloat encode/decode and narrow-integer wrapping.

A minifloat value is its byte (`uint8_t`); `anv_<tag>_to_f32` decodes it and
`anv_f32_to_<tag>` encodes a float (the rules are in `minifloat.py`). Narrow integers are
held as `int8_t`/`uint8_t` in their range; `anv_wrap_<i4|u4|i2|u2>` wraps a byte's low bits.
`HELPERS` maps each helper's name to (dependencies, source).
"""

from __future__ import annotations

from compiler.codegen.minifloat import F32_INF, F32_QNAN, FORMATS, Format
from compiler.dtypes import DType

_CORE: dict[str, tuple[tuple[str, ...], str]] = {
    "anv_f32_bits": ((), """
static inline uint32_t anv_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}"""),
    "anv_bits_f32": ((), """
static inline float anv_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}"""),
    "anv_minifloat_decode": (("anv_f32_bits",), """
/* float32 bits of a finite minifloat magnitude `mag` (m mantissa bits, exponent bias `bias`). */
static inline uint32_t anv_minifloat_decode(uint32_t mag, int m, int bias) {
    if (mag < (1u << m)) {  /* zero or subnormal: mag * 2^(1 - bias - m), exactly */
        return anv_f32_bits(ldexpf((float)mag, 1 - bias - m));
    }
    return (mag << (23 - m)) + ((uint32_t)(127 - bias) << 23);
}"""),
    "anv_minifloat_encode": ((), """
/* The magnitude bits of a finite float32 magnitude `a` (bits) in a minifloat with m mantissa
   bits and exponent bias `bias`, rounded to nearest even as ml_dtypes rounds; -1 when the
   result is above `highest`. */
static inline int32_t anv_minifloat_encode(uint32_t a, int m, int bias, int32_t highest) {
    int exp32 = (int)(a >> 23);
    int sh = 23 - m;
    if (exp32 - 127 + bias <= 0) {  /* a subnormal result (or zero) */
        int one = exp32 != 0;
        int shift = sh + 127 - bias - exp32 + one;
        uint32_t mant = (a & 0x7fffffu) | ((uint32_t)one << 23);
        if (shift > 24) {
            return 0;
        }
        return (int32_t)((mant + ((mant >> shift) & 1u) + (1u << (shift - 1)) - 1u) >> shift);
    }
    uint32_t r = a + ((a >> sh) & 1u) + (1u << (sh - 1)) - 1u;
    int32_t q = (int32_t)(r >> sh) - ((127 - bias) << m);
    return q > highest ? -1 : q;
}"""),
}


def decode_name(dtype: DType) -> str:
    return f"anv_{FORMATS[dtype].tag}_to_f32"


def encode_name(dtype: DType) -> str:
    return f"anv_f32_to_{FORMATS[dtype].tag}"


def wrap_name(dtype: DType) -> str:
    return f"anv_wrap_{'i' if dtype.is_signed else 'u'}{dtype.bits}"


def _decoder(f: Format) -> str:
    head = f"static inline float {decode_name(f.dtype)}(uint8_t b) {{"
    if f.kind == "e8m0":
        return f"""
/* float8e8m0 -> float: 2^(b - 127); 255 is NaN, 0 is 2^-127 (a float32 subnormal). */
{head}
    if (b == 0xffu) {{
        return anv_bits_f32(0x{F32_QNAN:x}u);
    }}
    return anv_bits_f32(b == 0 ? 0x400000u : (uint32_t)b << 23);
}}"""
    sign = f"(uint32_t)(b > 0x{f.mag_mask:x}u) << 31" if f.kind == "sat" else \
        f"(uint32_t)(b & 0x{f.sign:x}u) << {31 - f.sign.bit_length() + 1}"
    special = {
        "ieee": f"""    if (mag >= 0x{f.highest + 1:x}u) {{  /* inf or NaN */
        return anv_bits_f32(s | (mag == 0x{f.highest + 1:x}u ? 0x{F32_INF:x}u : 0x{F32_QNAN:x}u));
    }}
""",
        "fn": f"""    if (mag == 0x{f.nan:x}u) {{
        return anv_bits_f32(s | 0x{F32_QNAN:x}u);
    }}
""",
        "fnuz": f"""    if (b == 0x{f.nan:x}u) {{  /* NaN: negative, as ml_dtypes decodes it */
        return anv_bits_f32(0x{0x80000000 | F32_QNAN:x}u);
    }}
""",
        "sat": "",
    }[f.kind]
    note = " (any of bits 3..7 set is the sign)" if f.kind == "sat" else ""
    return f"""
/* {f.dtype.value} -> float, exactly{note}. */
{head}
    uint32_t s = {sign};
    uint32_t mag = b & 0x{f.mag_mask:x}u;
{special}    return anv_bits_f32(s | anv_minifloat_decode(mag, {f.mbits}, {f.bias}));
}}"""


def _encoder(f: Format) -> str:
    head = f"static inline uint8_t {encode_name(f.dtype)}(float x) {{"
    if f.kind == "e8m0":
        return f"""
/* float -> float8e8m0, as ml_dtypes converts: NaN for NaN, inf, zero and negatives; halfway
   cases round up; positive subnormals give 2^-127 up to it and 2^-126 above it. */
{head}
    uint32_t u = anv_f32_bits(x);
    if ((u >> 31) != 0 || u == 0 || u >= 0x{F32_INF:x}u) {{
        return 0xffu;
    }}
    if (u < 0x800000u) {{
        return u > 0x400000u ? 1u : 0u;
    }}
    return (uint8_t)((u + 0x400000u) >> 23);
}}"""
    encode = f"anv_minifloat_encode(a, {f.mbits}, {f.bias}, 0x{f.highest:x})"
    big = f"0x{f.overflow:x}u"
    if f.kind == "fnuz":
        tail = f"""    if (a > 0x{F32_INF:x}u) {{
        return 0x{f.nan:x}u;
    }}
    int32_t q = a == 0x{F32_INF:x}u ? -1 : {encode};
    if (q < 0) {{  /* overflow and inf: NaN */
        return 0x{f.nan:x}u;
    }}
    return q == 0 ? 0u : (uint8_t)(s | (uint32_t)q);  /* no -0.0 */
"""
        rules = "overflow, inf and NaN give NaN (0x80); no -0.0"
    else:
        nan = "s ^ 0x8u" if f.kind == "sat" else f"s | 0x{f.nan:x}u"
        tail = f"""    if (a > 0x{F32_INF:x}u) {{
        return (uint8_t)({nan});
    }}
    int32_t q = a == 0x{F32_INF:x}u ? -1 : {encode};
    return (uint8_t)(s | (q < 0 ? {big} : (uint32_t)q));
"""
        rules = {"ieee": "overflow and inf give inf", "fn": "overflow, inf and NaN give NaN",
                 "sat": "overflow and inf saturate; NaN gives the zero of the other sign"}[
            f.kind]
    return f"""
/* float -> {f.dtype.value}, as ml_dtypes converts: to nearest even;
   {rules}. */
{head}
    uint32_t u = anv_f32_bits(x);
    uint32_t s = (u >> 31) << {f.sign.bit_length() - 1};
    uint32_t a = u & 0x7fffffffu;
{tail}}}"""


def _wrap(dtype: DType) -> str:
    bits, name = dtype.bits, wrap_name(dtype)
    mask = (1 << bits) - 1
    if not dtype.is_signed:
        return f"""
static inline uint8_t {name}(uint8_t b) {{
    return (uint8_t)(b & 0x{mask:x}u);
}}"""
    half = 1 << (bits - 1)
    return f"""
/* The low {bits} bits of b as a signed {bits}-bit integer. */
static inline int8_t {name}(uint8_t b) {{
    return (int8_t)((int)((b & 0x{mask:x}u) ^ 0x{half:x}u) - 0x{half:x});
}}"""


HELPERS: dict[str, tuple[tuple[str, ...], str]] = dict(_CORE)
for _f in FORMATS.values():
    _deps = ("anv_bits_f32",) if _f.kind == "e8m0" else ("anv_bits_f32", "anv_minifloat_decode")
    HELPERS[decode_name(_f.dtype)] = (_deps, _decoder(_f))
    _deps = ("anv_f32_bits",) if _f.kind == "e8m0" else ("anv_f32_bits", "anv_minifloat_encode")
    HELPERS[encode_name(_f.dtype)] = (_deps, _encoder(_f))
for _d in (DType.int4, DType.uint4, DType.int2, DType.uint2):
    HELPERS[wrap_name(_d)] = ((), _wrap(_d))
