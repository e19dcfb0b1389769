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
halves the same gradient, which is what autograd computes for them. Which of the two a dict
holds cannot be told from its keys, so ``to_torch`` needs ``gradients=True`` or ``False``.

Every argument is checked (``kernelapi``): layer and direction, the arrays' count, dtype
and shapes; a problem is a ``DeriveError`` naming the expected shapes.
"""

from __future__ import annotations

import numpy as np

from derive import kernelapi as _api
from derive.errors import DeriveError


def initial_states(states0, sizes: dict, batch: int, dtype) -> dict:
    """``states0`` (dict or None) as arrays of exactly (B, size), of ``dtype``; missing or None
    states are zeros."""
    given = _api.check_keys({} if states0 is None else states0, sizes, "states0", required=False)
    out = {}
    for name, size in sizes.items():
        s = given.get(name)
        out[name] = np.zeros((batch, size), dtype) if s is None else np.asarray(
            _api.exact(s, (batch, size), f"states0[{name!r}]", "(B, size)"), dtype)
    return out


def _shape(spec: str, dims: dict) -> tuple:
    return tuple(dims[d] for d in _api.dim_names(spec))


_SIZE_ARGS = {"I": "input_size", "H": "hidden_size", "P": "proj_size"}


def init_params(params: dict, dims: dict, *, seed: int = 0, dtype=np.float64) -> dict:
    dims = {d: (None if n is None else _api.positive_int(n, _SIZE_ARGS.get(d, d))) for d, n in dims.items()}
    _api.float_dtype(dtype)
    uses_p = any("P" in _api.dim_names(spec) for spec in params.values())
    if uses_p and dims.get("P") is None:
        raise DeriveError("this cell projects a state to P features: give proj_size=P")
    if dims.get("P") is not None and not uses_p:
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
    layer, reverse = _api.whole(layer, "layer"), _api.flag(reverse, "reverse")
    if not 0 <= layer < module.num_layers or (reverse and not module.bidirectional):
        raise DeriveError(f"no layer={layer}, reverse={reverse}: the module has {module.num_layers} layer(s) "
                          f"(0 to {module.num_layers - 1}){', bidirectional' if module.bidirectional else ', one direction'}")
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


def to_torch(layouts: dict, params: dict, grads_or_params: dict, *, layer: int = 0, reverse: bool = False,
             gradients: bool | None = None, states=()) -> dict:
    """``gradients=True``: backward's dict (its "x" and ``states`` keys are ignored); ``False``:
    parameters. Nothing else is accepted: the two are exported differently."""
    lay = _need(layouts, "torch")
    if gradients is None:
        raise DeriveError("to_torch needs gradients=True for backward's gradients (a bias torch splits in two gets "
                          "the gradient in both halves) or gradients=False for parameters (the sum goes to bias_ih)")
    gradients = _api.flag(gradients, "gradients")
    layer, reverse = _api.whole(layer, "layer"), _api.flag(reverse, "reverse")
    if layer < 0:
        raise DeriveError(f"layer must be >= 0, got {layer}")
    p = _checked(params, grads_or_params, ("x", *states) if gradients else (), "gradients" if gradients else "params")
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


def _checked(params: dict, given, others=(), what="params") -> dict:
    """The parameters of ``given`` (a dict with exactly the cell's parameters, and perhaps the
    keys ``others``) as float arrays of consistent shapes."""
    _api.check_keys(given, [*params, *others], what, required=False)
    return _api.checked_params({n: v for n, v in given.items() if n in params}, params, {}, what)[0]


def _keras_arrays(lay: dict, weights) -> tuple:
    """(kernel (I, nH), recurrent_kernel (H, nH), bias or None) checked against the layout."""
    if not isinstance(weights, (list, tuple)) or len(weights) not in (2, 3):
        got = f"{len(weights)} array(s)" if isinstance(weights, (list, tuple)) else type(weights).__name__
        raise DeriveError(f"from_keras takes the list [kernel, recurrent_kernel, bias] of get_weights() "
                          f"([kernel, recurrent_kernel] without bias), got {got}")
    n = len(lay["gates"])
    kernel, recurrent = (_api.float_array(w, what) for w, what in zip(weights, ("kernel", "recurrent_kernel")))
    H = recurrent.shape[0] if recurrent.ndim == 2 else 0
    if recurrent.ndim != 2 or H == 0 or recurrent.shape[1] != n * H:
        raise DeriveError(f"recurrent_kernel has shape {recurrent.shape}; expected (H, {n}H), {n} gates")
    if kernel.ndim != 2 or kernel.shape[0] == 0 or kernel.shape[1] != n * H:
        raise DeriveError(f"kernel has shape {kernel.shape}; expected (I, {n}H) = (I, {n * H}) as recurrent_kernel "
                          f"{recurrent.shape} gives H = {H}")
    bias = None if len(weights) == 2 else _api.float_array(weights[2], "bias")
    want = (2, n * H) if lay["bias"] == "double" else (n * H,)
    if bias is not None and bias.shape != want:
        raise DeriveError(f"bias has shape {bias.shape}; expected {want}: {'2 x ' if len(want) == 2 else ''}{n} gates "
                          f"x H = {H}{' (reset_after=True)' if len(want) == 2 else ''}")
    return kernel, recurrent, bias


def from_keras(layouts: dict, params: dict, weights: list) -> dict:
    lay = _need(layouts, "keras")
    kernel, recurrent, bias = _keras_arrays(lay, weights)
    n = len(lay["gates"])
    out = {}
    for name, block in zip(lay["ih"], _blocks(kernel, n, axis=1)):
        out[name] = block.T.copy()
    for name, block in zip(lay["hh"], _blocks(recurrent, n, axis=1)):
        out[name] = block.T.copy()
    hidden = recurrent.shape[0]
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


def to_keras(layouts: dict, shapes: dict, params: dict) -> list:
    lay = _need(layouts, "keras")
    params = _checked(shapes, params)
    kernel = np.concatenate([params[k].T for k in lay["ih"]], axis=1)
    recurrent = np.concatenate([params[k].T for k in lay["hh"]], axis=1)
    b = np.concatenate([params[k] for k in lay["bias_ih"]])
    if lay["bias"] == "double":
        inner = np.concatenate([params[k] if k is not None else np.zeros_like(params[n])
                                for k, n in zip(lay["bias_hh"], lay["bias_ih"])])
        b = np.stack([b, inner])
    return [kernel, recurrent, b]
