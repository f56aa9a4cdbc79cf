"""Loop IR: a TIR-like IR of loops over buffers, with its verifier, text form and interpreter.

- `ir`: the nodes (frozen dataclasses with structural equality) and the intrinsic table;
- `build`: small constructors (`cast`, `select`, `call`, `floordiv`, `for_`, `store`, ...);
- `traverse`: `map_children`, `children`, `walk`, `transform`, `rewrite`, `substitute`;
- `printer` / `parser`: the `.lir` text form, `parse(print_func(f)) == f`;
- `verifier`: `verify(func)` raises `VerifyError`;
- `interp`: `run(func, args)`, the semantic reference, raising `UndefinedBehavior`;
- `random_program`: `random_primfunc(rng)`, well-formed and UB-free programs for testing.
"""

from compiler.loop.build import (
    and_,
    buffer,
    call,
    cast,
    eq,
    floordiv,
    floormod,
    for_,
    max_,
    min_,
    ne,
    not_,
    or_,
    reinterpret,
    select,
    seq,
    store,
    truncdiv,
    truncmod,
)
from compiler.loop.interp import AssertFailure, UndefinedBehavior, run
from compiler.loop.ir import (
    FLOAT_DTYPES,
    INT_DTYPES,
    INTRINSICS,
    MINIFLOAT_DTYPES,
    NARROW_INT_DTYPES,
    SCOPES,
    STORAGE_DTYPES,
    SUPPORTED_DTYPES,
    THREAD_TAGS,
    Allocate,
    Assert,
    BinKind,
    BinOp,
    Broadcast,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    Evaluate,
    Expr,
    FloatImm,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    Intrinsic,
    Let,
    LetStmt,
    Node,
    PrimFunc,
    Ramp,
    Reinterpret,
    Select,
    SeqStmt,
    Stmt,
    UnKind,
    UnOp,
    Var,
    as_expr,
    barrier,
    const,
    int_range,
    is_barrier,
    is_float,
    is_int,
    is_storage,
)
from compiler.loop.parser import parse, parse_expr, parse_module
from compiler.loop.printer import print_expr, print_func, print_module, print_node, print_stmt
from compiler.loop.traverse import (
    RewriteError,
    assert_structural_equal,
    children,
    first_difference,
    map_children,
    rewrite,
    substitute,
    transform,
    walk,
)
from compiler.loop.verifier import verify

__all__ = [
    "FLOAT_DTYPES", "INTRINSICS", "INT_DTYPES", "MINIFLOAT_DTYPES", "NARROW_INT_DTYPES",
    "SCOPES", "STORAGE_DTYPES", "SUPPORTED_DTYPES", "THREAD_TAGS", "Allocate", "Assert",
    "AssertFailure", "BinKind", "BinOp", "Broadcast", "Buffer", "BufferLoad", "BufferStore",
    "Call", "Cast", "CmpKind", "CmpOp", "Evaluate", "Expr", "FloatImm", "For", "ForKind",
    "IfThenElse", "IntImm", "Intrinsic", "Let", "LetStmt", "Node", "PrimFunc", "Ramp",
    "Reinterpret", "RewriteError", "Select", "SeqStmt", "Stmt", "UnKind", "UnOp",
    "UndefinedBehavior", "Var", "and_", "as_expr", "assert_structural_equal", "barrier",
    "buffer", "call", "cast", "children", "const", "eq", "first_difference", "floordiv",
    "floormod", "for_", "int_range", "is_barrier", "is_float", "is_int", "is_storage",
    "map_children", "max_", "min_", "ne",
    "not_", "or_", "parse", "parse_expr", "parse_module", "print_expr", "print_func",
    "print_module", "print_node", "print_stmt", "reinterpret", "rewrite", "run", "select",
    "seq", "store", "substitute", "transform", "truncdiv", "truncmod", "verify", "walk",
]
