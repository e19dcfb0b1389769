"""The witness a cell claim is evaluated on: the derivation run at 30 digits on random
parameters, inputs and loss weights (the same witness the tests use), per seed."""

from __future__ import annotations

import random
from dataclasses import replace
from functools import lru_cache

import numpy as np
import sympy as sp

from derive.symbolic import bptt, ir, spec
from derive.witness import derivation as verify

SIZES = verify.Sizes(T=4, I=2, H=3, P=2)
SEEDS = (11, 12, 13)
RTOL = 1e-9


def reach(cell) -> int:
    """How many steps on a step's formulas read: 1 (``dh_{t+1}``), or k for an input tap x_{t-k},
    whose terms reach dx_t from step t+k (``dz_{a,t+2}``)."""
    return max((1, *cell.taps))


def sizes(cell) -> verify.Sizes:
    """The witness's sizes for ``cell``: ``SIZES``, with I = H when its spec declares ``sizes = { x = "H" }``,
    and longer runs for a tap x_{t-k}, k > 1, so that the middle steps see step t+k."""
    return replace(SIZES.for_cell(cell), T=SIZES.T + reach(cell) - 1)


@lru_cache(maxsize=32)
def runs(name_or_path: str):
    """The derivation and, per seed, (seed, the run's envs by step, gradients); the input's taps
    x_{t-k} are in each step's env, zero before the first step (``verify.run_derivation``)."""
    return runs_of(spec.load(name_or_path))


def runs_of(cell):
    """``runs`` of a cell built in memory (a model's layer, ``symbolic.layer``)."""
    d = bptt.derive(cell)
    n = sizes(cell)
    out = []
    for seed in SEEDS:
        rng = random.Random(seed)

        def rnd(_):
            return sp.Float(rng.uniform(-1.2, 1.2), 30)
        params = {p.symbol: verify._array(tuple(n.of(x) for x in p.shape), rnd) for p in cell.params.values()}
        xs = [verify._array((n.I,), rnd) for _ in range(n.T)]
        s0 = {s: verify._array((n.of(cell.dims[ir.ref(s).key]),), rnd) for s in cell.states}
        w, v = verify.loss_weights(cell, n, rng)
        record: list = []
        grads, _, _, _ = verify.run_derivation(d, params, xs, s0, w, v, record)
        out.append((seed, _reaching(dict(record), cell), grads))
    return d, out


def _reaching(envs: dict, cell) -> dict:
    """Each step's env with the vectors and adjoints of steps t+2 .. t+k too (a tap's terms of dx_t
    read them), where the run has those steps, and the input at t-1 .. t-k (zero before the first
    step) whether or not the cell reads it; the env holds t+1 already."""
    k, x = reach(cell), cell.input
    for t, env in envs.items():
        for j in range(2, min(k, len(envs) - t) + 1):
            later = envs[t + j]
            env.update({ir.at(s, j): v for s, v in later.items() if ir.is_ir(s) and ir.ref(s).time == 0})
        for j in range(1, k + 1):
            before = envs[t - j][x] if t - j >= 1 else np.array([sp.Integer(0)] * len(env[x]), dtype=object)
            env.setdefault(ir.at(x, -j), before)
    return envs


def mid_steps(runs, cell):
    """(seed, t, env) for the steps in the middle of each run: after the first, and early enough
    that every step t+1 .. t+k a formula reads is in the run."""
    for seed, envs, _ in runs:
        for t in range(2, len(envs) - reach(cell) + 1):
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
