"""Witness 1: the derived BPTT formulas against sympy.diff of the unrolled loss.

One row per cell. A new built-in spec is tested by adding it (a missing row fails the
coverage test below); T = 3 steps, small sizes, one random 30-digit point per row.
"""

import pytest

from derive.symbolic import bptt, spec
from derive.witness import derivation as verify

#: cell -> sizes of the unrolled instance (LSTMs use I = 1 to keep sympy.diff quick)
ROWS = {
    "rnn_tanh": verify.Sizes(T=3, I=2, H=2),
    "rnn_relu": verify.Sizes(T=3, I=2, H=2),
    "lstm": verify.Sizes(T=3, I=1, H=2),
    "lstm_peephole": verify.Sizes(T=3, I=1, H=2),
    "lstm_cifg": verify.Sizes(T=3, I=1, H=2),
    "lstm_proj": verify.Sizes(T=3, I=1, H=2, P=1),
    "gru": verify.Sizes(T=3, I=2, H=2),
    "gru_cho": verify.Sizes(T=3, I=2, H=2),
}
TOLERANCE = 1e-25  # 30-digit arithmetic; a wrong term gives an O(1) relative error


def test_every_builtin_cell_has_a_row():
    assert sorted(ROWS) == sorted(spec.builtin_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ROWS))
def test_derivation_matches_sympy_diff_of_unrolled_loss(name):
    d = bptt.derive(spec.load(name))
    report = verify.compare(d, ROWS[name], seed=7)
    n_params = sum(1 for _ in d.cell.params)
    assert report.quantities >= n_params
    assert report.worst < TOLERANCE, f"{name}: worst {report.worst:.3e} at {report.worst_name}"
    assert report.jacobian_worst < TOLERANCE, f"{name}: Jacobian off by {report.jacobian_worst:.3e}"


def test_witness_catches_a_wrong_term():
    """Drop the forget-gate carry dc_{t+1} * f_{t+1} from the LSTM: the witness must see it."""
    d = bptt.derive(spec.load("rnn_tanh"))
    dh = d.adjoint("h")
    dh.carried = []  # forget what flows back from step t+1
    report = verify.compare(d, verify.Sizes(T=3, I=1, H=2), seed=7)
    assert report.worst > 1e-3


def test_witness_catches_a_wrong_sign():
    d = bptt.derive(spec.load("gru"))
    dz = d.adjoint("z")
    dz.own = [-t for t in dz.own]  # the classic (1 - z) versus z convention slip
    report = verify.compare(d, verify.Sizes(T=2, I=1, H=2), seed=3)
    assert report.worst > 1e-3
