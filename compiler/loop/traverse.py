"""The one traversal mechanism of the loop IR.

`map_children` is written once, driven by dataclass fields. Everything else is built on it:

- `children(node)`: the direct child nodes, in field order;
- `walk(node)`: a pre-order iterator over every node (binders and buffers included);
- `transform(node, fn)`: memoised post-order rebuild; `fn` returns a replacement or None;
- `rewrite(node, rules)`: bottom-up rewriting to a fixpoint with small named rules,
  counting which rules fired;
- `substitute(node, mapping)`: replace variable uses.

Binder positions (`For.var`, `LetStmt.var`, `Let.var`, scalar `PrimFunc.params`) are marked
in field metadata; pass `binders=False` to leave the variables there untouched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields

from compiler.loop.ir import Node, Var

Rule = Callable[[Node], Node | None]

_FIELDS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, bool], ...]:
    """(name, is_binder) for each constructor field of a node class, cached."""
    cached = _FIELDS.get(cls)
    if cached is None:
        cached = tuple((f.name, bool(f.metadata.get("binder"))) for f in fields(cls) if f.init)
        _FIELDS[cls] = cached
    return cached


def _skip(value: object, binder: bool, binders: bool) -> bool:
    return binder and not binders and isinstance(value, Var)


def map_children(node: Node, fn: Callable[[Node], Node], binders: bool = True) -> Node:
    """Rebuild `node` with `fn` applied to each direct child; returns `node` if none changed."""
    values = []
    changed = False
    for name, binder in _fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            new = value if _skip(value, binder, binders) else fn(value)
        elif type(value) is tuple:
            new = tuple(
                fn(v) if isinstance(v, Node) and not _skip(v, binder, binders) else v
                for v in value
            )
            if all(a is b for a, b in zip(new, value, strict=True)):
                new = value
        else:
            new = value
        changed = changed or new is not value
        values.append(new)
    return type(node)(*values) if changed else node


def children(node: Node, binders: bool = True) -> list[Node]:
    """The direct child nodes of `node`, in field order."""
    out: list[Node] = []
    for name, binder in _fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, Node):
            if not _skip(value, binder, binders):
                out.append(value)
        elif type(value) is tuple:
            out.extend(
                v for v in value if isinstance(v, Node) and not _skip(v, binder, binders)
            )
    return out


def walk(node: Node, binders: bool = True) -> Iterator[Node]:
    """Pre-order iterator over `node` and all its descendants."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(children(n, binders)))


class _Memo:
    """Identity-keyed memo that keeps its keys alive (so ids are never reused)."""

    def __init__(self) -> None:
        self._map: dict[int, tuple[Node, Node]] = {}

    def get(self, node: Node) -> Node | None:
        hit = self._map.get(id(node))
        return hit[1] if hit is not None and hit[0] is node else None

    def put(self, node: Node, result: Node) -> Node:
        self._map[id(node)] = (node, result)
        return result


def transform(node: Node, fn: Callable[[Node], Node | None], binders: bool = True) -> Node:
    """Post-order rebuild: children first, then `fn(rebuilt)`; None keeps the rebuilt node.

    Results are memoised by node identity, so shared subtrees are transformed once.
    """
    memo = _Memo()

    def go(n: Node) -> Node:
        hit = memo.get(n)
        if hit is not None:
            return hit
        rebuilt = map_children(n, go, binders)
        out = fn(rebuilt)
        return memo.put(n, rebuilt if out is None else out)

    return go(node)


class RewriteError(RuntimeError):
    """The rules did not reach a fixpoint (an internal error: some rule cycles)."""


def rewrite(node: Node, rules: Sequence[Rule], fired: Counter[str] | None = None,
            max_steps: int = 100_000, binders: bool = False) -> Node:
    """Rewrite bottom-up to a fixpoint: after a node's children are normalised, the first
    rule that returns a new node replaces it, and the result is normalised again.

    A rule is a small named function from a node to a new node or None. When `fired` is
    given, it counts how many times each rule (by `__name__`) fired. A rule that returns a
    structurally equal node does not count as firing. Rules are not applied to the variables
    in binder positions unless `binders=True`.
    """
    memo = _Memo()
    steps = 0

    def go(n: Node) -> Node:
        nonlocal steps
        hit = memo.get(n)
        if hit is not None:
            return hit
        cur = map_children(n, go, binders)
        for rule in rules:
            new = rule(cur)
            if new is None or new is cur or new == cur:
                continue
            steps += 1
            if steps > max_steps:
                raise RewriteError(f"no fixpoint after {max_steps} rewrites (last rule: "
                                   f"{getattr(rule, '__name__', rule)})")
            if fired is not None:
                fired[getattr(rule, "__name__", repr(rule))] += 1
            cur = go(new)
            break
        return memo.put(n, cur)

    return go(node)


def substitute(node: Node, mapping: dict[Var, Node]) -> Node:
    """Replace uses of the variables in `mapping` (binder positions are left alone)."""
    if not mapping:
        return node
    return transform(node, lambda n: mapping.get(n) if isinstance(n, Var) else None,
                     binders=False)


def first_difference(a: object, b: object, path: str = "") -> str | None:
    """The path of the first structural difference between two nodes, or None if equal."""
    if a == b:
        return None
    if type(a) is not type(b):
        return f"{path or '<root>'}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, Node):
        for name, _ in _fields(type(a)):
            diff = first_difference(getattr(a, name), getattr(b, name), f"{path}.{name}")
            if diff is not None:
                return diff
    elif isinstance(a, tuple) and isinstance(b, tuple):
        if len(a) != len(b):
            return f"{path or '<root>'}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            diff = first_difference(x, y, f"{path}[{i}]")
            if diff is not None:
                return diff
    return f"{path or '<root>'}: {a!r} vs {b!r}"


def assert_structural_equal(a: Node, b: Node) -> None:
    """Raise AssertionError naming the first differing path."""
    diff = first_difference(a, b)
    if diff is not None:
        raise AssertionError(f"structural mismatch at {diff}")
