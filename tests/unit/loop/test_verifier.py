"""Each class of ill-formed loop IR is rejected with a one-line message naming the node."""

from __future__ import annotations

import pytest

from compiler.dtypes import DType
from compiler.errors import VerifyError
from compiler.loop import (
    Allocate,
    BinKind,
    BinOp,
    Buffer,
    BufferLoad,
    BufferStore,
    Call,
    Evaluate,
    FloatImm,
    For,
    ForKind,
    IntImm,
    LetStmt,
    PrimFunc,
    SeqStmt,
    Var,
    buffer,
    parse,
    store,
    verify,
)
from compiler.loop.verifier import is_valid

HEADER = "func @f(A: float32[4], B: int32[4, 4], n: int32, x: float32) {\n"

# (body text, expected message fragment). The parser builds these without type checks.
TEXT_CASES = {
    "binary_dtype_mismatch": ("A[0] = A[1] + 1.0f64", "operands of add have different types"),
    "int_plus_float": ("B[0, 0] = n + 1i64", "int32 vs int64"),
    "compare_mismatch": ("if n < 1.0 {\n}", "operands of lt have different types"),
    "float_index": ("A[1.0] = 0.0", "index must be an integer, not float32"),
    "rank_too_many": ("A[0, 0] = 0.0", "'A' has rank 1 but is indexed with 2 indices"),
    "rank_too_few": ("B[0] = 1", "'B' has rank 2 but is indexed with 1 indices"),
    "store_dtype": ("A[0] = 1", "stored value is int32 but the target is float32"),
    "store_lanes": ("A[ramp(0, 1, 4)] = 1.0", "stored value is float32 but the target is "
                                               "float32x4"),
    "binary_lanes": ("eval ramp(0, 1, 4) + ramp(0, 1, 2)", "int32x4 vs int32x2"),
    "index_lanes": ("eval B[ramp(0, 1, 4), ramp(0, 1, 2)]", "index lanes differ"),
    "if_not_bool": ("if n {\n}", "if condition must be bool, not int32"),
    "assert_not_bool": ('assert x, "m"', "assert condition must be bool"),
    "select_not_bool": ("eval select(n, 1, 2)", "select condition must be bool"),
    "select_arms": ("eval select(true, 1, 2.0)", "select arms have different types"),
    "shadow_loop": ("for i in serial(0, 4) {\n for i in serial(0, 2) {\n }\n}",
                    "'i' is already defined"),
    "let_rebinds_loop_var": ("for i in serial(0, 4) {\n let i = 3 {\n }\n}",
                             "'i' is already defined"),
    "let_shadows_param": ("let n = 1 {\n}", "'n' is already defined"),
    "alloc_shadows_param": ("alloc A: local float32[2] {\n}", "'A' is already defined"),
    "loop_var_float": ("for i: float32 in serial(0.0, 4.0) {\n}",
                       "loop variable must be a scalar integer"),
    "loop_bound_dtype": ("for i in serial(0, 4i64) {\n}", "loop bound is int64"),
    "vectorized_dynamic": ("for i in vectorized(0, n) {\n}", "vectorized loop needs a positive"),
    "bad_thread_tag": ("for t in threadIdx.w(0, 4) {\n}", "invalid thread tag 'threadIdx.w'"),
    "thread_tag_nested_twice": (
        "for t in threadIdx.x(0, 4) {\n for u in threadIdx.x(0, 2) {\n }\n}",
        "thread tag 'threadIdx.x' is already bound"),
    "thread_loop_min": ("for t in blockIdx.y(1, 4) {\n}", "thread-bound loop must start at 0"),
    "int_div": ("eval n / 2", "div does not accept int32 operands"),
    "float_floordiv": ("eval x // 2.0", "floordiv does not accept float32"),
    "float_shift": ("eval x << 1.0", "shl does not accept float32"),
    "int_logical_and": ("eval n && n", "and does not accept int32"),
    "bool_add": ("eval true + false", "add does not accept bool"),
    "bool_less": ("eval true < false", "lt does not accept bool"),
    "not_int": ("eval !n", "not does not accept a int32"),
    "bitnot_float": ("eval ~x", "bitnot does not accept a float32"),
    "intrinsic_operand": ("eval exp(n)", "exp does not accept int32 arguments"),
    "intrinsic_args_differ": ("eval pow(x, 2.0f64)", "arguments of pow have different types"),
    "int_literal_range": ("eval 300i8", "300 is not a value of int8"),
    "unsigned_negative": ("eval -1u8", "-1 is not a value of uint8"),
    "unknown_scope": ('alloc T: "texture" float32[2] {\n}', "unknown memory scope 'texture'"),
    "local_dynamic_shape": ("alloc T: local float32[n] {\n}", "needs a constant shape"),
    "negative_dim": ("alloc T: global float32[-1] {\n}", "negative dimension -1"),
    "dim_not_int": ("alloc T: global float32[2.0] {\n}", "dimension must be an integer"),
    "ramp_one_lane": ("eval ramp(0, 1, 1)", "ramp needs at least 2 lanes"),
    "ramp_float": ("eval ramp(0.0, 1.0, 4)", "ramp base must be an integer"),
    "broadcast_vector": ("eval broadcast(ramp(0, 1, 2), 2)", "broadcast value must be a scalar"),
    "let_type": ("let y: int64 = 1 {\n}", "variable and value have different types"),
    "barrier_as_value": ("A[0] = float32(barrier())", "barrier() has no value"),
    "barrier_in_let": ("let y = barrier() {\n}", "barrier() has no value"),
    "barrier_in_select": ("eval select(n > 0, barrier(), 0)", "barrier() has no value"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
def test_ill_formed_text_is_rejected(case):
    body, fragment = TEXT_CASES[case]
    func = parse(HEADER + body + "\n}\n")
    with pytest.raises(VerifyError) as err:
        verify(func)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("@f: ")
    assert fragment in message
    assert message.endswith("`")  # names the offending node


def test_well_formed_program_passes():
    func = parse(HEADER + """
for i in serial(0, 4) {
  let y = A[i] * x {
    A[i] = select(y > 0.0, y, -y)
  }
  for t in threadIdx.x(0, 4) {
    B[i, t] = (i * 4 + t) % n << 1
  }
}
alloc T: shared float32[4] {
  T[ramp(0, 1, 4)] = exp(A[ramp(0, 1, 4)])
  eval barrier()
  A[0] = T[3]
}
assert n > 0, "positive"
""" + "}\n")
    verify(func)
    assert is_valid(func)


def _func(body, params=()):
    return PrimFunc("f", tuple(params), body)


A = buffer("A", DType.float32, [4])
i = Var("i")


def test_variable_out_of_scope():
    loop = For(i, IntImm(0), IntImm(4), ForKind.serial, Evaluate(i))
    with pytest.raises(VerifyError, match="variable 'i' is used out of scope: `i`"):
        verify(_func(SeqStmt((loop, store(A, 0.0, i))), [A]))


def test_variable_used_with_other_dtype():
    loop = For(i, IntImm(0), IntImm(4), ForKind.serial, Evaluate(Var("i", DType.int64)))
    with pytest.raises(VerifyError, match="'i' is used as int64 but defined as int32"):
        verify(_func(loop, [A]))


def test_undefined_buffer():
    other = buffer("Z", DType.float32, [4])
    with pytest.raises(VerifyError, match="undefined buffer 'Z'"):
        verify(_func(store(other, 1.0, 0), [A]))


def test_buffer_used_after_its_allocation_ends():
    t = buffer("T", DType.float32, [2], "local")
    body = SeqStmt((Allocate(t, store(t, 1.0, 0)), store(A, t[0], 0)))
    with pytest.raises(VerifyError, match="undefined buffer 'T'"):
        verify(_func(body, [A]))


def test_buffer_reference_must_match_definition():
    wrong = buffer("A", DType.float32, [8])
    with pytest.raises(VerifyError, match="buffer 'A' does not match its definition"):
        verify(_func(store(A, BufferLoad(wrong, (IntImm(0),)), 0), [A]))


def test_variable_is_not_a_buffer():
    n = Var("n")
    fake = buffer("n", DType.int32, [1])
    with pytest.raises(VerifyError, match="'n' is a variable, not a buffer"):
        verify(_func(Evaluate(fake[0]), [n]))
    loop = For(i, IntImm(0), IntImm(4), ForKind.serial,
               store(buffer("i", DType.int32, [1]), 1, 0))
    with pytest.raises(VerifyError, match="'i' is a variable, not a buffer"):
        verify(_func(loop, [A]))


def test_loop_var_may_not_be_rebound_by_a_let():
    body = For(i, IntImm(0), IntImm(4), ForKind.serial, LetStmt(i, IntImm(1), Evaluate(i)))
    with pytest.raises(VerifyError, match="'i' is already defined"):
        verify(_func(body, [A]))


def test_sibling_scopes_may_reuse_names():
    loop = For(i, IntImm(0), IntImm(4), ForKind.serial, store(A, 0.0, i))
    verify(_func(SeqStmt((loop, loop)), [A]))


def test_non_thread_loop_with_tag():
    loop = For(i, IntImm(0), IntImm(4), ForKind.serial, Evaluate(i), "threadIdx.x")
    with pytest.raises(VerifyError, match="serial loop must not carry thread tag"):
        verify(_func(loop, [A]))


def test_thread_binding_without_tag():
    loop = For(i, IntImm(0), IntImm(4), ForKind.thread_binding, Evaluate(i))
    with pytest.raises(VerifyError, match="invalid thread tag None"):
        verify(_func(loop, [A]))


def test_field_of_the_wrong_kind():
    bad = For(i, IntImm(0), IntImm(4), ForKind.serial, i)  # an expression as a body
    with pytest.raises(VerifyError, match="For.body must be Stmt, not Var"):
        verify(_func(bad, [A]))


def test_unknown_intrinsic_arity_and_result():
    x = FloatImm(1.0)
    for call, fragment in (
        (Call("sigmoid", (x,), DType.float32), "unknown intrinsic 'sigmoid'"),
        (Call("exp", (x, x), DType.float32), "exp takes 1 arguments, got 2"),
        (Call("exp", (x,), DType.float64), "exp returns float32, not float64"),
        (Call("isnan", (x,), DType.float32), "isnan returns bool, not float32"),
        (Call("barrier", (x,), DType.int32), "barrier takes 0 arguments, got 1"),
        (Call("barrier", (), DType.int64), "barrier is typed int32, not int64"),
    ):
        with pytest.raises(VerifyError, match=fragment):
            verify(_func(Evaluate(call), [A]))


def test_float_literal_must_be_exact_in_its_dtype():
    with pytest.raises(VerifyError, match="0.1 is not exactly a float32 value"):
        verify(_func(store(A, FloatImm(0.1, DType.float32), 0), [A]))
    with pytest.raises(VerifyError, match="float literal of non-float dtype int32"):
        verify(_func(Evaluate(FloatImm(1.0, DType.int32)), [A]))


def test_unsupported_dtype():
    q = buffer("Q", DType.complex64, [4])
    with pytest.raises(VerifyError, match="dtype complex64 is not supported"):
        verify(_func(Evaluate(IntImm(0)), [q]))


def test_parameters():
    with pytest.raises(VerifyError, match="duplicate parameter name 'A'"):
        verify(_func(Evaluate(IntImm(0)), [A, Var("A")]))
    shared = Buffer("S", DType.float32, (IntImm(4),), "shared")
    with pytest.raises(VerifyError, match="parameter buffer 'S' must be global"):
        verify(_func(Evaluate(IntImm(0)), [shared]))
    dyn = Buffer("D", DType.float32, (Var("m"),))
    with pytest.raises(VerifyError, match="variable 'm' is used out of scope"):
        verify(_func(Evaluate(IntImm(0)), [dyn]))
    verify(_func(Evaluate(IntImm(0)), [dyn, Var("m")]))  # declared after use: still fine


def test_store_through_ill_typed_binop_names_the_node():
    bad = BinOp(BinKind.add, FloatImm(1.0), IntImm(1))
    with pytest.raises(VerifyError) as err:
        verify(_func(BufferStore(A, bad, (IntImm(0),)), [A]))
    assert str(err.value) == ("@f: operands of add have different types (float32 vs int32): "
                              "`1.0 + 1`")


def test_not_a_primfunc():
    with pytest.raises(VerifyError, match="expected a PrimFunc"):
        verify(Evaluate(IntImm(0)))  # type: ignore[arg-type]
