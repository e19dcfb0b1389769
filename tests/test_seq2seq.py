"""Encoder-decoder models (issue 19): teacher-forced loss and every gradient against PyTorch autograd
written here from the papers' equations (Bahdanau et al. 2015; Luong et al. 2015), finite
differences, and beam search against exhaustive search over every sequence of a tiny vocabulary."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import derive
from derive.runtime.decode import length_penalty
from derive.runtime.seq2seq import softmax

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = 1e-10
MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def reference(spec, enc, dec, P, src, tgt, bos):
    """The model's loss, from the equations, in PyTorch: enc a torch.nn stack, dec a torch.nn stack of L
    layers run one step at a time (s_t its top layer's h), P the other parameters (tensors)."""
    X = P["E_src"][src] if "E_src" in P else src
    ann, final = enc(X)  # (S, B, A)
    h_n = final[0] if isinstance(final, tuple) else final
    D = 2 if spec.encoder.bidirectional else 1
    L, Le = dec.num_layers, spec.encoder.layers

    def last(layer):  # encoder layer's final h, directions side by side
        return torch.cat([h_n[layer * D + k] for k in range(D)], dim=-1)
    u = last(Le - 1)
    B = u.shape[0]
    s = {"learned": lambda: torch.tanh(u @ P["W_b"].T + P["b_b"]).reshape(B, L, -1).transpose(0, 1),
         "direct": lambda: torch.stack([last(Le - L + l) for l in range(L)]),  # layer l from the top
         "zero": lambda: torch.zeros(L, B, dec.hidden_size, dtype=u.dtype)}[spec.bridge]()  # (L, B, H)
    c_state = torch.zeros_like(s)
    lstm = isinstance(dec, torch.nn.LSTM)
    T, B = tgt.shape
    prev = torch.cat([torch.full((1, B), bos, dtype=tgt.dtype), tgt[:-1]])
    a_b = ann.transpose(0, 1)  # (B, S, A)
    logits = []
    fed = torch.zeros(B, dec.hidden_size, dtype=s.dtype)  # Luong's input feeding: h~_0 = 0
    for t in range(T):
        Y = P["E_tgt"][prev[t]]
        if spec.attention == "bahdanau":  # e = v . tanh(W_a s_{t-1} + U_a a_s), s_{t-1} the top layer's
            e = torch.tanh((s[-1] @ P["W_a"].T)[:, None, :] + a_b @ P["U_a"].T) @ P["v_a"]
            alpha = torch.softmax(e, dim=-1)
            c = (alpha[:, :, None] * a_b).sum(1)
            x = torch.cat([Y, c], dim=-1)
        elif spec.input_feeding:  # s_t = cell([E y_{t-1}; h~_{t-1}], s_{t-1})
            x = torch.cat([Y, fed], dim=-1)
        else:
            x = Y
        out, st = dec(x[None], (s, c_state) if lstm else s)
        s, c_state = (st[0], st[1]) if lstm else (st, c_state)
        top = s[-1]
        if spec.attention == "bahdanau":
            o = torch.cat([top, c], dim=-1) @ P["W_o"].T + P["b_o"]
        elif spec.attention.startswith("luong"):
            proj = a_b @ P["W_a"].T if spec.attention == "luong_general" else a_b
            alpha = torch.softmax((proj * top[:, None, :]).sum(-1), dim=-1)
            c = (alpha[:, :, None] * a_b).sum(1)
            fed = torch.tanh(torch.cat([c, top], dim=-1) @ P["W_c"].T)  # h~_t
            o = fed @ P["W_o"].T + P["b_o"]
        else:
            o = top @ P["W_o"].T + P["b_o"]
        logits.append(o)
    return F.cross_entropy(torch.stack(logits).reshape(T * B, -1), tgt.reshape(-1))


#: (model: a built-in or a dict), one row per kind of attention, bridge and source
ROWS = [
    "seq2seq_bahdanau",
    "seq2seq_luong",
    {"encoder": {"cell": "gru"}, "decoder": {"cell": "gru"}, "attention": "luong_dot", "bridge": "zero",
     "embedding": {"source": 6, "target": 5, "dim": 3}},
    {"encoder": {"cell": "lstm", "bidirectional": True}, "decoder": {"cell": "lstm"}, "attention": "none",
     "bridge": "learned", "embedding": {"source": 6, "target": 5, "dim": 3}},
    {"encoder": {"cell": "gru", "layers": 2}, "decoder": {"cell": "lstm"}, "attention": "bahdanau",
     "bridge": "learned", "embedding": {"target": 5, "dim": 3}},  # vector inputs, a GRU into an LSTM
    # Luong's input feeding (section 3.3): the decoder reads [E y_{t-1}; h~_{t-1}]
    {"encoder": {"cell": "lstm", "layers": 2}, "decoder": {"cell": "lstm", "input_feeding": True},
     "attention": "luong_general", "bridge": "direct", "embedding": {"source": 6, "target": 5, "dim": 3}},
    {"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "input_feeding": True}, "attention": "luong_dot",
     "bridge": "learned", "embedding": {"target": 5, "dim": 3}},
    # decoders of more than one layer: s_t is the top layer's; each layer's first state from the bridge
    {"encoder": {"cell": "lstm", "layers": 2}, "decoder": {"cell": "lstm", "layers": 2}, "attention": "bahdanau",
     "bridge": "learned", "embedding": {"source": 6, "target": 5, "dim": 3}},
    {"encoder": {"cell": "gru", "layers": 3},
     "decoder": {"cell": "gru", "layers": 2, "input_feeding": True}, "attention": "luong_dot", "bridge": "direct",
     "embedding": {"source": 6, "target": 5, "dim": 3}},
    {"encoder": {"cell": "lstm"}, "decoder": {"cell": "lstm", "layers": 3}, "attention": "none", "bridge": "learned",
     "embedding": {"source": 6, "target": 5, "dim": 3}},
]


@pytest.mark.parametrize("row", ROWS, ids=[r if isinstance(r, str) else f"{r['attention']}-{r['bridge']}"
                                   + ("-feeding" if r["decoder"].get("input_feeding") else "")
                                   + (f"-{r['decoder']['layers']}layers" if "layers" in r["decoder"] else "") for r in ROWS])
def test_teacher_forced_loss_and_every_gradient_match_pytorch(row):
    m = derive.model(row)
    s = m.spec
    H, I, S, T, B = 4, 3, 5, 4, 2
    torch.manual_seed(0)
    D = 2 if s.encoder.bidirectional else 1
    enc = MODULES[s.encoder.cell.name](s.embed if s.source_vocab else I, H, s.encoder.layers,
                                       bidirectional=s.encoder.bidirectional).double()
    n = m.sizes(H, I)
    dec = MODULES[s.decoder.name](n["dec_in"], H, s.decoder_stack.layers).double()
    p = m.init_params(H, input_size=I, seed=3)
    p["encoder"] = m.encoder.from_torch(enc)
    p["decoder"] = m.decoder.from_torch(dec)
    rng = np.random.default_rng(4)
    src = rng.integers(0, s.source_vocab, (S, B)) if s.source_vocab else rng.standard_normal((S, B, I))
    tgt = rng.integers(0, s.target_vocab, (T, B))
    loss, g = m.loss_and_grads(src, tgt, p, bos=1)

    P = {k: torch.tensor(v, requires_grad=True) for k, v in p.items() if isinstance(v, np.ndarray)}
    x = torch.tensor(src, requires_grad=not s.source_vocab) if not s.source_vocab else torch.tensor(src)
    L = reference(s, enc, dec, P, x, torch.tensor(tgt), 1)
    L.backward()
    assert abs(loss - L.item()) < TOL * max(1, abs(L.item()))
    for k, t in P.items():
        assert _rel(g[k], t.grad) < TOL, k
    for name, prm in enc.named_parameters():
        assert _rel(m.encoder.to_torch(g["encoder"])[name], prm.grad) < TOL, name
    for name, prm in dec.named_parameters():
        assert _rel(m.decoder.to_torch(g["decoder"])[name], prm.grad) < TOL, name
    if not s.source_vocab:
        assert _rel(g["x"], x.grad) < TOL
    assert D in (1, 2)


def test_an_untrained_model_matches_finite_differences():
    m = derive.model("seq2seq_bahdanau")
    p = m.init_params(4, seed=1)
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(0, 12, (5, 2)), rng.integers(0, 12, (4, 2))
    _, g = m.loss_and_grads(src, tgt, p)
    eps = 1e-6
    for key in ("W_a", "U_a", "v_a", "W_b", "E_src", "E_tgt", "W_o"):
        u = rng.standard_normal(p[key].shape)
        lo = m.loss_and_grads(src, tgt, {**p, key: p[key] - eps * u})[0]
        hi = m.loss_and_grads(src, tgt, {**p, key: p[key] + eps * u})[0]
        assert abs((hi - lo) / (2 * eps) - (g[key] * u).sum()) < 1e-8, key


def _exhaustive(m, src, p, max_len, bos, eos, alpha):
    """Every sequence that ends in eos within max_len tokens, or has max_len tokens: the best by score."""
    V = m.spec.target_vocab
    best = None
    for n in range(1, max_len + 1):
        for toks in itertools.product(range(V), repeat=n):
            if eos in toks[:-1] or (n < max_len and toks[-1] != eos):
                continue
            tgt = np.array(toks)[:, None]
            # log p of the sequence = -T * (the mean cross-entropy) of teacher forcing on it
            logp = -n * m.loss_and_grads(src, tgt, p, bos=bos)[0]
            score = logp / length_penalty(n, alpha)
            if best is None or score > best[0] + 1e-12:
                best = (score, list(toks), logp)
    return best


SEARCHED = {
    "bahdanau": {"encoder": {"cell": "gru"}, "decoder": {"cell": "gru"}, "attention": "bahdanau", "bridge": "learned",
                 "embedding": {"source": 4, "target": 4, "dim": 3}},
    # the attentional vector h~_t is carried in each hypothesis's state
    "luong-feeding": {"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "input_feeding": True},
                      "attention": "luong_general", "bridge": "learned", "embedding": {"source": 4, "target": 4, "dim": 3}},
    # two decoder layers: every layer's states are carried per hypothesis
    "deep-decoder": {"encoder": {"cell": "gru"}, "decoder": {"cell": "lstm", "layers": 2}, "attention": "bahdanau",
                     "bridge": "learned", "embedding": {"source": 4, "target": 4, "dim": 3}},
}


@pytest.mark.parametrize("model", SEARCHED)
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_search_finds_what_exhaustive_search_finds(alpha, model):
    m = derive.model(SEARCHED[model])
    greedy_lost = 0
    for seed in range(4):
        p = m.init_params(3, seed=seed)
        p["W_o"] *= 4.0  # peaked distributions: a greedy choice can be wrong
        p["b_o"][2] -= 2.5  # eos less likely, so longer sequences compete
        src = np.random.default_rng(seed).integers(0, 4, (3, 1))
        score, toks, logp = _exhaustive(m, src, p, max_len=4, bos=1, eos=2, alpha=alpha)
        (wide,) = m.decode(src, p, max_len=4, beam=4 ** 4, bos=1, eos=2, length_penalty=alpha)
        assert wide.tokens == toks and abs(wide.score - score) < 1e-9 and abs(wide.logp - logp) < 1e-9
        (greedy,) = m.decode(src, p, max_len=4, beam=1, bos=1, eos=2, length_penalty=alpha)
        assert greedy.score <= score + 1e-12
        greedy_lost += greedy.score < score - 1e-6
        assert abs(greedy.logp - (-len(greedy.tokens) * m.loss_and_grads(src, np.array(greedy.tokens)[:, None], p)[0])) < 1e-9
    assert greedy_lost >= 1  # the comparison can tell a search that stops early from an exhaustive one


def test_greedy_takes_the_most_likely_token_each_step():
    m = derive.model("seq2seq_luong")
    p = m.init_params(5, seed=2)
    src = np.random.default_rng(1).integers(0, 12, (4, 1))
    (h,) = m.decode(src, p, max_len=5, beam=1, bos=1, eos=2)
    for n in range(len(h.tokens)):  # each token is the argmax given the ones before it
        prefix = np.array([1] + h.tokens[:n])[:, None]
        ann, _, s0, _ = m.encode(src, p)
        q, ann_b = m._prepare(p, ann)
        states = m._states0(s0)
        for t in range(n + 1):
            logits, states, _ = m.step(q, ann_b, prefix[t], states)
        assert int(np.argmax(softmax(logits))) == h.tokens[n]


BAD = [
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "bidirectional": True},
      "embedding": {"target": 3, "dim": 2}}, "decoder is { cell = NAME }"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "layers": 2}, "bridge": "direct",
      "embedding": {"target": 3, "dim": 2}}, "the decoder has 2 layers, the encoder 1"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "layers": 0}, "embedding": {"target": 3, "dim": 2}},
     "layers"),
    ({"encoder": {"cell": "gru", "bidirectional": True}, "decoder": {"cell": "gru"}, "attention": "luong_dot",
      "embedding": {"target": 3, "dim": 2}}, "needs the encoder's output and the decoder's state to have one size"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru"}, "attention": "cosine", "embedding": {"target": 3, "dim": 2}},
     "attention must be one of bahdanau, luong_dot, luong_general, none"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru"}, "embedding": {"target": 0, "dim": 2}},
     "embedding target must be a positive integer"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "lstm_proj"}, "embedding": {"target": 3, "dim": 2}},
     "must output one of its states, every state of the hidden size H"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "input_feeding": True}, "attention": "bahdanau",
      "embedding": {"target": 3, "dim": 2}}, "input_feeding feeds Luong's attentional vector"),
    ({"encoder": {"cell": "gru"}, "decoder": {"cell": "gru", "input_feeding": 1}, "attention": "luong_general",
      "embedding": {"target": 3, "dim": 2}}, "decoder input_feeding must be true or false"),
]


@pytest.mark.parametrize("spec,words", BAD, ids=[w for _, w in BAD])
def test_a_bad_encoder_decoder_spec_is_refused(spec, words):
    with pytest.raises(derive.DeriveError, match=words.replace("(", r"\(").replace(")", r"\)").replace("{", r"\{")
                       .replace("}", r"\}")):
        derive.model(spec)


def test_bad_token_ids_are_refused():
    m = derive.model("seq2seq_bahdanau")
    p = m.init_params(3)
    with pytest.raises(derive.DeriveError, match="outside 0 .. 11"):
        m.loss_and_grads(np.array([[0], [12]]), np.array([[1]]), p)
    with pytest.raises(derive.DeriveError, match="integer token ids"):
        m.loss_and_grads(np.zeros((2, 1)), np.array([[1]]), p)


def test_the_count_is_the_reference_models_parameters():
    """seq2seq_luong with H = 6: torch.nn.LSTM encoder (2 layers) and decoder, the output layer, the
    attention's W_a and W_c, the two embeddings (the pytorch convention: torch's double biases)."""
    m = derive.model("seq2seq_luong")
    H = 6
    parts = m.count(H, convention="pytorch")
    enc = torch.nn.LSTM(8, H, 2)
    dec = torch.nn.LSTM(8, H)
    extra = 12 * 8 * 2 + 12 * H + 12 + H * H + H * (2 * H)  # E_src, E_tgt, W_o, b_o, W_a, W_c
    assert parts["encoder"] == sum(q.numel() for q in enc.parameters())
    assert parts["decoder"] == sum(q.numel() for q in dec.parameters())
    assert sum(parts.values()) == parts["encoder"] + parts["decoder"] + extra


def test_a_deep_decoders_count_is_the_reference_models():
    """A 2-layer LSTM decoder fed [E y; c]: its torch.nn.LSTM(num_layers=2), and the learned bridge's W_b
    and b_b, one map per decoder layer (2H x U and 2H)."""
    spec = {"encoder": {"cell": "gru", "bidirectional": True}, "decoder": {"cell": "lstm", "layers": 2},
            "attention": "bahdanau", "bridge": "learned", "embedding": {"source": 7, "target": 9, "dim": 4}}
    m = derive.model(spec)
    H = 5
    parts = m.count(H, convention="pytorch")
    assert parts["decoder"] == sum(q.numel() for q in torch.nn.LSTM(4 + 2 * H, H, 2).parameters())
    assert parts["W_b"] == 2 * H * 2 * H and parts["b_b"] == 2 * H


def test_the_cli_shows_and_counts_an_encoder_decoder():
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "derive", "show", "seq2seq_bahdanau"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "de_{t,s} = alpha_{t,s} (dalpha_{t,s} - sum_{s'} alpha_{t,s'} dalpha_{t,s'})" in r.stdout
    assert "do_t = (p_t - onehot(y_t)) / (T B)" in r.stdout
    r = subprocess.run([sys.executable, "-m", "derive", "params", "seq2seq_luong", "-I", "8", "-H", "6",
                        "--convention", "pytorch", "--json"], capture_output=True, text=True)
    import json
    data = json.loads(r.stdout)
    assert data["total"] == sum(derive.model("seq2seq_luong").count(6, convention="pytorch").values())


def test_the_benchs_pytorch_peer_computes_the_same_loss():
    """derive bench times the encoder-decoder against bench.models.torch_seq2seq_loss: it must be the
    same function (else the ratio compares different work)."""
    from derive.bench.models import torch_seq2seq_loss
    for name in ("seq2seq_bahdanau", "seq2seq_luong"):
        m = derive.model(name)
        s = m.spec
        H = 5
        enc = MODULES[s.encoder.cell.name](s.embed, H, s.encoder.layers, bidirectional=s.encoder.bidirectional).double()
        dec = MODULES[s.decoder.name](m.sizes(H)["dec_in"], H).double()
        p = m.init_params(H, seed=2)
        p["encoder"], p["decoder"] = m.encoder.from_torch(enc), m.decoder.from_torch(dec)
        rng = np.random.default_rng(3)
        src, tgt = rng.integers(0, 12, (4, 2)), rng.integers(0, 12, (3, 2))
        P = {k: torch.tensor(v) for k, v in p.items() if isinstance(v, np.ndarray)}
        theirs = torch_seq2seq_loss(torch, m, P, enc, dec, torch.tensor(src), torch.tensor(tgt)).item()
        assert abs(theirs - m.loss_and_grads(src, tgt, p)[0]) < 1e-12
