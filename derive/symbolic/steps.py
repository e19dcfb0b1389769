"""A derivation step by step: the local derivatives, then the chain rule, then the result.

Three stages, as a textbook writes them for one step of a cell:

1. **Local derivatives.** Every partial derivative of each equation with respect to each vector it
   reads (and each bias-like parameter): ``d f_t / d a_{f,t} = f_t (1 - f_t)`` (an activation's
   derivative written with its output, ``activations.py``), ``d a_{f,t} / d h_{t-1} = W_{hf}``. A
   partial is a Jacobian, kept as a sum of chains (``rules.Factor``: diag(e), a matrix, the mean),
   the form of ``Derivation.jacobian``; a single diagonal chain is an elementwise partial.
2. **The chain rule.** The adjoint of a quantity q is the sum over the equations that read it,
   ``dq = sum_e (de/dq)^T de`` (an equation read at t+1 for a state read as q_{t-1}), plus the loss's
   own gradient for the output; each term written out as the transposed chain applied to ``de``.
3. **The result**: the adjoint's terms as the ``Derivation`` has them, the expression the kernel uses.

The matrices' own gradients (outer products ``sum_t de a^T``) are the derivation's ``params``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.symbolic import display, ir
from derive.symbolic.bptt import Derivation, merge_chains, normal_chain
from derive.symbolic.cell import Cell
from derive.symbolic.rules import Dep, Factor, local_derivatives


@dataclass(frozen=True)
class Partial:
    """``d equation / d argument``: a sum of chains read left to right (``()`` is the identity)."""

    equation: sp.Symbol  # the vector the equation assigns, f_t
    argument: sp.Symbol  # a vector it reads (a_{f,t}, h_{t-1}) or a bias-like parameter (b_f)
    chains: tuple

    @property
    def elementwise(self) -> bool:
        """A diagonal Jacobian, ``d c_t / d f_t = diag(c_{t-1})``: the chain rule makes it a Hadamard product."""
        return all(all(kind == Factor.DIAG for kind, _ in chain) for chain in self.chains)

    def shifted(self, by: int) -> "Partial":
        return Partial(ir.shift(self.equation, by), ir.shift(self.argument, by),
                       tuple(tuple((k, v if v is None else ir.shift(v, by)) for k, v in chain) for chain in self.chains))


@dataclass(frozen=True)
class ChainTerm:
    """One equation's share of an adjoint: ``(d e / d q)^T de``."""

    partial: Partial  # at the step the equation reads q (shifted to t+1 for a carried term)

    @property
    def adjoint(self) -> sp.Symbol:
        """``de``, the adjoint of the equation that reads q."""
        return ir.adjoint(self.partial.equation)

    @property
    def value(self) -> sp.Expr:
        """The term as an IR expression: each chain, transposed, applied to ``de``."""
        return sp.Add(*[transposed(chain, self.adjoint) for chain in self.partial.chains])


@dataclass(frozen=True)
class AdjointSteps:
    """``dq = loss + sum(terms)`` before it is simplified, and ``result``, the derivation's terms."""

    target: sp.Symbol  # q_t
    loss: sp.Symbol | None  # dy_t for the output (what the loss sends directly), else None
    terms: tuple  # (ChainTerm, ...), in the order of the equations, those of step t+1 last
    result: tuple  # the Derivation's terms: the simplified sum the kernel computes

    @property
    def unsimplified(self) -> sp.Expr:
        return sp.Add(*([self.loss] if self.loss is not None else []), *[t.value for t in self.terms])


@dataclass(frozen=True)
class Steps:
    partials: tuple  # (Partial, ...): equation by equation, in the order of the forward step
    adjoints: tuple  # (AdjointSteps, ...): the derivation's adjoints (last step to first), then dx_t

    def _repr_latex_(self) -> str:  # Jupyter: the table, then the chain rule adjoint by adjoint
        return display.steps_latex(self)


def transposed(chain: tuple, g: sp.Expr) -> sp.Expr:
    """``chain^T g``: (diag(a) W diag(b))^T g = b (.) W^T (a (.) g); the mean is its own transpose."""
    for kind, v in chain:
        if kind == Factor.DIAG:
            g = g * v
        elif kind == Factor.MAT:
            g = ir.MatVecT(v, g)
        else:
            g = ir.Mean(g)
    return g


def local_partials(expr: sp.Expr, forward: dict) -> dict:
    """``{argument: [chain]}`` for one right-hand side: through ``W a`` and ``mean(a)`` into ``a``'s
    vectors, the matrices themselves left out (their gradients are outer products, not partials)."""
    out: dict = {}
    for kind, dep, d in local_derivatives(expr, forward):
        if kind in (Dep.VECTOR, Dep.PARAMETER):
            inner, prefix = {dep: [()]}, ((Factor.DIAG, d),)
        elif kind == Dep.MEAN:
            inner, prefix = local_partials(dep.args[0], forward), ((Factor.DIAG, d), (Factor.MEAN, None))
        else:
            W, arg = dep.args
            inner, prefix = local_partials(arg, forward), ((Factor.DIAG, d), (Factor.MAT, W))
        for a, chains in inner.items():
            out.setdefault(a, []).extend(normal_chain(prefix + c) for c in chains)
    return {a: merge_chains(c) for a, c in out.items()}


def _argument_order(cell: Cell):
    """Vectors in the order input, states, assigned vectors (latest time first), then the parameters."""
    vectors = [ir.ref(v).key for v in [cell.input, *cell.states, *(a.target for a in cell.assignments)]]
    params = list(cell.params)

    def key(sym):
        r = ir.ref(sym)
        if r.time is None:
            return (1, params.index(r.key) if r.key in params else len(params), 0)
        return (0, vectors.index(r.key) if r.key in vectors else len(vectors), -r.time)
    return key


def partials(cell: Cell, forward: dict) -> tuple:
    """The table of local derivatives, equation by equation. A clock's mask is known: no row."""
    known = {cell.clock.mask} if cell.clock is not None else set()
    order = _argument_order(cell)
    out = []
    for a in cell.assignments:
        table = local_partials(a.rhs, forward)
        for arg in sorted((x for x in table if x not in known and table[x]), key=order):
            out.append(Partial(a.target, arg, tuple(table[arg])))
    return tuple(out)


def _reads(table: tuple, q: sp.Symbol, later_steps: tuple) -> tuple:
    """The chain-rule terms of ``dq_t``: equations of step t that read q_t, then those of the steps
    t+k that read q as q_{t+k-k} (k = 1 for a state read at t-1, k for an input tap)."""
    own = [ChainTerm(p) for p in table if p.argument == q]
    later = [ChainTerm(p.shifted(k)) for k in later_steps for p in table if p.argument == ir.at(q, -k)]
    return tuple(own + later)


def steps(d: Derivation) -> Steps:
    """The derivation ``d`` step by step (see the module's docstring)."""
    cell = d.cell
    table = partials(cell, d.forward)
    out = []
    for a in d.adjoints:
        q = a.target
        later = (1,) if q in cell.states else ()  # a state is read as q_{t-1} by step t+1
        loss = d.dy if q == cell.output else None
        out.append(AdjointSteps(q, loss, _reads(table, q, later), tuple(a.terms)))
    taps = tuple(sorted(d.taps))  # x_t is x_{t-k} at step t+k
    out.append(AdjointSteps(cell.input, None, _reads(table, cell.input, taps), tuple(d.input_grad.terms)))
    return Steps(table, tuple(out))
