"""Claims about a cell's parameter count (``N = 4(H I + H^2 + 2H)``): a polynomial in I, H (and
P), compared with the count in the cell's own convention, then in the others."""

from __future__ import annotations

import sympy as sp

from derive.checker.lets import with_lets
from derive.checker.names import Names, RefKind
from derive.checker.result import Result, Verdict
from derive.checker.visitor import Visitor
from derive.errors import DeriveError, Pos
from derive.symbolic import counts
from derive.symbolic.cell import H, I, P
from derive.syntax.formulas import Name

COUNT_NAMES = ("N", "params", "n_params", "num_params", "count", "N_params", "N_{params}")


def check_count(cell, names: Names, f) -> Result:
    walker = Poly(names)
    claim = sp.expand(with_lets(names.lets, f.rhs, walker.visit, walker.let_values))
    own = counts.default_convention(cell)
    options = []
    for conv in (own, *[c for c in counts.CONVENTIONS if c != own]):
        for bias in (True, False):
            options.append((conv, bias, False))
    if counts.supports_projection(cell):
        options.append(("pytorch", True, True))
    table = {o: sp.expand(counts.layer_count(cell, o[0], o[1], o[2])) for o in options}
    truth = table[(own, True, False)]
    quantity = f"the number of parameters of one layer and direction of {cell.name}"
    derived = f"{sp.factor(truth)} ({own} convention, with biases)"
    if sp.expand(claim - truth) == 0:
        return Result(Verdict.CORRECT, quantity, derived, "symbolically, as polynomials in I, H" +
                      (", P" if P in truth.free_symbols else ""), f.text)
    for (conv, bias, proj), value in table.items():
        if sp.expand(claim - value) == 0:
            what = f"the {conv} convention ({counts.bias_style(cell, conv)} bias)" if bias else \
                f"the {conv} convention without biases (bias=False)"
            if proj:
                what = "PyTorch with proj_size = P (W_{hr} added)"
            return Result(Verdict.EQUIVALENT, quantity, derived, "symbolically", f.text,
                          convention=f"it counts {what}: {sp.factor(value)}")
    point = {I: 10, H: 20, P: 5}
    cv, tv = claim.subs(point), truth.subs(point)
    diff = sp.factor(truth - claim)
    return Result(Verdict.WRONG, quantity, derived, "symbolically", f.text,
                  hint=f"the derivation minus your formula: {diff}", where="I=10, H=20" +
                  (", P=5" if P in (truth.free_symbols | claim.free_symbols) else ""),
                  counterexample={"I": 10, "H": 20}, left=tv, right=cv)


class Poly(Visitor):
    """The right side as a polynomial in the sizes I, H, P; any other name or operator is an error."""

    def __init__(self, names: Names):
        self.names = names
        self.let_values: dict = {}  # --let name -> its polynomial

    def generic(self, node):
        raise DeriveError("a parameter count is a polynomial in I, H (and P)", getattr(node, "pos", Pos(1, 1)))

    def visit_Call(self, node):
        if node.bare and not node.prime and len(node.args) == 1 and node.power == 1:
            return self.visit(Name(node.func, node.pos)) * self.visit(node.args[0])  # H(I + H), HI(...): a product
        return self.generic(node)

    def visit_Num(self, node):
        return sp.Rational(node.value)

    def visit_Name(self, node):
        if len(node.text) > 1 and set(node.text) <= {"I", "H", "P"} and node.text not in self.names.lets:
            return sp.Mul(*(self.visit(Name(ch, node.pos)) for ch in node.text))  # 4HI, IH: sizes side by side
        ref = self.names.resolve(node)
        if ref.kind == RefKind.LET:
            return self.let_values[node.text] if node.text in self.let_values else self.visit(ref.value)
        if ref.kind == RefKind.DIM:
            return ref.value
        raise DeriveError(f"{node.text}: a parameter count is a polynomial in I, H (and P)", node.pos)

    def visit_add(self, node):
        return self.visit(node.args[0]) + self.visit(node.args[1])

    def visit_sub(self, node):
        return self.visit(node.args[0]) - self.visit(node.args[1])

    def visit_mul(self, node):
        factors = []
        for a in node.args:
            factors.append(self.visit(a))
        return sp.Mul(*factors)

    def visit_neg(self, node):
        return -self.visit(node.args[0])

    def visit_pow(self, node):
        base, exp = self.visit(node.args[0]), self.visit(node.args[1])
        if not (exp.is_Integer and 0 <= exp <= 8):
            raise DeriveError("a power in a parameter count must be a small whole number", node.pos)
        return base ** exp

    def visit_div(self, node):
        num, den = self.visit(node.args[0]), self.visit(node.args[1])
        if den == 0:
            raise DeriveError("division by zero", node.pos)
        return num / den
