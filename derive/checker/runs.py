"""The witness a cell claim is evaluated on: the derivation run at 30 digits on random
parameters, inputs and loss weights (the same witness the tests use), per seed."""

from __future__ import annotations

import random
from functools import lru_cache

import numpy as np
import sympy as sp

from derive.symbolic import bptt, ir, spec
from derive.witness import derivation as verify

SIZES = verify.Sizes(T=4, I=2, H=3, P=2)
SEEDS = (11, 12, 13)
RTOL = 1e-9


@lru_cache(maxsize=32)
def runs(name_or_path: str):
    """Per seed: (the run's envs by step, gradients, the derivation)."""
    cell = spec.load(name_or_path)
    d = bptt.derive(cell)
    out = []
    for seed in SEEDS:
        rng = random.Random(seed)

        def rnd(_):
            return sp.Float(rng.uniform(-1.2, 1.2), 30)
        params = {p.symbol: verify._array(tuple(SIZES.of(x) for x in p.shape), rnd) for p in cell.params.values()}
        xs = [verify._array((SIZES.I,), rnd) for _ in range(SIZES.T)]
        s0 = {s: verify._array((SIZES.of(cell.dims[ir.ref(s).key]),), rnd) for s in cell.states}
        w, v = verify.loss_weights(cell, SIZES, rng)
        record: list = []
        grads, _, _, _ = verify.run_derivation(d, params, xs, s0, w, v, record)
        out.append((seed, dict(record), grads))
    return d, out


def mid_steps(runs):
    """(seed, t, env) for the steps in the middle of each run."""
    for seed, envs, _ in runs:
        for t in range(2, SIZES.T):
            yield seed, t, envs[t]


def as_float(value) -> np.ndarray:
    """A value of the 30-digit run as a float64 array."""
    return np.asarray(np.asarray(value, dtype=object).astype(float))


def close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - b) <= RTOL * (1 + np.abs(b))))
