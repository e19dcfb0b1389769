"""Input taps x_{t-k} (issue 17, QRNN window 2): zero before step k, a GEMM over x shifted by k
before the loop, dx_t gets the terms of step t+k. The QRNN rows themselves are in test_paper_cells."""

import numpy as np
import pytest

import derive
from derive import DeriveError
from derive.symbolic import counts, spec


def _spec(equations: str, extra: str = "") -> str:
    return f'name = "taps"\ninput = "x"\nstates = ["h"]\noutput = "h"\n{extra}equations = \'\'\'\n{equations}\n\'\'\'\n'


#: a gate that reads only a tap and a state (its columns written by the tap GEMM), x_{t-2}, a block
#: with a tap and x_t: every kernel is verified by the self-check (finite differences for x too)
MIXED = _spec(r"""a_t = \sigma(W_a x_{t-1} + U_a h_{t-1} + b_a)
u_t = \tanh(W_u x_t + U_u h_{t-1})
v_t = \tanh(W_v x_{t-2} + W_w x_t + c)
h_t = a_t \odot h_{t-1} + (1 - a_t) \odot u_t \odot v_t""")


def _kernel(tmp_path, text, name="taps"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path, derive.kernel(str(path))


def test_taps_at_t_minus_1_and_2_generate_a_verified_kernel(tmp_path):
    _, k = _kernel(tmp_path, MIXED)
    assert {g: c["kind"] for g, c in k.GEMMS.items() if c["kind"] == "tap"} == {"x_prev": "tap", "x_prev2": "tap"}
    assert list(k.STATES) == ["h"]  # a tap is no state the caller passes


def test_a_tap_only_changes_later_steps(tmp_path):
    """y_0 does not read x_{-1} (zero); x at the last step reaches no tap."""
    _, k = _kernel(tmp_path, MIXED)
    rng = np.random.default_rng(1)
    c = spec.parse_spec(MIXED, source="taps.toml")
    params = {key: rng.uniform(-1, 1, tuple({"I": 3, "H": 4}[str(d)] for d in p.shape)) for key, p in c.params.items()}
    x = rng.standard_normal((5, 2, 3))
    s0 = {"h": rng.standard_normal((2, 4))}
    y, _, cache = k.forward(x, s0, params)
    x2 = x.copy()
    x2[2] += 1.0
    y2, _, _ = k.forward(x2, s0, params)
    assert np.array_equal(y[:2], y2[:2]) and not np.allclose(y[2:], y2[2:])
    g = k.backward(np.ones_like(y), None, cache, params, truncate=5)
    full = k.backward(np.ones_like(y), None, cache, params)
    for key in full:
        assert np.allclose(g[key], full[key], rtol=1e-12, atol=1e-13), key


def test_a_tap_read_elementwise_is_a_located_kernel_limit(tmp_path):
    path = tmp_path / "elem.toml"
    path.write_text(_spec(r"h_t = \tanh(W x_{t-1} + U h_{t-1}) \odot x_{t-1}", 'sizes = { x = "H" }\n'))
    with pytest.raises(DeriveError) as e:
        derive.kernel(str(path))
    text = str(e.value)
    assert text.startswith(f"{path}:7:1: error:") and "x_{t-1} is read other than in a matrix product" in text


def test_counts_count_a_matrix_per_tap():
    c = spec.parse_spec(MIXED, source="taps.toml")
    n = counts.count(c, input_size=3, hidden=4, convention="single")
    # W_a, W_v, W_u, W_w: 4 H x I; U_a, U_u: 2 H x H; b_a, c: 2 H
    assert n.total == 4 * 4 * 3 + 2 * 4 * 4 + 2 * 4
