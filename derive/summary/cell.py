"""Collect a derivation into plain data: every formula as terminal text and as LaTeX.

``collect`` is a pure function of the derivation; the CLI and the page templates only
format what it returns (collect, then render).
"""

from __future__ import annotations

import sympy as sp

from derive.symbolic import counts, ir
from derive.symbolic import printing as pr
from derive.symbolic.bptt import Derivation
from derive.syntax.formulas import MAX_CHARS


def _both(text: str, latex: str) -> dict:
    return {"text": text, "latex": latex}


def _lhs(sym) -> dict:
    return _both(pr.symbol_text(sym), pr.symbol_latex(sym))


def _transpose(arg, latex: bool) -> str:
    s = pr.latex(arg) if latex else pr.text(arg)
    if not isinstance(arg, sp.Symbol):
        s = rf"\left({s}\right)" if latex else f"({s})"
    return s + (r"^\top" if latex else "^T")


def _grad_term(g, arg, latex: bool) -> str:
    body = pr.latex(g) if latex else pr.text(g)
    if arg is None:
        return body
    if isinstance(g, (sp.Mul, sp.Add)):
        body = rf"\left({body}\right)" if latex else f"({body})"
    return f"{body} {_transpose(arg, latex)}"


#: the 0/1 pattern of a block-triangular matrix of a clock (``symbolic.clock``) in gradients
MASK_TEXT, MASK_LATEX = "M", r"\mathbb{M}"


def _dims(shape) -> str:
    return " x ".join(str(d) for d in shape)


def collect(d: Derivation) -> dict:
    """Everything ``derive show`` prints, as a JSON-ready dict."""
    cell = d.cell
    out_text, out_latex = pr.symbol_text(cell.output), pr.symbol_latex(cell.output)
    data = {
        "name": cell.name,
        "title": cell.title,
        "source": cell.source,
        "summary": cell.meta.get("summary", ""),
        "references": cell.meta.get("references", []),
        "input": _lhs(cell.input),
        "states": [_lhs(s) for s in cell.states],
        "output": _lhs(cell.output),
        "gates": cell.gates,
        "conventions": {k: v for k, v in cell.conventions.items() if v},
        "equations": cell.equations,
        "forward": [{"lhs": _lhs(a.target), "rhs": _both(pr.text(a.rhs), pr.latex(a.rhs)),
                     "introduced": a.aux} for a in cell.assignments],
        "shapes": [{"name": _both(pr.symbol_text(p.symbol), pr.symbol_latex(p.symbol)),
                    "shape": _dims(p.shape) + (", block-upper-triangular" if cell.clock and p.key in cell.clock.masked
                                               else "")} for p in cell.params.values()],
        "dy": _both(f"{pr.symbol_text(d.dy)} = dL/d{out_text}",
                    rf"{pr.symbol_latex(d.dy)} = \partial L / \partial {out_latex}"),
        "adjoints": [{"lhs": _lhs(ir.adjoint(a.target)),
                      "rhs": _both(pr.terms_text(a.terms), pr.terms_latex(a.terms))}
                     for a in d.adjoints],
        "input_gradient": {"lhs": _lhs(ir.adjoint(cell.input)),
                           "rhs": _both(pr.terms_text(d.input_grad.terms),
                                        pr.terms_latex(d.input_grad.terms))},
        "initial_states": [],
        "parameters": [],
        "jacobian": [],
        "counts": [],
        "warnings": cell.warnings,
        "clock": None if cell.clock is None else {
            "modules": cell.clock.modules, "periods": list(cell.clock.periods),
            "mask": _lhs(cell.clock.mask), "block_triangular": [
                _both(pr.symbol_text(cell.params[k].symbol), pr.symbol_latex(cell.params[k].symbol))
                for k in cell.clock.masked],
            "text": cell.clock.describe(), "pattern": _both(MASK_TEXT, MASK_LATEX)},
        "doubled_biases": [pr.symbol_text(cell.params[k].symbol) for k in counts.doubled_biases(cell)],
    }
    for key, carry in d.carries.items():  # d s_0 is the carry out of step 1
        s0 = ir.adjoint(carry.target)
        data["initial_states"].append({
            "lhs": _both(pr.symbol_text(s0, origin=1), pr.symbol_latex(s0, origin=1)),
            "rhs": _both(pr.terms_text(carry.terms, origin=1), pr.terms_latex(carry.terms, origin=1)),
        })
    for g in d.params:
        p = g.param
        name = _both(pr.symbol_text(p.symbol), pr.symbol_latex(p.symbol))
        text = " + ".join(_grad_term(t, a, False) for t, a in g.terms) or "0"
        latex = " + ".join(_grad_term(t, a, True) for t, a in g.terms) or "0"
        rhs = _both(f"sum_t {text}" if len(g.terms) < 2 else f"sum_t [{text}]",
                    rf"\sum_t {latex}" if len(g.terms) < 2 else rf"\sum_t \left[{latex}\right]")
        masked = cell.clock is not None and p.key in cell.clock.masked
        if masked:  # block-triangular: only the free entries are parameters
            rhs = _both(f"{MASK_TEXT} (.) {rhs['text']}", rf"{MASK_LATEX} \odot {rhs['latex']}")
        data["parameters"].append({
            "name": name, "shape": _dims(p.shape),
            "lhs": _both(f"dL/d{name['text']}", rf"\frac{{\partial L}}{{\partial {name['latex']}}}"),
            "rhs": rhs,
        })
    for (out, inp), chains in d.jacobian.items():
        s_out = next(s for s in cell.states if ir.ref(s).key == out)
        s_in = ir.at(next(s for s in cell.states if ir.ref(s).key == inp), -1)
        data["jacobian"].append({
            "lhs": _both(f"d{pr.symbol_text(s_out)}/d{pr.symbol_text(s_in)}",
                         rf"\frac{{\partial {pr.symbol_latex(s_out)}}}{{\partial {pr.symbol_latex(s_in)}}}"),
            "rhs": _both(" + ".join(pr.chain_text(c) for c in chains) or "0",
                         " + ".join(pr.chain_latex(c) for c in chains) or "0"),
            "chains": len(chains), "limit": MAX_CHARS,
        })
        # a block longer than a formula derive check reads (a dense Jacobian through a normalisation)
        data["jacobian"][-1]["long"] = len(data["jacobian"][-1]["rhs"]["latex"]) > MAX_CHARS
    for conv in counts.CONVENTIONS:
        poly = sp.factor(counts.layer_count(cell, conv))
        data["counts"].append({"convention": conv, "bias": counts.bias_style(cell, conv),
                               "formula": _both(sp.sstr(poly), sp.latex(poly))})
    return data

