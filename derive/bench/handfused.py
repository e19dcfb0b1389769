"""A hand-fused NumPy LSTM: the baseline ``derive bench lstm`` runs beside the generated kernel.

Written the way a careful person writes an LSTM in NumPy without a generator (the kind of
reference issue 4's targets were set against): the four gates' weights fused into one
matrix per input in PyTorch's layout (rows i | f | g | o), the input projection of every
step hoisted into one GEMM, one GEMM per step for the recurrence, sequence buffers made
before the loop, in-place elementwise work, a stable sigmoid, and the weight gradients
as one GEMM per input after the loop. It holds its weights fused (as ``torch.nn.LSTM``
does), so fusing them is not part of its timed work.
"""

from __future__ import annotations

import numpy as np

GATES = "ifgo"  # PyTorch's row order of weight_ih / weight_hh / bias


def fuse(params: dict, dtype) -> dict:
    """The cell's parameters (W_xi, W_hi, b_i, ...) as PyTorch-layout fused arrays."""
    cat = lambda fmt: np.ascontiguousarray(np.concatenate([params[fmt.format(g)] for g in GATES]), dtype)
    return {"W_ih": cat("W_x{}"), "W_hh": cat("W_h{}"), "b": cat("b_{}")}


def _sigmoid_(v):
    """v := 1 / (1 + exp(-v)) in place, as (1 + tanh(v / 2)) / 2 (no overflow)."""
    v *= 0.5
    np.tanh(v, out=v)
    v += 1.0
    v *= 0.5


def forward(x, h0, c0, w):
    """x (T, B, I), h0 and c0 (B, H), w from ``fuse``. Returns (y (T, B, H), cache)."""
    T, B, I = x.shape
    H = w["W_hh"].shape[1]
    gates = (x.reshape(T * B, I) @ w["W_ih"].T).reshape(T, B, 4 * H)
    gates += w["b"]
    W_hhT = w["W_hh"].T
    h = np.empty((T + 1, B, H), x.dtype)
    c = np.empty((T + 1, B, H), x.dtype)
    tanh_c = np.empty((T, B, H), x.dtype)
    h[0], c[0] = h0, c0
    hw = np.empty((B, 4 * H), x.dtype)
    tmp = np.empty((B, H), x.dtype)
    for t in range(T):
        g = gates[t]
        np.matmul(h[t], W_hhT, out=hw)
        g += hw
        i, f, gg, o = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        _sigmoid_(g[:, :2 * H])
        np.tanh(gg, out=gg)
        _sigmoid_(o)
        np.multiply(f, c[t], out=c[t + 1])
        np.multiply(i, gg, out=tmp)
        c[t + 1] += tmp
        np.tanh(c[t + 1], out=tanh_c[t])
        np.multiply(o, tanh_c[t], out=h[t + 1])
    return h[1:], (x, gates, h, c, tanh_c)


def backward(dy, cache, w):
    """dy (T, B, H) = dL/dy. Returns dL/dx, dL/dh0, dL/dc0 and the fused weight gradients."""
    x, gates, h, c, tanh_c = cache
    T, B, I = x.shape
    H = w["W_hh"].shape[1]
    dgates = np.empty_like(gates)
    dh = np.zeros((B, H), x.dtype)
    dc = np.zeros((B, H), x.dtype)
    tmp = np.empty((B, H), x.dtype)
    for t in range(T - 1, -1, -1):
        g, dg = gates[t], dgates[t]
        i, f, gg, o = g[:, :H], g[:, H:2 * H], g[:, 2 * H:3 * H], g[:, 3 * H:]
        di, df, dgg, do = dg[:, :H], dg[:, H:2 * H], dg[:, 2 * H:3 * H], dg[:, 3 * H:]
        dh += dy[t]
        np.multiply(dh, tanh_c[t], out=do)                 # dL/do
        np.square(tanh_c[t], out=tmp)                      # dc += dh * o * (1 - tanh^2 c)
        np.subtract(1.0, tmp, out=tmp)
        tmp *= o
        tmp *= dh
        dc += tmp
        np.multiply(dc, gg, out=di)
        np.multiply(dc, c[t], out=df)
        np.multiply(dc, i, out=dgg)
        dc *= f                                            # dL/dc_{t-1}
        # through the activations: sigmoid' = s (1 - s), tanh' = 1 - tanh^2
        ifs = g[:, :2 * H]
        dg[:, :2 * H] *= ifs
        dg[:, :2 * H] *= 1.0 - ifs
        do *= o
        do *= 1.0 - o
        dgg *= 1.0 - gg * gg
        np.matmul(dg, w["W_hh"], out=dh)                   # dL/dh_{t-1}
    flat = dgates.reshape(T * B, 4 * H)
    dx = (flat @ w["W_ih"]).reshape(T, B, I)
    dW_ih = flat.T @ x.reshape(T * B, I)
    dW_hh = flat.T @ h[:T].reshape(T * B, H)
    db = flat.sum(axis=0)
    return dx, dh, dc, {"W_ih": dW_ih, "W_hh": dW_hh, "b": db}
