"""The activation API: ``derive.activation("swish", beta=1.0)``.

    >>> import numpy as np, derive
    >>> a = derive.activation("swish")
    >>> a.f(np.array([0.0, 1.0], dtype=np.float32)).dtype
    dtype('float32')
    >>> a.expr
    x/(1 + exp(-x))

``f`` and ``df`` run the generated stable kernels of ``derive/kernels/activations.py``;
``expr`` and ``derivative`` are the SymPy forms at the chosen parameter values.

Inputs and results of ``f``, ``df`` and ``dparams``: a Python number, a NumPy scalar, a 0-d
array or an array of any shape. The result has the input's shape (maxout's ``f``: the last
axis divided by k), and a scalar input (number, NumPy scalar or 0-d array) gives a NumPy
scalar. float32 input gives float32; bool, integer and every other real input is computed
and returned as float64. Complex, object and string input is refused (DeriveError).

    >>> derive.activation("sigmoid").f(0)
    np.float64(0.5)
"""

from __future__ import annotations

import inspect
import numbers

import numpy as np
import sympy as sp

from derive import activations as acts
from derive.errors import DeriveError
from derive.kernels import activations as kernels
from derive.symbolic.properties import Properties, analyse

x = sp.Symbol("x", real=True)


class ActivationFunction:
    """One activation at fixed parameter values, with its kernels and its SymPy forms."""

    def __init__(self, name: str, *, training: bool = False, seed: int | None = None, **params):
        try:
            self.stanza = acts.get(name)
        except KeyError as e:
            raise DeriveError(e.args[0]) from None
        self.params = self.stanza.param_values(params)
        self.name = self.stanza.__name__
        self.training = training
        if training and self.name != "rrelu":
            raise DeriveError(f"{self.name} has no training mode (only rrelu does)")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0):
            raise DeriveError(f"seed must be a non-negative integer or None; got {seed!r}")
        self._rng = np.random.default_rng(seed)
        self.slopes = None  # rrelu in training: the slopes drawn by the last call of f
        self._f = getattr(kernels, self.name)
        self._df = getattr(kernels, self.name + "_d")

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"activation({self.name!r}{', ' + args if args else ''})"

    # numbers ---------------------------------------------------------------
    def f(self, x, slopes=None):
        """f(x) elementwise (GLU: last axis split in halves; maxout: groups of k)."""
        x = self._input(x)
        if self.training:
            if slopes is None:
                lo, hi = self.params["lower"], self.params["upper"]
                slopes = self._rng.uniform(lo, hi, size=x.shape).astype(kernels._float(x)[1])
            self.slopes = self._slopes_for(x, slopes)
            return kernels.leaky_relu(x, negative_slope=self.slopes)
        return self._f(x, **self._kernel_params())

    def _input(self, x):
        """x as a real array (see the module docstring), with a last axis that GLU and maxout can split."""
        x = kernels._real(x, self.name)
        group = {"halves": 2, "pieces": self.params.get("k")}.get(self.stanza.kind)
        if group and (x.ndim == 0 or x.shape[-1] % group):
            raise DeriveError(f"{self.name} needs a last axis whose length is a multiple of {group}, "
                              f"got shape {x.shape}")
        return x

    def _slopes_for(self, x, slopes):
        """rrelu's slopes in training: real, one for every element or one per element of x."""
        slopes = kernels._real(slopes, "rrelu's slopes")
        if slopes.shape not in ((), x.shape):
            raise DeriveError(f"rrelu in training: slopes of shape {slopes.shape} do not fit x of shape {x.shape}")
        return slopes

    def df(self, x, slopes=None):
        """f'(x) (GLU: d/da | d/db; maxout: the arg max mask) in the layout of x."""
        x = self._input(x)
        if self.training:
            if slopes is None and self.slopes is None:
                raise DeriveError("rrelu in training: call f first (it draws the slopes) or pass slopes=")
            if slopes is None and np.shape(self.slopes) != x.shape:
                raise DeriveError(f"rrelu in training: f drew slopes for shape {np.shape(self.slopes)}, "
                                  f"df got x of shape {x.shape} (pass slopes=)")
            slopes = self.slopes if slopes is None else self._slopes_for(x, slopes)
            return kernels.leaky_relu_d(x, negative_slope=slopes)
        return self._df(x, **self._kernel_params())

    def dparams(self, x) -> dict:
        """{parameter: d f / d parameter per element} for the learned parameters (PReLU a, swish beta)."""
        x = self._input(x)
        return {p.name: getattr(kernels, f"{self.name}_d{p.name}")(x, **self._kernel_params())
                for p in self.stanza.params if p.learned}

    def _kernel_params(self) -> dict:
        return dict(self.params)

    # symbols ---------------------------------------------------------------
    @property
    def expr(self):
        """f as a SymPy expression in x at these parameter values (exact decimals)."""
        if self.stanza.kind != "elementwise":
            return self.stanza.symbolic(*sp.symbols("a b", real=True)) if self.stanza.kind == "halves" \
                else sp.Max(*sp.symbols("z1:3", real=True))
        return self.stanza.expr(x, self.params)

    @property
    def derivative(self):
        """f'(x) as a SymPy expression (SymPy's derivative of ``expr``)."""
        e = self.expr
        if self.stanza.kind != "elementwise":
            return {v: sp.diff(e, v) for v in sorted(e.free_symbols, key=str)}
        return sp.diff(e, x)

    @property
    def properties(self) -> Properties:
        """The derived properties at these parameter values (SymPy; DeriveError where it gives up)."""
        defaults = self.stanza.param_values()
        overrides = {k: v for k, v in self.params.items() if v != defaults[k]}
        if not overrides:
            return analyse(self.name)
        try:
            return analyse(self.name, **overrides)
        except (TypeError, ValueError, NotImplementedError, ZeroDivisionError) as e:
            raise DeriveError(f"cannot derive the properties of {self!r}: {e}") from None

    @property
    def code(self) -> str:
        """The source of this activation's generated kernels."""
        names = [self.name, self.name + "_d"] + [f"{self.name}_d{p.name}" for p in self.stanza.params
                                                  if p.learned]
        return "\n\n".join(inspect.getsource(getattr(kernels, n)) for n in names)


def activation(name: str, **params) -> ActivationFunction:
    """The activation ``name`` with PyTorch's defaults unless ``params`` override them."""
    return ActivationFunction(name, **params)
