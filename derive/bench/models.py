"""``derive bench MODEL``: a whole model against PyTorch, forward + backward, same threads.

A stack (``deep_bigru``, or a dict such as a 3-layer bidirectional LSTM) runs against the
``torch.nn`` module of the same layers and directions; an encoder-decoder's teacher-forced loss and
gradients run against the same equations in PyTorch autograd (``torch_seq2seq_loss``: torch.nn
stacks for the encoder and the decoder cell, the attention, bridge and output written out). Both
in one process, PyTorch first in a block of its own (see ``bench.cells``), best of ``repeat``.
"""

from __future__ import annotations

import os

import numpy as np

from derive.bench.timing import best, blas_limits
from derive.runtime.model import model
from derive.textout import table

#: (T or S, B, I or embedding, H) per model kind
STACK_SIZES = [(100, 32, 128, 128), (50, 8, 32, 32)]
SEQ2SEQ_SIZES = [(30, 32, 64), (10, 4, 16)]  # (S = T, B, H)


def bench(names, repeat: int, threads: int | None) -> int:
    import torch

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    print(f"forward + backward (encoder-decoders: the teacher-forced loss and every gradient), float64, best of "
          f"{repeat}, {threads} thread(s); ms; ratio = derive / torch")
    rows = []
    with blas_limits(threads):
        for name in names:
            m = model(name)
            for size in (SEQ2SEQ_SIZES if hasattr(m, "loss_and_grads") else STACK_SIZES):
                rows.append(_seq2seq_row(m, torch, size, repeat) if hasattr(m, "loss_and_grads")
                            else _stack_row(m, torch, size, repeat))
    table(("model", "sizes", "derive", "torch", "ratio"), rows)
    return 0


def _stack_row(m, torch, size, repeat):
    T, B, I, H = size
    s = m.spec
    module_cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}.get(s.cell.name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, I))
    torch_ms = ""
    if module_cls is not None and not s.residual and s.merge == "concat":
        mod = module_cls(I, H, s.layers, bidirectional=s.bidirectional).double()
        p = m.from_torch(mod)
        xt = torch.from_numpy(x).requires_grad_(True)

        def theirs():
            mod.zero_grad(set_to_none=True)
            xt.grad = None
            y, _ = mod(xt)
            y.backward(torch.ones_like(y))
        t_torch = best(theirs, repeat)
        torch_ms = f"{t_torch * 1e3:.1f}"
    else:
        p, t_torch = m.init_params(I, H), None

    def ours():
        y, _, cache = m.forward(x, None, p)
        m.backward(np.ones_like(y), None, cache, p)
    t = best(ours, repeat)
    return (m.name, f"T={T}, B={B}, I={I}, H={H}", f"{t * 1e3:.1f}", torch_ms,
            f"{t / t_torch:.2f}" if t_torch else "")


def torch_seq2seq_loss(torch, m, P, enc, dec, src, tgt, bos=1):
    """The encoder-decoder's mean cross-entropy in PyTorch (the bench's peer; ``runtime.seq2seq`` has the
    equations)."""
    s = m.spec
    X = P["E_src"][src]
    ann, final = enc(X)
    h_n = final[0] if isinstance(final, tuple) else final
    D = 2 if s.encoder.bidirectional else 1
    u = torch.cat([h_n[-D + k] for k in range(D)], dim=-1)
    st = torch.tanh(u @ P["W_b"].T + P["b_b"]) if s.bridge == "learned" else (
        u if s.bridge == "direct" else torch.zeros(u.shape[0], dec.hidden_size, dtype=u.dtype))
    lstm = isinstance(dec, torch.nn.LSTM)
    cs = torch.zeros_like(st)
    T, B = tgt.shape
    prev = torch.cat([torch.full((1, B), bos, dtype=tgt.dtype), tgt[:-1]])
    a_b = ann.transpose(0, 1)
    proj = a_b @ P["U_a"].T if s.attention == "bahdanau" else (a_b @ P["W_a"].T if s.attention == "luong_general"
                                                                else a_b)
    logits = []
    for t in range(T):
        Y = P["E_tgt"][prev[t]]
        if s.attention == "bahdanau":
            alpha = torch.softmax(torch.tanh((st @ P["W_a"].T)[:, None, :] + proj) @ P["v_a"], dim=-1)
            c = (alpha[:, :, None] * a_b).sum(1)
            Y = torch.cat([Y, c], dim=-1)
        _, state = dec(Y[None], (st[None], cs[None]) if lstm else st[None])
        st, cs = (state[0][0], state[1][0]) if lstm else (state[0], cs)
        if s.attention == "bahdanau":
            o = torch.cat([st, c], dim=-1) @ P["W_o"].T + P["b_o"]
        elif s.attention.startswith("luong"):
            alpha = torch.softmax((proj * st[:, None, :]).sum(-1), dim=-1)
            c = (alpha[:, :, None] * a_b).sum(1)
            o = torch.tanh(torch.cat([c, st], dim=-1) @ P["W_c"].T) @ P["W_o"].T + P["b_o"]
        else:
            o = st @ P["W_o"].T + P["b_o"]
        logits.append(o)
    return torch.nn.functional.cross_entropy(torch.stack(logits).reshape(T * B, -1), tgt.reshape(-1))


def _seq2seq_row(m, torch, size, repeat):
    S, B, H = size
    s = m.spec
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
    enc = cls[s.encoder.cell.name](s.embed, H, s.encoder.layers, bidirectional=s.encoder.bidirectional).double()
    dec = cls[s.decoder.name](m.sizes(H)["dec_in"], H).double()
    p = m.init_params(H, seed=0)
    p["encoder"], p["decoder"] = m.encoder.from_torch(enc), m.decoder.from_torch(dec)
    rng = np.random.default_rng(0)
    src = rng.integers(0, s.source_vocab, (S, B))
    tgt = rng.integers(0, s.target_vocab, (S, B))
    P = {k: torch.tensor(v, requires_grad=True) for k, v in p.items() if isinstance(v, np.ndarray)}
    src_t, tgt_t = torch.from_numpy(src), torch.from_numpy(tgt)

    def theirs():
        for q in [*P.values(), *enc.parameters(), *dec.parameters()]:
            q.grad = None
        torch_seq2seq_loss(torch, m, P, enc, dec, src_t, tgt_t).backward()
    t_torch = best(theirs, repeat)
    t = best(lambda: m.loss_and_grads(src, tgt, p), repeat)
    return (m.name, f"S=T={S}, B={B}, H={H}", f"{t * 1e3:.1f}", f"{t_torch * 1e3:.1f}", f"{t / t_torch:.2f}")
