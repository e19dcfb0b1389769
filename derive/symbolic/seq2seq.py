"""Encoder-decoder model specs (issue 19): an encoder stack, a bridge, attention, a decoder cell, a softmax.

    name = "seq2seq_bahdanau"
    encoder = { cell = "gru", layers = 1, bidirectional = true }   # a stack (``symbolic.model``)
    decoder = { cell = "gru" }                                      # one layer, or { cell, layers = 2 }
    # decoder = { cell = "lstm", input_feeding = true }  Luong's input feeding: the decoder also reads h~_{t-1}
    attention = "bahdanau"      # "bahdanau", "luong_dot", "luong_general" or "none"
    bridge = "learned"          # the decoder's first state: "learned", "direct" or "zero"
    embedding = { source = 12, target = 12, dim = 8 }   # vocabulary sizes, embedding size

The source is token ids (S, B) when ``embedding.source`` is given, else vectors (S, B, I); the
target is token ids (T, B) in a vocabulary of ``embedding.target``; the decoder reads the
embedding of the previous target token (teacher forcing; ``bos`` before the first). What each
attention computes, and the bridge, is written out in ``runtime.seq2seq``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from derive.errors import DeriveError, Pos, positive_int
from derive.symbolic import spec as cell_spec
from derive.symbolic.cell import Cell
from derive.symbolic import ir, model
from derive.symbolic.model import ModelSpec, stack_from_dict

ATTENTIONS = ("bahdanau", "luong_dot", "luong_general", "none")
BRIDGES = ("learned", "direct", "zero")
KEYS = {"name": str, "title": str, "summary": str, "references": list, "notes": str, "encoder": dict,
        "decoder": dict, "attention": str, "bridge": str, "embedding": dict}


@dataclass(frozen=True)
class Seq2SeqSpec:
    name: str
    encoder: ModelSpec
    decoder: Cell
    decoder_ref: str
    attention: str
    bridge: str
    target_vocab: int
    embed: int
    source_vocab: int | None = None  # None: the source is vectors
    input_feeding: bool = False  # Luong's: the decoder reads [E y_{t-1}; h~_{t-1}] (h~_0 = 0)
    decoder_stack: ModelSpec | None = None  # the decoder's layers (unidirectional); s_t is its top layer's output
    title: str = ""
    meta: dict = field(default_factory=dict)
    source: str = ""

    def sizes(self, hidden: int, input_size: int | None = None) -> dict:
        """The model's widths for a hidden size: H, an annotation A, the encoder's final states side by
        side U, the decoder's input dec_in, what W_o reads K, the source's width src."""
        hidden = positive_int(hidden, "hidden_size")
        D = 2 if self.encoder.bidirectional and self.encoder.merge == "concat" else 1
        A = D * hidden
        U = len(self.encoder.directions) * hidden
        dec_in = self.embed + (A if self.attention == "bahdanau" else 0) + (hidden if self.input_feeding else 0)
        K = {"bahdanau": hidden + A}.get(self.attention, hidden)
        src = self.embed if self.source_vocab else positive_int(input_size, "input_size (the source is vectors)")
        return {"H": hidden, "A": A, "U": U, "dec_in": dec_in, "K": K, "src": src}

    def shapes(self, hidden: int, input_size: int | None = None) -> dict[str, tuple[tuple[int, ...], int | None]]:
        """Every array besides the two stacks': name -> (shape, fan-in of its uniform initialisation; None for
        an embedding, drawn from N(0, 1))."""
        n = self.sizes(hidden, input_size)
        H, A, K, U, L = n["H"], n["A"], n["K"], n["U"], self.decoder_stack.layers
        out = {"E_tgt": ((self.target_vocab, self.embed), None), "W_o": ((self.target_vocab, K), K),
               "b_o": ((self.target_vocab,), K)}
        if self.source_vocab:
            out["E_src"] = ((self.source_vocab, self.embed), None)
        if self.bridge == "learned":
            out["W_b"], out["b_b"] = ((L * H, U), U), ((L * H,), U)
        if self.attention == "bahdanau":
            out["W_a"], out["U_a"], out["v_a"] = ((H, H), H), ((H, A), A), ((H,), H)
        elif self.attention == "luong_general":
            out["W_a"] = ((H, A), A)
        if self.attention.startswith("luong"):
            out["W_c"] = ((H, A + H), A + H)
        return out

    def count(self, hidden: int, *, input_size: int | None = None, convention: str = "single") -> dict[str, int]:
        """Parameters per part ("encoder", "decoder", then each other array), under a convention for the two
        stacks' biases (pytorch: doubled where torch.nn stores two); the total is their sum."""
        n = self.sizes(hidden, input_size)
        parts = {"encoder": self.encoder.count(n["src"], n["H"], convention=convention),
                 "decoder": self.decoder_stack.count(n["dec_in"], n["H"], convention=convention)}
        for k, (shape, _) in self.shapes(hidden, input_size).items():
            parts[k] = math.prod(shape)
        return parts


def load_model(name_or_spec) -> ModelSpec | Seq2SeqSpec:
    """A stack or an encoder-decoder: a built-in model's name, a model spec's path, or a dict of its keys."""
    data, text, source = model.read(name_or_spec)
    if isinstance(name_or_spec, dict):
        data = {"name": "model", **data}
    if model.is_seq2seq(data):
        return from_dict(data, text=text, source=source)
    return model.stack_from_dict(data, text=text, source=source)


def from_dict(data: dict, *, text: str | None, source: str) -> Seq2SeqSpec:
    def fail(message, key=None):
        pos = cell_spec._key_pos(text, key) if text is not None and key else (Pos(1, 1) if text is not None else None)
        raise DeriveError(message, pos, source if text is not None else None)

    for key, value in data.items():
        if key not in KEYS:
            fail(f"unknown key {key!r}; an encoder-decoder spec has: {', '.join(KEYS)}", key)
        if not isinstance(value, KEYS[key]):
            fail(f"{key} must be a {'table' if KEYS[key] is dict else KEYS[key].__name__}", key)
    for key in ("name", "encoder", "decoder", "embedding"):
        if key not in data:
            fail(f"an encoder-decoder spec needs {key!r}")
    attention = data.get("attention", "none")
    if attention not in ATTENTIONS:
        fail(f"attention must be one of {', '.join(ATTENTIONS)}, not {attention!r}", "attention")
    bridge = data.get("bridge", "learned")
    if bridge not in BRIDGES:
        fail(f"bridge must be one of {', '.join(BRIDGES)}, not {bridge!r}", "bridge")
    emb = data["embedding"]
    for key in emb:
        if key not in ("source", "target", "dim"):
            fail(f"unknown key {key!r} in embedding; it has source (vocabulary size, or none for vector inputs), "
                 f"target (vocabulary size) and dim", "embedding")
    for key in ("target", "dim"):
        if key not in emb:
            fail(f"embedding needs {key}", "embedding")
    for key in ("source", "target", "dim"):
        if key in emb and (isinstance(emb[key], bool) or not isinstance(emb[key], int) or emb[key] < 1):
            fail(f"embedding {key} must be a positive integer, not {emb[key]!r}", "embedding")
    enc = dict(data["encoder"])
    dec = dict(data["decoder"])
    if set(dec) - {"cell", "layers", "input_feeding"} or "cell" not in dec:
        fail("decoder is { cell = NAME }, with layers = N and input_feeding = true optional (the decoder runs "
             "forward in time: no bidirectional, merge or residual)", "decoder")
    feeding = dec.get("input_feeding", False)
    if not isinstance(feeding, bool):
        fail(f"decoder input_feeding must be true or false, not {feeding!r}", "decoder")
    if feeding and not attention.startswith("luong"):
        fail(f"input_feeding feeds Luong's attentional vector h~_{{t-1}} to the decoder; with attention = "
             f"{attention!r} there is none (Bahdanau's decoder already reads its context c_t)", "decoder")
    try:
        encoder = stack_from_dict({"name": f"{data['name']}_encoder", **enc}, text=None, source=source)
        decoder = cell_spec.load(dec["cell"])
        stack = stack_from_dict({"name": f"{data['name']}_decoder", "cell": dec["cell"],
                                 "layers": dec.get("layers", 1)}, text=None, source=source)
    except DeriveError as e:
        fail(f"{e.message}", "encoder" if "decoder" not in e.message and "layers" not in e.message else "decoder")
    for what, cell, key in (("encoder", encoder.cell, "encoder"), ("decoder", decoder, "decoder")):
        states = {ir.ref(st).key: cell.dims[ir.ref(st).key] for st in cell.states}
        if ir.ref(cell.output).key not in states or any(str(d) != "H" for d in states.values()):
            fail(f"the {what} cell {cell.name} must output one of its states, every state of the hidden size H "
                 f"(the bridge and the attention read it)", key)
    if decoder.input_size is not None:
        fail(f"the decoder cell {decoder.name} reads an input of the hidden size (I = H); its input here is the "
             f"target's embedding (and the context)", "decoder")
    if attention == "luong_dot" or bridge == "direct":
        what = "luong_dot attention (s_t . h_s)" if attention == "luong_dot" else "a direct bridge"
        if encoder.bidirectional and encoder.merge == "concat":
            fail(f"{what} needs the encoder's output and the decoder's state to have one size: a bidirectional "
                 f"encoder with merge = \"concat\" gives 2H; use merge = \"sum\" or another "
                 f"{'attention' if attention == 'luong_dot' else 'bridge'}", "attention" if attention == "luong_dot"
                 else "bridge")
    if bridge == "direct" and stack.layers > encoder.layers:
        fail(f"a direct bridge starts decoder layer l from encoder layer l (counted from the top): the decoder has "
             f"{stack.layers} layers, the encoder {encoder.layers}", "bridge")
    return Seq2SeqSpec(name=data["name"], encoder=encoder, decoder=decoder, decoder_ref=dec["cell"], decoder_stack=stack,
                       attention=attention, bridge=bridge, target_vocab=emb["target"], embed=emb["dim"],
                       source_vocab=emb.get("source"), input_feeding=feeding, title=data.get("title", data["name"]),
                       meta={k: data[k] for k in ("summary", "references", "notes") if k in data}, source=source)
