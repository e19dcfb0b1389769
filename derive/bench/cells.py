"""``derive bench CELL``: the generated kernel against ``torch.nn`` on the CPU, same threads.

Each row times forward + backward over a sequence for the kernel and for the PyTorch
module with the same parameters, both in this process with the same thread count
(torch.set_num_threads and threadpoolctl for NumPy's BLAS), and the *GEMM-bound limit*:
the kernel's matrix products alone, timed with NumPy at the same shapes (one input GEMM,
T recurrent GEMMs, T carry GEMMs, the weight-gradient GEMMs). For the LSTM a hand-fused
NumPy LSTM (``derive.bench.handfused``) runs beside them. The NumPy contenders take turns, round
by round, and each keeps its best time, so a slow spell of the machine hits all of them;
torch runs in a block of its own first (its OpenMP threads and OpenBLAS's workers each
spin for a while after a call, so alternating the two runtimes would slow both).
"GEMM %" is the GEMM-only time over the kernel's, i.e. the fraction of the time spent at
the machine's matmul throughput; "GF/s" the GEMMs' FLOPs over the GEMM-only time.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from derive.bench import handfused
from derive.runtime import kernels as runtime
from derive.symbolic import spec
from derive.errors import DeriveError
from derive.textout import table
from derive.bench.timing import best, best_of, blas_limits

SIZES = [(100, 64, 256, 256), (50, 16, 64, 64), (200, 1, 32, 32)]  # (T, B, I, H)


def _dims(I, H) -> dict:
    """Sizes by name; a projecting cell (lstm_proj) is benchmarked with P = H / 2."""
    return {"I": I, "H": H, "P": H // 2}


def _projects(k) -> bool:
    return "P" in k.STATE_DIMS.values()


def gemm_shapes(k, T, B, I, H) -> list:
    """(count, m, k, n) of every matrix product one forward + backward performs."""
    dims = _dims(I, H)
    shapes = []
    for group, cols in k.GEMMS.items():
        n = sum(dims[c] for c in cols["out"])
        kin = dims[cols["in"]]
        if cols["kind"] == "input":
            shapes += [(1, T * B, kin, n), (1, T * B, n, kin), (1, n, T * B, kin)]  # forward, dx, dW
        else:
            shapes += [(T, B, kin, n), (T, B, n, kin), (1, n, T * B, kin)]  # forward, carry, dW
    return shapes


def gemm_run(shapes, dtype) -> tuple:
    """(a function running every GEMM once at NumPy's speed, their FLOPs)."""
    rng = np.random.default_rng(0)
    ops = []
    flops = 0.0
    for count, m, kk, n in shapes:
        a = rng.standard_normal((m, kk)).astype(dtype)
        b = rng.standard_normal((kk, n)).astype(dtype)
        out = np.empty((m, n), dtype)
        ops.append((count, a, b, out))
        flops += 2.0 * count * m * kk * n

    def run():
        for count, a, b, out in ops:
            for _ in range(count):
                np.matmul(a, b, out=out)
    return run, flops


def torch_nn_time(k, torch, I, H, dtype, x, dy, repeat: int) -> float | None:
    """Best time of torch.nn's module of the cell, forward and backward on (x, dy); None where torch.nn
    has no such cell."""
    m = _torch_module(k, torch, I, H, torch.float32 if dtype == np.float32 else torch.float64)
    if m is None:
        return None
    xt = torch.from_numpy(x).requires_grad_(True)
    dyt = torch.from_numpy(dy)

    def run():
        m.zero_grad(set_to_none=True)
        xt.grad = None
        y, _ = m(xt)
        y.backward(dyt)
    return best(run, repeat)


def _torch_module(k, torch, I, H, dtype):
    lay = k.LAYOUTS.get("torch")
    if not lay:
        return None
    cls = getattr(torch.nn, lay["module"])
    kw = {"nonlinearity": lay["nonlinearity"]} if lay.get("nonlinearity") else {}
    if _projects(k):
        kw["proj_size"] = _dims(I, H)["P"]
    return cls(I, H, **kw).to(dtype)


def bench(cells, repeat: int, threads: int | None, sizes=SIZES) -> int:

    threads = threads or os.cpu_count() or 1
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    print(f"forward + backward, best of {repeat}, {threads} thread(s) for NumPy's BLAS and torch; ms; "
          f"ratio = derive / torch (< 1: derive is faster); hand = the hand-fused NumPy LSTM "
          f"(derive.bench.handfused), vs hand = derive / hand; projecting cells use P = H / 2")
    header = ("cell", "T, B, I, H", "dtype", "derive", "torch", "ratio", "hand", "vs hand", "GEMMs", "GEMM %",
              "GF/s")
    rows = []
    with blas_limits(threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        for name in cells:
            k = runtime.kernel(name)
            for (T, B, I, H) in sizes:
                for dtype in (np.float32, np.float64):
                    rows.append(_row(k, name, torch, T, B, I, H, dtype, repeat))
    table(header, rows)
    return 0


def _row(k, name, torch, T, B, I, H, dtype, repeat):
    rng = np.random.default_rng(0)
    dims = _dims(I, H)
    params = k.init_params(I, H, proj_size=dims["P"] if _projects(k) else None, seed=0, dtype=dtype)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    dy = rng.standard_normal((T, B, dims[k.OUTPUT_DIM])).astype(dtype)

    def ours():
        y, sT, cache = k.forward(x, None, params)
        k.backward(dy, None, cache, params)
    fns = {"derive": ours}
    t = {}
    if torch is not None:
        theirs = torch_nn_time(k, torch, I, H, dtype, x, dy, repeat)
        if theirs is not None:
            t["torch"] = theirs
    if name == "lstm":
        w = handfused.fuse(params, dtype)
        zeros = np.zeros((B, H), dtype)

        def hand():
            y, cache = handfused.forward(x, zeros, zeros, w)
            handfused.backward(dy, cache, w)
        fns["hand"] = hand
    fns["gemm"], flops = gemm_run(gemm_shapes(k, T, B, I, H), dtype)
    t.update(best_of(fns, repeat))
    ms = lambda key: f"{t[key] * 1e3:.2f}" if key in t else ""
    vs = lambda key: f"{t['derive'] / t[key]:.2f}" if key in t else ""
    return (name, f"{T}, {B}, {I}, {H}", np.dtype(dtype).name, ms("derive"), ms("torch"), vs("torch"),
            ms("hand"), vs("hand"), ms("gemm"), f"{100 * t['gemm'] / t['derive']:.0f}%",
            f"{flops / t['gemm'] / 1e9:.1f}")


def known(names):
    for n in names:
        if n.replace("-", "_").lower() not in spec.builtin_names() and not n.endswith(".toml"):
            raise DeriveError(f"unknown cell {n!r}; built-in cells: {', '.join(spec.builtin_names())}, "
                              f"'activations', or a .toml spec")
    return names


def parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise DeriveError(f"--shape {text!r}: expected four positive integers T,B,I,H")
    return shape
