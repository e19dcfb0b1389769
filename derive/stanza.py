"""The machinery every activation stanza uses: ``Param``, the ``Activation`` base, the registry.

The stanzas themselves (one per activation) are in ``derive/activations.py``, which re-exports
these names; a stanza is registered by ``@register`` in catalogue order.
"""

from __future__ import annotations

import difflib
import math
import numbers
from dataclasses import dataclass
from enum import StrEnum

import sympy as sp
from mpmath.libmp import prec_to_dps

from derive.errors import DeriveError
from derive.textout import interval_text

_x = sp.Symbol("x", real=True)

#: name -> Activation subclass; filled by ``@register`` in catalogue order.
REGISTRY: dict[str, type["Activation"]] = {}


class Kind(StrEnum):
    """What an activation maps: one number to one (cell specs use these), or a vector to one."""

    ELEMENTWISE = "elementwise"
    PIECES = "pieces"    # max over k pieces (maxout)
    HALVES = "halves"    # one half gates the other (GLU)


@dataclass(frozen=True)
class Param:
    """A parameter of an activation: its PyTorch default, how others differ, and its domain.

    ``domain`` is the set of values ``derive.activation`` accepts (always finite): what
    PyTorch enforces, narrowed where the formula or its kernel needs it (the comment beside
    each stanza's parameter says why). An ``int`` default makes the parameter an integer.
    """

    name: str
    default: float
    latex: str
    doc: str = ""
    learned: bool = False
    positive: bool = True
    domain: sp.Set = sp.S.Reals

    @property
    def symbol(self) -> sp.Symbol:
        return sp.Symbol(self.name, positive=True) if self.positive else sp.Symbol(self.name, real=True)

    @property
    def exact(self) -> sp.Rational:
        """The default as the exact decimal it is written as (0.01 is 1/100)."""
        return sp.Rational(repr(float(self.default)))

    def value(self, given, owner: str):
        """``given`` as this parameter's value (float, or int for an integer parameter);
        DeriveError unless it is a real number in the domain."""
        shown = repr(given) if len(repr(given)) <= 40 else repr(given)[:37] + "..."
        if isinstance(given, bool) or not isinstance(given, numbers.Real):
            raise DeriveError(f"{owner}: {self.name} must be a real number; got {shown}")
        try:
            number = float(given)
        except OverflowError:  # an int beyond float's range
            number = math.inf
        if not math.isfinite(number):
            raise DeriveError(f"{owner}: {self.name} must be finite; got {shown}")
        exact = sp.Rational(int(given)) if isinstance(given, numbers.Integral) else sp.Rational(repr(number))
        if self.domain.contains(exact) != sp.true:
            raise DeriveError(f"{owner}: {self.name} must be in {set_text(self.domain)}; got {shown}")
        return int(exact) if isinstance(self.default, int) else number


def set_text(s: sp.Set) -> str:
    """A parameter domain as people write it: (0, oo), (-oo, 0) U (0, oo), {1, 2, 3, ...}."""
    if s == sp.S.Naturals:
        return "{1, 2, 3, ...}"
    parts = s.args if isinstance(s, sp.Union) else (s,)
    return " U ".join(interval_text(p) for p in parts)


class Activation(sp.Function):
    """Base of every activation: opaque, one argument, derivative via ``fdiff``."""

    nargs = 1
    latex: str = ""
    text: str = ""
    commands: tuple[str, ...] = ()
    summary: str = ""
    params: tuple[Param, ...] = ()
    #: relations between the parameters that every value must satisfy (hardtanh: min_val <= max_val)
    relations: tuple[sp.core.relational.Relational, ...] = ()
    #: "elementwise"; "halves" (GLU: input split in two along the last axis); "pieces" (Maxout)
    kind: Kind = Kind.ELEMENTWISE
    #: |x| beyond which every power of x in the definition is saturated away (see stable.py)
    clamp: float | None = None
    #: LaTeX of the definition as people write it, when it differs from the printed formula
    display: str = ""
    #: how the frameworks name it; notes for the page
    names: str = ""
    notes: str = ""

    @staticmethod
    def definition(x, **params):  # pragma: no cover - every stanza overrides it
        raise NotImplementedError

    derivative = None  # optional staticmethod (x, y, **params) -> f'(x) in terms of y = f(x)
    #: optional staticmethod (x, **params): the mathematical function, when ``definition`` is a
    #: framework's implementation of it with a shortcut (PyTorch's softplus returns x above its
    #: threshold). Properties are computed from this one; the shortcut is reported apart.
    mathematical = None
    #: optional staticmethod (x): the definition written without cases, for pages (softsign's
    #: x / (1 + |x|)); checked against the definition when a page is made
    closed_form = None

    # parameter handling ----------------------------------------------------
    @classmethod
    def param_values(cls, overrides: dict | None = None) -> dict[str, float]:
        """PyTorch's defaults with ``overrides``; DeriveError for an unknown parameter, a value
        outside its domain or a broken relation between parameters."""
        params = {p.name: p for p in cls.params}
        values = {p.name: p.default for p in cls.params}
        for key, given in (overrides or {}).items():
            if key not in params:
                known = ", ".join(params) or "none"
                raise DeriveError(f"{cls.__name__} has no parameter {key!r} (parameters: {known})")
            values[key] = params[key].value(given, cls.__name__)
        for relation in cls.relations:
            at = {p.symbol: sp.Rational(repr(values[p.name])) for p in cls.params}
            if relation.xreplace(at) != sp.true:
                got = ", ".join(f"{p.name}={values[p.name]!r}" for p in cls.params if p.symbol in relation.free_symbols)
                raise DeriveError(f"{cls.__name__} needs {sp.sstr(relation)}; got {got}")
        return values

    @classmethod
    def exact_params(cls, overrides: dict | None = None) -> dict[str, sp.Rational]:
        return {k: sp.Rational(repr(v)) for k, v in cls.param_values(overrides).items()}

    @classmethod
    def symbolic_params(cls) -> dict[str, sp.Symbol]:
        return {p.name: p.symbol for p in cls.params}

    @classmethod
    def expr(cls, x=_x, overrides: dict | None = None):
        """The definition at the given (default: PyTorch's) parameter values, exactly."""
        return cls.definition(x, **cls.exact_params(overrides))

    @classmethod
    def math_expr(cls, x=_x, overrides: dict | None = None):
        """The mathematical function at the given parameter values: ``mathematical`` when the
        stanza has one, else the definition itself."""
        if cls.mathematical is None:
            return cls.expr(x, overrides)
        return cls.mathematical(x, **cls.exact_params(overrides))

    @classmethod
    def symbolic_math(cls, x=_x):
        """``math_expr`` with the parameters as symbols."""
        if cls.mathematical is None:
            return cls.symbolic(x)
        return cls.mathematical(x, **cls.symbolic_params())

    @classmethod
    def symbolic(cls, x=_x):
        """The definition with its parameters as symbols (what pages print and kernels take)."""
        return cls.definition(x, **cls.symbolic_params())

    # sympy.Function hooks ----------------------------------------------------
    @classmethod
    def eval(cls, arg):
        if isinstance(arg, sp.Float):
            return cls.expr(arg).evalf(prec_to_dps(arg._prec))
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        x = self.args[0]
        if self.derivative is not None:
            return self.derivative(x, self, **self.exact_params())
        return self.prime()(x)

    @classmethod
    def prime(cls) -> type["Prime"]:
        """f' as an opaque function of its own (``gelu'(u)``), for a stanza without an output form."""
        if "_prime" not in cls.__dict__:
            cls._prime = type(f"{cls.__name__}_prime", (Prime,), {"of": cls, "__module__": __name__})
        return cls._prime

    def _latex(self, printer, exp=None):
        arg = printer._print(self.args[0])
        head = self.latex if exp is None else f"{self.latex}^{{{exp}}}"
        return rf"{head}\left({arg}\right)"

    def _sympystr(self, printer):
        return f"{self.text}({printer._print(self.args[0])})"


class Prime(sp.Function):
    """f'(u) of an activation whose derivative has no output form (GELU, Mish, softsign, ...).

    Kept opaque as the activation itself is: derivations print ``\\operatorname{GELU}'(u)``
    instead of the expanded formula, and a kernel computes it with the activation kernels' f'
    (``_act.gelu_d``). A number argument evaluates the derivative of the definition.
    """

    nargs = 1
    of: type[Activation]

    @classmethod
    def expanded(cls, u):
        return sp.diff(cls.of.expr(_x), _x).xreplace({_x: u})

    @classmethod
    def eval(cls, arg):
        if isinstance(arg, sp.Float):
            return cls.expanded(arg).evalf(prec_to_dps(arg._prec))
        if arg.is_Number:
            return cls.expanded(arg)
        return None

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return sp.diff(self.expanded(_x), _x).xreplace({_x: self.args[0]})

    def _latex(self, printer, exp=None):
        arg = printer._print(self.args[0])
        head = f"{self.of.latex}'" if exp is None else f"\\left({self.of.latex}'\\right)^{{{exp}}}"
        return rf"{head}\left({arg}\right)"

    def _sympystr(self, printer):
        return f"{self.of.text}'({printer._print(self.args[0])})"


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
        body = rf"\mathbf{{1}}\left[{printer._print(self.args[0])} > 0\right]"
        return body if exp is None else rf"{body}^{{{exp}}}"

    def _sympystr(self, printer):
        return f"1[{printer._print(self.args[0])} > 0]"


def _sigma(u):
    return 1 / (1 + sp.exp(-u))


def _ops(*names: str) -> tuple[str, ...]:
    """The LaTeX spellings of an activation name: operatorname and mathrm."""
    return tuple(f"\\{w}{{{n}}}" for n in names for w in ("operatorname", "mathrm"))



def get(name: str) -> type[Activation]:
    """The stanza called ``name`` (case- and dash-insensitive); KeyError names the close matches."""
    if not isinstance(name, str):
        raise KeyError(f"an activation name is a string, got {name!r}; `derive list` shows the known ones")
    key = name.strip().lower().replace("-", "_")
    if key in REGISTRY:
        return REGISTRY[key]
    close = difflib.get_close_matches(key, REGISTRY, n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"`derive list` shows the {len(REGISTRY)} known ones"
    raise KeyError(f"unknown activation {name!r}; {hint}")


def elementwise() -> list[str]:
    """Names of the one-argument activations (those a cell spec can use)."""
    return [n for n, cls in REGISTRY.items() if cls.kind == Kind.ELEMENTWISE]


def by_command(command: str) -> type[Activation] | None:
    """The activation a LaTeX spelling such as ``\\sigma`` or ``\\operatorname{relu}`` names."""
    for cls in REGISTRY.values():
        if command in cls.commands:
            return cls
    return None


def all_commands() -> list[str]:
    """Every LaTeX spelling the grammar accepts, sorted."""
    return sorted(c for cls in REGISTRY.values() for c in cls.commands)
