"""The frozen parts of a kernel plan: GEMM groups, column blocks, runs of shared blocks.

Kinds are ``StrEnum`` members: they compare equal to (and format as) their strings, so the
``GEMMS`` table of a generated module still reads ``'kind': 'input'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sympy as sp

from derive.symbolic import ir
from derive.symbolic.bptt import Derivation
from derive.symbolic.cell import Cell


class GroupKind(StrEnum):
    """When a GEMM group's product is computed."""

    INPUT = "input"  # the argument is x_t: one GEMM for every step, before the loop
    RECURRENT = "recurrent"  # a state at t-1: one GEMM per step, first in the step
    LATE = "late"  # anything else: one GEMM per step, once its argument is known
    TAP = "tap"  # an input tap x_{t-k}: one GEMM before the loop over x shifted by k (zero before step k)


class BlockKind(StrEnum):
    """What a column block of ``z`` / ``dz`` holds."""

    PREACTIVATION = "preactivation"  # a_{v,t} (and its adjoint in da)
    GRADIENT = "gradient"  # only in dz: an extra weight gradient's g (dz_n (.) r_t for W_hn)


@dataclass(frozen=True)
class Block:
    """A column block of the fused buffers: a pre-activation or an extra gradient."""

    name: str  # "i", "hn": the code suffix
    kind: BlockKind
    index: int  # position in the column order
    dim: sp.Expr
    start: sp.Expr
    grad: sp.Expr  # the gradient expression g written here (dz or an extra)
    groups: tuple = ()  # names of the GEMM groups whose gradients read this block
    z: sp.Symbol | None = None  # the pre-activation (None for an extra gradient block)
    act: str | None = None  # activation of the gate that reads z (None: read elsewhere)
    gate: sp.Symbol | None = None  # the gate's target, if z feeds exactly one activation
    in_a: bool = False  # the gate's output lives in the buffer ``a`` (a gate that is not a state)
    halved: bool = False  # a sigmoid gate whose GEMM columns and biases are halved (see columns.halved)

    @property
    def stop(self):
        return self.start + self.dim


@dataclass(frozen=True)
class Group:
    """The ``MatVec`` atoms sharing one argument: one fused matrix ``W`` (in, sum out)."""

    name: str  # "x", "h", "h_r" ...: code name of the argument
    arg: sp.Expr
    kind: GroupKind
    atoms: tuple  # MatVec atoms, in the column order of their gradient blocks
    cols: tuple  # the blocks whose gradient feeds the group's weight gradient
    contiguous: bool  # ... and whether they are adjacent columns
    width: sp.Expr  # the columns of the product: the sum of the atoms' blocks
    arg_dim: str  # the argument's size in code (I, H, P)
    kept: bool  # the product is kept for every step (the backward reads it)
    keeps_arg: bool  # a late argument kept in a buffer of its own (``<name>_all``)

    @property
    def weights(self) -> tuple:
        return tuple(a.args[0] for a in self.atoms)


@dataclass(frozen=True)
class SharedRun:
    """Consecutive blocks whose z adds an input and a recurrent product: one add per step."""

    group: Group  # the recurrent group
    blocks: tuple
    first: sp.Expr  # column offset of the first block in the group's product


def dim_of(cell: Cell, sym: sp.Symbol):
    """The dimension symbol (I, H, P) of a vector (of the output for the loss's gradient dy_t)."""
    r = ir.ref(sym)
    if r.key not in cell.dims and r.base == "y" and r.adjoint:
        return cell.dims[ir.ref(cell.output).key]
    return cell.dims[r.key]


def terms(expr) -> list:
    """The terms of a sum (a single term otherwise)."""
    return list(expr.args) if isinstance(expr, sp.Add) else [expr]


def backward_exprs(d: Derivation) -> list:
    """Every expression the backward pass evaluates."""
    out = []
    for a in d.adjoints:
        out += a.terms
    for c in d.carries.values():
        out += c.terms
    out += d.input_grad.terms
    for pg in d.params:
        for g, arg in pg.terms:
            out += [g] + ([arg] if arg is not None else [])
    return out
