"""``derive bench --peers CELL``: derive's backends against what a user would run instead.

For each cell and size, forward + backward (the gradient of sum(y * dy) for x and every parameter,
zero initial states), best of ``repeat``, in ms:

* ``numpy``, ``compiled``, ``auto``: ``derive.kernel(cell, backend=...)``; ``1st call`` is the compiled
  backend's first forward + backward in this process (numba compiling it, or loading it from its
  on-disk cache), never counted in its time;
* ``JAX``: ``jax.jit(jax.grad(loss))`` of a ``lax.scan`` over the cell's equations (the bench extra:
  ``pip install 'derive[bench]'``; the column is empty, with a note, without it);
* ``torch eager``: the same equations as a Python loop over steps in PyTorch, ``loss.backward()``;
* ``torch.nn``: the PyTorch module, for the cells PyTorch has (``LAYOUTS['torch']``);
* ``GEMMs``: the kernel's matrix products alone (``bench.cells.gemm_shapes``: the input GEMM, T recurrent
  and T carry GEMMs, the weight gradients), timed with NumPy at the same shapes: the GEMM-bound limit, a
  time no implementation that computes those products through BLAS goes below. ``GEMM-bound`` is that
  time over derive's (auto): the fraction of the limit derive reaches.

Both peers are written here from the cell's equations (``step``: one evaluator of the IR over an
array namespace), so every cell gets them; each is checked to give the kernel's ``dL/dx`` before it
is timed. ``auto / peer`` is derive's auto time over the fastest peer's (< 1: derive is faster).
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import sympy as sp

from derive.bench import record
from derive.bench.cells import SIZES, _dims, _projects, gemm_run, gemm_shapes, torch_nn_time
from derive.bench.timing import best, blas_limits
from derive.errors import DeriveError
from derive.runtime import kernels as runtime
from derive.symbolic import bptt, ir, spec
from derive.symbolic.functions import maximum, minimum
from derive.textout import table

#: the activations ``step`` evaluates (``Namespace.act``)
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity", "softsign")


class Namespace:
    """What ``step`` needs of an array library."""

    def __init__(self, lib: str):
        if lib == "jax":
            import jax
            import jax.numpy as jnp
            self.act = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}
            self.exp, self.log, self.maximum, self.minimum = jnp.exp, jnp.log, jnp.maximum, jnp.minimum
            self.mean = lambda a: jnp.mean(a, axis=-1, keepdims=True)
        else:
            import torch
            self.act = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}
            self.exp, self.log, self.maximum, self.minimum = torch.exp, torch.log, torch.maximum, torch.minimum
            self.mean = lambda a: a.mean(dim=-1, keepdim=True)
        self.act["identity"] = lambda a: a
        self.act["softsign"] = lambda a: a / (1 + abs(a))


def _value(expr, env: dict, ns: Namespace):
    """An IR expression on arrays of shape (B, n) (``W a`` is ``a @ W.T``)."""
    if isinstance(expr, sp.Symbol):
        return env[expr]
    if expr.is_number:
        return float(expr)
    if isinstance(expr, ir.MatVec):
        return _value(expr.args[1], env, ns) @ env[expr.args[0]].T
    if isinstance(expr, ir.Mean):
        return ns.mean(_value(expr.args[0], env, ns))
    if isinstance(expr, sp.Add):
        out = _value(expr.args[0], env, ns)
        for a in expr.args[1:]:
            out = out + _value(a, env, ns)
        return out
    if isinstance(expr, sp.Mul):
        out = _value(expr.args[0], env, ns)
        for a in expr.args[1:]:
            out = out * _value(a, env, ns)
        return out
    if isinstance(expr, sp.Pow):
        return _value(expr.base, env, ns) ** float(expr.exp)
    name = type(expr).__name__
    if name in ns.act:
        return ns.act[name](_value(expr.args[0], env, ns))
    simple = {sp.exp: ns.exp, sp.log: ns.log, sp.Abs: abs, maximum: ns.maximum, minimum: ns.minimum}
    if type(expr) in simple:
        return simple[type(expr)](*[_value(a, env, ns) for a in expr.args])
    raise DeriveError(f"the bench's peers cannot evaluate {name} yet")


def step(cell, ns: Namespace):
    """``(params, states, x_t) -> (states, y_t)``: one step of the cell's equations."""
    def run(params, states, x_t):
        env = {p.symbol: params[p.key] for p in cell.params.values()}
        env[cell.input] = x_t
        for s, v in zip(cell.states, states):
            env[ir.at(s, -1)] = v
        for a in cell.assignments:
            env[a.target] = _value(a.rhs, env, ns)
        return tuple(env[s] for s in cell.states), env[cell.output]
    return run


def jax_peer(cell, params: dict, x, dy, states0):
    """A function running jit(grad(loss)) once (blocking), and its dL/dx."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    f = step(cell, Namespace("jax"))

    def loss(p, xs):
        def body(states, x_t):
            return f(p, states, x_t)
        _, ys = jax.lax.scan(body, tuple(jnp.asarray(s) for s in states0), xs)
        return jnp.sum(ys * dy)
    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    p = {k: jnp.asarray(v) for k, v in params.items()}
    xs = jnp.asarray(x)

    def run():
        return jax.block_until_ready(grad(p, xs))
    return run, np.asarray(run()[1])


def torch_peer(cell, params: dict, x, dy, states0):
    """A function running the eager loop forward and ``loss.backward()`` once, and its dL/dx."""
    import torch

    f = step(cell, Namespace("torch"))
    p = {k: torch.from_numpy(np.array(v)).requires_grad_(True) for k, v in params.items()}
    xs = torch.from_numpy(np.array(x)).requires_grad_(True)
    dyt = torch.from_numpy(np.array(dy))
    s0 = tuple(torch.from_numpy(np.array(s)) for s in states0)

    def run():
        for t in [*p.values(), xs]:
            t.grad = None
        states, ys = s0, []
        for t in range(xs.shape[0]):
            states, y = f(p, states, xs[t])
            ys.append(y)
        (torch.stack(ys) * dyt).sum().backward()
        return xs.grad
    return run, run().numpy().copy()


def _evaluable(cell) -> bool:
    """Whether ``step`` can evaluate every equation of ``cell``."""
    known = set(ACTIVATIONS) | {"exp", "log", "Abs", "maximum", "minimum", "MatVec", "Mean"}
    return all(type(f).__name__ in known for a in cell.assignments for f in a.rhs.atoms(sp.Function))


def _agrees(name, what, theirs, ours, dtype) -> None:
    tol = 1e-3 if dtype == np.float32 else 1e-8
    err = float(np.max(np.abs(theirs - ours)) / max(1.0, float(np.max(np.abs(ours)))))
    if not err <= tol:
        raise DeriveError(f"the bench's {what} peer of {name} computes another dL/dx (relative error {err:.3g}): "
                          f"a bug in the bench")


#: the columns of a row, in the table's order (times in seconds; "first" the compiled backend's first call)
LABELS = ("numpy", "compiled", "auto", "JAX", "torch eager", "torch.nn", "GEMMs")
PEERS = ("JAX", "torch eager", "torch.nn")


def bench(cells, repeat: int, threads: int | None, sizes=SIZES, *, site: bool = False) -> int:
    rows, setup = measure(cells, repeat, threads, sizes)
    print(f"forward + backward (zero initial states, dL/dx and every parameter), best of {repeat}, {setup['threads']} "
          f"thread(s) for NumPy's BLAS and torch; ms. auto / peer = derive (auto) over the fastest peer (JAX, torch "
          f"eager, torch.nn; < 1: derive is faster). 1st call = the compiled backend's first call in this process "
          f"(numba compiling, or loading its on-disk cache), s, not counted in its time")
    if "jax" not in setup["versions"]:
        print("JAX is not installed: its column is empty (pip install 'derive[bench]')")
    header = ("cell", "T, B, I, H", "dtype", *LABELS, "auto / peer", "GEMM-bound", "1st call")
    table(header, [_cells(r) for r in rows])
    if site:
        print(record.write(rows, setup, repeat))
    return 0


def measure(cells, repeat: int, threads: int | None, sizes=SIZES) -> tuple[list[dict], dict]:
    """One dict per (cell, size, dtype): ``times`` (label -> seconds), ``first`` (s or None); and the set-up."""

    threads = threads or os.cpu_count() or 1
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    try:
        import jax  # noqa: F401
        has_jax = True
    except ImportError:
        has_jax = False
    rows = []
    with blas_limits(threads), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
        for name in cells:
            for (T, B, I, H) in sizes:
                for dtype in (np.float32, np.float64):
                    rows.append(_row(name, torch, has_jax, T, B, I, H, dtype, repeat))
    return rows, {"threads": threads, "versions": _versions(torch, has_jax)}


def _versions(torch, has_jax: bool) -> dict:
    import numba
    out = {"numpy": np.__version__, "numba": numba.__version__}
    if torch is not None:
        out["torch"] = torch.__version__
    if has_jax:
        import jax
        out["jax"] = jax.__version__
    return out


def ratio(row: dict) -> float | None:
    """derive's auto time over the fastest peer's."""
    peers = [row["times"][k] for k in PEERS if k in row["times"]]
    return row["times"]["auto"] / min(peers) if peers else None


def gemm_bound(times: dict) -> float | None:
    """The GEMM-only time over derive's (auto): 1 is the limit (every cycle in BLAS)."""
    return times["GEMMs"] / times["auto"] if "GEMMs" in times else None


def _cells(row: dict) -> tuple:
    t = row["times"]
    ms = lambda key: f"{t[key] * 1e3:.2f}" if key in t else "—"
    r, g = ratio(row), gemm_bound(t)
    return (row["cell"], ", ".join(map(str, row["size"])), row["dtype"], *(ms(k) for k in LABELS),
            f"{r:.2f}" if r is not None else "—", f"{100 * g:.0f}%" if g is not None else "—",
            f"{row['first']:.2f}" if row["first"] is not None else "—")


def _row(name, torch, has_jax, T, B, I, H, dtype, repeat) -> dict:
    kn = runtime.kernel(name)
    try:
        kc = runtime.kernel(name, backend="compiled")
    except DeriveError:
        kc = None
    ka = runtime.kernel(name, backend="auto")
    cell = bptt.derive(spec.load(name)).cell
    rng = np.random.default_rng(0)
    dims = _dims(I, H)
    params = kn.init_params(I, H, proj_size=dims["P"] if _projects(kn) else None, seed=0, dtype=dtype)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    dy = rng.standard_normal((T, B, dims[kn.OUTPUT_DIM])).astype(dtype)
    states0 = [np.zeros((B, dims[kn.STATE_DIMS[ir.ref(s).key]]), dtype) for s in cell.states]

    def ours(k):
        def run():
            y, _, cache = k.forward(x, None, params)
            return k.backward(dy, None, cache, params)
        return run
    fns = {"numpy": ours(kn), "auto": ours(ka)}
    first = None
    if kc is not None:
        t0 = time.perf_counter()
        got = ours(kc)()
        first = time.perf_counter() - t0
        _agrees(name, "compiled", got["x"], ours(kn)()["x"], dtype)
        fns["compiled"] = ours(kc)
    ref = ours(kn)()["x"]
    t = {label: best(fn, repeat) for label, fn in fns.items()}  # each in a block of its own, as the peers
    for label, make, ok in (("JAX", jax_peer, has_jax), ("torch eager", torch_peer, torch is not None)):
        if not ok or not _evaluable(cell):
            continue  # a cell with a function the peers' evaluator lacks: the column stays empty
        run, dx = make(cell, params, x, dy, states0)
        _agrees(name, label, dx, ref, dtype)
        t[label] = best(run, repeat)
    if torch is not None:
        nn = torch_nn_time(kn, torch, I, H, dtype, x, dy, repeat)
        if nn is not None:
            t["torch.nn"] = nn
    t["GEMMs"] = best(gemm_run(gemm_shapes(kn, T, B, I, H), dtype)[0], repeat)
    return {"cell": name, "size": [T, B, I, H], "dtype": np.dtype(dtype).name, "times": t, "first": first}
