"""Argument checks of the generated kernels' API (forward, backward), so the template stays short.

Every problem with what a caller passes is a ``DeriveError`` naming the argument: a wrong
type, an unknown or missing key, a wrong shape, or a dtype other than float32/float64
(complex values would lose their imaginary part, integers and booleans are not what a
gradient is taken of). Shapes are exact: ``dy`` is (T, B, out) and every state (B, dim),
where T, B and I come from x and the dimensions H, P from the parameters (``PARAMS`` maps
each name to its shape, ``"H x I"``).

``forward`` returns ``y`` and the final states as read-only views and keeps a copy of x in
its cache (in the kernel's workspace), so neither editing the results nor refilling the
input buffer can change what ``backward`` computes later.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from functools import lru_cache

import numpy as np

from derive.errors import DeriveError, positive_int, whole  # noqa: F401 (the runtime's names for them)

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_array(value, what: str) -> np.ndarray:
    """``value`` as a NumPy array of float32 or float64 (not copied); anything else is refused."""
    try:
        a = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise DeriveError(f"{what} is not an array of numbers: {e}") from None
    if a.dtype.char not in "fd":  # float32, float64
        raise DeriveError(f"{what} has dtype {a.dtype}; derive kernels take float32 or float64")
    return a


def float_dtype(dtype) -> np.dtype:
    """``dtype`` as a NumPy dtype, float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in FLOATS:
        raise DeriveError(f"dtype {repr(dtype) if dt is None else dt}: derive kernels take float32 or float64")
    return dt


def flag(value, what: str) -> bool:
    """A bool given explicitly (True or False)."""
    if not isinstance(value, (bool, np.bool_)):
        raise DeriveError(f"{what} must be True or False, got {value!r}")
    return bool(value)


@lru_cache(maxsize=None)
def dim_names(shape: str) -> tuple[str, ...]:
    """``"H x I"`` -> ``("H", "I")``: the dimension names of a parameter's shape in ``PARAMS``."""
    return tuple(d.strip() for d in shape.split("x"))


def check_keys(given, expected, what: str, *, required: bool = True) -> Mapping:
    """``given`` is a dict whose keys are among ``expected`` (and include all of them if ``required``)."""
    if not isinstance(given, Mapping):
        raise DeriveError(f"{what} must be a dict, got {type(given).__name__}")
    unknown = [str(k) for k in given if k not in expected]
    if unknown:
        raise DeriveError(f"{what} has unknown key(s) {', '.join(unknown)}; the keys are {', '.join(map(str, expected))}")
    missing = [k for k in expected if k not in given] if required else []
    if missing:
        raise DeriveError(f"{what} lacks the key(s) {', '.join(map(str, missing))}")
    return given


def checked_params(params, shapes: dict, dims: dict, what: str = "params") -> tuple[dict, dict]:
    """The parameters as float arrays, with exactly the cell's names and consistent shapes.

    ``dims`` gives the dimensions already known (I from x); returns (params, every dimension)."""
    check_keys(params, shapes, what)
    dims = dict(dims)
    known = set(dims)
    out = {}
    for name, shape in shapes.items():
        a = out[name] = float_array(params[name], f"parameter {name}")
        names = dim_names(shape)
        if a.ndim != len(names):
            raise DeriveError(f"parameter {name} has shape {a.shape}; expected ({shape})")
        for d, n in zip(names, a.shape):
            if dims.setdefault(d, n) != n or n == 0:
                raise DeriveError(f"parameter {name} has shape {a.shape}; expected ({shape}) with "
                                  f"{_which(d, dims[d], known, shapes)}")
    return out, dims


def _which(d: str, n: int, known: set, shapes: dict) -> str:
    """Where the size ``d = n`` that a parameter contradicts came from (for the message)."""
    if n == 0:
        return f"{d} > 0 (a cell needs at least one unit)"
    first = "x (T, B, I)" if d in known else next(f"parameter {p}" for p, s in shapes.items() if d in dim_names(s))
    return f"{d} = {n} (from {first})"


def same_size(I: int, H: int) -> None:
    """A cell whose spec declares ``sizes = { x = "H" }`` reads inputs of the hidden size."""
    if I != H:
        raise DeriveError(f"x has {I} features, but this cell's input has the hidden size H = {H} (its spec "
                          f"declares sizes = {{ x = \"H\" }}: I = H)")


def forward_args(x, params, shapes: dict, workspace) -> tuple[np.ndarray, dict, dict]:
    """(x copied into the workspace, params converted, dims) for ``forward``.

    Float32 x and parameters give float32; anything else float64."""
    x = float_array(x, "x")
    if x.ndim != 3:
        raise DeriveError(f"x has shape {x.shape}; expected (T, B, I), time-major")
    params, dims = checked_params(params, shapes, {"I": x.shape[2]})
    single = x.dtype == np.float32 and all(a.dtype == np.float32 for a in params.values())
    dtype = np.dtype(np.float32 if single else np.float64)
    kept = workspace.empty("x", x.shape, dtype)  # the cache's own copy: the caller may refill x
    np.copyto(kept, x, casting="same_kind")
    return kept, {n: np.asarray(a, dtype) for n, a in params.items()}, dims


def exact(value, shape: tuple, what: str, meaning: str) -> np.ndarray:
    """``value`` as a float array of exactly ``shape`` (no broadcasting)."""
    a = float_array(value, what)
    if a.shape != tuple(shape):
        raise DeriveError(f"{what} has shape {a.shape}; expected {meaning} = {tuple(shape)}")
    return a


def read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a`` (``a`` itself, a workspace buffer, stays writable)."""
    v = a.view()
    v.flags.writeable = False
    return v


def forward_results(y, states_T: dict, cache: dict, dims: dict, backend: str = "numpy") -> tuple:
    """What ``forward`` returns: y and the final states read-only; the cache notes the dims (and
    the backend, unless NumPy's, so that a cache never reaches another backend's backward)."""
    cache["dims"] = dims
    if backend != "numpy":
        cache["backend"] = backend
    return read_only(y), {s: read_only(v) for s, v in states_T.items()}, cache


def backward_args(dy, dstates_T, cache, params, truncate, shapes: dict, state_dims: dict,
                  output_dim: str, backend: str = "numpy") -> tuple:
    """(dy, dstates_T, params, dims, steps) for ``backward``: checked, in the cache's dtype.

    ``steps`` is the number of time steps the gradient goes through (0 when T, B or
    ``truncate`` is 0: then there is nothing to run)."""
    x = cache.get("x") if isinstance(cache, Mapping) else None
    if not isinstance(x, np.ndarray) or x.ndim != 3 or not isinstance(cache.get("dims"), dict):
        raise DeriveError("cache must be the third value this kernel's forward returned")
    made = cache.get("backend", "numpy")
    if made != backend:
        raise DeriveError(f"cache must be the third value this kernel's forward returned (this one comes from the "
                          f"{made} backend's forward; this is the {backend} backend's backward)")
    dtype = x.dtype
    T, B, _ = x.shape
    params, dims = checked_params(params, shapes, {"I": x.shape[2]})
    changed = [d for d in cache["dims"] if dims.get(d) != cache["dims"][d]]
    if changed:
        raise DeriveError("params do not match the cache: " + ", ".join(
            f"{d} = {dims.get(d)} here, {cache['dims'][d]} in forward" for d in changed))
    if dy is not None:
        dy = np.asarray(exact(dy, (T, B, dims[output_dim]), "dy", f"(T, B, {output_dim})"), dtype)
    if dstates_T is not None:
        check_keys(dstates_T, state_dims, "dstates_T", required=False)
        dstates_T = {s: None if g is None else np.asarray(
            exact(g, (B, dims[state_dims[s]]), f"dstates_T[{s!r}]", f"(B, {state_dims[s]})"), dtype)
            for s, g in dstates_T.items()}
    steps = T
    if truncate is not None:
        steps = min(T, whole(truncate, "truncate"))
        if steps < 0:
            raise DeriveError(f"truncate must be >= 0 (the number of steps to backpropagate through), got {truncate}")
    return dy, dstates_T, {n: np.asarray(a, dtype) for n, a in params.items()}, dims, steps * (B > 0)


def zero_grads(x, dstates_T, params: dict, state_dims: dict, dims: dict) -> dict:
    """backward's result when no step is reached (T, B or truncate = 0): zero gradients, and
    the state gradients are dstates_T itself (dL/d(states at step T - 0))."""
    dstates_T = dstates_T or {}
    grads = {"x": np.zeros(x.shape, x.dtype)}
    for s, d in state_dims.items():
        g = dstates_T.get(s)
        grads[s] = np.zeros((x.shape[1], dims[d]), x.dtype) if g is None else g.copy()
    grads.update({n: np.zeros_like(a) for n, a in params.items()})
    return grads


def with_input_grad(grads: dict, x) -> dict:
    """backward's dict with "x" always present (zeros for a cell that never reads its input)."""
    return grads if "x" in grads else {"x": np.zeros(x.shape, x.dtype), **grads}


def positive(value, what: str) -> float:
    """A real number > 0 (inf allowed); NaN, 0, negatives and non-numbers are refused."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DeriveError(f"{what} must be a positive number, got {value!r}") from None
    if not v > 0:
        raise DeriveError(f"{what} must be a positive number, got {value!r}")
    return v


def gradient_keys(grads, keys) -> list:
    """``keys`` (None: all of ``grads``) as a list; each must be a key of ``grads``."""
    if not isinstance(grads, Mapping):
        raise DeriveError(f"grads must be a dict, got {type(grads).__name__}")
    keys = list(grads) if keys is None else list(keys)
    missing = [str(k) for k in keys if k not in grads]
    if missing:
        raise DeriveError(f"keys {', '.join(missing)} are not among the gradients")
    return keys


# ------------------------------------------------------------------ a cell's clock (symbolic/clock.py)
def clock_modules(H: int, modules: int) -> int:
    """k = H / g, the units per module; H must be a multiple of the clock's g modules."""
    if H % modules:
        raise DeriveError(f"the hidden size {H} is not a multiple of the clock's {modules} modules (H = g k)")
    return H // modules


def clock_mask(T: int, H: int, periods, t0, dtype) -> np.ndarray:
    """m for steps t0 .. t0 + T - 1, (T, 1, H): 1 where the unit's module runs (t mod T_i = 0), else 0."""
    t0 = whole(t0, "t0")
    if t0 < 0:
        raise DeriveError(f"t0 (the index of the first step) must be 0 or more, got {t0}")
    k = clock_modules(H, len(periods))
    period = np.repeat(np.asarray(periods, dtype=np.int64), k)  # each unit's module's period
    steps = np.arange(t0, t0 + T, dtype=np.int64)
    return (steps[:, None, None] % period[None, None, :] == 0).astype(dtype)


def block_pattern(H: int, modules: int, dtype) -> np.ndarray:
    """M (H, H): 1 where unit r's module is at most unit c's (block-upper-triangular), else 0."""
    module = np.arange(H) // clock_modules(H, modules)
    return (module[:, None] <= module[None, :]).astype(dtype)


# ------------------------------------------------------------------ BLAS threads (the compiled backend)

@lru_cache(maxsize=None)
def blas():
    """threadpoolctl's controller of the BLAS libraries loaded: NumPy's, and SciPy's, which numba's
    ``np.dot`` calls in the compiled kernels (imported here so that it is among them)."""
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """The threads the BLAS libraries may use now: the most any of them may (the user's limits, such
    as ``threadpoolctl.threadpool_limits``, included)."""
    return max((lib.num_threads for lib in blas().lib_controllers), default=1)


_ONE_THREAD = {"lock": threading.Lock(), "inside": 0, "saved": []}


@contextlib.contextmanager
def one_blas_thread():
    """Every BLAS library on one thread while a compiled kernel's steps run, restored after (the last
    of concurrent callers restores). The steps' GEMMs are one step's, small; on their own threads they
    ran beside NumPy's OpenBLAS pool, whose threads still spin after the input GEMM, and a compiled
    kernel took 1.3-2.4x the NumPy kernel's time past B x H = 1024 (2 cores, lstm and gru, T = 50)."""
    state = _ONE_THREAD
    with state["lock"]:
        if state["inside"] == 0:
            libs = blas().lib_controllers
            state["saved"] = [(lib, lib.num_threads) for lib in libs]
            for lib, n in state["saved"]:
                if n != 1:
                    lib.set_num_threads(1)
        state["inside"] += 1
    try:
        yield
    finally:
        with state["lock"]:
            state["inside"] -= 1
            if state["inside"] == 0:
                for lib, n in state["saved"]:
                    if n != 1:
                        lib.set_num_threads(n)
