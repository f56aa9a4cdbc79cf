"""The C backend: loop IR -> C11 (`c_emit.py`) -> gcc -> a shared object loaded with ctypes.

    module = compile_funcs([f, g])          # CModule
    module.kernel("f")(a, b, n)             # NativeKernel (see abi.py)
    print(module.source)                    # or emit_c([f, g]) without compiling

gcc flags: `-O2 -march=native -ffp-contract=off -fno-fast-math -fPIC -shared -fopenmp`, plus
`-std=c11 -fno-strict-aliasing -fno-math-errno` (`-O3` also pins the vectoriser's cost model
to `very-cheap`: gcc 12's other models miscompile masked select loops for AVX-512). The
generated code has no signed overflow (wrapping integer arithmetic is done in unsigned
types), so `-fwrapv` is not needed.
`fast_math=True` swaps the exact float flags for `-ffast-math -ffp-contract=fast`.
Parallel loops are OpenMP `parallel for` loops run by libgomp's thread pool.

Shared objects are cached on disk by the SHA-256 of the source, the flags, the gcc version
and the CPU (because of `-march=native`): `<cache_dir>/<hash>.so`, next to `<hash>.c`.
They are written atomically (compiled to a temporary name, then renamed). Loaded modules
are also memoised in-process. A gcc failure is a bug in Anvil: `CCompileError` names the
first error line and the kept source file.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from compiler.codegen.abi import NativeKernel
from compiler.codegen.c_emit import emit_c, emit_module
from compiler.errors import AnvilError, UnsupportedError
from compiler.loop.ir import PrimFunc

__all__ = ["CCompileError", "CModule", "compile_funcs", "default_cache_dir", "emit_c",
           "gcc_flags"]


class CCompileError(AnvilError):
    """gcc rejected generated C: an internal error of the C backend."""

    kind = "internal error"

    def __init__(self, message: str, source_path: Path | None = None) -> None:
        self.source_path = source_path
        super().__init__(message, where="C backend")


def default_cache_dir() -> Path:
    return Path.home() / ".cache" / "anvil" / "c"


def gcc_flags(opt_level: int = 2, fast_math: bool = False) -> list[str]:
    if opt_level not in (0, 1, 2, 3):
        raise UnsupportedError(f"C backend: opt_level must be 0..3, got {opt_level}")
    exact = ["-ffast-math", "-ffp-contract=fast"] if fast_math else \
        ["-ffp-contract=off", "-fno-fast-math"]
    # gcc 12's -O3 loop vectoriser (its cheap/dynamic cost models) miscompiles short masked
    # select loops for AVX-512 (`x < 0 ? x * s : x` over 5 elements drops lanes); the very
    # cheap model, -O2's default, does not
    vect = ["-fvect-cost-model=very-cheap"] if opt_level == 3 else []
    return [f"-O{opt_level}", *vect, "-march=native", *exact, "-fPIC", "-shared", "-fopenmp",
            "-std=c11", "-fno-strict-aliasing", "-fno-math-errno",
            "-Werror=implicit-function-declaration", "-Werror=int-conversion",
            "-Werror=incompatible-pointer-types"]


@functools.cache
def _toolchain_id() -> str:
    """What else decides the machine code: the gcc version and the CPU's features."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise UnsupportedError("C backend: gcc is not installed (needed for --target c)")
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True).stdout
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name")):
                cpu += line + "\n"
                if line.startswith("flags"):
                    break
    except OSError:
        pass
    return (version.splitlines()[0] if version else "gcc") + "\n" + cpu


def _first_error(stderr: str) -> str:
    lines = stderr.splitlines()
    for line in lines:
        if "error" in line:
            return line.strip()
    return lines[0].strip() if lines else "gcc failed"


def build_shared_object(source: str, flags: Sequence[str], cache_dir: Path) -> Path:
    """Compile `source` to `<cache_dir>/<hash>.so`, unless it is there already."""
    key_text = "\0".join([source, " ".join(flags), _toolchain_id()])
    key = hashlib.sha256(key_text.encode()).hexdigest()[:40]
    so_path = cache_dir / f"{key}.so"
    if so_path.exists():
        return so_path
    cache_dir.mkdir(parents=True, exist_ok=True)
    c_path = cache_dir / f"{key}.c"
    _write_atomic(c_path, source)
    fd, tmp = tempfile.mkstemp(prefix=f"{key}.", suffix=".so.tmp", dir=cache_dir)
    os.close(fd)
    try:
        proc = subprocess.run(["gcc", *flags, "-o", tmp, str(c_path), "-lm"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise CCompileError(f"gcc failed on generated code: {_first_error(proc.stderr)} "
                                f"(source kept at {c_path})", c_path)
        os.replace(tmp, so_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return so_path


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


_LOADED: dict[Path, ctypes.CDLL] = {}


class CModule:
    """Compiled kernels of one C translation unit."""

    def __init__(self, funcs: Sequence[PrimFunc], source: str, symbols: dict[str, str],
                 path: Path, lib: ctypes.CDLL) -> None:
        self.funcs = {f.name: f for f in funcs}
        self.source = source
        self.symbols = symbols
        self.path = path
        self.lib = lib
        self._kernels: dict[str, NativeKernel] = {}

    @property
    def names(self) -> list[str]:
        return list(self.funcs)

    def kernel(self, name: str) -> NativeKernel:
        hit = self._kernels.get(name)
        if hit is None:
            if name not in self.funcs:
                raise UnsupportedError(f"C backend: no kernel named '{name}' in this module "
                                       f"(has {', '.join(self.funcs) or 'none'})")
            address = ctypes.cast(getattr(self.lib, self.symbols[name]), ctypes.c_void_p).value
            hit = NativeKernel(self.funcs[name], address, keepalive=self)
            self._kernels[name] = hit
        return hit


def compile_funcs(funcs: Sequence[PrimFunc] | PrimFunc, opt_level: int = 2,
                  fast_math: bool = False, cache_dir: str | Path | None = None) -> CModule:
    """Compile loop-IR functions with gcc into one shared object and load it."""
    funcs = [funcs] if isinstance(funcs, PrimFunc) else list(funcs)
    source, symbols = emit_module(funcs)
    flags = gcc_flags(opt_level, fast_math)
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = build_shared_object(source, flags, directory)
    lib = _LOADED.get(path)
    if lib is None:
        lib = _LOADED[path] = ctypes.CDLL(str(path))
    return CModule(funcs, source, symbols, path, lib)
