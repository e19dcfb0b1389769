"""Parameter counts against what PyTorch and Keras report, over a grid of configurations."""

import itertools

import pytest

from derive.symbolic import counts, spec

torch = pytest.importorskip("torch")

GRID = list(itertools.product([3, 10], [4, 20], [1, 2, 3], [False, True], [True, False]))
TORCH_ROWS = {  # cell -> (module, extra keyword arguments)
    "rnn_tanh": (torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (torch.nn.LSTM, {}),
    "gru": (torch.nn.GRU, {}),
}


def numel(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(TORCH_ROWS))
def test_pytorch_counts(name):
    module, extra = TORCH_ROWS[name]
    cell = spec.load(name)
    for I, H, L, bi, bias in GRID:
        ref = numel(module(I, H, num_layers=L, bidirectional=bi, bias=bias, **extra))
        got = counts.count(cell, input_size=I, hidden=H, layers=L, bidirectional=bi, bias=bias,
                           convention="pytorch").total
        assert got == ref, (name, I, H, L, bi, bias)


@pytest.mark.parametrize("name", ["lstm", "lstm_proj"])
def test_pytorch_lstm_projection(name):
    """proj_size: the plain LSTM counted with W_{hr} added, and the lstm_proj cell's own shapes."""
    cell = spec.load(name)
    for (I, H, L, bi, bias), P in itertools.product(GRID, [1, 3]):
        ref = numel(torch.nn.LSTM(I, H, num_layers=L, bidirectional=bi, bias=bias, proj_size=P))
        got = counts.count(cell, input_size=I, hidden=H, layers=L, bidirectional=bi, bias=bias, proj=P,
                           convention="pytorch").total
        assert got == ref, (I, H, L, bi, bias, P)


def test_a_projecting_cell_needs_its_projection_size():
    with pytest.raises(counts.DeriveError, match="--proj P"):
        counts.count(spec.load("lstm_proj"), input_size=3, hidden=4)


def test_reference_numbers():
    """The worked numbers of reference.md."""
    def n(name, conv, **kw):
        return counts.count(spec.load(name), input_size=10, hidden=20, convention=conv, **kw).total

    assert n("lstm", "pytorch") == 2560 and n("lstm", "keras") == 2480
    assert n("gru", "pytorch") == 1920 and n("gru", "keras") == 1920 and n("gru_cho", "keras") == 1860
    assert n("rnn_tanh", "pytorch") == 640 and n("rnn_tanh", "keras") == 620
    assert n("lstm", "pytorch", layers=2, bidirectional=True) == 15040


def test_keras_counts():
    keras = pytest.importorskip("keras")
    layers = keras.layers
    rows = {
        "lstm": lambda H, b: layers.LSTM(H, use_bias=b),
        "gru": lambda H, b: layers.GRU(H, use_bias=b, reset_after=True),
        "gru_cho": lambda H, b: layers.GRU(H, use_bias=b, reset_after=False),
        "rnn_tanh": lambda H, b: layers.SimpleRNN(H, use_bias=b),
    }
    for name, make in rows.items():
        cell = spec.load(name)
        for I, H, bi, bias in itertools.product([3, 10], [4, 20], [False, True], [True, False]):
            layer = make(H, bias)
            if bi:
                layer = layers.Bidirectional(layer)
            layer.build((None, 5, I))
            got = counts.count(cell, input_size=I, hidden=H, bidirectional=bi, bias=bias, convention="keras")
            assert got.total == layer.count_params(), (name, I, H, bi, bias)


def test_formulas_are_polynomials_in_I_and_H():
    import sympy as sp

    from derive.symbolic.cell import H, I

    got = counts.layer_count(spec.load("lstm"), "pytorch")
    assert sp.expand(got - 4 * H * (I + H + 2)) == 0
    got = counts.layer_count(spec.load("gru"), "single")
    assert sp.expand(got - (3 * H * (I + H + 1) + H)) == 0  # b_{hn} is needed even with one bias per gate
