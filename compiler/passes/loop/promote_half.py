"""promote_half: compute float16/bfloat16 arithmetic in float32.

`a + b` on float16 becomes `float16(float32(a) + float32(b))`, and likewise for - * / min max
and the float intrinsics (`erf` goes through float64, which is how the reference computes it).
The loop IR defines half-precision operations as computed in float32 and rounded once, so
this is exact; it lets targets without half-precision arithmetic run the code.
"""

from __future__ import annotations

from compiler.dtypes import DType
from compiler.loop.ir import BinKind, BinOp, Call, Cast, Node, PrimFunc
from compiler.loop.traverse import transform, walk
from compiler.passes.base import loop_pass

HALF = (DType.float16, DType.bfloat16)
_ARITH = (BinKind.add, BinKind.sub, BinKind.mul, BinKind.div, BinKind.min, BinKind.max)


def promote(n: Node) -> Node | None:
    if isinstance(n, BinOp) and n.dtype in HALF and n.op in _ARITH:
        wide = BinOp(n.op, Cast(DType.float32, n.a), Cast(DType.float32, n.b))
        return Cast(n.dtype, wide)
    if isinstance(n, Call) and n.args and n.args[0].dtype in HALF:
        via = DType.float64 if n.op == "erf" else DType.float32
        args = tuple(Cast(via, a) for a in n.args)
        if n.dtype is DType.bool:
            return Call(n.op, args, DType.bool)
        return Cast(n.dtype, Call(n.op, args, via))
    return None


def _applies(func: PrimFunc) -> bool:
    return any(promote(n) is not None for n in walk(func))


@loop_pass("Compute float16/bfloat16 arithmetic and intrinsics in float32 (exactly).",
           applies=_applies)
def promote_half(func: PrimFunc) -> PrimFunc:
    out = transform(func, promote)
    assert isinstance(out, PrimFunc)
    return out
