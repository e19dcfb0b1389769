"""The reverse sweep: BPTT adjoint recurrences, parameter gradients, state Jacobians.

For one step of a cell the sweep walks the assignments backwards and applies the rules
of ``rules.py``. What flows into a state read at ``t-1`` is that state's *carry*; moved
one step later (``t -> t+1``) it completes the state's adjoint, which gives the time
recurrences a textbook writes, e.g. for the LSTM

    dc_t = dh_t (.) o_t (.) (1 - tanh^2(c_t)) + dc_{t+1} (.) f_{t+1}.

All adjoints are kept as lists of terms in the order of the equations they come from,
so printed formulas read like the forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from derive import activations as acts
from derive.symbolic import display, ir
from derive.symbolic.cell import Cell, Param
from derive.symbolic.rules import Dep, Factor, local_derivatives

#: the adjoint arriving from the loss at step t, dy_t = dL/dy_t (see ``loss_gradient``)
DY = ir.symbol("y", None, 0, adjoint=True)


@dataclass
class Adjoint:
    """``d target = sum(own) + sum(carried)``; a term is an elementwise IR expression.

    ``carried`` holds what arrives from step t+1 (a state's carry moved one step on); at
    the last step it is replaced by the gradient given for the final state.
    """

    target: sp.Symbol
    own: list
    carried: list = field(default_factory=list)

    @property
    def terms(self) -> list:
        return self.own + self.carried

    @property
    def expr(self) -> sp.Expr:
        return sp.Add(*self.terms)


@dataclass
class ParamGrad:
    """``dL/dparam = sum_t sum(terms)``: ``(g, a)`` is the outer product ``g a^T`` for a
    matrix; ``(g, None)`` is a vector term."""

    param: Param
    terms: list


@dataclass
class Derivation:
    cell: Cell
    adjoints: list  # [Adjoint] for every assigned vector, in evaluation (reverse) order
    input_grad: Adjoint  # dx_t
    carries: dict  # state key -> Adjoint for d s_{t-1} from step t (gives d s_0 at t = 1)
    params: list  # [ParamGrad], in the order parameters first appear
    jacobian: dict  # (state key out, state key in) -> [chain]; see ``state_jacobian``
    forward: dict = field(default_factory=dict)  # activation(z) -> named output
    dy: sp.Symbol = DY  # the loss's gradient of the output at step t (``loss_gradient``)
    #: k -> Adjoint for d x_{t-k} from step t, per input tap (``Cell.taps``); moved k steps on, it is
    #: ``input_grad``'s carried part (none past the last step: nothing reads x_{T-1} later)
    taps: dict = field(default_factory=dict)

    def adjoint(self, key: str) -> Adjoint:
        return next(a for a in self.adjoints if ir.ref(a.target).key == key)

    def _repr_latex_(self) -> str:  # Jupyter: forward step, adjoints, parameter gradients (``display.py``)
        return display.derivation_latex(self)


def forward_names(cell: Cell) -> dict:
    """``{sigma(a_{f,t}): f_t}`` (and ``{exp(z_t): i_t}``), to write derivatives with outputs."""
    out = {}
    for a in cell.assignments:
        if isinstance(a.rhs, (acts.Activation, sp.exp)) and isinstance(a.rhs.args[0], sp.Symbol):
            out[a.rhs] = a.target
    return out


def _applies_a_function(rhs) -> bool:
    """``y_t = f(...)`` for an activation or a function of the spec language (not ``W h_t``)."""
    return isinstance(rhs, sp.Function) and not isinstance(rhs, ir.MatVec)


def loss_gradient(cell: Cell, reads: dict) -> sp.Symbol:
    """The symbol of dL/d(output)_t: ``DY`` (``dy_t``), unless the cell has a vector named y whose
    adjoint is more than that (a state y, a y read by another equation, a y that is not the
    output, an output y computed by an activation, whose adjoint the kernel keeps in a buffer of
    its own): then ``dy_{loss,t}``, so the two never share a symbol."""
    vectors = {ir.ref(v).key: v for v in [cell.input, *cell.states, *(a.target for a in cell.assignments)]}
    y = vectors.get("y")
    if y is None or (y == cell.output and y not in cell.states and not reads.get(y)
                     and not _applies_a_function(cell.assignment(y).rhs)):
        return DY
    sub = next(s for s in (f"loss{k or ''}" for k in range(len(vectors) + 1)) if f"y_{s}" not in vectors)
    return ir.symbol("y", sub, 0, adjoint=True)


def derive(cell: Cell) -> Derivation:
    forward = forward_names(cell)
    contrib: dict[sp.Symbol, list] = {}
    grads: dict[str, list] = {k: [] for k in cell.params}

    def propagate(expr, g, idx):
        for kind, dep, d in local_derivatives(expr, forward):
            local = g * d
            if kind == Dep.VECTOR:
                contrib.setdefault(dep, []).append((idx, local))
            elif kind == Dep.PARAMETER:
                grads[ir.ref(dep).key].append((local, None))
            elif kind == Dep.MEAN:  # mean(a): self-adjoint, mean(g) reaches a
                propagate(dep.args[0], ir.Mean(local), idx)
            else:  # matvec: W a
                W, arg = dep.args
                grads[ir.ref(W).key].append((local, arg))
                propagate(arg, ir.MatVecT(W, local), idx)

    for idx in reversed(range(len(cell.assignments))):
        a = cell.assignments[idx]
        propagate(a.rhs, ir.adjoint(a.target), idx)

    def terms(sym):
        return [t for _, t in sorted(contrib.get(sym, []), key=lambda it: it[0])]

    carries = {}
    for s in cell.states:
        prev = ir.at(s, -1)
        carries[ir.ref(s).key] = Adjoint(prev, terms(prev))
    dy = loss_gradient(cell, contrib)
    adjoints = []
    for a in reversed(cell.assignments):
        t = a.target
        own = [dy] if t == cell.output else []
        own += terms(t)
        key = ir.ref(t).key
        carried = [ir.shift(term, 1) for term in carries[key].terms] if key in carries else []
        adjoints.append(Adjoint(t, own, carried))
    params = [ParamGrad(p, grads[k]) for k, p in cell.params.items()]
    taps = {k: Adjoint(ir.at(cell.input, -k), terms(ir.at(cell.input, -k))) for k in cell.taps}
    dx = Adjoint(cell.input, terms(cell.input), [ir.shift(term, k) for k, tap in taps.items() for term in tap.terms])
    return Derivation(cell, adjoints, dx, carries, params, state_jacobian(cell, forward), forward, dy, taps)


# ------------------------------------------------------------------ Jacobians
# A Jacobian block is a list of chains; a chain is a tuple of factors read left to right,
# each (Factor.DIAG, e) for diag(e), (Factor.MAT, W) for the matrix W or (Factor.MEAN, None) for the
# mean's (1/n) 1 1^T; () is the identity.


def normal_chain(chain: tuple) -> tuple:
    out = []
    for kind, v in chain:
        if kind == Factor.DIAG and out and out[-1][0] == Factor.DIAG:
            out[-1] = (Factor.DIAG, out[-1][1] * v)
        else:
            out.append((kind, v))
    return tuple(f for f in out if not (f[0] == Factor.DIAG and f[1] == 1))


def merge_chains(chains: list) -> list:
    """Merge chains that differ only in their leading diagonal: diag(a) M + diag(b) M."""
    groups: dict[tuple, list] = {}
    for chain in chains:
        head, tail = (chain[0][1], chain[1:]) if chain and chain[0][0] == Factor.DIAG else (sp.Integer(1), chain)
        groups.setdefault(tail, []).append(head)
    out = []
    for tail, heads in groups.items():
        total = sp.Add(*heads)
        if total != 0:
            out.append(normal_chain(((Factor.DIAG, total),) + tail))
    return out


def state_jacobian(cell: Cell, forward: dict) -> dict:
    """``d s_t / d u_{t-1}`` for every pair of states, as chains of diag and matrices."""
    states = [ir.ref(s).key for s in cell.states]
    J: dict[sp.Symbol, dict] = {ir.at(s, -1): {ir.ref(s).key: [()]} for s in cell.states}

    def jac(expr) -> dict:
        out: dict[str, list] = {}
        for kind, dep, d in local_derivatives(expr, forward):
            if kind == Dep.PARAMETER:
                continue
            if kind == Dep.VECTOR:
                inner, prefix = J.get(dep, {}), ((Factor.DIAG, d),)
            elif kind == Dep.MEAN:
                inner, prefix = jac(dep.args[0]), ((Factor.DIAG, d), (Factor.MEAN, None))
            else:
                W, arg = dep.args
                inner, prefix = jac(arg), ((Factor.DIAG, d), (Factor.MAT, W))
            for s, chains in inner.items():
                out.setdefault(s, []).extend(normal_chain(prefix + c) for c in chains)
        return {s: merge_chains(c) for s, c in out.items()}

    for a in cell.assignments:
        J[a.target] = jac(a.rhs)
    order = {p.symbol: k for k, p in enumerate(cell.params.values())}

    def first_matrix(chain):
        return next((order[v] for kind, v in chain if kind == Factor.MAT), -1)

    for blocks in J.values():
        for chains in blocks.values():
            chains.sort(key=first_matrix)
    return {(out, inp): J[s].get(inp, []) for s, out in zip(cell.states, states) for inp in states}
