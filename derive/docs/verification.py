"""The verification figures a cell's page shows: the generated kernel (float64) against
finite differences, against the derivation evaluated at 30 digits, and against PyTorch.

Figures are printed as a power-of-ten bound (``< 1e-13``): the page then says what was
measured without depending on the last bits of a machine's BLAS, so a rebuild elsewhere
gives the same bytes. The test suite asserts the tolerances independently
(tests/test_kernels.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import sympy as sp
from derive import interop, kernelapi
from derive.codegen.selfcheck import verified_kernel
from derive.symbolic import ir
from derive.witness import derivation as verify

T, B, I, H, P = 4, 3, 3, 5, 3

#: cell -> the torch.nn module of the same math (one layer, one direction)
TORCH = {
    "rnn_tanh": lambda nn: nn.RNN(I, H),
    "rnn_relu": lambda nn: nn.RNN(I, H, nonlinearity="relu"),
    "lstm": lambda nn: nn.LSTM(I, H),
    "lstm_proj": lambda nn: nn.LSTM(I, H, proj_size=P),
    "gru": lambda nn: nn.GRU(I, H),
}


#: the smallest bound each witness prints: its measurement varies below it from machine to machine
#: (central differences at eps = 1e-6 carry ~1e-10..1e-8 of rounding and truncation; float64 against
#: 30 digits or against PyTorch ~1e-16..1e-14, with the BLAS's summation order), and a page must be
#: the same bytes wherever it is built
FLOORS = {"differences": 1e-7, "derivation": 1e-13, "pytorch": 1e-13}


def bound(err: float, floor: float = 0.0) -> str:
    """``< 1e-k``, the smallest power of ten above ``err`` and at least ``floor``."""
    if err == 0 and floor == 0:
        return "0 (exact)"
    if err < floor:
        return f"< 1e{round(math.log10(floor))}"
    return f"< 1e{math.floor(math.log10(err)) + 1}"


def hidden(k) -> int:
    """H, or the next multiple of a clock's modules (a Clockwork RNN's H = g k)."""
    g = getattr(k, "CLOCK", {}).get("modules", 1)
    return g * -(-H // g)


def _setup(k, seed: int, batch: int = B, steps: int = T):
    rng = np.random.default_rng(seed)
    proj = P if "P" in k.STATE_DIMS.values() else None
    size = {"I": I, "H": hidden(k), "P": P}
    inputs = size[k.INPUT_DIM]
    params = {n: 2.0 * a for n, a in k.init_params(inputs, size["H"], proj_size=proj, seed=seed + 1).items()}
    x = rng.standard_normal((steps, batch, inputs))
    s0 = {s: rng.standard_normal((batch, size[k.STATE_DIMS[s]])) for s in k.STATES}
    w = rng.standard_normal((steps, batch, size[k.OUTPUT_DIM]))
    v = {s: rng.standard_normal((batch, size[k.STATE_DIMS[s]])) for s in k.STATES}
    return rng, params, x, s0, w, v


def _loss(k, x, s0, params, w, v) -> float:
    y, sT, _ = k.forward(x, s0, params)
    return float((w * y).sum() + sum((v[s] * sT[s]).sum() for s in k.STATES))


def finite_differences(k, eps: float = 1e-6) -> float:
    """Largest |<g, u> - central difference| / max(1, |<g, u>|) over x, the states and
    every parameter, u a random direction."""
    rng, params, x, s0, w, v = _setup(k, seed=0)
    _, _, cache = k.forward(x, s0, params)
    g = k.backward(w, v, cache, params)
    worst = 0.0
    for key in ["x", *k.STATES, *params]:
        u = rng.standard_normal(g[key].shape)

        def loss(sign):
            xx = x + sign * eps * u if key == "x" else x
            ss = {**s0, key: s0[key] + sign * eps * u} if key in s0 else s0
            pp = {**params, key: params[key] + sign * eps * u} if key in params else params
            return _loss(k, xx, ss, pp, w, v)
        fd = (loss(1) - loss(-1)) / (2 * eps)
        analytic = float((g[key] * u).sum())
        worst = max(worst, abs(fd - analytic) / max(1.0, abs(analytic)))
    return worst


def derivation(k, d) -> float:
    """Largest relative difference between the kernel (float64, B = 1) and the page's formulas
    evaluated by SymPy at 30 digits (outputs, every gradient)."""
    cell = d.cell
    _, params, x, s0, w, v = _setup(k, seed=3, batch=1, steps=3)
    y, _, cache = k.forward(x, s0, params)
    g = k.backward(w, v, cache, params)

    def obj(a):
        return np.frompyfunc(lambda e: sp.Float(float(e), 30), 1, 1)(np.asarray(a, dtype=float))
    grads, dxs, ds0, steps = verify.run_derivation(
        d, {p.symbol: obj(params[p.key]) for p in cell.params.values()}, [obj(x[t, 0]) for t in range(3)],
        {s: obj(s0[ir.ref(s).key][0]) for s in cell.states}, [obj(w[t, 0]) for t in range(3)],
        {s: obj(v[ir.ref(s).key][0]) for s in cell.states})
    pairs = [(y[:, 0], [np.asarray(steps[t + 1][cell.output], dtype=float) for t in range(3)]),
             (g["x"][:, 0], [np.asarray(dx, dtype=float) for dx in dxs])]
    pairs += [(g[p.key], grads[p.symbol]) for p in cell.params.values()]
    pairs += [(g[ir.ref(s).key][0], ds0[s]) for s in cell.states]
    return max(_rel(a, np.asarray(b, dtype=float)) for a, b in pairs)


def pytorch(k, name: str) -> float | None:
    """Largest relative difference from torch autograd (float64, one layer), or None when the
    cell has no torch.nn counterpart or torch is not installed."""
    if name not in TORCH:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    m = TORCH[name](torch.nn).double()
    lstm = "c" in k.STATES
    h_size = m.proj_size or H
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, h_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, B, H, dtype=torch.float64, requires_grad=True)
    y, final = m(x, (h0, c0)) if lstm else m(x, h0)
    hT = final[0] if lstm else final
    wy, wh, wc = torch.randn_like(y), torch.randn_like(h0), torch.randn_like(c0)
    loss = (y * wy).sum() + (hT * wh).sum() + ((final[1] * wc).sum() if lstm else 0)
    loss.backward()
    params = k.from_torch(m)
    s0 = {"h": h0[0].detach().numpy(), **({"c": c0[0].detach().numpy()} if lstm else {})}
    ours_y, ours_T, cache = k.forward(x.detach().numpy(), s0, params)
    g = k.backward(wy.numpy(), {"h": wh[0].numpy(), **({"c": wc[0].numpy()} if lstm else {})}, cache, params)
    pairs = [(ours_y, y.detach().numpy()), (ours_T["h"], hT[0].detach().numpy()), (g["x"], x.grad.numpy()),
             (g["h"], h0.grad[0].numpy())]
    if lstm:
        pairs += [(ours_T["c"], final[1][0].detach().numpy()), (g["c"], c0.grad[0].numpy())]
    mine = k.to_torch(g, gradients=True)  # backward's dict: a shared bias's gradient goes to both of torch's biases
    pairs += [(mine[n], prm.grad.numpy()) for n, prm in m.named_parameters()]
    return max(_rel(a, b) for a, b in pairs)


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def sources(name: str) -> list[Path]:
    """What the figures depend on besides the kernel's text: the spec, the witnesses and the layouts."""
    package = Path(__file__).resolve().parents[1]
    return [package / "cells" / f"{name}.toml", Path(__file__).resolve(), Path(verify.__file__),
            Path(interop.__file__), Path(kernelapi.__file__)]


def figures(name: str, d) -> list[dict]:
    """Rows ``{witness, measured, what}`` for the cell's page (``d``: its derivation)."""
    k = verified_kernel(d, f"derive/cells/{name}.toml")[1]  # the kernel as generated now, not the committed file
    rows = [{"witness": "finite differences (float64, central, eps = 1e-6)",
             "what": "inner product with a random direction, per argument: x, initial states, every parameter",
             "measured": bound(finite_differences(k), FLOORS["differences"])},
            {"witness": "this page's formulas at 30 digits (SymPy)",
             "what": "outputs, input, initial-state and parameter gradients (T = 3, B = 1)",
             "measured": bound(derivation(k, d), FLOORS["derivation"])}]
    torch_err = pytorch(k, name)
    if name in TORCH:
        rows.append({"witness": "PyTorch autograd (float64)",
                     "what": "y, final states, every gradient through `from_torch` / `to_torch`",
                     "measured": bound(torch_err, FLOORS["pytorch"]) if torch_err is not None else "not measured (torch not installed)"})
    return rows
