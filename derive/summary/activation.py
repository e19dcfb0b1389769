"""Collect an activation into plain data: its definition, derivative and properties as text and LaTeX.

The CLI (``derive show ACTIVATION``, ``derive list``) and the pages format what these return.
"""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.runtime.activations import activation
from derive.symbolic.properties import analyse
from derive.textout import interval_text


def rows() -> list[dict]:
    """One dict per activation: properties as strings, plus summary and LaTeX name."""
    out = []
    for name, cls in acts.REGISTRY.items():
        r = analyse(name).row()
        r["range"] = interval_text(analyse(name).range)
        r["gate_ok"] = "yes" if r["gate_ok"] else "no"
        r.update(latex=cls.latex, summary=cls.summary, kind=cls.kind)
        out.append(r)
    return out


def collect(name: str) -> dict:
    """Everything ``derive show ACTIVATION --json`` prints (and a page would format)."""
    a = activation(name)
    cls = a.stanza
    data = {"name": a.name, "summary": cls.summary, "frameworks": cls.names, "notes": cls.notes,
            "kind": cls.kind, "latex_name": cls.latex,
            "parameters": [{"name": p.name, "default": p.default, "latex": p.latex, "learned": p.learned,
                            "doc": p.doc} for p in cls.params],
            "properties": analyse(name).row(), "code": a.code}
    if cls.kind == "elementwise":
        f = cls.symbolic()
        d = sp.diff(f, sp.Symbol("x", real=True))
        names = {p.symbol: p.latex for p in cls.params}  # alpha -> \alpha, negative_slope -> a
        data["definition"] = {"text": sp.sstr(f), "latex": sp.latex(f, symbol_names=names)}
        data["derivative"] = {"text": sp.sstr(d), "latex": sp.latex(d, symbol_names=names)}
        data["properties"]["range"] = interval_text(analyse(name).range)
    else:
        data["definition"] = {"text": cls.display, "latex": cls.display}
        data["reductions"] = [{"claim": c, "verified": ok} for c, ok in analyse(name).reductions]
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
    return "\n".join(lines)
