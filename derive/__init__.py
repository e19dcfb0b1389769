"""derive: symbolic BPTT derivations, parameter counts and docs for recurrent cells.

    >>> import derive
    >>> cell = derive.load("lstm")            # or a path to your own .toml spec
    >>> d = derive.derive(cell)               # adjoints, parameter gradients, Jacobians
    >>> s = derive.steps(d)                   # local derivatives, the chain rule adjoint by adjoint
    >>> derive.count(cell, input_size=10, hidden=20).total
    2560
    >>> a = derive.activation("swish", beta=1.0)   # a.f(x), a.df(x), a.expr, a.properties
    >>> k = derive.kernel("lstm")             # generated NumPy forward/backward over a sequence
    >>> k = derive.kernel("lstm", backend="auto")   # the compiled (numba) one for small steps, else NumPy
    >>> derive.check("lstm", "dc_t = dh_t*o_t*(1 - tanh(c_t)**2)").verdict   # a hand-derived formula
    'wrong'
"""

import importlib as _importlib

from derive.symbolic import display as _display
from derive.version import __version__

#: the public API: name -> (module, attribute). Each is imported on first use (PEP 562), so that
#: ``python -m derive params lstm`` loads the symbolic layer only, not the kernels, the checker or
#: SciPy (the command starts in about half the time)
API = {
    "ACTIVATIONS": ("derive.activations", "REGISTRY"),
    "activation": ("derive.runtime.activations", "activation"),
    "Cell": ("derive.symbolic.cell", "Cell"),
    "check": ("derive.checker.claims", "check"),
    "collect": ("derive.summary.cell", "collect"),
    "count": ("derive.symbolic.counts", "count"),
    "derive": ("derive.symbolic.bptt", "derive"),
    "Derivation": ("derive.symbolic.bptt", "Derivation"),
    "DeriveError": ("derive.errors", "DeriveError"),
    "builtin_names": ("derive.symbolic.spec", "builtin_names"),
    "kernel": ("derive.runtime.kernels", "kernel"),
    "load": ("derive.symbolic.spec", "load"),
    "Model": ("derive.runtime.models", "Model"),
    "model": ("derive.runtime.model", "model"),
    "parse_spec": ("derive.symbolic.spec", "parse_spec"),
    "Stack": ("derive.runtime.kernels", "Stack"),
    "steps": ("derive.symbolic.steps", "steps"),
}

__all__ = [*API, "__version__"]


def __getattr__(name: str):
    if name not in API:
        raise AttributeError(f"module 'derive' has no attribute {name!r}")
    module, attr = API[name]
    value = getattr(_importlib.import_module(module), attr)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted({*globals(), *API})


def _notebook_svg(cell):
    """``Cell._repr_svg_``: the step's diagram in a notebook. The diagrams layer (Graphviz, the figure
    builders: ~0.1 s of imports) is loaded on the first diagram, as the API above, not by every
    ``python -m derive``."""
    return _importlib.import_module("derive.diagrams.figures").notebook_svg(cell)


if not any(getattr(h, "__qualname__", None) == "_notebook_svg" for h in _display.SVG_HOOKS):
    _display.SVG_HOOKS.append(_notebook_svg)  # once, even if the package is imported again
