"""Activation functions as opaque SymPy functions that know their derivative.

Each activation is one stanza: a ``sympy.Function`` subclass with

* ``definition(x)``: the explicit SymPy expression (used for numbers and properties);
* ``derivative(x, y)``: f'(x), written with the output ``y = f(x)`` where that is
  possible (sigma' = y(1 - y), tanh' = 1 - y^2), so BPTT formulas reuse forward values;
* ``latex`` / ``text``: how the function is printed;
* ``commands``: the LaTeX spellings the grammar accepts (``\\sigma``, ``\\operatorname{relu}``).

Kept opaque, ``sigmoid(z)`` stays ``sigmoid(z)`` in every expression: unrolled graphs
stay small, printed formulas stay readable. A ``Float`` argument evaluates numerically
from the definition, at the argument's precision.
"""

from __future__ import annotations

from functools import lru_cache

import sympy as sp
from mpmath.libmp import prec_to_dps

_x = sp.Symbol("x", real=True)

#: name -> Activation subclass; filled by ``@register``.
REGISTRY: dict[str, type["Activation"]] = {}


class Activation(sp.Function):
    """Base of every activation: opaque, one argument, derivative via ``fdiff``."""

    nargs = 1
    latex: str = ""
    text: str = ""
    commands: tuple[str, ...] = ()
    summary: str = ""

    @staticmethod
    def definition(x):  # pragma: no cover - every stanza overrides it
        raise NotImplementedError

    @staticmethod
    def derivative(x, y):  # pragma: no cover - every stanza overrides it
        raise NotImplementedError

    @classmethod
    def eval(cls, arg):
        if isinstance(arg, sp.Float):
            return cls.definition(arg).evalf(prec_to_dps(arg._prec))
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return self.derivative(self.args[0], self)

    def _latex(self, printer, exp=None):
        arg = printer._print(self.args[0])
        head = self.latex if exp is None else f"{self.latex}^{{{exp}}}"
        return rf"{head}\left({arg}\right)"

    def _sympystr(self, printer):
        return f"{self.text}({printer._print(self.args[0])})"


def register(cls: type[Activation]) -> type[Activation]:
    """Add an activation stanza to the registry under its class name."""
    REGISTRY[cls.__name__] = cls
    return cls


class step(sp.Function):
    """The indicator 1[x > 0]: ReLU's derivative, 0 at 0 as in PyTorch and JAX."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if arg.is_Number:
            return sp.Integer(1) if arg > 0 else sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    def _latex(self, printer, exp=None):
        body = rf"\mathbb{{1}}\left[{printer._print(self.args[0])} > 0\right]"
        return body if exp is None else rf"{body}^{{{exp}}}"

    def _sympystr(self, printer):
        return f"1[{printer._print(self.args[0])} > 0]"


@register
class sigmoid(Activation):
    latex = r"\sigma"
    text = "sigma"
    commands = (r"\sigma", r"\operatorname{sigmoid}", r"\mathrm{sigmoid}", r"\operatorname{sigm}")
    summary = "logistic sigmoid 1/(1 + e^-x): the gate activation"

    @staticmethod
    def definition(x):
        return 1 / (1 + sp.exp(-x))

    @staticmethod
    def derivative(x, y):
        return y * (1 - y)


@register
class tanh(Activation):
    latex = r"\tanh"
    text = "tanh"
    commands = (r"\tanh", r"\operatorname{tanh}", r"\mathrm{tanh}")
    summary = "hyperbolic tangent: candidate and output activation"

    @staticmethod
    def definition(x):
        return sp.tanh(x)

    @staticmethod
    def derivative(x, y):
        return 1 - y**2


@register
class relu(Activation):
    latex = r"\operatorname{ReLU}"
    text = "relu"
    commands = (r"\operatorname{ReLU}", r"\operatorname{relu}", r"\mathrm{ReLU}", r"\mathrm{relu}")
    summary = "rectifier max(0, x); derivative 1[x > 0] (0 at 0, as PyTorch)"

    @staticmethod
    def definition(x):
        return sp.Piecewise((0, x <= 0), (x, True))

    @staticmethod
    def derivative(x, y):
        return step(x)


@register
class identity(Activation):
    latex = r"\operatorname{id}"
    text = "id"
    commands = (r"\operatorname{id}", r"\operatorname{identity}", r"\mathrm{id}")
    summary = "identity x (no activation)"

    @classmethod
    def eval(cls, arg):
        return arg

    @staticmethod
    def definition(x):
        return x

    @staticmethod
    def derivative(x, y):
        return sp.Integer(1)


def by_command(command: str) -> type[Activation] | None:
    """The activation a LaTeX spelling such as ``\\sigma`` or ``\\operatorname{relu}`` names."""
    for cls in REGISTRY.values():
        if command in cls.commands:
            return cls
    return None


def all_commands() -> list[str]:
    """Every LaTeX spelling the grammar accepts, sorted."""
    return sorted(c for cls in REGISTRY.values() for c in cls.commands)


@lru_cache(maxsize=None)
def value_range(name: str) -> sp.Set:
    """The range of an activation over the reals, computed from its definition."""
    expr = REGISTRY[name].definition(_x)
    if isinstance(expr, sp.Piecewise):
        pieces = expr.as_expr_set_pairs(sp.S.Reals)
        return sp.Union(*(sp.calculus.util.function_range(e, _x, dom) for e, dom in pieces))
    return sp.calculus.util.function_range(expr, _x, sp.S.Reals)


def is_gate_activation(name: str) -> bool:
    """True when the activation's range lies within [0, 1] (the seeds' rule for gates)."""
    return value_range(name).is_subset(sp.Interval(0, 1))
