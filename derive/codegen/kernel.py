"""Kernel modules from a derivation: fused-GEMM forward and BPTT backward over a sequence.

The generator decides, then prints:

* ``plan.make_plan`` makes every layout decision once and freezes it (``plan.Plan``): GEMM
  groups by argument, column blocks of ``z`` (``columns``), halved sigmoid gates, what is
  kept for the backward pass, the names every step reads (``names.Namer``, which refuses a
  name that would stand for two quantities);
* ``forward.forward_lines`` and ``backward.backward_lines`` print the two functions from the
  plan, each with buffers and views of its own (``frame``), in either order;
* ``context`` gathers what the template ``cell_kernel.py.j2`` formats; ``render`` renders it.

The emitted code is plain NumPy: one ufunc per line with ``out=`` buffers allocated
before the loop, a comment quoting each equation, names from the math.
"""

from __future__ import annotations

import re
from pathlib import Path

from derive.codegen import compiled
from derive.codegen.backward import backward_lines
from derive.codegen import compiled_backward
from derive.codegen.ewise import CodegenError
from derive.codegen.forward import forward_lines
from derive.codegen.layouts import gate_layout, layouts
from derive.codegen.names import code_name
from derive.codegen.parts import Block, BlockKind, Group, GroupKind, dim_of
from derive.codegen.plan import Plan, make_plan
from derive.symbolic import ir
from derive.symbolic.bptt import Derivation
from derive.symbolic.printing import text as ir_text
from derive.codegen.pytemplates import python_template
from derive.fileio import sources_digest

#: the compiled modules name the version of the activations numba compiles into them (``derive.jitmath``)
JITMATH_DIGEST = sources_digest("jitmath", [Path(__file__).resolve().parents[1] / "jitmath.py"])[:16]

__all__ = ["Block", "BlockKind", "Group", "GroupKind", "Plan", "context", "gate_layout", "layouts", "make_plan",
           "render", "render_compiled"]


def context(d: Derivation, source: str) -> dict:
    """Everything the kernel template formats (the tables a user reads name the sizes as the
    spec does, ``H``, also where the code calls one ``_H``)."""
    plan = make_plan(d)
    fwd = forward_lines(plan)
    bwd = backward_lines(plan)
    cell = d.cell
    back = {code: size for size, code in plan.sizes.items()}

    def spec_size(expr) -> str:
        return re.sub(r"\b_+[A-Za-z]\w*", lambda m: back.get(m[0], m[0]), str(expr)) if back else str(expr)

    uses_act = any("_act." in ln for ln in fwd + bwd)
    eqs = [f"{ir_text(a.target)} = {ir_text(a.rhs)}" for a in cell.assignments]
    params = [(p.key, " x ".join(map(str, p.shape))) for p in cell.params.values()]
    return {
        "name": cell.name, "title": cell.title, "source": source, "equations": eqs,
        "preactivation": cell.preactivation,
        "states": [(ir.ref(s).key, str(dim_of(cell, s))) for s in cell.states],
        "output": ir.ref(cell.output).key, "output_dim": str(dim_of(cell, cell.output)),
        "input_dim": str(cell.input_size or "I"), "params": params,
        "locals": [(p.key, code_name(p.symbol), cell.clock.modules if cell.clock and p.key in cell.clock.masked else None)
                   for p in cell.params.values()], "x": plan.w.x,
        "forward": fwd, "backward": bwd, "uses_act": uses_act, "layouts": layouts(plan),
        "blocks": [b.name for b in plan.blocks],
        "gemms": {g.name: [ir_text(m) for m in g.atoms] for g in plan.groups},
        "gemm_table": {g.name: {"kind": str(g.kind), "in": spec_size(g.arg_dim),
                                "out": [spec_size(plan.block_of(m).dim) for m in g.atoms]} for g in plan.groups},
        "dims": sorted({str(dim) for p in cell.params.values() for dim in p.shape}),
        "clock": None if cell.clock is None else {
            "modules": cell.clock.modules, "periods": list(cell.clock.periods), "mask": cell.clock.mask_key,
            "block_triangular": list(cell.clock.masked)},
    }


def render(d: Derivation, source: str) -> str:
    return python_template("cell_kernel.py.j2").render(k=context(d, source))


def compiled_context(plan: Plan) -> dict:
    """What ``compiled_kernel.py.j2`` formats besides ``context``: the compiled backend's functions.
    A construct the compiled emitter cannot express yet is a ``CodegenError`` naming it."""
    reason = compiled.limits(plan)
    if reason is not None:
        raise CodegenError(f"the compiled backend cannot express {reason} yet")
    c = compiled.Compiled(plan)
    fwd_steps = c.forward_steps()
    b = compiled_backward.Backward(c)
    return {"jitmath": JITMATH_DIGEST, "forward": c.forward_wrapper(), "forward_steps": fwd_steps,
            "forward_args": c.forward_args(), "backward": compiled_backward.wrapper(b),
            "backward_steps": b.steps_lines, "backward_args": b.args()}


def render_compiled(d: Derivation, source: str) -> str:
    """The compiled (numba) kernel module of ``d``: the NumPy kernel's API, every step compiled."""
    k = context(d, source)
    return python_template("compiled_kernel.py.j2").render(k=k, c=compiled_context(make_plan(d)))
