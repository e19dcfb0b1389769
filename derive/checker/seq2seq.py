"""Claims about one decoder step of an encoder-decoder (``derive check seq2seq_bahdanau 'formula'``).

A claim is read on decoder step t of one sequence and its loss L_t = -log p_t[y_t]
(``witness.head``): the attention (scores, weights, context), the decoder cell's step, the
attentional vector, the output layer and the softmax; or, when it names u, s_0, W_b or b_b, on the
bridge s_0 = tanh(W_b u + b_b) (or s_0 = u) with dL/ds_0 given. Every gradient is of that loss, so
``+=`` (this step's part of a gradient the steps share) reads as ``=``; a claim that writes T or B
reads the loss as the mean over T steps and B sequences (every gradient divided by T B).

| in the claim                                             | the quantity                          |
|----------------------------------------------------------|---------------------------------------|
| ``a_s``, ``h_j``, ``\\bar{h}_s`` (a source index)         | the encoder's annotation at position s |
| ``s_t``, ``h_t`` (Luong's), ``s_{t-1}``, ``s_{i-1}``     | the decoder's state, this step's and the previous |
| ``e_{t,s}``, ``e_{ij}``, ``\\alpha_{t,s}``, ``z_{t,s}``   | the score, the weight, Bahdanau's W_a s_{t-1} + U_a a_s |
| ``c_t``, ``c_i``, ``\\tilde{h}_t``, ``x_t``               | the context, Luong's attentional vector, the decoder cell's input |
| ``o_t``, ``p_t`` (``\\hat{y}_t``), ``y_t`` (``\\mathbf{1}_{y_t}``) | the logits, the softmax, the one-hot target |
| ``W_a``, ``U_a``, ``v_a``, ``W_c``, ``W_o``, ``b_o``, ``W_b``, ``b_b``, ``u``, ``s_0`` | the parameters and the bridge |
| ``\\sum_{s'}``, ``\\sum_j``                               | a sum over the source positions |

The left side is a quantity, its gradient (``\\delta c_t``, ``dc_t``, ``\\frac{\\partial L}{\\partial W_o}``)
or a stack of them (``\\delta [c_t; s_t]``); a free source index is checked at every position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from derive.checker.model import _LAYERED
from derive.checker.names import _HEAD, _SUB
from derive.checker.numeric import PARTS, Evaluator, Shape, V, describe
from derive.checker.result import Result, Verdict
from derive.errors import DeriveError, Pos
from derive.symbolic import ir, spec
from derive.symbolic.seq2seq import Seq2SeqSpec
from derive.syntax.formulas import Name, Node, parse_formula
from derive.witness import head

SOURCE = ("s", "s'", "j", "j'", "k", "k'")  # a source position's index
STEP = ("t", "i")  # the decoder step's
SIZES = head.HeadSizes()
MEAN = {"T": 3.0, "B": 2.0}  # the mean loss's steps and sequences, where a claim writes them
_ACCUMULATE = re.compile(r"\\mathrel\s*\{\s*\+\s*\}\s*=|\+=")

#: head of a name -> (the graph's key, whether it is indexed by a source position)
QUANTITIES = {
    "a": ("a", True), "h_bar": ("a", True), "e": ("e", True), "alpha": ("alpha", True), "z": ("z", True),
    "c": ("c", False), "h_tilde": ("ht", False), "x": ("x", False), "o": ("o", False), "p": ("p", False),
    "y_hat": ("p", False), "y": ("onehot", False), "W_a": ("W_a", False), "U_a": ("U_a", False),
    "v_a": ("v_a", False), "v": ("v_a", False), "W_c": ("W_c", False), "W_o": ("W_o", False), "b_o": ("b_o", False),
    "W_b": ("W_b", False), "b_b": ("b_b", False), "u": ("u", False), "L": ("L", False),
}
BRIDGE = {"u", "s0", "W_b", "b_b", "ds0"}
WHAT = {"a": "the annotation a_s", "e": "the score e_{t,s}", "alpha": "the attention weight alpha_{t,s}",
        "z": "W_a s_{t-1} + U_a a_s", "c": "the context c_t", "ht": "the attentional vector h~_t",
        "x": "the decoder cell's input x_t", "o": "the logits o_t", "p": "the softmax p_t", "s": "the decoder state s_t",
        "u": "the encoder's final state u", "s0": "the decoder's first state s_0",
        "s_prev": "the previous decoder state s_{t-1}"}


@dataclass(frozen=True)
class Ref:
    key: str  # the graph's name of the quantity
    source: str | None = None  # its source index as written (s, s', j), or None


def check_seq2seq(m: Seq2SeqSpec, formula: str, lets=()) -> Result:
    if lets:
        raise DeriveError(f"--let is not read on an encoder-decoder ({m.name}); write the claim out", Pos(1, 1))
    if not isinstance(formula, str):
        raise DeriveError("a formula must be text")
    _refuse_model(m)
    layered = _LAYERED.search(formula)
    if layered:
        raise DeriveError(f"{m.name} is an encoder-decoder: a claim is about one decoder step, with no layer "
                          f"superscript; its encoder's layers are a stack's ({m.encoder.cell.name}: derive check "
                          f"{m.encoder.cell.name} '...')", Pos(1, layered.start("head") + 1))
    accumulates = _ACCUMULATE.search(formula) is not None
    f = parse_formula(_ACCUMULATE.sub("=", formula), sum_indices=SOURCE)
    names = Vocabulary(m)
    lhs = names.target(f.lhs)
    bridge = any(r.key in BRIDGE for r in names.refs(f.rhs) + [lhs.ref])
    point = _bridge_point(m) if bridge else _step_point(m)
    scale = 1.0 / (MEAN["T"] * MEAN["B"]) if names.mean(f) else 1.0
    ev = StepEvaluator(names, point, scale)
    for r in lhs.refs:
        if r.key not in point.grads:
            raise DeriveError(f"{WHAT.get(r.key, r.key)} is not part of {m.name}'s step", getattr(f.lhs, "pos", None))
    if accumulates:
        lhs.through = _through(point, lhs, {r.key for r in names.refs(f.rhs)}, f.lhs)
    free = lhs.ref.source
    positions = range(SIZES.S) if free else [None]
    worst, where = -1.0, None
    for s in positions:
        left = lhs.value(point, scale, s)
        right = ev.at({free: s} if free else {}, f.rhs)
        gap = _gap(left, right, f.rhs.pos if hasattr(f.rhs, "pos") else None)
        if gap > worst:
            worst, where = gap, (s, left, right, dict(ev.used))
    s, left, right, used = where
    verdict = Verdict.CORRECT if worst <= 1e-9 else Verdict.WRONG
    reading = _reading(m, bridge, lhs.through, scale)
    result = Result(verdict, lhs.quantity, "sympy.diff of the step's graph (derive.witness.head)",
                    f"compared at every source position of a random point, S = {SIZES.S}, H = {SIZES.H}, "
                    f"V = {SIZES.V}" if free else f"compared at a random point, S = {SIZES.S}, H = {SIZES.H}, "
                    f"V = {SIZES.V}", formula=formula, reading=reading)
    if verdict == Verdict.WRONG:
        result.counterexample, result.left, result.right = used, left, right.val
        result.hint = _part_hint(point, lhs, names, f, ev, free) if lhs.adjoint and lhs.through is None else ""
        result.where = f"source position {free} = {s + 1}" if free else "one decoder step"
    return result


def _through(point: head.Point, lhs: "Left", named: set, node) -> set:
    """For ``+=``: the quantities reading the left side's that the right side names; the claim is the part
    of the gradient flowing through them."""
    if not lhs.adjoint:
        raise DeriveError("+= adds to a gradient: the left side is \\delta of a quantity", getattr(node, "pos", None))
    readers = {n for (q, n) in point.paths if q in {point.key(r.key) for r in lhs.refs}}
    through = readers & {point.key(k) for k in named}
    if not through:
        raise DeriveError(f"+= is one path's part of the gradient: the right side names the quantity it flows "
                          f"through; here {', '.join(sorted(WHAT.get(n, n) for n in readers))} read the left side",
                          getattr(node, "pos", None))
    return through


def _part_hint(point, lhs: "Left", names: "Vocabulary", f, ev, free) -> str:
    """A wrong claim that is one path's part of the gradient: say so, and which paths it leaves out."""
    try:
        through = _through(point, lhs, {r.key for r in names.refs(f.rhs)}, f.lhs)
    except DeriveError:
        return ""
    part = Left(lhs.refs, True, through)
    scale = ev.scale
    for s in range(SIZES.S) if free else [None]:
        if _gap(part.value(point, scale, s), ev.at({free: s} if free else {}, f.rhs), None) > 1e-9:
            return ""
    readers = {n for (q, n) in point.paths if q in {point.key(r.key) for r in lhs.refs}}
    rest = ", ".join(WHAT.get(n, n) for n in sorted(readers - through))
    return (f"this is the part that flows through {', '.join(WHAT.get(n, n) for n in sorted(through))}; the gradient "
            f"also flows through {rest} (+= claims a part)")


def _refuse_model(m: Seq2SeqSpec) -> None:
    if m.decoder_stack is not None and m.decoder_stack.layers > 1:
        raise DeriveError(f"{m.name}'s decoder has {m.decoder_stack.layers} layers; a claim is read on a one-layer "
                          f"decoder's step: check a layer with a stack's claims", Pos(1, 1))


def _gap(left: np.ndarray, right: V, pos) -> float:
    if right.kind in PARTS:  # [W_1, W_2] side by side, [W_1; W_2] one above the other, [a; b] one vector
        join = {Shape.BLOCKS: np.hstack, Shape.BLOCKCOL: np.vstack}.get(right.kind, np.concatenate)
        right = V(Shape.MATRIX if right.kind in (Shape.BLOCKS, Shape.BLOCKCOL) else Shape.VECTOR, join(right.val))
    r = np.asarray(right.val, dtype=float)
    if right.kind not in (Shape.SCALAR,) and np.shape(r) != np.shape(left):
        raise DeriveError(f"the right side is a {describe(right)}; the left side has shape {np.shape(left)}", pos)
    scale = max(1.0, float(np.max(np.abs(left))) if np.size(left) else 1.0)
    return float(np.max(np.abs(left - r))) / scale


def _step_point(m: Seq2SeqSpec) -> head.Point:
    return _step_point_of(m.attention, m.decoder_ref, m.decoder.source, m.input_feeding, _sizes(m))


@lru_cache(maxsize=16)
def _step_point_of(attention: str, ref: str, source: str, input_feeding: bool, sizes: head.HeadSizes) -> head.Point:
    """(``source``, the decoder spec's path, keys the cache with ``ref``.)"""
    decoder = spec.load(ref)
    g = head.head_graph(attention, decoder, sizes, input_feeding=input_feeding, target=0)
    point = head.evaluate(g)
    point.values["onehot"] = np.eye(sizes.V)[0]
    prev = f"prev:{ir.ref(decoder.output).key}"
    point.values["s_prev"], point.grads["s_prev"], point.aliases["s_prev"] = point.values[prev], point.grads[prev], prev
    return point


def _bridge_point(m: Seq2SeqSpec) -> head.Point:
    if m.bridge == "zero":
        raise DeriveError(f"{m.name}'s bridge is zero: the decoder starts from s_0 = 0, no gradient reaches u",
                          Pos(1, 1))
    return _bridge_point_of(m.bridge, len(m.encoder.directions) * SIZES.H)


@lru_cache(maxsize=16)
def _bridge_point_of(bridge: str, U: int) -> head.Point:
    return head.evaluate(head.bridge_graph(bridge, SIZES, U))


def _sizes(m: Seq2SeqSpec) -> head.HeadSizes:
    concat = m.encoder.bidirectional and m.encoder.merge == "concat"
    return head.HeadSizes(D=2 if concat else 1)


class Vocabulary:
    """The step's names as the pages, Bahdanau (i, j, h_j) and Luong (h_t, \\bar{h}_s) write them."""

    def __init__(self, m: Seq2SeqSpec):
        self.m = m
        self.bound: set = set()

    def resolve(self, n: Name) -> Ref:
        head_, parts = _split(n.text)
        if head_ == "mathbf{1}" and parts and parts[0] in ("y_t", "y_i"):
            return Ref("onehot")
        steps = [p for p in parts if p.replace(" ", "") in STEP]
        sources = [p for p in parts if p in SOURCE]
        prev = [p for p in parts if p.replace(" ", "") in ("t-1", "i-1")]
        later = [p for p in parts if re.fullmatch(r"[ti]\s*[+-]\s*\d+", p) and p.replace(" ", "") not in ("t-1", "i-1")]
        if later:
            raise DeriveError(f"{n.text}: a claim reads one decoder step t (and s_{{t-1}}); the steps before and "
                              f"after reach it through the decoder cell (derive check {self.m.decoder.name} '...')",
                              n.pos)
        if head_ in ("s", "h") and parts == ["0"]:
            return Ref("s0")
        if head_ == "h" and sources:
            return Ref("a", sources[0])
        if head_ in ("s", "h") and (steps or prev):
            return Ref("s_prev" if prev else "s")
        if head_ in ("T", "B") and not parts:
            return Ref(head_)
        if head_ not in QUANTITIES:
            raise DeriveError(f"{n.text} is not a name of {self.m.name}'s decoder step; it has a_s, s_t, s_{{t-1}}, "
                              f"e_{{t,s}}, \\alpha_{{t,s}}, c_t, \\tilde{{h}}_t, o_t, p_t, y_t and W_o, b_o"
                              f"{_params(self.m)}", n.pos)
        key, indexed = QUANTITIES[head_]
        if indexed and not sources:
            raise DeriveError(f"{n.text} needs a source position: {n.text.split('_')[0]}_{{t,s}}", n.pos)
        return Ref(key, sources[0] if indexed else None)

    def refs(self, node) -> list:
        out = []
        stack = [node]
        while stack:
            x = stack.pop()
            if isinstance(x, Name):
                out.append(self.resolve(x))
            stack.extend(getattr(x, "args", ()))
        return out

    def mean(self, f) -> bool:
        return any(r.key in MEAN for r in self.refs(f.rhs))

    def target(self, node) -> "Left":
        """The left side: a quantity, its gradient, or a stack of gradients."""
        if isinstance(node, Node) and node.kind == "delta":
            return Left([self._known(x) for x in _stacked(node.args[0])], adjoint=True)
        if isinstance(node, Node) and node.kind == "div":
            ref = _partial_of_loss(node, self)
            if ref is not None:
                return Left([ref], adjoint=True)
        if isinstance(node, Name):
            head_, _ = _split(node.text)
            if head_.startswith("d") and head_[1:] in QUANTITIES | {"s": 0, "h": 0}:
                return Left([self._known(Name(node.text[1:], node.pos))], adjoint=True)
            return Left([self._known(node)], adjoint=False)
        raise DeriveError(r"the left side is a quantity, its gradient (\delta c_t, dc_t, \frac{\partial L}"
                          r"{\partial W_o}) or a stack of gradients (\delta [c_t; s_t])", getattr(node, "pos", None))

    def _known(self, n) -> Ref:
        if not isinstance(n, Name):
            raise DeriveError(r"\delta applies to a name or a stack of names, \delta [c_t; s_t]", n.pos)
        ref = self.resolve(n)
        if ref.key in MEAN or ref.key == "onehot":
            raise DeriveError(f"{n.text} is not a quantity of the step with a gradient", n.pos)
        return ref


def _params(m: Seq2SeqSpec) -> str:
    own = {"bahdanau": ", W_a, U_a, v_a, z_{t,s}", "luong_general": ", W_a, W_c", "luong_dot": ", W_c"}
    bridge = {"learned": "; the bridge u, s_0, W_b, b_b", "direct": "; the bridge u, s_0"}
    return own.get(m.attention, "") + bridge.get(m.bridge, "")


def _stacked(node) -> list:
    return list(node.args) if isinstance(node, Node) and node.kind == "concat" else [node]


def _partial_of_loss(node: Node, names: Vocabulary):
    num, den = node.args
    if isinstance(num, Node) and num.kind == "partial" and isinstance(num.args[0], Name) and \
            _split(num.args[0].text)[0] in ("L", "J", "E", "loss") and isinstance(den, Node) and den.kind == "partial":
        return names._known(den.args[0])
    return None


@dataclass
class Left:
    refs: list
    adjoint: bool
    through: set | None = None  # for +=: the part of the gradient through these quantities

    @property
    def ref(self) -> Ref:
        free = [r for r in self.refs if r.source]
        return free[0] if free else self.refs[0]

    @property
    def quantity(self) -> str:
        what = ", ".join(WHAT.get(r.key, r.key) for r in self.refs)
        return f"dL/d of {what}" if self.adjoint else what

    def value(self, point: head.Point, scale: float, s) -> np.ndarray:
        parts = []
        for r in self.refs:
            table = point.grads if self.adjoint else point.values
            if r.key not in table:
                raise DeriveError(f"{WHAT.get(r.key, r.key)} is not part of this model's step")
            v = table[r.key] if self.through is None else point.part(r.key, self.through)
            v = v * (scale if self.adjoint else 1.0)
            parts.append(v[s] if r.source else v)
        return np.concatenate([np.ravel(p) for p in parts]) if len(parts) > 1 else parts[0]


class StepEvaluator(Evaluator):
    """The right side in float64 at the step's point, with source indices bound to positions."""

    def __init__(self, names: Vocabulary, point: head.Point, scale: float):
        super().__init__(names=None, env={})
        self.vocab, self.point, self.scale = names, point, scale
        self.bound: dict = {}

    def at(self, bound: dict, node) -> V:
        self.bound, self.used = dict(bound), {}
        try:
            with np.errstate(all="ignore"):
                return self(node)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
            raise DeriveError(f"cannot evaluate the right side: {e}") from None

    def _get(self, n: Name, adjoint: bool) -> V:
        ref = self.vocab.resolve(n)
        if ref.key in MEAN:
            return V(Shape.SCALAR, MEAN[ref.key])
        table = self.point.grads if adjoint else self.point.values
        if ref.key not in table:
            raise DeriveError(f"{n.text}: {WHAT.get(ref.key, ref.key)} is not part of {self.vocab.m.name}'s step", n.pos)
        value = table[ref.key] * (self.scale if adjoint else 1.0)
        if ref.source:
            if ref.source not in self.bound:
                raise DeriveError(f"{n.text}: the source position {ref.source} is not bound: sum over it "
                                  f"(\\sum_{{{ref.source}}}) or put it on the left side", n.pos)
            value = value[self.bound[ref.source]]
        at = f" at {ref.source} = {self.bound[ref.source] + 1}" if ref.source else ""
        self.used[("d" if adjoint else "") + n.text + at] = value
        kind = Shape.SCALAR if np.ndim(value) == 0 else (Shape.MATRIX if np.ndim(value) == 2 else Shape.VECTOR)
        return V(kind, float(value) if kind == Shape.SCALAR else value)

    def visit_Name(self, n: Name) -> V:
        head_, _ = _split(n.text)
        if head_.startswith("d") and head_ not in QUANTITIES and head_[1:] in QUANTITIES | {"s": 0, "h": 0}:
            return self._get(Name(n.text[1:], n.pos), adjoint=True)
        return self._get(n, adjoint=False)

    def visit_delta(self, node) -> V:
        inner = node.args[0]
        if not isinstance(inner, Name):
            raise DeriveError(r"\delta applies to a name, e.g. \delta c_t", node.pos)
        return self._get(inner, adjoint=True)

    def visit_div(self, node) -> V:
        if _partial_of_loss(node, self.vocab) is not None:
            return self._get(node.args[1].args[0], adjoint=True)
        a, b = self(node.args[0]), self(node.args[1])
        if b.kind != Shape.SCALAR or a.kind in PARTS:
            raise DeriveError(f"cannot divide a {describe(a)} by a {describe(b)}", node.pos)
        return V(a.kind, a.val / b.val)

    def visit_sum(self, node) -> V:
        if node.index == "t":
            raise DeriveError(r"a claim reads one decoder step: a sum runs over the source positions, \sum_{s'}",
                              node.pos)
        if node.index in self.bound:
            raise DeriveError(f"the sum's index {node.index} is already bound; use another, \\sum_{{s'}}", node.pos)
        total = None
        for s in range(SIZES.S):
            self.bound[node.index] = s
            term = self(node.args[0])
            total = term if total is None else self.add(total, term, node.pos)
        del self.bound[node.index]
        return total

    def add(self, a: V, b: V, pos) -> V:
        if a.kind != b.kind or np.shape(a.val) != np.shape(b.val):
            raise DeriveError(f"the terms of the sum have different shapes ({describe(a)}, {describe(b)})", pos)
        return V(a.kind, a.val + b.val)


def _split(text: str) -> tuple[str, list]:
    """``e_{t,s}`` -> ("e", ["t", "s"]); ``e_{ij}`` -> ("e", ["i", "j"]); ``\\bar{h}_s`` -> ("h_bar", ["s"])."""
    m = _HEAD.match(text)
    if m[2]:
        head_, parts = f"{m[1]}{m[3]}_{m[2]}", ([m[4].strip("{}")] if m[4] else [])
    else:
        head_, parts = m[0].lstrip("\\"), []
    for sm in _SUB.finditer(text, m.end()):
        body = sm.group(1)[1:-1] if sm.group(1).startswith("{") else sm.group(1)
        parts += [p.strip() for p in body.split(",")]
    if len(parts) == 1 and len(parts[0]) == 2 and parts[0][0] in STEP and parts[0][1] in "jks":
        parts = [parts[0][0], parts[0][1]]  # Bahdanau's e_{ij}, \alpha_{ij}
    if head_.lstrip("d") in ("W", "U", "v", "b") and parts:  # a parameter: its subscript is its name
        head_, parts = f"{head_}_{parts[0]}", parts[1:]
    return head_, parts


def _reading(m: Seq2SeqSpec, bridge: bool, through: set | None, scale: float) -> str:
    if bridge:
        how = {"learned": "s_0 = tanh(W_b u + b_b)", "direct": "s_0 = u"}[m.bridge]
        text = f"{m.name}'s bridge, {how}, u the encoder's final state, with dL/ds_0 given"
    else:
        text = (f"decoder step t of {m.name} ({m.attention} attention, the {m.decoder.name} decoder), the loss "
                f"L_t = -log p_t[y_t]")
        if scale != 1.0:
            text += f" as a part of the mean over T = {MEAN['T']:g} steps and B = {MEAN['B']:g} sequences"
    if through:
        text += (f"; += is the part of the gradient that flows through "
                 f"{', '.join(WHAT.get(n, n) for n in sorted(through))}")
    return text
