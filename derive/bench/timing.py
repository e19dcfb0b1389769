"""Wall-clock timing for the benchmarks: contenders run in turns, each keeps its best."""

from __future__ import annotations

import time

from derive import kernelapi


def blas_limits(threads: int):
    """``threadpoolctl.threadpool_limits(threads)`` over every BLAS the contenders use. The compiled
    kernels' ``np.dot`` calls SciPy's BLAS (numba binds ``scipy.linalg.cython_blas``: a second OpenBLAS,
    loaded when a compiled kernel first runs); threadpoolctl limits only libraries already loaded, so
    ``kernelapi.blas`` loads it first (without this the compiled kernels ran their GEMMs on every core's
    worth of threads while NumPy and torch had ``threads``)."""
    from threadpoolctl import threadpool_limits

    kernelapi.blas()
    return threadpool_limits(limits=threads)


def best_of(fns: dict, repeat: int) -> dict:
    """Best wall time of each function, run in turns (one warm-up round, then ``repeat``)."""
    fastest = {name: float("inf") for name in fns}
    for rnd in range(repeat + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if rnd:
                fastest[name] = min(fastest[name], time.perf_counter() - t0)
    return fastest


def best(fn, repeat: int) -> float:
    """Best wall time of one function (``best_of`` of one)."""
    return best_of({"fn": fn}, repeat)["fn"]
