"""The generated cell kernels against three independent witnesses.

* finite differences in float64 (inner-product test on random directions, every
  parameter, the inputs and the initial states);
* the symbolic derivation evaluated numerically at 30 digits (``verify.run_derivation``:
  the formulas of the cell's page, not the generated code);
* PyTorch autograd, float64: nn.RNN (tanh, relu), nn.LSTM, nn.GRU, with multi-layer and
  bidirectional stacks built from the generated cells; Keras layers through the converters.
"""

import linecache
import random
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import derive
from derive.symbolic import bptt, ir, spec
from derive.codegen import kernel as codegen
from derive.witness import derivation as verify

CELLS = spec.builtin_names()
#: the cells every witness runs on the compiled backend too (each compiles in a few seconds the first
#: time; numba keeps it on disk): PyTorch's three, peepholes, Cho's reset, a projection, and literature cells
COMPILED_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "lstm_proj", "gru", "gru_cho", "mgu", "indrnn",
                  "sru", "slstm", "minlstm"]
#: (cell, backend): every built-in cell on NumPy, ``COMPILED_CELLS`` on the compiled backend
CASES = [(n, "numpy") for n in CELLS] + [(n, "compiled") for n in COMPILED_CELLS]


def kernel_of(name, backend="numpy"):
    return derive.kernel(name, backend=backend)


def loss_and_grads(k, x, s0, params, w, v, **kw):
    y, sT, cache = k.forward(x, s0, params)
    L = float((w * y).sum() + sum((v[s] * sT[s]).sum() for s in k.STATES))
    return L, k.backward(w, v, cache, params, **kw)


def directional(k, x, s0, params, w, v, key, u, eps=1e-6):
    """(L(theta + eps u) - L(theta - eps u)) / 2 eps for the argument ``key`` (x, a state, a parameter)."""
    def L(sign):
        xx, ss, pp = x, dict(s0), dict(params)
        if key == "x":
            xx = x + sign * eps * u
        elif key in ss:
            ss[key] = s0[key] + sign * eps * u
        else:
            pp[key] = params[key] + sign * eps * u
        y, sT, _ = k.forward(xx, ss, pp)
        return (w * y).sum() + sum((v[s] * sT[s]).sum() for s in k.STATES)
    return (L(1) - L(-1)) / (2 * eps)


def fit(k, H):
    """H, or the next multiple of a clock's modules (the Clockwork RNN: H = g k)."""
    g = getattr(k, "CLOCK", {}).get("modules", 1)
    return g * -(-H // g)


def init(k, I, H, **kw):
    """init_params with P = H - 2 for a projecting cell (lstm_proj)."""
    H = fit(k, H)
    return k.init_params(I, H, proj_size=H - 2 if "P" in k.STATE_DIMS.values() else None, **kw)


def setup(k, T=4, B=3, I=3, H=5, seed=0, scale=2.0):
    rng = np.random.default_rng(seed)
    H = fit(k, H)
    I = H if k.INPUT_DIM == "H" else I  # the spec declares sizes = { x = "H" }
    params = {n: scale * a for n, a in init(k, I, H, seed=seed + 1).items()}
    size = {"H": H, "P": H - 2}
    x = rng.standard_normal((T, B, I))
    s0 = {s: rng.standard_normal((B, size[k.STATE_DIMS[s]])) for s in k.STATES}
    w = rng.standard_normal((T, B, size[k.OUTPUT_DIM]))
    v = {s: rng.standard_normal((B, size[k.STATE_DIMS[s]])) for s in k.STATES}
    return rng, params, x, s0, w, v


@pytest.mark.parametrize("name,backend", CASES)
def test_finite_differences(name, backend):
    """<dL/dtheta, u> against (L(theta + eps u) - L(theta - eps u)) / 2 eps, per argument."""
    k = kernel_of(name, backend)
    rng, params, x, s0, w, v = setup(k)
    _, g = loss_and_grads(k, x, s0, params, w, v)
    for key in ["x", *k.STATES, *params]:
        u = rng.standard_normal(g[key].shape)
        fd = directional(k, x, s0, params, w, v, key, u)
        analytic = float((g[key] * u).sum())
        assert abs(fd - analytic) <= 1e-6 * max(1.0, abs(analytic)), (key, fd, analytic)


@pytest.mark.parametrize("name,backend", CASES)
def test_matches_the_derivation_evaluated_at_30_digits(name, backend):
    """B = 1: the kernel's float64 gradients equal the page's formulas evaluated in SymPy."""
    k = kernel_of(name, backend)
    d = bptt.derive(spec.load(name))
    cell = d.cell
    T, I, H = 3, 2, fit(k, 3)
    rng, params, x, s0, w, v = setup(k, T=T, B=1, I=I, H=H, seed=3)
    y, sT, cache = k.forward(x, s0, params)
    g = k.backward(w, v, cache, params)

    def obj(a):
        return np.frompyfunc(lambda e: sp.Float(float(e), 30), 1, 1)(np.asarray(a, dtype=float))
    sym_params = {p.symbol: obj(params[p.key]) for p in cell.params.values()}
    xs = [obj(x[t, 0]) for t in range(T)]
    states = {s: obj(s0[ir.ref(s).key][0]) for s in cell.states}
    ws = [obj(w[t, 0]) for t in range(T)]
    vs = {s: obj(v[ir.ref(s).key][0]) for s in cell.states}
    grads, dxs, ds0, steps = verify.run_derivation(d, sym_params, xs, states, ws, vs)

    def close(ours, exact, what):
        exact = np.asarray(exact, dtype=float)
        assert np.allclose(ours, exact, rtol=1e-12, atol=1e-12), (what, ours, exact)
    close(y[:, 0], [np.asarray(steps[t + 1][cell.output], dtype=float) for t in range(T)], "y")
    for p in cell.params.values():
        close(g[p.key], grads[p.symbol], p.key)
    close(g["x"][:, 0], np.array([np.asarray(dx, dtype=float) for dx in dxs]), "x")
    for s in cell.states:
        close(g[ir.ref(s).key][0], ds0[s], ir.ref(s).key)


TORCH_CASES = [
    ("rnn_tanh", lambda t: t.nn.RNN(3, 5, num_layers=2, bidirectional=True)),
    ("rnn_relu", lambda t: t.nn.RNN(3, 5, num_layers=2, nonlinearity="relu")),
    ("lstm", lambda t: t.nn.LSTM(3, 5)),
    ("lstm", lambda t: t.nn.LSTM(3, 5, num_layers=3, bidirectional=True)),
    ("lstm_proj", lambda t: t.nn.LSTM(3, 5, proj_size=2)),
    ("lstm_proj", lambda t: t.nn.LSTM(3, 5, proj_size=3, num_layers=2, bidirectional=True, bias=False)),
    ("gru", lambda t: t.nn.GRU(3, 5)),
    ("gru", lambda t: t.nn.GRU(3, 5, num_layers=2, bidirectional=True, bias=False)),
]


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / max(np.linalg.norm(b), 1e-300))


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("name,make", TORCH_CASES)
def test_stacks_match_pytorch_autograd(name, make, backend):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    m = make(torch).double()
    k = kernel_of(name, backend)
    T, B = 6, 4
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    D = 2 if m.bidirectional else 1
    lstm = "c" in k.STATES
    h_size = m.proj_size or 5 if lstm else 5
    h0 = torch.randn(m.num_layers * D, B, h_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(m.num_layers * D, B, 5, dtype=torch.float64, requires_grad=True)
    y, final = m(x, (h0, c0)) if lstm else m(x, h0)
    wy = torch.randn_like(y)
    wh = torch.randn_like(h0)
    wc = torch.randn_like(c0)
    hT = final[0] if lstm else final
    loss = (y * wy).sum() + (hT * wh).sum() + ((final[1] * wc).sum() if lstm else 0)
    loss.backward()

    stack = derive.Stack.from_torch(k, m)
    keys = [(l, r) for l in range(m.num_layers) for r in ([False, True] if D == 2 else [False])]
    idx = {key: key[0] * D + key[1] for key in keys}
    states0 = {key: {"h": h0[idx[key]].detach().numpy(), **({"c": c0[idx[key]].detach().numpy()} if lstm
                                                              else {})} for key in keys}
    ours_y, ours_final, caches = stack.forward(x.detach().numpy(), states0)
    assert _rel(ours_y, y.detach().numpy()) < 1e-13
    for key in keys:
        assert _rel(ours_final[key]["h"], hT[idx[key]].detach().numpy()) < 1e-13
        if lstm:
            assert _rel(ours_final[key]["c"], final[1][idx[key]].detach().numpy()) < 1e-13
    dstates = {key: {"h": wh[idx[key]].numpy(), **({"c": wc[idx[key]].numpy()} if lstm else {})} for key in keys}
    g = stack.backward(wy.numpy(), dstates, caches)
    assert _rel(g["x"], x.grad.numpy()) < 1e-10
    for key in keys:
        assert _rel(g[key]["h"], h0.grad[idx[key]].numpy()) < 1e-10
        if lstm:
            assert _rel(g[key]["c"], c0.grad[idx[key]].numpy()) < 1e-10
    mine = stack.to_torch({key: g[key] for key in keys})
    for pname, prm in m.named_parameters():
        assert _rel(mine[pname], prm.grad.numpy()) < 1e-10, pname


def test_the_benchmarks_hand_fused_lstm_matches_pytorch():
    """``derive bench lstm`` times derive.bench.handfused beside the kernel: it must do the same work."""
    torch = pytest.importorskip("torch")
    from derive.bench import handfused
    torch.manual_seed(0)
    m = torch.nn.LSTM(3, 5).double()
    T, B = 6, 4
    x = torch.randn(T, B, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(1, B, 5, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(1, B, 5, dtype=torch.float64, requires_grad=True)
    y, _ = m(x, (h0, c0))
    wy = torch.randn_like(y)
    (y * wy).sum().backward()
    w = {"W_ih": m.weight_ih_l0.detach().numpy(), "W_hh": m.weight_hh_l0.detach().numpy(),
         "b": (m.bias_ih_l0 + m.bias_hh_l0).detach().numpy()}
    assert handfused.fuse(derive.kernel("lstm").from_torch(m), np.float64).keys() == w.keys()
    for key, fused in handfused.fuse(derive.kernel("lstm").from_torch(m), np.float64).items():
        assert _rel(fused, w[key]) < 1e-15, key
    ours, cache = handfused.forward(x.detach().numpy(), h0[0].detach().numpy(), c0[0].detach().numpy(), w)
    assert _rel(ours, y.detach().numpy()) < 1e-13
    dx, dh0, dc0, dw = handfused.backward(wy.numpy(), cache, w)
    assert _rel(dx, x.grad.numpy()) < 1e-10
    assert _rel(dh0, h0.grad[0].numpy()) < 1e-10 and _rel(dc0, c0.grad[0].numpy()) < 1e-10
    assert _rel(dw["W_ih"], m.weight_ih_l0.grad.numpy()) < 1e-10
    assert _rel(dw["W_hh"], m.weight_hh_l0.grad.numpy()) < 1e-10
    assert _rel(dw["b"], m.bias_ih_l0.grad.numpy()) < 1e-10


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh"])
def test_torch_round_trip_of_parameters(name, backend):
    torch = pytest.importorskip("torch")
    k = kernel_of(name, backend)
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}[name]
    m = cls(3, 4).double()
    p = k.from_torch(m)
    assert sorted(p) == sorted(k.PARAMS)
    sd = k.to_torch(p, gradients=False)
    m2 = cls(3, 4).double()
    m2.load_state_dict({n: torch.from_numpy(a) for n, a in sd.items()})
    x = torch.randn(5, 2, 3, dtype=torch.float64)
    assert torch.allclose(m(x)[0], m2(x)[0], rtol=1e-14, atol=1e-14)


def test_from_torch_refuses_the_wrong_module():
    torch = pytest.importorskip("torch")
    with pytest.raises(derive.DeriveError, match="expected a torch.nn.LSTM"):
        derive.kernel("lstm").from_torch(torch.nn.GRU(3, 4))
    with pytest.raises(derive.DeriveError, match="nonlinearity"):
        derive.kernel("rnn_tanh").from_torch(torch.nn.RNN(3, 4, nonlinearity="relu"))
    with pytest.raises(derive.DeriveError, match="layer"):
        derive.kernel("lstm").from_torch(torch.nn.LSTM(3, 4), layer=1)
    with pytest.raises(derive.DeriveError, match="use the lstm_proj cell"):
        derive.kernel("lstm").from_torch(torch.nn.LSTM(3, 4, proj_size=2))
    with pytest.raises(derive.DeriveError, match="use lstm"):
        derive.kernel("lstm_proj").from_torch(torch.nn.LSTM(3, 4))
    with pytest.raises(derive.DeriveError, match="proj_size=P"):
        derive.kernel("lstm_proj").init_params(3, 4)
    with pytest.raises(derive.DeriveError, match="no projected state"):
        derive.kernel("lstm").init_params(3, 4, proj_size=2)


KERAS_CASES = [
    ("lstm", lambda keras: keras.layers.LSTM(5, return_sequences=True)),
    ("gru", lambda keras: keras.layers.GRU(5, return_sequences=True, reset_after=True)),
    ("gru_cho", lambda keras: keras.layers.GRU(5, return_sequences=True, reset_after=False)),
    ("rnn_tanh", lambda keras: keras.layers.SimpleRNN(5, return_sequences=True)),
]


@pytest.mark.parametrize("backend", ["numpy", "compiled"])
@pytest.mark.parametrize("name,make", KERAS_CASES)
def test_keras_converters(name, make, backend):
    """Keras layers (gate order z|r|h, reset_after, one or two biases) through to_keras/from_keras."""
    keras = pytest.importorskip("keras")
    k = kernel_of(name, backend)
    layer = make(keras)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)  # Keras: batch-major
    layer.build(x.shape)
    params = {n: a.astype(np.float32) for n, a in k.init_params(3, 5, seed=4).items()}
    layer.set_weights(k.to_keras(params))
    theirs = keras.ops.convert_to_numpy(layer(x))
    ours, _, _ = k.forward(x.transpose(1, 0, 2), None, params)
    assert np.allclose(ours.transpose(1, 0, 2), theirs, atol=2e-6)
    back = k.from_keras(layer.get_weights())
    for n in params:
        assert np.array_equal(back[n], params[n]), n


@pytest.mark.parametrize("name,backend", CASES)
def test_truncated_bptt_is_full_bptt_of_the_last_k_steps(name, backend):
    """truncate=k equals full BPTT of a run that starts from the states at step T-k. A cell
    that reads x_{t-m} (an input tap) reads inputs before the run too: those inputs are zero
    here, as a run starting at step T-k takes them, and only they get a gradient before it."""
    k = kernel_of(name, backend)
    rng, params, x, s0, w, v = setup(k, T=7, seed=5)
    keep = 3
    reach = max(bptt.derive(spec.load(name)).taps, default=0)  # the oldest input a step reads
    x[len(x) - keep - reach:len(x) - keep] = 0.0
    y, sT, cache = k.forward(x, s0, params)
    g = k.backward(w, v, cache, params, truncate=keep)
    _, mid, _ = k.forward(x[:-keep], s0, params)
    later = {"t0": len(x) - keep} if hasattr(k, "CLOCK") else {}  # a clock counts on from the steps run
    y2, sT2, cache2 = k.forward(x[-keep:], mid, params, **later)
    g2 = k.backward(w[-keep:], v, cache2, params)
    assert np.array_equal(g["x"][:-keep - reach], np.zeros_like(g["x"][:-keep - reach]))
    assert np.allclose(g["x"][-keep:], g2["x"], rtol=1e-12, atol=1e-13)
    for key in [*k.STATES, *params]:
        assert np.allclose(g[key], g2[key], rtol=1e-12, atol=1e-13), key
    full = k.backward(w, v, cache, params)
    assert not np.allclose(full[next(iter(params))], g[next(iter(params))])


#: cells whose equations, computed as written, leave float32 at inputs of size 1e4: the limit
#: is asserted (the row must go when the kernel learns a stable form)
EXTREME_LIMITS = {
    "slstm": "log(f_t) with f_t = sigma(z) is log 0 once the sigmoid underflows (z < -104), and "
             "the gradient divides by f_t (a stable form would be logsigmoid(z))",
    "minlstm": "f_t / (f_t + i_t) is 0 / 0 when both sigmoids underflow",
}
#: a cell's preconditions on its initial states: the sLSTM divides by its normaliser n, which
#: must start positive (n_0 = 0 and a closed input gate give c_1 / n_1 = 0 / 0). (The LN-LSTM needs
#: none: its spec adds epsilon to each variance, so W_h h_0 = 0 at h_0 = 0 normalises to 0, not 0 / 0)
POSITIVE_STATES = {"slstm": ("n",)}


@pytest.mark.parametrize("name,backend", CASES)
def test_float32_stays_float32_and_extreme_inputs_stay_finite(name, backend):
    k = kernel_of(name, backend)
    rng = np.random.default_rng(6)
    H = fit(k, 6)
    I = H if k.INPUT_DIM == "H" else 8
    params = {n: a.astype(np.float32) for n, a in init(k, I, H, seed=7).items()}
    x = (rng.standard_normal((20, 4, I)) * 1e4).astype(np.float32)
    width = {"H": H, "P": H - 2}  # init gives P = H - 2
    s0 = {s: np.full((4, width[k.STATE_DIMS[s]]), 1.0 if s in POSITIVE_STATES.get(name, ()) else 0.0, np.float32)
          for s in k.STATES}
    errors = dict(all="raise")
    if name in EXTREME_LIMITS and backend == "compiled":
        pass  # compiled code raises no floating-point errors: the limit is the NumPy kernel's row
    elif name in EXTREME_LIMITS:
        with pytest.raises(FloatingPointError), np.errstate(**errors):
            y, sT, cache = k.forward(x, s0, params)
            k.backward(np.ones_like(y), None, cache, params)
    else:
        with np.errstate(**errors):
            y, sT, cache = k.forward(x, s0, params)
            g = k.backward(np.ones_like(y), None, cache, params, truncate=5 if name == "rnn_relu" else None)
        assert y.dtype == np.float32 and all(a.dtype == np.float32 for a in g.values())
        assert np.isfinite(y).all() and all(np.isfinite(a).all() for a in g.values())
    # float32 agrees with float64 on ordinary inputs
    x = rng.standard_normal((10, 4, I))
    p64 = {n: a.astype(np.float64) for n, a in params.items()}
    start = {s: np.ones((4, width[k.STATE_DIMS[s]])) for s in POSITIVE_STATES.get(name, ())} or None
    y32, _, _ = k.forward(x.astype(np.float32), start, params)
    y64, _, _ = k.forward(x, start, p64)
    assert np.allclose(y32, y64, atol=1e-5)


def test_clipping_utilities():
    k = derive.kernel("lstm")
    grads = {"a": np.array([3.0, -4.0]), "b": np.array([12.0])}
    clipped, norm = k.clip_by_global_norm(grads, 6.5)
    assert norm == pytest.approx(13.0)
    assert np.allclose(clipped["a"], [1.5, -2.0], rtol=1e-6) and np.allclose(clipped["b"], [6.0], rtol=1e-6)
    same, _ = k.clip_by_global_norm(grads, 100.0)
    assert np.array_equal(same["a"], grads["a"])
    assert np.array_equal(k.clip_by_value(grads, 3.5)["a"], [3.0, -3.5])


def test_clip_by_global_norm_matches_torch():
    torch = pytest.importorskip("torch")
    k = derive.kernel("gru")
    rng = np.random.default_rng(8)
    grads = {n: rng.standard_normal(a.shape) for n, a in k.init_params(3, 4).items()}
    tensors = [torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.float64)) for a in grads.values()]
    for t, a in zip(tensors, grads.values()):
        t.grad = torch.from_numpy(a.copy())
    total = torch.nn.utils.clip_grad_norm_(tensors, 1.0)
    clipped, norm = k.clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(float(total), rel=1e-12)
    for t, a in zip(tensors, clipped.values()):
        assert np.allclose(t.grad.numpy(), a, rtol=1e-12)


def test_generation_is_deterministic_and_committed():
    for name in CELLS:
        d = bptt.derive(spec.load(name))
        first = codegen.render(d, f"derive/cells/{name}.toml")
        assert first == codegen.render(bptt.derive(spec.load(name)), f"derive/cells/{name}.toml")
        path = Path(derive.__file__).parent / "kernels" / f"{name}.py"
        assert path.read_text(encoding="utf-8") == first, f"{path} is stale: run derive kernels"


MIXED = '''
name = "mixed"
input = "x"
states = ["h", "c"]
output = "h"
gates = ["f"]
equations = \'\'\'
f_t = \\operatorname{hardsigmoid}(W_{xf} x_t + W_{hf} h_{t-1} + b_f)
u_t = \\operatorname{GELU}(W_{xu} x_t + W_{hu} h_{t-1} + b_u)
c_t = f_t \\odot c_{t-1} + (1 - f_t) \\odot u_t
h_t = \\operatorname{ELU}(c_t) + p \\odot c_{t-1}
\'\'\'
'''


def test_a_user_spec_with_other_activations(tmp_path):
    """Activations without an output-form derivative call the generated activation kernels."""
    path = tmp_path / "mixed.toml"
    path.write_text(MIXED, encoding="utf-8")
    k = derive.kernel(str(path))
    source = "".join(linecache.getlines(k.__file__))
    assert "_act.gelu_d(" in source and "_act.elu(" in source
    rng, params, x, s0, w, v = setup(k, T=4, B=2, I=3, H=4, seed=9, scale=3.0)
    _, g = loss_and_grads(k, x, s0, params, w, v)
    for key in ["x", *params]:
        u = rng.standard_normal(g[key].shape)
        fd = directional(k, x, s0, params, w, v, key, u)
        assert abs(fd - (g[key] * u).sum()) <= 1e-6 * max(1.0, abs(fd)), key


def test_random_cell_specs_run(tmp_path):
    """A few random well-formed cells: the generated kernel agrees with finite differences."""
    rnd = random.Random(10)
    for trial in range(3):
        act = rnd.choice([r"\tanh", r"\sigma", r"\operatorname{softsign}"])
        path = tmp_path / f"c{trial}.toml"
        path.write_text(f'''name = "c{trial}"
input = "x"
states = ["h"]
output = "h"
equations = \'\'\'
r_t = \\sigma(W_{{xr}} x_t + W_{{hr}} h_{{t-1}} + b_r)
h_t = {act}(W_{{xh}} x_t + W_{{hh}} (r_t \\odot h_{{t-1}})) \\odot r_t + (1 - r_t) \\odot h_{{t-1}}
\'\'\'
''', encoding="utf-8")
        k = derive.kernel(str(path))
        rng, params, x, s0, w, v = setup(k, T=3, B=2, I=2, H=3, seed=trial)
        _, g = loss_and_grads(k, x, s0, params, w, v)
        key = "W_hh"
        u = rng.standard_normal(g[key].shape)
        fd = directional(k, x, s0, params, w, v, key, u)
        assert abs(fd - (g[key] * u).sum()) < 1e-6 * max(1, abs(fd))


@pytest.mark.parametrize("name,backend", CASES)
def test_workspace_never_overwrites_what_a_caller_keeps(name, backend):
    """Buffers are reused across calls only once nothing from the earlier call refers to them."""
    k = kernel_of(name, backend)
    k.WORKSPACE.clear()
    rng, params, x, s0, w, v = setup(k, T=6, B=4)
    y1, sT1, cache1 = k.forward(x, s0, params)
    g1 = k.backward(w, v, cache1, params)
    kept = {"y": y1.copy(), "x": g1["x"].copy()}
    kept_states = {s: sT1[s].copy() for s in k.STATES}  # a state may be named y (Greff's LSTM)
    x2 = rng.standard_normal(x.shape)
    y2, sT2, cache2 = k.forward(x2, s0, params)  # y1, cache1 and g1 are alive: new memory
    g2 = k.backward(w, v, cache2, params)
    assert not np.shares_memory(y1, y2) and not np.shares_memory(g1["x"], g2["x"])
    np.testing.assert_array_equal(y1, kept["y"])
    np.testing.assert_array_equal(g1["x"], kept["x"])
    for s in k.STATES:
        np.testing.assert_array_equal(sT1[s], kept_states[s])
    # once the first call's results are dropped, its buffers are handed out again
    address = y1.__array_interface__["data"][0]
    del y1, sT1, cache1, g1
    y3, _, cache3 = k.forward(x, s0, params)
    assert y3.__array_interface__["data"][0] == address
    np.testing.assert_array_equal(y3, kept["y"])  # same result from reused memory
    assert k.WORKSPACE.nbytes > 0
    del y3, cache3, y2, sT2, cache2, g2
    k.WORKSPACE.clear()
    assert k.WORKSPACE.nbytes == 0


def test_a_clock_counts_steps_from_t0_and_masks_its_block_triangular_matrix():
    """Clockwork RNN (Koutnik et al. 2014): m_t from the periods, counted from t0; a sequence run in
    two chunks (the second from t0 = the steps run) is the sequence run whole; W_H is used as
    W_H (.) M and its gradient is zero below the blocks; H must be a multiple of the modules."""
    k = derive.kernel("clockwork")
    rng, params, x, s0, w, v = setup(k, T=9, B=2, I=3, H=8)
    periods = k.CLOCK["periods"]
    y, sT, cache = k.forward(x, s0, params)
    unit_period = np.repeat(periods, 8 // len(periods))
    assert np.array_equal(cache["m_all"][:, 0], (np.arange(9)[:, None] % unit_period == 0).astype(float))
    # a module that does not run keeps its value: at step 1 only module 1 (units 0, 1) changes
    assert np.array_equal(y[1][:, 2:], y[0][:, 2:]) and not np.allclose(y[1][:, :2], y[0][:, :2])
    _, mid, _ = k.forward(x[:5], s0, params)
    y2, sT2, _ = k.forward(x[5:], mid, params, t0=5)
    np.testing.assert_allclose(y2, y[5:], rtol=1e-13, atol=1e-14)
    # the entries below the blocks are no parameters: ignored forward, zero gradient
    below = np.arange(8)[:, None] // 2 > np.arange(8)[None, :] // 2
    assert np.all(k.init_params(3, 8)["W_H"][below] == 0)
    noisy = dict(params, W_H=params["W_H"] + 5.0 * below)
    np.testing.assert_array_equal(k.forward(x, s0, noisy)[0], y)
    g = k.backward(w, v, cache, params)
    assert np.all(g["W_H"][below] == 0) and np.any(g["W_H"][~below] != 0)
    with pytest.raises(derive.DeriveError, match="not a multiple of the clock's 4 modules"):
        k.forward(x, None, {"W_I": np.zeros((6, 3)), "W_H": np.zeros((6, 6)), "b": np.zeros(6)})
    with pytest.raises(derive.DeriveError, match="t0"):
        k.forward(x, s0, params, t0=-1)
