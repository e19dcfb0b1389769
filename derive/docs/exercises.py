"""The Exercises page: questions whose answers ``derive check`` grades. Each row holds the claim the
page hides behind "Answer"; the build checks it and fails if the verdict is not the one the row
expects, so a page can never show an answer the checker rejects. "Find the error" rows are
published or common slips: the build runs them and prints the checker's report as the answer."""

from __future__ import annotations

from dataclasses import dataclass

from derive.checker.claims import check
from derive.errors import DeriveError


@dataclass(frozen=True)
class Exercise:
    topic: str
    question: str  # Markdown with $...$ math
    target: str  # a cell, activation or model
    claim: str  # the answer (verdict "correct") or the slip to find ("wrong")
    verdict: str = "correct"


EXERCISES = [
    Exercise("Activations", r"Write $\sigma'(x)$ in terms of $\sigma(x)$ alone.", "sigmoid",
             r"\sigma'(x) = \sigma(x)(1 - \sigma(x))"),
    Exercise("Activations", r"Write the derivative of $\tanh$ in terms of $\tanh$.", "tanh",
             r"\tanh'(x) = 1 - \tanh^2(x)"),
    Exercise("Activations", r"Softplus is $\log(1 + e^x)$. What is its derivative?", "softplus",
             r"f'(x) = \sigma(x)"),
    Exercise("Elman RNN", r"With $h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)$ and the loss reading every "
             r"$h_t$: write $\delta h_t$ in terms of $\delta y_t$ and step $t+1$'s pre-activation gradient.",
             "rnn_tanh", r"\delta h_t = \delta y_t + W_{hh}^\top \delta a_{h,t+1}"),
    Exercise("Elman RNN", r"The gradient of the recurrent matrix, summed over the run.", "rnn_tanh",
             r"\frac{\partial L}{\partial W_{hh}} = \sum_t \delta a_{h,t} h_{t-1}^\top"),
    Exercise("Elman RNN", r"The one-step state Jacobian $\partial h_t / \partial h_{t-1}$.", "rnn_tanh",
             r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(1 - h_t^2) W_{hh}"),
    Exercise("LSTM", r"The memory cell's adjoint $\delta c_t$: what reaches $c_t$ from $h_t$ and from "
             r"$c_{t+1}$?", "lstm",
             r"\delta c_t = \delta h_t \odot o_t \odot (1 - \tanh^2(c_t)) + \delta c_{t+1} \odot f_{t+1}"),
    Exercise("LSTM", r"The forget gate's pre-activation gradient $\delta a_{f,t}$.", "lstm",
             r"\delta a_{f,t} = \delta c_t \odot c_{t-1} \odot f_t \odot (1 - f_t)"),
    Exercise("LSTM", r"How many parameters does one LSTM layer have, PyTorch's way (two bias vectors)?",
             "lstm", r"N = 4H(I + H + 2)"),
    Exercise("GRU", r"With $h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}$: the update gate's adjoint "
             r"$\delta z_t$.", "gru", r"\delta z_t = \delta h_t \odot (h_{t-1} - n_t)"),
    Exercise("GRU", r"The reset gate scales $W_{hn} h_{t-1} + b_{hn}$ (PyTorch's placement). Write "
             r"$\delta r_t$.", "gru", r"\delta r_t = \delta a_{n,t} \odot (W_{hn} h_{t-1} + b_{hn})"),
    Exercise("Attention", r"$\alpha_t = \operatorname{softmax}(e_t)$ over the source positions: write "
             r"$\delta e_{t,s}$ from $\delta \alpha_{t,\cdot}$.", "seq2seq_bahdanau",
             r"\delta e_{t,s} = \alpha_{t,s} \left(\delta \alpha_{t,s} - \sum_k \alpha_{t,k} \delta \alpha_{t,k}\right)"),
    Exercise("Attention", r"The softmax output layer with cross-entropy: $\delta o_t$ for one step's loss "
             r"$-\log p_t[y_t]$.", "seq2seq_luong", r"\delta o_t = p_t - \mathbf{1}_{y_t}"),
    Exercise("Deep and residual stacks", r"A residual stack adds $x^{(l)}_t$ to layer $l$'s output. "
             r"What does the identity add to $\delta x^{(l)}_t$ of the deep residual LSTM?", "deep_residual_lstm",
             r"\delta x^{(l)}_t = W_{xi}^{(l)T} \delta z^{(l)}_{i,t} + W_{xf}^{(l)T} \delta z^{(l)}_{f,t} + "
             r"W_{xg}^{(l)T} \delta z^{(l)}_{g,t} + W_{xo}^{(l)T} \delta z^{(l)}_{o,t} + \delta x^{(l+1)}_t"),
    # find the error: slips as they are published or commonly made
    Exercise("Find the error", r"A transpose goes missing in many hand derivations of the Elman RNN:",
             "rnn_tanh", r"\delta h_t = \delta y_t + W_{hh} \delta a_{h,t+1}", "wrong"),
    Exercise("Find the error", r"The LSTM memory cell, as often first written down:", "lstm",
             r"\delta c_t = \delta h_t \odot o_t \odot (1 - \tanh^2(c_t))", "wrong"),
    Exercise("Find the error", r"The forget gate's gradient with the wrong step of $c$:", "lstm",
             r"\delta a_{f,t} = \delta c_t \odot c_t \odot f_t \odot (1 - f_t)", "wrong"),
    Exercise("Find the error", r"The softmax Jacobian applied as if it were elementwise:", "seq2seq_bahdanau",
             r"\delta e_{t,s} = \alpha_{t,s} (1 - \alpha_{t,s}) \delta \alpha_{t,s}", "wrong"),
]


def context() -> dict:
    topics: dict = {}
    for n, ex in enumerate(EXERCISES, 1):
        r = check(ex.target, ex.claim)
        if str(r.verdict) != ex.verdict:
            raise DeriveError(f"exercise {n} ({ex.topic}): derive check {ex.target} gives {r.verdict} for its "
                              f"{'answer' if ex.verdict == 'correct' else 'slip'}, not {ex.verdict}:\n{r.report()}")
        topics.setdefault(ex.topic, []).append(
            {"n": n, "question": ex.question, "target": ex.target, "claim": ex.claim, "verdict": ex.verdict,
             "hint": r.hint, "derived": r.derived, "report": r.report()})
    return {"topics": topics}
