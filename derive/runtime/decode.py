"""Decoding an encoder-decoder (``runtime.seq2seq``): greedy and beam search.

A hypothesis is a token sequence y_1 .. y_n; it is finished when it ends in ``eos`` or has
``max_len`` tokens. Its log-probability is the sum of log p_t[y_t] and its score that sum divided
by the length penalty lp(n) = ((5 + n) / 6)^alpha (Wu et al. 2016; alpha = 0: no penalty). Beam
search keeps the ``beam`` best unfinished hypotheses by log-probability at each step, extends each
by every token, keeps the ``beam`` best extensions by log-probability (those that end are finished,
the others go on), and returns the best finished hypothesis by score. It stops when no unfinished
hypothesis can still beat the best finished one (a log-probability only falls, so a score is at most
the log-probability over lp(max_len)) or at ``max_len``. ``beam = 1`` is greedy decoding; with a
beam as wide as the number of hypotheses it is exhaustive search (the tests compare it with one).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derive import kernelapi as _api
from derive.errors import DeriveError
from derive.runtime.seq2seq import Seq2Seq, softmax


def length_penalty(n: int, alpha: float) -> float:
    return ((5.0 + n) / 6.0) ** alpha


@dataclass
class Hypothesis:
    tokens: list
    logp: float
    score: float


def decode(m: Seq2Seq, src, p, *, max_len: int = 20, beam: int = 1, bos: int = 1, eos: int = 2,
           length_penalty_alpha: float = 0.0, trace: list | None = None) -> list[Hypothesis]:
    """The best hypothesis for each source sequence of the batch; ``trace`` (a list) receives, per
    sequence and step, the hypotheses kept alive and those finished at that step."""
    max_len, beam = _api.positive_int(max_len, "max_len"), _api.positive_int(beam, "beam")
    V = m.spec.target_vocab
    for name, tok in (("bos", bos), ("eos", eos)):
        if not 0 <= _api.whole(tok, name) < V:
            raise DeriveError(f"{name} = {tok} is not a target token id (0 .. {V - 1})")
    alpha = float(length_penalty_alpha)
    if not np.isfinite(alpha) or alpha < 0:
        raise DeriveError(f"length_penalty must be a finite number >= 0, got {length_penalty_alpha!r}")
    ann, _, s0, _ = m.encode(src, p)
    q, ann_b = m._prepare(p, ann)
    out = []
    for b in range(ann_b.shape[0]):
        qb = {k: (v[b:b + 1] if k in ("_Ua", "_proj") else v) for k, v in q.items()}
        states = {k: v[b:b + 1] for k, v in m._states0(s0).items()}
        steps = [] if trace is not None else None
        out.append(_beam(m, qb, ann_b[b:b + 1], states, max_len, beam, bos, eos, alpha, steps))
        if trace is not None:
            trace.append(steps)
    return out


def _beam(m, q, ann1, states, max_len, beam, bos, eos, alpha, steps=None) -> Hypothesis:
    alive = [([], 0.0, states)]  # tokens, log-probability, decoder states after them
    finished: list[Hypothesis] = []
    for n in range(1, max_len + 1):
        K = len(alive)
        prev = np.array([bos if not toks else toks[-1] for toks, _, _ in alive])
        batch = {k: np.concatenate([st[k] for _, _, st in alive]) for k in alive[0][2]}
        logits, new, _ = m.step({**q, **{k: np.repeat(v, K, axis=0) for k, v in q.items() if k in ("_Ua", "_proj")}},
                                np.repeat(ann1, K, axis=0), prev, batch)
        logp = np.log(softmax(logits))
        cands = []
        for i, (toks, lp, _) in enumerate(alive):
            for tok in range(logp.shape[1]):
                cands.append((lp + float(logp[i, tok]), toks + [tok], i))
        cands.sort(key=lambda c: (-c[0], c[1]))  # ties: the smaller token sequence first, so results are stable
        alive = []
        for total, toks, i in cands[:beam]:  # the beam best; those that end are finished, the others go on
            if toks[-1] == eos or n == max_len:
                finished.append(Hypothesis(toks, total, total / length_penalty(n, alpha)))
            else:
                alive.append((toks, total, {k: v[i:i + 1] for k, v in new.items()}))
        if steps is not None:
            steps.append({"alive": [(toks, lp) for toks, lp, _ in alive],
                          "finished": [(h.tokens, h.logp, h.score) for h in finished if len(h.tokens) == n]})
        best = max((h.score for h in finished), default=-np.inf)
        # an unfinished hypothesis's log-probability only falls; its score is at most that over lp(max_len)
        reach = max((lp / length_penalty(max_len, alpha) for _, lp, _ in alive), default=-np.inf)
        if not alive or reach < best:
            break
    return max(finished, key=lambda h: (h.score, [-t for t in h.tokens]))
