"""Stable forms: rewrite an activation's plain definition into overflow-free primitives.

The pipeline, for each activation (parameters kept as symbols, so one kernel serves every
parameter value):

1. ``rewrite``: the table ``RULES`` turns textbook sub-expressions into primitives that
   have a stable NumPy spelling (``1/(1+e^-u)`` -> sign-split sigmoid, ``log(1+e^u)`` ->
   ``logaddexp(0, u)``, ``e^u - 1`` -> ``expm1``, ``log(1+u)`` -> ``log1p``,
   ``1 + erf(u)`` -> ``erfc(-u)``, ``erfc(-x/sqrt 2)`` -> ``2 Phi(x)`` computed from x,
   ``1 + tanh(u)`` -> ``2 sigma(2u)``);
2. ``clamp_pieces``: each piece of a piecewise definition other than a constant or x is
   evaluated at x clipped to the piece's interval, so the branch ``np.where`` discards
   never overflows (ELU's ``expm1`` at x = 1e300);
3. ``tails``: for stanzas with a ``clamp`` bound L, the formula is evaluated at x clipped
   to [-L, L] and, beyond, replaced by its asymptote a x + b (from ``sympy.limit``), which
   it equals to working precision there (GELU: x Phi(x) = x exactly for x > 40): x^3 never
   overflows;
4. the derivative is SymPy's derivative of the stable form: every primitive's ``fdiff`` is
   itself stable (sigma' = e/(1 + e)^2 with e = exp(-|u|), never sigma(1 - sigma), which is 0
   for u > 37; tanh' = sech^2 from e^{-2|u|}, never 1 - tanh^2, which is 0 for |u| > 19).
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p


x = sp.Symbol("x", real=True)
u = sp.Wild("u")


class Sigmoid(sp.Function):
    """sigma(u), computed split by the sign of u: no exp of a positive number."""

    def fdiff(self, argindex=1):
        return DSigmoid(self.args[0])


class DSigmoid(sp.Function):
    """sigma'(u) = sigma(u) sigma(-u) = e/(1 + e)^2 with e = exp(-|u|): one exp, no
    cancellation (sigma(1 - sigma) is 0 for u > 37)."""

    def fdiff(self, argindex=1):
        v = self.args[0]
        return DSigmoid(v) * (Sigmoid(-v) - Sigmoid(v))


class Softplus(sp.Function):
    """log(1 + e^u) as logaddexp(0, u)."""

    def fdiff(self, argindex=1):
        return Sigmoid(self.args[0])


class Tanh(sp.Function):
    """tanh(u), whose derivative is the stable sech^2."""

    def fdiff(self, argindex=1):
        return Sech2(self.args[0])


class Sech2(sp.Function):
    """sech^2(u) = 4 e^{-2|u|} / (1 + e^{-2|u|})^2."""

    def fdiff(self, argindex=1):
        v = self.args[0]
        return -2 * Sech2(v) * Tanh(v)


class Erfc(sp.Function):
    """erfc(u), kept unevaluated (SymPy would turn erfc(-u) into 2 - erfc(u))."""

    def fdiff(self, argindex=1):
        v = self.args[0]
        return -2 / sp.sqrt(sp.pi) * sp.exp(-v**2)


class Scaled(sp.Function):
    """a (u) kept as written (SymPy would distribute a over the sum u)."""

    nargs = 2


class Phi(sp.Function):
    """The normal CDF from x itself: erfc(-x/sqrt 2)/2 would round x/sqrt 2 first, and
    erfc's condition number 2u^2 turns that half-ULP into ~x^2 ULP in the left tail."""

    def fdiff(self, argindex=1):
        return Gauss(self.args[0]) / sp.sqrt(2 * sp.pi)


class Gauss(sp.Function):
    """exp(-x^2/2) with x^2 formed exactly (hi + lo), for the same reason."""

    def fdiff(self, argindex=1):
        v = self.args[0]
        return -v * Gauss(v)


class Clip(sp.Function):
    """x clipped to [lo, hi]; the identity wherever the clipped expression is used."""

    nargs = 3

    def fdiff(self, argindex=1):
        return sp.Integer(1) if argindex == 1 else sp.Integer(0)


#: (name, pattern, replacement): applied in order, each everywhere in the expression.
RULES = [
    ("sign-split sigmoid", 1 / (1 + sp.exp(-u)), lambda u: Sigmoid(u)),
    ("logaddexp softplus", sp.log(1 + sp.exp(u)), lambda u: Softplus(u)),
    ("expm1", sp.exp(u) - 1, lambda u: expm1(u)),
    ("log1p", sp.log(1 + u), lambda u: log1p(u)),
    ("erfc for 1 + erf", 1 + sp.erf(u), lambda u: Erfc(-u)),
    ("normal CDF from x", Erfc(-sp.sqrt(2) * u / 2), lambda u: 2 * Phi(u)),
    ("sigmoid for 1 + tanh", 1 + sp.tanh(u), lambda u: 2 * Sigmoid(2 * u)),
    ("tanh with stable derivative", sp.tanh(u), lambda u: Tanh(u)),
]


def rewrite(expr):
    """Apply ``RULES`` in order; returns (expression, names of the rules that fired)."""
    fired = []
    for name, pattern, repl in RULES:
        new = expr.replace(pattern, repl)
        if new != expr:
            fired.append(name)
        expr = new
    return expr, fired


def _interval(cond) -> sp.Interval | None:
    """The x-interval of a one-sided condition such as ``x <= 0``; None if not of that form."""
    if not isinstance(cond, sp.core.relational.Relational) or cond.free_symbols != {x}:
        return None
    return cond.as_set()


def _overflows(expr) -> bool:
    """Any piece but a constant or x itself can overflow or divide by zero off its piece
    (selu's scale * x at x = -1.8e308, softsign's x/(1 - x) at x = 1)."""
    return expr.has(x) and expr != x and not isinstance(expr, Scaled)


def clamp_pieces(expr):
    """Evaluate each piece (but constants and x) at x clipped to the interval where it is selected."""
    if not isinstance(expr, sp.Piecewise):
        return expr, False
    out, changed, taken = [], False, sp.S.EmptySet
    for piece, cond in expr.args:
        dom = sp.S.Reals if cond == sp.true else _interval(cond)
        selected = None if dom is None or taken is None else sp.Complement(dom, taken)
        if _overflows(piece) and isinstance(selected, sp.Interval) and not piece.has(Clip):
            piece = piece.xreplace({x: Clip(x, selected.inf, selected.sup)})
            changed = True
        out.append((piece, cond))
        taken = None if dom is None or taken is None else sp.Union(taken, dom)
    return sp.Piecewise(*out), changed


def tails(expr, bound):
    """Beyond +-bound use the asymptote a x + b; inside, evaluate at x clipped to the bound."""
    b = sp.Float(bound)
    plain = (expr.replace(Erfc, lambda v: 1 - sp.erf(v)).replace(Sigmoid, lambda v: 1 / (1 + sp.exp(-v)))
             .replace(Phi, lambda v: (1 + sp.erf(v / sp.sqrt(2))) / 2))
    sides = []
    for end in (-sp.oo, sp.oo):
        slope = sp.limit(plain / x, x, end)
        sides.append(slope * x + sp.limit(plain - slope * x, x, end))
    middle = expr.xreplace({x: Clip(x, -b, b)})
    return sp.Piecewise((sides[0], x < -b), (middle, x <= b), (sides[1], True))


def root_form(expr):
    """A linear piece a x + b as a (x + b/a): x + 3 is exact near the kink -3 (Sterbenz),
    x/6 + 1/2 loses everything there (hard sigmoid at x = -2.9999: 5000 ULP)."""
    if isinstance(expr, sp.Piecewise):
        return sp.Piecewise(*[(root_form(e), c) for e, c in expr.args])
    poly = sp.Poly(expr, x) if expr.is_polynomial(x) else None
    if poly is not None and poly.degree() == 1 and poly.nth(0) != 0 and poly.nth(1).is_Rational:
        a, b = poly.nth(1), poly.nth(0)
        return Scaled(x + b / a, a) if a != 1 else x + b
    return expr


def _tidy(expr):
    """Combine rational pieces of a derivative: x/(1-x)^2 + 1/(1-x) cancels; 1/(1-x)^2 does not."""
    if isinstance(expr, sp.Piecewise):
        return sp.Piecewise(*[(_tidy(e), c) for e, c in expr.args])
    if expr.is_rational_function(x) and not expr.is_polynomial(x):
        return sp.factor(expr)
    return expr


def stable_form(cls, *variables):
    """(f, {variable: df/dvariable}, rules fired) in stable primitives, parameters symbolic."""
    variables = variables or (x,)
    f = cls.definition(*variables, **cls.symbolic_params())
    f, fired = rewrite(f)
    if cls.clamp is not None:
        f = tails(f, cls.clamp)
        fired.append(f"asymptotes beyond |x| = {cls.clamp:g}")
    grads = {v: _tidy(sp.diff(f, v)) for v in variables}
    f, clamped = clamp_pieces(root_form(f))
    grads = {v: clamp_pieces(g)[0] for v, g in grads.items()}
    if clamped:
        fired.append("piece clipped to its interval")
    return f, grads, fired


def param_gradients(cls):
    """{param: d f / d param} in stable primitives for the learned parameters."""
    f, _ = rewrite(cls.definition(x, **cls.symbolic_params()))
    return {p.name: clamp_pieces(_tidy(sp.diff(f, p.symbol)))[0] for p in cls.params if p.learned}
