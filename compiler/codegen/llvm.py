"""The LLVM backend: loop-IR PrimFuncs to native code, JIT-compiled in-process by llvmlite.

    module = compile_funcs([f, g], opt_level=2)
    module.kernel("f")(a, b, n)          # a NativeKernel (compiler.codegen.abi)
    print(module.ir_text)                # the LLVM IR, as `anvil compile --emit llvm` shows it

Each PrimFunc becomes `int32_t name(T0 *buf0, ..., scalar...)` (see `abi.py`), lowered by
`llvm_expr`/`llvm_stmt` to LLVM IR text, optimised with LLVM's new pass manager at the
requested speed level for the host CPU, and finalised by one MCJIT engine per module.
Floating-point contraction and fast-math are off unless `fast_math=True`, so IEEE-exact
operations give the interpreter's bits. Parallel loops run on libgomp's thread pool
(`num_threads=0`: libgomp's default team size). Compiled modules are cached in-process by
the SHA-256 of the printed functions and the options.
"""

from __future__ import annotations

import ctypes.util
import functools
import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence

import llvmlite.binding as llvm

from compiler.codegen.abi import NativeKernel
from compiler.codegen.llvm_stmt import OMP_STATE, THREADS_GLOBAL, ModuleBuilder, lower_func
from compiler.errors import AnvilError, UnsupportedError
from compiler.loop.ir import PrimFunc
from compiler.loop.printer import print_func
from compiler.loop.verifier import verify

CACHE_SIZE = 256
_LIBRARIES = (("m", True), ("gomp", True), ("gcc_s", False))
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_lock = threading.RLock()
_cache: OrderedDict[str, LLVMModule] = OrderedDict()
_ready = False
_omp_state = (ctypes.c_int32 * 2)()  # [libgomp used by this process, run parallel loops serially]


def _after_fork_in_child() -> None:
    # libgomp's worker threads are gone in a forked child, and its pool would hang there.
    _omp_state[1] = 1 if _omp_state[0] or _omp_state[1] else 0


class CodegenError(AnvilError):
    """The LLVM backend cannot run here (a runtime library is missing)."""

    kind = "codegen error"


class LLVMInternalError(RuntimeError):
    """LLVM rejected IR that this backend generated: a bug in Anvil, not a user error."""


def _initialise() -> None:
    """Initialise LLVM's native target and load the runtime libraries kernels call into."""
    global _ready
    with _lock:
        if _ready:
            return
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        # The Python executable may be linked statically, so libm's symbols are not
        # necessarily visible to the JIT: load every library kernels call into.
        for lib, required in _LIBRARIES:
            name = ctypes.util.find_library(lib)
            try:
                if name is None:
                    raise RuntimeError(f"lib{lib} not found")
                llvm.load_library_permanently(name)
            except RuntimeError as err:
                if required:
                    raise CodegenError(f"the LLVM backend needs lib{lib}: {err}") from None
        llvm.add_symbol(OMP_STATE, ctypes.addressof(_omp_state))
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _ready = True


def _target_machine(opt_level: int) -> llvm.TargetMachine:
    """A target machine for the host CPU (a fresh one: an MCJIT engine takes ownership)."""
    _initialise()
    target = llvm.Target.from_triple(llvm.get_process_triple())
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(), features=llvm.get_host_cpu_features().flatten(),
        opt=max(0, min(3, opt_level)), codemodel="jitdefault")


def symbols(funcs: Sequence[PrimFunc]) -> dict[str, str]:
    """The LLVM symbol of each function: its name when that is a plain identifier that no
    loaded library defines (so calls LLVM emits to `memset`, `expf`, ... never reach a
    kernel), else a mangled `anvil_fn<k>_...` name."""
    _initialise()
    out: dict[str, str] = {}
    for k, func in enumerate(funcs):
        if func.name in out:
            raise UnsupportedError(f"two functions named '{func.name}' in one LLVM module")
        name = func.name
        plain = _IDENT.fullmatch(name) and not name.startswith("anvil") \
            and llvm.address_of_symbol(name) is None
        if not plain:
            tail = re.sub(r"[^A-Za-z0-9_]", "_", name)[:40]
            name = f"anvil_fn{k}_{tail}"
        out[func.name] = name
    return out


def emit_llvm_ir(funcs: Sequence[PrimFunc], fast_math: bool = False,
                 num_threads: int = 0) -> str:
    """The (unoptimised) LLVM IR of a module holding `funcs`, for the host target."""
    funcs = list(funcs)
    for func in funcs:
        verify(func)
    if num_threads < 0:
        raise UnsupportedError(f"num_threads must be >= 0, got {num_threads}")
    module = ModuleBuilder(fast_math=fast_math, num_threads=num_threads)
    for func, symbol in zip(funcs, symbols(funcs).values(), strict=True):
        lower_func(module, func, symbol)
    return module.text(llvm.get_process_triple(), _datalayout())


@functools.cache
def _datalayout() -> str:
    with _lock:
        return str(_target_machine(0).target_data)


class LLVMModule:
    """Compiled kernels of one LLVM module, owned by one MCJIT engine."""

    def __init__(self, funcs: Sequence[PrimFunc], ir_text: str, opt_level: int) -> None:
        self.funcs = {f.name: f for f in funcs}
        self.symbols = symbols(list(funcs))
        self.ir_text = ir_text
        self.opt_level = opt_level
        try:
            module = llvm.parse_assembly(ir_text)
            module.verify()
        except RuntimeError as err:
            raise LLVMInternalError(f"LLVM rejected the generated IR: {err}") from err
        if opt_level > 0:
            tm = _target_machine(opt_level)
            pb = llvm.create_pass_builder(tm, llvm.create_pipeline_tuning_options(opt_level))
            pb.getModulePassManager().run(module, pb)
        for fn in module.functions:
            if fn.is_declaration and not fn.name.startswith("llvm.") \
                    and llvm.address_of_symbol(fn.name) is None:
                # MCJIT would silently leave the call unrelocated (and crash later).
                raise LLVMInternalError(f"cannot resolve symbol '{fn.name}' for the JIT")
        self._module = module
        self._engine = llvm.create_mcjit_compiler(module, _target_machine(opt_level))
        self._engine.finalize_object()
        self._kernels: dict[str, NativeKernel] = {}

    @property
    def optimized_ir(self) -> str:
        """The module's LLVM IR after optimisation."""
        return str(self._module)

    @property
    def names(self) -> list[str]:
        return list(self.funcs)

    def kernel(self, name: str) -> NativeKernel:
        """The compiled function `name`, callable with numpy arrays and scalars."""
        if name not in self.funcs:
            raise UnsupportedError(f"no function '{name}' in this LLVM module "
                                   f"(has {', '.join(self.funcs) or 'none'})")
        if name not in self._kernels:
            address = self._engine.get_function_address(self.symbols[name])
            self._kernels[name] = NativeKernel(self.funcs[name], address, keepalive=self)
        return self._kernels[name]

    def threads_seen(self, reset: bool = True) -> int:
        """How many distinct OpenMP threads ran parallel-loop iterations of this module's
        kernels (since the last reset); a runtime query of the parallel runtime."""
        address = self._engine.get_global_value_address(THREADS_GLOBAL)
        cell = ctypes.c_uint64.from_address(address)
        seen = bin(cell.value).count("1")
        if reset:
            cell.value = 0
        return seen


def _key(funcs: Sequence[PrimFunc], opt_level: int, fast_math: bool, num_threads: int) -> str:
    h = hashlib.sha256(f"O{opt_level} fast={fast_math} threads={num_threads}\n".encode())
    for func in funcs:
        h.update(print_func(func).encode())
        h.update(b"\0")
    return h.hexdigest()


def compile_funcs(funcs: Sequence[PrimFunc], opt_level: int = 2, fast_math: bool = False,
                  num_threads: int = 0) -> LLVMModule:
    """Compile `funcs` into one JIT module (cached in-process by content hash).

    `opt_level` 0..3 picks LLVM's pipeline; `fast_math` allows reassociation, contraction
    and the other fast-math flags; `num_threads` caps the team of each parallel loop
    (0: libgomp's default).
    """
    funcs = list(funcs)
    if opt_level not in (0, 1, 2, 3):
        raise UnsupportedError(f"LLVM opt_level must be 0..3, got {opt_level}")
    key = _key(funcs, opt_level, fast_math, num_threads)
    with _lock:
        hit = _cache.get(key)
        if hit is not None:
            _cache.move_to_end(key)
            return hit
        module = LLVMModule(funcs, emit_llvm_ir(funcs, fast_math, num_threads), opt_level)
        _cache[key] = module
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return module
