"""``derive.model``: whole stacks of a generated cell kernel, forward and BPTT backward (issue 19).

A model (``symbolic.model``) is ``layers`` x (1 or 2 directions) of one cell. Layer 0 reads x;
layer l > 0 reads layer l-1's output, its directions side by side (``merge = "concat"``) or
added (``"sum"``); the reverse direction runs on the time-reversed sequence. With
``residual = true`` a layer whose input has its output's size adds it: y_l = f_l(x_l) + x_l.

The backward pass is the chain rule across layers, written out:

* ``dy`` of the top layer is the caller's; a layer's output gradient d(y_l) goes to each direction
  (its columns with ``concat``, all of it with ``sum``; time-reversed for the reverse direction);
* the input gradient of layer l is the sum over its directions of the kernels' ``dx`` (reversed
  back) plus, with a residual, d(y_l) itself (the identity's Jacobian); it is d(y_{l-1}).

Parameters, states and gradients are dicts keyed by ``(layer, reverse)``, each holding what the
cell kernel takes and gives; the input's gradient is ``grads["x"]``.
"""

from __future__ import annotations

import numpy as np

from derive import kernelapi as _api
from derive.errors import DeriveError
from derive.runtime.kernels import kernel
from derive.symbolic import model as model_spec


class Model:
    """A stack of one cell's kernel, as its model spec describes."""

    def __init__(self, spec: model_spec.ModelSpec):
        self.spec = spec
        self.k = kernel(spec.cell_ref)
        self.name = spec.name

    def __repr__(self) -> str:
        s = self.spec
        return (f"Model({s.name!r}: {s.layers} x {s.cell.name}{', bidirectional ' + s.merge if s.bidirectional else ''}"
                f"{', residual' if s.residual else ''})")

    # ------------------------------------------------------------ sizes
    def keys(self) -> list:
        return self.spec.keys()

    def layer_inputs(self, input_size: int, hidden: int, proj: int | None = None) -> list[int]:
        """The features each layer reads."""
        return self.spec.layer_inputs(input_size, hidden, proj)

    def init_params(self, input_size, hidden_size, *, proj_size=None, seed=0, dtype=np.float64) -> dict:
        """Every layer and direction's parameters, as the cell kernel draws them (seeds seed, seed + 1, ...)."""
        sizes = self.layer_inputs(_api.positive_int(input_size, "input_size"), hidden_size, proj_size)
        params = {(layer, rev): self.k.init_params(sizes[layer], hidden_size, proj_size=proj_size,
                                                   seed=seed + n, dtype=dtype)
                  for n, (layer, rev) in enumerate(self.keys())}
        rng = np.random.default_rng(seed + len(params))
        for layer, (o, i) in self.spec.projected(input_size, hidden_size, proj_size).items():
            params[("residual", layer)] = {"W_r": rng.uniform(-1 / np.sqrt(i), 1 / np.sqrt(i), (o, i)).astype(dtype)}
        return params

    def count(self, input_size: int, hidden: int, *, proj: int | None = None, convention: str | None = None) -> int:
        """Parameters of every layer and direction under a convention (pytorch: double biases, as torch.nn)."""
        return self.spec.count(input_size, hidden, proj=proj, convention=convention)

    # ------------------------------------------------------------ forward and backward
    def _params(self, params) -> dict:
        extra = [("residual", layer) for layer in range(self.spec.layers)] if self.spec.residual == "project" else []
        given = _api.check_keys(params, self.keys() + extra, f"{self.name} params", required=False)
        missing = [k for k in self.keys() if k not in given]
        if missing:
            raise DeriveError(f"{self.name} params: missing {missing[0]!r} (a dict per (layer, reverse))")
        return given

    def forward(self, x, states0, params):
        """y (T, B, out) of the top layer, the final states {(layer, reverse): states}, and a cache."""
        params = self._params(params)
        states0 = _api.check_keys({} if states0 is None else states0, self.keys(), f"{self.name} states0",
                                  required=False)
        inp = _api.float_array(x, "x")
        if inp.ndim != 3:
            raise DeriveError(f"x has shape {inp.shape}; expected (T, B, I), time-major")
        caches, final, residual, projected = {}, {}, [], {}
        for layer in range(self.spec.layers):
            outs = []
            for rev in self.spec.directions:
                xi = inp[::-1] if rev else inp
                y, sT, cache = self.k.forward(np.ascontiguousarray(xi), states0.get((layer, rev)),
                                              params[(layer, rev)])
                outs.append(y[::-1] if rev else y)
                caches[(layer, rev)], final[(layer, rev)] = cache, sT
            out = self._merge(outs)
            kind = None
            if self.spec.residual and out.shape == inp.shape:
                kind, out = "identity", out + inp
            elif self.spec.residual == "project":
                W = params.get(("residual", layer), {}).get("W_r")
                if W is None or np.shape(W) != (out.shape[-1], inp.shape[-1]):
                    raise DeriveError(f"{self.name} params: layer {layer} reads {inp.shape[-1]} features and gives "
                                      f"{out.shape[-1]}: its residual needs ('residual', {layer}): {{'W_r': "
                                      f"({out.shape[-1]}, {inp.shape[-1]})}} (init_params makes it)")
                kind, out = "project", out + inp @ np.asarray(W, dtype=inp.dtype).T
                projected[layer] = inp
            residual.append(kind)
            inp = out
        return inp, final, {"caches": caches, "residual": residual, "widths": [o.shape[-1] for o in outs],
                            "projected": projected}

    def _merge(self, outs: list) -> np.ndarray:
        if len(outs) == 1:
            return np.array(outs[0])
        return np.concatenate(outs, axis=-1) if self.spec.merge == "concat" else outs[0] + outs[1]

    def backward(self, dy, dstates_T, cache, params):
        """Gradients: "x" (T, B, I) and, per (layer, reverse), the cell kernel's dict (its states at the
        start and every parameter)."""
        params = self._params(params)
        dstates_T = _api.check_keys({} if dstates_T is None else dstates_T, self.keys(), f"{self.name} dstates_T",
                                    required=False)
        caches = _api.check_keys(cache.get("caches", {}), self.keys(), f"{self.name} cache")
        d_out = None if dy is None else _api.float_array(dy, "dy")
        grads = {}
        width = cache["widths"][-1]
        for layer in reversed(range(self.spec.layers)):
            dxs = []
            for n, rev in enumerate(self.spec.directions):
                part = None
                if d_out is not None:
                    part = d_out[..., n * width:(n + 1) * width] if self.spec.merge == "concat" and \
                        len(self.spec.directions) > 1 else d_out
                    part = np.ascontiguousarray(part[::-1] if rev else part)
                g = self.k.backward(part, dstates_T.get((layer, rev)), caches[(layer, rev)], params[(layer, rev)])
                grads[(layer, rev)] = g
                dxs.append(g["x"][::-1] if rev else g["x"])
            d_in = dxs[0] + dxs[1] if len(dxs) > 1 else np.array(dxs[0])
            if cache["residual"][layer] == "identity" and d_out is not None:
                d_in = d_in + d_out  # y_l = f_l(x_l) + x_l: the identity passes d(y_l) to x_l
            elif cache["residual"][layer] == "project":  # y_l = f_l(x_l) + W_r x_l
                x_l = cache["projected"][layer]
                W = params[("residual", layer)]["W_r"]
                if d_out is None:
                    grads[("residual", layer)] = {"W_r": np.zeros_like(W)}
                else:
                    d_in = d_in + d_out @ W
                    grads[("residual", layer)] = {"W_r": np.einsum("tbo,tbi->oi", d_out, x_l)}
            d_out = d_in
        grads["x"] = d_out
        return grads

    # ------------------------------------------------------------ PyTorch
    def from_torch(self, module) -> dict:
        """Parameters of every layer and direction of a torch.nn.RNN / LSTM / GRU with this model's layers and
        directions (a residual stack has no torch.nn module: build it from single-layer modules)."""
        s = self.spec
        if module.num_layers != s.layers or bool(module.bidirectional) != s.bidirectional:
            raise DeriveError(f"the module has {module.num_layers} layer(s){', bidirectional' if module.bidirectional else ''}; "
                              f"{self.name} has {s.layers}{', bidirectional' if s.bidirectional else ''}")
        if s.residual or (s.bidirectional and s.merge != "concat"):
            raise DeriveError(f"{self.name} is not a torch.nn stack (torch.nn concatenates the directions and has no "
                              f"residual connections)")
        return {(layer, rev): self.k.from_torch(module, layer=layer, reverse=rev) for layer, rev in self.keys()}

    def to_torch(self, grads_or_params: dict, *, gradients: bool = True) -> dict:
        """backward's gradients (``gradients=True``) or parameters as a torch.nn module's state_dict entries."""
        out = {}
        for key, value in grads_or_params.items():
            if key in self.keys():
                out.update(self.k.to_torch(value, layer=key[0], reverse=key[1], gradients=gradients))
        return out

