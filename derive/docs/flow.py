"""Gradient flow for every built-in cell, and the seeds' remedies measured on it.

``output_jacobian_norms`` is ``||d y_t / d s_0||_2`` for t = 1..T: how much of the initial state
``s_0`` (every state of the cell stacked: an LSTM's h_0 and c_0) reaches the output ``y_t`` (h_t for
most cells). One forward and one backward of the generated kernel give every t: the batch holds
one copy of the input sequence per (t, output unit), and copy (t, i) receives the loss gradient
e_i at step t only, so its gradient of s_0 is row i of ``d y_t / d s_0``. Parameters are the
kernel's ``init_params`` (PyTorch's uniform initialisation), x_t ~ N(0, 1), s_0 = 0, a fixed seed;
a cell that is not defined at s_0 = 0 (the LN-LSTM) gets None, as in the zoo.

The remedies, each measured with the same kernels on the loss ``L = u . y_T`` (u a fixed unit vector):

* ``forget_bias``: the norms again with every entry of b_f set to 1 (the cells that have b_f);
* ``clipping``: the global gradient norm before and after ``clip_by_global_norm`` to 1, and the share
  of it that reaches s_0 (clipping scales every gradient by one number, so the share stays);
* ``truncation``: the relative error of the parameter gradient that ``backward(truncate=k)`` gives.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from derive.docs import plots
from derive.runtime.kernels import kernel

STEPS, HIDDEN, PROJ, SEED = 50, 16, 8, plots.SEED
#: the t at which the norms are measured (one batch block each): every step would cost 3x the build time
POINTS = (1, 2, 3, 4, 5, 7, 10, 13, 16, 20, 25, 30, 35, 40, 45, 50)
WINDOWS = (5, 20)  # the truncation windows measured
MAX_NORM = 1.0  # the clipping threshold measured


def _one_thread():
    """NumPy's BLAS on one thread: the batches are small, and on a shared machine BLAS threads that
    wait for each other made one measurement take 20 times longer."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _setup(name: str, forget_bias: float | None = None):
    """The kernel, its parameters at initialisation (b_f set to ``forget_bias``), the sizes and a sequence."""
    k = kernel(name)
    g = getattr(k, "CLOCK", {}).get("modules", 1)
    H = g * -(-HIDDEN // g)
    size = {"I": H, "H": H, "P": PROJ}
    params = k.init_params(size[k.INPUT_DIM], H, proj_size=PROJ if "P" in k.STATE_DIMS.values() else None, seed=SEED)
    if forget_bias is not None:
        params["b_f"][:] = forget_bias
    x = np.random.default_rng(SEED + 1).standard_normal((STEPS, 1, size[k.INPUT_DIM]))
    return k, params, size, x


def has_forget_bias(name: str) -> bool:
    return "b_f" in _setup(name)[1]


def output_jacobian_norms(name: str, forget_bias: float | None = None) -> tuple | None:
    """``||d y_t / d s_0||_2`` for each t of ``POINTS``, 3 significant digits; None where s_0 = 0 is undefined."""
    k, params, size, x = _setup(name, forget_bias)
    n = size[k.OUTPUT_DIM]
    B = n * len(POINTS)
    s0 = {s: np.zeros((B, size[k.STATE_DIMS[s]])) for s in k.STATES}
    dy = np.zeros((STEPS, B, n))
    for j, t in enumerate(POINTS):  # block j: e_i at step t
        dy[t - 1, j * n:(j + 1) * n] = np.eye(n)
    with np.errstate(all="ignore"), _one_thread():
        _, _, cache = k.forward(np.repeat(x, B, axis=1), s0, params)
        grads = k.backward(dy, None, cache, params)
    jac = np.concatenate([grads[s] for s in k.STATES], axis=1)  # rows (t, i); columns: s_0 stacked
    if not np.all(np.isfinite(jac)):
        return None
    return tuple(float(f"{np.linalg.norm(jac[j * n:(j + 1) * n], 2):.3g}") for j in range(len(POINTS)))


def _last_step_gradients(name: str, truncate: int | None = None) -> dict:
    """The gradients of ``L = u . y_T`` (B = 1)."""
    k, params, size, x = _setup(name)
    n = size[k.OUTPUT_DIM]
    u = np.random.default_rng(SEED + 2).standard_normal(n)
    s0 = {s: np.zeros((1, size[k.STATE_DIMS[s]])) for s in k.STATES}
    dy = np.zeros((STEPS, 1, n))
    dy[-1, 0] = u / np.linalg.norm(u)
    with np.errstate(all="ignore"), _one_thread():
        _, _, cache = k.forward(x, s0, params)
        return k, params, k.backward(dy, None, cache, params, truncate=truncate)


def _norm(grads: dict, keys) -> float:
    return float(np.sqrt(sum(float(np.sum(np.square(grads[key]))) for key in keys)))


def clipping(name: str) -> dict | None:
    """The global norm of the parameter gradient before and after clipping to ``MAX_NORM``, and the
    share of the gradient that reaches s_0 (||dL/ds_0|| over the parameters' norm), before and after."""
    k, params, g = _last_step_gradients(name)
    clipped, before = k.clip_by_global_norm(g, MAX_NORM, keys=list(params))
    after = _norm(clipped, params)
    if not np.isfinite(before) or before == 0:
        return None
    share = (_norm(g, k.STATES) / before, _norm(clipped, k.STATES) / after)
    return {"before": float(f"{before:.3g}"), "after": float(f"{after:.3g}"),
            "share": float(f"{share[0]:.3g}"), "share_after": float(f"{share[1]:.3g}")}


def truncation(name: str) -> dict | None:
    """``{k: relative error of the parameter gradient with truncate=k}`` against full BPTT."""
    _, params, full = _last_step_gradients(name)
    ref = _norm(full, params)
    if not np.isfinite(ref) or ref == 0:
        return None
    out = {}
    for w in WINDOWS:
        _, _, cut = _last_step_gradients(name, truncate=w)
        out[w] = float(f"{_norm({p: cut[p] - full[p] for p in params}, params) / ref:.2g}")
    return out


#: a family for the comparison plot, by the cell's name (first match)
FAMILIES = (("qrnn", "QRNN, SRU"), ("sru", "QRNN, SRU"), ("min", "minLSTM, minGRU"), ("lstm", "LSTMs"),
            ("greff", "LSTMs"), ("janet", "LSTMs"), ("gru", "GRUs and minimal gated units"),
            ("mgu", "GRUs and minimal gated units"), ("mut", "GRUs and minimal gated units"),
            ("ugrnn", "GRUs and minimal gated units"))
SIMPLE = "Elman, IndRNN, Clockwork, +RNN"


def family(name: str) -> str:
    return next((f for prefix, f in FAMILIES if name.startswith(prefix) or prefix in name), SIMPLE)


# ------------------------------------------------------------------ what the pages show


@lru_cache(maxsize=None)
def norms(name: str, forget_bias: float | None = None) -> tuple | None:
    return output_jacobian_norms(name, forget_bias)


def at(series, t: int):
    """The norm at step t (one of ``POINTS``), None for a cell undefined at s_0 = 0."""
    return None if series is None else series[POINTS.index(t)]


def cell_summary(name: str) -> dict:
    """A cell page's numbers: the norm at t = 10 and t = STEPS, and with b_f = 1 where the cell has b_f."""
    return {"t10": at(norms(name), 10), "tT": at(norms(name), STEPS), "family": family(name),
            "forget_bias": at(norms(name, 1.0), STEPS) if has_forget_bias(name) else None,
            "steps": STEPS, "hidden": HIDDEN}


def comparison_plot(names) -> str:
    defined = [n for n in names if norms(n) is not None]
    return plots.flow_plot(POINTS, {n: norms(n) for n in defined}, {n: family(n) for n in defined},
                           f"Every cell at initialisation (PyTorch's uniform init, H = {HIDDEN})")


def remedies(names) -> dict:
    """The concept pages' tables: forget-gate bias 1, clipping, truncation, one row per cell."""
    return {"forget": [{"name": n, "default": at(norms(n), STEPS), "one": at(norms(n, 1.0), STEPS)}
                       for n in names if has_forget_bias(n)],
            "clipping": [{"name": n, **c} for n in names if (c := clipping(n)) is not None],
            "truncation": [{"name": n, "errors": e} for n in names if (e := truncation(n)) is not None],
            "steps": STEPS, "hidden": HIDDEN, "windows": WINDOWS, "max_norm": MAX_NORM}
