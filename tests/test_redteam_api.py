"""The generated kernels' Python API against the red-team report (findings 12, 14, 15, 16, 18,
25, 26): explicit ``to_torch(gradients=)``, read-only results and a cache that keeps its own
x, strict argument checks (keys, shapes, dtypes), empty sizes, and the converters' and
clipping utilities' arguments. Each row's id names its finding."""

from dataclasses import dataclass

import numpy as np
import pytest

import derive
from derive.errors import DeriveError

CELLS = ["rnn_tanh", "lstm", "gru", "lstm_proj"]
TORCH = {"rnn_tanh": "RNN", "lstm": "LSTM", "gru": "GRU"}
I, H, P = 3, 5, 2


@dataclass
class Run:
    """One forward pass of kernel ``k`` with everything a test needs around it."""

    k: object
    x: np.ndarray
    s0: dict
    params: dict
    w: np.ndarray  # dL/dy
    v: dict  # dL/d(final states)
    y: np.ndarray
    states_T: dict
    cache: dict

    def size(self, dim: str) -> int:
        return {"I": I, "H": H, "P": P}[dim]


def run(name, T=4, B=3, dtype=np.float64, seed=0) -> Run:
    k = derive.kernel(name)
    rng = np.random.default_rng(seed)
    params = k.init_params(I, H, proj_size=P if "P" in k.STATE_DIMS.values() else None, seed=seed, dtype=dtype)
    dims = {"H": H, "P": P}
    x = rng.standard_normal((T, B, I)).astype(dtype)
    s0 = {s: rng.standard_normal((B, dims[d])).astype(dtype) for s, d in k.STATE_DIMS.items()}
    w = rng.standard_normal((T, B, dims[k.OUTPUT_DIM])).astype(dtype)
    v = {s: rng.standard_normal((B, dims[d])).astype(dtype) for s, d in k.STATE_DIMS.items()}
    y, states_T, cache = k.forward(x, s0, params)
    return Run(k, x, s0, params, w, v, y, states_T, cache)


def loss(k, x, s0, params, w, v) -> float:
    y, sT, _ = k.forward(x, s0, params)
    return float((w * y).sum() + sum((v[s] * sT[s]).sum() for s in k.STATES))


def assert_matches_finite_differences(r: Run, grads: dict, eps=1e-6):
    """Every gradient (x, states, parameters) along a random direction vs central differences."""
    rng = np.random.default_rng(1)
    for key, g in grads.items():
        u = rng.standard_normal(g.shape)
        args = []
        for sign in (1, -1):
            x = r.x + sign * eps * u if key == "x" else r.x
            s0 = {**r.s0, key: r.s0[key] + sign * eps * u} if key in r.s0 else r.s0
            p = {**r.params, key: r.params[key] + sign * eps * u} if key in r.params else r.params
            args.append(loss(r.k, x, s0, p, r.w, r.v))
        fd = (args[0] - args[1]) / (2 * eps)
        assert abs(fd - float((g * u).sum())) <= 1e-6 * max(1.0, abs(fd)), key


def first(d: dict):
    return next(iter(d))


def changed(params: dict, **kw) -> dict:
    return {**params, **kw}


# ------------------------------------------------------- refused arguments (one row per trap)
def _transposed(r):
    name = next(n for n, spec in r.k.PARAMS.items() if spec == "H x I")
    return changed(r.params, **{name: r.params[name].T})


REFUSED = [
    # 12: to_torch cannot tell parameters from gradients by the keys
    pytest.param(lambda r: r.k.to_torch(r.params), "gradients=True", id="F12-to_torch-without-gradients"),
    pytest.param(lambda r: r.k.to_torch(r.params, gradients="yes"), "True or False", id="F12-to_torch-gradients-not-bool"),
    pytest.param(lambda r: r.k.to_torch({**r.params, "p_i": r.params[first(r.params)]}, gradients=False), "p_i",
                 id="F12-to_torch-extra-key"),
    pytest.param(lambda r: r.k.to_torch(r.params, gradients=False, layer=-1), "layer", id="F25-to_torch-layer-negative"),
    # 15: backward's gradients in
    pytest.param(lambda r: r.k.backward(None, {s.upper(): g for s, g in r.v.items()}, r.cache, r.params),
                 "unknown key", id="F15-dstates_T-typo-key"),
    pytest.param(lambda r: r.k.backward(np.concatenate([r.w, r.w[:2]]), None, r.cache, r.params), "dy has shape",
                 id="F15-dy-extra-steps"),
    pytest.param(lambda r: r.k.backward(r.w[:, :1], None, r.cache, r.params), "dy has shape", id="F15-dy-one-batch-row"),
    pytest.param(lambda r: r.k.backward(r.w[..., :1], None, r.cache, r.params), "dy has shape", id="F15-dy-one-feature"),
    pytest.param(lambda r: r.k.backward(None, {s: g[:1] for s, g in r.v.items()}, r.cache, r.params),
                 "dstates_T.* has shape", id="F15-dstates_T-one-batch-row"),
    pytest.param(lambda r: r.k.backward(None, [r.v], r.cache, r.params), "must be a dict", id="F15-dstates_T-a-list"),
    pytest.param(lambda r: r.k.backward(r.w, None, {}, r.params), "cache", id="F15-not-a-cache"),
    pytest.param(lambda r: r.k.backward(r.w, None, r.cache, r.k.init_params(I, H + 1, proj_size=(
        P if "P" in r.k.STATE_DIMS.values() else None))), "do not match the cache", id="F15-params-of-another-size"),
    # 16: complex (and other non-float) values
    pytest.param(lambda r: r.k.forward(r.x + 1j * r.x, r.s0, r.params), "complex128", id="F16-complex-x"),
    pytest.param(lambda r: r.k.forward(r.x, r.s0, changed(r.params, **{first(r.params): 1j * r.params[first(r.params)]})),
                 "complex", id="F16-complex-param"),
    pytest.param(lambda r: r.k.forward(r.x, {s: a + 0j for s, a in r.s0.items()}, r.params), "complex",
                 id="F16-complex-state"),
    pytest.param(lambda r: r.k.backward(r.w + 1j, None, r.cache, r.params), "complex", id="F16-complex-dy"),
    pytest.param(lambda r: r.k.backward(None, {s: g + 0j for s, g in r.v.items()}, r.cache, r.params), "complex",
                 id="F16-complex-dstates_T"),
    pytest.param(lambda r: r.k.forward(np.ones(r.x.shape, np.int64), r.s0, r.params), "int64.*float32 or float64",
                 id="F16-integer-x"),
    pytest.param(lambda r: r.k.forward(r.x > 0, r.s0, r.params), "bool", id="F16-bool-x"),
    pytest.param(lambda r: r.k.forward(r.x.astype(object), r.s0, r.params), "object", id="F16-object-x"),
    pytest.param(lambda r: r.k.forward("x", r.s0, r.params), "dtype <U1", id="F16-string-x"),
    # 18: truncate
    pytest.param(lambda r: r.k.backward(r.w, None, r.cache, r.params, truncate=-3), "truncate", id="F18-truncate-negative"),
    pytest.param(lambda r: r.k.backward(r.w, None, r.cache, r.params, truncate=1.5), "truncate", id="F18-truncate-float"),
    pytest.param(lambda r: r.k.backward(r.w, None, r.cache, r.params, truncate=True), "truncate", id="F18-truncate-bool"),
    # 25: forward's arguments
    pytest.param(lambda r: r.k.forward(r.x[0], r.s0, r.params), r"expected \(T, B, I\)", id="F25-2d-x"),
    pytest.param(lambda r: r.k.forward(r.x, "h", r.params), "states0 must be a dict", id="F25-states0-a-string"),
    pytest.param(lambda r: r.k.forward(r.x, list(r.s0.values()), r.params), "states0 must be a dict",
                 id="F25-states0-a-list"),
    pytest.param(lambda r: r.k.forward(r.x, {s: a[0] for s, a in r.s0.items()}, r.params), "states0.* has shape",
                 id="F25-states0-one-row"),
    pytest.param(lambda r: r.k.forward(r.x, {"C": None}, r.params), "unknown key.* C", id="F25-states0-typo-key"),
    pytest.param(lambda r: r.k.forward(r.x, r.s0, list(r.params.values())), "params must be a dict",
                 id="F25-params-a-list"),
    pytest.param(lambda r: r.k.forward(r.x, r.s0, {**r.params, "p_i": r.params[first(r.params)][:, 0]}),
                 "unknown key.* p_i", id="F25-params-of-another-cell"),
    pytest.param(lambda r: r.k.forward(r.x.astype(np.float32), r.s0, {**{n: a.astype(np.float32) for n, a in
                 r.params.items()}, "unused": np.zeros(3)}), "unknown key.* unused", id="F25-unused-float64-key"),
    pytest.param(lambda r: r.k.forward(r.x, r.s0, {n: a for n, a in r.params.items() if n != first(r.params)}),
                 "lacks the key", id="F25-params-missing-key"),
    pytest.param(lambda r: r.k.forward(r.x, r.s0, _transposed(r)), "has shape", id="F25-param-transposed"),
    pytest.param(lambda r: r.k.forward(r.x[..., :2], r.s0, r.params), r"I = 2 \(from x", id="F25-x-of-another-input-size"),
    pytest.param(lambda r: r.k.init_params(5, 0), "hidden_size must be a positive integer", id="F25-init-zero-hidden"),
    pytest.param(lambda r: r.k.init_params(5, -3), "hidden_size must be a positive integer",
                 id="F25-init-negative-hidden"),
    pytest.param(lambda r: r.k.init_params(5.0, 4), "input_size must be an integer", id="F25-init-float-size"),
    pytest.param(lambda r: r.k.init_params(True, 4), "input_size must be an integer", id="F25-init-bool-size"),
    pytest.param(lambda r: r.k.init_params(3, 4, dtype=np.int64), "float32 or float64", id="F25-init-integer-dtype"),
    # 25: clipping
    pytest.param(lambda r: r.k.clip_by_value(r.params, -1), "positive", id="F25-clip_by_value-negative"),
    pytest.param(lambda r: r.k.clip_by_value(r.params, 0), "positive", id="F25-clip_by_value-zero"),
    pytest.param(lambda r: r.k.clip_by_value(r.params, float("nan")), "positive", id="F25-clip_by_value-nan"),
    pytest.param(lambda r: r.k.clip_by_global_norm(r.params, float("nan")), "positive", id="F25-clip_norm-nan"),
    pytest.param(lambda r: r.k.clip_by_global_norm(r.params, 1.0, keys=["nope"]), "nope", id="F25-clip_norm-unknown-key"),
]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("call,message", REFUSED)
def test_bad_arguments_are_refused_with_a_message(name, call, message):
    with pytest.raises(DeriveError, match=message):
        call(run(name))


TORCH_REFUSED = [
    pytest.param(lambda k, m: k.from_torch(m, layer=-1), "no layer=-1", id="F25-from_torch-layer-negative"),
    pytest.param(lambda k, m: k.from_torch(m, layer=True), "layer must be an integer", id="F25-from_torch-layer-bool"),
    pytest.param(lambda k, m: k.from_torch(m, layer=1.0), "layer must be an integer", id="F25-from_torch-layer-float"),
    pytest.param(lambda k, m: k.from_torch(m, layer=1), "no layer=1", id="F25-from_torch-layer-missing"),
    pytest.param(lambda k, m: k.from_torch(m, reverse=1), "reverse must be True or False",
                 id="F25-from_torch-reverse-int"),
    pytest.param(lambda k, m: derive.Stack.from_torch(k, m).forward(np.zeros((2, 1, I)), {(5, False): None}),
                 r"unknown key.*\(5, False\)", id="F25-stack-states0-missing-layer"),
    pytest.param(lambda k, m: derive.Stack(k, {(0, False): k.from_torch(m)}, 1).backward(np.zeros((2, 1, H + 1)), None, {
        (0, False): k.forward(np.zeros((2, 1, I)), None, k.from_torch(m))[2]}), "dy has shape", id="F25-stack-dy-width"),
]


@pytest.mark.parametrize("name", list(TORCH))
@pytest.mark.parametrize("call,message", TORCH_REFUSED)
def test_torch_converter_arguments_are_refused(name, call, message):
    torch = pytest.importorskip("torch")
    k = derive.kernel(name)
    with pytest.raises(DeriveError, match=message):
        call(k, getattr(torch.nn, TORCH[name])(I, H).double())


KERAS_REFUSED = [
    pytest.param(lambda w: w[:1], "got 1 array", id="F25-from_keras-one-array"),
    pytest.param(lambda w: [w[0].T, w[1], w[2]], "kernel has shape", id="F25-from_keras-transposed-kernel"),
    pytest.param(lambda w: [w[0], w[1][:, 1:], w[2]], "recurrent_kernel has shape", id="F25-from_keras-recurrent-narrow"),
    pytest.param(lambda w: [w[0], w[1], np.concatenate([w[2].ravel(), [0.0]])], "bias has shape",
                 id="F25-from_keras-bias-too-long"),
    pytest.param(lambda w: [w[0], w[1], w[2].ravel()[: w[1].shape[1]] if w[2].ndim == 2 else np.stack([w[2], w[2]])],
                 "bias has shape", id="F25-from_keras-single-vs-double-bias"),
    pytest.param(lambda w: w[0], "takes the list", id="F25-from_keras-not-a-list"),
]


@pytest.mark.parametrize("name", list(TORCH))
@pytest.mark.parametrize("mangle,message", KERAS_REFUSED)
def test_keras_weights_of_the_wrong_shape_are_refused(name, mangle, message):
    r = run(name)
    weights = r.k.to_keras(r.params)
    assert all(np.array_equal(a, b) for a, b in zip(r.k.to_keras(r.k.from_keras(weights)), weights))
    with pytest.raises(DeriveError, match=message):
        r.k.from_keras(mangle(weights))


# ------------------------------------------------------------------- 12: to_torch of gradients
@pytest.mark.parametrize("name", [pytest.param(n, id=f"F12-param-grads-no-x-{n}") for n in TORCH])
def test_to_torch_of_parameter_gradients_only_equals_autograd(name):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    m = getattr(torch.nn, TORCH[name])(I, H).double()
    x = torch.randn(5, 2, I, dtype=torch.float64)
    y, _ = m(x)
    wy = torch.randn_like(y)
    (y * wy).sum().backward()
    k = derive.kernel(name)
    p = k.from_torch(m)
    ours, _, cache = k.forward(x.numpy(), None, p)
    g = k.backward(wy.numpy(), None, cache, p)
    exported = k.to_torch({n: g[n] for n in k.PARAMS}, gradients=True)
    assert sorted(exported) == sorted(n for n, _ in m.named_parameters())
    for n, prm in m.named_parameters():
        np.testing.assert_allclose(exported[n], prm.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=n)


# --------------------------------------------------------------- 14: results and cache are safe
@pytest.mark.parametrize("name", [pytest.param(n, id=f"F14-read-only-{n}") for n in CELLS])
def test_y_and_final_states_are_read_only(name):
    r = run(name)
    for a in [r.y, *r.states_T.values()]:
        assert not a.flags.writeable
        with pytest.raises(ValueError):
            a *= 0.5


@pytest.mark.parametrize("name", [pytest.param(n, id=f"F14-x-refilled-{n}") for n in CELLS])
def test_refilling_the_input_buffer_after_forward_does_not_change_the_gradients(name):
    r = run(name)
    expected = r.k.backward(r.w, r.v, r.k.forward(r.x.copy(), r.s0, r.params)[2], r.params)
    buffer = r.x.copy()
    _, _, cache = r.k.forward(buffer, r.s0, r.params)
    buffer[...] = np.random.default_rng(5).standard_normal(buffer.shape)  # the next batch
    got = r.k.backward(r.w, r.v, cache, r.params)
    for n in expected:
        np.testing.assert_array_equal(got[n], expected[n], err_msg=n)


@pytest.mark.parametrize("name", [pytest.param(n, id=f"F14-kept-not-overwritten-{n}") for n in CELLS])
def test_kept_results_survive_later_calls(name):
    r = run(name)
    kept = {"y": r.y.copy(), **{s: a.copy() for s, a in r.states_T.items()}}
    g1 = r.k.backward(r.w, r.v, r.cache, r.params)
    g1_kept = {n: a.copy() for n, a in g1.items()}
    for seed in range(3):
        other = run(name, seed=seed + 10)
        other.k.backward(other.w, other.v, other.cache, other.params)
    np.testing.assert_array_equal(r.y, kept["y"])
    for s in r.states_T:
        np.testing.assert_array_equal(r.states_T[s], kept[s])
    for n in g1:
        np.testing.assert_array_equal(g1[n], g1_kept[n])
    np.testing.assert_array_equal(r.cache["x"], r.x)


# ------------------------------------------------------------------- 18: empty sizes, truncate=0
EMPTY = [pytest.param(0, 3, None, id="F18-T0"), pytest.param(4, 0, None, id="F18-B0"),
         pytest.param(0, 0, None, id="F18-T0-B0"), pytest.param(4, 3, 0, id="F18-truncate0")]


@pytest.mark.parametrize("name", CELLS)
@pytest.mark.parametrize("T,B,truncate", EMPTY)
def test_empty_sizes_and_truncate_zero_give_zero_gradients_of_the_right_shapes(name, T, B, truncate):
    r = run(name, T=T, B=B)
    out = r.size(r.k.OUTPUT_DIM)
    assert r.y.shape == (T, B, out)
    for s, d in r.k.STATE_DIMS.items():
        assert r.states_T[s].shape == (B, r.size(d))
    g = r.k.backward(r.w, r.v, r.cache, r.params, truncate=truncate)
    assert sorted(g) == sorted(["x", *r.k.STATES, *r.k.PARAMS])
    assert g["x"].shape == (T, B, I) and not g["x"].any()
    for n, a in r.params.items():
        assert g[n].shape == a.shape and not g[n].any(), n
    for s in r.k.STATES:  # no step reached: dL/d(states at T - 0) is dstates_T itself
        np.testing.assert_array_equal(g[s], r.v[s])
    if truncate is None:  # the full gradient: finite differences agree
        assert_matches_finite_differences(r, g)


# ------------------------------------------------------------------- 25: clipping with NaN / inf
@pytest.mark.parametrize("bad", [pytest.param(float("nan"), id="F25-clip-nan-like-torch"),
                                 pytest.param(float("inf"), id="F25-clip-inf-like-torch")])
@pytest.mark.parametrize("max_norm", [1.0, 1e300])
def test_clip_by_global_norm_with_a_nonfinite_gradient_matches_torch(bad, max_norm):
    torch = pytest.importorskip("torch")
    k = derive.kernel("lstm")
    grads = {"a": np.array([3.0, bad]), "b": np.array([12.0, -1.0])}
    tensors = [torch.nn.Parameter(torch.zeros(2, dtype=torch.float64)) for _ in grads]
    for t, a in zip(tensors, grads.values()):
        t.grad = torch.from_numpy(a.copy())
    total = float(torch.nn.utils.clip_grad_norm_(tensors, max_norm))
    clipped, norm = k.clip_by_global_norm(grads, max_norm)
    np.testing.assert_array_equal(norm, total)
    for t, a in zip(tensors, clipped.values()):
        np.testing.assert_array_equal(a, t.grad.numpy())


# ------------------------------------------------------------------- 26: a cell that ignores x
NO_INPUT = '''name = "noinput"
title = "A cell that never reads its input"
input = "x"
states = ["h"]
output = "h"
equations = \'\'\'
h_t = \\tanh(W_{hh} h_{t-1} + b_h)
\'\'\'
'''


@pytest.mark.parametrize("T,B", [pytest.param(4, 3, id="F26-unused-input-gets-x"),
                                 pytest.param(0, 3, id="F26-unused-input-gets-x-T0")])
def test_a_cell_that_never_reads_x_still_returns_its_zero_gradient(tmp_path, T, B):
    path = tmp_path / "noinput.toml"
    path.write_text(NO_INPUT, encoding="utf-8")
    k = derive.kernel(str(path))
    params = k.init_params(I, H)
    y, _, cache = k.forward(np.ones((T, B, I)), None, params)
    g = k.backward(np.ones(y.shape), None, cache, params)
    assert g["x"].shape == (T, B, I) and not g["x"].any()
