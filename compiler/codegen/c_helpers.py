"""C types, literals, identifiers and the small `static inline` helper library of the C backend.

Value representation in generated C (see `c_emit.py`):

- bool is `uint8_t` holding 0/1 (comparisons and `!` give C `int` 0/1, which converts);
- integers are their `<stdint.h>` types;
- float32/float64 are `float`/`double`;
- float16/bfloat16 are stored as `uint16_t` bits, but every value in an expression is a
  `float` that holds exactly a value of the 16-bit type: each operation computes in float32
  and rounds back to nearest even (exact for + - * / sqrt, and what the interpreter does);
- the storage-only dtypes are stored as one `uint8_t` each: a minifloat's value is its byte,
  a narrow integer's value is an `int8_t`/`uint8_t` in its range (see `c_minifloat.py`).
"""

from __future__ import annotations

import math
import re

import numpy as np

from compiler.codegen.c_minifloat import HELPERS as STORAGE_HELPERS
from compiler.codegen.c_reserved import HEADER_NAMES, OPENMP_NAMES
from compiler.dtypes import DType

D = DType

VALUE_CTYPE: dict[DType, str] = {
    D.bool: "uint8_t", D.int8: "int8_t", D.int16: "int16_t", D.int32: "int32_t",
    D.int64: "int64_t", D.uint8: "uint8_t", D.uint16: "uint16_t", D.uint32: "uint32_t",
    D.uint64: "uint64_t", D.float16: "float", D.bfloat16: "float", D.float32: "float",
    D.float64: "double", D.int4: "int8_t", D.int2: "int8_t", D.uint4: "uint8_t",
    D.uint2: "uint8_t", D.float8e4m3fn: "uint8_t", D.float8e4m3fnuz: "uint8_t",
    D.float8e5m2: "uint8_t", D.float8e5m2fnuz: "uint8_t", D.float8e8m0: "uint8_t",
    D.float4e2m1: "uint8_t",
}
STORAGE_CTYPE: dict[DType, str] = {
    **VALUE_CTYPE, D.float16: "uint16_t", D.bfloat16: "uint16_t", D.int4: "uint8_t",
    D.int2: "uint8_t",
}
SUFFIX: dict[DType, str] = {
    D.int8: "i8", D.int16: "i16", D.int32: "i32", D.int64: "i64", D.uint8: "u8",
    D.uint16: "u16", D.uint32: "u32", D.uint64: "u64", D.float32: "f32", D.float64: "f64",
    D.float16: "f32", D.bfloat16: "f32",
}
HALF = (D.float16, D.bfloat16)


def wide_ctype(dtype: DType) -> str:
    """The unsigned type in which wrapping integer arithmetic of `dtype` is computed."""
    return "uint64_t" if dtype.bits > 32 else "uint32_t"


# ----------------------------------------------------------------------------- literals


def int_literal(value: int, dtype: DType) -> str:
    if dtype is D.bool:
        return "1" if value else "0"
    if dtype is D.int64 and value == -(1 << 63):
        return "INT64_MIN"
    if dtype is D.int32 and value == -(1 << 31):
        return "INT32_MIN"
    if dtype is D.uint64:
        return f"{value}ull"  # 64 bits wide even where the value is small (`~1ull`)
    if dtype is D.uint32:
        return f"{value}u"
    return str(value)


def wide_literal(value: int, dtype: DType) -> str:
    """`value` (of `dtype`) as a constant of `wide_ctype(dtype)`."""
    wide = wide_ctype(dtype)
    if value >= 0:
        return f"{value}u" if wide == "uint32_t" else f"{value}ull"
    return f"({wide}){int_literal(value, dtype)}"


def float_literal(value: float, dtype: DType) -> str:
    double = dtype is D.float64
    if math.isnan(value):
        return "(double)NAN" if double else "NAN"
    if math.isinf(value):
        text = "INFINITY" if value > 0 else "-INFINITY"
        return f"(double){text}" if double else text
    if double:
        return repr(float(value))
    text = str(np.float32(value))  # shortest text that reads back as this float32
    if not any(c in text for c in ".e"):
        text += ".0"
    return text + "f"


# ----------------------------------------------------------------------------- identifiers

_C_KEYWORDS = frozenset("""
auto break case char const continue default do double else enum extern float for goto if
inline int long register restrict return short signed sizeof static struct switch typedef
union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
_Generic _Noreturn _Static_assert _Thread_local asm typeof bool true false
""".split())
_LIBM = frozenset(
    f"{n}{s}" for n in """
    exp exp2 expm1 log log2 log10 log1p sqrt sin cos tan asin acos atan sinh cosh tanh asinh
    acosh atanh erf erfc floor ceil trunc round rint nearbyint fabs pow atan2 fmod copysign
    hypot nextafter ldexp frexp fmin fmax fma cbrt lround lrint modf remainder
    """.split() for s in ("", "f", "l"))
_OTHERS = frozenset("""
isnan isinf isfinite signbit fpclassify isnormal errno main status lane
""".split())
RESERVED = _C_KEYWORDS | _LIBM | _OTHERS | HEADER_NAMES | OPENMP_NAMES
_MACRO = re.compile(
    r"^(U?INT\w*|SIZE_\w*|PTRDIFF_\w*|NULL|INFINITY|NAN|HUGE_VAL\w*|FP_\w*|MATH_\w*|RAND_MAX"
    r"|EXIT_\w*|MB_CUR_MAX|WCHAR_\w*|WINT_\w*|SIG_ATOMIC_\w*|FLT_\w*|DBL_\w*|LDBL_\w*|M_\w*"
    r"|E[A-Z0-9]+)$")


def sanitize(name: str) -> str:
    """A C identifier resembling `name` (not yet unique)."""
    text = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not text or text[0].isdigit() or text.startswith("anv_"):
        text = "v_" + text
    elif text.startswith("_"):
        text = "v" + text
    return text


class Names:
    """Allocates unique C identifiers derived from IR names."""

    def __init__(self, taken: frozenset[str] = RESERVED) -> None:
        self.used: set[str] = set()
        self.taken = taken

    def fresh(self, name: str) -> str:
        base = sanitize(name)
        if _MACRO.match(base):  # a macro of the C headers
            base = "v_" + base
        text, k = base, 0
        while text in self.used or text in self.taken:
            k += 1
            text = f"{base}_{k}"
        self.used.add(text)
        return text


# ----------------------------------------------------------------------------- helpers

_FIXED: dict[str, tuple[tuple[str, ...], str]] = {
    "anv_f16_to_f32": ((), """
static inline float anv_f16_to_f32(uint16_t bits) {
    _Float16 x;
    memcpy(&x, &bits, sizeof x);
    return (float)x;
}"""),
    "anv_f32_to_f16": ((), """
static inline uint16_t anv_f32_to_f16(float f) {
    _Float16 x = (_Float16)f;
    uint16_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}"""),
    "anv_f16_round": ((), """
/* Round a float to the nearest float16 value (ties to even). */
static inline float anv_f16_round(float f) {
    return (float)(_Float16)f;
}"""),
    "anv_f16_from_f64": ((), """
/* Round a double to the nearest float16 value, in one rounding. */
static inline float anv_f16_from_f64(double d) {
    return (float)(_Float16)d;
}"""),
    "anv_bf16_to_f32": ((), """
static inline float anv_bf16_to_f32(uint16_t bits) {
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}"""),
    "anv_f32_to_bf16": ((), """
/* float -> bfloat16 bits, rounding to nearest even; a NaN stays a (quiet) NaN. */
static inline uint16_t anv_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 0x40u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}"""),
    "anv_bf16_round": (("anv_bf16_to_f32", "anv_f32_to_bf16"), """
static inline float anv_bf16_round(float f) {
    return anv_bf16_to_f32(anv_f32_to_bf16(f));
}"""),
    "anv_bf16_from_f64": (("anv_bf16_round",), """
/* double -> bfloat16 in one rounding: round to odd in float32 (24 >= 8 + 2 bits), then to
   nearest even in bfloat16. */
static inline float anv_bf16_from_f64(double d) {
    float f = (float)d;
    if (isfinite(f) && (double)f != d) {
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        if ((u & 1u) == 0) {
            f = nextafterf(f, (double)f < d ? INFINITY : -INFINITY);
        }
    }
    return anv_bf16_round(f);
}"""),
    "anv_bf16_from_u64": (("anv_bf16_round",), """
/* An integer rounded once to bfloat16's 8 significant bits (ties to even). */
static inline float anv_bf16_from_u64(uint64_t m) {
    if (m < (1ull << 24)) {
        return anv_bf16_round((float)m);
    }
    int shift = 64 - __builtin_clzll(m) - 8;
    uint64_t q = m >> shift;
    uint64_t r = m & ((1ull << shift) - 1u);
    uint64_t half = 1ull << (shift - 1);
    if (r > half || (r == half && (q & 1u))) {
        q += 1u;
    }
    return ldexpf((float)q, shift);
}"""),
    "anv_bf16_from_i64": (("anv_bf16_from_u64",), """
static inline float anv_bf16_from_i64(int64_t v) {
    return v < 0 ? -anv_bf16_from_u64(0u - (uint64_t)v) : anv_bf16_from_u64((uint64_t)v);
}"""),
}

_FIXED.update(STORAGE_HELPERS)

_TEMPLATES: dict[str, str] = {
    "minimum_f": """
/* IEEE 754-2019 minimum: NaN if either operand is NaN, and -0.0 < +0.0. */
static inline {T} anv_minimum_{S}({T} a, {T} b) {
    if (isnan(a) || isnan(b)) {
        return a + b;
    }
    if (a == b) {
        return signbit(a) ? a : b;
    }
    return a < b ? a : b;
}""",
    "maximum_f": """
/* IEEE 754-2019 maximum: NaN if either operand is NaN, and -0.0 < +0.0. */
static inline {T} anv_maximum_{S}({T} a, {T} b) {
    if (isnan(a) || isnan(b)) {
        return a + b;
    }
    if (a == b) {
        return signbit(a) ? b : a;
    }
    return a > b ? a : b;
}""",
    "min": """
static inline {T} anv_min_{S}({T} a, {T} b) {
    return a < b ? a : b;
}""",
    "max": """
static inline {T} anv_max_{S}({T} a, {T} b) {
    return a > b ? a : b;
}""",
    "floordiv": """
/* Division rounding toward minus infinity. */
static inline {T} anv_floordiv_{S}({T} a, {T} b) {
    {T} q = ({T})(a / b);
    if (a % b != 0 && ((a < 0) != (b < 0))) {
        q = ({T})(q - 1);
    }
    return q;
}""",
    "floormod": """
/* Remainder with the sign of the divisor. */
static inline {T} anv_floormod_{S}({T} a, {T} b) {
    {T} r = ({T})(a % b);
    if (r != 0 && ((r < 0) != (b < 0))) {
        r = ({T})(r + b);
    }
    return r;
}""",
    "abs": """
/* Wrapping absolute value: abs(MIN) == MIN. */
static inline {T} anv_abs_{S}({T} x) {
    return ({T})(x < 0 ? -({W})x : ({W})x);
}""",
}

_BY_SUFFIX = {s: d for d, s in SUFFIX.items() if d not in HALF}


def helper_name(kind: str, dtype: DType) -> str:
    """The name of a templated helper (`min`, `floordiv`, ...) for `dtype`."""
    base = kind[:-2] if kind.endswith("_f") else kind
    return f"anv_{base}_{SUFFIX[dtype]}"


def _template_of(name: str) -> tuple[str, DType] | None:
    stem, _, suffix = name.removeprefix("anv_").rpartition("_")
    dtype = _BY_SUFFIX.get(suffix)
    if dtype is None:
        return None
    for kind in (f"{stem}_f", stem):
        if kind in _TEMPLATES:
            return kind, dtype
    return None


def helper_source(names: set[str]) -> str:
    """C definitions of the helpers in `names` (and their dependencies), in a fixed order."""
    done: list[str] = []

    def add(name: str) -> None:
        if name in done:
            return
        if name in _FIXED:
            deps, _ = _FIXED[name]
            for dep in deps:
                add(dep)
        elif _template_of(name) is None:
            raise KeyError(f"unknown C helper {name}")
        done.append(name)

    for name in sorted(names):
        add(name)
    parts = []
    for name in done:
        if name in _FIXED:
            parts.append(_FIXED[name][1].strip("\n"))
        else:
            kind, dtype = _template_of(name)  # type: ignore[misc]
            text = _TEMPLATES[kind].replace("{T}", VALUE_CTYPE[dtype])
            text = text.replace("{S}", SUFFIX[dtype]).replace("{W}", wide_ctype(dtype))
            parts.append(text.strip("\n"))
    return "\n\n".join(parts)
