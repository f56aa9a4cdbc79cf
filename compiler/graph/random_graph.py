"""Random well-formed graph-IR modules that exercise what the graph passes rewrite.

`random_module(rng)` builds a statically shaped `main` from a sequence of small "features",
each one a pattern some graph pass looks for, on purpose and often:

- elementwise chains with broadcasting, per-channel `[C,1,1]` constants and identities
  (`x*1`, `x+(-0.0)`, `x-0.0`, `x/1`);
- Conv (with and without bias, group 1 or depthwise, pads, strides) followed by
  BatchNormalization, Relu, Add/Mul of a per-channel constant, pooling;
- Flatten -> Gemm (transB=1, alpha/beta, bias) or MatMul; Sum/Mean/Max/Min;
- shape ops: Reshape (with -1 and 0), Transpose pairs, Squeeze/Unsqueeze, Concat, Slice,
  Identity, inference Dropout, Cast (same dtype, widening), and the foldable dynamic-reshape
  idiom Shape -> Gather -> Unsqueeze -> Concat -> Reshape;
- reductions with an axes input, Softmax;
- duplicated subexpressions and constants, dead values, calls on constants only;
- If with a constant, parameter or computed condition whose branches capture outer values.

`random_inputs(module, rng)` draws inputs for `main`'s parameters. Every module verifies and
its interpreter outputs are finite on those inputs: values reaching Sqrt are `Abs`olute,
Log sees `Abs(x) + 1`, divisors are `Abs(y) + 1` or non-zero constants, Exp sees only values
of small magnitude (a bound on every value's magnitude is tracked). Conditions computed from
floats are far from their threshold, so a pass that rounds differently cannot flip them.
Sizes stay small (tensors of at most `max_elements`, at most `max_bindings` bindings) so the
numpy interpreter runs a module in milliseconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from compiler.dtypes import DType
from compiler.graph.ir import Function, Module, TensorType, Var
from compiler.passes.graph_util import Emitter

F32 = DType.float32
_UNARY = ("Relu", "Sigmoid", "Tanh", "Neg", "Abs", "Exp", "Sqrt", "Log", "Clip", "Identity")
_BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min")
_IDENTITIES = (("Mul", 1.0), ("Add", -0.0), ("Sub", 0.0), ("Div", 1.0))


@dataclass(frozen=True)
class GraphGenConfig:
    """Knobs of the generator; the defaults keep a module's run to a few milliseconds."""

    max_bindings: int = 30
    max_elements: int = 4096
    max_params: int = 3
    max_results: int = 3
    if_chance: float = 0.25  # per module: try to build one If
    extra_params: bool = True  # sometimes a bool scalar or an int64 vector parameter


@dataclass
class _Value:
    var: Var
    shape: tuple[int, ...]  # the concrete shape (the type may be less precise)
    mag: float  # a bound on |value|


class _Gen:
    def __init__(self, rng: random.Random, cfg: GraphGenConfig) -> None:
        self.rng = rng
        self.cfg = cfg
        self.params: list[Var] = []
        self.values: list[_Value] = []  # float32 values usable as operands
        self.flags: list[Var] = []  # bool scalars usable as conditions
        self.ints: list[_Value] = []  # int64 values (parameters)
        self.em: Emitter = Emitter(Function("main", (), (), ()))
        self.branches = 0

    # -- small helpers -----------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def const(self, array: np.ndarray, hint: str = "c") -> Var:
        return self.em.const(np.asarray(array), hint)

    def f32(self, shape: tuple[int, ...], scale: float = 1.0, positive: bool = False) -> Var:
        a = np.asarray(np.random.default_rng(self.rng.randrange(1 << 30)).standard_normal(shape))
        a = np.abs(a) + 0.5 if positive else a
        return self.const((a * scale).astype(np.float32), "w")

    def i64(self, values: list[int] | int) -> Var:
        return self.const(np.asarray(values, dtype=np.int64), "k")

    def call(self, op: str, args: list[Var | None], attrs: dict | None = None,
             hint: str = "") -> Var:
        return self.em.call(op, args, attrs, hint=hint or op.lower())[0]

    def add(self, var: Var, shape: tuple[int, ...], mag: float) -> _Value:
        v = _Value(var, tuple(shape), float(mag))
        self.values.append(v)
        return v

    def pick(self, pred: Callable[[_Value], bool] = lambda v: True) -> _Value | None:
        """A statically typed value satisfying `pred` (values of a dynamic Reshape are only
        ever results)."""
        pool = [v for v in self.values if pred(v) and v.var.type.is_static]
        if not pool:
            return None
        # favour recent values so features chain into each other
        k = min(len(pool) - 1, int(-math.log(1.0 - self.rng.random()) / 0.6))
        return pool[len(pool) - 1 - k]

    def tame(self, v: _Value, limit: float = 50.0) -> _Value:
        """`v`, or a squashed copy when its magnitude bound exceeds `limit`."""
        if v.mag <= limit:
            return v
        op = self.rng.choice(("Tanh", "Sigmoid"))
        return self.add(self.call(op, [v.var]), v.shape, 1.0)

    # -- parameters ----------------------------------------------------------------------

    def make_params(self) -> None:
        channels = self.rng.choice((1, 2, 3, 4, 8))  # 8: a whole NCHWc block
        shapes = [(1, channels, self.rng.randint(3, 8), self.rng.randint(3, 8)),
                  (self.rng.randint(1, 6), self.rng.randint(1, 8)),
                  (self.rng.randint(1, 4), self.rng.randint(2, 6), self.rng.randint(2, 6)),
                  (self.rng.randint(2, 8),)]
        n = self.rng.randint(1, self.cfg.max_params)
        chosen = [shapes[0] if self.chance(0.6) else self.rng.choice(shapes)]
        chosen += [self.rng.choice(shapes + [chosen[0]] * 2) for _ in range(n - 1)]
        for k, s in enumerate(chosen):
            self.params.append(Var(f"x{k}", TensorType(s, F32)))
        if self.cfg.extra_params and self.chance(0.2):
            self.params.append(Var("flag", TensorType((), DType.bool)))
        if self.cfg.extra_params and self.chance(0.15):
            self.params.append(Var("idx", TensorType((self.rng.randint(1, 4),), DType.int64)))
        self.em = Emitter(Function("main", tuple(self.params), (), ()))
        for p in self.params:
            if p.type.dtype == F32:
                self.add(p, p.type.shape, 5.0)  # type: ignore[arg-type]
            elif p.type.dtype == DType.bool:
                self.flags.append(p)
            else:
                self.ints.append(_Value(p, p.type.shape, 8.0))  # type: ignore[arg-type]

    # -- features ------------------------------------------------------------------------

    def operand_like(self, x: _Value) -> tuple[Var, float]:
        """A second operand broadcastable against `x`: another value, or a constant."""
        rank = len(x.shape)
        r = self.rng.random()
        if r < 0.3:
            other = self.pick(lambda v: v.shape == x.shape and v is not x)
            if other is not None:
                return other.var, other.mag
        if r < 0.55 and rank >= 3:
            shape = (x.shape[-3],) + (1,) * 2  # per-channel [C,1,1]
            return self.f32(shape), 3.0
        if r < 0.75:
            return self.const(np.float32(self.rng.choice((0.5, 2.0, -1.5, 3.0)))), 3.0
        if r < 0.85 and rank >= 1:
            return self.f32(x.shape[-1:]), 3.0
        return self.f32(x.shape), 3.0

    def elementwise_chain(self) -> None:
        x = self.pick()
        if x is None:
            return
        for _ in range(self.rng.randint(1, 4)):
            x = self.tame(x, 1e3)
            if self.chance(0.2):
                op, c = self.rng.choice(_IDENTITIES)
                y = self.call(op, [x.var, self.const(np.float32(c))])
                x = self.add(y, x.shape, x.mag)
            elif self.chance(0.5):
                x = self.unary(x)
            else:
                op = self.rng.choice(_BINARY)
                other, m = self.operand_like(x)
                if op == "Div":
                    other = self.call("Add", [self.call("Abs", [other]),
                                              self.const(np.float32(1.0))])
                    m = 1.0
                args = [x.var, other] if self.chance(0.8) or op == "Div" else [other, x.var]
                y = self.call(op, args)
                mag = x.mag * m if op == "Mul" else x.mag if op == "Div" else x.mag + m
                x = self.add(y, tuple(y.type.shape), mag)  # type: ignore[arg-type]

    def unary(self, x: _Value) -> _Value:
        op = self.rng.choice(_UNARY)
        v = x.var
        if op == "Sqrt":
            y = self.call("Sqrt", [self.call("Abs", [v])])
            return self.add(y, x.shape, math.sqrt(x.mag))
        if op == "Log":
            a = self.call("Add", [self.call("Abs", [v]), self.const(np.float32(1.0))])
            return self.add(self.call("Log", [a]), x.shape, math.log1p(x.mag))
        if op == "Exp":
            if x.mag > 8:
                v = self.call("Tanh", [v])
            return self.add(self.call("Exp", [v]), x.shape, math.exp(min(x.mag, 8)))
        if op == "Clip":
            lo, hi = sorted(self.rng.sample((-2.0, -0.5, 0.0, 0.5, 1.0, 3.0), 2))
            args = [v, self.const(np.float32(lo)), self.const(np.float32(hi))]
            if self.chance(0.3):
                args = args[:2]
            return self.add(self.call("Clip", args), x.shape, max(x.mag, abs(lo), abs(hi)))
        mag = 1.0 if op in ("Sigmoid", "Tanh") else x.mag
        return self.add(self.call(op, [v]), x.shape, mag)

    def image(self) -> _Value:
        """A 4-D [1,C,H,W] operand: an existing one, another value reshaped, or a constant."""
        x = self.pick(lambda v: len(v.shape) == 4 and v.shape[2] >= 3 and v.shape[3] >= 3)
        if x is not None:
            return self.tame(x)
        order = (8, 1, 2, 3, 4) if self.chance(0.3) else (1, 2, 3, 4)
        src = self.pick(lambda v: _image_shape(int(np.prod(v.shape)), order) is not None)
        if src is not None and self.chance(0.7):
            shape = _image_shape(int(np.prod(src.shape)), order)
            y = self.call("Reshape", [src.var, self.i64(list(shape))])  # type: ignore[arg-type]
            return self.tame(self.add(y, shape, src.mag))  # type: ignore[arg-type]
        c, h, w = self.rng.choice((1, 2, 3, 8)), self.rng.randint(3, 6), self.rng.randint(3, 6)
        return self.add(self.f32((1, c, h, w)), (1, c, h, w), 4.0)

    def conv_block(self) -> None:
        x = self.image()
        _, c, h, w = x.shape
        depthwise = c > 1 and self.chance(0.3)
        if depthwise:
            m = c * self.rng.choice((1, 2))
        else:
            m = 8 if c % 8 == 0 and self.chance(0.7) else self.rng.choice((1, 2, 3, 4, 6, 8))
        k = self.rng.choice((1, 3, 3)) if min(h, w) >= 3 else 1
        pad = self.rng.choice((0, k // 2))
        stride = self.rng.choice((1, 1, 2))
        group = c if depthwise else 1
        weight = self.f32((m, c // group, k, k), scale=1.0 / math.sqrt(k * k * c / group))
        args = [x.var, weight]
        if self.chance(0.6):
            args.append(self.f32((m,)))
        attrs = {"kernel_shape": (k, k), "pads": (pad,) * 4, "strides": (stride, stride),
                 "group": group}
        if self.chance(0.2):
            attrs["dilations"] = (1, 1)
        y = self.call("Conv", args, attrs)
        mag = x.mag * 3 * math.sqrt(k * k * c / group) + 3
        out = self.add(y, tuple(y.type.shape), mag)  # type: ignore[arg-type]
        epilogue = [op for op, p in (("BatchNormalization", 0.6), ("Relu", 0.5), ("Add", 0.4),
                                     ("Mul", 0.4)) if self.chance(p)]
        if self.chance(0.5):
            self.rng.shuffle(epilogue)
        for op in epilogue:
            if op == "BatchNormalization":
                scale, bias, mean = self.f32((m,)), self.f32((m,)), self.f32((m,))
                var = self.f32((m,), positive=True)
                bn_attrs = {"epsilon": self.rng.choice((1e-5, 1e-3))}
                bn = self.call(op, [out.var, scale, bias, mean, var], bn_attrs)
                out = self.add(bn, out.shape, out.mag * 6 + 6)
            elif op == "Relu":
                out = self.add(self.call("Relu", [out.var]), out.shape, out.mag)
            else:
                per_channel = self.f32((m, 1, 1)) if self.chance(0.8) else self.f32((1, m, 1, 1))
                y = self.call(op, [out.var, per_channel] if self.chance(0.8) else
                              [per_channel, out.var])
                out = self.add(y, out.shape, out.mag * 4 + 4)
        if self.chance(0.4):
            self.pool(out)

    def pool(self, x: _Value | None = None) -> None:
        x = x or self.image()
        _, _, h, w = x.shape
        r = self.rng.random()
        if r < 0.3 or min(h, w) < 2:
            y = self.call("GlobalAveragePool", [x.var])
        else:
            op = "MaxPool" if r < 0.65 else "AveragePool"
            k = self.rng.choice((2, 3)) if min(h, w) >= 3 else 2
            attrs: dict = {"kernel_shape": (k, k), "strides": (self.rng.choice((1, 2)),) * 2}
            if self.chance(0.4) and k > 1:
                attrs["pads"] = (1, 1, 1, 1) if k == 3 else (0, 0, 1, 1)
            if op == "AveragePool":
                attrs["count_include_pad"] = self.rng.randint(0, 1)
            y = self.call(op, [x.var], attrs)
        self.add(y, tuple(y.type.shape), x.mag)  # type: ignore[arg-type]

    def dense(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 2 and np.prod(v.shape[1:]) <= 512)
        if x is None:
            return
        x = self.tame(x)
        if len(x.shape) != 2 or self.chance(0.3):
            flat = self.call("Flatten", [x.var], {"axis": 1})
            x = self.add(flat, (x.shape[0], int(np.prod(x.shape[1:]))), x.mag)
        rows, kdim = x.shape
        n = self.rng.randint(1, 8)
        scale = 1.0 / math.sqrt(kdim)
        if self.chance(0.6):
            attrs: dict = {"transB": 1}
            if self.chance(0.3):
                attrs["alpha"] = self.rng.choice((0.5, 2.0))
            if self.chance(0.3):
                attrs["beta"] = self.rng.choice((0.5, 2.0, 0.0))
            args = [x.var, self.f32((n, kdim), scale)]
            if self.chance(0.8):
                args.append(self.f32((n,) if self.chance(0.7) else (1, n)))
            y = self.call("Gemm", args, attrs)
        else:
            y = self.call("MatMul", [x.var, self.f32((kdim, n), scale)])
            if self.chance(0.6):
                y = self.call("Add", [y, self.f32((n,))])
        if self.chance(0.3):  # a per-column scale, foldable into the weights
            y = self.call("Mul", [y, self.f32((n,))])
        self.add(y, (rows, n), x.mag * 20 + 20)

    def variadic(self) -> None:
        x = self.pick()
        if x is None:
            return
        ops = [x]
        for _ in range(self.rng.randint(1, 3)):
            other = self.pick(lambda v: v.shape == x.shape)
            ops.append(other if other is not None and self.chance(0.7) else
                       self.add(self.f32(x.shape), x.shape, 3.0))
        op = self.rng.choice(("Sum", "Mean", "Max", "Min"))
        y = self.call(op, [v.var for v in ops])
        self.add(y, x.shape, sum(v.mag for v in ops))

    def reshape(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1)
        if x is None:
            return
        n = int(np.prod(x.shape))
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        a = self.rng.choice(divisors)
        target = [a, n // a]
        if self.chance(0.3) and len(x.shape) >= 2:
            target = [x.shape[0], -1]
        elif self.chance(0.3):
            target = [-1, n // a] if self.chance(0.5) else [a, -1]
        if self.chance(0.3) and len(x.shape) >= 2 and target[0] == x.shape[0]:
            target[0] = 0  # copy the dimension
        y = self.call("Reshape", [x.var, self.i64(target)])
        self.add(y, tuple(y.type.shape), x.mag)  # type: ignore[arg-type]

    def transpose(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 2)
        if x is None:
            return
        rank = len(x.shape)
        perm = list(range(rank))
        self.rng.shuffle(perm)
        y = self.call("Transpose", [x.var], {"perm": tuple(perm)})
        if self.chance(0.7):  # the pair: the inverse, or another permutation
            inv = [perm.index(i) for i in range(rank)]
            if self.chance(0.3):
                self.rng.shuffle(inv)
            y = self.call("Transpose", [y], {"perm": tuple(inv)})
        self.add(y, tuple(y.type.shape), x.mag)  # type: ignore[arg-type]

    def squeeze(self) -> None:
        x = self.pick(lambda v: len(v.shape) <= 4)
        if x is None:
            return
        axis = self.rng.randint(0, len(x.shape))
        y = self.call("Unsqueeze", [x.var, self.i64([axis])])
        if self.chance(0.6):
            y = self.call("Squeeze", [y, self.i64([axis])])
        elif self.chance(0.3):
            y = self.call("Squeeze", [y])
        self.add(y, tuple(y.type.shape), x.mag)  # type: ignore[arg-type]

    def concat(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1 and np.prod(v.shape) <= 1024)
        if x is None:
            return
        axis = self.rng.randrange(len(x.shape))
        parts = [x.var]
        size = x.shape[axis]
        for _ in range(self.rng.randint(1, 2)):
            other = self.pick(lambda v: len(v.shape) == len(x.shape) and all(
                v.shape[i] == x.shape[i] for i in range(len(x.shape)) if i != axis))
            if other is not None and self.chance(0.6):
                parts.append(other.var)
                size += other.shape[axis]
            else:
                extent = self.rng.randint(1, 3)
                shape = x.shape[:axis] + (extent,) + x.shape[axis + 1:]
                parts.append(self.f32(shape))
                size += extent
        neg = axis - len(x.shape) if self.chance(0.3) else axis
        y = self.call("Concat", parts, {"axis": neg})
        mag = max([x.mag, 4.0] + [v.mag for v in self.values if v.var in parts])
        self.add(y, tuple(y.type.shape), mag)  # type: ignore[arg-type]

    def slice(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1 and max(v.shape) >= 2)
        if x is None:
            return
        axis = max(range(len(x.shape)), key=lambda i: (x.shape[i], self.rng.random()))
        dim = x.shape[axis]
        start = self.rng.randint(0, dim - 1)
        end = self.rng.randint(start + 1, dim)
        args = [x.var, self.i64([start]), self.i64([end if self.chance(0.8) else 1 << 30])]
        if self.chance(0.7):
            args.append(self.i64([axis]))
            if self.chance(0.3):
                args.append(self.i64([1]))
        elif axis != 0:
            args = [x.var, self.i64([0, start]), self.i64([1 << 30, end])]
            args.append(self.i64([0, axis]))
        y = self.call("Slice", args)
        self.add(y, tuple(y.type.shape), x.mag)  # type: ignore[arg-type]

    def passthrough(self) -> None:
        x = self.pick()
        if x is None:
            return
        r = self.rng.random()
        if r < 0.3:
            y = self.call("Identity", [x.var])
        elif r < 0.6:
            args: list[Var | None] = [x.var]
            if self.chance(0.4):
                args += [self.const(np.float32(0.5)), self.const(np.bool_(False))]
            y = self.call("Dropout", args)
        elif r < 0.8:
            y = self.call("Cast", [x.var], {"to": F32.onnx})
        else:  # widening and back
            wide = self.call("Cast", [x.var], {"to": DType.float64.onnx})
            if self.chance(0.5):
                wide = self.call("Mul", [wide, self.const(np.float64(2.0))])
                x = _Value(x.var, x.shape, x.mag * 2)
            y = self.call("Cast", [wide], {"to": F32.onnx})
        self.add(y, x.shape, x.mag)

    def dynamic_reshape(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 2)
        if x is None:
            return
        shape = self.call("Shape", [x.var])
        d0 = self.call("Gather", [shape, self.i64(0)], {"axis": 0})
        lead = self.call("Unsqueeze", [d0, self.i64([0])])
        target = self.call("Concat", [lead, self.i64([-1])], {"axis": 0})
        y = self.call("Reshape", [x.var, target])
        self.add(y, (x.shape[0], int(np.prod(x.shape[1:]))), x.mag)

    def reduce(self) -> None:
        x = self.pick(lambda v: len(v.shape) >= 1)
        if x is None:
            return
        rank = len(x.shape)
        if self.chance(0.3):
            axis = self.rng.randrange(-rank, rank)
            y = self.call("Softmax", [x.var], {"axis": axis})
            self.add(y, x.shape, 1.0)
            return
        op = self.rng.choice(("ReduceSum", "ReduceMean", "ReduceMax"))
        axes = sorted(self.rng.sample(range(rank), self.rng.randint(1, rank)))
        keep = self.rng.randint(0, 1)
        y = self.call(op, [x.var, self.i64(axes)], {"keepdims": keep})
        n = int(np.prod([x.shape[a] for a in axes]))
        self.add(y, tuple(y.type.shape), x.mag * (n if op == "ReduceSum" else 1))  # type: ignore[arg-type]

    def duplicate(self) -> None:
        """Re-emit an earlier call verbatim (a CSE candidate) and combine the two copies."""
        calls = [b for b in self.em.bindings if not hasattr(b.expr, "value")
                 and len(b.outs) == 1 and b.outs[0].type.dtype == F32
                 and b.expr.op != "If"]  # type: ignore[union-attr]
        found = {v.var: v for v in self.values}
        calls = [b for b in calls if b.outs[0] in found]
        if not calls:
            return
        b = self.rng.choice(calls)
        src = found[b.outs[0]]
        e = b.expr
        dup = self.em.call(e.op, list(e.args), dict(e.attrs))[0]  # type: ignore[union-attr]
        op = self.rng.choice(("Add", "Sub", "Mul", "Max"))
        y = self.call(op, [src.var, dup])
        self.add(y, src.shape, src.mag * src.mag if op == "Mul" else src.mag * 2)

    def constants(self) -> None:
        """Calls on constants only, duplicated constants, then a use by a live value."""
        x = self.pick()
        if x is None:
            return
        shape = x.shape[-2:] if self.chance(0.5) else x.shape[-1:]
        a = np.random.default_rng(self.rng.randrange(1 << 30)).standard_normal(shape)
        c1 = self.const(a.astype(np.float32), "w")
        c2 = self.const(a.astype(np.float32), "w") if self.chance(0.5) else self.f32(shape)
        folded = self.call(self.rng.choice(("Add", "Mul", "Sub", "Max")), [c1, c2])
        if self.chance(0.4):
            folded = self.call("Relu", [folded])
        if self.chance(0.3) and len(shape) == 2:
            folded = self.call("Transpose", [folded], {"perm": (1, 0)})
            folded = self.call("Transpose", [folded], {"perm": (1, 0)})
        y = self.call(self.rng.choice(("Add", "Mul")), [x.var, folded])
        self.add(y, x.shape, x.mag * 10 + 10)

    def dead(self) -> None:
        x = self.pick()
        if x is None:
            return
        n = len(self.values)
        self.unary(x)
        del self.values[n:]  # never used: only dce sees it

    def if_(self) -> None:
        x = self.pick()
        if x is None:
            return
        x = self.tame(x)
        r = self.rng.random()
        if r < 0.3 or (not self.flags and r < 0.45):
            cond = self.const(np.bool_(self.chance(0.5)))
        elif self.flags and r < 0.7:
            cond = self.rng.choice(self.flags)
        elif r < 0.85 and x.shape:  # from the shape: foldable
            d0 = self.call("Gather", [self.call("Shape", [x.var]), self.i64(0)], {"axis": 0})
            cond = self.call(self.rng.choice(("Equal", "Greater")),
                             [d0, self.i64(self.rng.randint(0, 3))])
        else:  # from the data, far from the threshold: sum(|x|) + 1 > 0.5
            total = self.call("ReduceSum", [self.call("Abs", [x.var])], {"keepdims": 0})
            total = self.call("Add", [total, self.const(np.float32(1.0))])
            cond = self.call("Greater", [total, self.const(np.float32(0.5))])
        self.branches += 1
        branches = []
        outer = [v for v in self.values if v.shape == x.shape and v.var.type.is_static]
        for side in ("then", "else"):
            sub = Emitter(Function(f"{side}{self.branches}", (), (), ()))
            sub.names = self.em.names  # one namespace for main and its subgraphs
            body_ops = self.rng.randint(0, 3)
            cur = self.rng.choice(outer).var
            for _ in range(body_ops):
                op = self.rng.choice(("Relu", "Neg", "Tanh", "Add", "Mul"))
                if op in ("Add", "Mul"):
                    other = self.rng.choice(outer).var if self.chance(0.5) else \
                        sub.const(np.float32(self.rng.choice((0.5, 2.0))), "c")
                    cur = sub.call(op, [cur, other])[0]
                else:
                    cur = sub.call(op, [cur])[0]
            branches.append(Function(f"{side}{self.branches}", (), tuple(sub.take()), (cur,)))
        y = self.call("If", [cond], {"then_branch": branches[0], "else_branch": branches[1]})
        mag = max(v.mag for v in outer)
        self.add(y, x.shape, (mag + 2) * (mag + 2) * 8)

    def int_use(self) -> None:
        """int64 parameters: small integers, widened into float arithmetic."""
        if not self.ints:
            return
        i = self.rng.choice(self.ints)
        v = self.call("Cast", [i.var], {"to": F32.onnx})
        self.add(v, i.shape, i.mag)

    def flag_use(self) -> None:
        if not self.flags:
            return
        x = self.pick()
        if x is None:
            return
        other, m = self.operand_like(x)
        y = self.call("Where", [self.rng.choice(self.flags), x.var, other])
        self.add(y, tuple(y.type.shape), max(x.mag, m))  # type: ignore[arg-type]

    # -- the module ------------------------------------------------------------------------

    FEATURES: tuple[tuple[str, float], ...] = (
        ("elementwise_chain", 3.0), ("conv_block", 2.0), ("pool", 0.7), ("dense", 1.2),
        ("variadic", 0.8), ("reshape", 1.0), ("transpose", 0.8), ("squeeze", 0.6),
        ("concat", 0.7), ("slice", 0.7), ("passthrough", 1.0), ("dynamic_reshape", 0.5),
        ("reduce", 0.8), ("duplicate", 1.0), ("constants", 0.8), ("dead", 0.5),
        ("int_use", 0.5), ("flag_use", 0.5),
    )

    def too_big(self) -> bool:
        if len(self.em.bindings) > self.cfg.max_bindings:
            return True
        return any(int(np.prod(b.outs[0].type.shape or ())) > self.cfg.max_elements
                   for b in self.em.bindings if b.outs[0].type.is_static)

    def attempt(self, name: str) -> bool:
        """Run one feature; undo it when it overshoots the size limits."""
        saved = (len(self.em.bindings), list(self.values))
        getattr(self, name)()
        if self.too_big():
            del self.em.bindings[saved[0]:]
            self.values = saved[1]
            return False
        return True

    def build(self) -> Module:
        self.make_params()
        names = [n for n, _ in self.FEATURES]
        weights = [w for _, w in self.FEATURES]
        want_if = self.chance(self.cfg.if_chance)
        failures = 0
        while failures < 4 and len(self.em.bindings) < self.cfg.max_bindings - 2:
            if want_if and self.chance(0.3):
                want_if = not self.attempt("if_")
                continue
            name = self.rng.choices(names, weights)[0]
            if not self.attempt(name):
                failures += 1
        if want_if:
            self.attempt("if_")
        return Module((Function("main", tuple(self.params), tuple(self.em.bindings),
                                self.results()),), 18)

    def results(self) -> tuple[Var, ...]:
        defined = [v for v in self.values if v.var not in self.params]
        pool = defined or self.values
        count = min(len(pool), self.rng.randint(1, self.cfg.max_results))
        chosen = [pool[-1]]  # the last value: most of the module feeds it
        rest = pool[:-1]
        self.rng.shuffle(rest)
        chosen += rest[:count - 1]
        return tuple(v.var for v in chosen)


def _image_shape(n: int, channels: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """[1, C, H, W] with C the first of `channels` that fits, H, W >= 3, holding `n`
    elements, if there is one."""
    for c in channels:
        if n % c:
            continue
        m = n // c
        for h in range(3, m // 3 + 1):
            if m % h == 0 and m // h >= 3:
                return (1, c, h, m // h)
    return None


def random_module(rng: random.Random | int, config: GraphGenConfig | None = None) -> Module:
    """A random, statically shaped, verifying module (see the module doc for what it holds)."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    return _Gen(rng, config or GraphGenConfig()).build()


def random_inputs(module: Module | Function, rng: random.Random | int | None = 0
                  ) -> list[np.ndarray]:
    """Inputs for `main`'s (static) parameters: floats standard normal, integers in [-4, 4],
    booleans uniform."""
    if isinstance(rng, random.Random):
        rng = rng.randrange(1 << 32)
    gen = np.random.default_rng(rng)
    fn = module.main if isinstance(module, Module) else module
    out = []
    for p in fn.params:
        t = p.type
        if not t.is_static:
            raise ValueError(f"parameter %{p.name} has a non-static shape {t}")
        shape = tuple(t.shape)  # type: ignore[arg-type]
        np_dtype = t.dtype.np
        if t.dtype == DType.bool:
            out.append(gen.random(shape) < 0.5)
        elif np.issubdtype(np_dtype, np.integer):
            out.append(gen.integers(-4, 5, shape).astype(np_dtype))
        else:
            out.append(np.asarray(gen.standard_normal(shape)).astype(np_dtype))
    return out


__all__ = ["GraphGenConfig", "random_inputs", "random_module"]
