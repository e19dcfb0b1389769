"""``derive check SEQ2SEQ 'formula'``: a claim about one decoder step of an encoder-decoder (the
attention through its softmax, the output layer and its loss, the decoder state, the bridge) is
checked against ``sympy.diff`` of the step's scalar graph (``witness.head``). One row per claim:
the model, the formula in the pages' or a paper's notation, the verdict; then the refusals.

The witness's reverse pass is held by central differences of its own forward values at 40 digits;
its forward equations are the runtime's, which ``test_seq2seq.py`` holds against PyTorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy as sp

from derive.checker.claims import check
from derive.errors import DeriveError
from derive.symbolic import spec
from derive.witness import head

DE = r"\delta e_{t,s} = \alpha_{t,s} \left(\delta \alpha_{t,s} - \sum_{s'} \alpha_{t,s'} \delta \alpha_{t,s'}\right)"
Z = r"W_a s_{t-1} + U_a a_s"
FED = ('name = "fed"\nattention = "luong_dot"\nbridge = "zero"\nencoder = { cell = "rnn_tanh" }\n'
       'decoder = { cell = "gru", input_feeding = true }\nembedding = { source = 5, target = 5, dim = 3 }\n')
PLAIN = ('name = "plain"\nattention = "none"\nbridge = "learned"\nencoder = { cell = "gru", bidirectional = true }\n'
         'decoder = { cell = "gru" }\nembedding = { target = 5, dim = 3 }\n')

#: (model, formula, verdict)
ROWS = [
    # the attention's softmax, in the pages' notation and Bahdanau's (i, j, h_j)
    ("seq2seq_bahdanau", DE, "correct"),
    ("seq2seq_bahdanau", r"\delta e_{ij} = \alpha_{ij} \left(\delta \alpha_{ij} - \sum_k \alpha_{ik} \delta \alpha_{ik}\right)",
     "correct"),
    ("seq2seq_bahdanau", r"\delta e_{t,s} = \alpha_{t,s} (1 - \alpha_{t,s}) \delta \alpha_{t,s}", "wrong"),
    ("seq2seq_bahdanau", r"\delta e_{t,s} = \alpha_{t,s} \delta \alpha_{t,s}", "wrong"),
    ("seq2seq_luong", DE, "correct"),
    ("fed", DE, "correct"),
    # the context and its gradient
    ("seq2seq_bahdanau", r"c_i = \sum_j \alpha_{ij} h_j", "correct"),
    ("seq2seq_bahdanau", r"c_t = \sum_s e_{t,s} a_s", "wrong"),
    ("seq2seq_bahdanau", r"\delta \alpha_{t,s} = a_s^\top \delta c_t", "correct"),
    ("seq2seq_luong", r"\delta \alpha_{t,s} = \bar{h}_s^\top \delta c_t", "correct"),
    # Bahdanau's score
    ("seq2seq_bahdanau", rf"\delta z_{{t,s}} = \delta e_{{t,s}}\, v_a \odot \left(1 - \tanh^2({Z})\right)", "correct"),
    ("seq2seq_bahdanau", rf"\delta z_{{t,s}} = \delta e_{{t,s}}\, v_a \odot \tanh^2({Z})", "wrong"),
    ("seq2seq_bahdanau", r"\delta a_s \mathrel{+}= \alpha_{t,s} \delta c_t + U_a^\top \delta z_{t,s}", "correct"),
    ("seq2seq_bahdanau", r"\delta a_s = \alpha_{t,s} \delta c_t + U_a^\top \delta z_{t,s}", "correct"),
    ("seq2seq_bahdanau", r"\delta a_s = \alpha_{t,s} \delta c_t", "wrong"),
    ("seq2seq_bahdanau", r"\delta s_{t-1} \mathrel{+}= W_a^\top \sum_s \delta z_{t,s}", "correct"),
    ("seq2seq_bahdanau", r"\delta s_{t-1} = W_a^\top \sum_s \delta z_{t,s}", "wrong"),  # s_{t-1} also feeds the cell
    ("seq2seq_bahdanau", r"\frac{\partial L}{\partial v_a} = \sum_s \delta e_{t,s} \tanh(W_a s_{t-1} + U_a a_s)",
     "correct"),
    # the output layer and the loss
    ("seq2seq_bahdanau", r"\delta o_t = p_t - \mathbf{1}_{y_t}", "correct"),
    ("seq2seq_bahdanau", r"\delta o_t = p_t - y_t", "correct"),
    ("seq2seq_bahdanau", r"\delta o_t = y_t - p_t", "wrong"),
    ("seq2seq_luong", r"\delta o_t = \frac{p_t - \mathbf{1}_{y_t}}{T B}", "correct"),  # the mean loss
    ("seq2seq_luong", r"\delta o_t = \frac{p_t - \mathbf{1}_{y_t}}{T}", "wrong"),
    ("seq2seq_bahdanau", r"\delta [s_t; c_t] \mathrel{+}= W_o^\top \delta o_t", "correct"),
    ("seq2seq_bahdanau", r"\frac{\partial L}{\partial W_o} = \delta o_t [s_t; c_t]^\top", "correct"),
    ("seq2seq_luong", r"\frac{\partial L}{\partial W_o} = \delta o_t \tilde{h}_t^\top", "correct"),
    ("seq2seq_luong", r"\delta b_o = \delta o_t", "correct"),
    ("plain", r"\delta s_t = W_o^\top \delta o_t", "correct"),
    # Luong's attentional vector and the decoder state's two paths
    ("seq2seq_luong", r"\delta \tilde{h}_t = W_o^\top \delta o_t", "correct"),
    ("seq2seq_luong", r"\delta [c_t; s_t] \mathrel{+}= W_c^\top \left(W_o^\top \delta o_t \odot (1 - \tilde{h}_t^2)\right)",
     "correct"),
    ("seq2seq_luong", r"\delta [c_t; s_t] = W_c^\top \left(W_o^\top \delta o_t \odot (1 - \tilde{h}_t^2)\right)", "wrong"),
    ("seq2seq_luong", r"\delta s_t \mathrel{+}= \sum_s \delta e_{t,s} W_a a_s", "correct"),
    ("seq2seq_luong", r"\delta h_t \mathrel{+}= \sum_s \delta e_{t,s} W_a \bar{h}_s", "correct"),  # Luong's h_t
    ("seq2seq_luong", r"\delta s_t \mathrel{+}= \sum_s \delta e_{t,s} W_a^\top a_s", "wrong"),
    ("fed", r"\delta s_t \mathrel{+}= \sum_s \delta e_{t,s} a_s", "correct"),
    ("seq2seq_luong", r"\delta W_a = \sum_s \delta e_{t,s} s_t a_s^\top", "correct"),
    # the bridge
    ("seq2seq_bahdanau", r"\delta u = W_b^\top \left(\delta s_0 \odot (1 - s_0^2)\right)", "correct"),
    ("seq2seq_bahdanau", r"\delta u = W_b^\top \delta s_0", "wrong"),
    ("seq2seq_bahdanau", r"\frac{\partial L}{\partial W_b} = (\delta s_0 \odot (1 - s_0^2)) u^\top", "correct"),
    ("seq2seq_luong", r"\delta u = \delta s_0", "correct"),
    ("plain", r"\delta b_b = \delta s_0 \odot (1 - s_0^2)", "correct"),
]

#: (model, formula, what the one-line error says)
REFUSALS = [
    ("seq2seq_luong", r"\delta x_{t+1} = 0", "one decoder step"),
    ("seq2seq_luong", r"\delta q_t = 0", "not a name of seq2seq_luong's decoder step"),
    ("seq2seq_bahdanau", r"\delta e_t = 0", "needs a source position"),
    ("seq2seq_bahdanau", r"\delta c_t = \alpha_{t,s} a_s", "is not bound"),
    ("seq2seq_bahdanau", r"\delta c_t = \sum_s \sum_s \alpha_{t,s} a_s", "already bound"),
    ("seq2seq_bahdanau", r"\delta o_t = \sum_t p_t", "one decoder step"),
    ("seq2seq_luong", r"\delta s_t += 2", "the right side names the quantity it flows through"),
    ("seq2seq_luong", r"\delta \tilde{h}_t = W_c^\top \delta o_t", "the sizes do not fit"),
    ("fed", r"\delta u = \delta s_0", "bridge is zero"),
    ("seq2seq_luong", r"\delta z_{t,s} = 0", "not part of seq2seq_luong's step"),
    ("seq2seq_bahdanau", r"\delta \alpha_{t,s} = \delta c_t", "the right side is a vector of 4"),
]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    root = tmp_path_factory.mktemp("seq2seq")
    for name, text in (("fed", FED), ("plain", PLAIN)):
        (root / f"{name}.toml").write_text(text)
    return root


def _target(name: str, specs) -> str:
    return str(specs / f"{name}.toml") if name in ("fed", "plain") else name


@pytest.mark.parametrize("model,formula,verdict", ROWS)
def test_claim(model, formula, verdict, specs):
    r = check(_target(model, specs), formula)
    assert r.verdict == verdict, r.report()
    assert "decoder step" in r.reading or "bridge" in r.reading
    if verdict == "wrong":
        assert r.counterexample and not np.allclose(np.asarray(r.left, float), np.asarray(r.right, float))


@pytest.mark.parametrize("model,formula,message", REFUSALS)
def test_refusal(model, formula, message, specs):
    with pytest.raises(DeriveError) as e:
        check(_target(model, specs), formula)
    assert message in str(e.value)


def test_part_hint():
    """An = claim that is one path's part says which path it is and which it leaves out."""
    r = check("seq2seq_luong", r"\delta [c_t; s_t] = W_c^\top \left(W_o^\top \delta o_t \odot (1 - \tilde{h}_t^2)\right)")
    assert "flows through the attentional vector" in r.hint and "the score e_{t,s}" in r.hint


def test_cli_verdicts_and_errors():
    run = [sys.executable, "-m", "derive", "check", "seq2seq_bahdanau"]
    ok = subprocess.run(run + [DE], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.splitlines()[1].startswith("correct"), ok.stdout + ok.stderr
    bad = subprocess.run(run + [r"\delta e_{t,s} = \alpha_{t,s} \delta \alpha_{t,s}"], capture_output=True, text=True)
    assert bad.returncode == 1 and "counterexample (source position s = " in bad.stdout
    err = subprocess.run(run + [r"\delta e_t = 0"], capture_output=True, text=True)
    assert err.returncode == 2 and len(err.stderr.strip().splitlines()) == 1 and "error:" in err.stderr
    assert "Traceback" not in err.stderr


# ------------------------------------------------------------------ the witness


@pytest.mark.parametrize("attention,cell,feeding", [("bahdanau", "gru", False), ("luong_general", "lstm", False),
                                                    ("luong_dot", "gru", True), ("none", "rnn_tanh", False)])
def test_witness_against_differences(attention, cell, feeding):
    """dL/d of every leaf and node of the step's graph against central differences of its forward values."""
    g = head.head_graph(attention, spec.load(cell), head.HeadSizes(), input_feeding=feeding)
    point = head.evaluate(g, seed=3)
    leaves = {k: v for k, v in g.leaves.items() if not k.startswith("cell:")}
    values = {s: sp.Rational(round(point.values[k][idx] * 100), 100)  # the leaves are k/100, exactly
              for k, arr in g.leaves.items() for idx, s in np.ndenumerate(arr)}
    for name, arr in leaves.items():
        for idx, sym in list(np.ndenumerate(arr))[:3]:
            eps = sp.Rational(1, 10**12)
            up, down = dict(values), dict(values)
            up[sym] += eps
            down[sym] -= eps
            fd = float((_loss(g, up) - _loss(g, down)) / (2 * eps))
            assert abs(fd - point.grads[name][idx]) < 1e-9, (name, idx, fd, point.grads[name][idx])


def _loss(g: head.Graph, leaves: dict) -> float:
    env = dict(leaves)
    for syms, defs in g.nodes.values():
        for s, d in zip(syms.flat, defs.flat):
            env[s] = sp.sympify(d).xreplace(env).evalf(40)
    return env[next(iter(g.nodes["L"][0].flat))]

