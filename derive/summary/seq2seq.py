"""An encoder-decoder's equations, forward and backward, as terminal text and LaTeX (``derive show``, its page).

The rows follow ``runtime.seq2seq``, which computes them and whose gradients the tests check against
PyTorch autograd written from the papers; the encoder's and the decoder cell's own steps are derived
on their cells' pages.
"""

from __future__ import annotations

from derive.symbolic.seq2seq import Seq2SeqSpec


def _row(text: str, latex: str, note: str = "") -> dict:
    """``lhs = rhs`` or ``lhs += rhs`` (a gradient that adds to what other steps gave)."""
    op = " += " if " += " in text.split(" = ", 1)[0] + " " else " = "
    lhs_t, rhs_t = text.split(op, 1)
    lhs_l, rhs_l = latex.split(r" \mathrel{+}= " if op == " += " else " = ", 1)
    return {"lhs": {"text": lhs_t, "latex": lhs_l}, "rhs": {"text": rhs_t, "latex": rhs_l}, "note": note,
            "op": {"text": op.strip(), "latex": r"\mathrel{+}=" if op == " += " else "="}}


def _luong(general: bool) -> tuple:
    """Luong's rows: the scores s_t^T W_a a_s ("general") or s_t^T a_s ("dot"), read after the decoder step."""
    proj_t, proj_l = ("W_a a_s", "W_a a_s") if general else ("a_s", "a_s")
    back_t, back_l = ("W_a^T s_t", r"W_a^\top s_t") if general else ("s_t", "s_t")
    note = "multiplicative (general) scores" if general else "multiplicative (dot) scores: a_s and s_t have one size"
    return (
        [_row("s_t = cell(E y_{t-1}, s_{t-1})", r"s_t = \operatorname{cell}(E y_{t-1}, s_{t-1})"),
         _row(f"e_{{t,s}} = s_t^T {proj_t}", rf"e_{{t,s}} = s_t^\top {proj_l}", note),
         _row("alpha_{t,s} = softmax_s(e_{t,s})", r"\alpha_{t,s} = \operatorname{softmax}_s(e_{t,s})"),
         _row("c_t = sum_s alpha_{t,s} a_s", r"c_t = \sum_s \alpha_{t,s} a_s"),
         _row("h~_t = tanh(W_c [c_t; s_t])", r"\tilde{h}_t = \tanh(W_c [c_t; s_t])"),
         _row("o_t = W_o h~_t + b_o", r"o_t = W_o \tilde{h}_t + b_o")],
        [_row("d[c_t; s_t] = W_c^T (W_o^T do_t (.) (1 - h~_t^2))",
              r"\delta [c_t; s_t] = W_c^\top \left(W_o^\top \delta o_t \odot (1 - \tilde{h}_t^2)\right)"),
         _row("dalpha_{t,s} = a_s . dc_t", r"\delta \alpha_{t,s} = a_s^\top \delta c_t"),
         _row("de_{t,s} = alpha_{t,s} (dalpha_{t,s} - sum_{s'} alpha_{t,s'} dalpha_{t,s'})",
              r"\delta e_{t,s} = \alpha_{t,s} \left(\delta \alpha_{t,s} - \sum_{s'} \alpha_{t,s'} \delta \alpha_{t,s'}\right)",
              "through the softmax"),
         _row(f"ds_t += sum_s de_{{t,s}} {proj_t}", rf"\delta s_t \mathrel{{+}}= \sum_s \delta e_{{t,s}} {proj_l}",
              "the scores read s_t: the decoder cell's dy_t"),
         _row(f"da_s += alpha_{{t,s}} dc_t + {back_t} de_{{t,s}}",
              rf"\delta a_s \mathrel{{+}}= \alpha_{{t,s}} \delta c_t + {back_l}\, \delta e_{{t,s}}")])


def _fed(forward: list, backward: list) -> tuple:
    """Luong's input feeding: the decoder step reads h~_{t-1}, whose gradient comes back from step t's input."""
    step = _row("s_t = cell([E y_{t-1}; h~_{t-1}], s_{t-1})",
                r"s_t = \operatorname{cell}([E y_{t-1}; \tilde{h}_{t-1}], s_{t-1})",
                "input feeding: the previous attentional vector (h~_0 = 0)")
    fed = _row("dh~_t = W_o^T do_t + (the h~ columns of the cell's dx_{t+1})",
               r"\delta \tilde{h}_t = W_o^\top \delta o_t + \delta x_{t+1}^{[\tilde{h}]}",
               "h~_t reaches the loss twice: through o_t and through step t+1's input")
    through = _row("d[c_t; s_t] = W_c^T (dh~_t (.) (1 - h~_t^2))",
                   r"\delta [c_t; s_t] = W_c^\top \left(\delta \tilde{h}_t \odot (1 - \tilde{h}_t^2)\right)")
    return [step, *forward[1:]], [fed, through, *backward[1:]]


#: attention -> (forward rows, backward rows)
ATTENTION = {
    "bahdanau": (
        [_row("e_{t,s} = v_a^T tanh(W_a s_{t-1} + U_a a_s)", r"e_{t,s} = v_a^\top \tanh(W_a s_{t-1} + U_a a_s)",
              "additive scores from the previous decoder state"),
         _row("alpha_{t,s} = softmax_s(e_{t,s})", r"\alpha_{t,s} = \operatorname{softmax}_s(e_{t,s})"),
         _row("c_t = sum_s alpha_{t,s} a_s", r"c_t = \sum_s \alpha_{t,s} a_s", "the context"),
         _row("s_t = cell([E y_{t-1}; c_t], s_{t-1})", r"s_t = \operatorname{cell}([E y_{t-1}; c_t], s_{t-1})",
              "the decoder reads the context"),
         _row("o_t = W_o [s_t; c_t] + b_o", r"o_t = W_o [s_t; c_t] + b_o")],
        [_row("d[s_t; c_t] = W_o^T do_t", r"\delta [s_t; c_t] = W_o^\top \delta o_t"),
         _row("dc_t = (the part of d[s_t; c_t]) + (the context's columns of the cell's dx_t)",
              r"\delta c_t = \delta c_t^{\mathrm{out}} + \delta x_t^{[c]}", "c_t reaches the loss twice"),
         _row("dalpha_{t,s} = a_s . dc_t", r"\delta \alpha_{t,s} = a_s^\top \delta c_t"),
         _row("de_{t,s} = alpha_{t,s} (dalpha_{t,s} - sum_{s'} alpha_{t,s'} dalpha_{t,s'})",
              r"\delta e_{t,s} = \alpha_{t,s} \left(\delta \alpha_{t,s} - \sum_{s'} \alpha_{t,s'} \delta \alpha_{t,s'}\right)",
              "through the softmax"),
         _row("dz_{t,s} = de_{t,s} v_a (.) (1 - tanh^2(W_a s_{t-1} + U_a a_s))",
              r"\delta z_{t,s} = \delta e_{t,s}\, v_a \odot \left(1 - \tanh^2(W_a s_{t-1} + U_a a_s)\right)"),
         _row("da_s += alpha_{t,s} dc_t + U_a^T dz_{t,s}",
              r"\delta a_s \mathrel{+}= \alpha_{t,s} \delta c_t + U_a^\top \delta z_{t,s}"),
         _row("ds_{t-1} += W_a^T sum_s dz_{t,s}", r"\delta s_{t-1} \mathrel{+}= W_a^\top \sum_s \delta z_{t,s}",
              "the next step's attention sends a gradient back to the state it read")]),
    "none": (
        [_row("s_t = cell(E y_{t-1}, s_{t-1})", r"s_t = \operatorname{cell}(E y_{t-1}, s_{t-1})"),
         _row("o_t = W_o s_t + b_o", r"o_t = W_o s_t + b_o")],
        [_row("ds_t = W_o^T do_t", r"\delta s_t = W_o^\top \delta o_t", "the decoder cell's dy_t")]),
}
ATTENTION["luong_general"], ATTENTION["luong_dot"] = _luong(True), _luong(False)

BRIDGE = {
    "learned": ([_row("s_0 = tanh(W_b u + b_b)", r"s_0 = \tanh(W_b u + b_b)",
                      "u: the encoder's final states of its top layer, directions side by side")],
                [_row("du = W_b^T (ds_0 (.) (1 - s_0^2))", r"\delta u = W_b^\top \left(\delta s_0 \odot (1 - s_0^2)\right)",
                      "into the encoder's final states")]),
    "direct": ([_row("s_0 = u", "s_0 = u", "the encoder's final state")],
               [_row("du = ds_0", r"\delta u = \delta s_0", "into the encoder's final state")]),
    "zero": ([_row("s_0 = 0", "s_0 = 0")], []),
}


def _deep(m: Seq2SeqSpec, fwd_bridge: list, bwd_bridge: list) -> tuple:
    """A decoder of L > 1 layers: the bridge starts every layer; s_t is the top layer's state."""
    L = m.decoder_stack.layers
    fwd = {"learned": _row("s^(l)_0 = tanh(W_b^(l) u + b_b^(l))", r"s^{(l)}_0 = \tanh(W_b^{(l)} u + b_b^{(l)})",
                           f"one map per decoder layer l = 1..{L} (W_b stacks them)"),
           "direct": _row("s^(l)_0 = u^(l)", r"s^{(l)}_0 = u^{(l)}",
                          f"decoder layer l from encoder layer l, both counted from the top ({L} of them)"),
           "zero": _row("s^(l)_0 = 0", r"s^{(l)}_0 = 0")}[m.bridge]
    bwd = {"learned": [_row("du = sum_l W_b^(l)T (ds^(l)_0 (.) (1 - s^(l)_0^2))",
                            r"\delta u = \sum_l W_b^{(l)\top} \left(\delta s^{(l)}_0 \odot (1 - (s^{(l)}_0)^2)\right)",
                            "into the encoder's final states")],
           "direct": [_row("du^(l) = ds^(l)_0", r"\delta u^{(l)} = \delta s^{(l)}_0",
                           "into each bridged encoder layer's final state")], "zero": []}[m.bridge]
    stack = _row("s_t = s^(L)_t, s^(l)_t = cell(s^(l-1)_t, s^(l)_{t-1})",
                 r"s_t = s^{(L)}_t,\; s^{(l)}_t = \operatorname{cell}(s^{(l-1)}_t, s^{(l)}_{t-1})",
                 f"{L} decoder layers; the first reads the step's input, the attention the top layer's state")
    return [fwd, stack], bwd


def collect(m: Seq2SeqSpec) -> dict:
    fwd_att, bwd_att = ATTENTION[m.attention]
    if m.input_feeding:
        fwd_att, bwd_att = _fed(fwd_att, bwd_att)
    fwd_bridge, bwd_bridge = BRIDGE[m.bridge]
    if m.decoder_stack is not None and m.decoder_stack.layers > 1:
        fwd_bridge, bwd_bridge = _deep(m, fwd_bridge, bwd_bridge)
    enc = m.encoder
    forward = [_row("a_s = encoder(x)_s", r"a_s = \operatorname{encoder}(x)_s",
                    f"{enc.layers} layer(s) of {enc.cell.name}" + (", bidirectional" if enc.bidirectional else "")),
               *fwd_bridge, *fwd_att,
               _row("p_t = softmax(o_t)", r"p_t = \operatorname{softmax}(o_t)"),
               _row("L = -(1/TB) sum_{t,b} log p_t[y_t]", r"L = -\frac{1}{TB} \sum_{t,b} \log p_t[y_t]",
                    "teacher forcing: the decoder reads the true y_{t-1}")]
    backward = [_row("do_t = (p_t - onehot(y_t)) / (T B)", r"\delta o_t = \frac{p_t - \mathbf{1}_{y_t}}{T B}",
                     "the loss gradient through the softmax"),
                *bwd_att,
                _row("(ds_{t-1}, dx_t) = the decoder cell's BPTT step", r"(\delta s_{t-1}, \delta x_t) = "
                     r"\operatorname{cell}^\top(\delta s_t)", "the cell's adjoints, one step at a time"),
                *bwd_bridge,
                _row("dx = the encoder's BPTT of (da_s, du)", r"\delta x = \operatorname{encoder}^\top(\delta a, \delta u)",
                     "the stack's chain rule across its layers")]
    return {"name": m.name, "title": m.title, "source": m.source, "summary": m.meta.get("summary", ""),
            "references": m.meta.get("references", []), "encoder": enc.cell.name, "decoder": m.decoder.name,
            "attention": m.attention, "bridge": m.bridge, "forward": forward, "backward": backward,
            "vocab": m.target_vocab, "embed": m.embed}


def render_text(data: dict) -> str:
    lines = [f"{data['title']}  [{data['name']}, {data['source']}]", data["summary"],
             f"encoder {data['encoder']}, decoder {data['decoder']}, attention {data['attention']}, "
             f"bridge {data['bridge']}"]
    for title, rows in (("Forward", data["forward"]), ("Backward (t from the last step down)", data["backward"])):
        lines.append(f"\n{title}")
        lines.extend(f"  {r['lhs']['text']} {r['op']['text']} {r['rhs']['text']}" + (f"    # {r['note']}" if r["note"] else "")
                     for r in rows)
    return "\n".join(lines)
