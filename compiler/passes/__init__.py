"""Passes over the graph IR and the loop IR, the pipeline text form and the pass manager.

- `base`: the registry (`loop_pass`, `graph_pass`, `Arg`, `get_pass`, `all_passes`);
- `pipeline`: `parse_pipeline(text)`, `Pipeline`, `PassSpec`, named pipelines `O0`..`O3`;
- `manager`: `PassManager`, `PassFailed`, `applicable`;
- `instruments`: `VerifyEach`, `Timing`, `Dump`, `InterpretEach`;
- `arith`, `simplifier`, `loop_util`: analyses and rewrite rules shared by the loop passes
  (not passes themselves);
- `loop/`, `graph/`: one pass per file, registered under the file's name.
"""

from compiler.passes.base import (
    Arg,
    PassInfo,
    all_passes,
    discover,
    format_pass_list,
    get_pass,
    graph_pass,
    loop_pass,
    pass_names,
)
from compiler.passes.instruments import Dump, InterpretEach, Timing, VerifyEach
from compiler.passes.manager import (
    Instrument,
    InstrumentError,
    PassFailed,
    PassManager,
    applicable,
    run_pipeline,
)
from compiler.passes.pipeline import (
    NAMED_PIPELINES,
    PassSpec,
    Pipeline,
    PipelineError,
    make_spec,
    named_pipeline,
    parse_pipeline,
)

__all__ = [
    "NAMED_PIPELINES", "Arg", "Dump", "Instrument", "InstrumentError", "InterpretEach",
    "PassFailed", "PassInfo", "PassManager", "PassSpec", "Pipeline", "PipelineError", "Timing",
    "VerifyEach", "all_passes", "applicable", "discover", "format_pass_list", "get_pass",
    "graph_pass", "loop_pass", "make_spec", "named_pipeline", "parse_pipeline", "pass_names",
    "run_pipeline",
]
