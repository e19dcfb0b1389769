"""derive: symbolic BPTT derivations, parameter counts and docs for recurrent cells.

    >>> import derive
    >>> cell = derive.load("lstm")            # or a path to your own .toml spec
    >>> d = derive.derive(cell)               # adjoints, parameter gradients, Jacobians
    >>> derive.count(cell, input_size=10, hidden=20).total
    2560
    >>> a = derive.activation("swish", beta=1.0)   # a.f(x), a.df(x), a.expr, a.properties
    >>> k = derive.kernel("lstm")             # generated NumPy forward/backward over a sequence
    >>> derive.check("lstm", "dc_t = dh_t*o_t*(1 - tanh(c_t)**2)").verdict   # a hand-derived formula
    'wrong'
"""

from .activations import REGISTRY as ACTIVATIONS
from .bptt import Derivation, derive
from .catalogue import activation
from .cell import Cell
from .checker import check
from .counts import count
from .errors import DeriveError
from .runtime import Stack, kernel
from .spec import builtin_names, load, parse_spec
from .summary import collect

__version__ = "0.1.0"

__all__ = ["ACTIVATIONS", "activation", "Cell", "check", "Derivation", "DeriveError", "builtin_names", "collect", "count",
           "derive", "kernel", "load", "Stack", "parse_spec", "__version__"]
