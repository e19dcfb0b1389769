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


def number_latex(v) -> str:
    """A property's value for a page: exact where it is short (1/2, \\log 2, -e^{-1}, 3/5 for
    tanh(log 2)), seven significant digits where it is a float or a long fraction (SELU's
    -lambda alpha), a terminating decimal for a fraction like 8943/200000, \\infty for oo."""
    v = sp.sympify(v)
    if v in (sp.oo, -sp.oo):
        return r"\infty" if v == sp.oo else r"-\infty"
    if isinstance(v, sp.Float) or (v.is_number and not v.is_Rational and v.atoms(sp.Float)):
        return _float_latex(float(v))
    if v.is_Rational:
        if v.q <= 1000:
            return sp.latex(v)
        return _float_latex(float(v))
    simpler = sp.nsimplify(sp.simplify(v.rewrite(sp.exp)))
    if simpler.is_Rational and simpler.q <= 1000:
        return sp.latex(simpler)
    return sp.latex(v)


def _float_latex(f: float) -> str:
    text = f"{f:.7g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


def set_latex(s) -> str:
    """An interval as LaTeX, (0, \\infty), [-e^{-1}, \\infty); the reals as \\mathbb{R}."""
    if s == sp.S.Reals:
        return r"\mathbb{R}"
    if isinstance(s, sp.Interval):
        return (f"{'(' if s.left_open else '['}{number_latex(s.inf)}, {number_latex(s.sup)}"
                f"{')' if s.right_open else ']'}")
    if isinstance(s, sp.FiniteSet):
        return ", ".join(number_latex(v) for v in s)
    return sp.latex(s)


def smoothness_latex(text: str) -> str:
    """"C^inf" -> C^\\infty, "C^1" -> C^1 (LaTeX), "discontinuous" stays a word."""
    if text.startswith("C^"):
        order = text[2:]
        return "C^\\infty" if order == "inf" else f"C^{{{order}}}" if not order.endswith("+") else f"C^{{{order[:-1]}}}+"
    return ""


def table(header, rows) -> None:
    """Print ``rows`` under ``header`` as left-aligned columns, two spaces apart."""
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  " + "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
