"""Error types. A user's mistake is an AnvilError: one line, no traceback.

Anything else escaping the compiler is a bug in Anvil (and the fuzzer counts it as one).
"""

from __future__ import annotations


class AnvilError(Exception):
    """A clean, user-facing error. `str(err)` is one line naming what and where."""

    kind = "error"

    def __init__(self, message: str, where: str | None = None):
        self.message = " ".join(str(message).split())
        self.where = where
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


class ParseError(AnvilError):
    kind = "parse error"


class ModelError(AnvilError):
    """A malformed or unreadable model."""

    kind = "model error"


class UnsupportedError(AnvilError):
    """An op, attribute, dtype or feature Anvil does not support."""

    kind = "unsupported"


class TypeInferenceError(AnvilError):
    kind = "type error"


class VerifyError(AnvilError):
    kind = "verify error"


class ExecutionError(AnvilError):
    """Bad runtime input (wrong rank, dtype, missing input)."""

    kind = "execution error"
