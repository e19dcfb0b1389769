"""Gradient flow for every built-in cell (issue 21 item 3): ``derive/docs/flow.py`` and the pages.

* the batched measurement (one forward and one backward for every t) against central differences
  of the generated forward alone, ``y_t`` as a function of ``s_0``, for every cell;
* the remedies as measured: clipping caps the norm and keeps the share reaching s_0 up to the
  clipping factor, truncating at the whole sequence is full BPTT;
* every cell page states its numbers, and the concept pages list every cell the remedy applies to.
"""

from __future__ import annotations

import numpy as np
import pytest

from derive.docs import flow
from derive.symbolic import spec
from tests.test_prose import read, section

CELLS = spec.builtin_names()
T = 10  # the step compared (one of flow.POINTS)


def finite_difference_norm(name: str, t: int, eps: float = 1e-6) -> float:
    """``||d y_t / d s_0||_2`` by central differences of ``forward`` (no backward involved)."""
    k, params, size, x = flow._setup(name)
    dims = {s: size[k.STATE_DIMS[s]] for s in k.STATES}
    columns = []
    for s, d in dims.items():
        for j in range(d):
            def y_t(sign):
                s0 = {u: np.zeros((1, e)) for u, e in dims.items()}
                s0[s][0, j] = sign * eps
                return k.forward(x[:t], s0, params)[0][t - 1, 0]
            columns.append((y_t(1) - y_t(-1)) / (2 * eps))
    return float(np.linalg.norm(np.stack(columns, axis=1), 2))


@pytest.mark.parametrize("name", CELLS)
def test_the_batched_norm_is_the_finite_difference_norm(name):
    measured = flow.at(flow.norms(name), T)
    if measured is None:  # not defined at s_0 = 0: the forward gives NaN there too
        k, params, size, x = flow._setup(name)
        with np.errstate(all="ignore"):
            y = k.forward(x[:T], {s: np.zeros((1, size[k.STATE_DIMS[s]])) for s in k.STATES}, params)[0]
        assert not np.all(np.isfinite(y))
        return
    assert measured == pytest.approx(finite_difference_norm(name, T), rel=5e-3)


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru", "greff_nfg", "janet"])
def test_clipping_caps_the_norm_and_keeps_the_share(name):
    c = flow.clipping(name)
    assert c["after"] <= flow.MAX_NORM * (1 + 1e-3)
    factor = max(1.0, c["before"] / flow.MAX_NORM)
    # clipped gradients: the parameters' norm scaled down, s_0's kept (only the parameters are clipped)
    assert c["share_after"] == pytest.approx(c["share"] * factor, rel=2e-2)


@pytest.mark.parametrize("name", ["rnn_tanh", "lstm", "gru"])
def test_truncating_at_the_whole_sequence_is_full_bptt(name, monkeypatch):
    monkeypatch.setattr(flow, "WINDOWS", (flow.STEPS,))
    assert flow.truncation(name) == {flow.STEPS: 0.0}


def test_forget_bias_one_is_measured_on_every_cell_with_a_forget_bias():
    with_bias = [n for n in CELLS if flow.has_forget_bias(n)]
    assert "lstm" in with_bias and "gru" not in with_bias and len(with_bias) >= 20
    table = section(read("concepts/gates.md"), "Forget-gate bias 1")
    for n in with_bias:
        assert f"(../cells/{n}.md)" in table, n


@pytest.mark.parametrize("name", CELLS)
def test_every_cell_page_states_its_gradient_flow(name):
    text = section(read(f"cells/{name}.md"), "Gradient flow")
    s = flow.cell_summary(name)
    if s["tT"] is None:
        assert "not defined at $s_0 = 0$" in text
        return
    assert f"{s['t10']:.2e} at $t = 10$" in text and f"{s['tT']:.2e} at $t = {flow.STEPS}$" in text
    if s["forget_bias"] is not None:
        assert f"$b_f = 1$,\n{s['forget_bias']:.2e}" in text


def test_the_concept_pages_measure_every_cell():
    every = section(read("concepts/vanishing_exploding.md"), "Every cell")
    clipping = section(read("concepts/clipping.md"), "Measured on every cell")
    truncation = section(read("concepts/truncated_bptt.md"), "Measured on every cell")
    assert "../plots/gradient_flow.svg" in every
    for n in CELLS:
        assert f"(../cells/{n}.md)" in every, n
        assert f"[{n}](../cells/{n}.md)" in clipping and f"[{n}](../cells/{n}.md)" in truncation, n
