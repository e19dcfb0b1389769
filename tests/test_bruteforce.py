"""Witness 1: the derived BPTT formulas against the derivatives of the unrolled loss.

One row per cell. A new built-in spec is tested by adding it (a missing row fails the
coverage test below); T = 2 or 3 steps, small sizes, one random 30-digit point per row.

The unrolled loss is a SymPy expression on scalar symbols; its derivatives are taken by the
chain rule in reverse over its expression DAG, each node's local derivative by ``sympy.diff``
(``verify.gradients``): the numbers ``sympy.diff`` of the whole loss gives (held against it below,
``test_chain_rule_gives_sympy_diff_numbers``) in a second instead of minutes, and like it no
adjoint formula, rule or carry of derive's is involved.
"""

import random

import pytest
import sympy as sp

from derive.symbolic import bptt, spec
from derive.witness import derivation as verify

#: cell -> sizes of the unrolled instance. The first wave runs T = 3 (LSTMs with I = 1, chosen
#: when sympy.diff expanded the whole loss); the cells from papers run T = 2 (a term carried from
#: step 2 to step 1 is still compared) with H = 2 (a transposed matrix differs from the right one), except
#: the sLSTM and the Greff full-gate-recurrence LSTM, whose unrolled loss is large: H = 1
def _small(P=None):
    return verify.Sizes(T=2, I=1, H=2, P=P)


_SCALAR = verify.Sizes(T=2, I=1, H=1)
ROWS = {
    "rnn_tanh": verify.Sizes(T=3, I=2, H=2),
    "rnn_relu": verify.Sizes(T=3, I=2, H=2),
    "lstm": verify.Sizes(T=3, I=1, H=2),
    "lstm_peephole": verify.Sizes(T=3, I=1, H=2),
    "lstm_cifg": verify.Sizes(T=3, I=1, H=2),
    "lstm_proj": verify.Sizes(T=3, I=1, H=2, P=1),
    "gru": verify.Sizes(T=3, I=2, H=2),
    "gru_cho": verify.Sizes(T=3, I=2, H=2),
    "indrnn": verify.Sizes(T=3, I=2, H=2),
    "clockwork": verify.Sizes(T=4, I=1, H=4),  # g = 4 modules of 1 unit; steps 0-3 run periods 1, 2 (and 4 at 0)
    "lstmp": _small(P=1),
    **{f"greff_{v}": _small() for v in ("v", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg")},
    "greff_fgr": _SCALAR,
    "slstm": _SCALAR,
    "janet": _small(),
    "gru1": _small(), "gru2": _small(), "gru3": _small(),
    "mgu": _small(), "mut1": _small(), "mut2": _small(), "mut3": _small(), "ugrnn": _small(),
    "minlstm": verify.Sizes(T=3, I=2, H=2), "mingru": verify.Sizes(T=3, I=2, H=2),
    "sru": _small(), "sru_proj": _small(),
    **{f"qrnn_{p}_w{k}": verify.Sizes(T=3, I=1, H=2) for p in ("f", "fo", "ifo") for k in (1, 2)},
    "plusrnn": _small(),
    # the joint layer normalisations over all 4H units make the unrolled loss ~10^4 operations per
    # step, too large for sympy.diff (minutes per derivative at T = 2): the chain rule over its DAG
    # (seconds), and central differences at 80 digits besides (``DIFFERENCES``); H = 3 so that
    # LN(c_t) over H units is not a sign (as at H = 2)
    "ln_lstm": verify.Sizes(T=2, I=2, H=3),
}
#: rows compared with ``verify.compare(method="differences")`` too: the same unrolled forward, the
#: mean summed over its units, differentiated by central differences at 80 digits (no rule of derive's)
DIFFERENCES = {"ln_lstm"}
TOLERANCE = 1e-25  # 30-digit arithmetic; a wrong term gives an O(1) relative error


def test_every_builtin_cell_has_a_row():
    assert sorted(ROWS) == sorted(spec.builtin_names())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ROWS))
def test_derivation_matches_derivatives_of_unrolled_loss(name):
    d = bptt.derive(spec.load(name))
    n_params = sum(1 for _ in d.cell.params)
    for method in ("chain", "differences") if name in DIFFERENCES else ("chain",):
        report = verify.compare(d, ROWS[name], seed=7, method=method)
        assert report.quantities >= n_params
        assert report.worst < TOLERANCE, f"{name} ({method}): worst {report.worst:.3e} at {report.worst_name}"
        assert report.jacobian_worst < TOLERANCE, f"{name} ({method}): Jacobian off by {report.jacobian_worst:.3e}"


def _spec(equations: str, extra: str = "") -> str:
    return (f'name = "f"\ninput = "x"\nstates = ["h"]\noutput = "h"\n{extra}'
            f"equations = '''\n{equations}\n'''\n")


#: the functions and constants of the spec language (issue 17), one small spec each: scalar
#: sizes, T = 3
SPEC_ROWS = {
    "exp": _spec(r"h_t = \tanh(\exp(W x_t + U h_{t-1} + b) - 1)"),
    "log": _spec(r"h_t = \log(\sigma(W x_t + U h_{t-1})) + \log(1 + h_{t-1}^2)"),
    "sqrt": _spec(r"h_t = \sqrt{1 + (W x_t + U h_{t-1})^2} - \sqrt(\sigma(V h_{t-1}))"),
    "abs": _spec(r"h_t = |W x_t + U h_{t-1} + b| \odot \tanh(h_{t-1}) - \abs(V x_t)"),
    "max_min": _spec(r"h_t = \max(W x_t, U h_{t-1}) + \min(h_{t-1}, \tanh(V x_t)) + \max(h_{t-1}, 0)"),
    "constants": _spec(r"h_t = \sigma(W x_t + U h_{t-1} - \beta) \odot \sqrt{3} + \frac{1}{2} \pi k h_{t-1}",
                       "constants = { beta = 0.25, k = -2 }\n"),
    # input taps (issue 17): x_{t-1} and x_{t-2} are zero before the first step; dx_t gets the
    # terms of steps t+1 and t+2; a tap read elementwise too (I = H)
    "input_taps": _spec(r"h_t = \tanh(W_1 x_{t-1} + W_2 x_{t-2} + W x_t + U h_{t-1} + b)"),
    "input_taps_elementwise": _spec(r"h_t = \sigma(W x_{t-1} + U h_{t-1}) \odot \tanh(x_{t-1}) + x_{t-2} \odot h_{t-1}",
                                    'sizes = { x = "H" }\n'),
    "input_is_hidden": _spec(r"h_t = \tanh(U h_{t-1} + \tanh(x_t) + b) \odot x_t + h_{t-1}",
                             'sizes = { x = "H" }\n'),
}
#: the vector-wide functions (mean, LN): H = 3 units (at H = 1 the mean is the identity and LN is
#: 0 / 0), T = 2
VECTOR_ROWS = {
    "mean": _spec(r"h_t = \tanh(W x_t + U h_{t-1} - \operatorname{mean}(U h_{t-1}) + "
                  r"\operatorname{mean}(h_{t-1} \odot x_t) \odot b)", 'sizes = { x = "H" }\n'),
    "layer_norm": _spec(r"h_t = a \odot \operatorname{LN}(W x_t + U h_{t-1}) + \operatorname{LN}(h_{t-1})"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VECTOR_ROWS))
def test_vector_wide_functions_match_derivatives_of_unrolled_loss(name):
    d = bptt.derive(spec.parse_spec(VECTOR_ROWS[name], source=f"{name}.toml"))
    report = verify.compare(d, verify.Sizes(T=2, I=1, H=3), seed=5)
    assert report.worst < TOLERANCE, f"{name}: worst {report.worst:.3e} at {report.worst_name}"
    assert report.jacobian_worst < TOLERANCE, f"{name}: Jacobian off by {report.jacobian_worst:.3e}"


def test_differences_agree_with_sympy_diff_and_catch_a_wrong_term():
    """The central-difference witness gives sympy.diff's numbers (the LSTM, 30 digits), and sees a
    dropped term of the LN-LSTM's mean (the 1/4 mean(dm_r) that reaches every block of W_h h)."""
    d = bptt.derive(spec.load("lstm"))
    sizes = verify.Sizes(T=2, I=1, H=2)
    assert verify.compare(d, sizes, seed=3, method="differences").worst < TOLERANCE
    d = bptt.derive(spec.load("ln_lstm"))
    dr = d.adjoint("r_f")
    dropped = [t for t in dr.own if t.has(verify.ir.Mean)]
    assert dropped
    dr.own = [t for t in dr.own if t is not dropped[0]]
    assert verify.compare(d, verify.Sizes(T=1, I=1, H=3), seed=3, method="differences").worst > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPEC_ROWS))
def test_spec_functions_match_derivatives_of_unrolled_loss(name):
    d = bptt.derive(spec.parse_spec(SPEC_ROWS[name], source=f"{name}.toml"))
    report = verify.compare(d, verify.Sizes(T=3, I=1, H=1), seed=5)
    assert report.worst < TOLERANCE, f"{name}: worst {report.worst:.3e} at {report.worst_name}"
    assert report.jacobian_worst < TOLERANCE, f"{name}: Jacobian off by {report.jacobian_worst:.3e}"


#: small instances whose whole unrolled loss sympy.diff expands in seconds, among them every kind of
#: node the chain rule meets: sums, products, powers (square roots, quotients), activations (smooth,
#: kinked: relu), exp, log, |.|, max and min, constants, the mean and LN over H units, a clock's mask
CHAIN_ROWS = {
    "rnn_relu": verify.Sizes(T=2, I=1, H=2),
    "gru": verify.Sizes(T=2, I=1, H=1),
    "clockwork": verify.Sizes(T=2, I=1, H=2),
    **{n: verify.Sizes(T=2, I=1, H=1) for n in ("exp", "abs", "max_min", "sqrt", "log", "constants", "input_taps")},
    **{n: verify.Sizes(T=1, I=1, H=3) for n in ("mean", "layer_norm")},
}


def _derivation(name):
    text = SPEC_ROWS.get(name) or VECTOR_ROWS.get(name)
    return bptt.derive(spec.parse_spec(text, source=f"{name}.toml") if text else spec.load(name))


@pytest.mark.parametrize("name", sorted(CHAIN_ROWS))
def test_chain_rule_gives_sympy_diff_numbers(name):
    """The witness's chain rule over the unrolled loss's DAG against ``sympy.diff`` of the whole
    loss, symbol by symbol at one 30-digit point; and the derivation compared by both."""
    d, sizes = _derivation(name), CHAIN_ROWS[name]
    rng = random.Random(11)
    w, v = verify.loss_weights(d.cell, sizes, rng)
    L, wrt, _, _ = verify.unrolled_loss(d.cell, sizes, w, v)
    at = verify.Numeric(verify.random_point(wrt, rng))
    chain = verify.gradients(L, wrt, at)
    assert len(chain) == len(wrt) and any(chain.values())
    for e in wrt:
        expected = at(sp.diff(L, e))
        assert verify._rel(chain[e], expected) < TOLERANCE, f"{name}: d/d{e} {chain[e]} by the chain rule, {expected}"
    for method in ("chain", "sympy.diff"):
        report = verify.compare(d, sizes, seed=5, method=method)
        assert report.worst < TOLERANCE and report.jacobian_worst < TOLERANCE, (method, report)


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


#: a clock of 2 modules of 2 units (H = 4), periods 1 and 3: over T = 4 steps module 2 runs at
#: steps 0 and 3 only, and W_{hh} is block-upper-triangular (its lower-left block is no parameter)
CLOCK_SPEC = _spec(r"""\tilde{h}_t = \tanh(W x_t + W_{hh} h_{t-1} + b)
h_t = m_t \odot \tilde{h}_t + (1 - m_t) \odot h_{t-1}""") + \
    '[clock]\nmodules = 2\nperiods = [1, 3]\nmask = "m"\nblock_triangular = ["W_{hh}"]\n'


@pytest.mark.slow
def test_a_clock_matches_derivatives_of_unrolled_loss():
    d = bptt.derive(spec.parse_spec(CLOCK_SPEC, source="clock.toml"))
    report = verify.compare(d, verify.Sizes(T=4, I=1, H=4), seed=5)
    # W: 4, W_hh: 12 free entries of 16, b: 4, x: 4, h_0: 4
    assert report.quantities == 4 + 12 + 4 + 4 + 4
    assert report.worst < TOLERANCE, f"worst {report.worst:.3e} at {report.worst_name}"
    assert report.jacobian_worst < TOLERANCE


def test_witness_catches_a_missing_clock_mask():
    """dh~_t = dh_t (.) m_t with the mask dropped: a module that waits would pass its gradient on."""
    d = bptt.derive(spec.load("clockwork"))
    dh_tilde = next(a for a in d.adjoints if "h_tilde" in a.target.name)
    dh_tilde.own = [t.subs(d.cell.clock.mask, 1) for t in dh_tilde.own]
    report = verify.compare(d, verify.Sizes(T=3, I=1, H=4), seed=7)
    assert report.worst > 1e-3
