"""A model's equations across its layers, as terminal text and LaTeX (``derive show MODEL``, its page).

The cell's own derivation (``derive show CELL``) is the step of one layer and direction; what the
model adds is how the layers meet: layer l+1 reads what layer l gives, so the input gradient of
layer l+1 is the output gradient of layer l; a reverse direction runs its recurrence backwards in
time, so its carried terms come from step t-1; a residual connection adds the identity to the
layer's Jacobian. Layers are numbered from 1 here (the kernels' keys count from 0).
"""

from __future__ import annotations

import sympy as sp

from derive.symbolic import bptt, counts, ir
from derive.symbolic import printing as pr
from derive.symbolic.cell import I, H
from derive.symbolic.model import ModelSpec


def _eq(lhs_text, rhs_text, lhs_latex, rhs_latex, note="") -> dict:
    return {"lhs": {"text": lhs_text, "latex": lhs_latex}, "rhs": {"text": rhs_text, "latex": rhs_latex},
            "note": note}


def collect(m: ModelSpec) -> dict:
    cell = m.cell
    d = bptt.derive(cell)
    out = ir.ref(cell.output).key
    two = m.bidirectional
    D = 2 if two and m.merge == "concat" else 1
    residual_first = f"I = {D}H" if D > 1 else "I = H"
    forward, backward = [], []
    forward.append(_eq("x^(1)_t", "x_t", "x^{(1)}_t", "x_t", "layer 1 reads the input"))
    step_text = f"{cell.name} step of layer l"
    forward.append(_eq(f"{out}->^(l)_t", f"{step_text}(x^(l)_t, states->^(l)_(t-1))",
                       rf"\overrightarrow{{{out}}}^{{(l)}}_t",
                       rf"\operatorname{{{cell.name}}}\left(x^{{(l)}}_t, \overrightarrow{{s}}^{{(l)}}_{{t-1}}\right)",
                       "the forward direction: the cell's step, its states carried from t-1"))
    if two:
        forward.append(_eq(f"{out}<-^(l)_t", f"{step_text}(x^(l)_t, states<-^(l)_(t+1))",
                           rf"\overleftarrow{{{out}}}^{{(l)}}_t",
                           rf"\operatorname{{{cell.name}}}\left(x^{{(l)}}_t, \overleftarrow{{s}}^{{(l)}}_{{t+1}}\right)",
                           "the reverse direction: the same step on the time-reversed sequence, states carried "
                           "from t+1"))
        merged = (f"[{out}->^(l)_t ; {out}<-^(l)_t]", rf"\left[\overrightarrow{{{out}}}^{{(l)}}_t ; "
                  rf"\overleftarrow{{{out}}}^{{(l)}}_t\right]") if m.merge == "concat" else \
            (f"{out}->^(l)_t + {out}<-^(l)_t", rf"\overrightarrow{{{out}}}^{{(l)}}_t + \overleftarrow{{{out}}}^{{(l)}}_t")
    else:
        merged = (f"{out}->^(l)_t", rf"\overrightarrow{{{out}}}^{{(l)}}_t")
    forward.append(_eq("y^(l)_t", merged[0], "y^{(l)}_t", merged[1],
                       {"concat": "the two directions side by side", "sum": "the two directions added"}[m.merge]
                       if two else "the layer's output"))
    if m.residual == "project":
        forward.append(_eq("x^(l+1)_t", "y^(l)_t + x^(l)_t, or y^(l)_t + W_r^(l) x^(l)_t where the sizes differ",
                           "x^{(l+1)}_t", r"y^{(l)}_t + x^{(l)}_t 	ext{, or } y^{(l)}_t + W_r^{(l)} x^{(l)}_t",
                           f"residual: an identity where the layer's input has its output's size, a learned "
                           f"projection W_r (no bias) where it has not (the first layer, unless {residual_first})"))
    elif m.residual:
        forward.append(_eq("x^(l+1)_t", "y^(l)_t + x^(l)_t", "x^{(l+1)}_t", "y^{(l)}_t + x^{(l)}_t",
                           f"residual: every layer above the first (and the first when {residual_first})"))
    else:
        forward.append(_eq("x^(l+1)_t", "y^(l)_t", "x^{(l+1)}_t", "y^{(l)}_t", "layer l+1 reads layer l's output"))
    forward.append(_eq("y_t", f"x^({m.layers + 1})_t", "y_t", rf"x^{{({m.layers + 1})}}_t",
                       f"the model's output: what the top layer ({m.layers}) gives"))

    dx = pr.terms_text(d.input_grad.terms)
    dx_latex = pr.terms_latex(d.input_grad.terms)
    backward.append(_eq(f"dx^({m.layers + 1})_t", "dL/dy_t", rf"\delta x^{{({m.layers + 1})}}_t",
                        r"\partial L / \partial y_t", "the loss's gradient of the output"))
    if two and m.merge == "concat":
        backward.append(_eq(f"dy->^(l)_t ; dy<-^(l)_t", f"the first and the last {out}-sized columns of dx^(l+1)_t",
                            rf"\delta \overrightarrow{{y}}^{{(l)}}_t ; \delta \overleftarrow{{y}}^{{(l)}}_t",
                            rf"\text{{the two halves of }} \delta x^{{(l+1)}}_t", "each direction's dy_t"))
    elif two:
        backward.append(_eq("dy->^(l)_t = dy<-^(l)_t", "dx^(l+1)_t", rf"\delta \overrightarrow{{y}}^{{(l)}}_t = "
                            rf"\delta \overleftarrow{{y}}^{{(l)}}_t", r"\delta x^{(l+1)}_t",
                            "a sum passes its gradient to both directions"))
    else:
        backward.append(_eq("dy->^(l)_t", "dx^(l+1)_t", r"\delta \overrightarrow{y}^{(l)}_t", r"\delta x^{(l+1)}_t",
                            f"the cell's dy_t (the gradient arriving at {out}_t from above)"))
    backward.append(_eq("dx->^(l)_t", dx,
                        r"\delta \overrightarrow{x}^{(l)}_t", dx_latex,
                        f"the cell's input gradient (derive show {cell.name}), with layer l's weights and adjoints"))
    if two:
        backward.append(_eq("dx<-^(l)_t", "the same, with the reverse direction's weights and adjoints; its "
                            "carried terms at t+1 are at t-1 (its recurrence runs backwards in time)",
                            r"\delta \overleftarrow{x}^{(l)}_t", dx_latex,
                            "the reverse direction's: its BPTT runs forward in t, so the terms the cell carries "
                            "from t+1 come from t-1"))
    total = "dx->^(l)_t + dx<-^(l)_t" if two else "dx->^(l)_t"
    total_latex = r"\delta \overrightarrow{x}^{(l)}_t + \delta \overleftarrow{x}^{(l)}_t" if two else \
        r"\delta \overrightarrow{x}^{(l)}_t"
    if m.residual:
        backward.append(_eq("dx^(l)_t", total + " + dx^(l+1)_t", r"\delta x^{(l)}_t", total_latex +
                            r" + \delta x^{(l+1)}_t", "the residual's identity passes the gradient from above "
                            "straight down" + ("; where W_r projects, W_r^T dx^(l+1)_t instead, and "
                                               "dW_r = sum_t dx^(l+1)_t x^(l)_t^T" if m.residual == "project" else "")))
    else:
        backward.append(_eq("dx^(l)_t", total, r"\delta x^{(l)}_t", total_latex, "what layer l-1 receives"))
    jac = _eq("dx^(l+1)_t/dx^(l)_t", "dy^(l)_t/dx^(l)_t" + (" + I" if m.residual else ""),
              r"\frac{\partial x^{(l+1)}_t}{\partial x^{(l)}_t}",
              r"\frac{\partial y^{(l)}_t}{\partial x^{(l)}_t}" + (r" + \mathbb{I}" if m.residual else ""),
              "the identity term a residual adds to the layer Jacobian: a gradient reaches layer 1 "
              "even where every layer's own Jacobian is small" if m.residual else
              "each layer's own Jacobian multiplies the gradient on its way down: nothing bypasses it")
    conventions = []
    for conv in counts.CONVENTIONS:
        first = counts.layer_count(cell, conv, inputs=I)
        upper = counts.layer_count(cell, conv, inputs=D * (H if not counts.projects(cell) else sp.Symbol("P")))
        dirs = 2 if two else 1
        total_poly = sp.expand(dirs * first + (m.layers - 1) * dirs * upper)
        if m.residual == "project":  # W_r of the first layer, D H x I (I != D H)
            total_poly = sp.expand(total_poly + D * (H if not counts.projects(cell) else sp.Symbol("P")) * I)
        conventions.append({"convention": conv, "formula": {"text": sp.sstr(sp.factor(total_poly)),
                                                             "latex": sp.latex(sp.factor(total_poly))}})
    return {"name": m.name, "title": m.title, "source": m.source, "summary": m.meta.get("summary", ""),
            "references": m.meta.get("references", []), "cell": cell.name, "layers": m.layers,
            "bidirectional": two, "merge": m.merge, "residual": m.residual, "forward": forward,
            "backward": backward, "jacobian": [jac], "counts": conventions}


def render_text(data: dict) -> str:
    lines = [f"{data['title']}  [{data['name']}, {data['source']}]"]
    if data["summary"]:
        lines.append(data["summary"])
    lines.append(f"{data['layers']} layer(s) of {data['cell']}" + (f", bidirectional ({data['merge']})"
                                                                    if data["bidirectional"] else "")
                 + (", residual" if data["residual"] else "") + f"; one layer's step: derive show {data['cell']}")
    for title, rows in (("Forward, across the layers", data["forward"]),
                        ("Backward, across the layers (l from the top layer down)", data["backward"]),
                        ("Layer Jacobian", data["jacobian"])):
        lines.append(f"\n{title}")
        for r in rows:
            lines.append(f"  {r['lhs']['text']} = {r['rhs']['text']}" + (f"    # {r['note']}" if r["note"] else ""))
    lines.append("\nParameters, all layers and directions (I inputs, H hidden)")
    lines.extend(f"  {c['convention']:8s}: {c['formula']['text']}" for c in data["counts"])
    return "\n".join(lines)
