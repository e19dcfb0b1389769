"""``derive check MODEL 'formula'``: a claim about layer l of a stack is read on that layer's cell,
seen from above through u_t = x^{(l+1)}_t (``symbolic.layer``), and checked by the cell checker
against that cell's derivation (30-digit witness). One row per claim: the model, the formula in
the model's notation, the verdict; then the refusals, each a located one-line error.

The layer cell's own derivation is held by the brute-force witness (``test_layer_cell_bruteforce``):
the identity a residual adds to dx^{(l)} and the projection's W_r^T are not taken on trust."""

from __future__ import annotations

import subprocess
import sys

import pytest

from derive.checker.claims import check
from derive.errors import DeriveError
from derive.symbolic import layer, spec
from derive.witness import derivation as verify

LSTM_DX = (r"W_{xi}^{(l)T} \delta z^{(l)}_{i,t} + W_{xf}^{(l)T} \delta z^{(l)}_{f,t} + W_{xg}^{(l)T} \delta z^{(l)}_{g,t}"
           r" + W_{xo}^{(l)T} \delta z^{(l)}_{o,t}")
LSTM_DH = (r"W_{hi}^{(l)T} \delta z^{(l)}_{i,t+1} + W_{hf}^{(l)T} \delta z^{(l)}_{f,t+1} + W_{hg}^{(l)T} "
           r"\delta z^{(l)}_{g,t+1} + W_{ho}^{(l)T} \delta z^{(l)}_{o,t+1}")
GRU_BACK = (r"W_{hr}^{(2)T} \delta \overleftarrow{z}^{(2)}_{r,t-1} + W_{hz}^{(2)T} \delta \overleftarrow{z}^{(2)}_{z,t-1} "
            r"+ W_{hn}^{(2)T} (\delta \overleftarrow{z}^{(2)}_{n,t-1} \odot \overleftarrow{r}^{(2)}_{t-1}) "
            r"+ \delta \overleftarrow{h}^{(2)}_{t-1} \odot \overleftarrow{z}^{(2)}_{t-1}")
RNN_STACK = 'name = "rnn3"\ncell = "rnn_tanh"\nlayers = 3\n'
PROJECT = 'name = "proj2"\ncell = "rnn_tanh"\nlayers = 2\nresidual = "project"\n'
SUMMED = 'name = "bisum"\ncell = "rnn_tanh"\nlayers = 2\nbidirectional = true\nmerge = "sum"\n'

#: (model, formula, verdict)
ROWS = [
    # the residual identity in the layer's input gradient (layers above the first)
    ("deep_residual_lstm", rf"\delta x^{{(l)}}_t = {LSTM_DX} + \delta x^{{(l+1)}}_t", "correct"),
    ("deep_residual_lstm", rf"\delta x^{{(l)}}_t = {LSTM_DX}", "wrong"),
    ("deep_residual_lstm", rf"\delta x^{{(3)}}_t = {LSTM_DX.replace('(l)', '(3)')} + \delta x^{{(4)}}_t", "correct"),
    # layer 1 reads the input (size I): no identity there
    ("deep_residual_lstm", rf"\delta x^{{(1)}}_t = {LSTM_DX.replace('(l)', '(1)')}", "correct"),
    # the gradient from above enters dh^{(l)} (dy^{(l)} = dx^{(l+1)} also with a residual)
    ("deep_residual_lstm", rf"\delta h^{{(l)}}_t = \delta x^{{(l+1)}}_t + {LSTM_DH}", "correct"),
    ("deep_residual_lstm", rf"\delta h^{{(l)}}_t = \delta y^{{(l)}}_t + {LSTM_DH}", "correct"),
    ("deep_residual_lstm", rf"\delta h^{{(l)}}_t = {LSTM_DH}", "wrong"),
    ("deep_residual_lstm", r"\frac{\partial L}{\partial h^{[l]}_t} = \frac{\partial L}{\partial x^{[l+1]}_t} + "
                           + LSTM_DH.replace("(l)", "[l]"), "correct"),
    # Ng's superscripts: a^{[l]<t>}
    ("deep_residual_lstm", r"dc^{[l]<t>} = dh^{[l]<t>} \odot o^{[l]<t>} \odot (1 - \tanh^2(c^{[l]<t>})) + "
                           r"dc^{[l]<t+1>} \odot f^{[l]<t+1>}", "correct"),
    ("deep_residual_lstm", r"dc^{[l]<t>} = dh^{[l]<t>} \odot o^{[l]<t>} \odot (1 - \tanh^2(c^{[l]<t>})) + "
                           r"dc^{[l]<t+1>} \odot f^{[l]<t>}", "wrong"),
    # the reverse direction: its recurrence runs from t-1 backwards... read with times mirrored
    ("deep_bigru", rf"\delta \overleftarrow{{h}}^{{(2)}}_t = \delta \overleftarrow{{y}}^{{(2)}}_t + {GRU_BACK}",
     "correct"),
    ("deep_bigru", rf"\delta \overrightarrow{{h}}^{{(2)}}_t = \delta \overrightarrow{{y}}^{{(2)}}_t + "
                   + GRU_BACK.replace("t-1", "t+1").replace("overleftarrow", "overrightarrow"), "correct"),
    # a parameter gradient of layer l, summed over the run
    (RNN_STACK, r"\frac{\partial L}{\partial W_{hh}^{(l)}} = \sum_{t=1}^{T} \delta z^{(l)}_{h,t} h^{(l)T}_{t-1}",
     "correct"),
    (RNN_STACK, r"\frac{\partial L}{\partial W_{hh}^{(l)}} = \sum_{t=1}^{T} \delta z^{(l)}_{h,t} h^{(l)T}_{t}",
     "wrong"),
    (RNN_STACK, r"\delta h^{(2)}_t = \delta x^{(3)}_t + W_{hh}^{(2)T} \delta z^{(2)}_{h,t+1}", "correct"),
    (RNN_STACK, r"\delta x^{(l)}_t = W_{xh}^{(l)T} \delta z^{(l)}_{h,t}", "correct"),
    # a learned projection where the sizes differ (layer 1), the identity above it
    (PROJECT, r"\delta x^{(1)}_t = W_{xh}^{(1)T} \delta z^{(1)}_{h,t} + W_r^{(1)T} \delta x^{(2)}_t", "correct"),
    (PROJECT, r"\delta x^{(1)}_t = W_{xh}^{(1)T} \delta z^{(1)}_{h,t}", "wrong"),
    (PROJECT, r"\frac{\partial L}{\partial W_r^{(1)}} = \sum_{t=1}^{T} \delta x^{(2)}_t x^{(1)T}_t", "correct"),
    (PROJECT, r"\delta x^{(2)}_t = W_{xh}^{(2)T} \delta z^{(2)}_{h,t} + \delta x^{(3)}_t", "correct"),
    # merge = "sum": both directions get the whole gradient from above
    (SUMMED, r"\delta \overleftarrow{h}^{(1)}_t = \delta x^{(2)}_t + W_{hh}^{(1)T} \delta \overleftarrow{z}^{(1)}_{h,t-1}",
     "correct"),
    (SUMMED, r"\delta \overrightarrow{h}^{(1)}_t = \delta x^{(2)}_t + W_{hh}^{(1)T} \delta \overrightarrow{z}^{(1)}_{h,t+1}",
     "correct"),
    (SUMMED, r"\delta \overleftarrow{h}^{(1)}_t = W_{hh}^{(1)T} \delta \overleftarrow{z}^{(1)}_{h,t-1}", "wrong"),
]


def _target(model, tmp_path):
    if "\n" not in model:
        return model
    path = tmp_path / "model.toml"
    path.write_text(model)
    return str(path)


@pytest.mark.parametrize("model,formula,verdict", ROWS, ids=[f"{i}-{r[2]}" for i, r in enumerate(ROWS)])
def test_model_claim(model, formula, verdict, tmp_path):
    r = check(_target(model, tmp_path), formula)
    assert r.verdict == verdict, r.report()
    assert r.formula == formula and r.reading.startswith("layer ")
    if verdict == "wrong":
        assert r.counterexample and r.left is not None and r.right is not None


def test_wrong_residual_names_the_missing_identity():
    r = check("deep_residual_lstm", rf"\delta x^{{(l)}}_t = {LSTM_DX}")
    assert r.hint == "missing term: du_t" and "du_t" in r.derived
    assert "u_t = x^(l+1)_t = h_t + x_t" in r.reading


#: (model, formula, a part of the message, the column the error points at (None: the claim's start))
REFUSED = [
    ("deep_residual_lstm", r"\delta h_t = 0", "name the layer", 1),
    ("deep_residual_lstm", r"\delta h^{(l)}_t = \delta h^{(2)}_t", "every layer as l", 1),
    ("deep_residual_lstm", r"\delta h^{(2)}_t = \delta c^{(3)}_t", "one layer", 1),
    ("deep_residual_lstm", r"\delta h^{(7)}_t = 0", "layers 1..4, not 7", 1),
    ("deep_residual_lstm", r"\delta h^{(l)}_t = \delta x^{(l+2)}_t", "layer l+2 in a claim about layer l", 20),
    ("deep_residual_lstm", r"\delta \overleftarrow{h}^{(l)}_t = 0", "no reverse direction", 1),
    ("deep_bigru", r"\delta h^{(l)}_t = 0", "name the direction", 1),
    ("deep_bigru", r"\delta \overleftarrow{h}^{(l)}_t = \delta \overrightarrow{h}^{(l)}_t", "one direction", 1),
    ("deep_bigru", r"\delta x^{(l)}_t = \delta \overrightarrow{z}^{(l)}_{r,t}", "sums both directions", 1),
    ("deep_bigru", r"\delta \overrightarrow{h}^{(l)}_t = \delta x^{(l+1)}_t", "merge = concat", 37),
    ("deep_residual_lstm", r"\delta h^{(l)}_t = \delta q^{(l)}_t", "unknown symbol q_t", 20),
    ("seq2seq_bahdanau", r"\delta h^{(l)}_t = 0", "a claim is about one decoder step", 8),
    # the reverse direction written with the forward direction's times
    ("deep_bigru", rf"\delta \overleftarrow{{h}}^{{(2)}}_t = \delta \overleftarrow{{y}}^{{(2)}}_t + "
                   + GRU_BACK.replace("t-1", "t+1"), "its later step is t-1", None),
    # layer 1 reads x_t of size I (I = 2, H = 3 in the witness): the layer above's input has another size
    ("deep_residual_lstm", rf"\delta x^{{(1)}}_t = {LSTM_DX.replace('(l)', '(1)')} + \delta x^{{(2)}}_t",
     "cannot add a vector of 2 and a vector of 3", None),
]


@pytest.mark.parametrize("model,formula,part,column", REFUSED, ids=[r[2] for r in REFUSED])
def test_model_claim_refused(model, formula, part, column):
    with pytest.raises(DeriveError) as e:
        check(model, formula)
    assert part in e.value.message
    if column is not None:
        assert e.value.pos is not None and (e.value.pos.line, e.value.pos.column) == (1, column), e.value.pos


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru"])
@pytest.mark.parametrize("shortcut", list(layer.Shortcut))
def test_layer_cell_bruteforce(cell, shortcut):
    """The layer cell's BPTT (the residual's identity, the projection's W_r^T) against the brute
    force: the unrolled forward differentiated symbolically, T = 3."""
    c, _ = layer.layer_cell(cell, spec.load(cell), shortcut)
    from derive.symbolic import bptt
    report = verify.compare(bptt.derive(c), verify.Sizes(T=2, I=2, H=2), seed=3)
    assert report.quantities > 0 and report.worst < 1e-20 and report.jacobian_worst < 1e-20, report


def test_cli_exit_codes_and_located_error():
    derive = [sys.executable, "-m", "derive", "check", "deep_residual_lstm"]
    ok = subprocess.run(derive + [rf"\delta x^{{(l)}}_t = {LSTM_DX} + \delta x^{{(l+1)}}_t"], capture_output=True,
                        text=True)
    assert ok.returncode == 0 and "correct" in ok.stdout and "read as: layer l" in ok.stdout
    bad = subprocess.run(derive + [rf"\delta x^{{(l)}}_t = {LSTM_DX}"], capture_output=True, text=True)
    assert bad.returncode == 1 and "missing term: du_t" in bad.stdout
    err = subprocess.run(derive + [r"\delta h^{(l)}_t = \delta x^{(l+2)}_t"], capture_output=True, text=True)
    assert err.returncode == 2 and err.stdout == "" and "Traceback" not in err.stderr
    assert err.stderr.strip().splitlines() == [err.stderr.strip()]
    assert err.stderr.startswith("<input>:1:20: error: layer l+2")


def test_a_projection_that_a_cell_parameter_shadows_is_refused(tmp_path):
    """SRU has a W_r of its own: a residual projection W_r^(l) on an SRU stack could not be told apart."""
    path = tmp_path / "sru_res.toml"
    path.write_text('name = "sru_res"\ncell = "sru"\nlayers = 2\nresidual = "project"\n')
    with pytest.raises(DeriveError, match=r"sru has a parameter W_r of its own.*\(the residual of layer 1\)$"):
        check(str(path), r"\delta x^{(1)}_t = 0")
