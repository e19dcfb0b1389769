"""The example notebook (``examples/derive.ipynb``), executed with nbclient: it runs without an error,
and what a cell, a derivation, its steps and a check show in Jupyter is the derivation's.

The expected LaTeX is the GRU's, as ``derive show gru --latex`` prints it (``tests/test_site.py``
checks those formulas with ``derive check``); the rich forms themselves are checked below too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import derive

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "derive.ipynb"


@pytest.fixture(scope="module")
def executed():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return {c["id"]: c for c in nb.cells}


def shown(cell, mime: str) -> str:
    """The ``mime`` form of a code cell's result (its execute_result)."""
    (result,) = [o for o in cell["outputs"] if o["output_type"] == "execute_result"]
    return result["data"][mime]


def test_no_cell_fails(executed):
    errors = [(i, o["ename"]) for i, c in executed.items() if c["cell_type"] == "code"
              for o in c["outputs"] if o["output_type"] == "error"]
    assert errors == []


def test_the_cell_shows_its_forward_step(executed):
    latex = shown(executed["load"], "text/latex")
    assert r"a_{n,t} &= W_{xn} x_t + r_t \odot \left(W_{hn} h_{t-1} + b_{hn}\right) + b_n" in latex
    assert r"h_t &= z_t \odot h_{t-1} + n_t \odot \left(1 - z_t\right)" in latex


def test_the_derivation_shows_the_grus_dh(executed):
    latex = shown(executed["derive"], "text/latex")
    dh = next(line for line in latex.splitlines() if line.startswith(r"\delta h_t &="))
    for term in (r"\delta y_t", r"W_{hr}^\top \delta a_{r,t+1}", r"W_{hz}^\top \delta a_{z,t+1}",
                 r"W_{hn}^\top \left(\delta a_{n,t+1} \odot r_{t+1}\right)", r"\delta h_{t+1} \odot z_{t+1}"):
        assert term in dh, (term, dh)
    assert r"\frac{\partial L}{\partial W_{hn}} &= \sum_t \left(\delta a_{n,t} \odot r_t\right) h_{t-1}^\top" in latex


def test_the_steps_show_the_local_derivatives_and_the_chain_rule(executed):
    latex = shown(executed["steps"], "text/latex")
    assert r"\frac{\partial r_t}{\partial a_{r,t}} &= \operatorname{diag}\left(r_t \odot \left(1 - r_t\right)\right)" in latex
    assert (r"\delta z_t &= \left(\frac{\partial h_t}{\partial z_t}\right)^\top \delta h_t \\" "\n"
            r" &= \operatorname{diag}\left(h_{t-1} - n_t\right) \delta h_t \\" "\n"
            r" &= \delta h_t \odot \left(h_{t-1} - n_t\right)") in latex


def test_the_checks_show_their_verdicts(executed):
    assert 'data-verdict="correct"' in shown(executed["check-correct"], "text/html")
    wrong = shown(executed["check-wrong"], "text/html")
    assert 'data-verdict="wrong"' in wrong and "counterexample" in wrong
    assert shown(executed["check-correct"], "text/plain").startswith("Result(verdict=")


def test_the_kernel_runs(executed):
    out = shown(executed["kernel"], "text/plain")
    assert out.startswith("((5, 2, 4),") and "'W_hn'" in out and "'x'" in out


@pytest.mark.parametrize("name", ["gru", "lstm", "clockwork", "ln_lstm", "qrnn_fo_w2"])
def test_the_rich_forms_are_the_derivations(name):
    """Without a kernel: each adjoint the derivation shows is the one the page shows (``summary.collect``)."""
    d = derive.derive(derive.load(name))
    data = derive.collect(d)
    latex = d._repr_latex_()
    for a in [*data["adjoints"], data["input_gradient"]]:
        assert f"{a['lhs']['latex']} &= {a['rhs']['latex']}" in latex
    assert latex.count("$$") == 6  # three display blocks: forward, adjoints, parameter gradients
    steps = derive.steps(d)._repr_latex_()
    for row in data["steps"]["rows"]:
        assert f"{row['lhs']} &= {row['rhs']}" in steps
    assert d.cell._repr_latex_().startswith("$$") and "<svg" in d.cell._repr_svg_()  # the step's diagram
