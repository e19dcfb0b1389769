"""A claim's right side compared with the derivation in SymPy, within a time bound: the right
side as an elementwise IR expression, the adjoints of intermediates replaced by the states'."""

from __future__ import annotations

import sympy as sp

from derive.checker.deadline import within
from derive.checker.functions import BINARY, FUNCTIONS, VECTOR_WIDE, activation, func_name, power
from derive.checker.lets import with_lets
from derive.checker.names import Names, RefKind
from derive.checker.runs import reach
from derive.checker.visitor import Op, Visitor, is_op
from derive.errors import DeriveError
from derive.symbolic import ir
from derive.syntax.formulas import Name


class NotSymbolic(Exception):
    """The right side has a part with no elementwise IR form (a transpose, a sum, ...)."""


class ToIr(Visitor):
    """The right side as an elementwise IR expression (matrix products as MatVec atoms)."""

    def __init__(self, names: Names):
        self.names = names
        self.let_values: dict = {}  # --let name -> its IR expression

    def generic(self, node):
        raise NotSymbolic

    def visit_Num(self, node):
        return sp.Rational(node.value)

    def visit_Name(self, node):
        ref = self.names.resolve(node)
        if ref.kind == RefKind.LET:
            return self.let_values[node.text] if node.text in self.let_values else self.visit(ref.value)
        if ref.kind in (RefKind.VEC, RefKind.DY):
            return ref.value
        if ref.kind == RefKind.ADJ:
            return ir.adjoint(ref.value)
        if ref.kind == RefKind.ONE:
            return sp.Integer(1)
        if ref.kind == RefKind.CONST:
            return ref.value
        if ref.kind == RefKind.PARAM and not ref.value.is_matrix:
            return ref.value.symbol
        raise NotSymbolic

    def visit_Call(self, node):
        name = func_name(node.func)
        if name in BINARY and len(node.args) == 2 and not node.prime:
            return BINARY[name][1](*(self.visit(a) for a in node.args)) ** power(node)
        if len(node.args) != 1:
            raise NotSymbolic
        arg = self.visit(node.args[0])
        cls = activation(name)
        if cls is not None:
            u = sp.Dummy("u", real=True)
            out = sp.diff(cls(u), u).xreplace({u: arg}) if node.prime else cls(arg)
        elif name in FUNCTIONS and not node.prime:
            out = FUNCTIONS[name][1](arg)
        elif name in VECTOR_WIDE and not node.prime:
            out = VECTOR_WIDE[name][1](arg)
        else:
            raise NotSymbolic
        return out ** power(node)

    def visit_mul(self, node):
        """``W a`` and ``W^T g`` as matrix-product atoms; any other product elementwise; a b c is (a b) c."""
        left, right = node.args[0], node.args[1]
        matrix = self._matrix(left)
        out = matrix[0](matrix[1], self.visit(right)) if matrix else self.visit(left) * self.visit(right)
        for factor in node.args[2:]:
            out = out * self.visit(factor)
        return out

    def _matrix(self, left):
        """(MatVecT, W) for a left factor ``W^T``, (MatVec, W) for ``W``, a matrix parameter; else None."""
        if is_op(left, Op.TRANSPOSE) and isinstance(left.args[0], Name):
            ref = self.names.resolve(left.args[0])
            if ref.kind == RefKind.PARAM and ref.value.is_matrix:
                return ir.MatVecT, ref.value.symbol
        if isinstance(left, Name):
            ref = self.names.resolve(left)
            if ref.kind == RefKind.PARAM and ref.value.is_matrix:
                return ir.MatVec, ref.value.symbol
        return None

    def visit_add(self, node):
        return self.visit(node.args[0]) + self.visit(node.args[1])

    def visit_sub(self, node):
        return self.visit(node.args[0]) - self.visit(node.args[1])

    def visit_neg(self, node):
        return -self.visit(node.args[0])

    def visit_div(self, node):
        adjoint = self.names.loss_gradient(node)
        if adjoint is not None:
            return adjoint
        return self.visit(node.args[0]) / self.visit(node.args[1])

    def visit_pow(self, node):
        return self.visit(node.args[0]) ** self.visit(node.args[1])

    def visit_delta(self, node):
        if isinstance(node.args[0], Name):
            return self.names.adjoint_of(node.args[0])
        raise NotSymbolic


def symbolic_equal(d, names: Names, rhs, derived, seconds: float = 2.0):
    """True if SymPy shows claim == derived; None if it could not decide in time or form."""
    walker = ToIr(names)
    try:
        claim = with_lets(names.lets, rhs, walker.visit, walker.let_values)
    except (NotSymbolic, DeriveError):
        return None
    steps = range(-reach(d.cell), reach(d.cell) + 1)  # t-1 .. t+1, or t+k for a tap x_{t-k}
    outs = {}
    for act, out in d.forward.items():
        for k in steps:
            outs[ir.shift(out, k)] = ir.shift(act, k)
    states = {ir.ref(s).key for s in d.cell.states}
    inner = {ir.adjoint(a.target): a.expr for a in d.adjoints if ir.ref(a.target).key not in states}
    diff = claim - derived
    for _ in range(len(inner)):  # adjoints of intermediates in terms of the states' adjoints
        nxt = diff.xreplace(inner)
        if nxt == diff:
            break
        diff = nxt
    diff = diff.xreplace(outs)
    # the pre-activations derive introduced (a_{c,1,t} = s_t - \beta), by their definitions: a claim
    # may write either
    aux = {ir.shift(a.target, k): ir.shift(a.rhs, k) for a in d.cell.assignments if a.aux for k in steps}
    forms = (diff, diff.xreplace(aux)) if aux else (diff,)

    def vanishes() -> bool:
        zeros = []
        for e in forms:  # the cheap test on each form before the slow one
            zeros.append(sp.expand(e))
            if zeros[-1] == 0:
                return True
        return any(sp.simplify(z) == 0 for z in zeros)

    try:
        return True if within(seconds, vanishes) else None
    except TimeoutError:
        return None
