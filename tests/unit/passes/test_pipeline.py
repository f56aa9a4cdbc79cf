"""Pipeline text: parse, print, round-trip, and one-line errors with columns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler.errors import AnvilError
from compiler.passes import (
    NAMED_PIPELINES,
    Pipeline,
    PipelineError,
    all_passes,
    make_spec,
    named_pipeline,
    parse_pipeline,
)


def test_parse_and_print() -> None:
    p = parse_pipeline("simplify,unroll{max_extent=4},vectorize{width=8}")
    assert p.names() == ["simplify", "unroll", "vectorize"]
    assert p.passes[1].arg_dict() == {"max_extent": 4, "innermost": True}
    # arguments equal to their defaults are not printed
    assert str(p) == "simplify,unroll{max_extent=4},vectorize"


def test_whitespace_and_empty() -> None:
    assert parse_pipeline("  simplify ,  unroll { max_extent = 2 , innermost=false }  ") == \
        parse_pipeline("simplify,unroll{max_extent=2,innermost=false}")
    assert parse_pipeline("") == Pipeline()
    assert parse_pipeline("   ") == Pipeline()
    assert str(Pipeline()) == ""
    assert parse_pipeline("unroll{}") == parse_pipeline("unroll")


def test_string_arguments() -> None:
    p = parse_pipeline('reorder{order="j,i"},split{var=i_o}')
    assert p.passes[0].arg_dict()["order"] == "j,i"
    assert p.passes[1].arg_dict()["var"] == "i_o"
    assert str(p) == 'reorder{order="j,i"},split{var=i_o}'
    assert parse_pipeline(str(p)) == p


def test_named_pipelines_expand() -> None:
    assert named_pipeline("O0") == Pipeline()
    assert named_pipeline(3) == parse_pipeline(NAMED_PIPELINES["loop"]["O3"])
    assert parse_pipeline("O1,unroll").names() == [*named_pipeline("O1").names(), "unroll"]
    assert len(named_pipeline("O1")) < len(named_pipeline("O2")) < len(named_pipeline("O3"))
    with pytest.raises(PipelineError, match="no named pipeline 'O9'"):
        named_pipeline("O9")


def test_every_registered_pass_round_trips_with_defaults() -> None:
    for info in all_passes("loop"):
        p = parse_pipeline(info.name)
        assert parse_pipeline(str(p)) == p
        assert p.passes[0].arg_dict() == info.defaults()


def _spec_text() -> st.SearchStrategy[str]:
    def one(info):  # type: ignore[no-untyped-def]
        parts = {}
        for a in info.args:
            if a.choices is not None:
                parts[a.name] = st.sampled_from(a.choices)
            elif a.type is bool:
                parts[a.name] = st.booleans()
            elif a.type is int:
                parts[a.name] = st.integers(int(a.low or 0), 1000)
            elif a.type is str:
                parts[a.name] = st.text("abcij_,. x\"", max_size=6)
        return st.fixed_dictionaries({}, optional=parts).map(
            lambda kw, n=info.name: make_spec(n, **kw))

    return st.one_of([one(i) for i in all_passes("loop")])


@settings(max_examples=150, deadline=None)
@given(st.lists(_spec_text(), max_size=6))
def test_round_trip_property(specs) -> None:  # type: ignore[no-untyped-def]
    p = Pipeline(tuple(specs))
    text = str(p)
    assert parse_pipeline(text) == p
    assert str(parse_pipeline(text)) == text


@pytest.mark.parametrize("text, message", [
    ("unrol", "unknown pass 'unrol' (did you mean 'unroll'?) at column 1"),
    ("simplify,vectorise", "unknown pass 'vectorise' (did you mean 'vectorize'?) at column 10"),
    ("simplify,,unroll", "expected a pass name, got ',' at column 10"),
    ("simplify,", "expected a pass name, got end of text at column 10"),
    ("unroll{max_extnt=4}", "pass 'unroll' has no argument 'max_extnt' (did you mean "
     "'max_extent'?); its arguments are max_extent, innermost at column 8"),
    ("simplify{x=1}", "pass 'simplify' takes no arguments, got 'x' at column 10"),
    ("unroll{max_extent=abc}", "argument 'max_extent' of pass 'unroll' expects int, got 'abc' "
                               "at column 19"),
    ("unroll{max_extent=-1}", "argument 'max_extent' of pass 'unroll' must be at least 0"),
    ("unroll{innermost=1}", "argument 'innermost' of pass 'unroll' expects bool, got '1'"),
    ("narrow_index{bits=12}", "argument 'bits' of pass 'narrow_index' must be one of 8, 16"),
    ("unroll{max_extent=4", "expected ',' or '}', got end of text at column 20"),
    ("unroll{max_extent=4 innermost=true}", "expected ',' or '}', got 'i' at column 21"),
    ("unroll{max_extent 4}", "expected '=', got '4' at column 19"),
    ("unroll{max_extent=4,max_extent=5}", "argument 'max_extent' of pass 'unroll' is given"),
    ("unroll max_extent", "expected ',', got 'm' at column 8"),
    ('reorder{order="j}', "unterminated or malformed string at column 15"),
    ("O2{x=1}", "named pipeline 'O2' takes no arguments"),
])
def test_errors_are_one_clean_line(text: str, message: str) -> None:
    with pytest.raises(PipelineError) as info:
        parse_pipeline(text)
    err = info.value
    assert isinstance(err, AnvilError)
    assert "\n" not in str(err)
    assert message in str(err)


def test_make_spec_checks_like_text() -> None:
    assert make_spec("unroll", max_extent=3) == parse_pipeline("unroll{max_extent=3}").passes[0]
    with pytest.raises(PipelineError, match="did you mean 'unroll'"):
        make_spec("unrolll")
    with pytest.raises(PipelineError, match="expects int, got str"):
        make_spec("unroll", max_extent="3")


def test_level_check() -> None:
    p = parse_pipeline("simplify,unroll")
    assert p.check_levels("loop") == "loop"
    with pytest.raises(PipelineError, match="pass 'simplify' .#1. works on loop IR, but "
                                            "receives graph IR"):
        p.check_levels("graph")
