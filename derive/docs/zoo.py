"""The cell zoo (``site/cells/index.md``): every built-in cell side by side, with the norm of
its state Jacobian at initialisation measured with its generated kernel.

``state_jacobian_norms`` is the spectral norm of ``d s_t / d s_0``, where ``s`` stacks every
state of the cell (an LSTM's h and c: 2H numbers), for a few t: how much of the initial
state reaches step t, the quantity behind vanishing and exploding gradients. Row i of the
Jacobian is the generated ``backward`` seeded with the unit vector e_i at s_t, so one batch
holds one copy of the input sequence per state unit. The parameters are the kernel's
``init_params`` (PyTorch's uniform initialisation), x_t ~ N(0, 1), s_0 = 0. A cell that is not
defined at s_0 = 0 gets None (the LN-LSTM: W_h h_0 is the zero vector there, and layer
normalisation without an epsilon, as the paper prints it, divides 0 by 0).
"""

from __future__ import annotations

import re

import numpy as np

from derive.docs import plots
from derive.runtime.kernels import kernel

STEPS = (1, 10, 50)  # the t at which the zoo reports ||d s_t / d s_0||
HIDDEN, PROJ, SEED = plots.HIDDEN, plots.HIDDEN // 2, plots.SEED


def state_jacobian_norms(name: str, steps=STEPS) -> list[float]:
    """``||d s_t / d s_0||_2`` for each t in ``steps``, to 3 significant digits (so a rebuild
    elsewhere gives the same page)."""
    k = kernel(name)
    size = {"I": HIDDEN, "H": HIDDEN, "P": PROJ}
    proj = PROJ if "P" in k.STATE_DIMS.values() else None
    params = k.init_params(size[k.INPUT_DIM], HIDDEN, proj_size=proj, seed=SEED)
    dims = {s: size[k.STATE_DIMS[s]] for s in k.STATES}
    n = sum(dims.values())  # one batch row per unit of the stacked state
    rng = np.random.default_rng(SEED + 1)
    x = np.repeat(rng.standard_normal((max(steps), 1, size[k.INPUT_DIM])), n, axis=1)
    s0 = {s: np.zeros((n, d)) for s, d in dims.items()}
    out = []
    for t in steps:
        with np.errstate(all="ignore"):  # a cell undefined at s_0 = 0 (LN of the zero vector) gives None
            _, _, cache = k.forward(x[:t], s0, params)
        seeds, row = {}, 0
        for s, d in dims.items():  # e_i over the stacked state, one row each
            seeds[s] = np.zeros((n, d))
            seeds[s][row:row + d] = np.eye(d)
            row += d
        with np.errstate(all="ignore"):
            grads = k.backward(np.zeros((t, n, size[k.OUTPUT_DIM])), seeds, cache, params)
        jac_t = np.concatenate([grads[s] for s in dims], axis=1)  # rows: e_i; columns: s_0
        out.append(float(f"{np.linalg.norm(jac_t, 2):.3g}") if np.all(np.isfinite(jac_t)) else None)
    return out


def paper_of(references: list[str]) -> str:
    """"Greff et al. (2017)", "Hochreiter & Schmidhuber (1997)", "Elman (1990)" from the first
    reference, or "" when it names no year."""
    m = re.match(r"\s*([^()]+?)\s*\((\d{4})\)", references[0]) if references else None
    if not m:
        return ""
    authors, year = m.group(1), m.group(2)
    if "," in authors or "et al." in authors:
        first = re.split(r",| et al\.", authors)[0]
        return f"{first} et al. ({year})"
    return f"{authors} ({year})"
