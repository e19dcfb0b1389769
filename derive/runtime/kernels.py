"""Using the generated kernels: ``kernel(name)`` and stacks of layers and directions.

``kernel("lstm")`` is the committed module ``derive.kernels.lstm``; ``kernel("my.toml")``
derives the spec and loads the generated source as a module (registered with
``linecache``, so tracebacks show its lines). Generated code only ever contains names
the spec grammar accepted, and the generator checks each is a plain identifier.

``Stack`` runs a multi-layer, optionally bidirectional network of one cell the way
``torch.nn.LSTM`` (etc.) does: layer l > 0 reads the concatenated outputs of both
directions of layer l-1; the reverse direction runs on the time-reversed sequence.
"""

from __future__ import annotations

import importlib
import types

import numpy as np

from derive import kernelapi as _api
from derive.symbolic import spec
from derive.errors import DeriveError
from derive.codegen import selfcheck
from derive.runtime import backends
from derive.symbolic import bptt


def kernel(name_or_path: str, backend: str = "numpy") -> types.ModuleType:
    """The generated forward/backward module of a built-in cell or a spec file.

    ``backend``: ``"numpy"`` (the NumPy module), ``"compiled"`` (numba: every step of the time loop
    compiled; a DeriveError naming the construct for a cell it cannot express yet) or ``"auto"``
    (per call, the compiled one for small steps and NumPy otherwise; ``runtime.backends``)."""
    backend = backends.backend_name(backend)
    key = name_or_path.replace("-", "_").lower()
    if key in spec.builtin_names():
        numpy_module = None if backend == "compiled" else importlib.import_module(f"derive.kernels.{key}")
        if backend == "numpy":
            return numpy_module
        derivation = lambda: bptt.derive(spec.load(key))  # noqa: E731 (only for the refusal's message)
        if backend == "compiled":
            return backends.compiled_builtin(key, derivation)
        try:
            compiled = backends.compiled_builtin(key, derivation)
        except DeriveError:
            compiled = None  # a construct the compiled emitter cannot express: NumPy runs it
        return backends.AutoKernel(numpy_module, compiled)

    d = bptt.derive(spec.load(name_or_path))
    label = str(name_or_path)
    if backend == "compiled":
        return backends.compiled_spec(d, label)
    numpy_module = selfcheck.verified_kernel(d, label)[1]
    if backend == "numpy":
        return numpy_module
    try:
        compiled = backends.compiled_spec(d, label)
    except DeriveError:
        compiled = None
    return backends.AutoKernel(numpy_module, compiled)


class Stack:
    """``layers`` x (1 or 2 directions) of one kernel; params[(layer, reverse)] -> dict."""

    def __init__(self, k, params: dict, layers: int, bidirectional: bool = False):
        self.k, self.params, self.layers = k, params, layers
        self.directions = [False, True] if bidirectional else [False]

    @classmethod
    def from_torch(cls, k, module):
        dirs = [False, True] if module.bidirectional else [False]
        params = {(l, r): k.from_torch(module, layer=l, reverse=r) for l in range(module.num_layers) for r in dirs}
        return cls(k, params, module.num_layers, module.bidirectional)

    def to_torch(self, grads: dict) -> dict:
        out = {}
        for key, g in grads.items():
            if key in self.params:
                out.update(self.k.to_torch(g, layer=key[0], reverse=key[1], gradients=True))
        return out

    def _keys(self) -> list:
        return [(layer, rev) for layer in range(self.layers) for rev in self.directions]

    def forward(self, x, states0=None):
        """y (T, B, D*H) of the last layer, final states {(layer, reverse): states}, caches.
        ``states0`` maps (layer, reverse) to the kernel's states0 dict; missing: zeros."""
        states0 = _api.check_keys({} if states0 is None else states0, self._keys(), "Stack states0", required=False)
        caches, final = {}, {}
        inp = np.asarray(x)
        for layer in range(self.layers):
            outs = []
            for rev in self.directions:
                xi = inp[::-1] if rev else inp
                y, sT, cache = self.k.forward(xi, states0.get((layer, rev)), self.params[(layer, rev)])
                outs.append(y[::-1] if rev else y)
                caches[(layer, rev)], final[(layer, rev)] = cache, sT
            inp = np.concatenate(outs, axis=-1) if len(outs) > 1 else outs[0]
        return inp, final, caches

    def backward(self, dy, dstates_T, caches):
        """Gradients: "x" and, per (layer, reverse), the kernel's dict (states, parameters)."""
        dstates_T = _api.check_keys({} if dstates_T is None else dstates_T, self._keys(), "Stack dstates_T",
                                    required=False)
        _api.check_keys(caches, self._keys(), "Stack caches")
        grads = {}
        d_out = None if dy is None else _api.float_array(dy, "dy")
        D = len(self.directions)
        if d_out is not None and (d_out.ndim != 3 or d_out.shape[-1] % D):
            raise DeriveError(f"dy has shape {d_out.shape}; expected (T, B, {D} x output size): the last layer's "
                              f"directions side by side (the kernel checks each part)")
        for layer in reversed(range(self.layers)):
            dxs = []
            for k, rev in enumerate(self.directions):
                dyi = None
                if d_out is not None:
                    H = d_out.shape[-1] // D
                    dyi = d_out[..., k * H:(k + 1) * H]
                    dyi = dyi[::-1] if rev else dyi
                g = self.k.backward(dyi, dstates_T.get((layer, rev)), caches[(layer, rev)], self.params[(layer, rev)])
                grads[(layer, rev)] = g
                dxs.append(g["x"][::-1] if rev else g["x"])
            d_out = sum(dxs)
        grads["x"] = d_out
        return grads
