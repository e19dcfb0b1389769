"""Parameter layouts of PyTorch and Keras, for the generated kernels' converters.

A kernel keeps one array per parameter of its cell (``W_xf``, ``b_f``). Frameworks fuse
them: PyTorch stacks the gates' rows (``weight_ih_l0`` = [W_xi; W_xf; W_xg; W_xo] for the
LSTM, order i|f|g|o; GRU r|z|n) and stores two biases, ``bias_ih`` + ``bias_hh``; Keras
stacks columns (``kernel`` is I x 4H, order i|f|c|o; GRU z|r|h) with one bias, or a
(2, 3H) bias for the GRU with ``reset_after=True``. Each generated module carries its
``LAYOUTS`` table (derived from its spec: which parameter fills which slot) and calls
these functions.

Where a framework has two biases and the cell one (PyTorch's LSTM, GRU's r and z gates),
importing adds them; exporting parameters puts the sum in ``bias_ih`` and zero in
``bias_hh`` (the module computes the same function); exporting *gradients* gives both
halves the same gradient, which is what autograd computes for them.
"""

from __future__ import annotations

import numpy as np

from .errors import DeriveError


def initial_states(states0, sizes: dict, batch: int, dtype) -> dict:
    """``states0`` as arrays (B, size) of ``dtype``; missing or None states are zeros."""
    out = {}
    states0 = states0 or {}
    unknown = set(states0) - set(sizes)
    if unknown:
        raise DeriveError(f"unknown state(s) {', '.join(sorted(unknown))}; this cell has {', '.join(sizes)}")
    for name, size in sizes.items():
        s = states0.get(name)
        out[name] = np.zeros((batch, size), dtype) if s is None else np.broadcast_to(
            np.asarray(s, dtype), (batch, size))
    return out


def _shape(spec: str, dims: dict) -> tuple:
    return tuple(dims[d.strip()] for d in spec.split("x"))


def init_params(params: dict, dims: dict, *, seed: int = 0, dtype=np.float64) -> dict:
    uses_p = any("P" in spec for spec in params.values())
    if uses_p and not dims.get("P"):
        raise DeriveError("this cell projects a state to P features: give proj_size=P")
    if dims.get("P") and not uses_p:
        raise DeriveError("this cell has no projected state: proj_size is not an option")
    rng = np.random.default_rng(seed)
    bound = 1.0 / np.sqrt(dims["H"])
    return {k: rng.uniform(-bound, bound, _shape(spec, dims)).astype(dtype) for k, spec in params.items()}


def _need(layouts: dict, which: str) -> dict:
    if which not in layouts:
        raise DeriveError(f"this cell has no {which} layout (its spec has no [{'pytorch' if which == 'torch' else which}] "
                          f"table); frameworks with this cell: {', '.join(layouts) or 'none'}")
    return layouts[which]


def _blocks(array, n: int, axis: int = 0) -> list:
    return np.split(np.asarray(array), n, axis=axis)


def from_torch(layouts: dict, params: dict, module, *, layer: int = 0, reverse: bool = False) -> dict:
    lay = _need(layouts, "torch")
    kind = type(module).__name__
    if kind != lay["module"]:
        raise DeriveError(f"expected a torch.nn.{lay['module']}, got {kind}")
    if lay.get("nonlinearity") and getattr(module, "nonlinearity", None) != lay["nonlinearity"]:
        raise DeriveError(f"this cell computes nonlinearity={lay['nonlinearity']!r}; the module has "
                          f"{getattr(module, 'nonlinearity', None)!r}")
    if bool(getattr(module, "proj_size", 0)) != bool(lay.get("proj")):
        raise DeriveError("the module has proj_size > 0: use the lstm_proj cell" if not lay.get("proj") else
                          "this cell projects its output (proj_size > 0), the module does not: use lstm")
    if layer >= module.num_layers or (reverse and not module.bidirectional):
        raise DeriveError(f"the module has {module.num_layers} layer(s)"
                          f"{', bidirectional' if module.bidirectional else ', one direction'}")
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    sd = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    n = len(lay["gates"])
    out = {}
    for slot, key in (("ih", "weight_ih"), ("hh", "weight_hh")):
        for name, block in zip(lay[slot], _blocks(sd[key + sfx], n)):
            out[name] = block.copy()
    hidden = module.hidden_size
    b_ih = _blocks(sd.get("bias_ih" + sfx, np.zeros(n * hidden)), n)
    b_hh = _blocks(sd.get("bias_hh" + sfx, np.zeros(n * hidden)), n)
    for name, inner, bi, bh in zip(lay["bias_ih"], lay["bias_hh"], b_ih, b_hh):
        if inner is None:
            out[name] = bi + bh
        else:
            out[name], out[inner] = bi.copy(), bh.copy()
    if lay.get("proj"):
        out[lay["proj"]] = sd["weight_hr" + sfx].copy()
    return {k: out[k] for k in params}


def to_torch(layouts: dict, grads_or_params: dict, *, layer: int = 0, reverse: bool = False,
             gradients: bool | None = None) -> dict:
    """``gradients=None`` decides by the dict: backward's result has the key ``"x"``."""
    lay = _need(layouts, "torch")
    gradients = "x" in grads_or_params if gradients is None else gradients
    p = grads_or_params
    sfx = f"_l{layer}" + ("_reverse" if reverse else "")
    out = {"weight_ih" + sfx: np.concatenate([p[k] for k in lay["ih"]]),
           "weight_hh" + sfx: np.concatenate([p[k] for k in lay["hh"]])}
    b_ih, b_hh = [], []
    for name, inner in zip(lay["bias_ih"], lay["bias_hh"]):
        b_ih.append(p[name])
        b_hh.append(p[inner] if inner is not None else (p[name] if gradients else np.zeros_like(p[name])))
    out["bias_ih" + sfx] = np.concatenate(b_ih)
    out["bias_hh" + sfx] = np.concatenate(b_hh)
    if lay.get("proj"):
        out["weight_hr" + sfx] = p[lay["proj"]]
    return out


def from_keras(layouts: dict, params: dict, weights: list) -> dict:
    lay = _need(layouts, "keras")
    kernel, recurrent, bias = (list(weights) + [None])[:3]
    n = len(lay["gates"])
    out = {}
    for name, block in zip(lay["ih"], _blocks(kernel, n, axis=1)):
        out[name] = block.T.copy()
    for name, block in zip(lay["hh"], _blocks(recurrent, n, axis=1)):
        out[name] = block.T.copy()
    hidden = np.asarray(recurrent).shape[0]
    if bias is None:
        bias = np.zeros((2, n * hidden) if lay["bias"] == "double" else n * hidden)
    bias = np.asarray(bias)
    if lay["bias"] == "double":
        for name, inner, bi, bh in zip(lay["bias_ih"], lay["bias_hh"], _blocks(bias[0], n), _blocks(bias[1], n)):
            if inner is None:
                out[name] = bi + bh
            else:
                out[name], out[inner] = bi.copy(), bh.copy()
    else:
        for name, block in zip(lay["bias_ih"], _blocks(bias, n)):
            out[name] = block.copy()
    return {k: out[k] for k in params}


def to_keras(layouts: dict, params: dict) -> list:
    lay = _need(layouts, "keras")
    kernel = np.concatenate([params[k].T for k in lay["ih"]], axis=1)
    recurrent = np.concatenate([params[k].T for k in lay["hh"]], axis=1)
    b = np.concatenate([params[k] for k in lay["bias_ih"]])
    if lay["bias"] == "double":
        inner = np.concatenate([params[k] if k is not None else np.zeros_like(params[n])
                                for k, n in zip(lay["bias_hh"], lay["bias_ih"])])
        b = np.stack([b, inner])
    return [kernel, recurrent, b]
