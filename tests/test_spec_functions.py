"""The functions and constants of the spec language in generated kernels (issue 17).

Each row is a small spec; its kernel (``derive.kernel``, which runs its own self-check) is
checked again here, independently: every gradient (x, initial states, every parameter) entry
by entry against float64 central finite differences of the kernel's own forward pass. The
ties of ``\\max`` / ``\\min`` and the kink of ``|x|`` are compared with PyTorch autograd, whose
subgradients they follow (``torch.maximum``: the gradient of a tie is split 1/2, 1/2).
"""

from __future__ import annotations

import numpy as np
import pytest

import derive

torch = pytest.importorskip("torch")


def spec(equations: str, extra: str = "", states: str = '["h"]', name: str = "f") -> str:
    return (f'name = "{name}"\ninput = "x"\nstates = {states}\noutput = "h"\n{extra}'
            f"equations = '''\n{equations}\n'''\n")


#: name -> spec text; every row has a matrix product (a kernel needs one)
ROWS = {
    "exp": spec(r"h_t = \tanh(\exp(A x_t + U h_{t-1} + b) - 1)"),
    "exp_gate": spec(r"""g_t = \exp(-|A x_t + U h_{t-1}|)
h_t = g_t \odot h_{t-1} + (1 - g_t) \odot \tanh(V x_t)""", 'gates = ["g"]\n'),
    "log": spec(r"h_t = \log(\sigma(A x_t + U h_{t-1})) + \ln(1 + h_{t-1}^2)"),
    "sqrt": spec(r"h_t = \sqrt{1 + (A x_t + U h_{t-1})^2} - \sqrt(\sigma(V h_{t-1}))"),
    "abs": spec(r"h_t = |A x_t + U h_{t-1} + b| \odot \tanh(h_{t-1}) - \abs(V x_t) + \left| h_{t-1} \right|"),
    "max": spec(r"h_t = \max(A x_t, U h_{t-1}) + \max(h_{t-1}, 0)"),
    "min": spec(r"h_t = \min(A x_t + b, \tanh(U h_{t-1})) - \min(0.5, h_{t-1})"),
    "nested": spec(r"h_t = \tanh(\max(\exp(A x_t) - \sqrt{2}, |U h_{t-1}|) \odot \log(1 + \exp(V x_t)))"),
    "constants": spec(r"h_t = \sigma(A x_t + U h_{t-1} - \beta) \odot \sqrt{3} + \frac{1}{2} \pi k h_{t-1}",
                      "constants = { beta = 0.25, k = -2 }\n"),
    "input_is_hidden": spec(r"h_t = \tanh(U h_{t-1} + \tanh(x_t) + A x_t) \odot x_t + h_{t-1}",
                            'sizes = { x = "H" }\n'),
    # the vector-wide functions: the mean over the units inside an activation and added to a vector,
    # a layer normalisation of a product with gain and bias, and of a state
    "mean": spec(r"""r_t = U h_{t-1}
h_t = \tanh(A x_t + r_t - \operatorname{mean}(r_t)) + \operatorname{mean}(h_{t-1} \odot b)"""),
    "layer_norm": spec(r"""u_t = A x_t + U h_{t-1}
h_t = \tanh(a \odot \operatorname{LN}(u_t) + b) + 0.5 \operatorname{LN}(h_{t-1})"""),
    "two_states": spec(r"""m_t = \max(A x_t + \log(\sigma(U h_{t-1})) + m_{t-1}, V x_t)
h_t = \exp(m_{t-1} - m_t) \odot h_{t-1} + \tanh(C x_t)""", states='["h", "m"]'),
}
T, B, I, H = 3, 2, 2, 3
EPS, TOL = 1e-6, 1e-7


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("spec_functions")
    out = {}
    for name, text in ROWS.items():
        path = root / f"{name}.toml"
        path.write_text(text.replace('name = "f"', f'name = "{name}"'))
        out[name] = str(path)
    return out


def _problem(k, seed=0):
    rng = np.random.default_rng(seed)
    inputs = H if k.NAME == "input_is_hidden" else I
    params = {n: a * 0.8 for n, a in k.init_params(inputs, H, seed=seed).items()}
    x = rng.standard_normal((T, B, inputs))
    s0 = {s: rng.standard_normal((B, H)) for s in k.STATES}
    w = rng.standard_normal((T, B, H))
    v = {s: rng.standard_normal((B, H)) for s in k.STATES}
    return x, s0, params, w, v


def _loss(k, x, s0, params, w, v) -> float:
    y, sT, _ = k.forward(x, s0, params)
    return float((w * y).sum() + sum((v[s] * sT[s]).sum() for s in v))


@pytest.mark.parametrize("name", sorted(ROWS))
def test_every_gradient_matches_central_differences(specs, name):
    k = derive.kernel(specs[name])
    x, s0, params, w, v = _problem(k)
    _, _, cache = k.forward(x, s0, params)
    grads = k.backward(w, v, cache, params)
    leaves = {"x": x, **s0, **params}
    assert set(grads) == set(leaves)
    for key, base in leaves.items():
        fd = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            keep = base[idx]
            base[idx] = keep + EPS
            up = _loss(k, x, s0, params, w, v)
            base[idx] = keep - EPS
            down = _loss(k, x, s0, params, w, v)
            base[idx] = keep
            fd[idx] = (up - down) / (2 * EPS)
        err = np.max(np.abs(grads[key] - fd)) / max(1.0, np.max(np.abs(fd)))
        assert err < TOL, f"{name}: d{key} differs from central differences by {err:.3g}"


def _tie_kernel(specs_dir, equation: str, name: str):
    path = specs_dir / f"{name}.toml"
    path.write_text(spec(equation, name=name))
    return derive.kernel(str(path))


@pytest.mark.parametrize("op,torch_op", [("max", torch.maximum), ("min", torch.minimum)])
def test_ties_split_the_gradient_as_torch(tmp_path, op, torch_op):
    """W = identity and x = h_0: every element of max(A x_t, h_{t-1}) is a tie."""
    k = _tie_kernel(tmp_path, rf"h_t = \{op}(A x_t, h_{{t-1}})", f"tie_{op}")
    rng = np.random.default_rng(3)
    h0 = rng.standard_normal((B, H))
    x = h0[None].copy()
    params = {"A": np.eye(H)}
    dy = rng.standard_normal((1, B, H))
    _, _, cache = k.forward(x, {"h": h0}, params)
    g = k.backward(dy, None, cache, params)
    tx, th, tW = (torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (x, h0, params["A"]))
    y = torch_op(tx[0] @ tW.T, th)
    ref = torch.autograd.grad((torch.tensor(dy[0]) * y).sum(), [tx, th, tW])
    for got, want in zip((g["x"], g["h"], g["A"]), ref):
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(g["h"], dy[0] / 2, rtol=0, atol=1e-12)  # the tie: half to each side


def test_abs_at_zero_and_max_with_zero_as_torch(tmp_path):
    """|u| at u = 0 has gradient 0 (sign 0), max(u, 0) at u = 0 has 1/2: as torch.abs and torch.maximum."""
    k = _tie_kernel(tmp_path, r"h_t = |A x_t| + \max(C x_t, 0) + U h_{t-1}", "kinks")
    x = np.zeros((1, B, I))
    x[0, 0] = [1.0, -2.0]
    rng = np.random.default_rng(4)
    params = {"A": rng.standard_normal((H, I)), "U": rng.standard_normal((H, H))}
    params["C"] = params["A"].copy()  # one product written twice would need a matrix per use
    h0 = rng.standard_normal((B, H))
    dy = rng.standard_normal((1, B, H))
    _, _, cache = k.forward(x, {"h": h0}, params)
    g = k.backward(dy, None, cache, params)
    tx, tA, tC = (torch.tensor(a, requires_grad=True) for a in (x, params["A"], params["C"]))
    y = (tx[0] @ tA.T).abs() + torch.maximum(tx[0] @ tC.T, torch.zeros(())) + torch.tensor(h0 @ params["U"].T)
    ref = torch.autograd.grad((torch.tensor(dy[0]) * y).sum(), [tx, tA, tC])
    for got, want in zip((g["x"], g["A"], g["C"]), ref):
        np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(g["x"][0, 1], 0.5 * (dy[0, 1] @ params["A"]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("equation,words", [
    (r"h_t = \log(A x_t + U h_{t-1})", r"\log of a value that is not positive"),
    (r"h_t = \sqrt{A x_t} + U h_{t-1}", r"\sqrt of a value that is not non-negative"),
])
def test_a_domain_left_in_the_self_check_is_a_located_error(tmp_path, equation, words):
    path = tmp_path / "domain.toml"
    path.write_text(spec(equation, name="domain"))
    with pytest.raises(derive.DeriveError) as info:
        derive.kernel(str(path))
    err = info.value
    assert words in err.message and "NaN" in err.message, str(err)
    assert str(err).startswith(f"{path}:6:1: error: ") and "\n" not in str(err)


def test_layer_norm_of_a_product_asks_for_the_product_named(tmp_path):
    """LN(A x_t + U h_{t-1}) reads its argument three times (u - mean(u), and in the variance): the
    kernels take one gradient per matrix product, so the generator asks for u_t named (located)."""
    path = tmp_path / "ln_product.toml"
    path.write_text(spec(r"h_t = \tanh(\operatorname{LN}(A x_t + U h_{t-1}))", name="ln_product"))
    with pytest.raises(derive.DeriveError, match=r"ln_product.toml:6:1: .*name the product as a vector of its own"):
        derive.kernel(str(path))


def test_a_kernel_with_the_input_of_hidden_size_refuses_another_size(specs):
    k = derive.kernel(specs["input_is_hidden"])
    assert k.PARAMS["A"] == "H x I"
    params = k.init_params(2, H)
    with pytest.raises(derive.DeriveError, match="hidden size H = 3"):
        k.forward(np.zeros((T, B, 2)), None, params)


def test_a_state_read_under_log_starts_positive_in_the_self_check(tmp_path):
    """n_{t-1} under \\log: the self-check draws n_0 positive, so a cell positive by
    construction (n_t = n_{t-1} \\odot g_t + 1) is verified, not refused."""
    path = tmp_path / "positive.toml"
    path.write_text(spec(r"""g_t = \sigma(A x_t)
n_t = n_{t-1} \odot g_t + 1
h_t = \tanh(U h_{t-1} + \log(n_{t-1}) + \sqrt{n_{t-1} + 1})""", states='["h", "n"]', name="positive"))
    k = derive.kernel(str(path))
    assert set(k.STATES) == {"h", "n"}


def test_an_exponential_of_a_log_is_kept_whole(tmp_path):
    """SymPy writes exp(log f + a) as f exp(a), whose second factor overflows where f underflows
    (the sLSTM's stabilised forget gate); derive keeps an exponential that is an equation's whole
    right side whole, so its argument is the pre-activation and the kernel's value at f = 0 is
    exp(-inf) = 0, not 0 * inf. (Inside a product SymPy's Mul may still split it.)"""
    path = tmp_path / "whole.toml"
    path.write_text(spec(r"""f_t = \sigma(A x_t)
g_t = \exp(\log(f_t) + U h_{t-1} - 1)
h_t = g_t \odot \tanh(V x_t)""", name="whole"))
    cell = derive.load(str(path))
    products = [a for a in cell.assignments if a.target.name.startswith(cell.preactivation) and "log" in str(a.rhs)]
    assert len(products) == 1, [str(a.rhs) for a in cell.assignments]  # log f_t + U h - 1, named
    k = derive.kernel(str(path))
    params = {n: np.ones_like(a) for n, a in k.init_params(2, 3).items()}
    params["A"][:] = -1e3  # f_t underflows to 0
    with np.errstate(divide="ignore"):  # log 0 = -inf: the value, then exp(-inf) = 0
        y, _, _ = k.forward(np.ones((2, 1, 2)), None, params)
    assert np.array_equal(y, np.zeros_like(y))


def test_counts_of_a_cell_whose_input_has_the_hidden_size(specs):
    """MUT1-like: the count keeps its I (2IH + ... with I = H); another input size is refused."""
    cell = derive.load(specs["input_is_hidden"])
    assert derive.count(cell, input_size=5, hidden=5).total == 5 * 5 + 5 * 5  # W: H x I, U: H x H
    with pytest.raises(derive.DeriveError, match="differs from --hidden"):
        derive.count(cell, input_size=4, hidden=5)
    with pytest.raises(derive.DeriveError, match="would read 2H"):
        derive.count(cell, input_size=5, hidden=5, layers=2, bidirectional=True)
