"""Every statement of the "Outputs and states" page about what PyTorch, Keras and derive return, checked
against the framework itself: one check per fact id of derive.docs.outputs.FACTS (a fact without a check,
or a check without a fact, fails)."""

import numpy as np
import pytest
import torch

from derive.docs import outputs
from derive.runtime.kernels import Stack, kernel

T, B, I, H, P = 5, 3, 4, 6, 2


def x_torch(seed=0):
    torch.manual_seed(seed)
    return torch.randn(T, B, I)


def x_keras():
    return np.random.default_rng(0).normal(size=(B, T, I)).astype("float32")


def keras_np(values):
    import keras
    return [keras.ops.convert_to_numpy(v) for v in values]


def torch_returns():
    x = x_torch()
    for module in (torch.nn.RNN(I, H), torch.nn.GRU(I, H)):
        output, h_n = module(x)
        assert isinstance(h_n, torch.Tensor)
    output, state = torch.nn.LSTM(I, H)(x)
    assert isinstance(state, tuple) and len(state) == 2


def torch_output():
    m = torch.nn.GRU(I, H, num_layers=2, bidirectional=True)
    output, h_n = m(x_torch())
    assert output.shape == (T, B, 2 * H)
    top_forward, top_reverse = h_n[2], h_n[3]
    assert torch.allclose(output[-1, :, :H], top_forward) and torch.allclose(output[0, :, H:], top_reverse)
    batch_first = torch.nn.GRU(I, H, num_layers=2, bidirectional=True, batch_first=True)
    batch_first.load_state_dict(m.state_dict())
    out_bf, _ = batch_first(x_torch().transpose(0, 1))
    assert out_bf.shape == (B, T, 2 * H) and torch.allclose(out_bf.transpose(0, 1), output, atol=1e-6)


def torch_h_n():
    layers = 3
    m = torch.nn.LSTM(I, H, num_layers=layers, bidirectional=True)
    x = x_torch()
    _, (h_n, c_n) = m(x)
    assert h_n.shape == c_n.shape == (2 * layers, B, H)
    # layer 0, direction d at index d: the same as a one-layer module with layer 0's weights
    single = torch.nn.LSTM(I, H, bidirectional=True)
    single.load_state_dict({k: v for k, v in m.state_dict().items() if "_l0" in k})
    _, (h_single, c_single) = single(x)
    assert torch.allclose(h_n[:2], h_single, atol=1e-6) and torch.allclose(c_n[:2], c_single, atol=1e-6)
    bf = torch.nn.LSTM(I, H, num_layers=layers, bidirectional=True, batch_first=True)
    bf.load_state_dict(m.state_dict())
    _, (h_bf, _) = bf(x.transpose(0, 1))
    assert h_bf.shape == (2 * layers, B, H) and torch.allclose(h_bf, h_n, atol=1e-6)


def torch_last():
    for m in (torch.nn.RNN(I, H, num_layers=2), torch.nn.GRU(I, H, num_layers=2), torch.nn.LSTM(I, H, num_layers=2)):
        output, state = m(x_torch())
        h_n = state[0] if isinstance(state, tuple) else state
        assert torch.equal(output[-1], h_n[-1])


def torch_bidirectional():
    output, (h_n, _) = torch.nn.LSTM(I, H, bidirectional=True)(x_torch())
    assert torch.allclose(output[0, :, H:], h_n[-1])
    assert not torch.allclose(output[-1, :, H:], h_n[-1])
    # output[-1, :, H:] has read x_T only: the same from any earlier inputs
    x2 = x_torch()
    x2[:-1] = torch.randn(T - 1, B, I)
    m = torch.nn.LSTM(I, H, bidirectional=True)
    assert torch.allclose(m(x_torch())[0][-1, :, H:], m(x2)[0][-1, :, H:])


def torch_proj():
    output, (h_n, c_n) = torch.nn.LSTM(I, H, proj_size=P)(x_torch())
    assert output.shape == (T, B, P) and h_n.shape == (1, B, P) and c_n.shape == (1, B, H)


def torch_cells():
    m = torch.nn.LSTM(I, H)
    output, (h_n, c_n) = m(x_torch())
    assert output.shape[-1] == H and torch.equal(output[-1], h_n[0])
    # the per-step c_t the kernel caches: derive's LSTM kernel on the same weights
    k = kernel("lstm")
    params = k.from_torch(m)
    y, states_T, cache = k.forward(x_torch().double().numpy(), None, {n: v.astype(np.float64) for n, v in params.items()})
    assert np.allclose(states_T["c"], c_n[0].detach().double().numpy(), atol=1e-5)
    assert cache["c_all"].shape == (T + 1, B, H)  # c_0, ..., c_T: every step's cell state is kept
    assert np.allclose(cache["c_all"][-1], states_T["c"]) and np.allclose(cache["h_all"][1:], y)


def torch_packed():
    lengths = torch.tensor([5, 3, 2])
    m = torch.nn.GRU(I, H)
    packed = torch.nn.utils.rnn.pack_padded_sequence(x_torch(), lengths)
    out, h_n = m(packed)
    output, _ = torch.nn.utils.rnn.pad_packed_sequence(out)
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(h_n[0, b], output[n - 1, b])
        assert torch.all(output[n:, b] == 0)


def keras_default():
    import keras
    assert tuple(keras.layers.LSTM(H)(x_keras()).shape) == (B, H)


def keras_sequences():
    import keras
    layer = keras.layers.GRU(H, return_sequences=True)
    assert tuple(layer(x_keras()).shape) == (B, T, H)


def keras_state():
    import keras
    out, h, c = keras_np(keras.layers.LSTM(H, return_sequences=True, return_state=True)(x_keras()))
    assert out.shape == (B, T, H) and np.allclose(out[:, -1], h) and c.shape == (B, H)
    for layer in (keras.layers.GRU(H, return_state=True), keras.layers.SimpleRNN(H, return_state=True)):
        result = keras_np(layer(x_keras()))
        assert len(result) == 2 and np.allclose(result[0], result[1])


def keras_stack():
    import keras
    first, second = keras.layers.LSTM(H, return_sequences=True), keras.layers.LSTM(H)
    assert tuple(second(first(x_keras())).shape) == (B, H)
    with pytest.raises(ValueError):  # the second layer cannot read (B, H)
        keras.layers.LSTM(H)(keras.layers.LSTM(H)(x_keras()))


def keras_bidirectional():
    import keras
    assert keras.layers.Bidirectional(keras.layers.LSTM(H)).merge_mode == "concat"
    for mode in ("sum", "mul", "ave", None):
        keras.layers.Bidirectional(keras.layers.LSTM(H), merge_mode=mode)
    seq = keras.layers.Bidirectional(keras.layers.LSTM(H, return_sequences=True, return_state=True))
    out, h_f, c_f, h_b, c_b = keras_np(seq(x_keras()))
    assert out.shape == (B, T, 2 * H)
    assert np.allclose(out[:, -1, :H], h_f) and np.allclose(out[:, 0, H:], h_b)
    last = keras.layers.Bidirectional(keras.layers.LSTM(H, return_state=True))
    last.build((B, T, I))
    last.set_weights(seq.get_weights())
    out_last = keras_np(last(x_keras()))[0]
    assert np.allclose(out_last, np.concatenate([h_f, h_b], axis=-1), atol=1e-6)


def derive_forward():
    k = kernel("lstm")
    rng = np.random.default_rng(0)
    params = {n: rng.normal(size=s) * 0.3 for n, s in _shapes(k).items()}
    y, states_T, cache = k.forward(rng.normal(size=(T, B, I)), None, params)
    assert y.shape == (T, B, H) and set(states_T) == {"h", "c"} and set(k.backward(None, None, cache, params)) >= {"x", "h", "c"}


def _shapes(k, inputs=I, hidden=H, proj=P):
    size = {"I": inputs, "H": hidden, "P": proj}
    return {n: tuple(size[d] for d in spec.replace(" ", "").split("x")) for n, spec in k.PARAMS.items()}


def derive_last():
    rng = np.random.default_rng(0)
    for name in ("lstm", "gru", "lstm_proj", "sru", "qrnn_f_w1"):
        k = kernel(name)
        inputs = H if k.INPUT_DIM == "H" else I
        params = {n: rng.normal(size=s) * 0.3 for n, s in _shapes(k, inputs).items()}
        y, states_T, _ = k.forward(rng.normal(size=(T, B, inputs)), None, params)
        is_state = any(np.allclose(y[-1], v) for v in states_T.values() if v.shape == y[-1].shape)
        output_state = "h" in k.STATES
        assert is_state == output_state, name
        if name == "lstm_proj":
            assert states_T["h"].shape == (B, P) and states_T["c"].shape == (B, H)


def derive_stack():
    m = torch.nn.GRU(I, H, num_layers=2, bidirectional=True).double()
    stack = Stack.from_torch(kernel("gru"), m)
    x = x_torch().double()
    y, final, _ = stack.forward(x.numpy())
    output, h_n = m(x)
    assert np.allclose(y, output.detach().numpy(), atol=1e-10)
    for (layer, reverse), states in final.items():
        assert np.allclose(states["h"], h_n[2 * layer + int(reverse)].detach().numpy(), atol=1e-10)


CHECKS = {f.__name__: f for f in (torch_returns, torch_output, torch_h_n, torch_last, torch_bidirectional, torch_proj,
                                  torch_cells, torch_packed, keras_default, keras_sequences, keras_state, keras_stack,
                                  keras_bidirectional, derive_forward, derive_last, derive_stack)}
FACT_IDS = [f["id"] for rows in outputs.FACTS.values() for f in rows]


def test_every_fact_has_a_check_and_every_check_a_fact():
    assert sorted(FACT_IDS) == sorted(CHECKS)


@pytest.mark.parametrize("fact", FACT_IDS)
def test_fact(fact):
    with torch.no_grad():
        CHECKS[fact]()
