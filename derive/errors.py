"""The one error type users see: a message with the file, line and column it is about."""

from __future__ import annotations

from dataclasses import dataclass


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
