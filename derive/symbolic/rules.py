"""Differentiation rules of the vector IR, one entry per node kind.

An IR expression is elementwise SymPy algebra over vector symbols, plus ``MatVec``
and ``Mean`` atoms. ``split_linear`` replaces the atoms by placeholders, so every remaining
dependency is one of four kinds, and each kind has one rule for the reverse sweep
(vector-Jacobian product, ``g`` the adjoint flowing in) and one for the forward sweep
(Jacobian, ``J`` the Jacobian of the dependency):

| kind       | reverse: adjoint to the dependency     | forward: Jacobian contribution  |
|------------|----------------------------------------|---------------------------------|
| vector     | ``g (.) de/dv``                        | ``diag(de/dv) J[v]``            |
| parameter  | ``sum_t g (.) de/dp`` (a vector param) | none (parameters are constant)  |
| matvec     | ``W^T (g (.) de/dm)`` into the argument, | ``diag(de/dm) W J[argument]`` |
|            | ``sum_t (g (.) de/dm) a^T`` into ``W`` |                                 |
| mean       | ``mean(g (.) de/dm)`` into the argument | ``diag(de/dm) M J[argument]``  |

``M = (1/n) 1 1^T`` is the Jacobian of the mean over n units (``Factor.MEAN``): symmetric, so
the mean is its own adjoint, and a Jacobian through it is dense.
"""

from __future__ import annotations

import sympy as sp

from enum import StrEnum

from derive.symbolic import ir


class Dep(StrEnum):
    """The kind of one dependency of an elementwise expression (the table above)."""

    VECTOR = "vector"        # a vector of the cell at some time
    PARAMETER = "parameter"  # a bias-like parameter vector
    MATVEC = "matvec"        # a matrix-vector product W a
    MEAN = "mean"            # the mean over the units, broadcast: mean(a)


class Factor(StrEnum):
    """A factor of a Jacobian chain."""

    DIAG = "diag"  # diag(e)
    MAT = "mat"    # the matrix W
    MEAN = "mean"  # (1/n) 1 1^T, the mean over the units broadcast (its value is None)


def kind_of(sym: sp.Symbol, holders: dict) -> Dep:
    """The rule that applies to one dependency of an elementwise expression."""
    if sym in holders:
        return Dep.MEAN if isinstance(holders[sym], ir.Mean) else Dep.MATVEC
    if not ir.is_ir(sym):
        raise TypeError(f"no differentiation rule for the node {sym!r}")
    return Dep.PARAMETER if ir.ref(sym).time is None else Dep.VECTOR


def local_derivatives(expr: sp.Expr, forward: dict):
    """``[(kind, dependency, d expr / d dependency)]`` for an IR expression.

    ``dependency`` is the vector symbol, the parameter symbol, or for a ``matvec`` (a ``mean``)
    the ``MatVec`` (``Mean``) atom itself. Derivatives are written with forward values: ``forward``
    maps ``sigma(a_{f,t})`` to ``f_t``, so sigma' reads ``f_t (1 - f_t)``.
    """
    elem, holders = ir.split_linear(expr)
    out = []
    for sym in sorted(elem.free_symbols, key=sp.default_sort_key):
        d = sp.diff(elem, sym).xreplace(holders).xreplace(forward)
        if d == 0:
            continue
        kind = kind_of(sym, holders)
        out.append((kind, holders.get(sym, sym), d))
    return out
