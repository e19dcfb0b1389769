"""The kernel backends (``derive.kernel(name, backend=...)``): what each gives, ``auto``'s choice and
fallback, the compiled backend's refusals, a user spec on every backend, and the compiled module
run as plain Python (``NUMBA_DISABLE_JIT=1``). The witnesses (finite differences, the 30-digit
derivation, PyTorch) run on every backend in ``test_kernels.py``."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import derive
from derive import kernelapi
from derive.cli.build import render_kernels
from derive.runtime import backends

ROOT = Path(__file__).resolve().parent.parent


def _problem(k, T=5, B=2, I=3, H=4, seed=0):
    rng = np.random.default_rng(seed)
    p = k.init_params(I, H, seed=seed)
    return p, rng.standard_normal((T, B, I)), rng.standard_normal((T, B, H))


def _same(g1, g2):
    assert sorted(g1) == sorted(g2)
    for key in g1:
        np.testing.assert_allclose(g1[key], g2[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_the_backends_compute_the_same_gradients():
    ks = {b: derive.kernel("gru", backend=b) for b in backends.BACKENDS}
    p, x, dy = _problem(ks["numpy"])
    results = {}
    for b, k in ks.items():
        y, sT, cache = k.forward(x, None, p)
        results[b] = (y, k.backward(dy, {"h": np.ones((2, 4))}, cache, p, truncate=4))
    for b in ("auto", "compiled"):
        np.testing.assert_allclose(results[b][0], results["numpy"][0], rtol=1e-13, atol=1e-14)
        _same(results[b][1], results["numpy"][1])


#: (BLAS threads, dtype, B, H, what ``auto`` runs for the lstm): one thread, compiled at every size in
#: either dtype; several threads, either dtype, by B x H (AUTO_COMPILED_MAX = 1024: (16, 128) is 2048) and
#: B times the largest weight matrix (AUTO_THREADED_GEMM = 2^17: (16, 64) is 65536, (4, 256) 262144)
AUTO_PICKS = [(1, np.float32, 16, 64, "compiled"), (1, np.float32, 64, 256, "compiled"), (1, np.float64, 64, 256, "compiled"),
              (2, np.float32, 16, 64, "compiled"), (2, np.float64, 16, 64, "compiled"), (2, np.float64, 4, 256, "numpy"),
              (2, np.float64, 16, 128, "numpy"), (2, np.float32, 64, 256, "numpy")]


@pytest.mark.parametrize("threads,dtype,B,H,expected", AUTO_PICKS)
def test_auto_picks_by_size_and_blas_threads(threads, dtype, B, H, expected):
    from threadpoolctl import threadpool_limits

    k = derive.kernel("lstm", backend="auto")
    sru = derive.kernel("sru", backend="auto")  # no matrix product in its time loop: compiled at every size
    assert not k.elementwise and sru.elementwise
    kernelapi.blas()  # SciPy's BLAS loaded, so that the limit covers it
    with threadpool_limits(limits=threads, user_api="blas"):
        assert kernelapi.blas_threads() == threads
        x = np.zeros((2, B, H), dtype)
        assert k.pick(x, k.init_params(H, H, dtype=dtype)) is getattr(k, expected)
        assert sru.pick(x, sru.init_params(H, H, dtype=dtype)) is sru.compiled


def test_a_compiled_kernels_steps_run_on_one_blas_thread_and_give_the_threads_back():
    from threadpoolctl import threadpool_limits

    kernelapi.blas()
    with threadpool_limits(limits=2, user_api="blas"):
        with kernelapi.one_blas_thread():
            assert kernelapi.blas_threads() == 1
            with kernelapi.one_blas_thread():  # nested (or another thread's): the outermost restores
                assert kernelapi.blas_threads() == 1
            assert kernelapi.blas_threads() == 1
        assert kernelapi.blas_threads() == 2
        with pytest.raises(ZeroDivisionError), kernelapi.one_blas_thread():
            1 / 0
        assert kernelapi.blas_threads() == 2
        k = derive.kernel("lstm", backend="compiled")
        p, x, dy = _problem(k)
        y, _, cache = k.forward(x, None, p)
        k.backward(dy, None, cache, p)
        assert kernelapi.blas_threads() == 2


def test_backward_follows_the_cache():
    k = derive.kernel("lstm", backend="auto")
    small, x, _ = _problem(k, B=1, H=8)
    assert k.pick(x, small) is k.compiled
    big = k.init_params(3, 128, dtype=np.float32)
    x32 = np.zeros((2, 16, 3), np.float32)
    _, _, cache = k.forward(x, None, small)
    assert cache["backend"] == "compiled"
    _, _, cache = k.forward(x32, None, big)
    assert "backend" not in cache  # the NumPy kernel's
    g = k.backward(None, None, cache, big)
    assert g["W_hi"].shape == (128, 128)
    assert k.init_params is derive.kernels.lstm.init_params and k.STATES == ["h", "c"]


def test_compiled_refuses_what_it_cannot_express_and_auto_falls_back():
    for name, construct in [("ln_lstm", "mean"), ("clockwork", "clock"), ("qrnn_f_w2", "input tap")]:
        with pytest.raises(derive.DeriveError, match=f"compiled kernel for cell {name} .*{construct}"):
            derive.kernel(name, backend="compiled")
        k = derive.kernel(name, backend="auto")
        assert k.compiled is None and k.pick(np.zeros((3, 1, 4)), {}) is k.numpy
    with pytest.raises(derive.DeriveError, match="unknown kernel backend 'fast'"):
        derive.kernel("lstm", backend="fast")


def test_a_cache_never_reaches_the_other_backends_backward():
    kn, kc = derive.kernel("rnn_tanh"), derive.kernel("rnn_tanh", backend="compiled")
    p, x, dy = _problem(kn)
    with pytest.raises(derive.DeriveError, match="numpy backend's forward; this is the compiled"):
        kc.backward(dy, None, kn.forward(x, None, p)[2], p)
    with pytest.raises(derive.DeriveError, match="compiled backend's forward; this is the numpy"):
        kn.backward(dy, None, kc.forward(x, None, p)[2], p)


SPEC = r"""name = "peep"
input = "x"
states = ["h", "c"]
output = "h"
equations = '''
f_t = \sigma(W_{xf} x_t + W_{hf} h_{t-1} + p_f \odot c_{t-1} + b_f)
g_t = \tanh(W_{xg} x_t + W_{hg} h_{t-1})
c_t = f_t \odot c_{t-1} + (1 - f_t) \odot g_t
u_t = \operatorname{softsign}(c_t)
h_t = u_t \odot \max(W_{hy} u_t, 0)
'''
"""


def test_a_user_spec_gets_every_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("DERIVE_KERNEL_CACHE", str(tmp_path / "cache"))
    spec = tmp_path / "peep.toml"
    spec.write_text(SPEC)
    ks = {b: derive.kernel(str(spec), backend=b) for b in backends.BACKENDS}
    assert ks["auto"].compiled is ks["compiled"]
    written = list((tmp_path / "cache").glob("derive_compiled_peep_*.py"))
    assert len(written) == 1 and Path(ks["compiled"].__file__) == written[0]
    p, x, dy = _problem(ks["numpy"])
    ys, gs = {}, {}
    for b, k in ks.items():
        y, _, cache = k.forward(x, None, p)
        ys[b], gs[b] = y, k.backward(dy, None, cache, p)
    np.testing.assert_allclose(ys["compiled"], ys["numpy"], rtol=1e-13, atol=1e-14)
    _same(gs["compiled"], gs["numpy"])
    _same(gs["auto"], gs["numpy"])


def test_the_compiled_modules_are_committed_and_byte_identical(tmp_path):
    first = render_kernels(tmp_path, ["lstm", "gru_cho", "ln_lstm"])
    again = render_kernels(tmp_path, ["lstm", "gru_cho", "ln_lstm"])
    assert first == again
    compiled = {p.name: t for p, t in first.items() if p.parent.name == "compiled"}
    assert sorted(compiled) == ["gru_cho.py", "lstm.py"]  # ln_lstm: the compiled emitter refuses mean()
    for name, text in compiled.items():
        assert (ROOT / "derive" / "kernels" / "compiled" / name).read_text(encoding="utf-8") == text


STEP_THROUGH = """
import numpy as np, derive
k = derive.kernel("lstm_peephole", backend="compiled")
assert not hasattr(k._forward_steps, "py_func")  # plain Python: a debugger steps through it
p = k.init_params(3, 4, seed=0)
x = np.random.default_rng(0).standard_normal((4, 2, 3))
y, s, cache = k.forward(x, None, p)
g = k.backward(np.ones(y.shape), None, cache, p)
n = derive.kernel("lstm_peephole")
y2, _, c2 = n.forward(x, None, p)
g2 = n.backward(np.ones(y.shape), None, c2, p)
print(max(float(np.abs(g[key] - g2[key]).max()) for key in g2), float(np.abs(y - y2).max()))
"""


def test_numba_disable_jit_runs_the_same_functions_as_python():
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", STEP_THROUGH], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert max(float(v) for v in out.stdout.split()) < 1e-12


#: (activation, its block form, how its error is measured, bound in float64, bound of the float32 block).
#: "value": ULP of the value; "half": ULP of 1/2, for sigmoid, computed as (1 + tanh(z/2))/2 as the NumPy
#: kernels do (nothing overflows): its absolute error (far in the negative tail, where sigmoid is below
#: 2^-53, its relative error is not small)
COMPILED_ACTIVATIONS = [("tanh", "tanh_rows", "value", 2.5, 1.5), ("sigmoid", "sigmoid_rows", "half", 1.5, 1.5)]


@pytest.mark.parametrize("name,rows,measure,bound64,bound32", COMPILED_ACTIVATIONS)
def test_the_compiled_activations_are_within_their_stated_ulp_of_mpmath(name, rows, measure, bound64, bound32):
    """The compiled kernels' vectorizable tanh and sigmoid (``derive/jitmath.py``), one element at a time
    and over a step's block as the kernels call them, against the activation witness (mpmath): tanh worst
    2.2 ULP in float64 (stated in jitmath.py and the README), an element in float32 rounded once from
    float64; a float32 block in float32 arithmetic (``tanh32``: 1.5 ULP), the same bits compiled and
    as plain Python (the self-check and NUMBA_DISABLE_JIT=1 run the latter)."""
    from derive import jitmath
    from derive.codegen.compiledcheck import _plain_jitmath
    from derive.witness import activations as witness

    def worst(got, pts, dtype):
        ref = witness.reference(name, "f", pts)
        if measure == "value":
            err = witness.ulps(got, ref, dtype)
        else:
            err = np.abs(got.astype(float) - np.array([float(r) for r in ref])) / np.spacing(dtype(0.5))
        return float(np.nanmax(err)), pts[np.nanargmax(err)]

    rng = np.random.default_rng(0)
    for dtype, bound, block_bound in ((np.float64, bound64, bound64), (np.float32, 1.0, bound32)):
        pts = np.concatenate([witness.grid(dtype, name), rng.uniform(-1, 1, 2000).astype(dtype),
                              rng.uniform(-22, 22, 2000).astype(dtype), [np.nan]]).astype(dtype)
        got = np.array([getattr(jitmath, name)(p) for p in pts]).astype(dtype)
        err, at = worst(got, pts, dtype)
        assert err <= bound, (dtype, err, at)
        assert np.isnan(got[-1])
        block = pts[:-1 - (pts.size - 1) % 8].reshape(8, -1).copy()
        getattr(jitmath, rows)(block)  # in place, compiled
        assert block.dtype == dtype
        if dtype == np.float64:
            assert np.array_equal(block.ravel(), got[:block.size]), name
        else:
            err, at = worst(block.ravel(), pts[:block.size], dtype)
            assert err <= block_bound, (dtype, err, at)
        plain = pts[:block.size].reshape(8, -1).copy()
        getattr(_plain_jitmath(), rows)(plain)
        assert np.array_equal(plain, block), (name, dtype)
        nan = np.full((1, 16), np.nan, dtype)
        getattr(jitmath, rows)(nan)
        assert np.isnan(nan).all(), (name, dtype)


@pytest.mark.parametrize("dtype,top", [(np.float32, 126), (np.float64, 1022)])
def test_pow2_neg_is_exact_compiled_and_as_python(dtype, top):
    """2^-k from its exponent bits (the compiled tanh's range reduction) against 2.0 ** -k, over every k
    of the type, and plain Python (the self-check's) the same, of the same type."""
    import numba

    from derive import jitmath

    @numba.njit
    def powers(ks, out):
        for i in range(ks.size):
            out[i] = jitmath.pow2_neg(ks[i])

    ks = np.arange(top + 1, dtype=dtype)
    want = np.array([2.0 ** -float(k) for k in ks], dtype)
    got = np.empty_like(want)
    powers(ks, got)
    assert np.array_equal(got, want)
    plain = [jitmath.pow2_neg(k) for k in ks]
    assert all(type(p) is dtype for p in plain) and np.array_equal(np.array(plain), want)


def test_bench_peers_prints_every_backend_and_peer():
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "derive", "bench", "--peers", "gru_cho", "mgu", "--shape", "6,2,3,4",
                          "--repeat", "1", "--threads", "1"], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    header, *rows = [ln.split() for ln in out.stdout.splitlines() if ln.startswith("  ")]
    assert "auto / peer" in " ".join(header) and "JAX" in header and "eager" in header
    assert [r[0] for r in rows] == ["gru_cho", "gru_cho", "mgu", "mgu"]


@pytest.mark.parametrize("module", sorted(p.stem for p in (ROOT / "derive" / "kernels" / "compiled").glob("*.py")
                                          if p.stem != "__init__"))
def test_a_compiled_backward_reads_the_activations_the_forward_kept(module):
    """The backward steps evaluate no tanh or sigmoid of their own: every activation they read was
    computed once in the forward (a gate, a saved activation, a late GEMM's argument such as MUT3's
    tanh(h_{t-1})) and is read from its buffer; a scalar ``_jm.tanh`` there was a second evaluation
    per element, which does not vectorize as the forward's row functions do."""
    import ast

    tree = ast.parse((ROOT / "derive" / "kernels" / "compiled" / f"{module}.py").read_text())
    steps = next(f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "_backward_steps")
    calls = [ast.unparse(n.func) for n in ast.walk(steps) if isinstance(n, ast.Call)]
    assert not [c for c in calls if c in ("_jm.tanh", "_jm.sigmoid", "_jm.tanh_rows", "_jm.sigmoid_rows")], calls
