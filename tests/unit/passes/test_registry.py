"""The registry: one pass per file, named after it, documented, level-aware."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import compiler.passes.graph as graph_pkg
import compiler.passes.loop as loop_pkg
from compiler.passes import Arg, all_passes, format_pass_list, get_pass, loop_pass, pass_names
from compiler.passes.pipeline import NAMED_PIPELINES, parse_pipeline

MODULES = [(level, m.name) for level, pkg in (("loop", loop_pkg), ("graph", graph_pkg))
           for m in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name)]


def test_at_least_thirty_loop_passes() -> None:
    assert len(pass_names("loop")) >= 30


def test_at_least_ten_graph_passes() -> None:
    assert len(pass_names("graph")) >= 10


@pytest.mark.parametrize("level,module", MODULES, ids=[f"{lv}.{m}" for lv, m in MODULES])
def test_one_pass_per_file_named_after_it(level: str, module: str) -> None:
    mod = importlib.import_module(f"compiler.passes.{level}.{module}")
    assert mod.__doc__ and mod.__doc__.startswith(f"{module}:"), "module docstring"
    info = get_pass(module, level)
    assert info is not None and info.level == level and info.module == mod.__name__
    assert [p.name for p in all_passes() if p.module == mod.__name__] == [module]
    assert info.doc and "\n" not in info.doc and len(info.doc) <= 100


def test_brief_coverage() -> None:
    wanted = {"simplify", "const_fold", "remove_noop", "unroll", "vectorize", "loop_partition",
              "split", "tile", "reorder", "fuse", "parallelize", "licm", "hoist_if", "cse",
              "inline_let", "storage_rewrite", "flatten_buffer", "compact_alloc",
              "dead_store_elim", "narrow_index", "lower_intrinsics", "bound_check",
              "unsafe_select", "thread_bind", "sync_insert"}
    assert wanted <= set(pass_names("loop"))


def test_graph_brief_coverage() -> None:
    wanted = {"fold_constant", "dce", "cse", "simplify", "fold_batchnorm", "fold_scale",
              "canonicalize", "fuse_ops", "layout", "remove_identity", "bind_shapes"}
    assert wanted <= set(pass_names("graph"))


def test_names_repeat_across_levels_and_the_level_picks() -> None:
    both = set(pass_names("graph")) & set(pass_names("loop"))
    assert {"simplify", "cse", "dce"} <= both
    assert parse_pipeline("simplify,cse", "graph").passes[0].info.level == "graph"
    assert parse_pipeline("simplify,cse", "loop").passes[0].info.level == "loop"


def test_named_pipelines_of_both_levels() -> None:
    for level in ("graph", "loop"):
        assert set(NAMED_PIPELINES[level]) == {"O0", "O1", "O2", "O3"}
        assert parse_pipeline("O0", level).names() == []
        sizes = [len(parse_pipeline(f"O{n}", level)) for n in range(4)]
        assert sizes == sorted(sizes) and sizes[3] > 0


def test_listing_has_one_line_per_pass() -> None:
    text = format_pass_list("loop")
    lines = text.splitlines()
    assert len(lines) == len(pass_names("loop"))
    assert any(line.split()[1] == "unroll{max_extent=8," for line in lines)
    assert all(line.startswith("loop ") for line in lines)


def test_decorator_rejects_misplaced_passes() -> None:
    with pytest.raises(ValueError, match="must live in compiler.passes.loop"):
        loop_pass("A pass in the wrong place.")(lambda func: func)
    with pytest.raises(ValueError, match="one non-empty line"):
        loop_pass("two\nlines")
    with pytest.raises(TypeError, match="bad default"):
        Arg("width", int, "eight")
