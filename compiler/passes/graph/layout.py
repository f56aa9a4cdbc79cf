"""layout: run 2-D convolutions in the channel-blocked NCHW<b>c layout (x86 NCHWc).

One forward sweep in binding order:

- a `Conv` on 4-D static tensors with group 1, constant weights (and bias), no negative
  pads, and input and output channels divisible by `block` becomes
  `LayoutTransform(NCHW -> NCHW<b>c)`, `anvil.ConvNCHWc` (weights and bias repacked as new
  constants, pads made explicit), `LayoutTransform(NCHW<b>c -> NCHW)`;
- every NCHW value that is such a transform back of a blocked value remembers that value,
  so a later transform to the same blocked layout is replaced by it (the pair cancels);
- elementwise ops follow their blocked input into the blocked layout: unary ones (OpDef
  kind ELEMWISE, one tensor operand), and the broadcasting ones listed in `_BINARY`
  (Add, Mul, Sub, ..., Clip, PRelu) whose operands are blocked values of the same shape,
  size-1 constants, or per-channel constants [C, 1, 1] (repacked to [C/b, 1, 1, b]);
  a plain tensor operand of the same shape next to a blocked one is transformed in;
- `Concat` along channels of blocked values stays blocked.

Each moved op leaves a transform back to NCHW under its original name; the transforms
nothing uses any more are then dropped, so a chain conv -> relu -> conv -> add -> relu keeps
transforms only at its borders. Pooling and everything else stay in NCHW.
"""

from __future__ import annotations

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import Binding, Call, Const, Function, Module, TensorType, Var
from compiler.ops.base import Kind, get_op
from compiler.ops.layout import PLAIN, block_of, blocked, pack_bias, pack_weight
from compiler.ops.window import FLOATS, make_window
from compiler.passes.base import Arg, graph_pass
from compiler.passes.graph_util import (
    Emitter,
    const_values,
    map_functions,
    remove_unused,
    replace_bindings,
)

TRANSFORM = "anvil.LayoutTransform"
CONV = "anvil.ConvNCHWc"
# broadcasting elementwise ops whose every operand may be blocked, size 1 or per-channel
_BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Mean", "Pow", "PRelu", "Clip")
ORIGIN = "layout"
EXACT_BN = (DType.float32, DType.float64)  # BatchNormalization computes in these dtypes


def _static4(t: TensorType) -> bool:
    return t.is_static and t.shape is not None and len(t.shape) == 4


class _Sweep:
    """The state of one function's sweep: which NCHW values have a blocked twin."""

    def __init__(self, block: int, consts: dict[Var, np.ndarray]) -> None:
        self.block = block
        self.consts = consts
        self.twin: dict[Var, tuple[Var, str]] = {}  # NCHW value -> (blocked value, layout)

    def rewrite(self, b: Binding, em: Emitter) -> dict[Var, Var] | None:
        e = b.expr
        if not isinstance(e, Call) or len(b.outs) != 1:
            return None
        if e.op == TRANSFORM:
            return self.transform(b, e)
        if e.op == "Conv":
            return self.conv(b, e, em)
        if e.op == "Concat":
            return self.concat(b, e, em)
        if e.op == "BatchNormalization":
            return self.batchnorm(b, e, em)
        return self.elementwise(b, e, em)

    # -- pieces ---------------------------------------------------------------------------

    def to_blocked(self, v: Var, layout: str, em: Emitter) -> Var:
        got = self.twin.get(v)
        if got is not None and got[1] == layout:
            return got[0]
        (t,) = em.call(TRANSFORM, [v], {"src": PLAIN, "dst": layout}, hint=f"{v.name}_b",
                       origin=ORIGIN)
        self.twin[v] = (t, layout)
        return t

    def back(self, b: Binding, value: Var, layout: str, em: Emitter) -> dict[Var, Var]:
        """`value` (blocked) transformed back to NCHW under the name of `b`'s output."""
        old = b.outs[0]
        (out,) = em.call(TRANSFORM, [value], {"src": layout, "dst": PLAIN},
                         out_names=[old.name], origin=ORIGIN)
        self.twin[out] = (value, layout)
        return {old: out}

    def transform(self, b: Binding, e: Call) -> dict[Var, Var] | None:
        src, dst = e.attr_dict["src"], e.attr_dict["dst"]
        x = e.args[0]
        if src == PLAIN:  # cancels against an earlier transform back
            got = self.twin.get(x)
            if got is not None and got[1] == dst and got[0].type == b.outs[0].type:
                return {b.outs[0]: got[0]}
        elif dst == PLAIN and block_of(src):
            self.twin.setdefault(b.outs[0], (x, src))
        return None

    def conv(self, b: Binding, e: Call, em: Emitter) -> dict[Var, Var] | None:
        x, w = e.args[0], e.args[1]
        bias = e.args[2] if len(e.args) > 2 else None
        a = e.attr_dict
        out = b.outs[0]
        if x is None or w is None or a.get("group", 1) != 1:
            return None
        if not (_static4(x.type) and _static4(out.type)) or x.type.dtype not in FLOATS:
            return None
        wv = em.consts.get(w)
        bv = em.consts.get(bias) if bias is not None else None
        if wv is None or (bias is not None and bv is None) or wv.ndim != 4:
            return None
        k = self.block
        cin, cout = x.type.shape[1], out.type.shape[1]
        if cin % k or cout % k:
            return None
        win = make_window(a, wv.shape[2:])
        _, begin, end = win.resolve(x.type.shape[2:])
        if min(begin + end) < 0:
            return None
        layout = blocked(k)
        xb = self.to_blocked(x, layout, em)
        args = [xb, em.const(pack_weight(wv, k, k), f"{w.name}_b", ORIGIN)]
        if bv is not None:
            args.append(em.const(pack_bias(bv, k), f"{bias.name}_b", ORIGIN))
        attrs = {"block_in": k, "block_out": k, "dilations": tuple(win.dilations), "group": 1,
                 "pads": tuple(begin + end), "strides": tuple(win.strides)}
        (y,) = em.call(CONV, args, attrs, hint=f"{out.name}_b", origin=ORIGIN)
        return self.back(b, y, layout, em)

    def classify(self, v: Var | None, layout: str, shape: tuple, plain_ok: bool) -> str | None:
        """How operand `v` enters the blocked layout: "absent", "twin" (it has a blocked
        twin), "scalar" (a size-1 constant, kept), "channel" (a per-channel constant,
        repacked), "plain" (transformed in); None when it cannot."""
        if v is None:
            return "absent"
        got = self.twin.get(v)
        if got is not None and got[1] == layout and v.type.shape == shape:
            return "twin"
        c = self.consts.get(v)
        if c is not None:
            if c.size == 1 and c.ndim <= 4:
                return "scalar"
            if c.ndim in (3, 4) and c.shape[-3:] == (shape[1], 1, 1) and c.size == shape[1]:
                return "channel"
            return None
        if plain_ok and v.type.shape == shape:
            return "plain"
        return None

    def operand(self, v: Var | None, how: str, layout: str, em: Emitter) -> Var | None:
        if v is None or how == "scalar":
            return v
        if how == "channel":
            c = self.consts[v]
            k = block_of(layout)
            lead = (1,) if c.ndim == 4 else ()
            packed = np.ascontiguousarray(c.reshape(lead + (c.size // k, 1, 1, k)))
            return em.const(packed, f"{v.name}_b", ORIGIN)
        return self.to_blocked(v, layout, em)

    def elementwise(self, b: Binding, e: Call, em: Emitter) -> dict[Var, Var] | None:
        op = get_op(e.op)
        if op is None or op.nondeterministic or op.outputs != (1, 1):
            return None
        unary = op.kind == Kind.ELEMWISE
        if not unary and e.op not in _BINARY:
            return None
        lead = next((a for a in e.args if a is not None and a in self.twin), None)
        out = b.outs[0]
        if lead is None or out.type.shape != lead.type.shape:
            return None
        layout = self.twin[lead][1]
        hows = [self.classify(a, layout, out.type.shape, plain_ok=not unary) for a in e.args]
        if any(h is None for h in hows) or unary and any(h not in ("twin", "absent")
                                                         for h in hows):
            return None
        args = [self.operand(a, h, layout, em) for a, h in zip(e.args, hows, strict=True)]
        (y,) = em.call(e.op, args, e.attr_dict, hint=f"{out.name}_b", origin=ORIGIN)
        return self.back(b, y, layout, em)

    def batchnorm(self, b: Binding, e: Call, em: Emitter) -> dict[Var, Var] | None:
        """Inference BatchNormalization with constant parameters on a blocked value, as the
        reference computes it: scale * (x - mean) / sqrt(var + eps) + bias, with each
        per-channel constant repacked (sqrt(var + eps) folded): the same roundings."""
        x = e.args[0]
        got = self.twin.get(x)
        dtype = x.type.dtype
        if got is None or e.attr_dict.get("training_mode", 0) or dtype not in EXACT_BN:
            return None
        params = [self.consts.get(a) if a is not None else None for a in e.args[1:5]]
        if any(p is None or p.dtype != dtype.np or p.shape != (x.type.shape[1],)
               for p in params):
            return None
        scale, bias, mean, var = params
        eps = dtype.np.type(e.attr_dict.get("epsilon", 1e-5))
        k = block_of(got[1])

        def const(v: np.ndarray, hint: str) -> Var:
            return em.const(np.ascontiguousarray(v.reshape(-1, 1, 1, k)), hint, ORIGIN)

        name = b.outs[0].name
        v = em.call("Sub", [got[0], const(mean, f"{name}_mean")], origin=ORIGIN)[0]
        v = em.call("Mul", [const(scale, f"{name}_scale"), v], origin=ORIGIN)[0]
        v = em.call("Div", [v, const(np.sqrt(var + eps), f"{name}_std")], origin=ORIGIN)[0]
        v = em.call("Add", [v, const(bias, f"{name}_bias")], hint=f"{name}_b",
                    origin=ORIGIN)[0]
        return self.back(b, v, got[1], em)

    def concat(self, b: Binding, e: Call, em: Emitter) -> dict[Var, Var] | None:
        out = b.outs[0]
        if out.type.shape is None or len(out.type.shape) != 4:
            return None
        if e.attr_dict.get("axis") not in (1, -3) or not e.args:
            return None
        twins = [self.twin.get(a) if a is not None else None for a in e.args]
        if any(t is None for t in twins) or len({t[1] for t in twins}) != 1:
            return None
        layout = twins[0][1]
        (y,) = em.call("Concat", [t[0] for t in twins], {"axis": 1}, hint=f"{out.name}_b",
                       origin=ORIGIN)
        return self.back(b, y, layout, em)


def _layout_function(fn: Function, block: int) -> Function:
    if not any(isinstance(b.expr, Call) and b.expr.op in ("Conv", TRANSFORM) for b in fn.body):
        return fn
    sweep = _Sweep(block, const_values(fn))
    out = replace_bindings(fn, sweep.rewrite)
    if out.body == fn.body and out.results == fn.results:
        return fn
    # drop the transforms back (and the old weights) that nothing uses any more
    return remove_unused(out, keep=lambda b: not isinstance(b.expr, Const) and not (
        isinstance(b.expr, Call) and b.expr.op in (TRANSFORM, CONV)))


@graph_pass("Run 2-D convolutions and the elementwise ops around them in NCHW<b>c layout.",
            Arg("block", int, 8, "channels per block", low=1))
def layout(module: Module, block: int) -> Module:
    return map_functions(module, lambda fn: _layout_function(fn, block))


__all__ = ["layout"]
