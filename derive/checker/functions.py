"""The functions a formula may call: the activations (``\\sigma``, ``\\tanh``, ``relu``, ...) and
a few elementwise ones (``exp``, ``log``, ``\\mathbb{1}[u > 0]``, the step ``\\operatorname{H}``), the
two-argument ``\\max(a, b)``, ``\\min(a, b)``, and the vector-wide ``\\operatorname{mean}`` and
``\\operatorname{LN}``, by every spelling."""

from __future__ import annotations

import math
import re
from functools import lru_cache

import numpy as np
import sympy as sp

from derive import activations as acts
from derive.errors import DeriveError
from derive.symbolic import functions, ir
from derive.syntax.formulas import Call, Num

#: elementwise functions a formula may call, beside the activations: name -> (NumPy, SymPy)
FUNCTIONS = {
    "exp": (np.exp, sp.exp), "log": (np.log, sp.log), "ln": (np.log, sp.log), "sqrt": (np.sqrt, sp.sqrt),
    "abs": (np.abs, sp.Abs), "erf": (np.vectorize(math.erf, otypes=[float]), sp.erf),
    "step": (lambda u: (np.asarray(u) > 0).astype(float), acts.step),  # \mathbb{1}[u > 0]
    # the step of max/min's derivative, H(0) = 1/2 (derive/symbolic/functions.py), printed \operatorname{H}
    "heaviside": (lambda u: np.heaviside(u, 0.5), sp.Heaviside),
}

#: two-argument functions, elementwise: name -> (NumPy, SymPy); the spec's own maximum and minimum,
#: whose derivatives are the spec's (torch.maximum's split of the gradient at a tie)
BINARY = {"max": (np.maximum, functions.maximum), "min": (np.minimum, functions.minimum)}


def _mean(u):
    """The mean over the units broadcast: of a vector, its mean in every unit; of a matrix (a Jacobian
    chain's (1/n) 1 1^T M, as the pages print it), the mean of each column in every row."""
    u = np.asarray(u, dtype=float)
    if u.ndim == 0:
        return u
    return np.broadcast_to(u.mean(axis=0, keepdims=True) if u.ndim == 2 else u.mean(), u.shape).copy()


def _layer_norm(u):
    centred = np.asarray(u, dtype=float) - _mean(u)
    return centred / np.sqrt(_mean(centred ** 2))


#: functions over every unit of a vector (symbolic/functions.py): name -> (NumPy, SymPy)
VECTOR_WIDE = {"mean": (_mean, ir.Mean), "layernorm": (_layer_norm, functions.layer_norm)}

#: spellings whose name is not their lower-case letters: H is the Heaviside step, as the pages print it;
#: LN is layer normalisation (\ln is the logarithm)
SPELLED = {r"\operatorname{H}": "heaviside", r"\mathrm{H}": "heaviside", "H": "heaviside",
           r"\operatorname{LN}": "layernorm", r"\mathrm{LN}": "layernorm", "LN": "layernorm"}


def func_name(func: str) -> str:
    """``\\operatorname{ReLU}``, ``\\tanh``, ``Sigma`` -> relu, tanh, sigma."""
    if func in SPELLED:
        return SPELLED[func]
    m = re.fullmatch(r"\\(?:operatorname|mathrm|text|mathit)\{([A-Za-z0-9_]+)\}", func)
    return (m[1] if m else func.lstrip("\\")).lower()


@lru_cache(maxsize=None)
def activation(name: str):
    """The activation a function name means: \\sigma, sigmoid, tanh, relu, ..."""
    if name in ("sigma", "sigm"):
        return acts.get("sigmoid")
    for cls in acts.REGISTRY.values():
        if cls.kind != "elementwise":
            continue
        if name == cls.__name__ or any(func_name(cmd) == name for cmd in cls.commands):
            return cls
    return None


def is_function(name: str) -> bool:
    fn = func_name(name)
    return fn in FUNCTIONS or fn in BINARY or fn in VECTOR_WIDE or fn == "diag" or activation(fn) is not None


def single(c: Call):
    """The one argument of ``c``."""
    if len(c.args) != 1:
        raise DeriveError(f"{c.func} takes one argument", c.pos)
    return c.args[0]


def pair(c: Call) -> tuple:
    """The two arguments of ``\\max(a, b)`` or ``\\min(a, b)``."""
    if len(c.args) != 2 or c.prime:
        raise DeriveError(f"{c.func} takes two arguments, as in {c.func}(a, b), and has no derivative here", c.pos)
    return c.args


def power(c: Call) -> int:
    """The whole-number power k of ``\\tanh^k(x)``."""
    p = c.power
    if isinstance(p, Num) and re.fullmatch(r"\d+", p.value):
        return int(p.value)
    if isinstance(p, int):
        return p
    raise DeriveError(f"the power of {c.func} must be a whole number", c.pos)
