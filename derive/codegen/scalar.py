"""Elementwise IR expressions as one scalar Python expression, for the compiled kernels.

``ScalarPrinter(leaf).text(expr)`` writes ``expr`` as the right-hand side of one statement that
runs at one batch row and one unit (``f_t * c_all[_t, _b, _j] + g_t * i_t``): ``leaf`` spells the
symbols, the matrix products and the parameters at that element. Numbers are Python floats,
functions are ``math`` functions or the scalar helpers of ``derive.jitmath`` (``_jm.sigmoid``,
``_jm.step``, ``_jm.heaviside``). Whatever has no rule here (a vector-wide ``mean``, an activation with
no scalar form yet) is a ``CodegenError`` naming the construct, so the compiled emitter refuses
the cell instead of guessing.
"""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.codegen.ewise import CodegenError, number
from derive.stanza import Prime, step
from derive.symbolic import ir
from derive.symbolic.functions import maximum, minimum
from derive.symbolic.printing import text as ir_text

#: activations with a scalar form: name -> format of the call on the argument ``{a}``
ACTIVATIONS = {
    "sigmoid": "_jm.sigmoid({a})",
    "tanh": "_jm.tanh({a})",
    "relu": "max({a}, 0.0)",
    "identity": "{a}",
    "softsign": "{a} / (1.0 + abs({a}))",
}

#: derivatives of activations without an output form (``stanza.Prime``): name -> format on ``{a}``
PRIMES = {
    "softsign": "1.0 / ((1.0 + abs({a})) ** 2)",
}

#: the spec language's functions: SymPy class -> format on the arguments ``{a}``, ``{b}``
FUNCTIONS = {
    sp.exp: "math.exp({a})",
    sp.log: "math.log({a})",
    sp.Abs: "abs({a})",
    sp.sign: "_jm.sign({a})",
    maximum: "max({a}, {b})",
    minimum: "min({a}, {b})",
    sp.Heaviside: "_jm.heaviside({a})",  # H(0) = 1/2: the tie rule of torch.maximum
    step: "_jm.step({a})",  # 1[a > 0]: ReLU's derivative, 0 at 0
}


class Grouped(str):
    """A leaf that is a whole expression: parenthesized where it is an operand, bare as an argument."""

    def __new__(cls, inner: str):
        self = super().__new__(cls, f"({inner})")
        self.inner = inner
        return self


def bare(text: str) -> str:
    return text.inner if isinstance(text, Grouped) else text


def construct(expr) -> str:
    """How a message names a construct: ``mean(...)``, ``the activation gelu``."""
    if isinstance(expr, acts.Activation):
        return f"the activation {type(expr).__name__}"
    if isinstance(expr, Prime):
        return f"the derivative of the activation {expr.of.__name__}"
    return f"{type(expr).__name__} ({ir_text(expr)})"


class ScalarPrinter:
    """Prints elementwise IR expressions; ``leaf(expr)`` gives the code of a leaf or None."""

    def __init__(self, leaf):
        self.leaf = leaf

    def text(self, expr) -> str:
        return self._print(expr, 0)

    # precedence: 0 a whole expression, 1 a term of a sum, 2 a factor, 3 a power's base
    def _print(self, expr, prec: int) -> str:
        found = self.leaf(expr)
        if found is not None:
            return found
        if expr.is_number:
            value = number(expr)
            return f"({value})" if value.startswith("-") and prec >= 2 else value
        if isinstance(expr, sp.Add):
            return self._wrap(self._sum(expr), prec > 1)
        if isinstance(expr, sp.Mul):
            return self._wrap(self._product(expr), prec > 2)
        if isinstance(expr, sp.Pow):
            return self._power(expr, prec)
        if isinstance(expr, acts.Activation) and type(expr).__name__ in ACTIVATIONS:
            return ACTIVATIONS[type(expr).__name__].format(a=bare(self._print(expr.args[0], 3)))
        if isinstance(expr, Prime) and expr.of.__name__ in PRIMES:
            return PRIMES[expr.of.__name__].format(a=self._print(expr.args[0], 3))
        if type(expr) in FUNCTIONS:
            args = [bare(self._print(a, 0)) for a in expr.args[:2]]
            return FUNCTIONS[type(expr)].format(a=args[0], b=args[-1])
        raise CodegenError(f"no scalar form for {construct(expr)}")

    @staticmethod
    def _wrap(text: str, paren: bool) -> str:
        return f"({text})" if paren else text

    def _sum(self, expr) -> str:
        terms = sorted(expr.args, key=lambda t: (t.could_extract_minus_sign(), sp.default_sort_key(t)))
        out = self._print(terms[0], 1)
        for t in terms[1:]:
            if t.could_extract_minus_sign():
                out += f" - {self._print(-t, 2)}"
            else:
                out += f" + {self._print(t, 1)}"
        return out

    def _product(self, expr) -> str:
        coeff, rest = expr.as_coeff_mul()
        if coeff == -1:
            return f"-{self._print(sp.Mul(*rest), 3)}"
        factors = ([] if coeff == 1 else [coeff]) + list(rest)
        nums = [f for f in factors if not (isinstance(f, sp.Pow) and f.exp.is_negative and f.exp.is_Integer)]
        dens = [1 / f for f in factors if isinstance(f, sp.Pow) and f.exp.is_negative and f.exp.is_Integer]
        text = " * ".join(self._print(f, 2) for f in nums) if nums else "1.0"
        for d in dens:
            text += f" / {self._print(d, 3)}"
        return text

    def _power(self, expr, prec: int) -> str:
        base, e = expr.base, expr.exp
        if e == sp.Rational(1, 2):
            return f"math.sqrt({self._print(base, 0)})"
        if e == -sp.Rational(1, 2):
            return self._wrap(f"1.0 / math.sqrt({self._print(base, 0)})", prec > 2)
        if e.is_Integer and e < 0:
            return self._wrap(f"1.0 / {self._print(base ** -e, 3)}", prec > 2)
        if e == 2:
            b = self._print(base, 3)
            return self._wrap(f"{b} * {b}", prec > 2) if self.leaf(base) is not None else \
                self._wrap(f"{b} ** 2", prec > 2)
        if e.is_Integer or e.is_Rational:
            return self._wrap(f"{self._print(base, 3)} ** {number(e)}", prec > 2)
        raise CodegenError(f"no scalar form for the power {ir_text(expr)}")
