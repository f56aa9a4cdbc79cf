"""Lowering of loop-IR expressions (and buffer memory access) to LLVM IR text.

Exactness: every IEEE-exact operation maps to one LLVM instruction or intrinsic with the
same rounding (`fadd`, `llvm.sqrt`, `llvm.minimum`, `llvm.roundeven`, ...), with no
fast-math flags and no contraction unless the module asks for fast math. float16/bfloat16
compute in float32 and round once to nearest even (`round16`); conversions from float64
and 64-bit integers to them go through a round-to-odd float32 so they round once too.
Transcendental intrinsics and `fmod`/`hypot` call libm's float32 or float64 functions
(`expf`, `exp`) as opaque pure calls; `erf` computes in float64, like the interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass

from compiler.codegen import llvm_minifloat as minifloat
from compiler.codegen.llvm_ir import (
    ELEM_BYTES,
    HALF_TYPES,
    IRFunction,
    V,
    elem_of,
    float_literal,
    int_literal,
    lanes_of,
    memory_type,
    splat,
    value_type,
    vec,
)
from compiler.dtypes import DType
from compiler.errors import UnsupportedError
from compiler.loop.ir import (
    BinKind,
    BinOp,
    Broadcast,
    BufferLoad,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Expr,
    FloatImm,
    IntImm,
    Let,
    Ramp,
    Reinterpret,
    Select,
    UnKind,
    UnOp,
    Var,
    is_float,
    is_int,
    is_minifloat,
    is_narrow_int,
)

_LIBM_UNARY = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sin", "cos", "tan",
               "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh")
_LIBM_BINARY = ("pow", "atan2", "fmod", "hypot")
_LLVM_UNARY = {"sqrt": "sqrt", "floor": "floor", "ceil": "ceil", "trunc": "trunc",
               "round": "roundeven", "abs": "fabs"}
_EXACT_RESULT = ("floor", "ceil", "trunc", "round", "abs", "copysign")
_FCMP = {CmpKind.eq: "oeq", CmpKind.ne: "une", CmpKind.lt: "olt", CmpKind.le: "ole",
         CmpKind.gt: "ogt", CmpKind.ge: "oge"}
_INF = float_literal(float("inf"))
# libm calls are opaque to LLVM's library-call simplifier (`nobuiltin`): LLVM 22's
# InstCombine turns `fmodf(select(c, 2.5, 7.0), NaN)` into `frem nnan` (poison) and drops the
# store of the result. The calls are pure as far as the kernel can tell (errno is unread).
LIBM_ATTRS = "#1"
LIBM_ATTRIBUTES = "attributes #1 = { nobuiltin nounwind willreturn memory(none) }"


def _intlike(dtype: DType) -> bool:
    """Integers in LLVM (`iN`): the integer dtypes and the narrow ones (int4 is `i4`)."""
    return is_int(dtype) or is_narrow_int(dtype)


def mangle(ty: str) -> str:
    """LLVM's overloaded-intrinsic suffix of a type: `f32`, `v4f64`, `i8`."""
    elem = {"float": "f32", "double": "f64", "half": "f16"}.get(elem_of(ty), elem_of(ty))
    lanes = lanes_of(ty)
    return elem if lanes == 1 else f"v{lanes}{elem}"


@dataclass
class BufInfo:
    """A buffer in scope: its base pointer, dimensions (i64 values) and element dtype."""

    ptr: V
    dims: list[V]
    dtype: DType


class Declarations:
    """The external functions a module calls, each declared once."""

    def __init__(self) -> None:
        self.lines: dict[str, str] = {}

    def need(self, name: str, ret: str, *params: str) -> str:
        self.lines.setdefault(name, f"declare {ret} @{name}({', '.join(params)})")
        return name

    def intrinsic(self, base: str, ty: str, nargs: int, *extra: str) -> str:
        return self.need(f"llvm.{base}.{mangle(ty)}", ty, *([ty] * nargs), *extra)


class ExprGen:
    """Emits expressions into one `IRFunction`; `vars`/`bufs` map loop-IR names to values."""

    def __init__(self, f: IRFunction, decls: Declarations, fast_math: bool) -> None:
        self.f = f
        self.decls = decls
        self.fflags = "fast " if fast_math else ""
        self.vars: dict[str, V] = {}
        self.bufs: dict[str, BufInfo] = {}

    # -- dispatch --------------------------------------------------------------------------

    def expr(self, e: Expr) -> V:
        if isinstance(e, IntImm):
            if e.dtype is DType.bool:
                return V("i1", "true" if e.value else "false")
            return V(value_type(e.dtype), int_literal(e.value, e.dtype.bits))
        if isinstance(e, FloatImm):
            return V(value_type(e.dtype), float_literal(e.value))
        if isinstance(e, Var):
            return self.vars[e.name]
        if isinstance(e, BinOp):
            return self.binop(e.op, self.expr(e.a), self.expr(e.b), e.a.dtype)
        if isinstance(e, CmpOp):
            return self.cmpop(e.op, self.expr(e.a), self.expr(e.b), e.a.dtype)
        if isinstance(e, UnOp):
            return self.unop(e.op, self.expr(e.a), e.dtype)
        if isinstance(e, Select):
            return self.f.select(self.expr(e.cond), self.expr(e.t), self.expr(e.f))
        if isinstance(e, Cast):
            return self.cast(self.expr(e.value), e.value.dtype, e.dtype)
        if isinstance(e, Reinterpret):
            return self.reinterpret(self.expr(e.value), e.value.dtype, e.dtype)
        if isinstance(e, Call):
            return self.call(e)
        if isinstance(e, Ramp):
            return self.ramp(self.expr(e.base), self.expr(e.stride), e.lanes)
        if isinstance(e, Broadcast):
            return self.f.broadcast(self.expr(e.value), e.lanes)
        if isinstance(e, BufferLoad):
            return self.load(e)
        if isinstance(e, Let):
            self.vars[e.var.name] = self.expr(e.value)
            try:
                return self.expr(e.body)
            finally:
                del self.vars[e.var.name]
        raise UnsupportedError(f"the LLVM backend cannot lower {type(e).__name__} `{e}`")

    def const(self, literal: str, like: V) -> str:
        return splat(literal, like.ty)

    # -- arithmetic ------------------------------------------------------------------------

    def binop(self, op: BinKind, a: V, b: V, dt: DType) -> V:
        f = self.f
        if is_float(dt):
            if op in (BinKind.min, BinKind.max):
                name = self.decls.intrinsic("minimum" if op is BinKind.min else "maximum",
                                            a.ty, 2)
                return f.call(a.ty, name, a, b)
            ins = {BinKind.add: "fadd", BinKind.sub: "fsub", BinKind.mul: "fmul",
                   BinKind.div: "fdiv"}[op]
            return self.round16(f.val(a.ty, f"{ins} {self.fflags}{a}, {b.ref}"), dt)
        signed = dt.is_signed and dt is not DType.bool
        simple = {BinKind.add: "add", BinKind.sub: "sub", BinKind.mul: "mul",
                  BinKind.bitand: "and", BinKind.bitor: "or", BinKind.bitxor: "xor",
                  BinKind.and_: "and", BinKind.or_: "or", BinKind.shl: "shl",
                  BinKind.shr: "ashr" if signed else "lshr"}
        if op in simple:
            return f.binop(simple[op], a, b)
        if op in (BinKind.min, BinKind.max):
            base = ("s" if signed else "u") + op.value
            return f.call(a.ty, self.decls.intrinsic(base, a.ty, 2), a, b)
        if not signed:
            return f.binop("udiv" if op in (BinKind.floordiv, BinKind.truncdiv) else "urem",
                           a, b)
        if op is BinKind.truncdiv:
            return f.binop("sdiv", a, b)
        rem = f.binop("srem", a, b)
        if op is BinKind.truncmod:
            return rem
        zero = self.const("0", a)
        # The remainder is nonzero and its sign differs from the divisor's: step down.
        adjust = f.val(vec("i1", lanes_of(a.ty)), "and " + ", ".join((
            str(f.cmp("icmp", "ne", rem, zero)),
            f.cmp("icmp", "slt", f.binop("xor", rem, b), zero).ref)))
        if op is BinKind.floormod:
            return f.select(adjust, f.binop("add", rem, b), rem)
        quot = f.binop("sdiv", a, b)
        return f.binop("sub", quot, f.conv("zext", adjust, a.ty))

    def cmpop(self, op: CmpKind, a: V, b: V, dt: DType) -> V:
        if is_float(dt):
            return self.f.cmp("fcmp", _FCMP[op], a, b)
        if op in (CmpKind.eq, CmpKind.ne):
            return self.f.cmp("icmp", op.name, a, b)
        prefix = "s" if dt.is_signed else "u"
        return self.f.cmp("icmp", prefix + op.name, a, b)

    def unop(self, op: UnKind, a: V, dt: DType) -> V:
        if op is UnKind.neg:
            if is_float(dt):
                return self.f.val(a.ty, f"fneg {self.fflags}{a}")
            return self.f.val(a.ty, f"sub {a.ty} {self.const('0', a)}, {a.ref}")
        return self.f.binop("xor", a, self.const("true" if op is UnKind.not_ else "-1", a))

    def ramp(self, base: V, stride: V, lanes: int) -> V:
        ty = vec(base.ty, lanes)
        steps = V(ty, "<" + ", ".join(f"{base.ty} {k}" for k in range(lanes)) + ">")
        scaled = self.f.binop("mul", self.f.broadcast(stride, lanes), steps)
        return self.f.binop("add", self.f.broadcast(base, lanes), scaled)

    # -- 16-bit floats -------------------------------------------------------------------

    def round16(self, v: V, dt: DType) -> V:
        """Round a float32 value to float16/bfloat16 (nearest even), kept as float32."""
        f = self.f
        lanes = lanes_of(v.ty)
        if dt is DType.float16:
            return f.conv("fpext", f.conv("fptrunc", v, vec("half", lanes)), v.ty)
        if dt is not DType.bfloat16:
            return v
        i32 = vec("i32", lanes)
        bits = f.conv("bitcast", v, i32)
        lsb = f.binop("and", f.binop("lshr", bits, splat("16", i32)), splat("1", i32))
        rounded = f.binop("add", bits, f.binop("add", lsb, splat("32767", i32)))
        quiet = f.binop("or", bits, splat("4194304", i32))
        nan = f.cmp("fcmp", "uno", v, v)
        out = f.binop("and", f.select(nan, quiet, rounded), splat("-65536", i32))
        return f.conv("bitcast", out, v.ty)

    def f64_to_f32_odd(self, v: V) -> V:
        """float64 -> float32 rounding to odd, so that a second rounding to <= 22 bits of
        precision gives the correctly rounded result."""
        f = self.f
        lanes = lanes_of(v.ty)
        i32 = vec("i32", lanes)
        r = f.conv("fptrunc", v, vec("float", lanes))
        back = f.conv("fpext", r, v.ty)
        bits = f.conv("bitcast", r, i32)
        inexact = f.cmp("fcmp", "one", back, v)
        even = f.cmp("icmp", "eq", f.binop("and", bits, splat("1", i32)), splat("0", i32))
        exp = f.binop("and", bits, splat("2139095040", i32))
        finite = f.cmp("icmp", "ne", exp, splat("2139095040", i32))
        fix = f.binop("and", f.binop("and", inexact, even), finite)
        fabs = self.decls.intrinsic("fabs", v.ty, 1)
        up = f.cmp("fcmp", "olt", f.call(v.ty, fabs, back), f.call(v.ty, fabs, v))
        step = f.select(up, V(i32, splat("1", i32)), V(i32, splat("-1", i32)))
        fixed = f.select(fix, f.binop("add", bits, step), bits)
        return f.conv("bitcast", fixed, r.ty)

    def int_to_half(self, v: V, src: DType, dst: DType) -> V:
        f = self.f
        lanes = lanes_of(v.ty)
        op = "sitofp" if src.is_signed else "uitofp"
        if src.bits <= 16:
            return self.round16(f.conv(op, v, vec("float", lanes)), dst)
        if src.bits == 32:
            return self.round16(self.f64_to_f32_odd(f.conv(op, v, vec("double", lanes))), dst)
        # 64 bits: keep the top 24 significant bits of |v| plus a sticky bit (round to odd),
        # convert that exactly, and scale back by 2^shift.
        i64, i1 = v.ty, vec("i1", lanes)
        zero = splat("0", i64)
        neg = f.cmp("icmp", "slt", v, zero) if src.is_signed else V(i1, splat("false", i1))
        mag = f.select(neg, f.val(i64, f"sub {i64} {zero}, {v.ref}"), v) \
            if src.is_signed else v
        ctlz = self.decls.intrinsic("ctlz", i64, 1, "i1")
        lz = f.val(i64, f"call {i64} @{ctlz}({mag}, i1 false)")
        excess = f.binop("sub", V(i64, splat("40", i64)), lz)
        shift = f.call(i64, self.decls.intrinsic("smax", i64, 2), excess, V(i64, zero))
        top = f.binop("lshr", mag, shift)
        mask = f.binop("sub", f.binop("shl", V(i64, splat("1", i64)), shift),
                       splat("1", i64))
        sticky = f.cmp("icmp", "ne", f.binop("and", mag, mask), zero)
        odd = f.binop("or", top, f.conv("zext", sticky, i64))
        ftype, i32 = vec("float", lanes), vec("i32", lanes)
        exact = f.conv("uitofp", odd, ftype)
        ebits = f.binop("shl", f.binop("add", f.conv("trunc", shift, i32), splat("127", i32)),
                        splat("23", i32))
        scaled = f.binop("fmul", exact, f.conv("bitcast", ebits, ftype))
        signed = f.select(neg, f.val(ftype, f"fneg {scaled}"), scaled)
        return self.round16(signed, dst)

    # -- casts -----------------------------------------------------------------------------

    def cast(self, v: V, src: DType, dst: DType) -> V:
        f = self.f
        lanes = lanes_of(v.ty)
        ty = value_type(dst, lanes)
        if src == dst:
            return v
        if is_minifloat(src):  # through float32, as ml_dtypes converts
            return self.cast(minifloat.decode(f, v, src), DType.float32, dst)
        if is_minifloat(dst):
            return minifloat.encode(f, self.cast(v, src, DType.float32), dst)
        if dst is DType.bool:
            if is_float(src):
                return f.cmp("fcmp", "une", v, self.const("0.0", v))
            return f.cmp("icmp", "ne", v, self.const("0", v))
        if src is DType.bool:
            return f.conv("zext" if _intlike(dst) else "uitofp", v, ty)
        if _intlike(src) and _intlike(dst):
            if dst.bits < src.bits:
                return f.conv("trunc", v, ty)
            if dst.bits > src.bits:
                return f.conv("sext" if src.is_signed else "zext", v, ty)
            return V(ty, v.ref)
        if _intlike(dst):
            return f.conv("fptosi" if dst.is_signed else "fptoui", v, ty)
        if _intlike(src):
            if dst in HALF_TYPES:
                return self.int_to_half(v, src, dst)
            return f.conv("sitofp" if src.is_signed else "uitofp", v, ty)
        if src is DType.float64:
            if dst is DType.float32:
                return f.conv("fptrunc", v, ty)
            return self.round16(self.f64_to_f32_odd(v), dst)
        if dst is DType.float64:
            return f.conv("fpext", v, ty)
        return self.round16(v, dst)  # float32/float16/bfloat16 to float32/16-bit

    def reinterpret(self, v: V, src: DType, dst: DType) -> V:
        """The stored bits of `v`, read as `dst`'s stored bits."""
        bits = self.to_memory(v, src)
        return self.from_memory(self.f.conv("bitcast", bits, vec(memory_type(dst),
                                                                  lanes_of(v.ty))), dst)

    # -- intrinsics ------------------------------------------------------------------------

    def call(self, e: Call) -> V:
        f, decls = self.f, self.decls
        args = [self.expr(a) for a in e.args]
        x = args[0]
        dt = e.args[0].dtype
        if is_int(dt):
            if e.op == "popcount":
                return f.call(x.ty, decls.intrinsic("ctpop", x.ty, 1), x)
            if e.op == "abs":
                if not dt.is_signed:
                    return x
                return f.val(x.ty, f"call {x.ty} @{decls.intrinsic('abs', x.ty, 1, 'i1')}"
                                   f"({x}, i1 false)")
        elif e.op in ("isnan", "isinf", "isfinite"):
            if e.op == "isnan":
                return f.cmp("fcmp", "uno", x, x)
            mag = f.call(x.ty, decls.intrinsic("fabs", x.ty, 1), x)
            return f.cmp("fcmp", "oeq" if e.op == "isinf" else "one", mag,
                         self.const(_INF, x))
        elif e.op in _LLVM_UNARY or e.op == "copysign":
            name = decls.intrinsic(_LLVM_UNARY.get(e.op, e.op), x.ty, len(args))
            out = f.call(x.ty, name, *args)
            return out if e.op in _EXACT_RESULT else self.round16(out, dt)
        elif e.op == "erf":
            return self.erf(x, dt)
        elif e.op in _LIBM_UNARY or e.op in _LIBM_BINARY:
            elem = elem_of(x.ty)
            name = e.op + ("f" if elem == "float" else "")
            decls.need(name, elem, *([elem] * len(args)))
            out = f.lanewise(x.ty, lambda *s: f.call(elem, name, *s, attrs=LIBM_ATTRS), *args)
            return self.round16(out, dt)
        raise UnsupportedError(f"the LLVM backend has no lowering of intrinsic {e.op} for "
                               f"{dt.value}: `{e}`")

    def erf(self, x: V, dt: DType) -> V:
        f = self.f
        lanes = lanes_of(x.ty)
        wide = x if dt is DType.float64 else f.conv("fpext", x, vec("double", lanes))
        self.decls.need("erf", "double", "double")
        out = f.lanewise(wide.ty, lambda s: f.call("double", "erf", s, attrs=LIBM_ATTRS), wide)
        return self.cast(out, DType.float64, dt)

    # -- memory ----------------------------------------------------------------------------

    def to_i64(self, v: V, dt: DType) -> V:
        if dt.bits == 64:
            return v
        if v.ref.lstrip("-").isdigit():  # a literal: extend it here
            value = int(v.ref) % (1 << dt.bits) if not dt.is_signed else int(v.ref)
            return V("i64", str(value))
        return self.f.conv("sext" if dt.is_signed else "zext", v, vec("i64", lanes_of(v.ty)))

    def flat_index(self, buf: BufInfo, indices: tuple[Expr, ...]) -> V:
        """The row-major element offset of an access: i64, or <N x i64> for vector indices."""
        f = self.f
        lanes = max((i.lanes for i in indices), default=1)
        acc: V | None = None
        for k, idx in enumerate(indices):
            v = self.to_i64(self.expr(idx), idx.dtype)
            if acc is None:
                acc = v
                continue
            acc = f.binop("mul", acc, f.broadcast(buf.dims[k], lanes_of(acc.ty)))
            if lanes_of(acc.ty) != lanes_of(v.ty):
                acc, v = f.broadcast(acc, lanes), f.broadcast(v, lanes)
            acc = f.binop("add", acc, v)
        return acc if acc is not None else V("i64", "0")

    def contiguous(self, indices: tuple[Expr, ...]) -> bool:
        """A vector access whose lanes are consecutive elements (a unit-stride last index)."""
        if not indices or indices[-1].lanes == 1:
            return False
        last = indices[-1]
        return (isinstance(last, Ramp) and isinstance(last.stride, IntImm)
                and last.stride.value == 1 and all(i.lanes == 1 for i in indices[:-1]))

    @staticmethod
    def ramp_base(indices: tuple[Expr, ...]) -> tuple[Expr, ...]:
        last = indices[-1]
        assert isinstance(last, Ramp)
        return (*indices[:-1], last.base)

    def address(self, buf: BufInfo, offset: V) -> V:
        return self.f.val("ptr", f"getelementptr {memory_type(buf.dtype)}, {buf.ptr}, {offset}")

    def load(self, e: BufferLoad) -> V:
        f = self.f
        buf = self.bufs[e.buffer.name]
        mty, align = memory_type(buf.dtype), ELEM_BYTES[buf.dtype]
        lanes = e.lanes
        if lanes == 1 or self.contiguous(e.indices):
            idx = e.indices if lanes == 1 else self.ramp_base(e.indices)
            ptr = self.address(buf, self.flat_index(buf, idx))
            ty = vec(mty, lanes)
            raw = f.val(ty, f"load {ty}, {ptr}, align {align}")
        else:
            offsets = self.flat_index(buf, e.indices)

            def one(off: V) -> V:
                return f.val(mty, f"load {mty}, {self.address(buf, off)}, align {align}")

            raw = f.lanewise(vec(mty, lanes), one, offsets)
        return self.from_memory(raw, buf.dtype)

    def from_memory(self, raw: V, dt: DType) -> V:
        f = self.f
        lanes = lanes_of(raw.ty)
        if dt is DType.bool:
            return f.cmp("icmp", "ne", raw, splat("0", raw.ty))
        if dt is DType.float16:
            return f.conv("fpext", f.conv("bitcast", raw, vec("half", lanes)),
                          vec("float", lanes))
        if dt is DType.bfloat16:
            wide = f.conv("zext", raw, vec("i32", lanes))
            bits = f.binop("shl", wide, splat("16", wide.ty))
            return f.conv("bitcast", bits, vec("float", lanes))
        if is_narrow_int(dt):  # the low bits of the byte
            return f.conv("trunc", raw, value_type(dt, lanes))
        return raw

    def to_memory(self, v: V, dt: DType) -> V:
        f = self.f
        lanes = lanes_of(v.ty)
        if dt is DType.bool:
            return f.conv("zext", v, vec("i8", lanes))
        if dt is DType.float16:
            return f.conv("bitcast", f.conv("fptrunc", v, vec("half", lanes)),
                          vec("i16", lanes))
        if dt is DType.bfloat16:
            bits = f.conv("bitcast", v, vec("i32", lanes))
            return f.conv("trunc", f.binop("lshr", bits, splat("16", bits.ty)),
                          vec("i16", lanes))
        if is_narrow_int(dt):  # the high bits zero, as ml_dtypes writes them
            return f.conv("zext", v, vec("i8", lanes))
        return v
