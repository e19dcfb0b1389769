"""The functions of the spec language that are not catalogue activations.

``\\exp``, ``\\log`` (``\\ln``), ``\\sqrt``, ``\\abs`` (also ``|x|``) and the two-argument
``\\max`` and ``\\min``. The one-argument ones are SymPy's own ``exp``, ``log``, ``sqrt``
and ``Abs``, so their derivatives are SymPy's: ``exp``, ``1/x``, ``1/(2 sqrt x)`` and
``sign x`` (0 at 0, as ``torch.abs``). ``maximum`` and ``minimum`` are two-argument
functions of their own (SymPy's ``Max`` flattens ``Max(Max(a, b), c)`` into one
three-way maximum, whose derivative at a tie is not PyTorch's): the derivative of
``max(a, b)`` is ``H(a - b)`` for ``a`` and ``H(b - a)`` for ``b``, with the Heaviside
step ``H(0) = 1/2``, which is what ``torch.maximum`` and ``torch.minimum`` return at a
tie (the gradient split evenly).

Two are vector-wide: ``\\operatorname{mean}(u)`` is, for each sample, the mean of ``u`` over its
units broadcast to every unit (``ir.Mean``: the one vector-wide atom of the IR, whose Jacobian
``(1/n) 1 1^T`` is dense), and ``\\operatorname{LN}(u)`` is layer normalisation without gain and
bias, sugar for ``(u - mean(u)) / sqrt(mean((u - mean(u))^2))`` (the population variance and no
epsilon, as Ba, Kiros & Hinton (2016) print it); a spec writes the gain and bias elementwise,
``a \\odot \\operatorname{LN}(u) + b``. Both take a vector, never a number.

Domains: ``\\log`` needs a positive argument and ``\\sqrt`` a non-negative one; elsewhere
the kernel gives NaN as NumPy and PyTorch do, and the kernel self-check refuses a cell
whose argument leaves the domain at its random test point (a located error).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from derive.symbolic import ir


class _Extreme(sp.Function):
    """``max(a, b)`` or ``min(a, b)`` elementwise: d/da = H(s (a - b)), d/db = H(s (b - a)) with
    s = +1 for max and -1 for min, H(0) = 1/2 (torch.maximum, torch.minimum)."""

    nargs = 2
    word: str
    numeric: type
    sign: int

    @classmethod
    def eval(cls, a, b):
        if a.is_number and b.is_number:
            return cls.numeric(a, b)
        if a == b:
            return a
        return None

    def fdiff(self, argindex=1):
        a, b = self.args
        if argindex in (1, 2):
            return sp.Heaviside(self.sign * ((a - b) if argindex == 1 else (b - a)))
        raise sp.ArgumentIndexError(self, argindex)

    def _latex(self, printer, exp=None):
        body = rf"\{self.word}\left({printer._print(self.args[0])}, {printer._print(self.args[1])}\right)"
        return body if exp is None else rf"{body}^{{{exp}}}"

    def _sympystr(self, printer):
        return f"{self.word}({printer._print(self.args[0])}, {printer._print(self.args[1])})"


class maximum(_Extreme):
    """``max(a, b)`` elementwise; d/da = H(a - b), d/db = H(b - a), H(0) = 1/2 (torch.maximum)."""

    word, numeric, sign = "max", sp.Max, 1


class minimum(_Extreme):
    """``min(a, b)`` elementwise; d/da = H(b - a), d/db = H(a - b), H(0) = 1/2 (torch.minimum)."""

    word, numeric, sign = "min", sp.Min, -1


@dataclass(frozen=True)
class SpecFunction:
    """A function a cell spec may call: its spellings, arity, SymPy form and domain."""

    commands: tuple
    arity: int
    build: Callable
    summary: str
    domain: str = ""  # "positive", "non-negative" or "" (every real number)
    vector_wide: bool = False  # reads every unit of its argument (mean, LN): the argument must be a vector


def layer_norm(u):
    """``LN(u) = (u - mean(u)) / sqrt(mean((u - mean(u))^2))``: over the units, population variance,
    no epsilon (Ba, Kiros & Hinton 2016); gain and bias are the spec's, elementwise."""
    centred = u - ir.Mean(u)
    return centred / sp.sqrt(ir.Mean(centred ** 2))


FUNCTIONS = (
    SpecFunction((r"\exp",), 1, sp.exp, "e^x; derivative e^x"),
    SpecFunction((r"\log", r"\ln"), 1, sp.log, "natural logarithm; derivative 1/x", "positive"),
    SpecFunction((r"\sqrt",), 1, sp.sqrt, "square root, also \\sqrt{x}; derivative 1/(2 sqrt x)", "non-negative"),
    SpecFunction((r"\abs", r"\operatorname{abs}"), 1, sp.Abs,
                 "absolute value, also written between bars; derivative sign x (0 at 0, as torch.abs)"),
    SpecFunction((r"\max",), 2, maximum, "max(a, b); the gradient at a tie is split 1/2, 1/2 (torch.maximum)"),
    SpecFunction((r"\min",), 2, minimum, "min(a, b); the gradient at a tie is split 1/2, 1/2 (torch.minimum)"),
    SpecFunction((r"\operatorname{mean}",), 1, ir.Mean,
                 "per sample, the mean of a vector over its units, broadcast to every unit (a vector of the "
                 "argument's size); its Jacobian (1/n) 1 1^T is dense and it is its own adjoint",
                 "a vector", vector_wide=True),
    SpecFunction((r"\operatorname{LN}",), 1, layer_norm,
                 "layer normalisation over the units, (u - mean(u)) / sqrt(mean((u - mean(u))^2)): population "
                 "variance and no epsilon, as Ba et al. (2016) print it (write the formula out with + epsilon under "
                 "the root, as the built-in ln_lstm does, for a cell that must be defined at a constant vector); "
                 "gain and bias are elementwise: a ⊙ LN(u) + b",
                 "a vector that is not constant", vector_wide=True),
)

#: constants a spec may write without declaring them
BUILTIN_CONSTANTS = {r"\pi": sp.pi, r"\mathrm{e}": sp.E, r"\operatorname{e}": sp.E}


def by_command(command: str) -> SpecFunction | None:
    return next((f for f in FUNCTIONS if command in f.commands), None)


def all_commands() -> list[str]:
    return [c for f in FUNCTIONS for c in f.commands]


def is_head(e) -> bool:
    """A one-argument function of the spec language applied to a vector expression (not a number)."""
    if e.is_number:
        return False
    if isinstance(e, (sp.exp, sp.log, sp.Abs)):
        return True
    return isinstance(e, sp.Pow) and e.exp == sp.Rational(1, 2)


def rebuild(e, arg):
    """``e`` (a head) applied to ``arg`` instead of its argument."""
    return arg ** e.exp if isinstance(e, sp.Pow) else e.func(arg)


def domain_of(e) -> str:
    """The domain a head's argument must stay in: "positive", "non-negative" or ""."""
    if isinstance(e, sp.log):
        return "positive"
    if isinstance(e, sp.Pow) and not e.exp.is_Integer:
        return "non-negative"
    return ""
