"""The loop-IR parser: what the syntax means, and errors that name line and column."""

from __future__ import annotations

import math

import pytest

from compiler.dtypes import DType
from compiler.errors import ParseError
from compiler.loop import (
    Allocate,
    Assert,
    BinKind,
    BinOp,
    Buffer,
    Call,
    Cast,
    CmpKind,
    CmpOp,
    FloatImm,
    For,
    ForKind,
    IfThenElse,
    IntImm,
    LetStmt,
    SeqStmt,
    UnKind,
    UnOp,
    Var,
    barrier,
    is_barrier,
    parse,
    parse_expr,
    parse_module,
    print_func,
)

x, y, z = Var("x"), Var("y"), Var("z")


def expr(text: str, *names):
    return parse_expr(text, names or (x, y, z))


def test_precedence_and_associativity():
    assert expr("x + y * z") == BinOp(BinKind.add, x, BinOp(BinKind.mul, y, z))
    assert expr("x - y - z") == BinOp(BinKind.sub, BinOp(BinKind.sub, x, y), z)
    assert expr("x - (y - z)") == BinOp(BinKind.sub, x, BinOp(BinKind.sub, y, z))
    assert expr("x < y == y < z") == CmpOp(CmpKind.eq, CmpOp(CmpKind.lt, x, y),
                                           CmpOp(CmpKind.lt, y, z))
    assert expr("x << 1 + y") == BinOp(BinKind.shl, x, BinOp(BinKind.add, IntImm(1), y))
    assert expr("x & y | z ^ x") == BinOp(BinKind.bitor, BinOp(BinKind.bitand, x, y),
                                          BinOp(BinKind.bitxor, z, x))
    assert expr("x // y % z") == BinOp(BinKind.floormod, BinOp(BinKind.floordiv, x, y), z)
    assert expr("-x * y") == BinOp(BinKind.mul, UnOp(UnKind.neg, x), y)


def test_negative_literals_versus_negation():
    assert expr("-1") == IntImm(-1)
    assert expr("- 1") == UnOp(UnKind.neg, IntImm(1))
    assert expr("-(1)") == UnOp(UnKind.neg, IntImm(1))
    assert expr("x -1") == BinOp(BinKind.sub, x, IntImm(1))
    assert expr("x - -1") == BinOp(BinKind.sub, x, IntImm(-1))
    assert expr("-0.0") == FloatImm(-0.0)
    assert expr("-inff64") == FloatImm(-math.inf, DType.float64)


def test_literal_suffixes():
    assert expr("7") == IntImm(7, DType.int32)
    assert expr("7i64") == IntImm(7, DType.int64)
    assert expr("255u8") == IntImm(255, DType.uint8)
    assert expr("2.5") == FloatImm(2.5, DType.float32)
    assert expr("2.5f64") == FloatImm(2.5, DType.float64)
    assert expr("1e-3f16") == FloatImm(float(__import__("numpy").float16(1e-3)), DType.float16)
    assert expr("nanbf16") == FloatImm(math.nan, DType.bfloat16)
    assert expr("true") == IntImm(1, DType.bool)
    assert expr("0.1") == FloatImm(0.10000000149011612)  # rounded to float32 once


def test_calls_casts_and_quoted_names():
    weird = Var("my var", DType.float32)
    assert expr('exp("my var")', weird).dtype is DType.float32
    assert expr("isnan(x)", Var("x", DType.float16)).dtype is DType.bool
    assert expr("int64(x)") == Cast(DType.int64, x)
    assert expr("truncdiv(x, y)") == BinOp(BinKind.truncdiv, x, y)


def test_statements_and_scopes():
    f = parse("""
# pipeline: none
# seed: 7
func @"my func"(A: float32[n, 4], n: int32) attrs {"a key" = "v", k = -3, b = true} {
  for i: int64 in parallel(0i64, 4i64) {
    let v = A[0, 0] {
      assert v == v, "not nan"
    }
  }
  alloc T: shared int8[2] {
    T[0] = 1i8
  }
  if n > 0 {
    seq {
      A[0, 0] = 1.0
    }
  } else {
  }
  for t in threadIdx.y(0, 2) {
    A[t, 0] = 0.0
  }
}
""")
    assert f.name == "my func"
    assert f.params[0] == Buffer("A", DType.float32, (Var("n"), IntImm(4)))
    assert dict(f.attrs) == {"a key": "v", "k": -3, "b": True}
    loop, alloc, branch, thread = f.body.stmts
    assert isinstance(loop, For) and loop.kind is ForKind.parallel
    assert loop.var == Var("i", DType.int64)
    assert isinstance(loop.body, LetStmt) and isinstance(loop.body.body, Assert)
    assert isinstance(alloc, Allocate) and alloc.buffer.scope == "shared"
    assert isinstance(branch, IfThenElse) and branch.else_ == SeqStmt(())
    assert branch.then == SeqStmt((branch.then.stmts[0],))
    assert thread.kind is ForKind.thread_binding and thread.thread == "threadIdx.y"


def test_barrier_statement_round_trips():
    text = ("func @f(A: float32[4]) {\n  for t in threadIdx.x(0, 4) {\n    A[t] = 1.0\n"
            "    eval barrier()\n  }\n}\n")
    f = parse(text)
    bar = f.body.body.stmts[1]
    assert bar == barrier() and is_barrier(bar)
    assert bar.value == Call("barrier", (), DType.int32)
    assert print_func(f) == text
    assert parse(print_func(f)) == f


def test_module_of_several_functions():
    funcs = parse_module("func @a() {\n}\nfunc @b() {\n}\n")
    assert [f.name for f in funcs] == ["a", "b"]
    with pytest.raises(ParseError, match="expected exactly one function, found 2"):
        parse("func @a() {\n}\nfunc @b() {\n}\n")


ERRORS = [
    ("func @f() {\n  A[0] = 1\n}\n", "2:3: undefined name 'A'"),
    ("func @f(A: float32[4]) {\n  A[0] = 1 +\n}\n", "3:1: expected an expression, found '}'"),
    ("func @f() {\n  for i in serial(0, 4 {\n  }\n}\n", "2:24: expected ')'"),
    ("func @f() {\n  eval 1q8\n}\n", "2:8: unknown literal suffix 'q8'"),
    ("func @f() {\n  eval 1.5i32\n}\n", "2:8: '1.5i32' is not an integer"),
    ("func @f() {\n  eval $\n}\n", "2:8: unexpected character '$'"),
    ("func @f() {\n  eval sigmoid(1.0)\n}\n", "2:8: unknown function 'sigmoid'"),
    ("func @f() {\n  eval exp(1.0, 2.0)\n}\n", "2:8: 'exp' takes 1 argument, got 2"),
    ("func @f() {\n  eval barrier(1)\n}\n", "2:8: 'barrier' takes 0 arguments, got 1"),
    ("func @f(n: int32) {\n  n[0] = 1\n}\n", "2:3: 'n' is a variable, not a buffer"),
    ("func @f(A: float33[4]) {\n}\n", "1:12: expected a type, found 'float33'"),
    ("func @f() {\n  assert true, nope\n}\n", "2:16: expected a message string"),
    ("func @f() {\n  eval ramp(0, 1, x)\n}\n", "2:19: expected an integer, found 'x'"),
    ("func @f() {\n", "2:1: expected '}', found end of input"),
    ("fun @f() {}", "1:1: expected 'func', found 'fun'"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_line_and_column(text, message):
    with pytest.raises(ParseError) as err:
        parse(text)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_error_with_source_name():
    with pytest.raises(ParseError, match=r"^kernel.lir:1:1: "):
        parse("}", source="kernel.lir")
