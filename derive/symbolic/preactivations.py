"""The pre-activations derive names: ``f_t = sigma(W_{xf} x_t + ...)`` becomes
``a_{f,t} = W_{xf} x_t + ...`` and ``f_t = sigma(a_{f,t})``, so the derivation has a vector whose
adjoint it can state (``\\delta a_{f,t}``) and the kernel a column block the input GEMM writes."""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.symbolic import functions, ir
from derive.syntax.equations import Name

#: the letters derive names pre-activations with, in order of preference: a_{f,t} (Goodfellow ch. 10,
#: CS231n), or z_{f,t} (Greff et al., Karpathy) in a cell that names a quantity a itself, then u_{f,t}
PREACTIVATION_PREFIXES = ("a", "z", "u")


def preactivation_prefix(bases: set) -> str:
    """The first letter of ``PREACTIVATION_PREFIXES`` that is no name of the cell (GRU's gate z, a
    user's gate a), so that ``a_{z,t}`` is never read next to a quantity a_t of the cell."""
    return next((p for p in PREACTIVATION_PREFIXES if p not in bases), PREACTIVATION_PREFIXES[0])


def is_input(sym, key: str) -> bool:
    """``sym`` is the input (key ``key``) at t or at an earlier step (a tap x_{t-k})."""
    return isinstance(sym, sp.Symbol) and ir.is_ir(sym) and ir.ref(sym).key == key and not ir.ref(sym).adjoint \
        and ir.ref(sym).time is not None and ir.ref(sym).time <= 0


def name_preactivations(rhs: sp.Expr, lhs: Name, x: str, prefix: str = PREACTIVATION_PREFIXES[0]):
    """Give each activation of a non-trivial argument a named pre-activation symbol.

    An input product ``W x_t`` (or ``W x_{t-1}``, a tap) must be a term of such a sum (the input GEMM of all steps
    writes the pre-activations): an affine right side that reads the input
    (``r_t = W_{xr} x_t + b_r``) is named whole (``r_t = a_{r,t}``), and an input product
    anywhere else (``\frac{W x_t}{...}``) is named on its own.
    """
    aux = []
    sub0 = lhs.base if not lhs.sub else f"{lhs.base},{lhs.sub}"

    def name(top):
        return ir.symbol(prefix, sub0 if top and not aux else f"{sub0},{len(aux) + 1}", 0)

    def visit(e, top, direct):
        if is_head(e) and not isinstance(e.args[0], sp.Symbol):
            inner = visit(e.args[0], False, True)
            z = name(top)
            # tanh(sigma(u)): z_2 = sigma(z_1) is an intermediate vector, not a pre-activation
            aux.append((z, inner, not is_head(inner)))
            return functions.rebuild(e, z)
        if isinstance(e, ir.MatVec):
            m = ir.MatVec(e.args[0], visit(e.args[1], False, False))
            if is_input(e.args[1], x) and not direct:
                z = name(False)
                aux.append((z, m, True))
                return z
            return m
        if isinstance(e, sp.Add):
            return e.func(*[visit(a, False, direct) for a in e.args])
        if e.args and not isinstance(e, sp.Symbol):
            return e.func(*[visit(a, False, False) for a in e.args])
        return e

    terms = rhs.args if isinstance(rhs, sp.Add) else (rhs,)
    affine = all(isinstance(t, ir.MatVec) or (ir.is_ir(t) and ir.ref(t).time is None) for t in terms)
    if affine and any(isinstance(t, ir.MatVec) and is_input(t.args[1], x) for t in terms):
        out = visit(rhs, False, True)
        z = name(True)
        aux.append((z, out, True))
        return z, aux
    return visit(rhs, is_head(rhs), False), aux


def is_head(e) -> bool:
    """An activation, or a one-argument function of the spec language (exp, log, sqrt, abs)."""
    return isinstance(e, acts.Activation) or functions.is_head(e)
