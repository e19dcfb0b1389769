"""Long display formulas broken into lines at their top-level terms (review 4.1: formulas that fit the
column). ``aligned_rhs`` returns the right side of an ``aligned`` row with each continuation line as
``\\\\ &\\quad + term``, so a sum of Jacobian products reads one product per line; a term is never cut.
"""

from __future__ import annotations

import re

#: a line of a display formula holds about this many characters of TeX before it is broken (the
#: visible width is about half: commands and braces take characters but no room)
WIDTH = 110

_OPEN, _CLOSE = "{([", "})]"


def terms(tex: str) -> list[tuple[str, str]]:
    """``[(sign, term)]`` at nesting depth 0 (braces, parentheses, brackets, \\left/\\right pairs):
    the first term keeps its own sign inside it ("- a")."""
    out, depth, start, sign = [], 0, 0, ""
    i = 0
    while i < len(tex):
        ch = tex[i]
        if tex.startswith(r"\left", i) or tex.startswith(r"\right", i):
            depth += 1 if tex.startswith(r"\left", i) else -1
            i += 5 if tex.startswith(r"\left", i) else 6
            i += 1 if i < len(tex) and tex[i] == "\\" else 0  # \left\| or \left\{: skip the escaped delimiter
            i += 1
            continue
        if ch == "\\":
            i += 2  # an escaped character (\{, \\, \,) never opens or closes anything
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0 and ch in "+-" and tex[i - 1:i] == " " and tex[i + 1:i + 2] == " ":
            out.append((sign, tex[start:i].strip()))
            sign, start = ch, i + 1
        i += 1
    out.append((sign, tex[start:].strip()))
    return [(s, t) for s, t in out if t]


def aligned_rhs(tex: str, width: int = WIDTH) -> str:
    """The right side of an aligned row, broken before a top-level + or - when a line would pass
    ``width`` characters; unchanged when it fits or has one term."""
    if len(tex) <= width:
        return tex
    parts = terms(tex)
    if len(parts) < 2:
        return tex
    lines, current = [], ""
    for sign, term in parts:
        piece = f"{sign} {term}".strip() if not current else f"{sign} {term}"
        if current and len(current) + len(piece) + 1 > width:
            lines.append(current)
            current = f"{sign} {term}"
        else:
            current = f"{current} {piece}".strip() if current else piece
    lines.append(current)
    return (" \\\\\n&\\quad ").join(lines)


def joined(lines: list[str]) -> list[str]:
    """Read back: each ``lhs = rhs`` with its continuation lines (no ``=``) put back on it."""
    out = []
    for line in lines:
        line = re.sub(r"^&\\quad\s*", "", line.strip())
        if "=" not in line and out:
            out[-1] = f"{out[-1]} {line}"
        elif line:
            out.append(line)
    return out
