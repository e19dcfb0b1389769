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

from derive.activations import REGISTRY as ACTIVATIONS
from derive.symbolic.bptt import Derivation, derive
from derive.runtime.activations import activation
from derive.symbolic.cell import Cell
from derive.checker.claims import check
from derive.symbolic.counts import count
from derive.symbolic.steps import steps
from derive.errors import DeriveError
from derive.runtime.kernels import Stack, kernel
from derive.runtime.models import Model
from derive.runtime.model import model
from derive.symbolic.spec import builtin_names, load, parse_spec
from derive.summary.cell import collect

from derive.version import __version__
from derive.diagrams.figures import notebook_svg as _notebook_svg
from derive.symbolic import display as _display

_display.SVG_HOOKS.append(_notebook_svg)  # a cell shows its diagram in a notebook

__all__ = ["ACTIVATIONS", "activation", "Cell", "check", "Derivation", "DeriveError", "builtin_names", "collect", "count",
           "derive", "kernel", "load", "Model", "model", "Stack", "parse_spec", "steps", "__version__"]
