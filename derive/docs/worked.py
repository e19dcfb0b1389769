"""A worked BPTT example with numbers: the Elman RNN (H = 2, I = 2) under a softmax output layer and a
cross-entropy loss over T = 3 steps (the RNN basics page).

The forward pass and the parameter gradients of the cell come from the generated kernel
(``derive/kernels/rnn_tanh.py``); the per-step adjoints the page tabulates are computed here by the
formulas the page prints. The build refuses the page unless the two agree and both agree with central
differences of the loss in float64, so every number on the page is a checked one.
"""

from __future__ import annotations

import numpy as np

from derive.errors import DeriveError
from derive.runtime.kernels import kernel
from derive.runtime.seq2seq import softmax

#: the example: small round numbers a reader can follow by hand
X = [[1.0, 0.0], [0.5, -1.0], [0.0, 1.0]]  # x_1, x_2, x_3
TARGETS = [0, 2, 1]  # k_t: the class the loss asks for at step t
CELL = {"W_xh": [[0.5, -0.4], [0.3, 0.8]], "W_hh": [[0.6, -0.2], [0.1, 0.5]], "b_h": [0.0, 0.1]}
HEAD = {"W_o": [[1.0, -0.5], [-0.3, 0.8], [0.2, 0.4]], "b_o": [0.1, 0.0, -0.1]}
STEPS, HIDDEN, CLASSES = len(X), len(CELL["b_h"]), len(HEAD["b_o"])
#: central differences: step and the largest relative disagreement the build accepts
FD_STEP, FD_TOLERANCE = 1e-6, 1e-7


def _arrays(values: dict) -> dict:
    return {k: np.array(v, dtype=np.float64) for k, v in values.items()}


def loss(cell: dict, head: dict) -> float:
    """L = -sum_t log p_t[k_t], by the plain equations (no kernel): the central differences' function."""
    h = np.zeros(HIDDEN)
    total = 0.0
    for x, k in zip(np.array(X), TARGETS):
        h = np.tanh(cell["W_xh"] @ x + cell["W_hh"] @ h + cell["b_h"])
        o = head["W_o"] @ h + head["b_o"]
        total -= o[k] - np.log(np.sum(np.exp(o)))
    return float(total)


def compute() -> dict:
    """Every number of the example: the forward table, the backward table (t = T, ..., 1) and the
    gradients, after the three-way agreement (kernel, the page's formulas, central differences)."""
    cell, head = _arrays(CELL), _arrays(HEAD)
    x = np.array(X)[:, None, :]  # (T, B = 1, I)
    rnn = kernel("rnn_tanh")
    y, _, cache = rnn.forward(x, None, cell)
    h = np.array(y[:, 0, :])  # (T, H): y_t = h_t
    o = h @ head["W_o"].T + head["b_o"]
    p = softmax(o)
    onehot = np.eye(CLASSES)[TARGETS]
    terms = -np.log(p[np.arange(STEPS), TARGETS])
    do = p - onehot  # dL/do_t
    dy = do @ head["W_o"]  # W_o^T do_t: what the loss sends into y_t = h_t
    kernel_grads = rnn.backward(dy[:, None, :], None, cache, cell)

    # the page's formulas, step by step (t = T, ..., 1)
    dh, dz, back = np.zeros((STEPS, HIDDEN)), np.zeros((STEPS, HIDDEN)), np.zeros((STEPS, HIDDEN))
    for t in reversed(range(STEPS)):
        back[t] = cell["W_hh"].T @ dz[t + 1] if t + 1 < STEPS else 0.0
        dh[t] = dy[t] + back[t]
        dz[t] = dh[t] * (1.0 - h[t] ** 2)
    previous = np.vstack([np.zeros(HIDDEN), h[:-1]])
    grads = {"W_xh": dz.T @ np.array(X), "W_hh": dz.T @ previous, "b_h": dz.sum(0),
             "W_o": do.T @ h, "b_o": do.sum(0)}

    for name in CELL:
        if not np.allclose(grads[name], kernel_grads[name], rtol=1e-12, atol=1e-14):
            raise DeriveError(f"worked example: the page's formula for dL/d{name} disagrees with the kernel")
    if abs(terms.sum() - loss(cell, head)) > 1e-12:
        raise DeriveError("worked example: the kernel's forward pass disagrees with the equations")
    worst = _finite_difference_check(cell, head, grads)
    z = np.array(X) @ cell["W_xh"].T + previous @ cell["W_hh"].T + cell["b_h"]
    return {"h": h, "z": z, "o": o, "p": p, "terms": terms, "loss": float(terms.sum()),
            "do": do, "dy": dy, "back": back, "dh": dh, "dz": dz, "grads": grads, "fd_worst": worst}


def _finite_difference_check(cell: dict, head: dict, grads: dict) -> float:
    """The largest |analytic - central difference| / max(1, |analytic|) over every parameter entry."""
    worst = 0.0
    for group in (cell, head):
        for name, value in group.items():
            for index in np.ndindex(value.shape):
                keep = value[index]
                value[index] = keep + FD_STEP
                up = loss(cell, head)
                value[index] = keep - FD_STEP
                down = loss(cell, head)
                value[index] = keep
                numeric = (up - down) / (2 * FD_STEP)
                analytic = grads[name][index]
                worst = max(worst, abs(analytic - numeric) / max(1.0, abs(analytic)))
    if worst > FD_TOLERANCE:
        raise DeriveError(f"worked example: central differences disagree with the gradients ({worst:.1e})")
    return worst


def _vec(v) -> str:
    return "(" + ",\\ ".join(_num(a) for a in v) + ")"


def _num(a: float) -> str:
    text = f"{a:.4f}"
    return "0.0000" if text == "-0.0000" else text


def _matrix(m) -> str:
    m = np.atleast_2d(m)
    rows = " \\\\ ".join(" & ".join(_num(a) for a in row) for row in m)
    return "\\begin{bmatrix} " + rows + " \\end{bmatrix}"


def context() -> dict:
    """What the template prints: the example's numbers formatted (4 decimals), and its setting."""
    r = compute()
    forward = [{"t": t + 1, "x": _vec(X[t]), "z": _vec(r["z"][t]), "h": _vec(r["h"][t]), "o": _vec(r["o"][t]),
                "p": _vec(r["p"][t]), "k": TARGETS[t] + 1, "term": _num(r["terms"][t])} for t in range(STEPS)]
    backward = [{"t": t + 1, "do": _vec(r["do"][t]), "dy": _vec(r["dy"][t]), "back": _vec(r["back"][t]),
                 "dh": _vec(r["dh"][t]), "dz": _vec(r["dz"][t])} for t in reversed(range(STEPS))]
    grads = [{"name": name, "tex": tex, "value": _matrix(r["grads"][name] if r["grads"][name].ndim == 2
                                                         else r["grads"][name][:, None])}
             for name, tex in (("W_xh", "W_{xh}"), ("W_hh", "W_{hh}"), ("b_h", "b_h"), ("W_o", "W_o"),
                               ("b_o", "b_o"))]
    params = [{"tex": tex, "value": _matrix(v if np.ndim(v) == 2 else np.array(v)[:, None])}
              for tex, v in (("W_{xh}", CELL["W_xh"]), ("W_{hh}", CELL["W_hh"]), ("b_h", CELL["b_h"]),
                             ("W_o", HEAD["W_o"]), ("b_o", HEAD["b_o"]))]
    return {"forward": forward, "backward": backward, "grads": grads, "params": params, "loss": _num(r["loss"]),
            "fd_tolerance": f"10^{{{round(np.log10(FD_TOLERANCE))}}}", "fd_step": f"10^{{{round(np.log10(FD_STEP))}}}",
            "back_ratio": f"{np.linalg.norm(r['back'][0]) / np.linalg.norm(r['dy'][0]):.2f}", "T": STEPS, "H": HIDDEN, "K": CLASSES, "I": len(X[0])}
