"""Free text inside generated Python: it can only ever be text, never code.

A spec's title, its file name and every other string that reaches a generated module is
printed through one of these filters (registered on the Jinja environment as ``docstring``
and ``comment``). A docstring cannot be closed from inside (``"`` next to ``"`` and a
final ``"`` are escaped, so ``\"\"\"`` never appears unescaped), a backslash cannot start
an escape, and a comment cannot end its line: every character that is not printable
(newlines, carriage returns, form feeds, zero-width and bidirectional marks) is written
as its escape (``\\n``, ``\\u200b``).
"""

from __future__ import annotations


def _escaped(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def comment(text) -> str:
    """``text`` on one line of a ``#`` comment: non-printable characters escaped."""
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in str(text))


def docstring(text) -> str:
    """``text`` as the body of a ``\"\"\"`` docstring: its own line breaks kept, every
    other non-printable character escaped, backslashes doubled, and a quote escaped
    wherever it could help close the string."""
    text = str(text)
    out = []
    for k, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"' and (k + 1 == len(text) or text[k + 1] == '"'):
            out.append('\\"')
        elif ch == "\n" or ch.isprintable():
            out.append(ch)
        else:
            out.append(_escaped(ch))
    return "".join(out)
