"""derive check, issue 18: the notations the literature prints (each row cites the kind of source that
prints it), hints from one small edit, and bad input that must be one located error line (exit 2),
never a traceback, through the real command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from derive.checker.claims import check
from derive.errors import DeriveError

ROOT = Path(__file__).resolve().parent.parent

#: (target, formula, verdict, the kind of source that prints it)
NOTATIONS = [
    ("rnn_tanh", r"dh^t = dy^t + W_{hh}^T dz_h^{t+1}", "correct", "time as a superscript (lecture notes)"),
    ("lstm", r"\delta c^{t} = \delta h^{t} \odot o^{t} \odot (1 - \tanh^2(c^{t})) + \delta c^{t+1} \odot f^{t+1}",
     "correct", "Graves' thesis: superscript t"),
    ("rnn_tanh", r"\delta h^{(t)} = \delta y^{(t)} + W_{hh}^T \delta z_h^{(t+1)}", "correct",
     "Goodfellow ch. 10: h^{(t)}"),
    ("lstm", r"dc^{\langle t \rangle} = dh^{\langle t \rangle} \odot o^{\langle t \rangle} \odot (1 - "
             r"\tanh^2(c^{\langle t \rangle})) + dc^{\langle t+1 \rangle} \odot f^{\langle t+1 \rangle}", "correct",
     "Ng's course: c^{<t>}"),
    ("lstm", r"dc^{<t>} = dh^{<t>} \odot o^{<t>} \odot (1 - \tanh^2(c^{<t>})) + dc^{<t+1>} \odot f^{<t+1>}",
     "correct", "Ng's course in plain brackets"),
    ("lstm", r"\delta \mathbf{c}_t = \delta \mathbf{h}_t \odot \mathbf{o}_t \odot (1 - \tanh^2(\mathbf{c}_t)) + "
             r"\delta \mathbf{c}_{t+1} \odot \mathbf{f}_{t+1}", "correct", "bold vectors (d2l.ai, papers)"),
    ("lstm", r"\delta \boldsymbol{c}_t = \delta \boldsymbol{h}_t \odot \boldsymbol{o}_t \odot (1 - "
             r"\tanh^2(\boldsymbol{c}_t)) + \delta \boldsymbol{c}_{t+1} \odot \boldsymbol{f}_{t+1}", "correct",
     "bold symbols (Greff et al.)"),
    ("lstm", r"dc_t = \frac{\partial L}{\partial h_t} \odot o_t \odot (1 - \tanh^2(c_t)) + "
             r"\frac{\partial \mathcal{L}}{\partial c_{t+1}} \odot f_{t+1}", "correct",
     "a partial derivative on the right side (course notes)"),
    ("lstm", r"\nabla_{W_{xf}} \mathcal{L} = \sum_t \delta z_{f,t} x_t^\top", "correct", "nabla on the left (Goodfellow)"),
    ("lstm", r"\nabla_{b_f} L = \sum_t \delta z_{f,t}", "correct", "nabla with a plain L"),
    ("lstm", r"dc_{t-1} = dc_t \odot f_t + dh_{t-1} \odot o_{t-1} \odot (1 - \tanh^2(c_{t-1}))", "correct",
     "the adjoint stated at t-1 (blogs)"),
    ("lstm", r"dc_{t-1} = dc_t \odot f_t", "equivalent", "the carry a step's backward returns (CS231n)"),
    ("lstm", r"dc_{t-1} = dc_t \odot f_{t-1}", "wrong", "a carry with the wrong step"),
    ("lstm", r"dW_{xf} = \sum_{t=1}^{T} dz_{f,t} x_t^T", "correct", "a sum with bounds (Graves)"),
    ("lstm", r"dW_{xf} = \sum\limits_{t=0}^{T-1} dz_{f,t+1} x_{t+1}^T", "correct", "a sum from 0, shifted indices"),
    ("lstm", r"dW_{xf} = \sum_{t=2}^{T} dz_{f,t} x_t^T", "wrong", "a sum that skips the first step"),
    ("lstm", r"N = 4HI + 4H^2 + 8H", "correct", "sizes side by side (Keras blog posts)"),
    ("lstm", r"N = 4H(I+H+1)", "equivalent", "sizes side by side, one bias (Keras)"),
    ("rnn_tanh", r"N = IH + H^2 + 2H", "correct", "IH for I H"),
    ("clockwork", r"N = I H + \frac{5}{8} H^2 + H", "correct", "a fraction as \\frac"),
    ("clockwork", r"N = I H + (5/8) H^2 + H", "correct", "an inline fraction in brackets"),
    ("elu", r"f(x) = \begin{cases} x & x > 0 \\ \alpha (e^x - 1) & \text{otherwise} \end{cases}", "correct",
     "cases (Clevert et al. 2015)"),
    ("relu", r"f(x) = \frac{x + |x|}{2}", "correct", "|x|"),
    ("relu", r"f(x) = \frac{x + \left| x \right|}{2}", "correct", "\\left| x \\right|"),
    ("selu", r"f(x) = \lambda \begin{cases} x & x > 0 \\ \alpha e^x - \alpha & x \le 0 \end{cases}", "correct",
     "lambda and alpha as parameters (Klambauer et al. 2017)"),
    ("gelu", r"f'(x) = \Phi(x) + x \phi(x)", "correct", "phi, the normal density (Hendrycks & Gimpel)"),
    ("tanh", r"\phi'(x) = 1 - \phi(x)^2", "correct", "phi as the function's own name"),
    ("sigmoid", r"\frac{df}{dx} = f(x)(1 - f(x))", "correct", "df/dx on the left"),
]


@pytest.mark.parametrize("target,formula,verdict,source", NOTATIONS)
def test_notation_is_read(target, formula, verdict, source):
    r = check(target, formula)
    assert r.verdict == verdict, f"{source}\n{r.report()}"


#: (target, formula, a phrase of the hint): one edit of the claim makes it the derivation
HINTS = [
    ("lstm", r"dc_t = dh_t \odot o_t \odot (1 - \tanh^2(c_t)) \odot dc_{t+1} \odot f_{t+1}", "(a sum, not a product)"),
    ("gru", r"dz_{n,t} = dn_t + (1 - n_t^2)", "did you mean dn_t (1 - n_t^2) ? (a product, not a sum)"),
    ("lstm", r"dz_{g,t} = dc_t \odot i_t \odot 1 - g_t^2", "did you mean dc_t i_t (1 - g_t^2) ? (a bracket moved)"),
    ("gru", r"dr_t = dz_{n,t} \odot W_{hn} h_{t-1} + b_{hn}", "(a bracket moved)"),
    ("gru", r"dz_{z,t} = dh_t \odot (h_{t-1} - n_t) \odot z_t", "missing factor: 1 - z_t"),
    ("lstm", r"dz_{f,t} = dc_t \odot c_t \odot f_t (1 - f_t)", "(c_t at another step)"),
    # (the GRU's z swapped throughout is Olah's notation: "equivalent", test_check.py; minGRU has no such notation)
    ("mingru", r"d\tilde{h}_t = dh_t \odot (1 - z_t)", "did you mean dh_t z_t ? (z_t and 1 - z_t swapped)"),
    ("mingru", r"dh_t = dy_t + dh_{t+1} \odot z_{t+1}", "(z_{t+1} and 1 - z_{t+1} swapped)"),
    ("rnn_tanh", r"\frac{\partial h_t}{\partial h_{t-1}} = W_{hh}^T \operatorname{diag}(1 - h_t^2)",
     "transposed: the block dh_t/dh_{t-1}"),
    ("rnn_tanh", r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(1 - h_t^2) W_{hh}^T",
     "(W_{hh} not transposed)"),
    ("lstm", r"dc_t = dh_t*o_t*(1 - tanh(c_t)**2)", "missing term: dc_{t+1} ⊙ f_{t+1}"),
]


@pytest.mark.parametrize("target,formula,phrase", HINTS)
def test_a_hint_names_the_edit(target, formula, phrase):
    r = check(target, formula)
    assert r.verdict == "wrong" and phrase in r.hint, r.report()
    # the edit the hint proposes is itself right
    if r.hint.startswith("did you mean "):
        lhs = formula.split("=", 1)[0]
        proposal = r.hint[len("did you mean "):r.hint.rindex(" ? (")]
        assert check(target, f"{lhs}= {proposal}").verdict == "correct", r.hint


def _run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "derive", "check", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def _one_error_line(proc, *phrases):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    for p in phrases:
        assert p in lines[0], lines[0]


@pytest.mark.parametrize("target,formula,phrases", [
    ("lstm", "dx_t = [W_{hf}, W_{xf}]^T dz_{f,t}", ("<input>:1:", "concatenated vector (3 + 2 entries)")),
    ("lstm", "dh_t = ([h_{t-1}, x_t]^T)^T", ("<input>:1:", "concatenated vector")),
    ("lstm", r"\delta^t = \delta h_t", ("<input>:1:1:", r"write \delta h_{t}")),
    ("lstm", "dnext_c = dc_t", ("<input>:1:1:", "dnext_c is ambiguous", "dc_{t+1}")),
    ("clockwork", "N = 5/8 H^2", ("<input>:1:5:", r"\frac{5}{8} H^2")),
    ("lstm", "dc_t = dh_t + ", ("<input>:1:", "expected")),
    ("lstm", r"dc_t = \begin{align} dh_t \end{align}", ("<input>:1:", r"only \begin{cases}")),
    ("lstm", r"dW_{xf} = \sum_{k=1}^{T} dz_{f,k} x_k^T", ("<input>:1:", "sum over t")),
])
def test_unreadable_is_one_located_line(target, formula, phrases):
    _one_error_line(_run(target, formula), *phrases)


def test_log_of_a_negative_number_is_a_verdict():
    proc = _run("gelu", "f(x) = log(x)")
    assert proc.returncode == 1 and "not a real number" in proc.stdout and not proc.stderr, proc


def test_file_dev_zero_is_refused_before_reading():
    _one_error_line(_run("lstm", "--file", "/dev/zero", timeout=20), "/dev/zero", "a device")


def test_file_too_large_is_refused_by_its_size(tmp_path):
    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(5 << 20)  # sparse: nothing is written, the size says it all
    _one_error_line(_run("lstm", "--file", str(big)), "larger than the limit")


def test_file_not_utf8_is_located(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"dc_t = dh_t\n# comment\ndo_t = dh_t \xff tanh(c_t)\n")
    _one_error_line(_run("lstm", "--file", str(bad)), f"{bad}:3:13:", "not UTF-8")


def test_cyclic_let_is_located():
    _one_error_line(_run("lstm", "--let", "a = b", "--let", "b = a + 1", "dc_t = a"),
                    "--let 'b = a + 1':1:", "defined in terms of itself")


def test_let_may_not_replace_a_cell_name_but_override_may():
    _one_error_line(_run("lstm", "--let", "dh_t = 0", "dc_t = dh_t"), "--let 'dh_t = 0'", "--override")
    _one_error_line(_run("lstm", "--let", "W_{xf} = W_{hf}", "dc_t = dh_t"), "already a name of lstm")
    proc = _run("lstm", "--override", "dh_t = 0", r"dc_t = dc_{t+1} \odot f_{t+1} + dh_t")
    assert proc.returncode == 1 and "missing term" in proc.stdout, proc  # dh_t is 0 in the claim, not in the truth
    with pytest.raises(DeriveError, match="--override"):
        check("lstm", "dc_t = dh_t", let=["dh_t = 0"])


def test_the_policy_exit_status():
    """Another cell's formula exits 1 and says whose it is; a convention exits 0."""
    proc = _run("lstm_peephole", r"\frac{\partial c_t}{\partial c_{t-1}} = \operatorname{diag}(f_t)")
    assert proc.returncode == 1 and "this is the formula for lstm" in proc.stdout, proc
    proc = _run("gru", r"dr_t = h_{t-1} \odot (W_{hn}^T dz_{n,t})")
    assert proc.returncode == 0 and "equivalent under a convention" in proc.stdout, proc


def test_an_error_points_at_the_typed_column():
    """Rewritten spellings (a bold name, a superscript time) keep the column of the text as typed."""
    with pytest.raises(DeriveError) as e:
        check("lstm", r"dc_t = \mathbf{h}^{(t)} + nope_t")
    assert e.value.pos.column == 27, e.value
