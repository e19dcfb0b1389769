"""A corpus of published formulas, each in its source's own notation, with the verdict the math
gives (issue 18, item 5): right formulas and the typos that circulate. ``derive check`` must get
every verdict, exit code included, with no traceback; the median and slowest check are measured.

Sources are cited per row. Where a source names things its own way (Goodfellow's U, W, b for the
Elman RNN's weights, Karpathy's code names) the row carries the --let that says so."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from derive.checker.claims import check

ROOT = Path(__file__).resolve().parent.parent
GF = ("U = W_{xh}", "W = W_{hh}", "b = b_h")  # Goodfellow et al. (2016), ch. 10: h = tanh(b + W h + U x)
KARPATHY = "Karpathy (2015), min-char-rnn.py"
CS231N = "CS231n (Stanford) assignment 3, rnn_layers.py / lstm_step_backward"
GOODFELLOW = "Goodfellow, Bengio & Courville (2016), Deep Learning, sec. 10.2.2"
COLAH = "Olah (2015), Understanding LSTM Networks (colah.github.io), names C_t, \\tilde{C}_t"
GRAVES = "Graves (2012), Supervised Sequence Labelling with RNNs, sec. 4.6 (peephole LSTM)"
GREFF = "Greff et al. (2017), LSTM: A Search Space Odyssey, appendix (vanilla LSTM backward pass)"
D2L = "Zhang et al., Dive into Deep Learning (d2l.ai), sec. 10.2 GRU"
TORCH = "PyTorch documentation, torch.nn.LSTM / GRU / RNN (weight shapes)"
KERAS = "Keras documentation, LSTM / GRU / SimpleRNN (count_params)"
PINARD = "Liu Jianping (Pinard), LSTM模型与前向反向传播算法 (cnblogs), notation \\delta_h^{(t)}"
HANBT = "hanbt, 零基础入门深度学习(6) 长短时记忆网络 (zybuluo), notation \\delta^t, \\delta_{o,t}"
NG = "Ng, Deep Learning Specialization, course 5 week 1 (a^{\\langle t \\rangle} notation)"
CHO = "Cho et al. (2014), GRU with the reset before the matmul"
CHUNG = "Chung et al. (2014) / colah: h_t = (1 - z_t) h_{t-1} + z_t \\tilde{h}_t (z's roles swapped)"
PASCANU = "Pascanu, Mikolov & Bengio (2013), On the difficulty of training RNNs (column convention)"
PAPERS = "the activation's paper (Clevert 2015 ELU, Klambauer 2017 SELU, Hendrycks 2016 GELU, ...)"
TEXTBOOK = "textbook derivative (Goodfellow ch. 6, CS231n notes)"

#: (target, formula, verdict, source, lets)
CORPUS = [
    # ---- Elman RNN (rnn_tanh: h_t = tanh(W_xh x_t + W_hh h_{t-1} + b_h))
    ("rnn_tanh", r"dz_{h,t} = (1 - h_t * h_t) * dh_t", "correct", KARPATHY + " (dhraw)", ()),
    ("rnn_tanh", r"dW_{xh} = sum_t dz_{h,t} @ x_t.T", "correct", KARPATHY, ()),
    ("rnn_tanh", r"dW_{hh} = sum_t dz_{h,t} @ prev_h.T", "correct", KARPATHY + " (hs[t-1])", ()),
    ("rnn_tanh", r"dW_{hh} = sum_t dz_{h,t} @ h_t.T", "wrong", KARPATHY + ", typo hs[t]", ()),
    ("rnn_tanh", r"db_h = sum_t dz_{h,t}", "correct", KARPATHY, ()),
    ("rnn_tanh", r"dh_t = dy_t + W_{hh}.T @ dz_{h,t+1}", "correct", KARPATHY + " (dhnext)", ()),
    ("rnn_tanh", r"dh_t = dy_t + W_{hh} @ dz_{h,t+1}", "wrong", KARPATHY + ", typo: Whh not transposed", ()),
    ("rnn_tanh", r"dh_t = dy_t + W_{hh}^T dz_{h,t}", "wrong", "a common typo: the carry from the same step", ()),
    ("rnn_tanh", r"\nabla_{h^{(t)}} L = W^\top \operatorname{diag}(1 - (h^{(t+1)})^2) (\nabla_{h^{(t+1)}} L) "
                 r"+ \nabla_{y^{(t)}} L", "correct", GOODFELLOW + " eq. 10.21", GF),
    ("rnn_tanh", r"\nabla_{W} L = \sum_t \operatorname{diag}(1 - (h^{(t)})^2) (\nabla_{h^{(t)}} L) h^{(t-1)\top}",
     "correct", GOODFELLOW + " eq. 10.26", GF),
    ("rnn_tanh", r"\nabla_{U} L = \sum_t \operatorname{diag}(1 - (h^{(t)})^2) (\nabla_{h^{(t)}} L) x^{(t)\top}",
     "correct", GOODFELLOW + " eq. 10.28", GF),
    ("rnn_tanh", r"\nabla_{b} L = \sum_t \operatorname{diag}(1 - (h^{(t)})^2) \nabla_{h^{(t)}} L", "correct",
     GOODFELLOW + " eq. 10.23", GF),
    ("rnn_tanh", r"\nabla_{W} L = \sum_t \operatorname{diag}(1 - (h^{(t)})^2) (\nabla_{h^{(t)}} L) h^{(t)\top}",
     "wrong", GOODFELLOW + ", h^{(t)} for h^{(t-1)}", GF),
    ("rnn_tanh", r"\nabla_{W} L = \sum_{t=1}^{T} \operatorname{diag}(1 - (\mathbf{h}^{(t)})^2) "
                 r"\frac{\partial L}{\partial \mathbf{h}^{(t)}} \mathbf{h}^{(t-1)\top}", "correct",
     GOODFELLOW + ", bold vectors", GF),
    ("rnn_tanh", r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(1 - h_t^2) W_{hh}", "correct",
     PASCANU, ()),
    ("rnn_tanh", r"\frac{\partial h_t}{\partial h_{t-1}} = W_{hh}^T \operatorname{diag}(1 - h_t^2)", "wrong",
     PASCANU + " in the row convention: the transpose", ()),
    ("rnn_tanh", r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(1 - h_{t-1}^2) W_{hh}", "wrong",
     "a typo: the derivative at h_{t-1}", ()),
    ("rnn_tanh", r"N = H I + H^2 + 2H", "correct", TORCH + " (bias_ih and bias_hh)", ()),
    ("rnn_tanh", r"N = IH + HH + H", "equivalent", KERAS + " SimpleRNN", ()),
    ("rnn_tanh", r"N = H(I + H + 1)", "equivalent", "textbook count, one bias", ()),
    ("rnn_tanh", r"N = H(I + H)", "equivalent", TORCH + " bias=False", ()),
    ("rnn_tanh", r"N = 2H(I + H + 1)", "wrong", "a count with two weight matrices per input", ()),
    ("rnn_relu", r"dz_{h,t} = dh_t \odot \mathbb{1}[z_{h,t} > 0]", "correct", "Le et al. (2015), IRNN", ()),
    ("rnn_relu", r"dz_{h,t} = dh_t \odot (1 - h_t^2)", "wrong", "the tanh RNN's formula on the ReLU RNN", ()),
    ("rnn_tanh", r"\delta_h^{(t)} = \delta_y^{(t)} + W_{hh}^T (\delta_h^{(t+1)} \odot (1 - (h^{(t+1)})^2))",
     "correct", PINARD + " (RNN post)", ()),
    ("rnn_tanh", r"dh^{\langle t \rangle} = dy^{\langle t \rangle} + W_{hh}^T dz_h^{\langle t+1 \rangle}", "correct",
     NG, ()),
    ("rnn_tanh", r"dh^{\langle t \rangle} = dy^{\langle t \rangle} + W_{hh}^T dz_h^{\langle t \rangle}", "wrong",
     NG + ", the carry from the same step", ()),
    ("rnn_tanh", r"da^{\langle t \rangle} = dy^{\langle t \rangle} + W_{hh}^T dz_h^{\langle t+1 \rangle}", "error",
     NG + ": a is not this cell's name (--let cannot rename an adjoint)", ()),
    # ---- LSTM (lstm, PyTorch's gates i, f, g, o)
    ("lstm", r"do_t = dh_t \odot \tanh(c_t)", "correct", CS231N, ()),
    ("lstm", r"dc_t = dh_t \odot o_t \odot (1 - \tanh^2(c_t)) + dc_{t+1} \odot f_{t+1}", "correct", CS231N, ()),
    ("lstm", r"df_t = dc_t \odot c_{t-1}", "correct", CS231N + " (prev_c)", ()),
    ("lstm", r"di_t = dc_t \odot g_t", "correct", CS231N, ()),
    ("lstm", r"dg_t = dc_t \odot i_t", "correct", CS231N, ()),
    ("lstm", r"dz_{i,t} = di_t \odot i_t \odot (1 - i_t)", "correct", CS231N + " (dai)", ()),
    ("lstm", r"dz_{g,t} = dg_t \odot (1 - g_t^2)", "correct", CS231N + " (dag)", ()),
    ("lstm", r"dz_{o,t} = do_t \odot o_t \odot (1 - o_t)", "correct", CS231N + " (dao)", ()),
    ("lstm", r"dz_{f,t} = df_t * f_t * (1 - f_t)", "correct", CS231N + " (daf)", ()),
    ("lstm", r"dc_{t-1} = dc_t \odot f_t", "equivalent", CS231N + " (dprev_c = dnext_c * f)", ()),
    ("lstm", r"dh_{t-1} = W_{hi}^T dz_{i,t} + W_{hf}^T dz_{f,t} + W_{hg}^T dz_{g,t} + W_{ho}^T dz_{o,t}",
     "equivalent", CS231N + " (dprev_h = Wh^T da)", ()),
    ("lstm", r"dx_t = W_{xi}^T dz_{i,t} + W_{xf}^T dz_{f,t} + W_{xg}^T dz_{g,t} + W_{xo}^T dz_{o,t}", "correct",
     CS231N + " (dx = Wx^T da)", ()),
    ("lstm", r"df_t = dc_t \odot c_t", "wrong", CS231N + ", typo next_c for prev_c", ()),
    ("lstm", r"dg_t = dc_t \odot i_t \odot (1 - g_t^2)", "wrong", "dg_t confused with dz_{g,t}", ()),
    ("lstm", r"dz_{o,t} = dh_t \odot \tanh(c_t) \odot o_t", "wrong", "a missing factor (1 - o_t)", ()),
    ("lstm", r"dc_t = dh_t \odot o_t \odot (1 - \tanh^2(c_t))", "wrong", "the carry forgotten", ()),
    ("lstm", r"dc_t = dh_t \odot o_t \odot (1 - \tanh(c_t)^2) + dc_{t+1} \odot f_t", "wrong",
     "a wrong time index on f", ()),
    ("lstm", r"dc_t = dh_t \odot (1 - \tanh^2(c_t)) + dc_{t+1} \odot f_{t+1}", "wrong", "o_t dropped", ()),
    ("lstm", r"\delta \tilde{C}_t = \delta C_t \odot i_t", "correct", COLAH, ()),
    ("lstm", r"\delta C_{t-1} = \delta C_t \odot f_t", "equivalent", COLAH + " (the carry)", ()),
    ("lstm", r"\delta C_t = \delta h_t \odot o_t \odot (1 - \tanh^2(C_t)) + \delta C_{t+1} \odot f_{t+1}",
     "correct", COLAH, ()),
    ("lstm", r"\delta_C^{(t)} = \delta_C^{(t+1)} \odot f^{(t+1)} + \delta_h^{(t)} \odot o^{(t)} "
             r"\odot (1 - \tanh^2(C^{(t)}))", "correct", PINARD, ()),
    ("lstm", r"\delta_C^{(t)} = \delta_C^{(t+1)} \odot f^{(t)} + \delta_h^{(t)} \odot o^{(t)} "
             r"\odot (1 - \tanh^2(C^{(t)}))", "wrong", PINARD + ", f^{(t)} for f^{(t+1)}", ()),
    ("lstm", r"\frac{\partial L}{\partial W_{xf}} = \sum_t \delta z_{f,t} x_t^\top", "correct", "derive's pages", ()),
    ("lstm", r"\frac{\partial L}{\partial W_{xf}} = \sum_t x_t \delta z_{f,t}^\top", "wrong", "transposed gradient", ()),
    ("lstm", r"dW_{hf} = \sum_{t=1}^{T} dz_{f,t} h_{t-1}^\top", "correct", GRAVES + " bounds", ()),
    ("lstm", r"dW_{hf} = \sum_{t=0}^{T-1} dz_{f,t+1} h_t^\top", "correct", "a sum from 0 with shifted indices", ()),
    ("lstm", r"dW_{hf} = \sum_{t=1}^{T-1} dz_{f,t} h_{t-1}^\top", "wrong", "a sum that misses the last step", ()),
    ("lstm", r"dW_{if} = sum_t dz_{f,t} @ x_t.T", "correct", TORCH + " names (weight_ih's f block)", ()),
    ("lstm", r"db_{if} = \sum_t \delta z_{f,t}", "correct", TORCH + " (bias_ih, same gradient as bias_hh)", ()),
    ("lstm", r"db_f = \sum_t \delta f_t", "wrong", "the gate's gradient for its pre-activation's", ()),
    ("lstm", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)", "correct",
     "Hochreiter & Schmidhuber's constant error carousel with a forget gate (Gers et al. 2000)", ()),
    ("lstm", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(1 - f_t)", "wrong", "a sign typo", ()),
    ("lstm", r"\frac{\partial h_t}{\partial c_{t-1}} = \operatorname{diag}(o_t \odot (1 - \tanh^2(c_t)) \odot f_t)",
     "correct", "chain rule through c_t", ()),
    ("lstm", r"N = 4(H I + H^2 + 2H)", "correct", TORCH, ()),
    ("lstm", r"N = 4HI + 4H^2 + 8H", "correct", TORCH + ", letters side by side", ()),
    ("lstm", r"N = 4H(I + H + 1)", "equivalent", KERAS + " LSTM", ()),
    ("lstm", r"N = 4(IH + H^2 + H)", "equivalent", "textbook count (one bias)", ()),
    ("lstm", r"N = 4H(I + H)", "equivalent", TORCH + " bias=False", ()),
    ("lstm", r"N = 4H(I + H + 2) + 4", "wrong", "an extra 4", ()),
    ("lstm", r"N = 3H(I + H + 1)", "wrong", "the GRU's count on an LSTM", ()),
    ("lstm_proj", r"N = 4H(I + P) + 8H + P H", "correct", TORCH + " proj_size", ()),
    # ---- the policy: another cell's formula is wrong
    ("lstm_peephole", r"dc_t = dh_t \odot o_t \odot (1 - \tanh^2(c_t)) + dc_{t+1} \odot f_{t+1}", "wrong",
     "the plain LSTM's dc_t on a peephole LSTM", ()),
    ("lstm_peephole", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)", "wrong",
     "the plain LSTM's Jacobian on a peephole LSTM", ()),
    ("lstm_cifg", r"dz_{i,t} = dc_t \odot g_t \odot i_t \odot (1 - i_t)", "wrong",
     "the plain LSTM's input gate on CIFG (Greff et al. 2017)", ()),
    ("lstm_cifg", r"dz_{i,t} = dc_t \odot (g_t - c_{t-1}) \odot i_t \odot (1 - i_t)", "correct", GREFF + " CIFG", ()),
    # ---- peephole LSTM (Graves' notation: superscript times)
    ("lstm_peephole", r"\delta c^{t} = \delta h^{t} \odot o^{t} \odot (1 - \tanh^2(c^{t})) + f^{t+1} \odot \delta c^{t+1}"
                      r" + p_i \odot \delta z_i^{t+1} + p_f \odot \delta z_f^{t+1} + p_o \odot \delta z_o^{t}",
     "correct", GRAVES, ()),
    ("lstm_peephole", r"\delta c^{t} = \delta h^{t} \odot o^{t} \odot (1 - \tanh^2(c^{t})) + f^{t+1} \odot "
                      r"\delta c^{t+1} + p_i \odot \delta z_i^{t+1} + p_f \odot \delta z_f^{t+1}", "wrong",
     GRAVES + ", the output peephole's term forgotten", ()),
    ("lstm_peephole", r"dp_f = \sum_t dz_{f,t} \odot c_{t-1}", "correct", GRAVES + " (peephole weight gradient)", ()),
    ("lstm_peephole", r"dp_o = \sum_t dz_{o,t} \odot c_{t-1}", "wrong", "the output peephole sees c_t, not c_{t-1}", ()),
    ("lstm_peephole", r"dp_o = \sum_t dz_{o,t} \odot c_t", "correct", "Gers & Schmidhuber (2000)", ()),
    # ---- Greff et al.'s vanilla LSTM, in the paper's names (z block input, y output, R recurrent weights)
    ("greff_v", r"\delta y^t = \delta y_{loss}^t + R_z^T \delta z_z^{t+1} + R_i^T \delta z_i^{t+1} "
                r"+ R_f^T \delta z_f^{t+1} + R_o^T \delta z_o^{t+1}", "correct", GREFF, ()),
    ("greff_v", r"\delta z_o^t = \delta y^t \odot \tanh(c^t) \odot \sigma'(z_{o}^t)", "correct", GREFF, ()),
    ("greff_v", r"\delta c^t = \delta y^t \odot o^t \odot (1 - \tanh^2(c^t)) + p_o \odot \delta z_o^t + p_i \odot "
                r"\delta z_i^{t+1} + p_f \odot \delta z_f^{t+1} + \delta c^{t+1} \odot f^{t+1}", "correct", GREFF, ()),
    ("greff_v", r"\delta z_f^t = \delta c^t \odot c^{t-1} \odot \sigma'(z_f^t)", "correct", GREFF, ()),
    ("greff_v", r"\delta z_i^t = \delta c^t \odot z^t \odot \sigma'(z_i^t)", "correct", GREFF, ()),
    ("greff_v", r"\delta z_z^t = \delta c^t \odot i^t \odot (1 - (z^t)^2)", "correct", GREFF, ()),
    ("greff_v", r"\delta z_i^t = \delta c^t \odot z^t \odot \sigma'(z_f^t)", "wrong", GREFF + ", gate mixed up", ()),
    ("greff_v", r"dR_z = \sum_{t=0}^{T-1} \delta z_z^{t+1} (y^t)^\top", "correct", GREFF + " (sum from 0)", ()),
    ("greff_v", r"dp_i = \sum_{t=0}^{T-1} c^t \odot \delta z_i^{t+1}", "correct", GREFF, ()),
    # ---- GRU (gru: PyTorch/d2l, h_t = z_t h_{t-1} + (1 - z_t) n_t)
    ("gru", r"dn_t = dh_t \odot (1 - z_t)", "correct", D2L, ()),
    ("gru", r"dz_t = dh_t \odot (h_{t-1} - n_t)", "correct", D2L, ()),
    ("gru", r"dz_{z,t} = dh_t \odot (h_{t-1} - n_t) \odot z_t \odot (1 - z_t)", "correct", D2L, ()),
    ("gru", r"dn_t = dh_t \odot z_t", "equivalent", CHUNG + " on PyTorch's GRU: right in Olah's notation", ()),
    ("gru", r"dz_t = dh_t \odot (n_t - h_{t-1})", "equivalent", CHUNG + " on PyTorch's GRU: right in Olah's notation", ()),
    ("gru", r"dr_t = dz_{n,t} \odot (W_{hn} h_{t-1} + b_{hn})", "correct", TORCH + " GRU", ()),
    ("gru", r"dr_t = h_{t-1} \odot (W_{hn}^T dz_{n,t})", "equivalent", CHO + " (reset placement)", ()),
    ("gru", r"dW_{hn} = \sum_t (dz_{n,t} \odot r_t) h_{t-1}^T", "correct", TORCH + " GRU", ()),
    ("gru", r"dW_{hn} = \sum_t dz_{n,t} h_{t-1}^T", "wrong", "the reset gate forgotten", ()),
    ("gru", r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(z_t)", "wrong",
     "the direct path only", ()),
    ("gru", r"N = 3(H I + H^2 + 2H)", "correct", TORCH + " GRU", ()),
    ("gru", r"N = 3H(I + H + 2)", "correct", KERAS + " GRU reset_after=True", ()),
    ("gru", r"N = 3H(I + H + 1)", "equivalent", "textbook count, one bias", ()),
    ("gru_cho", r"d\tilde{h}_t = dh_t \odot (1 - z_t)", "correct", CHO, ()),
    ("gru_cho", r"dr_t = h_{t-1} \odot (W_{hh}^T dz_{\tilde{h},t})", "correct", CHO, ()),
    ("gru_cho", r"dW_{hh} = \sum_t dz_{\tilde{h},t} (r_t \odot h_{t-1})^T", "correct", CHO, ()),
    ("gru_cho", r"dW_{hh} = \sum_t dz_{\tilde{h},t} h_{t-1}^T", "wrong", CHO + ", the reset forgotten", ()),
    ("gru_cho", r"N = 3(H I + H^2 + H)", "correct", CHO, ()),
    # ---- activations
    ("sigmoid", r"\sigma'(x) = \sigma(x)(1 - \sigma(x))", "correct", TEXTBOOK, ()),
    ("sigmoid", r"\sigma'(x) = \sigma(x)(1 + \sigma(x))", "wrong", "a sign typo", ()),
    ("sigmoid", r"f'(x) = \frac{e^{-x}}{(1 + e^{-x})^2}", "correct", TEXTBOOK, ()),
    ("tanh", r"f'(x) = 1 - \tanh^2(x)", "correct", TEXTBOOK, ()),
    ("tanh", r"\phi'(x) = 1 - \phi(x)^2", "correct", "\\phi as the function's name", ()),
    ("tanh", r"f'(x) = \operatorname{sech}^2(x)", "error", "sech is not a known function", ()),
    ("tanh", r"f'(x) = 1 - \tanh(x)", "wrong", "a missing square", ()),
    ("relu", r"f'(x) = \begin{cases} 1 & x > 0 \\ 0 & \text{otherwise} \end{cases}", "correct", TORCH + " ReLU", ()),
    ("relu", r"f(x) = \frac{x + |x|}{2}", "correct", "the absolute-value form", ()),
    ("leaky_relu", r"f'(x) = \begin{cases} 1 & \text{if } x > 0 \\ \alpha & \text{if } x \le 0 \end{cases}",
     "correct", "Maas et al. (2013), alpha = 0.01 (PyTorch's default)", ()),
    ("leaky_relu", r"f'(x) = \begin{cases} 1 & x > 0 \\ 0.1 & x \le 0 \end{cases}", "wrong",
     "a slope of 0.1 is not PyTorch's default 0.01", ()),
    ("elu", r"f(x) = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & x \le 0 \end{cases}", "correct", PAPERS, ()),
    ("elu", r"f'(x) = \begin{cases} 1 & x > 0 \\ f(x) + \alpha & x \le 0 \end{cases}", "correct", PAPERS, ()),
    ("elu", r"f'(x) = \begin{cases} 1 & x > 0 \\ \alpha e^x & x \le 0 \end{cases}", "correct", PAPERS, ()),
    ("elu", r"f'(x) = \begin{cases} 1 & x > 0 \\ e^x - 1 & x \le 0 \end{cases}", "wrong", "f for f'", ()),
    ("selu", r"f(x) = \lambda \begin{cases} x & x > 0 \\ \alpha e^x - \alpha & x \le 0 \end{cases}", "correct",
     PAPERS + " (SELU)", ()),
    ("gelu", r"f(x) = x \Phi(x)", "correct", PAPERS + " (GELU)", ()),
    ("gelu", r"f'(x) = \Phi(x) + x \phi(x)", "correct", PAPERS + " (GELU)", ()),
    ("gelu", r"f(x) = 0.5 x (1 + \tanh(\sqrt{2/\pi} (x + 0.044715 x^3)))", "wrong", "the tanh approximation", ()),
    ("gelu", r"f(x) = \log(x)", "wrong", "complex for x < 0: a verdict, not a crash", ()),
    ("silu", r"f'(x) = \sigma(x) (1 + x (1 - \sigma(x)))", "correct", "Ramachandran et al. (2017)", ()),
    ("softplus", r"f'(x) = \sigma(x)", "correct", TEXTBOOK, ()),
    ("softsign", r"f'(x) = \frac{1}{(1 + |x|)^2}", "correct", "Bergstra et al. (2009)", ()),
    ("mish", r"f(x) = x \tanh(\log(1 + e^x))", "correct", "Misra (2019)", ()),
    # ---- the unreadable (exit 2): a located error, never a traceback
    ("lstm", r"dnext_c = dc_t", "error", CS231N + ": dnext_c means another thing here", ()),
    ("lstm", r"\delta^t = \delta h_t", "error", HANBT + ": \\delta^t names no vector", ()),
    ("lstm", r"dh_t = ([h_{t-1}, x_t]^T)^T", "error", "a concatenated vector for an adjoint", ()),
    ("lstm", r"dx_t = [W_{hf}, W_{xf}]^T dz_{f,t}", "error", "colah's concatenated weights: both blocks", ()),
    ("clockwork", r"N = I H + 5/8 H^2 + H", "error", "an inline fraction before a product is ambiguous", ()),
    ("clockwork", r"N = I H + \frac{5}{8} H^2 + H", "correct", "Koutnik et al. (2014), 4 modules", ()),
]


@pytest.fixture(scope="module")
def timings():
    out: list = []
    yield out
    if out:
        print(f"\ncorpus: {len(out)} checks, median {statistics.median(out):.3f} s, slowest {max(out):.3f} s")


@pytest.mark.parametrize("target,formula,verdict,source,lets", CORPUS, ids=[f"{i}-{r[0]}" for i, r in enumerate(CORPUS)])
def test_published_formula(target, formula, verdict, source, lets, timings):
    from derive.errors import DeriveError
    t0 = time.perf_counter()
    try:
        r = check(target, formula, let=lets)
    except DeriveError as e:
        timings.append(time.perf_counter() - t0)
        assert verdict == "error", f"{source}: {e}"
        text = str(e)
        assert "\n" not in text and "Traceback" not in text and ":1:" in text, text
        return
    timings.append(time.perf_counter() - t0)
    assert r.verdict == verdict, f"{source}\n{r.report()}"
    if verdict == "wrong":
        assert r.counterexample, r.report()


def test_the_corpus_is_broad():
    sources = {s.split(",")[0].split(" (")[0] for *_, s, _ in CORPUS}
    assert len(CORPUS) >= 100 and len(sources) >= 20, (len(CORPUS), len(sources))
    verdicts = [v for _, _, v, _, _ in CORPUS]
    assert verdicts.count("wrong") >= 30 and verdicts.count("correct") >= 50 and verdicts.count("equivalent") >= 8


def test_a_file_of_formulas_runs_in_seconds(tmp_path):
    """The LSTM rows as one --file: a wrong one makes the exit status 1; it runs in seconds."""
    rows = [f for t, f, v, _, lets in CORPUS if t == "lstm" and v != "error" and not lets]
    path = tmp_path / "lstm.txt"
    path.write_text("# LSTM formulas from the corpus\n" + "\n".join(rows) + "\n", encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "derive", "check", "lstm", "--file", str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.count("\nwrong: ") + proc.stdout.startswith("wrong: ") == sum(
        1 for t, f, v, _, lets in CORPUS if t == "lstm" and v == "wrong" and not lets)
    assert elapsed < 120, elapsed
    print(f"\n--file with {len(rows)} LSTM formulas: {elapsed:.1f} s")
