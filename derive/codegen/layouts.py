"""Framework layouts of a cell's parameters: which parameter fills each slot of a fused gate.

PyTorch and Keras keep a cell's gates in one fused matrix per argument, in an order of their
own (``conventions.fused`` in a spec). ``layouts(plan)`` gives the generated module's
``LAYOUTS`` table that ``derive.interop`` reads to convert parameters both ways.
"""

from __future__ import annotations

import sympy as sp

from derive.codegen.parts import BlockKind, terms
from derive.codegen.plan import Plan
from derive.symbolic import ir

#: the slots of a framework's fused gate, each -> the parameters of the gates in fused order
SLOTS = ("ih", "hh", "bias_ih", "bias_hh")


def _find(expr, pred):
    return [e for e in sp.preorder_traversal(expr) if pred(e)]


def _key(sym) -> str | None:
    return ir.ref(sym).key if sym is not None else None


def gate_layout(plan: Plan, gates: list) -> dict:
    """Per gate of a framework's fused order: the parameters of its four slots.

    ``ih``/``hh``: the weights multiplying the input and the recurrent argument;
    ``bias_ih``: the bias added to the pre-activation; ``bias_hh``: a bias inside the
    recurrent product (GRU's b_{hn}), or None where the framework's second bias merges
    into ``bias_ih``.
    """
    cell = plan.cell
    out = {slot: [] for slot in SLOTS}
    zblocks = [b for b in plan.blocks if b.kind == BlockKind.PREACTIVATION]
    for v in gates:
        blk = next((b for b in zblocks if b.name == v), None)
        if blk is None:
            raise ValueError(f"{cell.name}: the fused gate order names {v!r}, which is not a gate block "
                             f"(blocks: {', '.join(b.name for b in zblocks)})")
        rhs = cell.assignment(blk.z).rhs
        mv = _find(rhs, lambda e: isinstance(e, ir.MatVec))
        ih = [m for m in mv if m.args[1] == cell.input]
        hh = [m for m in mv if m.args[1] != cell.input]
        bias = [t for t in terms(rhs) if isinstance(t, sp.Symbol) and ir.ref(t).time is None]
        inner = None
        for add in _find(rhs, lambda e: isinstance(e, sp.Add) and e is not rhs):
            if any(isinstance(t, ir.MatVec) for t in add.args):
                inner = next((t for t in add.args if isinstance(t, sp.Symbol) and ir.ref(t).time is None), None)
        out["ih"].append(_key(ih[0].args[0]) if ih else None)
        out["hh"].append(_key(hh[0].args[0]) if hh else None)
        out["bias_ih"].append(_key(bias[0]) if bias else None)
        out["bias_hh"].append(_key(inner))
    return out


def layouts(plan: Plan) -> dict:
    cell = plan.cell
    conv, meta = cell.conventions, cell.meta
    out = {}
    torch_meta = meta.get("pytorch")
    if torch_meta and conv.get("fused"):
        out["torch"] = {"module": torch_meta["module"], "gates": list(conv["fused"]),
                        "nonlinearity": torch_meta.get("nonlinearity"), **gate_layout(plan, conv["fused"])}
        if torch_meta.get("projection"):
            out["torch"]["proj"] = torch_meta["projection"]
    keras_meta = meta.get("keras")
    if keras_meta and keras_meta.get("fused"):
        out["keras"] = {"layer": keras_meta["layer"], "gates": list(keras_meta["fused"]),
                        "bias": keras_meta.get("bias", "single"), "reset_after": keras_meta.get("reset_after"),
                        **gate_layout(plan, keras_meta["fused"])}
    return out
