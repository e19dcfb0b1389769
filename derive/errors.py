"""The one error type users see: a message with the file, line and column it is about; and the
checks of integer arguments that raise it (every layer above uses them)."""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Pos:
    """A place in a source text, 1-based."""

    line: int
    column: int

    def shifted(self, lines: int = 0, columns: int = 0) -> "Pos":
        return Pos(self.line + lines, self.column + columns)


class DeriveError(Exception):
    """A user-facing error: the CLI prints ``str(error)`` on one line and exits 2."""

    def __init__(self, message: str, pos: Pos | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.source = source

    def located(self, source: str | None = None, lines: int = 0, columns: int = 0) -> "DeriveError":
        """The same error moved into an enclosing text (a spec file's equation block)."""
        pos = self.pos.shifted(lines, columns) if self.pos else None
        return DeriveError(self.message, pos, source or self.source)

    def __str__(self) -> str:
        if self.source is None and self.pos is None:
            return f"derive: error: {self.message}"
        where = self.source or "<input>"
        if self.pos:
            where += f":{self.pos.line}:{self.pos.column}"
        return f"{where}: error: {self.message}"


def positive_int(value, what: str) -> int:
    """An integer >= 1 (NumPy integers too; not a bool, not a float)."""
    n = whole(value, what)
    if n < 1:
        raise DeriveError(f"{what} must be a positive integer, got {n}")
    return n


def whole(value, what: str) -> int:
    """An integer (NumPy integers too; not a bool, not a float)."""
    if isinstance(value, (bool, np.bool_)):
        raise DeriveError(f"{what} must be an integer, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise DeriveError(f"{what} must be an integer, got {value!r}") from None
