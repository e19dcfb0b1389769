"""Encoder-decoder models with attention, trained by teacher forcing (issue 19).

With the encoder's annotations a_s (its top layer's output at source step s, S of them), the
decoder state s_t (its cell's output state) and the target's embeddings E y_{t-1} (y_0 = bos):

* the decoder: one cell or a stack of L layers (``decoder = { cell, layers = L }``); s_t is its top
  layer's output state; the context and the embedding feed its first layer;
* bridge: the first state of each decoder layer l: s^{(l)}_0 = tanh(W_b^{(l)} u + b_b^{(l)}) ("learned", the
  L maps stacked in W_b and b_b), u the encoder's final output states of its top layer, the directions side by
  side; or the final output state of encoder layer l, counted from the top ("direct"); or 0 ("zero"); the
  decoder's other states start at 0;
* Bahdanau (additive, 2015): e_{t,s} = v^T tanh(W_a s_{t-1} + U_a a_s), alpha_t = softmax_s(e_t),
  c_t = sum_s alpha_{t,s} a_s; s_t = cell([E y_{t-1}; c_t], s_{t-1}); o_t = W_o [s_t; c_t] + b_o;
* Luong (multiplicative, 2015): s_t = cell(E y_{t-1}, s_{t-1}); e_{t,s} = s_t^T a_s ("luong_dot") or
  s_t^T W_a a_s ("luong_general"); alpha_t, c_t as above; h~_t = tanh(W_c [c_t; s_t]); o_t = W_o h~_t + b_o;
  with input feeding (Luong's section 3.3) s_t = cell([E y_{t-1}; h~_{t-1}], s_{t-1}), h~_0 = 0, and
  h~_t is carried to the next step beside the cell's states (the key ``FED``);
* no attention: o_t = W_o s_t + b_o;
* p_t = softmax(o_t); L = the mean over steps and sequences of -log p_t[y_t].

The backward pass is these equations' chain rule, written out below: the loss gradient
do_t = (p_t - onehot(y_t)) / (T B); through the softmax of the attention
de_{t,s} = alpha_{t,s} (dalpha_{t,s} - sum_s' alpha_{t,s'} dalpha_{t,s'}); the decoder cell's
BPTT one step at a time with its generated kernel (a step's state gradient is the next step's
carry plus, for Bahdanau, what the next step's attention sends back to s_{t-1}); the bridge's into
the encoder's final states; the encoder's through its stack (``runtime.models``).
"""

from __future__ import annotations

import numpy as np

from derive import kernelapi as _api
from derive.errors import DeriveError
from derive.runtime.kernels import kernel
from derive.runtime.models import Model
from derive.symbolic import ir
from derive.symbolic.seq2seq import Seq2SeqSpec


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward(alpha: np.ndarray, dalpha: np.ndarray) -> np.ndarray:
    """de = alpha (dalpha - sum alpha dalpha), over the last axis."""
    return alpha * (dalpha - (alpha * dalpha).sum(axis=-1, keepdims=True))


#: the attentional vector h~_{t-1} carried beside the decoder cell's states (input feeding)
FED = "h_att"


class Seq2Seq:
    def __init__(self, spec: Seq2SeqSpec):
        self.spec = spec
        self.name = spec.name
        self.encoder = Model(spec.encoder)
        self.dec = kernel(spec.decoder_ref)
        self.decoder = Model(spec.decoder_stack)
        self.L = spec.decoder_stack.layers
        self.out = ir.ref(spec.decoder.output).key  # the decoder's state s_t
        self.top = (self.L - 1, self.out)  # s_t's key in a step's states {(layer, state): array}
        self.enc_out = ir.ref(spec.encoder.cell.output).key

    def __repr__(self) -> str:
        return f"Seq2Seq({self.name!r}: {self.spec.encoder.cell.name} -> {self.spec.attention} -> {self.spec.decoder.name})"

    # ------------------------------------------------------------ sizes and parameters
    def sizes(self, hidden: int, input_size: int | None = None) -> dict:
        return self.spec.sizes(hidden, input_size)

    def init_params(self, hidden_size, *, input_size=None, seed=0, dtype=np.float64) -> dict:
        s, n = self.spec, self.sizes(hidden_size, input_size)
        rng = np.random.default_rng(seed)
        p = {"encoder": self.encoder.init_params(n["src"], n["H"], seed=seed + 1, dtype=dtype),
             "decoder": self.decoder.init_params(n["dec_in"], n["H"], seed=seed + 2, dtype=dtype)}
        for name, (shape, fan) in s.shapes(hidden_size, input_size).items():  # in the spec's order
            p[name] = (rng.standard_normal(shape) if fan is None else
                       rng.uniform(-1 / np.sqrt(fan), 1 / np.sqrt(fan), shape)).astype(dtype)
        return p

    def count(self, hidden, *, input_size=None, convention: str = "single") -> dict:
        """Parameters per part (``Seq2SeqSpec.count``)."""
        return self.spec.count(hidden, input_size=input_size, convention=convention)

    # ------------------------------------------------------------ the pieces
    def _source(self, src, p):
        if self.spec.source_vocab:
            ids = _ids(src, self.spec.source_vocab, "src", 2)
            return p["E_src"][ids], ids
        x = _api.float_array(src, "src")
        if x.ndim != 3:
            raise DeriveError(f"src has shape {x.shape}; expected (S, B, I) vectors (the spec has no source vocabulary)")
        return x, None

    def encode(self, src, p):
        """(annotations (S, B, A), u (B, U), s_0 (L, B, H): each decoder layer's first state, the encoder's
        cache and what the bridge's backward reads)."""
        X, ids = self._source(src, p)
        ann, final, cache = self.encoder.forward(X, None, p["encoder"])
        top = self.spec.encoder.layers - 1
        u = np.concatenate([final[(top, rev)][self.enc_out] for rev in self.spec.encoder.directions], axis=-1)
        H = ann.shape[-1] // (2 if self.spec.encoder.bidirectional and self.spec.encoder.merge == "concat" else 1)
        B, L = u.shape[0], self.L
        if self.spec.bridge == "learned":
            s0 = np.tanh(u @ p["W_b"].T + p["b_b"]).reshape(B, L, -1).transpose(1, 0, 2)
        elif self.spec.bridge == "direct":  # decoder layer l from encoder layer l, both counted from the top
            s0 = np.stack([np.concatenate([final[(layer, rev)][self.enc_out] for rev in self.spec.encoder.directions],
                                          axis=-1) for layer in self._bridged()])
        else:
            s0 = np.zeros((L, B, H), u.dtype)
        return ann, u, np.ascontiguousarray(s0), {"enc": cache, "ids": ids, "X": X}

    def _bridged(self) -> range:
        """The encoder layers a direct bridge reads, one per decoder layer (the top L)."""
        top = self.spec.encoder.layers
        return range(top - self.L, top)

    def _states0(self, s0):
        """The decoder's states at t = 0, {(layer, state): (B, H)} (and h~_0 = 0 with input feeding)."""
        out = {(layer, k): (s0[layer] if k == self.out else np.zeros_like(s0[layer]))
               for layer in range(self.L) for k in self.dec.STATES}
        if self.spec.input_feeding:
            out[FED] = np.zeros_like(s0[-1])
        return out

    def _scores(self, ann, p, s_prev=None, s_now=None):
        """Attention scores e (B, S) and what the backward needs."""
        a = self.spec.attention
        if a == "bahdanau":
            pre = np.tanh((s_prev @ p["W_a"].T)[:, None, :] + p["_Ua"])  # (B, S, n)
            return pre @ p["v_a"], pre
        proj = p["_proj"]  # (B, S, H): a_s, or W_a a_s
        return np.einsum("bh,bsh->bs", s_now, proj), None

    def step(self, p, ann_b, y_prev, states):
        """One decoder step for a batch: (logits (B, V), new states, what backward needs)."""
        s = self.spec
        Y = p["E_tgt"][y_prev]
        rec = {"Y": Y, "states_in": states}
        if s.attention == "bahdanau":
            e, pre = self._scores(ann_b, p, s_prev=states[self.top])
            alpha = softmax(e)
            c = np.einsum("bs,bsa->ba", alpha, ann_b)
            x = np.concatenate([Y, c], axis=-1)
            rec.update(pre=pre, alpha=alpha, c=c)
        elif s.input_feeding:
            x = np.concatenate([Y, states[FED]], axis=-1)
        else:
            x = Y
        y, sT, kc = self.decoder.forward(x[None], self._nested(states), p["decoder"])
        st = y[0]
        rec.update(kc=kc, s=st)
        if s.attention == "bahdanau":
            K = np.concatenate([st, rec["c"]], axis=-1)
        elif s.attention.startswith("luong"):
            e, _ = self._scores(ann_b, p, s_now=st)
            alpha = softmax(e)
            c = np.einsum("bs,bsa->ba", alpha, ann_b)
            ht = np.tanh(np.concatenate([c, st], axis=-1) @ p["W_c"].T)
            rec.update(alpha=alpha, c=c, ht=ht)
            K = ht
        else:
            K = st
        rec["K"] = K
        new = self._flat(sT)
        if s.input_feeding:
            new[FED] = K  # h~_t, read by the next step
        return K @ p["W_o"].T + p["b_o"], new, rec

    def _nested(self, flat: dict) -> dict:
        """{(layer, state): array} -> the stack's {(layer, False): {state: array}}."""
        return {(layer, False): {k: flat[(layer, k)] for k in self.dec.STATES} for layer in range(self.L)}

    def _flat(self, nested: dict) -> dict:
        return {(layer, k): v for (layer, _), d in nested.items() for k, v in d.items() if k in self.dec.STATES}

    def _prepare(self, p, ann):
        """Per-source projections every step reads: U_a a_s (Bahdanau), W_a a_s or a_s (Luong); (B, S, .)."""
        q = dict(p)
        ann_b = np.ascontiguousarray(ann.transpose(1, 0, 2))  # (B, S, A)
        if self.spec.attention == "bahdanau":
            q["_Ua"] = ann_b @ p["U_a"].T
        elif self.spec.attention == "luong_general":
            q["_proj"] = ann_b @ p["W_a"].T
        elif self.spec.attention == "luong_dot":
            q["_proj"] = ann_b
        return q, ann_b

    # ------------------------------------------------------------ training
    def loss_and_grads(self, src, tgt, p, *, bos=1):
        """The mean cross-entropy of tgt (T, B) token ids under teacher forcing, and every gradient
        (a dict shaped like ``p``; ``"x"`` is the source's gradient when it is vectors)."""
        s = self.spec
        tgt = _ids(tgt, s.target_vocab, "tgt", 2)
        bos = _api.whole(bos, "bos")
        if not 0 <= bos < s.target_vocab:
            raise DeriveError(f"bos = {bos} is not a target token id (0 .. {s.target_vocab - 1})")
        T, B = tgt.shape
        ann, u, s0, enc = self.encode(src, p)
        q, ann_b = self._prepare(p, ann)
        prev = np.concatenate([np.full((1, B), bos), tgt[:-1]]) if T else tgt
        states, recs, loss = self._states0(s0), [], 0.0
        for t in range(T):
            logits, states, rec = self.step(q, ann_b, prev[t], states)
            prob = softmax(logits)
            loss -= float(np.log(prob[np.arange(B), tgt[t]]).sum())
            rec["do"] = prob
            recs.append(rec)
        n = max(T * B, 1)
        g = {k: np.zeros_like(v) for k, v in p.items() if isinstance(v, np.ndarray)}
        g["decoder"] = {key: {k: np.zeros_like(v) for k, v in prm.items()} for key, prm in p["decoder"].items()}
        d_ann = np.zeros_like(ann_b)
        carry = {k: np.zeros_like(v) for k, v in self._states0(s0).items()}
        for t in reversed(range(T)):
            rec = recs[t]
            do = rec["do"].copy()
            do[np.arange(B), tgt[t]] -= 1.0
            do /= n
            g["W_o"] += do.T @ rec["K"]
            g["b_o"] += do.sum(axis=0)
            dK = do @ p["W_o"]
            if s.input_feeding:  # h~_t also fed step t+1: what that step's input gradient sent back
                dK = dK + carry[FED]
            ds = self._output_backward(q, ann_b, rec, dK, g, d_ann)  # the gradient reaching s_t from above
            gd = self.decoder.backward(ds[None], self._nested(carry), rec["kc"], p["decoder"])
            for key, prm in g["decoder"].items():
                for k in prm:
                    prm[k] += gd[key][k]
            carry = self._flat({key: gd[key] for key in self.decoder.keys()})
            dx = gd["x"][0]
            np.add.at(g["E_tgt"], prev[t], dx[:, :s.embed])
            if s.input_feeding:
                carry[FED] = dx[:, s.embed:]
            if s.attention == "bahdanau":  # c_t fed the cell: its gradient goes through the attention of step t
                carry[self.top] = carry[self.top] + self._bahdanau_backward(q, ann_b, rec, dx[:, s.embed:], g, d_ann)
        ds0 = np.stack([carry[(layer, self.out)] for layer in range(self.L)])
        dT = self._bridge_backward(p, u, s0, ds0, g)
        ge = self.encoder.backward(d_ann.transpose(1, 0, 2), dT, enc["enc"], p["encoder"])
        g["encoder"] = {k: v for k, v in ge.items() if k != "x"}
        if s.source_vocab:
            np.add.at(g["E_src"], enc["ids"], ge["x"])
        else:
            g["x"] = ge["x"]
        return loss / n, g

    def _output_backward(self, q, ann_b, rec, dK, g, d_ann) -> np.ndarray:
        a, H = self.spec.attention, rec["s"].shape[-1]
        if a == "bahdanau":  # K = [s_t; c_t]: c_t's part goes through the attention with the cell's
            rec["dc_out"] = dK[:, H:]
            return dK[:, :H]
        if a == "none":
            return dK
        dpre = dK * (1 - rec["ht"] ** 2)  # h~ = tanh(W_c [c; s])
        g["W_c"] += dpre.T @ np.concatenate([rec["c"], rec["s"]], axis=-1)
        dcs = dpre @ q["W_c"]
        A = rec["c"].shape[-1]
        dc, ds = dcs[:, :A], dcs[:, A:].copy()
        dalpha = np.einsum("ba,bsa->bs", dc, ann_b)
        de = softmax_backward(rec["alpha"], dalpha)
        d_ann += rec["alpha"][:, :, None] * dc[:, None, :]
        ds += np.einsum("bs,bsh->bh", de, q["_proj"])  # e = s_t . proj_s
        dproj = de[:, :, None] * rec["s"][:, None, :]
        if a == "luong_general":  # proj_s = W_a a_s
            g["W_a"] += np.einsum("bsh,bsa->ha", dproj, ann_b)
            d_ann += dproj @ q["W_a"]
        else:
            d_ann += dproj
        return ds

    def _bahdanau_backward(self, q, ann_b, rec, dc_in, g, d_ann) -> np.ndarray:
        """c_t = sum_s alpha a_s, alpha = softmax(v . tanh(W_a s_{t-1} + U_a a_s)): into a_s, the weights,
        and s_{t-1} (returned)."""
        dc = rec["dc_out"] + dc_in
        dalpha = np.einsum("ba,bsa->bs", dc, ann_b)
        de = softmax_backward(rec["alpha"], dalpha)
        d_ann += rec["alpha"][:, :, None] * dc[:, None, :]
        pre = rec["pre"]
        g["v_a"] += np.einsum("bs,bsn->n", de, pre)
        dz = de[:, :, None] * q["v_a"] * (1 - pre ** 2)  # (B, S, n)
        s_prev = rec["states_in"][self.top]
        dz_sum = dz.sum(axis=1)
        g["W_a"] += dz_sum.T @ s_prev
        g["U_a"] += np.einsum("bsn,bsa->na", dz, ann_b)
        d_ann += dz @ q["U_a"]
        return dz_sum @ q["W_a"]

    def _bridge_backward(self, p, u, s0, ds0, g):
        """The gradients of the encoder's final states the bridge read ({(layer, reverse): {state: array}}),
        or None (a zero bridge); ds0 and s0 are (L, B, H)."""
        enc = self.spec.encoder
        H = ds0.shape[-1] // (len(enc.directions) if self.spec.bridge == "direct" else 1)

        def split(d):  # the directions side by side -> each direction's part
            return {rev: {self.enc_out: d[:, k * H:(k + 1) * H]} for k, rev in enumerate(enc.directions)}
        if self.spec.bridge == "learned":
            B = u.shape[0]
            dpre = (ds0 * (1 - s0 ** 2)).transpose(1, 0, 2).reshape(B, -1)  # the L layers side by side
            g["W_b"] += dpre.T @ u
            g["b_b"] += dpre.sum(axis=0)
            return {(enc.layers - 1, rev): d for rev, d in split(dpre @ p["W_b"]).items()}
        if self.spec.bridge == "direct":
            return {(layer, rev): d for n, layer in enumerate(self._bridged()) for rev, d in split(ds0[n]).items()}
        return None


def _ids(a, vocab: int, what: str, ndim: int) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.integer):
        raise DeriveError(f"{what} must be integer token ids of shape ({'S' if what == 'src' else 'T'}, B), "
                          f"got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= vocab):
        raise DeriveError(f"{what} has a token id outside 0 .. {vocab - 1}")
    return arr
