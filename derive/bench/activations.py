"""``derive bench activations``: each activation kernel against the naive NumPy formula and torch."""

from __future__ import annotations

import numpy as np
import sympy as sp

from derive import activations as acts
from derive.bench.timing import best
from derive.runtime.activations import activation
from derive.textout import table
from derive.symbolic.properties import x
from derive.witness.activations import TORCH


def bench(names, size: int, repeat: int, threads: int) -> int:
    """``derive bench activations``: kernel vs naive NumPy formula vs torch.nn.functional."""
    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    print(f"{size} elements, best of {repeat}; torch with {threads} thread(s); times in ms; "
          f"ratio = derive / other (< 1: derive is faster)")
    header = ("activation", "dtype", "f", "naive f", "ratio", "torch f", "ratio", "f'", "naive f'", "ratio",
              "torch f+f'", "derive f+f'", "ratio")
    body = []
    rng = np.random.default_rng(0)
    for name in names or acts.elementwise():
        a = activation(name)
        f_naive, d_naive = _naive(name)
        for dtype in (np.float32, np.float64):
            xs = (rng.standard_normal(size) * 5).astype(dtype)
            t_f = best(lambda: a.f(xs), repeat)
            t_d = best(lambda: a.df(xs), repeat)
            with np.errstate(all="ignore"):
                t_nf = best(lambda: f_naive(xs), repeat)
                t_nd = best(lambda: d_naive(xs), repeat)
            t_tf = t_tfd = None
            if torch is not None and name in TORCH:
                fname, kwargs = TORCH[name]
                kw = kwargs(a.params)
                t = torch.from_numpy(xs)
                if "weight" in kw:
                    kw["weight"] = torch.tensor([kw["weight"]], dtype=t.dtype)
                fn = getattr(F, fname)
                t_tf = best(lambda: fn(t, **kw), repeat)
                tg = t.clone().requires_grad_(True)
                ones = torch.ones_like(tg)

                def fwd_bwd():
                    tg.grad = None
                    fn(tg, **kw).backward(ones)
                t_tfd = best(fwd_bwd, repeat)
            ms = lambda v: "" if v is None else f"{v * 1e3:.2f}"
            ratio = lambda a_, b_: "" if b_ is None else f"{a_ / b_:.2f}"
            body.append((name, np.dtype(dtype).name, ms(t_f), ms(t_nf), ratio(t_f, t_nf), ms(t_tf), ratio(t_f, t_tf),
                         ms(t_d), ms(t_nd), ratio(t_d, t_nd), ms(t_tfd), ms(t_f + t_d), ratio(t_f + t_d, t_tfd)))
    table(header, body)
    return 0


def _naive(name: str):
    """The textbook formula and its SymPy derivative, lambdified for NumPy (no stable rewrite)."""
    f = acts.get(name).expr(x)
    mods = ["scipy", "numpy"]
    return sp.lambdify(x, f, mods), sp.lambdify(x, sp.diff(f, x), mods)
