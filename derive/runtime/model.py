"""``derive.model(...)``: a stack of a cell (``runtime.models``) or an encoder-decoder (``runtime.seq2seq``)."""

from __future__ import annotations

from derive.runtime.decode import decode
from derive.runtime.models import Model
from derive.runtime.seq2seq import Seq2Seq
from derive.symbolic.seq2seq import Seq2SeqSpec, load_model


class EncoderDecoder(Seq2Seq):
    """A Seq2Seq with its decoder: ``m.decode(src, p, max_len=20, beam=5, bos=1, eos=2, length_penalty=0.0)``."""

    def decode(self, src, p, *, max_len=20, beam=1, bos=1, eos=2, length_penalty=0.0, trace=None):
        """The best hypothesis per source sequence (``runtime.decode``): tokens, log-probability, score."""
        return decode(self, src, p, max_len=max_len, beam=beam, bos=bos, eos=eos, length_penalty_alpha=length_penalty,
                      trace=trace)


def model(name_or_spec) -> Model | EncoderDecoder:
    """A built-in model's name, a model spec's path, or a dict of its keys, e.g.
    ``{"cell": "lstm", "layers": 3, "bidirectional": True, "residual": True}``."""
    spec = load_model(name_or_spec)
    return EncoderDecoder(spec) if isinstance(spec, Seq2SeqSpec) else Model(spec)
