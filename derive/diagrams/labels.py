"""How a vector or an operator is named in a diagram: ``h_{t-1}`` as base "h" and subscript
"t-1" (drawn as a subscript), and the same as one line of text (``h_{t-1}``) for tests."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.symbolic import ir

#: a decorated name (``\tilde{h}``) -> the Unicode combining mark drawn over its letter
_DECOR = {"_tilde": "\u0303", "_hat": "\u0302", "_bar": "\u0304"}
_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ε", "eta": "η", "theta": "θ",
          "kappa": "κ", "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ",
          "tau": "τ", "phi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω"}


@dataclass(frozen=True)
class Label:
    """A name with an optional subscript: ``Label("h", "t-1")``, ``Label("σ")``."""

    base: str
    sub: str = ""

    @property
    def text(self) -> str:
        return self.base if not self.sub else f"{self.base}_{{{self.sub}}}"


def _part(part: str) -> str:
    for suffix, mark in _DECOR.items():
        if part.endswith(suffix):
            return _part(part[: -len(suffix)]) + mark
    return _GREEK.get(part, part)


def time_text(t: int | None, origin: int | None = None) -> str:
    """``t``, ``t-1``; or, at a fixed step ``origin``, the step number."""
    if t is None:
        return ""
    if origin is not None:
        return str(origin + t)
    return "t" if t == 0 else (f"t+{t}" if t > 0 else f"t{t}")


def vector_label(sym: sp.Symbol, origin: int | None = None) -> Label:
    """``h|_|-1`` -> h, t-1; ``z|f|0`` -> z, "f,t"; at step ``origin``: h, "2"."""
    r = ir.ref(sym)
    subs = [_part(p) for p in r.sub.split(",") if p] if r.sub else []
    subs.append(time_text(r.time, origin))
    return Label(_part(r.base), ",".join(s for s in subs if s))


def param_label(sym: sp.Symbol) -> Label:
    """A parameter without time: ``W|xf|`` -> W, xf."""
    r = ir.ref(sym)
    return Label(_part(r.base), ",".join(_part(p) for p in r.sub.split(",") if p))
