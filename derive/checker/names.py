"""A cell's vocabulary for a claim: the names the pages print (``a_{c,1,t}`` with its commas), their
aliases (PyTorch, the seeds, colah's C_t), the spec's named constants (``\\beta``), the loss's gradient
of the output (``dy_t``, or ``dy_{loss,t}``) and the names a ``--let`` defines, each resolved to what
it means."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import sympy as sp

from derive.errors import DeriveError, Pos
from derive.symbolic import bptt, ir, printing
from derive.symbolic.cell import H, I, P
from derive.symbolic.preactivations import PREACTIVATION_PREFIXES
from derive.syntax.equations import _TIME
from derive.checker.visitor import Op, is_op
from derive.syntax.formulas import Name

#: constants a formula may write without the spec declaring them (e^{u} as the pages print exp(u))
BUILTIN_CONSTANTS = {"e": sp.E, "pi": sp.pi}

#: the loss, as sources name it (\\mathcal{L} and \\ell are read as L); after the cell's own names
LOSS_NAMES = ("L", "E", "J", "Loss", "loss")

#: other spellings of a cell's vectors: colah's C_t and \tilde{C}_t, the GRU candidate \tilde{h}_t
VECTOR_ALIASES = {"C": "c", "c_tilde": "g", "C_tilde": "g", "h_tilde": "n", "h_hat": "n"}

_HEAD = re.compile(r"(d?)\\(tilde|hat|bar)\{([A-Za-z])(?:_(\{[^{}]*\}|[A-Za-z0-9]+))?\}|\\math(?:bf|bb)\{1\}|\\[A-Za-z]+"
                   r"|[A-Za-z][A-Za-z0-9]*")
_SUB = re.compile(r"_(\{(?:[^{}]|\{[^{}]*\})*\}|[A-Za-z0-9]+)")
_TIMES = {"t": 0, "next": 1, "prev": -1}


def _time(part: str):
    p = part.replace(" ", "")
    if p in _TIMES:
        return _TIMES[p]
    m = _TIME.match(p)
    if m and m[1]:
        return int(m[2]) * (1 if m[1] == "+" else -1)
    return None


def split_name(text: str):
    """``W_{xf}`` -> ("W", "xf", None); ``z_{f,t+1}`` -> ("z", "f", 1); ``\\tilde{c}_t`` -> ("c_tilde", "", 0);
    ``z_{c,1,t}`` -> ("z", "c,1", 0): the parts of a subscript keep their commas, as the spec's names do."""
    m = _HEAD.match(text)
    if m[2]:
        head, inner = f"{m[1]}{m[3]}_{m[2]}", m[4]
        parts = [p.strip() for p in inner.strip("{}").split(",")] if inner else []
    else:
        head, parts = m[0].lstrip("\\"), []
    for sm in _SUB.finditer(text, m.end()):
        body = sm.group(1)[1:-1] if sm.group(1).startswith("{") else sm.group(1)
        parts += [p.strip() for p in body.split(",")]
    parts = [re.sub(r"^\\(tilde|hat|bar)\{([A-Za-z])\}$", r"\2_\1", p) for p in parts]  # z_{\tilde{h},t}
    time = None
    if parts and _time(parts[-1]) is not None:
        time = _time(parts.pop())
    return head, ",".join(parts), time


class RefKind(enum.StrEnum):
    """What a name means."""

    def describe(self) -> str:
        return {"vec": "a vector", "adj": "an adjoint", "param": "a parameter", "dparam": "a parameter's gradient",
                "dim": "a size", "loss": "the loss", "one": "the ones vector", "let": "a --let name",
                "dy": "the loss's gradient of the output", "const": "a constant"}[self.value]

    VEC = "vec"  # a vector at a step: the symbol
    ADJ = "adj"  # its adjoint (dc_t): the vector's symbol
    PARAM = "param"  # a parameter: the Param
    DPARAM = "dparam"  # its gradient (dW_{xf}): the Param
    DIM = "dim"  # a size I, H, P: the SymPy symbol
    LOSS = "loss"  # L
    ONE = "one"  # \mathbf{1}
    LET = "let"  # a --let name: its expression
    DY = "dy"  # dy_t (or dy_{loss,t}), the loss's gradient of the output: its symbol
    CONST = "const"  # a constant the spec declares (\\beta), or e, \\pi: its exact value


@dataclass(frozen=True)
class Ref:
    kind: RefKind
    value: object = None


class Names:
    """A cell's vocabulary: the page's names, aliases (PyTorch, the seeds, colah) and --let."""

    def __init__(self, cell, lets: dict, renames: dict | None = None, dy=None, shift: int = 0):
        self.cell = cell
        self.shift = shift  # added to every time index: a claim stated at t-1 is read at t
        self.lets = lets
        self.renames = renames or {}
        self.param_alias = _param_aliases(cell)
        syms = [cell.input, *cell.states, *(a.target for a in cell.assignments)]
        syms += [cell.clock.mask] if cell.clock is not None else []  # m_t, the clock's update mask
        self.parts = {ir.ref(s).key: (ir.ref(s).base, ir.ref(s).sub) for s in syms}
        self.spelled: set = set()  # the other letters the claim wrote the pre-activations with (z_{f,t})
        self._dy = dy
        for name in lets:
            self._refuse_own(name)

    def _refuse_own(self, name: str) -> None:
        """A --let may not silently replace one of the cell's own names (dh_t, W_{xf}, H): only
        an --override does."""
        if name in getattr(self.lets, "overrides", ()):
            return
        try:
            ref = self.own(Name(name, Pos(1, 1)))
        except DeriveError:
            return
        where = self.lets.where(name) if hasattr(self.lets, "where") else f"--let {name}"
        text = getattr(self.lets, "texts", {}).get(name, f"{name} = ...")
        raise DeriveError(f"{name} is already a name of {self.cell.name} ({ref.kind.describe()}); a --let "
                          f"defines a new name. To replace it on purpose, give --override {text!r}",
                          Pos(1, 1), where)

    @property
    def dy(self):
        """The symbol of dL/d(output)_t: ``dy_t``, or ``dy_{loss,t}`` when the cell has a vector y of its
        own (``Derivation.dy``); derived here only if the caller did not pass it."""
        if self._dy is None:
            self._dy = bptt.derive(self.cell).dy
        return self._dy

    def known(self) -> str:
        c = self.cell
        vecs = [printing.symbol_text(ir.symbol(*self.parts[k], 0)) for k in c.dims]
        params = list(c.params)
        consts = ", ".join(f"\\{k}" if len(k) > 1 else k for k in c.constants)
        loss = f"; the loss's gradient of the output {printing.symbol_text(self._dy)}" \
            if self._dy is not None and self._dy != bptt.DY else ""
        return (f"vectors {', '.join(vecs)} (and at t-1, t+1; adjoints d<name>, e.g. d{vecs[-1]}); "
                f"parameters {', '.join(params)}; {f'constants {consts}; ' if consts else ''}"
                f"sizes I, H{', P' if P in c.dims.values() else ''}{loss}")

    def resolve(self, n: Name) -> Ref:
        if n.text in self.lets:
            return Ref(RefKind.LET, self.lets[n.text])
        return self.own(n)

    def shifted(self, shift: int) -> "Names":
        """The same vocabulary with every time index moved by ``shift`` (``dc_{t-1} = ...`` read at t)."""
        out = Names(self.cell, {}, self.renames, self._dy, shift)
        out.lets, out.param_alias, out.spelled = self.lets, self.param_alias, self.spelled
        return out

    def loss_gradient(self, node):
        """The adjoint symbol that ``\\frac{\\partial L}{\\partial h_t}`` (or ``dL/dh_t``) names on a right
        side; None when ``node`` is no such quotient."""
        if not is_op(node, Op.DIV):
            return None
        top, bottom = (differential(a) for a in node.args)
        if top is None or bottom is None or self.resolve(top).kind != RefKind.LOSS:
            return None
        ref = self.resolve(bottom) if bottom.text in self.lets else None
        if ref is not None and ref.kind == RefKind.LET and isinstance(ref.value, Name):
            bottom = ref.value
        try:
            return self.adjoint_of(bottom)  # dh_t, or dy_t for the loss's own gradient of the output
        except DeriveError:
            raise DeriveError(r"on the right side, \frac{\partial L}{\partial v} is the gradient of a vector v at a "
                              "step", bottom.pos) from None

    def own(self, n: Name) -> Ref:
        """What ``n`` names in the cell itself, --let names aside."""
        head, sub, time = split_name(n.text)
        if time is not None:
            time += self.shift
        if time is None and sub and head in ("prev", "next", "dprev", "dnext"):
            return self._code_name(n, head, sub)
        ref = self._plain(head, sub, time)
        if ref is None and len(head) > 1 and head.startswith("d"):
            inner = self._plain(head[1:], sub, time)
            if inner is not None and inner.kind in (RefKind.VEC, RefKind.PARAM):
                return Ref(RefKind.ADJ if inner.kind == RefKind.VEC else RefKind.DPARAM, inner.value)
            dy = self._loss_gradient(sub, time) if head == "dy" else None
            if dy is not None:
                return Ref(RefKind.DY, dy)
        if ref is None:
            raise DeriveError(f"unknown symbol {n.text}; known: {self.known()}", n.pos)
        return ref

    def _code_name(self, n: Name, head: str, sub: str) -> Ref:
        """Names of CS231n-style step code: ``prev_h`` is h_{t-1} in every source; ``next_h`` and the
        gradients ``dnext_c``, ``dprev_c`` mean different things in different courses' code."""
        if head == "prev":
            ref = self._plain(sub, "", -1 + self.shift)
            if ref is not None:
                return ref
        if head in ("next", "dnext", "dprev") and self._plain(sub, "", 0) is not None:
            meaning = {"next": f"CS231n's step code means {sub}_t by next_{sub} (this step's output); "
                               f"plain text here reads {sub}_next as {sub}_{{t+1}}",
                       "dnext": f"CS231n's step code means the gradient reaching {sub}_t from the later steps by "
                                f"dnext_{sub}; d{sub}_next here is d{sub}_{{t+1}}",
                       "dprev": f"CS231n's step code means the part of d{sub}_{{t-1}} that step t passes back by "
                                f"dprev_{sub}"}[head]
            raise DeriveError(f"{n.text} is ambiguous: {meaning}. Write the step: {sub}_t, {sub}_{{t+1}}, "
                              f"d{sub}_{{t+1}}, d{sub}_{{t-1}} (a left side at t-1 may be the carry), or define it "
                              f"with --let", n.pos)
        raise DeriveError(f"unknown symbol {n.text}; known: {self.known()}", n.pos)

    def adjoint_of(self, n: Name):
        """\\delta NAME: the adjoint symbol (dy_t for the loss's own gradient of the output)."""
        head, sub, time = split_name(n.text)
        if head == "y" and n.text not in self.lets and self._plain(head, sub, time) is None:
            dy = self._loss_gradient(sub, time)
            if dy is not None:
                return dy
        ref = self.resolve(n)
        if ref.kind != RefKind.VEC:
            raise DeriveError(rf"\delta {n.text}: the adjoint of a vector at a step is meant", n.pos)
        return ir.adjoint(ref.value)

    def _loss_gradient(self, sub, time):
        """dy_t, the loss's gradient of the output, for a name y_{sub} at ``time`` that is no vector of
        the cell: y_t, or y_{loss,t} when the cell has a vector y of its own (``Derivation.dy``)."""
        if time != 0:
            return None
        if sub == "":
            return bptt.DY
        return self.dy if self.dy != bptt.DY and sub == ir.ref(self.dy).sub else None

    def _plain(self, head, sub, time):
        """What ``head_{sub}`` at ``time`` names; a subscript written with commas (z_{c,1,t}) is the
        spec's name, and also tried without them (W_{x,f} for W_{xf})."""
        out = self._key(head + (f"_{sub}" if sub else ""), time)
        if out is None and "," in sub:
            out = self._key(f"{head}_{sub.replace(',', '')}", time)
        return out

    def _preactivation(self, key: str) -> str:
        """A pre-activation in another source's letter: z_{f,t} (Greff, Karpathy, and derive's pages before
        2026-12) or u_{f,t} read as the cell's a_{f,t}, when the cell has no vector of that name itself.
        Before the renames of another convention, so that a_{n,t} and z_{n,t} both reach gru_cho's a_{h~,t}."""
        head, _, sub = key.partition("_")
        if key in self.cell.dims or not sub or head == self.cell.preactivation or head not in PREACTIVATION_PREFIXES:
            return key
        self.spelled.add(head)
        return f"{self.cell.preactivation}_{sub}"

    def respell(self, text: str) -> str:
        """A report's text with the pre-activations in the letter the claim wrote them with
        (``dz_{o,t+1}`` for a claim in Greff's or Karpathy's z): one letter per claim."""
        if len(self.spelled) != 1:
            return text
        letter = next(iter(self.spelled))
        return re.sub(rf"(?<![A-Za-z\\])(d?){self.cell.preactivation}_\{{", rf"\g<1>{letter}_{{", text)

    def _key(self, key, time):
        c = self.cell
        if time is not None:
            key = self._preactivation(key)
        key = self.renames.get(key, key)
        if time is not None:
            key = VECTOR_ALIASES.get(key, key) if key not in c.dims else key
            if key in c.dims:
                base, s = self.parts[key]
                return Ref(RefKind.VEC, ir.symbol(base, s, time))
            return None
        if key in c.constants:  # before the parameters: the spec reads a declared constant first
            return Ref(RefKind.CONST, c.constants[key])
        if key in c.params:
            return Ref(RefKind.PARAM, c.params[key])
        if key in self.param_alias:
            return Ref(RefKind.PARAM, c.params[self.param_alias[key]])
        if key in ("I", "H", "P"):
            return Ref(RefKind.DIM, {"I": I, "H": H, "P": P}[key])
        if key in LOSS_NAMES:
            return Ref(RefKind.LOSS)
        if key in ("mathbf{1}", "mathbb{1}"):
            return Ref(RefKind.ONE)
        if key in BUILTIN_CONSTANTS:
            return Ref(RefKind.CONST, BUILTIN_CONSTANTS[key])
        return None


def differential(node):
    """The name X of ``\\partial X`` or of plain ``dX`` (in ``dL/dW_xf``); None otherwise."""
    if is_op(node, Op.PARTIAL) and isinstance(node.args[0], Name):
        return node.args[0]
    if isinstance(node, Name) and node.text.startswith("d") and len(node.text) > 1:
        return Name(node.text[1:], node.pos)
    return None


def _param_aliases(cell) -> dict:
    """W_{if} (PyTorch), W_{fx} / W_{fh} (the seeds) for W_{xf} / W_{hf}; b_{if}, b_{hf} for b_f."""
    out: dict = {}
    taken = set(cell.params)

    def add(alias, key):
        if alias in taken:
            return
        out[alias] = None if alias in out and out[alias] != key else key
    for key, p in cell.params.items():
        base, _, sub = key.partition("_")
        if p.is_matrix and len(sub) >= 2 and sub[0] in "xh":
            rest = sub[1:]
            add(f"{base}_{rest}{sub[0]}", key)
            if sub[0] == "x":
                add(f"{base}_i{rest}", key)
                add(f"{base}_{rest}i", key)
        elif not p.is_matrix and sub:
            add(f"{base}_i{sub}", key)
            add(f"{base}_h{sub}", key)
    return {a: k for a, k in out.items() if k is not None}
