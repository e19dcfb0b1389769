"""Rich display in Jupyter: the LaTeX a notebook shows for a cell, a derivation and its steps.

``Cell._repr_latex_``, ``Derivation._repr_latex_`` and ``Steps._repr_latex_`` call the functions
below, so ``derive.derive(derive.load("gru"))`` as the last line of a notebook cell shows its
formulas. They print with ``printing.py``, as the pages and ``derive show --latex`` do. A diagram
(``_repr_svg_``) comes from a layer above: it registers a function ``cell -> SVG text`` in
``SVG_HOOKS``; with none registered a cell has no SVG form.
"""

from __future__ import annotations

from derive.symbolic import ir
from derive.symbolic import printing as pr

#: functions ``cell -> str | None`` (an SVG document), tried in order by ``Cell._repr_svg_``
SVG_HOOKS: list = []


def _text(words: str) -> str:
    """Words for ``\\text{...}``: LaTeX's special characters escaped."""
    return "".join("\\" + c if c in "&%$#_{}" else c for c in words.replace("\\", ""))


def _aligned(rows: list, title: str) -> str:
    """``$$\\begin{aligned} lhs &= rhs \\\\ ... \\end{aligned}$$`` under a ``\\text`` title row."""
    body = " \\\\\n".join(f"{lhs} &= {rhs}" if lhs is not None else rf"&\text{{{_text(rhs)}}}" for lhs, rhs in
                          [(None, title), *rows])
    return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"


def forward_rows(cell) -> list:
    return [(pr.symbol_latex(a.target), pr.latex(a.rhs)) for a in cell.assignments]


def cell_latex(cell) -> str:
    """The forward step with the pre-activations derive names."""
    return _aligned(forward_rows(cell), f"{cell.title}: forward step")


def derivation_latex(d) -> str:
    """Forward step, adjoints (last step to first), input gradient, parameter gradients."""
    adjoints = [(pr.symbol_latex(ir.adjoint(a.target)), pr.terms_latex(a.terms)) for a in d.adjoints]
    adjoints.append((pr.symbol_latex(ir.adjoint(d.cell.input)), pr.terms_latex(d.input_grad.terms)))
    params = [(rf"\frac{{\partial L}}{{\partial {pr.symbol_latex(g.param.symbol)}}}",
               rf"\sum_t {' + '.join(pr.gradient_term(t, a, True) for t, a in g.terms) or '0'}") for g in d.params]
    return "\n".join([_aligned(forward_rows(d.cell), f"{d.cell.title}: forward step"),
                      _aligned(adjoints, "adjoints, last step to first"),
                      _aligned(params, "parameter gradients")])


def stages(a, as_latex: bool) -> list[str]:
    """An adjoint (``steps.AdjointSteps``) in three stages: the chain rule's sum with the partials
    named, ``(de/dq)^T de``; each partial put in, its chains transposed and applied to ``de``; the
    derivation's result."""
    loss = [] if a.loss is None else [a.loss]
    if as_latex:
        named = [rf"\left({pr.partial_latex(t.partial.equation, t.partial.argument)}\right)^\top {pr.latex(t.adjoint)}"
                 for t in a.terms]
        put_in = [pr.applied_latex(c, t.adjoint) for t in a.terms for c in t.partial.chains]
        return [" + ".join([pr.latex(g) for g in loss] + named) or "0",
                " + ".join([pr.latex(g) for g in loss] + put_in) or "0", pr.terms_latex(a.result)]
    named = [f"({pr.partial_text(t.partial.equation, t.partial.argument)})^T {pr.text(t.adjoint)}" for t in a.terms]
    put_in = [pr.applied_text(c, t.adjoint) for t in a.terms for c in t.partial.chains]
    return [" + ".join([pr.text(g) for g in loss] + named) or "0",
            " + ".join([pr.text(g) for g in loss] + put_in) or "0", pr.terms_text(a.result)]


def distinct(rows: list) -> list:
    """The stages to print: one the same as the stage before it is left out."""
    return [r for k, r in enumerate(rows) if k == 0 or r != rows[k - 1]]


def steps_latex(s) -> str:
    """The table of local derivatives, then each adjoint: chain rule, partials put in, result."""
    partials = [(pr.partial_latex(p.equation, p.argument), pr.chains_latex(p.chains)) for p in s.partials]
    rows = []
    for a in s.adjoints:
        shown = distinct(stages(a, True))
        rows += [(pr.symbol_latex(ir.adjoint(a.target)) if k == 0 else "", st) for k, st in enumerate(shown)]
    return "\n".join([_aligned(partials, "local derivatives"), _aligned(rows, "the chain rule, adjoint by adjoint")])


def cell_svg(cell) -> str | None:
    for hook in SVG_HOOKS:
        svg = hook(cell)
        if svg:
            return svg
    return None
