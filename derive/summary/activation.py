"""Collect an activation into plain data: its definition, derivative and properties as text and LaTeX.

The CLI (``derive show ACTIVATION``, ``derive list``) and the pages format what these return.
Pages get every value as Markdown with inline math (``md``): intervals, limits and constants
typeset, never SymPy's own spelling (``oo``, ``Interval``, ``exp(-1)``, long fractions).
"""

from __future__ import annotations

import math

import sympy as sp

from derive import activations as acts
from derive.errors import DeriveError
from derive.runtime.activations import activation
from derive.stanza import _x
from derive.symbolic.properties import Properties, analyse
from derive.textout import interval_text, number_latex, set_latex, smoothness_latex


def rows() -> list[dict]:
    """One dict per activation: properties as strings, plus summary and LaTeX name."""
    out = []
    for name, cls in acts.REGISTRY.items():
        p = analyse(name)
        r = p.row()
        r["range"] = interval_text(p.range)
        r["gate_ok"] = "yes" if r["gate_ok"] else "no"
        r.update(latex=cls.latex, summary=cls.summary, kind=cls.kind, md=_markdown(p))
        out.append(r)
    return out


def _markdown(p: Properties) -> dict:
    """The properties a page shows, as Markdown with inline math."""
    def m(v):
        return f"${number_latex(v)}$"
    smooth = smoothness_latex(p.smoothness)
    out = {"range": f"${set_latex(p.range)}$", "smoothness": f"${smooth}$" if smooth else p.smoothness}
    if p.kind != "elementwise":
        return out
    lo, hi = p.limits
    left, right = p.slope_at_0
    out.update({
        "limits": f"{m(lo)}, {m(hi)}", "f(0)": m(p.value_at_0),
        "f'(0)": m(left) if left == right else f"{m(left)} (left) / {m(right)} (right)",
        "minimum": "none attained" if p.minimum is None else _minimum(*p.minimum),
    })
    return out


def _minimum(value, where) -> str:
    if isinstance(where, sp.FiniteSet) and len(where) == 1:
        return f"${number_latex(value)}$ at $x = {number_latex(next(iter(where)))}$"
    return f"${number_latex(value)}$ on ${set_latex(where)}$"


def _relation_latex(c, names) -> str:
    """A piece's condition with x on the left (x \\le m, not m \\ge x)."""
    if isinstance(c, sp.core.relational.Relational) and _x in c.rhs.free_symbols and _x not in c.lhs.free_symbols:
        c = c.reversed
    return sp.latex(c, symbol_names=names)


def formula_latex(expr, names: dict) -> str:
    """LaTeX of a definition or derivative; cases read "value & if x \\le 0"."""
    if not isinstance(expr, sp.Piecewise):
        return sp.latex(expr, symbol_names=names)
    rows = [f"{sp.latex(e, symbol_names=names)} & "
            + (r"\text{otherwise}" if c == sp.true else rf"\text{{if }} {_relation_latex(c, names)}")
            for e, c in expr.args]
    return r"\begin{cases} " + r" \\ ".join(rows) + r" \end{cases}"


def _closed_form(cls) -> sp.Expr:
    """The stanza's definition without cases, checked against the definition at points on both sides."""
    f = cls.closed_form(_x)
    for v in (-3.5, -0.7, -1e-3, 0, 1e-3, 0.7, 3.5):
        a, b = float(f.subs(_x, v)), float(cls.expr(_x).subs(_x, v))
        if not math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15):
            raise DeriveError(f"{cls.__name__}: the closed form {f} differs from the definition at x = {v}")
    return f


def default_text(v) -> str:
    """A parameter's default as people write it: 0.01, 1.0, 1/3 (not 0.3333333333333333)."""
    text = repr(v)
    if isinstance(v, float) and len(text) > 8:
        frac = sp.nsimplify(v, rational=True, tolerance=1e-15)
        if frac.q <= 100 and float(frac) == v:
            return str(frac)
    return text


def collect(name: str) -> dict:
    """Everything ``derive show ACTIVATION --json`` prints (and a page would format)."""
    a = activation(name)
    cls = a.stanza
    p = analyse(name)
    data = {"name": a.name, "summary": cls.summary, "frameworks": cls.names, "notes": cls.notes,
            "kind": cls.kind, "latex_name": cls.latex,
            "parameters": [{"name": prm.name, "default": default_text(prm.default), "latex": prm.latex,
                            "learned": prm.learned, "doc": prm.doc} for prm in cls.params],
            "properties": p.row(), "md": _markdown(p), "code": a.code}
    if cls.kind == "elementwise":
        names = {prm.symbol: prm.latex for prm in cls.params}  # alpha -> \alpha, negative_slope -> a
        if cls.closed_form is not None:
            f = _closed_form(cls)
            d = sp.simplify(sp.diff(f, _x).subs(_x * sp.sign(_x), sp.Abs(_x)))
        else:
            f = cls.symbolic_math()
            d = sp.diff(f, _x)
        data["definition"] = {"text": sp.sstr(f), "latex": formula_latex(f, names)}
        data["derivative"] = {"text": sp.sstr(d), "latex": formula_latex(d, names)}
        data["properties"]["range"] = interval_text(p.range)
        if cls.mathematical is not None:  # the framework's shortcut, apart from the function
            impl = cls.symbolic()
            data["implementation"] = {"text": sp.sstr(impl), "latex": formula_latex(impl, names),
                                      "departs": p.shortcut_text()}
    else:
        data["definition"] = {"text": cls.display, "latex": cls.display}
        data["reductions"] = [{"claim": c, "verified": ok} for c, ok in p.reductions]
    return data


def show_latex(name: str) -> str:
    """``derive show ACTIVATION --latex``: definition and derivative as an align* block."""
    data = collect(name)
    lines = [f"% {name}: {data['summary']}", r"\begin{align*}",
             rf"  f(x) &= {data['definition']['latex']}"]
    if "derivative" in data:
        lines[-1] += r" \\"
        lines.append(rf"  f'(x) &= {data['derivative']['latex']}")
    lines.append(r"\end{align*}")
    if "implementation" in data:
        lines.append(f"% as the framework computes it ({data['implementation']['departs']}):")
        lines.append(rf"% f(x) = {data['implementation']['latex']}")
    return "\n".join(lines)
