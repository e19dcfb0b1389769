"""The sequence patterns and what each framework returns as output and as state (the page
"Outputs and states"). Every framework fact is a row with an ``id``; ``tests/test_outputs_states.py``
holds one check per id, run against PyTorch and Keras, so the page states nothing the frameworks do not do.
"""

from __future__ import annotations

#: the input/output patterns: where inputs arrive, which outputs the loss reads (so where the
#: direct adjoint delta y_t is non-zero), and how each framework is asked for them
PATTERNS = [
    {"name": "one-to-one", "example": "image classification (no recurrence: a feed-forward layer)",
     "inputs": "one", "dy": "its one output", "torch": "—", "keras": "—"},
    {"name": "one-to-many", "example": "image captioning, generating from a start token",
     "inputs": "one (as $x_1$ or as $h_0$), then each output fed back as the next input",
     "dy": "every $t$",
     "torch": "a loop over steps (the next input depends on the last output)",
     "keras": "a loop over steps, or `return_sequences=True` under teacher forcing"},
    {"name": "many-to-one", "example": "sentiment of a sentence, classifying a sequence",
     "inputs": "every $x_t$", "dy": "$t = T$ only",
     "torch": "`output[-1]` (one direction) or `h_n[-1]`", "keras": "the default, `return_sequences=False`"},
    {"name": "many-to-many, aligned", "example": "tagging each word, labelling each frame",
     "inputs": "every $x_t$", "dy": "every $t$",
     "torch": "`output`", "keras": "`return_sequences=True`"},
    {"name": "many-to-many, encoder-decoder", "example": "translation, summarisation",
     "inputs": "the source into the encoder; the target, shifted, into the decoder",
     "dy": "the decoder's steps; the encoder gets its gradient through the bridge (and attention)",
     "torch": "the encoder's `h_n` (and `output` for attention) into a second module",
     "keras": "`return_state=True` on the encoder, `initial_state=` on the decoder"},
]

#: what a recurrent layer returns, per framework; each row's ``id`` names its check in the tests
FACTS = {
    "pytorch": [
        {"id": "torch_returns", "text": "`nn.RNN` and `nn.GRU` return `output, h_n`; `nn.LSTM` returns `output, (h_n, c_n)`."},
        {"id": "torch_output", "text": "`output` is $(T, B, D \\cdot H_{out})$ (`batch_first=True`: $(B, T, D \\cdot H_{out})$): the "
                                       "**top layer's** $h_t$ at every step, the two directions concatenated, forward first."},
        {"id": "torch_h_n", "text": "`h_n` (and `c_n`) is $(D \\cdot L, B, H_{out})$: the **final** state of every layer and direction, "
                                    "layer $l$ direction $d$ at index $D l + d$ (0 forward, 1 reverse); `batch_first` does not change it."},
        {"id": "torch_last", "text": "One direction: `output[-1]` equals `h_n[-1]`, the top layer's last state."},
        {"id": "torch_bidirectional", "text": "Bidirectional: the reverse direction's final state is `output[0, :, H:]` (= `h_n[-1]`), "
                                              "not `output[-1, :, H:]`, which has read $x_T$ only. `output[-1]` is therefore "
                                              "**not** a summary of the sequence in both directions; `h_n[-2:]` is."},
        {"id": "torch_proj", "text": "`nn.LSTM(proj_size=P)`: `output` and `h_n` have $P$ features, `c_n` has $H$."},
        {"id": "torch_cells", "text": "No per-step $c_t$: `output` carries $h_t$ only. Per-step cell states need a loop over "
                                      "`nn.LSTMCell`, or derive's kernel, which caches them."},
        {"id": "torch_packed", "text": "A packed batch (`pack_padded_sequence`): `h_n` holds each sequence's state at its own "
                                       "last step, and the padded `output` is 0 after it."},
    ],
    "keras": [
        {"id": "keras_default", "text": "The default (`return_sequences=False`) returns the last step's output, $(B, H)$."},
        {"id": "keras_sequences", "text": "`return_sequences=True` returns every step's output, $(B, T, H)$: Keras is batch-major."},
        {"id": "keras_state", "text": "`return_state=True` appends the final states: `LSTM` returns `[output, h_T, c_T]`, `GRU` and "
                                      "`SimpleRNN` `[output, h_T]`; without `return_sequences`, `output` is `h_T` again."},
        {"id": "keras_stack", "text": "A stack: every layer but the last needs `return_sequences=True`, since the next layer reads a "
                                      "sequence $(B, T, F)$; each layer's final state comes from its own `return_state`."},
        {"id": "keras_bidirectional", "text": "`Bidirectional` concatenates by default (`merge_mode='concat'`; also `'sum'`, `'mul'`, "
                                              "`'ave'`, `None`). With `return_state=True` it returns the output, then the forward "
                                              "states, then the backward ones (5 tensors for an LSTM). The backward direction's sequence "
                                              "is aligned with the input (its final state is at $t = 1$), and without `return_sequences` "
                                              "the output is both final states concatenated."},
    ],
    "derive": [
        {"id": "derive_forward", "text": "`y, states_T, cache = forward(x, states0, params)`: `y` is $(T, B, \\cdot)$, the output at "
                                         "every step; `states_T` every state's final value by name (`h` and `c` for the LSTM); "
                                         "`cache` holds every intermediate of every step for `backward`."},
        {"id": "derive_last", "text": "When the output is a state (`output = \"h\"` and `h` among `states` in the spec: the LSTM, "
                                      "the GRU), `y[-1]` equals `states_T[\"h\"]`; the LSTM with projection's `h` is the "
                                      "projected state, $P$ features, beside `c` with $H$. When it is not (SRU, QRNN: the state is "
                                      "`c`, the output `h` is computed from it), `y[-1]` is not among `states_T`."},
        {"id": "derive_stack", "text": "`derive.Stack(...).forward(x)` returns the top layer's `y` (directions concatenated, "
                                       "forward first, as PyTorch's `output`) and the final states keyed by (layer, reverse)."},
    ],
}


def context() -> dict:
    return {"patterns": PATTERNS, "facts": FACTS}
