"""Collect a derivation into plain data: every formula as terminal text and as LaTeX.

``collect`` is a pure function of the derivation; the CLI and the page templates only
format what it returns (collect, then render).
"""

from __future__ import annotations

import re

import sympy as sp

from derive.symbolic import counts, display, ir
from derive.summary import factors
from derive.symbolic import printing as pr
from derive.symbolic import steps as stepwise
from derive.symbolic.bptt import Derivation
from derive.syntax.formulas import MAX_CHARS


def _both(text: str, latex: str) -> dict:
    return {"text": text, "latex": latex}


def _lhs(sym) -> dict:
    return _both(pr.symbol_text(sym), pr.symbol_latex(sym))


#: the 0/1 pattern of a block-triangular matrix of a clock (``symbolic.clock``) in gradients
MASK_TEXT, MASK_LATEX = "M", r"\mathbb{M}"


def _made(cell, sym) -> bool:
    """``sym`` is a vector derive named (a pre-activation a_{f,t}, or an inner one a_{c,2,t})."""
    return ir.ref(sym).base == cell.preactivation


def _reads_made(cell, rhs) -> bool:
    """``rhs`` reads a vector derive named: f_t = sigma(a_{f,t}), h_t = o_t tanh(a_{h,1,t})."""
    return any(ir.is_ir(s) and ir.ref(s).time is not None and _made(cell, s) for s in rhs.free_symbols)


def _dims(shape) -> str:
    return " x ".join(str(d) for d in shape)


def _gates(cell) -> dict:
    """The gates as a page lists them. A gate computed from another gate, with no parameters of
    its own (CIFG's f_t = 1 - i_t), is shown beside that gate, not as a gate of its own:
    "i (f_t = 1 - i_t), o"."""
    by_key = {ir.ref(a.target).key: a for a in cell.assignments}
    own = {a.target for a in cell.assignments if a.aux} | {p.symbol for p in cell.params.values()}
    derived = {g: by_key[g] for g in cell.gates if g in by_key and not by_key[g].rhs.free_symbols & own}
    text, latex = [], []
    for g in cell.gates:
        if g in derived:
            continue
        tied = [a for a in derived.values() if by_key[g].target in a.rhs.free_symbols]
        text.append(pr.name_text(g) + "".join(f" ({pr.symbol_text(a.target)} = {pr.text(a.rhs)})" for a in tied))
        latex.append(f"${pr.name_latex(g)}$" + "".join(f" (${pr.symbol_latex(a.target)} = {pr.latex(a.rhs)}$)" for a in tied))
    return {"text": ", ".join(text), "md": ", ".join(latex)}


#: reference text -> link: arXiv identifiers, DOIs, GitHub repositories, PyTorch modules
_LINKS = (
    (re.compile(r"arXiv:(\d{4}\.\d{4,5})"), r"[arXiv:\1](https://arxiv.org/abs/\1)"),
    (re.compile(r"doi:(10\.\d{4,9}/[^\s,;]+)"), r"[doi:\1](https://doi.org/\1)"),
    (re.compile(r"^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+) "), r"[\1](https://github.com/\1) "),
    (re.compile(r"PyTorch (torch\.nn\.(?:RNN|LSTM|GRU))\b"),
     r"PyTorch [\1](https://pytorch.org/docs/stable/generated/\1.html)"),
    (re.compile(r"Keras (GRU|LSTM)\b"), lambda m: f"Keras [{m[1]}](https://keras.io/api/layers/recurrent_layers/{m[1].lower()}/)"),
    (re.compile(r"Keras SimpleRNN\b"), "Keras [SimpleRNN](https://keras.io/api/layers/recurrent_layers/simple_rnn/)"),
    (re.compile(r"^tf\.compat\.v1\.nn\.rnn_cell\.(\w+)"),
     r"[tf.compat.v1.nn.rnn_cell.\1](https://www.tensorflow.org/api_docs/python/tf/compat/v1/nn/rnn_cell/\1)"),
    (re.compile(r"(?<![(<\[])(https://[^\s,;)]+)"), r"<\1>"),
)


def reference_md(text: str) -> str:
    """A reference as Markdown, its identifiers linked (arXiv, DOI, GitHub, PyTorch docs)."""
    for pattern, link in _LINKS:
        text = pattern.sub(link, text)
    return text


def _count_label(cell, convention: str) -> str:
    """A row of the counts table: the framework where it has this cell, else the layout's name
    (a count in PyTorch's layout for a cell PyTorch has no module for is hypothetical)."""
    if convention == "pytorch":
        return "PyTorch" if cell.conventions.get("pytorch", {}).get("module") else \
            "double-bias convention (hypothetical: PyTorch has no module)"
    if convention == "keras":
        return "Keras" if cell.conventions.get("keras", {}).get("layer") else \
            "single-bias convention (Keras has no layer)"
    return "single-bias convention (one bias per gate)"


def _dy(d: Derivation, out_text: str, out_latex: str) -> dict:
    """What the loss sends directly into the output at step t. Not dL/d(output)_t, the total
    derivative, which is the state's own adjoint and adds what comes back from step t+1."""
    dy_t, dy_l = pr.symbol_text(d.dy), pr.symbol_latex(d.dy)
    adj_t, adj_l = pr.symbol_text(ir.adjoint(d.cell.output)), pr.symbol_latex(ir.adjoint(d.cell.output))
    return _both(f"{dy_t}: the gradient the loss sends directly into the output {out_text} at step t "
                 f"(only the direct part; {adj_t} adds what comes back from step t+1)",
                 rf"${dy_l}$ is the gradient the loss sends directly into the output ${out_latex}$ at step $t$ "
                 rf"(only the direct part: ${adj_l}$ adds what comes back from step $t+1$)")


def collect_steps(d: Derivation) -> dict:
    """The derivation step by step (``symbolic.steps``): the local derivatives, then for each adjoint
    the chain rule as a sum over the equations, each partial substituted, and the derivation's result."""
    s = stepwise.steps(d)
    partials = [{"equation": _lhs(p.equation), "argument": _lhs(p.argument), "elementwise": p.elementwise,
                 "lhs": _both(pr.partial_text(p.equation, p.argument), pr.partial_latex(p.equation, p.argument)),
                 "rhs": _both(pr.chains_text(p.chains), pr.chains_latex(p.chains))} for p in s.partials]
    adjoints = []
    for a in s.adjoints:
        stages = [_both(t, l) for t, l in zip(display.stages(a, False), display.stages(a, True))]
        adjoints.append({"lhs": _lhs(ir.adjoint(a.target)), "chain_rule": stages[0], "substituted": stages[1],
                         "result": stages[2], "equations": len(a.terms),
                         # the lines to print: a stage the same as the one before is left out
                         "stages": display.distinct(stages)})
    rows = [{"lhs": a["lhs"]["latex"] if k == 0 else "", "rhs": st["latex"]}
            for a in adjoints for k, st in enumerate(a["stages"])]
    return {"partials": partials, "adjoints": adjoints, "rows": rows, "taps": bool(d.taps)}


def collect(d: Derivation) -> dict:
    """Everything ``derive show`` prints, as a JSON-ready dict."""
    cell = d.cell
    out_text, out_latex = pr.symbol_text(cell.output), pr.symbol_latex(cell.output)
    data = {
        "name": cell.name,
        "title": cell.title,
        "source": cell.source,
        "summary": cell.meta.get("summary", ""),
        "notes": cell.meta.get("notes", "").strip(),
        "references": cell.meta.get("references", []),
        "references_md": [reference_md(r) for r in cell.meta.get("references", [])],
        "input": _lhs(cell.input),
        "states": [_lhs(s) for s in cell.states],
        "output": _lhs(cell.output),
        "gates": cell.gates,
        "gates_shown": _gates(cell),
        "conventions": {k: v for k, v in cell.conventions.items() if v},
        "equations": cell.equations,
        "preactivation": cell.preactivation,
        "forward": [{"lhs": _lhs(a.target), "rhs": _both(pr.text(a.rhs), pr.latex(a.rhs)),
                     "introduced": a.aux, "named": _made(cell, a.target), "reads_named": _reads_made(cell, a.rhs)}
                    for a in cell.assignments],
        "shapes": [{"name": _both(pr.symbol_text(p.symbol), pr.symbol_latex(p.symbol)),
                    "shape": _dims(p.shape) + (", block-upper-triangular" if cell.clock and p.key in cell.clock.masked
                                               else "")} for p in cell.params.values()],
        "dy": _dy(d, out_text, out_latex),
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
        "steps": collect_steps(d),
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
        text = " + ".join(pr.gradient_term(t, a, False) for t, a in g.terms) or "0"
        latex = " + ".join(pr.gradient_term(t, a, True) for t, a in g.terms) or "0"
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
    jacobian, where = factors.name_common(d.jacobian)  # kappa_{1,t}, ...: factors the chains share
    data["jacobian_where"] = [{"lhs": _both(pr.symbol_text(k), pr.symbol_latex(k)),
                               "rhs": _both(pr.text(v), pr.latex(v))} for k, v in where]
    for (out, inp), chains in jacobian.items():
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
        data["counts"].append({"convention": conv, "label": _count_label(cell, conv),
                               "bias": counts.bias_style(cell, conv),
                               "formula": _both(sp.sstr(poly), sp.latex(poly))})
    return data

