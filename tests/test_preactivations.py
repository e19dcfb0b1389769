"""The pre-activations derive names: a_{v,t} (Goodfellow ch. 10, CS231n) on every page, so that z means
the GRU's update gate alone; z_{v,t}, then u_{v,t}, in a cell that names a quantity a (z) itself. The
checker reads a claim in either letter and answers in the letter the claim wrote."""

import pytest

import derive
from derive import parse_spec
from derive.checker.claims import check
from derive.symbolic import ir

HEAD = 'name = "cell"\ninput = "x"\nstates = ["h"]\noutput = "h"\n'
Q = "'" * 3


def spec(equations: str) -> str:
    return HEAD + f"equations = {Q}\n{equations}\n{Q}\n"


#: (the spec's equations, or a built-in cell) -> the letter of its pre-activations
PREFIXES = {
    "lstm": "a",
    "gru": "a",  # z is the update gate: its pre-activation is a_{z,t}
    "ln_lstm": "z",  # its gains a_{1f} ... are parameters named a
    "a user's gate a": (spec("a_t = \\sigma(W_{xa} x_t + W_{ha} h_{t-1})\nh_t = a_t \\odot \\tanh(W_{xh} x_t)"), "z"),
    "a user's a and z": (spec("a_t = \\sigma(W_{xa} x_t + z)\nh_t = a_t \\odot \\tanh(W_{xh} x_t)"), "u"),
}


@pytest.mark.parametrize("row", PREFIXES)
def test_the_pre_activations_take_a_letter_no_name_of_the_cell_takes(row):
    given = PREFIXES[row]
    if isinstance(given, str):
        cell, letter = derive.load(row), given
    else:
        cell, letter = parse_spec(given[0]), given[1]
    assert cell.preactivation == letter
    introduced = [ir.ref(a.target) for a in cell.assignments if a.aux]
    assert introduced and all(r.base == letter for r in introduced)
    named = {ir.ref(a.target).base for a in cell.assignments if not a.aux} | {p.key.split("_")[0] for p in
                                                                                cell.params.values()}
    assert letter not in named


def test_the_gru_page_writes_z_for_the_gate_alone():
    text = derive.derive(derive.load("gru"))
    shown = " ".join(f"{a.target} {a.rhs}" for a in text.cell.assignments)
    assert "z|z|0" not in shown and "a|z|0" in shown and "z||0" in shown


#: (cell, a claim in another source's letter, the letter the report must use)
OTHER_LETTERS = [
    ("lstm", r"\frac{\partial L}{\partial W_{xf}} = \sum_t \delta z_{f,t} x_t^\top", "correct", ""),
    ("gru", r"dz_{z,t} = dz_t \odot z_t \odot (1 - z_t)", "correct", ""),
    ("lstm", r"dh_t = dy_t + W_{hi}^T dz_{i,t+1} + W_{hf}^T dz_{f,t+1} + W_{hg}^T dz_{g,t+1}", "wrong",
     "W_{ho}^T dz_{o,t+1}"),
    ("lstm", r"dh_t = dy_t + W_{hi}^T da_{i,t+1} + W_{hf}^T da_{f,t+1} + W_{hg}^T da_{g,t+1}", "wrong",
     "W_{ho}^T da_{o,t+1}"),
    ("lstm", r"dh_t = dy_t + W_{hi}^T du_{i,t+1} + W_{hf}^T du_{f,t+1} + W_{hg}^T du_{g,t+1}", "wrong",
     "W_{ho}^T du_{o,t+1}"),
]


@pytest.mark.parametrize("cell,claim,verdict,missing", OTHER_LETTERS)
def test_a_claim_in_another_letter_is_read_and_answered_in_it(cell, claim, verdict, missing):
    r = check(cell, claim)
    assert r.verdict == verdict, (r.verdict, r.how, r.hint)
    if missing:
        assert f"missing term: {missing}" in r.hint, r.hint
