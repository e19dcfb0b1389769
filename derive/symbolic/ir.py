"""The vector IR: SymPy symbols that stand for one element of a named vector.

Every vector quantity of a cell (``f_t``, ``h_{t-1}``, ``b_f``) is a real SymPy symbol
whose value is "the element", so elementwise algebra (``+``, the Hadamard product,
activations) is ordinary commutative SymPy algebra. The only non-elementwise operation
is the matrix-vector product, kept as the opaque atoms ``MatVec(W, a)`` (``W a``) and
``MatVecT(W, g)`` (``W^T g``). One operation is vector-wide: ``Mean(a)``, for each sample the
mean of ``a`` over its units, broadcast back to every unit (linear and self-adjoint, so the
adjoint of ``Mean(a)`` reaching ``a`` is ``Mean`` of the incoming adjoint).

A symbol's name encodes what it is, so printing needs no registry:
``"W|xf|"`` is the parameter ``W_{xf}``; ``"h||-1"`` is ``h_{t-1}``; ``"a|f|0"`` is
``a_{f,t}``; a leading ``"d:"`` marks an adjoint (``\\delta a_{f,t}``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp


@dataclass(frozen=True)
class Ref:
    """The parts of an IR symbol's name."""

    base: str  # "W", "h", "h_tilde"
    sub: str  # "xf", "f", "" (no subscript)
    time: int | None  # None for parameters, else the offset from t
    adjoint: bool = False

    @property
    def key(self) -> str:
        """The vector's identity, without time: ``"W_xf"``, ``"h"``, ``"a_f"``."""
        return self.base + (f"_{self.sub}" if self.sub else "")


def symbol(base: str, sub: str | None = None, time: int | None = None, adjoint: bool = False) -> sp.Symbol:
    name = f"{'d:' if adjoint else ''}{base}|{sub or ''}|{'' if time is None else time}"
    return sp.Symbol(name, real=True)


def ref(sym: sp.Symbol) -> Ref:
    name = sym.name
    adjoint = name.startswith("d:")
    base, sub, time = (name[2:] if adjoint else name).split("|")
    return Ref(base, sub, None if time == "" else int(time), adjoint)


def is_ir(sym) -> bool:
    return isinstance(sym, sp.Symbol) and sym.name.count("|") == 2


def adjoint(sym: sp.Symbol) -> sp.Symbol:
    r = ref(sym)
    return symbol(r.base, r.sub, r.time, adjoint=True)


def at(sym: sp.Symbol, time: int) -> sp.Symbol:
    r = ref(sym)
    return symbol(r.base, r.sub, time, r.adjoint)


def shift(expr: sp.Expr, by: int) -> sp.Expr:
    """Move every time-indexed symbol by ``by`` steps (``t-1 -> t``, ``t -> t+1``)."""
    mapping = {}
    for s in expr.free_symbols:
        if is_ir(s) and ref(s).time is not None:
            mapping[s] = at(s, ref(s).time + by)
    return expr.xreplace(mapping)


class MatVec(sp.Function):
    """``W a``: a matrix parameter times a vector expression (opaque to elementwise diff)."""

    nargs = 2


class MatVecT(sp.Function):
    """``W^T g``: the transpose product that carries an adjoint back through ``W a``."""

    nargs = 2


class Mean(sp.Function):
    """``mean(a)``: per sample, the mean of ``a`` over its units, broadcast to every unit (so it
    has ``a``'s size). Linear: a number comes out (``mean(2 a) = 2 mean(a)``, ``mean(c) = c``)."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        if a.is_number:
            return a
        coeff, rest = a.as_coeff_Mul()
        if coeff != 1:
            return coeff * cls(rest)
        return None


def split_linear(expr: sp.Expr):
    """Replace each ``MatVec`` and ``Mean`` atom (the outermost ones) by a placeholder symbol.

    Returns ``(elementwise_expr, {placeholder: atom})``; differentiating the
    elementwise expression by ordinary SymPy rules is then exact.
    """
    atoms = sorted(expr.atoms(MatVec, Mean), key=sp.default_sort_key)
    holders = {sp.Symbol(f"__m{k}", real=True): atom for k, atom in enumerate(atoms)}
    return expr.xreplace({atom: h for h, atom in holders.items()}), holders
