"""The derivatives of a SymPy expression at a point, by the chain rule over its DAG.

``gradients(L, wrt, at)`` runs reverse mode over the distinct sub-expressions of ``L`` (SymPy
expressions that are equal are one node, so the unrolled loss of a cell, whose steps share
most of their sub-trees, is a DAG of a few thousand nodes): each node's value at the point is
``Numeric``'s, each node's local derivative SymPy's own (``sympy.diff`` of its function on
dummy arguments, evaluated at the arguments' values), and the adjoints are summed from the
root down. The numbers are those of ``sympy.diff(L, w)`` evaluated at the point (the tests
hold the two against each other) without expanding one derivative per symbol, which takes
minutes for an LSTM unrolled over three steps.

Nothing here knows of derive's derivation: no adjoint formula, no rule of ``rules.py``, no
carry; it is the generic chain rule, the brute-force witness's differentiation.
"""

from __future__ import annotations

import sympy as sp


class Numeric:
    """Evaluates SymPy expressions at a point, once per distinct sub-expression.

    The derivatives of an unrolled loss share most of their sub-trees; a cache keyed by
    sub-expression makes evaluating all of them linear in the distinct nodes.
    """

    def __init__(self, point: dict, digits: int = 30):
        self.digits = digits
        self.cache = {k: sp.Float(v, digits) for k, v in point.items()}

    def __call__(self, expr):
        hit = self.cache.get(expr)
        if hit is not None:
            return hit
        if expr.is_number:  # numbers and constants such as pi
            val = sp.Float(expr.evalf(self.digits), self.digits)
        elif isinstance(expr, sp.Add):
            val = sp.Add(*[self(a) for a in expr.args])
        elif isinstance(expr, sp.Mul):
            val = sp.Mul(*[self(a) for a in expr.args])
        elif isinstance(expr, sp.Pow):
            val = self(expr.base) ** self(expr.exp)
        elif isinstance(expr, sp.Piecewise):  # a Function too: check it first
            val = sp.Piecewise(*[(self(e), self(c)) for e, c in expr.args])
        elif isinstance(expr, sp.Function):
            val = expr.func(*[self(a) for a in expr.args])
        elif isinstance(expr, sp.core.relational.Relational):
            val = expr.func(*[self(a) for a in expr.args])
        elif isinstance(expr, sp.logic.boolalg.BooleanAtom):
            val = expr
        else:
            raise TypeError(f"cannot evaluate {expr!r}")
        self.cache[expr] = val
        return val


def _postorder(root) -> list:
    """The distinct sub-expressions of ``root``, each after its arguments (an expression DAG:
    SymPy expressions that are equal are one node)."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        stack.extend((a, False) for a in _inputs(node) if a not in seen)
    return order


#: conditions (of a Piecewise, a step): no derivative flows to them (a Symbol is a Boolean too)
_CONDITION = (sp.core.relational.Relational, sp.logic.boolalg.BooleanAtom, sp.logic.boolalg.BooleanFunction)


def _inputs(node) -> tuple:
    """The arguments a derivative flows to: none for numbers, symbols and conditions."""
    if node.is_number or isinstance(node, (sp.Symbol, *_CONDITION)):
        return ()
    if isinstance(node, sp.Piecewise):
        return tuple(e for e, _ in node.args if not e.is_number)
    if isinstance(node, (sp.Add, sp.Mul, sp.Pow, sp.Function)):
        return tuple(a for a in node.args if not a.is_number and not isinstance(a, _CONDITION))
    raise TypeError(f"cannot differentiate {node!r}")


_LOCAL: dict = {}


def _local(func, real: tuple, i: int):
    """``d func(z_1..z_n) / d z_i`` by ``sympy.diff``, and the dummies z; ``real``: which arguments
    are real at the point (a real dummy makes |z|' sign(z), the real function's derivative, also where
    SymPy cannot tell that an activation of a real argument is real)."""
    key = (func, real, i)
    if key not in _LOCAL:
        zs = [sp.Dummy(f"z{j}", real=True) if r else sp.Dummy(f"z{j}") for j, r in enumerate(real)]
        _LOCAL[key] = sp.diff(func(*zs), zs[i]), zs
    return _LOCAL[key]


def _partials(node, at: Numeric):
    """``(argument, d node / d argument)`` at the point of ``at``, for each argument of ``node``."""
    if isinstance(node, sp.Add):
        return [(a, 1) for a in _inputs(node)]
    if isinstance(node, sp.Mul):  # the product of the other factors, by prefix and suffix products
        vals = [at(a) for a in node.args]
        before, after = [sp.Integer(1)], [sp.Integer(1)]
        for val in vals[:-1]:
            before.append(before[-1] * val)
        for val in reversed(vals[1:]):
            after.append(after[-1] * val)
        after.reverse()
        return [(a, before[j] * after[j]) for j, a in enumerate(node.args) if not a.is_number]
    if isinstance(node, sp.Pow):
        b, e = node.args
        out = []
        if not b.is_number:
            ve = e if e.is_number else at(e)
            out.append((b, ve * at(b) ** (ve - 1)))
        if not e.is_number:
            out.append((e, at(node) * sp.log(at(b))))
        return out
    if isinstance(node, sp.Piecewise):  # the piece that holds at the point; conditions carry none
        for e, c in node.args:
            if bool(at(c)):
                return [] if e.is_number else [(e, 1)]
        raise ValueError(f"no piece of {node!r} holds")
    out = []
    values = [at(a) for a in node.args]
    real = tuple(bool(val.is_real) for val in values)
    for i, a in enumerate(node.args):
        if a.is_number or isinstance(a, _CONDITION):
            continue
        local, zs = _local(node.func, real, i)
        out.append((a, Numeric(dict(zip(zs, values)), at.digits)(local)))
    return out


def gradients(L, wrt, at: Numeric) -> dict:
    """``{w: dL/dw}`` at the point of ``at``: the chain rule applied once, in reverse, over the
    distinct sub-expressions of ``L`` (reverse mode on its DAG), each node's local derivative
    SymPy's (``sympy.diff`` of the node's function on dummy arguments). The same numbers as
    ``sympy.diff(L, w)`` evaluated at the point, without expanding a derivative per symbol: no
    adjoint formula, no rule of ``rules.py`` and no carry of derive's is involved."""
    bar = {L: sp.Integer(1)}
    for node in reversed(_postorder(L)):
        g = bar.get(node)
        if g is None or isinstance(node, sp.Symbol):
            continue
        for arg, partial in _partials(node, at):
            bar[arg] = bar.get(arg, 0) + g * partial
    return {e: bar.get(e, sp.Integer(0)) for e in wrt}
