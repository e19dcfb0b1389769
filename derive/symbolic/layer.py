"""A layer of a stack as the layer above sees it: the model's cell with one more equation,

    u_t = y_t                 (no residual connection)
    u_t = y_t + x_t           (a residual identity: the layer's input has its output's size)
    u_t = y_t + W_r x_t       (a residual projection, ``residual = "project"``)

whose output ``u_t`` is the next layer's input x^{(l+1)}_t (y_t is the cell's own output). Deriving
this cell gives layer l's BPTT in one piece: ``du_t`` is dx^{(l+1)}_t, the gradient that arrives
from above; the identity term a residual adds to the layer's Jacobian appears in ``dx_t``; and
every adjoint of the cell reads ``du_t`` where the bare cell reads the loss's ``dy_t``. The
checker reads a model's claims on it (``checker.model``).
"""

from __future__ import annotations

import enum

from derive.errors import DeriveError
from derive.symbolic import ir, spec
from derive.symbolic.cell import Cell

#: the name of the layer's output u_t, the first of these the cell does not use
OUTPUT_NAMES = ("u", "q", "v", "k", "a", "e")
#: the residual projection's name (``W_r^{(l)}`` on the model pages)
PROJECTION = "W_r"


class Shortcut(enum.StrEnum):
    NONE = "none"
    IDENTITY = "identity"
    PROJECTION = "projection"


def output_name(cell: Cell) -> str:
    taken = set(cell.dims) | {k.split("_")[0] for k in cell.dims}
    return next(n for n in OUTPUT_NAMES if n not in taken)


def layer_cell(cell_ref: str, cell: Cell, shortcut: Shortcut) -> tuple[Cell, str]:
    """The cell of ``cell_ref`` with u_t = y_t (+ the shortcut) as its output; (the cell, u's name)."""
    u = output_name(cell)
    y, x = _at_t(ir.ref(cell.output).key), _at_t(ir.ref(cell.input).key)
    if shortcut == Shortcut.PROJECTION and PROJECTION in cell.params:
        raise DeriveError(f"{cell.name} has a parameter {PROJECTION} of its own; the residual projection "
                          f"W_r^(l) of a model of it cannot be told apart from it")
    rhs = {Shortcut.NONE: y, Shortcut.IDENTITY: f"{y} + {x}", Shortcut.PROJECTION: f"{y} + W_{{r}} {x}"}[shortcut]

    def amend(data: dict) -> dict:
        data["equations"] = data["equations"].rstrip("\n") + f"\n{u}_t = {rhs}\n"
        data["output"] = u
        data["name"] = f"{data['name']}_layer"
        if shortcut == Shortcut.IDENTITY:
            data["sizes"] = {**data.get("sizes", {}), ir.ref(cell.input).key: "H"}
        return data
    text, source = spec.text_of(cell_ref)
    return spec.parse_spec(text, source, amend=amend), u


def _at_t(key: str) -> str:
    """A vector's key as an equation writes it at step t: ``h`` -> h_t, ``h_tilde`` -> \\tilde{h}_t,
    ``a_f`` -> a_{f,t}."""
    head, _, sub = key.partition("_")
    if sub in ("tilde", "hat", "bar"):
        return rf"\{sub}{{{head}}}_t"
    return f"{head}_{{{sub},t}}" if sub else f"{head}_t"
