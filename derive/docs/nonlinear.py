"""Why a network needs nonlinear activations, and the two activations that are layers (the page
"Why nonlinear"): the linear collapse shown by SymPy, XOR fitted by least squares and by two ReLU
units, and maxout and GLU layers with their counts and gradients.

Each statement the page makes is computed here at build time and refused if it does not hold; the
layers' gradients are held against PyTorch's autograd by ``tests/test_nonlinearity.py``.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from derive.errors import DeriveError
from derive.runtime.activations import activation

#: the layer sizes of the page's counts (as on every cell page: I = 10, n = 20)
INPUTS, UNITS, PIECES = 10, 20, 2


# ------------------------------------------------------------------ the linear collapse

def _matrix(name: str, rows: int, cols: int) -> sp.Matrix:
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i + 1}{j + 1}"))


def _vector(name: str, rows: int) -> sp.Matrix:
    return sp.Matrix(rows, 1, lambda i, _: sp.Symbol(f"{name}_{i + 1}"))


def layers_collapse() -> bool:
    """W_2 (W_1 x + b_1) + b_2 == (W_2 W_1) x + (W_2 b_1 + b_2), entry by entry (I = 2, 3 hidden, 2 out)."""
    W1, b1, W2, b2, x = _matrix("a", 3, 2), _vector("b", 3), _matrix("c", 2, 3), _vector("d", 2), _vector("x", 2)
    return sp.expand(W2 * (W1 * x + b1) + b2 - ((W2 * W1) * x + (W2 * b1 + b2))) == sp.zeros(2, 1)


def recurrence_collapse(steps: int = 3) -> bool:
    """h_t = W h_{t-1} + U x_t + b unrolled: h_T = W^T h_0 + sum_t W^{T-t} (U x_t + b) (H = I = 2)."""
    W, U, b, h0 = _matrix("w", 2, 2), _matrix("u", 2, 2), _vector("b", 2), _vector("h0", 2)
    xs = [_vector(f"x{t}", 2) for t in range(1, steps + 1)]
    h = h0
    for x in xs:
        h = W * h + U * x + b
    closed = W ** steps * h0 + sum(((W ** (steps - t)) * (U * xs[t - 1] + b) for t in range(1, steps + 1)),
                                   sp.zeros(2, 1))
    return sp.expand(h - closed) == sp.zeros(2, 1)


# ------------------------------------------------------------------ XOR

XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_Y = np.array([0.0, 1.0, 1.0, 0.0])


def xor_linear() -> dict:
    """The least-squares affine fit y = w . x + c of XOR: its predictions and mean squared error."""
    A = np.hstack([XOR_X, np.ones((4, 1))])
    coef = np.linalg.lstsq(A, XOR_Y, rcond=None)[0]
    pred = A @ coef
    return {"w": coef[:2], "c": coef[2], "pred": pred, "mse": float(np.mean((pred - XOR_Y) ** 2))}


def xor_relu(x: np.ndarray) -> np.ndarray:
    """Two ReLU units: y = relu(x_1 + x_2) - 2 relu(x_1 + x_2 - 1)."""
    s = x.sum(axis=-1)
    return np.maximum(s, 0.0) - 2.0 * np.maximum(s - 1.0, 0.0)


# ------------------------------------------------------------------ maxout and GLU as layers

def maxout_forward(x, W, b, k):
    """y_i = max_j (W x + b)[k i + j] over the k consecutive pieces of unit i (PyTorch: Linear(I, n k),
    then ``.view(..., n, k).max(-1)``). Returns y and the arg max per unit (the first one)."""
    z = (x @ W.T + b).reshape(*x.shape[:-1], -1, k)
    arg = z.argmax(axis=-1)
    return np.take_along_axis(z, arg[..., None], axis=-1)[..., 0], arg


def maxout_backward(dy, x, W, arg, k):
    """The gradient goes to the winning piece: dz[k i + j*] = dy_i, 0 for the others."""
    dz = np.zeros((*dy.shape, k))
    np.put_along_axis(dz, arg[..., None], dy[..., None], axis=-1)
    dz = dz.reshape(*dy.shape[:-1], -1)
    return {"x": dz @ W, "W": dz.reshape(-1, dz.shape[-1]).T @ x.reshape(-1, x.shape[-1]),
            "b": dz.reshape(-1, dz.shape[-1]).sum(0)}


def _sigmoid(v):
    """The gate's sigmoid: the activation's generated kernel (looked up per call, so a build's fresh one)."""
    return activation("sigmoid").f(v)


def glu_forward(x, W, b, V, c):
    """y = (W x + b) ⊙ σ(V x + c) (PyTorch: ``F.glu(torch.cat([a, g], -1))``, the value half first)."""
    a, g = x @ W.T + b, x @ V.T + c
    return a * _sigmoid(g), (a, g)


def glu_backward(dy, x, W, V, cache):
    """δa = δy ⊙ σ(g); δg = δy ⊙ a ⊙ σ(g)(1 - σ(g)); the weights' gradients are outer products with x."""
    a, g = cache
    s = _sigmoid(g)
    da, dg = dy * s, dy * a * s * (1.0 - s)
    flat = lambda m: m.reshape(-1, m.shape[-1])  # noqa: E731
    return {"x": da @ W + dg @ V, "W": flat(da).T @ flat(x), "b": flat(da).sum(0),
            "V": flat(dg).T @ flat(x), "c": flat(dg).sum(0)}


def glu_local_derivatives() -> bool:
    """∂(a σ(g))/∂a = σ(g) and ∂(a σ(g))/∂g = a σ(g)(1 - σ(g)), by SymPy from σ's definition."""
    a, g = sp.symbols("a g", real=True)
    sig = 1 / (1 + sp.exp(-g))
    y = a * sig
    return sp.simplify(sp.diff(y, a) - sig) == 0 and sp.simplify(sp.diff(y, g) - a * sig * (1 - sig)) == 0


def _layer_check(forward, backward, params: dict, x: np.ndarray) -> float:
    """Largest |analytic - central difference| of the sum of the outputs weighted by a fixed dy."""
    rng = np.random.default_rng(1)
    y, cache = forward(x, **params)
    dy = rng.normal(size=y.shape)
    grads = backward(dy, x, *[params[k] for k in params if k in ("W", "V")], cache)
    worst, step = 0.0, 1e-6
    for name, value in [("x", x), *params.items()]:
        if not isinstance(value, np.ndarray):
            continue
        for index in np.ndindex(value.shape):
            keep = value[index]
            value[index] = keep + step
            up = float(np.sum(forward(x, **params)[0] * dy))
            value[index] = keep - step
            down = float(np.sum(forward(x, **params)[0] * dy))
            value[index] = keep
            worst = max(worst, abs(grads[name][index] - (up - down) / (2 * step)))
    return worst


def layer_gradients_hold() -> bool:
    """Both layers' gradients against central differences in float64 (a point where no two maxout
    pieces tie, so the max is differentiable there)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    maxout = {"W": rng.normal(size=(5 * PIECES, 4)), "b": rng.normal(size=5 * PIECES), "k": PIECES}
    glu = {"W": rng.normal(size=(5, 4)), "b": rng.normal(size=5), "V": rng.normal(size=(5, 4)), "c": rng.normal(size=5)}
    worst_maxout = _layer_check(lambda x, W, b, k: maxout_forward(x, W, b, k),
                                lambda dy, x, W, arg: maxout_backward(dy, x, W, arg, PIECES), maxout, x)
    worst_glu = _layer_check(glu_forward, glu_backward, glu, x)
    return max(worst_maxout, worst_glu) < 1e-7


def counts(inputs: int = INPUTS, units: int = UNITS, pieces: int = PIECES) -> dict:
    """Parameters of an n-unit layer from I inputs: affine + ReLU, maxout with k pieces, GLU."""
    affine = units * (inputs + 1)
    return {"relu": affine, "maxout": pieces * affine, "glu": 2 * affine}


def context() -> dict:
    checks = {"layers_collapse": layers_collapse(), "recurrence_collapse": recurrence_collapse(),
              "glu_local": glu_local_derivatives(), "layer_gradients": layer_gradients_hold()}
    failed = [name for name, ok in checks.items() if not ok]
    if failed:
        raise DeriveError(f"the nonlinearity page: {', '.join(failed)} does not hold")
    fit = xor_linear()
    relu = xor_relu(XOR_X)
    if not np.array_equal(relu, XOR_Y):
        raise DeriveError("the nonlinearity page: two ReLU units do not fit XOR")
    fmt = lambda v: f"{v:.2f}".replace("-0.00", "0.00")  # noqa: E731
    return {"xor": [{"x": f"({int(a)}, {int(b)})", "y": int(y), "linear": fmt(p), "relu": int(r)}
                    for (a, b), y, p, r in zip(XOR_X, XOR_Y, fit["pred"], relu)],
            "xor_mse": fmt(fit["mse"]), "xor_w": f"({fmt(fit['w'][0])}, {fmt(fit['w'][1])})", "xor_c": fmt(fit["c"]),
            "counts": counts(), "I": INPUTS, "n": UNITS, "k": PIECES}
