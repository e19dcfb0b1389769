"""Activation stanzas: fdiff agrees with the derivative of the explicit definition."""

import pytest
import sympy as sp

from derive import activations as acts

x = sp.Symbol("x", real=True)

#: activation -> (points away from kinks, expected range, fit for a gate)
ROWS = {
    "sigmoid": ([-3, -0.5, 0, 0.7, 4], sp.Interval.open(0, 1), True),
    "tanh": ([-3, -0.5, 0, 0.7, 4], sp.Interval.open(-1, 1), False),
    "relu": ([-3, -0.5, 0.7, 4], sp.Interval(0, sp.oo), False),
    "identity": ([-3, 0, 4], sp.S.Reals, False),
}


def test_every_activation_has_a_row():
    assert sorted(ROWS) == sorted(acts.REGISTRY)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_fdiff_matches_the_definition(name):
    cls = acts.REGISTRY[name]
    points, _, _ = ROWS[name]
    mine = sp.diff(cls(x), x)  # via fdiff, written with the output
    truth = sp.diff(cls.definition(x), x)  # SymPy differentiating the explicit formula
    for p in points:
        v = sp.Float(p, 40)
        got = mine.xreplace({x: v}) if mine.free_symbols else mine
        want = truth.subs(x, v).evalf(40)
        assert abs(sp.Float(got, 40) - want) < sp.Float("1e-35"), (name, p)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_range_and_gate_fitness(name):
    _, rng, gate = ROWS[name]
    assert acts.value_range(name) == rng
    assert acts.is_gate_activation(name) is gate


def test_derivatives_use_the_output():
    s = acts.sigmoid(x)
    assert sp.diff(s, x) == s * (1 - s)
    t = acts.tanh(x)
    assert sp.diff(t, x) == 1 - t**2
    assert sp.diff(acts.relu(x), x) == acts.step(x)
    assert acts.step(sp.Integer(0)) == 0  # PyTorch's subgradient at the kink


def test_float_arguments_evaluate_at_their_precision():
    v = acts.sigmoid(sp.Float(2, 50))
    assert abs(v - 1 / (1 + sp.exp(-sp.Float(2, 50)))) < sp.Float("1e-45")


def test_every_command_names_its_activation():
    for name, cls in acts.REGISTRY.items():
        for command in cls.commands:
            assert acts.by_command(command) is cls
