"""Plain-text formatting shared by the CLI, the benchmarks and the pages: numbers, intervals
and aligned tables. Depends on SymPy only, so every layer may use it."""

from __future__ import annotations

import sympy as sp


def interval_text(s) -> str:
    """(0, 1), [0, oo): interval notation instead of SymPy's constructor."""
    if isinstance(s, sp.Interval):
        def end(v):
            return "oo" if v == sp.oo else "-oo" if v == -sp.oo else short(v)
        return f"{'(' if s.left_open else '['}{end(s.inf)}, {end(s.sup)}{')' if s.right_open else ']'}"
    return "R" if s == sp.S.Reals else sp.sstr(s)


def short(v) -> str:
    if isinstance(v, sp.Float) or (v.is_number and not v.is_Rational and v.atoms(sp.Float)):
        return f"{float(v):.6g}"
    if v.is_Rational and v.q > 1000:
        return f"{float(v):.10g}"
    return sp.sstr(v)


def table(header, rows) -> None:
    """Print ``rows`` under ``header`` as left-aligned columns, two spaces apart."""
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
