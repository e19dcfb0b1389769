"""Claims about an elementwise activation: its derivative ``f'(x) = ...`` or its definition
``f(x) = ...``, compared at 41 points in [-6, 6] at 30 digits, then symbolically."""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.checker.deadline import within
from derive.checker.functions import FUNCTIONS, activation, func_name, power
from derive.checker.lets import read_lets, with_lets
from derive.checker.result import Result, Verdict
from derive.checker.tree import text
from derive.checker.visitor import Op, Visitor, is_op
from derive.errors import DeriveError, Pos
from derive.syntax.formulas import Name, parse_formula

#: activations a wrong claim is tried on, only to say whose formula it is: each pair is two
#: functions (GELU and its tanh approximation differ by up to 5e-4), so the verdict stays wrong
ACT_FAMILY = {
    "gelu": ("gelu_tanh",), "gelu_tanh": ("gelu",), "hardsigmoid": ("hardsigmoid_keras2",),
    "hardsigmoid_keras2": ("hardsigmoid",), "silu": ("swish",), "swish": ("silu",), "elu": ("celu", "selu"),
}

#: the parameters' Greek names in the papers (SELU's lambda and alpha, a leaky slope alpha)
PARAM_ALIASES = {"selu": {"lambda": "scale"}, "leaky_relu": {"alpha": "negative_slope"},
                 "prelu": {"alpha": "a"}, "softplus": {"beta": "beta"}, "elu": {"alpha": "alpha"}}
#: the calls the grammar makes of a \\begin{cases} block
CASES = {"cases": None, "otherwise": None, "gt": sp.Gt, "lt": sp.Lt, "ge": sp.Ge, "le": sp.Le}

_X = sp.Symbol("x", real=True)
POINTS = [sp.Float(-6 + 12 * (k + 0.5) / 41 + 0.0137, 30) for k in range(41)]


def check_activation(name: str, formula: str, lets=()) -> Result:
    cls = acts.get(name)
    if cls.kind != "elementwise":
        raise DeriveError(f"{name} is not elementwise; derive check takes one-argument activations")
    f = parse_formula(formula)
    lets = read_lets(lets)
    side = ActivationSide(cls)
    prime, var = side.visit(f.lhs)
    truth = sp.diff(cls.expr(_X), _X) if prime else cls.expr(_X)
    walker = ActExpr(cls, var, side.func)
    claim = with_lets(lets, f.rhs, walker.visit, walker.let_values)
    quantity = f"{name}'({var})" if prime else f"{name}({var})"
    derived = f"{quantity} = {sp.sstr(truth)}"
    bad = _first_difference(claim, truth)
    how = f"numerically at {len(POINTS)} points in [-6, 6]"
    if bad is None:
        sym = None
        try:
            sym = within(2.0, lambda: bool(sp.simplify(claim - truth) == 0))
        except TimeoutError:
            pass
        return Result(Verdict.CORRECT, quantity, derived, "symbolically" if sym else how, f.text)
    for other in ACT_FAMILY.get(cls.__name__, ()):
        o = acts.get(other)
        alt = sp.diff(o.expr(_X), _X) if prime else o.expr(_X)
        if _first_difference(claim, alt) is None:
            note = f"this is the formula for {other} ({o.summary}); {name} is another function"
            break
    else:
        note = ""
    x0, cv, tv = bad
    return Result(Verdict.WRONG, quantity, derived, how, f.text, where=f"{var} = {x0}", other=note,
                  counterexample={var: x0}, left=tv, right=cv)


def _first_difference(a, b):
    for p in POINTS:
        try:
            va = complex(a.xreplace({_X: p}).evalf(30))
            vb = complex(b.xreplace({_X: p}).evalf(30))
        except (TypeError, ValueError, ZeroDivisionError):
            return (float(p), "undefined", "")
        if not (abs(va - vb) <= 1e-12 * (1 + abs(vb))):
            return (float(p), _num(va), _num(vb))
    return None


def _num(z: complex):
    """A real value as a float; a complex one (log of a negative number) as text saying so."""
    if abs(z.imag) < 1e-300:
        return z.real
    return f"not a real number ({z.real:.6g}{z.imag:+.6g}i)"


class ActivationSide(Visitor):
    """The left side: f'(x), \\sigma'(x), gelu'(x) -> (True, "x"); f(x) -> (False, "x");
    \\frac{\\partial f}{\\partial x} -> (True, "x"); anything else is an error."""

    def __init__(self, cls):
        self.cls = cls
        self.func = "f"  # the function's name as the left side writes it: f, \\phi, \\sigma, g

    def generic(self, lhs):
        cls = self.cls
        raise DeriveError(f"the left side must be f'(x) (or {cls.latex or cls.__name__}'(x)) for the derivative, "
                          f"or f(x) for the definition", getattr(lhs, "pos", Pos(1, 1)))

    def visit_Call(self, lhs):
        if len(lhs.args) == 1 and isinstance(lhs.args[0], Name):
            fn = func_name(lhs.func)
            if fn in ("f", "phi", "g", "h") or activation(fn) is self.cls:
                self.func = lhs.func
                return lhs.prime, lhs.args[0].text
        return self.generic(lhs)

    def visit_div(self, lhs):
        """``\\frac{\\partial f}{\\partial x}`` or ``\\frac{df}{dx}``: the derivative."""
        if all(is_op(a, Op.PARTIAL) for a in lhs.args):
            var = lhs.args[1].args[0]
            if isinstance(var, Name):
                return True, var.text
        top, bottom = lhs.args
        if isinstance(top, Name) and isinstance(bottom, Name) and top.text in ("df", "dy", "d\\sigma") and \
                bottom.text.startswith("d") and len(bottom.text) == 2:
            return True, bottom.text[1:]
        return self.generic(lhs)


class ActExpr(Visitor):
    """The right side as a SymPy expression in x: the variable, the activation's parameters,
    e, \\pi, the functions and the activations (``f`` is this one)."""

    def __init__(self, cls, var: str, func: str = "f"):
        self.cls = cls
        self.var = var
        self.func = func  # the left side's name of the function: on the right it is the function too
        self.params = {p.name: v for p, v in zip(cls.params, cls.exact_params().values())}
        for alias, name in PARAM_ALIASES.get(cls.__name__, {}).items():
            self.params.setdefault(alias, self.params[name])
        self.let_values: dict = {}  # --let name -> its SymPy value

    def generic(self, node):
        for child in node.args:  # the operands first: an unknown name inside is the error to report
            if not isinstance(child, int):
                self.visit(child)
        raise DeriveError(f"{text(node)} has no meaning for a scalar function", node.pos)

    def visit_Num(self, node):
        return sp.Rational(node.value)

    def visit_Name(self, node):
        if node.text in self.let_values:
            return self.let_values[node.text]
        key = node.text.lstrip("\\")
        if node.text == self.var:
            return _X
        if key in self.params:
            return self.params[key]
        if key == "pi":
            return sp.pi
        if key == "e":
            return sp.E
        var, params = self.var, self.params
        raise DeriveError(f"unknown symbol {node.text}; known: {var}, f({var}), "
                          f"{', '.join(params) + ', ' if params else ''}e, \\pi and functions "
                          f"({', '.join(sorted(FUNCTIONS))}, the activations)", node.pos)

    def visit_Call(self, node):
        cls, var = self.cls, self.var
        fn = func_name(node.func)
        if not node.bare and node.func in CASES:  # \\begin{cases} ... \\end{cases} and its conditions
            return self.cases(node)
        args = []
        for a in node.args:
            args.append(self.visit(a))
        if fn in ("max", "min") and len(args) == 2 and not node.prime:
            out = (sp.Max if fn == "max" else sp.Min)(*args)
        elif len(args) != 1:
            raise DeriveError(f"{node.func} takes one argument", node.pos)
        elif fn == "f" or node.func == self.func:
            out = sp.diff(cls.expr(_X), _X).xreplace({_X: args[0]}) if node.prime else cls.expr(args[0])
        elif fn in ("phi",) and node.func.startswith("\\P") and not node.prime:  # \Phi: the normal CDF
            out = (1 + sp.erf(args[0] / sp.sqrt(2))) / 2
        elif fn in ("phi",) and not node.prime:  # \phi: the normal density (GELU's derivative x \phi(x))
            out = sp.exp(-args[0] ** 2 / 2) / sp.sqrt(2 * sp.pi)
        elif activation(fn) is not None:
            other = activation(fn)
            out = sp.diff(other.expr(_X), _X).xreplace({_X: args[0]}) if node.prime else other.expr(args[0])
        elif fn in FUNCTIONS and not node.prime:
            out = FUNCTIONS[fn][1](args[0])
        elif node.bare and node.func == var:
            out = _X * args[0]
        else:
            raise DeriveError(f"unknown function {node.func}", node.pos)
        return out ** power(node)

    def cases(self, node):
        """A piecewise definition: value, condition, value, condition, ...; ``otherwise`` is the rest."""
        if node.func == "otherwise":
            return sp.true
        if node.func != "cases":
            a, b = (self.visit(x) for x in node.args)
            return CASES[node.func](a, b)
        pieces = [(self.visit(v), self.visit(c)) for v, c in zip(node.args[::2], node.args[1::2])]
        return sp.Piecewise(*pieces, (sp.nan, True))

    def visit_add(self, node):
        return self.visit(node.args[0]) + self.visit(node.args[1])

    def visit_sub(self, node):
        return self.visit(node.args[0]) - self.visit(node.args[1])

    def visit_mul(self, node):
        factors = []
        for a in node.args:
            factors.append(self.visit(a))
        return sp.Mul(*factors)

    def visit_div(self, node):
        return self.visit(node.args[0]) / self.visit(node.args[1])

    def visit_neg(self, node):
        return -self.visit(node.args[0])

    def visit_pow(self, node):
        return self.visit(node.args[0]) ** self.visit(node.args[1])
