"""The cell pages' diagrams (``derive.diagrams``): which SVG files the site gets, and what a
page says about them. The files go to ``site/diagrams/`` (git-ignored, rebuilt by every
``derive build`` like the plots): the step, one frame per gate, the network unrolled for T = 3."""

from __future__ import annotations

from derive import diagrams
from derive.diagrams.unrolled import STEPS, adjoint_state
from derive.symbolic import ir, printing

DIRECTORY = "diagrams"


def step_path(name: str) -> str:
    return f"{DIRECTORY}/{name}.svg"


def gate_path(name: str, gate: str) -> str:
    return f"{DIRECTORY}/{name}_gate_{gate}.svg"


def unrolled_path(name: str) -> str:
    return f"{DIRECTORY}/{name}_unrolled.svg"


def page_data(cell) -> dict:
    """What a page shows: the image paths (relative to a page one level down), each gate's
    name, the state whose adjoint the unrolled figure follows."""
    name = cell.name
    gates = []
    for g in cell.gates:
        target = next(a.target for a in cell.assignments if not a.aux and ir.ref(a.target).key == g)
        gates.append({"key": g, "latex": printing.symbol_latex(target), "image": f"../{gate_path(name, g)}"})
    state = adjoint_state(cell)
    return {"step": f"../{step_path(name)}", "gates": gates, "unrolled": f"../{unrolled_path(name)}",
            "steps": STEPS, "state": printing.symbol_latex(state, origin=1),
            "state_key": ir.ref(state).key, "losses": ", ".join(f"L_{t}" for t in range(1, STEPS + 1)),
            "command": f"derive show {name} --diagram {name}.svg"}


def files(cell) -> list[tuple[str, object]]:
    """``(path under site/, make the SVG)`` of every diagram of ``cell``'s page."""
    out = [(step_path(cell.name), lambda: diagrams.cell_svg(cell))]
    out += [(gate_path(cell.name, g), lambda g=g: diagrams.gate_svg(cell, g)) for g in cell.gates]
    out.append((unrolled_path(cell.name), lambda: diagrams.unrolled_svg(cell)))
    return out
