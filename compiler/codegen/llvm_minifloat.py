"""Minifloat encode/decode in LLVM IR (the rules are in `minifloat.py`).

A minifloat value is its byte (`i8`, or a vector of them). `decode` gives the float32 that
ml_dtypes gives, `encode` the byte for a float32; both are straight-line integer code with
selects (no branches, no calls), so they work lane-wise on vectors and LLVM vectorises them.
"""

from __future__ import annotations

import struct

from compiler.codegen.llvm_ir import IRFunction, V, float_literal, lanes_of, splat, vec
from compiler.codegen.minifloat import F32_INF, F32_QNAN, FORMATS, Format
from compiler.dtypes import DType


class _Ops:
    """i32 (vector) arithmetic with integer constants, for the code below."""

    def __init__(self, f: IRFunction, lanes: int) -> None:
        self.f = f
        self.i32 = vec("i32", lanes)

    def k(self, value: int) -> V:
        value &= 0xFFFFFFFF
        return V(self.i32, splat(str(value - (1 << 32) if value >> 31 else value), self.i32))

    def op(self, name: str, a: V, b: V | int) -> V:
        return self.f.binop(name, a, b if isinstance(b, V) else self.k(b))

    def cmp(self, pred: str, a: V, b: V | int) -> V:
        return self.f.cmp("icmp", pred, a, b if isinstance(b, V) else self.k(b))

    def sel(self, c: V, t: V | int, f: V | int) -> V:
        return self.f.select(c, t if isinstance(t, V) else self.k(t),
                             f if isinstance(f, V) else self.k(f))


def decode(f: IRFunction, byte: V, dtype: DType) -> V:
    """float32 (vector) of minifloat bytes."""
    fmt = FORMATS[dtype]
    lanes = lanes_of(byte.ty)
    o = _Ops(f, lanes)
    x = f.conv("zext", byte, o.i32)
    if fmt.kind == "e8m0":
        bits = o.sel(o.cmp("eq", x, 0), 0x400000, o.op("shl", x, 23))
        out = o.sel(o.cmp("eq", x, 255), F32_QNAN, bits)
        return f.conv("bitcast", out, vec("float", lanes))
    mag = o.op("and", x, fmt.mag_mask)
    if fmt.kind == "sat":  # ml_dtypes: any of the high bits is the sign
        sign = o.sel(o.cmp("ugt", x, fmt.mag_mask), 0x80000000, 0)
    else:
        sign = o.op("shl", o.op("and", x, fmt.sign), 32 - fmt.sign.bit_length())
    m, bias = fmt.mbits, fmt.bias
    normal = o.op("add", o.op("shl", mag, 23 - m), (127 - bias) << 23)
    scale = struct.unpack("<f", struct.pack("<I", (127 + 1 - bias - m) << 23))[0]
    ftype = vec("float", lanes)
    small = f.binop("fmul", f.conv("uitofp", mag, ftype), splat(float_literal(scale), ftype))
    bits = o.sel(o.cmp("ult", mag, 1 << m), f.conv("bitcast", small, o.i32), normal)
    if fmt.kind == "ieee":
        special = o.sel(o.cmp("eq", mag, fmt.highest + 1), F32_INF, F32_QNAN)
        bits = o.sel(o.cmp("ugt", mag, fmt.highest), special, bits)
    elif fmt.kind == "fn":
        bits = o.sel(o.cmp("eq", mag, fmt.nan), F32_QNAN, bits)
    out = o.op("or", bits, sign)
    if fmt.kind == "fnuz":  # the NaN byte decodes to a negative NaN
        out = o.sel(o.cmp("eq", x, fmt.nan), 0x80000000 | F32_QNAN, out)
    return f.conv("bitcast", out, ftype)


def _magnitude(o: _Ops, a: V, fmt: Format) -> tuple[V, V]:
    """(magnitude bits, overflowed) of a finite float32 magnitude `a` rounded to nearest even;
    see `anv_minifloat_encode` in `c_minifloat.py`."""
    m, bias = fmt.mbits, fmt.bias
    sh = 23 - m
    exp32 = o.op("lshr", a, 23)
    # A subnormal result: round the significand (with its implicit one) by `shift` bits.
    one = _zext(o, o.cmp("ne", exp32, 0))
    shift = o.op("add", o.op("sub", o.k(sh + 127 - bias), exp32), one)
    shift = o.sel(o.cmp("ugt", shift, 31), 31, shift)  # >= 25 gives 0 either way
    mant = o.op("or", o.op("and", a, 0x7FFFFF), o.op("shl", one, 23))
    half = o.op("sub", o.op("shl", o.k(1), o.op("sub", shift, 1)), 1)
    lsb = o.op("and", o.op("lshr", mant, shift), 1)
    sub = o.op("lshr", o.op("add", mant, o.op("add", lsb, half)), shift)
    # A normal result: round off `sh` bits, then re-bias the exponent.
    r = o.op("add", a, o.op("add", o.op("and", o.op("lshr", a, sh), 1), (1 << (sh - 1)) - 1))
    q = o.op("sub", o.op("lshr", r, sh), (127 - bias) << m)
    mag = o.sel(o.cmp("ult", a, (128 - bias) << 23), sub, q)
    return mag, o.cmp("ugt", mag, fmt.highest)  # a subnormal result never overflows


def _zext(o: _Ops, c: V) -> V:
    return o.f.conv("zext", c, o.i32)


def encode(f: IRFunction, x: V, dtype: DType) -> V:
    """Minifloat bytes (i8 vector) of float32 values."""
    fmt = FORMATS[dtype]
    lanes = lanes_of(x.ty)
    o = _Ops(f, lanes)
    u = f.conv("bitcast", x, o.i32)
    a = o.op("and", u, 0x7FFFFFFF)
    if fmt.kind == "e8m0":
        bad = f.binop("or", o.cmp("slt", u, 1), o.cmp("uge", u, F32_INF))  # <= +0.0, inf, NaN
        tiny = _zext(o, o.cmp("ugt", u, 0x400000))
        out = o.sel(o.cmp("ult", u, 0x800000), tiny, o.op("lshr", o.op("add", u, 0x400000), 23))
        return f.conv("trunc", o.sel(bad, 0xFF, out), vec("i8", lanes))
    sign = o.op("shl", o.op("lshr", u, 31), fmt.sign.bit_length() - 1)
    mag, over = _magnitude(o, a, fmt)
    is_nan = o.cmp("ugt", a, F32_INF)
    big = f.binop("or", over, o.cmp("eq", a, F32_INF))
    if fmt.kind == "fnuz":
        signed = o.sel(o.cmp("eq", mag, 0), 0, o.op("or", mag, sign))  # no -0.0
        out = o.sel(f.binop("or", big, is_nan), fmt.nan, signed)
    else:
        out = o.op("or", o.sel(big, fmt.overflow, mag), sign)
        nan = o.op("xor", sign, fmt.sign) if fmt.kind == "sat" else o.op("or", sign, fmt.nan)
        out = o.sel(is_nan, nan, out)
    return f.conv("trunc", out, vec("i8", lanes))
