"""derive check: textbook formulas, right and subtly wrong, get the right verdict; hostile input a clean error."""

import random
import time

import numpy as np
import pytest

import derive
from derive.checker.claims import check
from derive.cli.command import main
from derive.errors import DeriveError

LSTM_DH = r"dh_t = dy_t + W_{hi}^T dz_{i,t+1} + W_{hf}^T dz_{f,t+1} + W_{hg}^T dz_{g,t+1} + W_{ho}^T dz_{o,t+1}"
GRU_DH = (r"\delta h_t = \delta y_t + W_{hr}^\top \delta z_{r,t+1} + W_{hz}^\top \delta z_{z,t+1} "
          r"+ W_{hn}^\top (\delta z_{n,t+1} \odot r_{t+1}) + \delta h_{t+1} \odot z_{t+1}")

QRNN_DX = (r"\delta x_t = W_{z2}^\top \delta z_{z,t} + W_{f2}^\top \delta z_{f,t} + W_{z1}^\top \delta z_{z,t+1} "
           r"+ W_{f1}^\top \delta z_{f,t+1}")
GREFF_DY = (r"\delta y_t = \delta y_{loss,t} + R_z^\top \delta z_{z,t+1} + R_i^\top \delta z_{i,t+1} "
            r"+ R_f^\top \delta z_{f,t+1} + R_o^\top \delta z_{o,t+1}")
LSTMP_DR = (r"\delta r_t = \delta y_t + W_{ir}^\top \delta z_{i,t+1} + W_{fr}^\top \delta z_{f,t+1} "
            r"+ W_{cr}^\top \delta z_{c,1,t+1} + W_{or}^\top \delta z_{o,t+1}")
SLSTM_DI = (r"\delta z_{\hat{i},t} = \delta \hat{i}_t "
            r"\odot \exp(\tilde{i}_t - \max(\log(f_t) + m_{t-1}, \tilde{i}_t))")
SLSTM_DM = (r"\frac{\partial m_t}{\partial m_{t-1}} "
            r"= \operatorname{diag}(\operatorname{H}(m_{t-1} + \log(f_t) - \tilde{i}_t))")
MUT1_DX = (r"\delta x_t = W_{xz}^\top \delta z_{z,t} + W_{xr}^\top \delta z_{r,t} "
           r"+ \delta z_{h,1,t} \odot (1 - \tanh^2(x_t))")

#: (target, formula, verdict, a phrase the report must contain)
LN_DR = (r"\delta r_{f,t} = \frac{1}{4} \operatorname{mean}(\delta m_{r,t}) + \frac{1}{2} (r_{f,t} - m_{r,t}) \odot "
         r"\operatorname{mean}(\delta z_{s,r,t}) + \delta z_{f,t} \odot a_{1f} / s_{r,t}")
TABLE = [
    # LSTM adjoints
    ("lstm", r"dc_t = dh_t*o_t*(1 - tanh(c_t)**2) + dc_next*f_next", "correct", "symbolically"),
    ("lstm", r"dc_t = dh_t*o_t*(1 - tanh(c_t)**2)", "wrong", "missing term: dc_{t+1} ⊙ f_{t+1}"),
    ("lstm", r"\delta c_t = \delta h_t \odot o_t \odot (1 - \tanh^2(c_t)) + \delta c_{t+1} \odot f_{t+1}",
     "correct", ""),
    ("lstm", r"\delta c_t = \delta h_t \odot o_t \odot (1 - \tanh(c_t)) + \delta c_{t+1} \odot f_{t+1}",
     "wrong", "counterexample"),
    ("lstm", LSTM_DH, "correct", ""),
    ("lstm", LSTM_DH.replace(r" + W_{ho}^T dz_{o,t+1}", ""), "wrong", "missing term: W_{ho}^T dz_{o,t+1}"),
    ("lstm", r"do_t = dh_t \odot \tanh(c_t)", "correct", ""),
    ("lstm", r"do_t = dh_t \odot \tanh(c_t) \odot o_t", "wrong", ""),
    ("lstm", r"dz_{o,t} = do_t o_t (1 - o_t)", "correct", ""),
    ("lstm", r"dz_{f,t} = dc_t * c_{t-1} * f_t * (1 - f_t)", "correct", "symbolically"),
    ("lstm", r"dz_{f,t} = dc_t * c_t * f_t * (1 - f_t)", "wrong", ""),
    ("lstm", r"dz_{g,t} = dc_t \odot i_t \odot (1 - g_t^2)", "correct", ""),
    ("lstm", r"dz_{g,t} = dc_t \odot i_t \odot g_t \odot (1 - g_t)", "wrong", ""),
    ("lstm", r"dz_{i,t} = dc_t \odot g_t \odot \sigma'(z_{i,t})", "correct", ""),
    ("lstm", r"dx_t = W_{xi}^T dz_{i,t} + W_{xf}^T dz_{f,t} + W_{xg}^T dz_{g,t} + W_{xo}^T dz_{o,t}", "correct", ""),
    # LSTM parameter gradients, three notations
    ("lstm", r"\frac{\partial L}{\partial W_{xf}} = \sum_t \delta z_{f,t} x_t^\top", "correct", ""),
    ("lstm", r"\frac{\partial L}{\partial W_{xf}} = \sum_t x_t \delta z_{f,t}^\top", "wrong", "transposed"),
    ("lstm", r"dW_{if} = sum_t dz_{f,t} @ x_t.T", "correct", ""),
    ("lstm", r"dW_{fh} = \sum_t dz_{f,t} h_{t-1}^\top", "correct", ""),
    ("lstm", r"dW_{fh} = \sum_t dz_{f,t} h_t^\top", "wrong", ""),
    ("lstm", r"db_f = \sum_t dz_{f,t}", "correct", ""),
    ("lstm", r"db_f = \sum_t df_t", "wrong", ""),
    # LSTM Jacobian blocks
    ("lstm", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)", "correct", ""),
    ("lstm", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(1 - f_t)", "wrong", ""),
    ("lstm", r"\frac{\partial h_t}{\partial c_{t-1}} = \operatorname{diag}(o_t \odot (1 - \tanh^2(c_t)) \odot f_t)",
     "correct", ""),
    # parameter counts and their conventions
    ("lstm", r"N = 4(H I + H^2 + 2H)", "correct", ""),
    ("lstm", r"N = 4(H I + H^2 + H)", "equivalent", "keras convention"),
    ("lstm", r"N = 4 H (I + H + 3)", "wrong", "-4*H"),
    ("gru", r"N = 3(H I + H^2 + 2H)", "correct", ""),
    ("gru_cho", r"N = 3(H I + H^2 + H)", "correct", ""),
    ("lstm_proj", r"N = 4H(I + P) + 8H + P H", "correct", ""),
    ("rnn_tanh", r"N = H I + H^2 + H", "equivalent", "single"),
    # GRU, both variants
    ("gru", GRU_DH, "correct", ""),
    ("gru", GRU_DH.replace(r"(\delta z_{n,t+1} \odot r_{t+1})", r"\delta z_{n,t+1}"), "wrong", ""),
    ("gru", r"dz_{z,t} = dh_t \odot (h_{t-1} - n_t) \odot z_t \odot (1 - z_t)", "correct", ""),
    ("gru", r"dz_{z,t} = dh_t \odot (n_t - h_{t-1}) \odot z_t \odot (1 - z_t)", "equivalent", "Olah's notation"),
    ("gru", r"dz_{z,t} = dh_t \odot (n_t + h_{t-1}) \odot z_t \odot (1 - z_t)", "wrong", ""),
    ("gru_cho", r"\delta z_t = \delta h_t \odot (\tilde{h}_t - h_{t-1})", "equivalent", "Olah's notation"),
    ("gru", r"dr_t = dz_{n,t} \odot (W_{hn} h_{t-1} + b_{hn})", "correct", ""),
    ("gru", r"dr_t = h_{t-1} \odot (W_{hn}^T dz_{n,t})", "equivalent", "right for gru_cho"),
    ("gru_cho", r"dz_{\tilde{h},t} = d\tilde{h}_t (1 - \tilde{h}_t^2)", "correct", ""),
    ("gru_cho", r"dz_{\tilde{h},t} = d\tilde{h}_t (1 - \tilde{h}_t)", "wrong", ""),
    # RNN
    ("rnn_tanh", r"dz_{h,t} = dh_t \odot (1 - h_t^2)", "correct", ""),
    ("rnn_tanh", r"dz_{h,t} = dh_t \odot (1 - h_t)", "wrong", ""),
    ("rnn_tanh", r"dh_t = dy_t + W_{hh}^T dz_{h,t+1}", "correct", ""),
    ("rnn_tanh", r"dh_t = dy_t + W_{hh} dz_{h,t+1}", "wrong", ""),
    ("rnn_relu", r"dz_{h,t} = dh_t \odot \operatorname{relu}'(z_{h,t})", "correct", ""),
    # the verdict policy: a formula right for another CELL is wrong (exit 1), the report names the cell
    ("lstm_peephole", r"dc_t = dh_t \odot o_t \odot (1 - \tanh^2(c_t)) + dc_{t+1} \odot f_{t+1}", "wrong",
     "this is the formula for lstm (LSTM)"),
    ("lstm_peephole", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)", "wrong",
     "this is the formula for lstm (LSTM)"),
    ("lstm_cifg", r"dz_{i,t} = dc_t \odot g_t \odot i_t \odot (1 - i_t)", "wrong", "this is the formula for lstm (LSTM)"),
    ("lstm_cifg", r"dz_{i,t} = dc_t \odot (g_t - c_{t-1}) \odot i_t \odot (1 - i_t)", "correct", "symbolically"),
    ("lstm", r"dz_{f,t} = dc_t \odot c_{t-1} \odot f_t (1 - f_t) + dz_{i,t}", "wrong", "counterexample"),
    ("rnn_relu", r"dz_{h,t} = dh_t \odot (1 - h_t^2)", "wrong", "this is the formula for rnn_tanh"),
    # peephole: the cell state feeds the gates
    ("lstm_peephole", r"dc_t = dh_t o_t (1 - \tanh^2(c_t)) + dz_{o,t} p_o + dc_{t+1} f_{t+1} "
                      r"+ p_i dz_{i,t+1} + p_f dz_{f,t+1}", "correct", ""),
    ("lstm_peephole", r"dc_t = dh_t o_t (1 - \tanh^2(c_t)) + dz_{o,t} p_o + dc_{t+1} f_{t+1}", "wrong",
     "missing terms"),
    ("lstm_peephole", r"dp_f = \sum_t dz_{f,t} \odot c_{t-1}", "correct", ""),
    # activation derivatives
    ("sigmoid", r"f'(x) = f(x)(1 - f(x))", "correct", "symbolically"),
    ("sigmoid", r"\sigma'(x) = \sigma(x)(1 + \sigma(x))", "wrong", "counterexample"),
    ("tanh", r"f'(x) = 1 - \tanh^2(x)", "correct", ""),
    ("tanh", r"f'(x) = 1 - \tanh(x)", "wrong", ""),
    ("softplus", r"f'(x) = \sigma(x)", "correct", ""),
    ("gelu", r"f'(x) = \Phi(x) + x e^{-x^2/2}/\sqrt{2\pi}", "correct", ""),
    # the tanh approximation is another function (PyTorch approximate='tanh'), not a convention
    ("gelu", r"f(x) = 0.5 x (1 + \tanh(\sqrt{2/\pi} (x + 0.044715 x^3)))", "wrong",
     "this is the formula for gelu_tanh"),
    ("gelu_tanh", r"f(x) = 0.5 x (1 + \tanh(\sqrt{2/\pi} (x + 0.044715 x^3)))", "correct", ""),
    ("silu", r"f'(x) = \sigma(x) (1 + x (1 - \sigma(x)))", "correct", ""),
    ("silu", r"f'(x) = \sigma(x) (1 - x \sigma(x))", "wrong", ""),
    ("elu", r"f'(x) = \min(f(x) + \alpha, 1)", "correct", ""),
    # a named constant of the spec (JANET's \beta = 1), and the pre-activation derive introduced for it
    ("janet", r"\delta \tilde{c}_t = \delta c_t \odot (1 - \sigma(s_t - \beta))", "correct", "symbolically"),
    ("janet", r"\delta \tilde{c}_t = \delta c_t \odot (1 - \sigma(s_t + \beta))", "wrong", "\\beta = 1."),
    ("janet", r"dz_{c,1,t} = -dc_t \tilde{c}_t \sigma'(s_t - \beta)", "correct", ""),
    ("janet", r"dz_{c,1,t} = -dc_t \tilde{c}_t \sigma'(s_t)", "wrong", "counterexample"),
    # two-argument \max / \min, and the step H (H(0) = 1/2) of their derivative (sLSTM's stabiliser m)
    ("slstm", SLSTM_DI, "correct", ""),
    ("slstm", SLSTM_DI.replace(r"\max", r"\min"), "wrong", "counterexample"),
    ("slstm", SLSTM_DM, "correct", ""),
    ("slstm", SLSTM_DM.replace(r"m_{t-1} + \log(f_t) - \tilde{i}_t", r"\tilde{i}_t - m_{t-1} - \log(f_t)"), "wrong",
     "counterexample"),
    ("slstm", r"\frac{\partial c_t}{\partial n_{t-1}} = 0", "correct", ""),
    ("slstm", r"\frac{\partial c_t}{\partial c_{t-1}} = 0", "wrong", "f^_t = "),
    ("slstm", r"\delta z_{\hat{f},t} = \delta \hat{f}_t \odot e^{z_{\hat{f},t}}", "correct", "symbolically"),
    ("slstm", r"\delta z_{\hat{f},t} = \delta \hat{f}_t \odot f_t", "wrong", "counterexample"),
    # a clock (Clockwork RNN): the update mask m_t is a known vector; W_H is block-upper-triangular, so its
    # gradient is compared on its free entries (the page writes M (.) sum_t ...)
    ("clockwork", r"dh_t = dy_t + W_H^T dz_{\tilde{h},t+1} + dh_{t+1} \odot (1 - m_{t+1})", "correct", "symbolically"),
    ("clockwork", r"dh_t = dy_t + W_H^T dz_{\tilde{h},t+1} + dh_{t+1}", "wrong",
     "missing factor: 1 - m_{t+1} in the term dh_{t+1}"),
    ("clockwork", r"dW_H = \sum_t dz_{\tilde{h},t} h_{t-1}^\top", "correct", "on its free entries"),
    ("clockwork", r"dW_H = \sum_t dz_{\tilde{h},t} h_t^\top", "wrong", "counterexample"),
    ("clockwork", r"\frac{\partial h_t}{\partial h_{t-1}} = diag(1 - m_t) + diag(m_t \odot (1 - \tilde{h}_t^2)) W_H",
     "correct", ""),
    ("clockwork", r"\frac{\partial h_t}{\partial h_{t-1}} = diag(m_t \odot (1 - \tilde{h}_t^2)) W_H", "wrong",
     "counterexample"),
    ("clockwork", r"N = I H + \frac{5}{8} H^2 + H", "correct", "polynomials"),
    ("clockwork", r"N = I H + H^2 + H", "wrong", "-3*H**2/8"),
    # an input tap x_{t-1} (QRNN, window 2): its term reaches dx_t from step t+1
    ("qrnn_f_w2", QRNN_DX, "correct", "symbolically"),
    ("qrnn_f_w2", QRNN_DX.replace(r" + W_{z1}^\top \delta z_{z,t+1}", ""), "wrong",
     "missing term: W_{z1}^T dz_{z,t+1}"),
    ("qrnn_f_w2", r"dW_{z1} = \sum_t dz_{z,t} x_{t-1}^\top", "correct", ""),
    ("qrnn_f_w2", r"dW_{z1} = \sum_t dz_{z,t} x_t^\top", "wrong", "counterexample"),
    # the loss's own gradient dy_{loss,t} of a cell whose state is named y (Greff's vanilla LSTM)
    ("greff_v", GREFF_DY, "correct", "symbolically"),
    ("greff_v", GREFF_DY.replace(r"\delta y_{loss,t} + ", ""), "wrong", "missing term: dy_{loss,t}"),
    ("greff_v", r"dy_t = dy_{loss,t} + R_z^T dz_{z,t+1} + R_i^T dz_{i,t+1} + R_f^T dz_{f,t+1} + R_o^T dz_{o,t+1}",
     "correct", ""),
    # a pre-activation named with a comma index, at t+1 (LSTMP's z_{c,1,t})
    ("lstmp", LSTMP_DR, "correct", "symbolically"),
    ("lstmp", LSTMP_DR.replace(r" + W_{cr}^\top \delta z_{c,1,t+1}", ""), "wrong",
     "missing term: W_{cr}^T dz_{c,1,t+1}"),
    # the mean over the units (LN-LSTM): its own adjoint, mean(dm) reaches every block of the stack
    ("ln_lstm", LN_DR, "correct", "symbolically"),
    ("ln_lstm", LN_DR.replace(r"\operatorname{mean}(\delta m_{r,t})", r"\delta m_{r,t}"), "wrong", "counterexample"),
    ("ln_lstm", LN_DR.replace(r"\operatorname{mean}(\delta z_{s,r,t})", r"\delta z_{s,r,t}"), "wrong",
     "counterexample"),
    # I = H (sizes = { x = "H" }): tanh(x_t) is added to an H-vector
    ("mut1", MUT1_DX, "correct", "symbolically"),
    ("mut1", MUT1_DX.replace(r" \odot (1 - \tanh^2(x_t))", ""), "wrong", "I=3, H=3"),
]


@pytest.mark.parametrize("target,formula,verdict,phrase", TABLE)
def test_textbook_formulas(target, formula, verdict, phrase):
    r = check(target, formula)
    report = r.report()
    assert r.verdict == verdict, report
    assert phrase in report, report
    if verdict == "wrong" and r.counterexample is not None:
        assert r.counterexample, report
        left, right = np.asarray(r.left, dtype=complex), np.asarray(r.right, dtype=complex)
        assert left.shape != right.shape or not np.allclose(left, right, rtol=1e-9, atol=1e-12), report


#: a user's spec (``derive check ./mine.toml ...``) with what the spec language grew: named constants
#: (a Greek \nu and a plain k), a tap x_{t-2} (its term reaches dx_t from step t+2), \max, and I = H
USER_SPEC = """
name = "mine"
title = "a user's cell"
summary = "constants, a tap two steps back, a maximum and I = H"
input = "x"
states = ["h"]
output = "h"
sizes = { x = "H" }
constants = { nu = 0.5, k = 2 }
equations = '''
a_t = \\tanh(W_a x_{t-2} + U_a h_{t-1} + b_a)
h_t = \\max(a_t, \\nu x_t) + k h_{t-1}
'''
"""
USER_DX = r"dx_t = \nu dh_t \odot \operatorname{H}(\nu x_t - a_t) + W_a^T dz_{a,t+2}"
USER_JAC = (r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(k) "
            r"+ \operatorname{diag}((1 - a_t^2) \odot H(a_t - \nu x_t)) U_a")
USER_TABLE = [
    (USER_DX, "correct", "symbolically"),
    (USER_DX.replace(" + W_a^T dz_{a,t+2}", ""), "wrong", "missing term: W_a^T dz_{a,t+2}"),
    (r"dx_t = 0.5 dh_t \odot H(0.5 x_t - a_t) + W_a^T dz_{a,t+2}", "correct", ""),  # the derivation's own text
    (r"dh_t = dy_t + U_a^T dz_{a,t+1} + k dh_{t+1}", "correct", "symbolically"),
    (r"dh_t = dy_t + U_a^T dz_{a,t+1} + dh_{t+1}", "wrong", "I=3, H=3"),
    (r"da_t = dh_t \odot \operatorname{H}(a_t - \nu x_t)", "correct", ""),
    (r"da_t = dh_t \odot \operatorname{H}(\nu x_t - a_t)", "wrong", "\\nu = 0.5"),
    (r"dW_a = \sum_t dz_{a,t} x_{t-2}^T", "correct", ""),
    (r"dW_a = \sum_t dz_{a,t} x_{t-1}^T", "wrong", "counterexample"),
    (USER_JAC, "correct", ""),
    (USER_JAC.replace(r"\operatorname{diag}(k) + ", ""), "wrong", "counterexample"),
    (r"N = 2 H^2 + H", "correct", ""),
]


@pytest.fixture(scope="module")
def user_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "mine.toml"
    path.write_text(USER_SPEC, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("formula,verdict,phrase", USER_TABLE)
def test_a_users_spec(user_spec, formula, verdict, phrase):
    r = check(user_spec, formula)
    report = r.report()
    assert r.verdict == verdict and phrase in report, report
    if verdict == "wrong":
        assert r.counterexample, report
        assert not np.allclose(np.asarray(r.left, dtype=float), np.asarray(r.right, dtype=float)), report


def test_the_table_is_broad():
    targets = {t for t, *_ in TABLE}
    assert len(TABLE) >= 30 and sum(v == "wrong" for _, _, v, _ in TABLE) >= 15
    assert {"lstm", "gru", "gru_cho", "rnn_tanh", "lstm_peephole", "sigmoid", "tanh"} <= targets


def test_counterexample_values_reproduce_the_difference():
    """The values printed for a wrong LSTM dc_t recompute both sides."""
    r = check("lstm", "dc_t = dh_t*o_t*(1 - tanh(c_t)**2)")
    ce = r.counterexample
    mine = ce["dh_t"] * ce["o_t"] * (1 - np.tanh(ce["c_t"]) ** 2)
    truth = mine + ce["dc_{t+1}"] * ce["f_{t+1}"]
    assert np.allclose(r.right, mine) and np.allclose(r.left, truth)


def test_let_and_aliases():
    assert check("lstm", "dz_{f,t} = dc_t * C_{t-1} * f_t * (1 - f_t)").verdict == "correct"  # colah's C
    assert check("lstm", "dz_{f,t} = dc_t * c_{t-1} * q", let=["q = f_t (1 - f_t)"]).verdict == "correct"
    concat = ["W_f = [W_{hf}, W_{xf}]"]
    r = check("lstm", r"dz_{f,t} = \delta f_t \odot \sigma'(W_f [h_{t-1}, x_t] + b_f)", let=concat)
    assert r.verdict == "correct", r.report()


@pytest.mark.parametrize("formula,message", [
    ("dc_t = (", "1:8"),
    ("dc_t = dh_t + nope_t", "unknown symbol nope_t; known: vectors"),
    ("dc_t = W_{xf} + dh_t", "cannot add"),
    ("dc_t", "needs '='"),
    ("dc_{t-2} = dh_t", "at step t, t-1 or t+1"),  # a left side at t-1 is read one step later (TABLE)
    ("x" * 3000 + " = 1", "limit"),
    ("dc_t = \\foo(c_t)", "unknown function"),
])
def test_bad_input_says_what_and_where(formula, message):
    with pytest.raises(DeriveError) as e:
        check("lstm", formula)
    assert message in str(e.value)


def test_cli_exit_status(tmp_path, capsys):
    assert main(["check", "lstm", "dc_t = dh_t*o_t*(1 - tanh(c_t)**2) + dc_next*f_next"]) == 0
    assert main(["check", "lstm", "dc_t = dh_t*o_t*(1 - tanh(c_t)**2)"]) == 1
    assert main(["check", "lstm", "dc_t = dh_t +"]) == 2
    assert main(["check", "sigmoid", "f'(x) = f(x)(1 - f(x))"]) == 0
    f = tmp_path / "mine.txt"
    f.write_text("# my LSTM derivation\ndc_t = dh_t*o_t*(1 - tanh(c_t)**2) + dc_next*f_next\n\ndo_t = dh_t\n")
    assert main(["check", "lstm", "--file", str(f)]) == 1
    f.write_text("dc_t = dh_t*o_t*(1 - tanh(c_t)**2) + dc_next*f_next\ndo_t = dh_t *\n")
    assert main(["check", "lstm", "--file", str(f)]) == 2
    err = capsys.readouterr().err
    assert f"{f}:2:" in err
    assert main(["check", "lstm", "--json", "N = 4(H I + H^2 + H)"]) == 0
    assert '"verdict": "equivalent"' in capsys.readouterr().out


HOSTILE = [
    "__import__('os').system('echo pwned') = 1",
    "dc_t = __import__('os').system('echo pwned')",
    "dc_t = ().__class__.__bases__[0].__subclasses__()",
    "dc_t = eval('1+1')", "dc_t = exec('import os')", "dc_t = lambda: 0", "dc_t = open('/etc/passwd').read()",
    "dc_t = c_t.__class__", "dc_t = dh_t; import os", "dc_t = `ls`", "dc_t = $(ls)", "dc_t = dh_t\x00",
    "dc_t = " + "(" * 500 + "dh_t" + ")" * 500, "dc_t = " + "-" * 1500 + "dh_t", "N = H^99999999",
    "N = H^{H^{H^{H}}}", "f'(x) = x^(10^10)", "dc_t = 1/0", "N = 1/0", "dc_t = dh_t / (dh_t - dh_t)",
    "dc_t = \\sum_t \\sum_t dh_t", "dc_t = [dh_t, [dh_t, o_t]]", "\\frac{\\partial L}{\\partial L} = 1",
    "= dc_t", "dc_t == dh_t", "dc_t = dh_t = o_t", "\\delta\\delta c_t = 1", "dW_{xf} = x_t^T^T^T",
]
ALPHABET = list("abcdefghxyzWHIPNLTt_{}()[]^'*+-/=,;.@ \\0123456789") + [
    r"\odot", r"\sigma", r"\tanh", r"\frac", r"\partial", r"\delta", r"\sum_t", r"\top", r"\left(", r"\right)",
    r"\operatorname{diag}", "dh_t", "c_{t-1}", "f_{t+1}", "W_{xf}", "dz_{f,t}", "**", "__", "import", "os",
    "(", ")", "lambda", "exec", ".__class__"]


def _inputs(n, seed=0):
    rng = random.Random(seed)
    seeds = [f for _, f, _, _ in TABLE if not f.startswith(("f'", "f(", "\\sigma'"))]
    for s in HOSTILE:
        yield s
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:  # random token soup
            yield "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))
        else:  # a valid formula, mutated
            s = list(rng.choice(seeds))
            for _ in range(rng.randint(1, 4)):
                op, i = rng.random(), rng.randrange(len(s) + 1)
                if op < 0.4 and s:
                    del s[min(i, len(s) - 1)]
                elif op < 0.8:
                    s.insert(i, rng.choice(ALPHABET))
                elif s:
                    j = rng.randrange(len(s))
                    s[min(i, len(s) - 1)], s[j] = s[j], s[min(i, len(s) - 1)]
            yield "".join(s)


def test_fuzz_never_crashes_and_never_executes(tmp_path, monkeypatch):
    """3000 random, mutated and hostile inputs: a verdict or a DeriveError, every time, quickly."""
    import builtins

    def refuse(*a, **k):
        raise AssertionError("user text reached eval/exec")
    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.chdir(tmp_path)
    counts = {"verdict": 0, "error": 0}
    slowest = 0.0
    for text in _inputs(3000):
        t0 = time.perf_counter()
        try:
            r = check("lstm", text)
            assert r.verdict in ("correct", "equivalent", "wrong")
            counts["verdict"] += 1
        except DeriveError as e:
            assert str(e) and "Traceback" not in str(e)
            counts["error"] += 1
        slowest = max(slowest, time.perf_counter() - t0)
    assert counts["verdict"] > 50 and counts["error"] > 1000, counts
    assert slowest < 10.0, slowest
    assert not list(tmp_path.iterdir())  # nothing was written
    print(f"fuzz: {sum(counts.values())} inputs, {counts}, slowest check {slowest:.3f} s")


def test_python_api():
    r = derive.check("lstm", r"dc_t = dh_t*o_t*(1 - tanh(c_t)**2)")
    assert not r.ok and r.verdict == "wrong" and r.hint.startswith("missing term")
