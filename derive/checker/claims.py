"""``derive check``: is a hand-derived formula right? "correct", or a counterexample.

A claim ``LEFT = RIGHT`` (read by ``formula.py``, never by ``eval``) is checked against
the derivation of a cell or an activation:

| left side                                   | the quantity                      | compared |
|---------------------------------------------|-----------------------------------|----------|
| ``dc_t``, ``\\delta c_t``, ``\\frac{\\partial L}{\\partial c_t}`` | adjoint of a vector at step t | per step, t in the middle of a run |
| ``dW_{xf}``, ``\\frac{\\partial L}{\\partial W_{xf}}``        | a parameter gradient (sum over t) | over a whole run |
| ``\\frac{\\partial h_t}{\\partial c_{t-1}}``                   | a block of the state Jacobian     | per step |
| ``N``, ``params``                           | parameters per layer and direction | as polynomials in I, H, P |
| ``f'(x)``, ``\\sigma'(x)``, ``f(x)``          | an activation's derivative or definition | symbolically and at points |

Numbers come from the derivation evaluated at 30 digits on random parameters, inputs and
loss weights (sizes I=2, H=3, P=2, T=4), the same witness the tests use; the claim is
evaluated in float64 from those values. A vector claim is also compared symbolically
(SymPy, within a time bound). A wrong claim gets the step and the values of every symbol
at which the two sides differ, and, when one term explains the difference, its name.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import random
import re
import signal
import threading
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from derive import activations as acts
from derive.symbolic import bptt, counts, ir, printing, spec
from derive.witness import derivation as verify
from derive.symbolic.cell import H, I, P
from derive.errors import DeriveError, Pos
from derive.syntax.formulas import Call, Name, Node, Num, parse_formula, parse_let
from derive.syntax.equations import _TIME

SIZES = verify.Sizes(T=4, I=2, H=3, P=2)
SEEDS = (11, 12, 13)
RTOL = 1e-9
COUNT_NAMES = ("N", "params", "n_params", "num_params", "count", "N_params", "N_{params}")
#: cells whose formulas differ by a convention: a claim wrong for one may be right for another
#: (names of the one cell -> names of the other where they differ)
_GRU_TO_CHO = {"n": "h_tilde", "z_n": "z_h_tilde", "W_xn": "W_xh", "W_hn": "W_hh", "b_n": "b_h"}
FAMILY = {
    "gru": {"gru_cho": _GRU_TO_CHO}, "gru_cho": {"gru": {v: k for k, v in _GRU_TO_CHO.items()}},
    "lstm": {"lstm_peephole": {}, "lstm_cifg": {}}, "lstm_peephole": {"lstm": {}}, "lstm_cifg": {"lstm": {}},
    "rnn_tanh": {"rnn_relu": {}}, "rnn_relu": {"rnn_tanh": {}},
}
ACT_FAMILY = {
    "gelu": ("gelu_tanh",), "gelu_tanh": ("gelu",), "hardsigmoid": ("hardsigmoid_keras2",),
    "hardsigmoid_keras2": ("hardsigmoid",), "silu": ("swish",), "swish": ("silu",), "elu": ("celu", "selu"),
}
#: other spellings of a cell's vectors: colah's C_t and \tilde{C}_t, the GRU candidate \tilde{h}_t
VECTOR_ALIASES = {"C": "c", "c_tilde": "g", "C_tilde": "g", "h_tilde": "n", "h_hat": "n"}
#: elementwise functions a formula may call, beside the activations
FUNCTIONS = {
    "exp": (np.exp, sp.exp), "log": (np.log, sp.log), "ln": (np.log, sp.log), "sqrt": (np.sqrt, sp.sqrt),
    "abs": (np.abs, sp.Abs), "erf": (np.vectorize(math.erf, otypes=[float]), sp.erf),
    "step": (lambda u: (np.asarray(u) > 0).astype(float), acts.step),  # \mathbb{1}[u > 0]
}


# ------------------------------------------------------------------ the result


@dataclass
class Result:
    """The verdict on one formula.

    ``verdict``: "correct", "equivalent" (right under another convention, named in
    ``convention``) or "wrong" (then ``counterexample`` maps every symbol to its value
    and ``left``/``right`` are the derivation's and the claim's values there).
    """

    verdict: str
    quantity: str
    derived: str
    how: str
    formula: str = ""
    convention: str = ""
    hint: str = ""
    where: str = ""
    counterexample: dict = field(default_factory=dict)
    left: object = None
    right: object = None

    @property
    def ok(self) -> bool:
        return self.verdict != "wrong"

    def report(self) -> str:
        head = {"correct": "correct", "equivalent": "equivalent under a convention", "wrong": "wrong"}[self.verdict]
        lines = [f"{head}: {self.quantity} ({self.how})"]
        if self.convention:
            lines.append(f"  {self.convention}")
        lines.append(f"  the derivation: {self.derived}")
        if self.hint:
            lines.append(f"  {self.hint}")
        if self.verdict == "wrong" and self.counterexample:
            lines.append(f"  counterexample ({self.where}):")
            for k, v in self.counterexample.items():
                lines.append(f"    {k} = " + _show(v, f"    {k} = "))
            lines.append("    the derivation gives " + _show(self.left, "    the derivation gives "))
            lines.append("    your formula gives   " + _show(self.right, "    your formula gives   "))
        return "\n".join(lines)


def _show(v, prefix: str = "") -> str:
    if isinstance(v, (sp.Expr, int, str)):
        return str(v)
    a = np.asarray(v, dtype=float)
    return np.array2string(a, precision=6, separator=", ", max_line_width=110, prefix=prefix)


# ------------------------------------------------------------------ names


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
    """``W_{xf}`` -> ("W", "xf", None); ``z_{f,t+1}`` -> ("z", "f", 1); ``\\tilde{c}_t`` -> ("c_tilde", "", 0)."""
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
    return head, "".join(parts), time


@dataclass(frozen=True)
class Ref:
    kind: str  # vec | adj | param | dparam | dim | loss | one | let | dy
    value: object = None


class Names:
    """A cell's vocabulary: the page's names, aliases (PyTorch, the seeds, colah) and --let."""

    def __init__(self, cell, lets: dict, renames: dict | None = None):
        self.cell = cell
        self.lets = lets
        self.let_values = {"ir": {}, "poly": {}}  # a --let's value per use, filled dependencies first
        self.renames = renames or {}
        self.param_alias = _param_aliases(cell)
        syms = [cell.input, *cell.states, *(a.target for a in cell.assignments)]
        self.parts = {ir.ref(s).key: (ir.ref(s).base, ir.ref(s).sub) for s in syms}

    def known(self) -> str:
        c = self.cell
        vecs = [printing.symbol_text(ir.symbol(*self.parts[k], 0)) for k in c.dims]
        params = list(c.params)
        return (f"vectors {', '.join(vecs)} (and at t-1, t+1; adjoints d<name>, e.g. d{vecs[-1]}); "
                f"parameters {', '.join(params)}; sizes I, H{', P' if P in c.dims.values() else ''}")

    def resolve(self, n: Name) -> Ref:
        if n.text in self.lets:
            return Ref("let", self.lets[n.text])
        head, sub, time = split_name(n.text)
        ref = self._plain(head, sub, time)
        if ref is None and len(head) > 1 and head.startswith("d"):
            inner = self._plain(head[1:], sub, time)
            if inner is not None and inner.kind in ("vec", "param"):
                return Ref("adj" if inner.kind == "vec" else "dparam", inner.value)
            if head == "dy" and time == 0:
                return Ref("dy", bptt.DY)
        if ref is None:
            raise DeriveError(f"unknown symbol {n.text}; known: {self.known()}", n.pos)
        return ref

    def adjoint_of(self, n: Name):
        """\\delta NAME: the adjoint symbol (dy_t for the loss's own gradient of the output)."""
        if split_name(n.text) == ("y", "", 0):
            return bptt.DY
        ref = self.resolve(n)
        if ref.kind != "vec":
            raise DeriveError(rf"\delta {n.text}: the adjoint of a vector at a step is meant", n.pos)
        return ir.adjoint(ref.value)

    def _plain(self, head, sub, time):
        c = self.cell
        key = head + (f"_{sub}" if sub else "")
        key = self.renames.get(key, key)
        if time is not None:
            key = VECTOR_ALIASES.get(key, key) if key not in c.dims else key
            if key in c.dims:
                base, s = self.parts[key]
                return Ref("vec", ir.symbol(base, s, time))
            return None
        if key in c.params:
            return Ref("param", c.params[key])
        if key in self.param_alias:
            return Ref("param", c.params[self.param_alias[key]])
        if key in ("I", "H", "P"):
            return Ref("dim", {"I": I, "H": H, "P": P}[key])
        if key == "L":
            return Ref("loss")
        if key in ("mathbf{1}", "mathbb{1}"):
            return Ref("one")
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


# ------------------------------------------------------------------ --let


def read_lets(texts) -> dict:
    """``--let NAME=EXPR`` definitions: name -> expression (AST).

    A name that is a function (``tanh``), defined twice, or defined in terms of itself
    (``a = a + 1``, or through other lets) is an error located in its --let.
    """
    lets, texts_of = {}, {}
    for text in texts:
        where = f"--let {text!r}"
        try:
            name, expr = parse_let(text)
        except DeriveError as e:
            raise DeriveError(e.message, e.pos, where) from None
        if _is_function(name):
            raise DeriveError(f"{name} is a function; a --let defines a new name", Pos(1, 1), where)
        if name in lets:
            raise DeriveError(f"{name} is defined twice (also by --let {texts_of[name]!r})", Pos(1, 1), where)
        lets[name], texts_of[name] = expr, text
    for name in lets:
        _let_order(lets, Name(name, Pos(1, 1)), texts_of)
    return lets


def _is_function(name: str) -> bool:
    fn = _func_name(name)
    return fn in FUNCTIONS or fn in ("diag", "max", "min") or _activation(fn) is not None


def with_lets(lets: dict, node, convert, values: dict):
    """``convert(node)``, each --let it reaches converted first (dependencies first) into
    ``values``, where ``convert`` looks them up: a chain of lets never recurses."""
    for name in _let_order(lets, node):
        if name not in values:
            values[name] = convert(lets[name])
    return convert(node)


def _let_order(lets: dict, node, texts: dict | None = None) -> list[str]:
    """The --let names ``node`` uses, directly or through other lets, each after those it
    uses (an iterative depth-first search). A cycle is an error in the let that closes it."""
    order, state, path = [], {}, []
    stack = [(None, iter(_let_refs(lets, node)))]
    while stack:
        owner, refs = stack[-1]
        ref = next(refs, None)
        if ref is None:
            stack.pop()
            if owner is not None:
                state[owner] = "done"
                order.append(path.pop())
            continue
        if state.get(ref.text) == "done":
            continue
        if state.get(ref.text) == "active":
            cycle = path[path.index(ref.text):] + [ref.text]
            how = f" ({' -> '.join(cycle)})" if len(cycle) > 2 else ""
            where = f"--let {texts[owner]!r}" if texts and owner in texts else None
            raise DeriveError(f"{ref.text} is defined in terms of itself{how}", ref.pos, where)
        state[ref.text] = "active"
        path.append(ref.text)
        stack.append((ref.text, iter(_let_refs(lets, lets[ref.text]))))
    return order


def _let_refs(lets: dict, node) -> list:
    """The names in ``node`` that are --let names (a bare call ``a(x)`` uses ``a`` as a factor)."""
    out, todo = [], [node]
    while todo:
        n = todo.pop()
        if isinstance(n, Name):
            if n.text in lets:
                out.append(n)
        elif isinstance(n, Call):
            if n.bare and n.func in lets:
                out.append(Name(n.func, n.pos))
            todo += [*n.args, n.power]
        elif isinstance(n, Node):
            todo += n.args
        elif isinstance(n, tuple):
            todo += n
    return out[::-1]


# ------------------------------------------------------------------ values


@dataclass
class V:
    """A numeric value with its kind: scalar, vector, row (a transposed vector), matrix,
    blocks (a row of matrices [W_h, W_x]) or stack (a concatenated vector [h; x])."""

    kind: str
    val: object


def _fail(msg, pos=None):
    raise DeriveError(msg, pos)


class Evaluator:
    """The right side at one step of a run, in float64."""

    def __init__(self, names: Names, env: dict):
        self.names = names
        self.env = env
        self.used: dict = {}  # printed name -> value, for a counterexample
        self.let_values: dict = {}  # --let name -> its value at this step

    def value(self, sym):
        if sym not in self.env:
            raise DeriveError(f"{printing.symbol_text(sym)} is not known at this step")
        v = np.asarray(np.asarray(self.env[sym], dtype=object).astype(float))
        self.used[printing.symbol_text(sym)] = v
        return v

    def __call__(self, node) -> V:
        if isinstance(node, Num):
            return V("scalar", float(node.value))
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Call):
            return self.call(node)
        return getattr(self, "op_" + node.kind)(node)

    def name(self, n: Name) -> V:
        ref = self.names.resolve(n)
        if ref.kind == "let":
            return self.let_values[n.text] if n.text in self.let_values else self(ref.value)
        if ref.kind in ("vec", "adj", "dy"):
            sym = ir.adjoint(ref.value) if ref.kind == "adj" else ref.value
            return V("vector", self.value(sym))
        if ref.kind == "param":
            v = self.value(ref.value.symbol)
            return V("matrix" if v.ndim == 2 else "vector", v)
        if ref.kind == "one":
            return V("scalar", 1.0)
        raise DeriveError(f"{n.text} cannot be used on the right side here", n.pos)

    # operators ------------------------------------------------------------
    def op_add(self, node, sign=1.0):
        a, b = self(node.args[0]), self(node.args[1])
        if a.kind == "scalar" and b.kind != "scalar":
            return V(b.kind, a.val + sign * b.val)
        if b.kind == "scalar" and a.kind != "scalar":
            return V(a.kind, a.val + sign * b.val)
        if a.kind != b.kind or np.shape(a.val) != np.shape(b.val):
            _fail(f"cannot add a {_desc(a)} and a {_desc(b)}", node.pos)
        return V(a.kind, a.val + sign * b.val)

    def op_sub(self, node):
        return self.op_add(node, -1.0)

    def op_neg(self, node):
        a = self(node.args[0])
        return V(a.kind, -a.val if a.kind not in ("blocks", "stack") else [-x for x in a.val])

    def op_sum(self, node):
        return self(node.args[0])

    def op_div(self, node):
        a, b = self(node.args[0]), self(node.args[1])
        if b.kind not in ("scalar", "vector") or (b.kind == "vector" and a.kind not in ("vector", "scalar")):
            _fail(f"cannot divide a {_desc(a)} by a {_desc(b)}", node.pos)
        return V(a.kind if a.kind != "scalar" else b.kind, a.val / b.val)

    def op_pow(self, node):
        a = self(node.args[0])
        e = self(node.args[1])
        if e.kind != "scalar" or a.kind not in ("scalar", "vector"):
            _fail(f"cannot raise a {_desc(a)} to a {_desc(e)}", node.pos)
        return V(a.kind, np.power(a.val, e.val))

    def op_transpose(self, node):
        a = self(node.args[0])
        flip = {"vector": "row", "row": "vector", "matrix": "matrix", "scalar": "scalar", "stack": "rowstack",
                "blocks": "blockcol"}
        if a.kind in ("stack", "blocks"):
            return V(flip[a.kind], [np.transpose(x) for x in a.val])
        return V(flip[a.kind], a.val.T if a.kind == "matrix" else a.val)

    def op_concat(self, node):
        parts = [self(x) for x in node.args]
        kinds = {p.kind for p in parts}
        if kinds == {"matrix"}:
            return V("blocks", [p.val for p in parts])
        if kinds == {"vector"}:
            return V("stack", [p.val for p in parts])
        _fail("a concatenation [a, b] holds vectors (a stacked input) or matrices (a row of blocks)", node.pos)

    def op_mul(self, node):
        out = self(node.args[0])
        for factor in node.args[1:]:  # a b c: left to right
            out = _product(out, self(factor), node.pos)
        return out

    def op_partial(self, node):
        _fail(r"\partial belongs on the left side, in \frac{\partial L}{\partial ...}", node.pos)

    def op_delta(self, node):
        inner = node.args[0]
        if not isinstance(inner, Name):
            _fail(r"\delta applies to a name, e.g. \delta h_t", node.pos)
        return V("vector", self.value(self.names.adjoint_of(inner)))

    def call(self, c: Call) -> V:
        name = _func_name(c.func)
        if c.bare and name not in FUNCTIONS and _activation(name) is None and name != "diag":
            # o(1 - o) written without an operator: a product
            return _product(self.name(Name(c.func, c.pos)), self(_single(c)), c.pos)
        arg = self(_single(c))
        if name == "diag":
            if arg.kind != "vector" or c.prime:
                _fail("diag takes a vector", c.pos)
            return V("matrix", np.diag(arg.val))
        if arg.kind not in ("scalar", "vector"):
            _fail(f"{c.func} applies elementwise to a vector, not a {_desc(arg)}", c.pos)
        out = _elementwise(name, c, arg.val)
        power = _power(c)
        return V(arg.kind, out ** power if power != 1 else out)


def _single(c: Call):
    if len(c.args) != 1:
        raise DeriveError(f"{c.func} takes one argument", c.pos)
    return c.args[0]


def _power(c: Call) -> int:
    p = c.power
    if isinstance(p, Num) and re.fullmatch(r"\d+", p.value):
        return int(p.value)
    if isinstance(p, int):
        return p
    raise DeriveError(f"the power of {c.func} must be a whole number", c.pos)


def _func_name(func: str) -> str:
    m = re.fullmatch(r"\\(?:operatorname|mathrm|text|mathit)\{([A-Za-z0-9_]+)\}", func)
    return (m[1] if m else func.lstrip("\\")).lower()


@lru_cache(maxsize=None)
def _activation(name: str):
    """The activation a function name means: \\sigma, sigmoid, tanh, relu, ..."""
    if name in ("sigma", "sigm"):
        return acts.get("sigmoid")
    for cls in acts.REGISTRY.values():
        if cls.kind != "elementwise":
            continue
        if name == cls.__name__ or any(_func_name(cmd) == name for cmd in cls.commands):
            return cls
    return None


def _elementwise(name: str, c: Call, x):
    from derive.runtime.activations import activation

    if name in FUNCTIONS and not c.prime:
        with np.errstate(all="ignore"):
            return FUNCTIONS[name][0](x)
    cls = _activation(name)
    if cls is None:
        raise DeriveError(f"unknown function {c.func}; known: {', '.join(sorted(FUNCTIONS))}, diag and the "
                          f"activations (sigma, tanh, relu, ...)", c.pos)
    f = activation(cls.__name__)
    arr = np.asarray(x, dtype=float)
    return f.df(arr) if c.prime else f.f(arr)


def _desc(v: V) -> str:
    if v.kind == "matrix":
        return "{} x {} matrix".format(*np.shape(v.val))
    return {"scalar": "number", "vector": f"vector of {np.size(v.val)}", "row": "transposed vector",
            "stack": "concatenated vector", "blocks": "row of matrices"}.get(v.kind, v.kind)


def _product(a: V, b: V, pos) -> V:
    if a.kind == "scalar" or b.kind == "scalar":
        s, o = (a, b) if a.kind == "scalar" else (b, a)
        if o.kind in ("blocks", "stack", "rowstack", "blockcol"):
            return V(o.kind, [s.val * x for x in o.val])
        return V(o.kind, s.val * o.val)
    k = (a.kind, b.kind)
    try:
        if k == ("vector", "vector"):
            if a.val.shape != b.val.shape:
                raise ValueError
            return V("vector", a.val * b.val)
        if k in (("matrix", "vector"), ("matrix", "matrix"), ("row", "matrix")):
            out = a.val @ b.val
            return V({"vector": "vector", "matrix": "matrix"}.get(b.kind) if a.kind == "matrix" else "row", out)
        if k == ("vector", "row"):
            return V("matrix", np.outer(a.val, b.val))
        if k == ("row", "vector"):
            return V("scalar", float(a.val @ b.val))
        if k == ("blocks", "stack"):
            if len(a.val) != len(b.val):
                raise ValueError
            return V("vector", sum(m @ v for m, v in zip(a.val, b.val)))
        if k == ("vector", "rowstack"):
            return V("blocks", [np.outer(a.val, r) for r in b.val])
        if k == ("blockcol", "vector"):
            return V("stack", [m @ b.val for m in a.val])
    except ValueError:
        pass
    _fail(f"the sizes do not fit: a {_desc(a)} times a {_desc(b)}", pos)


# ------------------------------------------------------------------ the witness runs


@lru_cache(maxsize=32)
def _runs(name_or_path: str):
    """Per seed: (the run's envs by step, gradients, the derivation)."""
    cell = spec.load(name_or_path)
    d = bptt.derive(cell)
    out = []
    for seed in SEEDS:
        rng = random.Random(seed)

        def rnd(_):
            return sp.Float(rng.uniform(-1.2, 1.2), 30)
        params = {p.symbol: verify._array(tuple(SIZES.of(x) for x in p.shape), rnd) for p in cell.params.values()}
        xs = [verify._array((SIZES.I,), rnd) for _ in range(SIZES.T)]
        s0 = {s: verify._array((SIZES.of(cell.dims[ir.ref(s).key]),), rnd) for s in cell.states}
        w, v = verify.loss_weights(cell, SIZES, rng)
        record: list = []
        grads, _, _, _ = verify.run_derivation(d, params, xs, s0, w, v, record)
        out.append((seed, dict(record), grads))
    return d, out


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(all="ignore"):
        return bool(np.all(np.abs(a - b) <= RTOL * (1 + np.abs(b))))


# ------------------------------------------------------------------ cell claims


def _classify(lhs, names: Names):
    """What the left side names: ("adjoint", sym) | ("param", Param) | ("jacobian", out, in) | ("count",)."""
    if isinstance(lhs, Name) and lhs.text in COUNT_NAMES:
        return ("count",)
    if isinstance(lhs, Node) and lhs.kind == "delta" and isinstance(lhs.args[0], Name):
        ref = names.resolve(lhs.args[0])
        return _as_gradient(ref, lhs)
    if isinstance(lhs, Name):
        ref = names.resolve(lhs)
        if ref.kind in ("adj", "dparam"):
            return _as_gradient(Ref("vec" if ref.kind == "adj" else "param", ref.value), lhs)
    if isinstance(lhs, Node) and lhs.kind == "div":
        top, bottom = lhs.args
        tn, bn = _differential(top), _differential(bottom)
        if tn is not None and bn is not None:
            tref, bref = names.resolve(tn), names.resolve(bn)
            if tref.kind == "loss":
                return _as_gradient(bref, lhs)
            if tref.kind == "vec" and bref.kind == "vec":
                return ("jacobian", tref.value, bref.value)
    raise DeriveError(r"the left side must name a gradient (dc_t, \delta c_t, \frac{\partial L}{\partial W_{xf}}), "
                      r"a Jacobian block (\frac{\partial h_t}{\partial c_{t-1}}) or the parameter count (N)",
                      getattr(lhs, "pos", Pos(1, 1)))


def _differential(node):
    """The name X of ``\\partial X`` or of plain ``dX`` (in ``dL/dW_xf``); None otherwise."""
    if isinstance(node, Node) and node.kind == "partial" and isinstance(node.args[0], Name):
        return node.args[0]
    if isinstance(node, Name) and node.text.startswith("d") and len(node.text) > 1:
        return Name(node.text[1:], node.pos)
    return None


def _as_gradient(ref: Ref, node):
    if ref.kind == "vec":
        if ir.ref(ref.value).time != 0:
            raise DeriveError("state the adjoint at step t (e.g. dc_t); the derivation's recurrences are per step",
                              node.pos)
        return ("adjoint", ref.value)
    if ref.kind == "param":
        return ("param", ref.value)
    raise DeriveError("the gradient of what? name a vector at step t or a parameter", node.pos)


def _terms(node, sign=1):
    """The right side's top-level terms with their signs (for 'extra term' hints)."""
    if isinstance(node, Node) and node.kind in ("add", "sub"):
        return _terms(node.args[0], sign) + _terms(node.args[1], sign if node.kind == "add" else -sign)
    if isinstance(node, Node) and node.kind == "neg":
        return _terms(node.args[0], -sign)
    return [(sign, node)]


def check_cell(name_or_path: str, formula: str, lets=(), renames=None) -> Result:
    cell = spec.load(name_or_path)
    f = parse_formula(formula)
    names = Names(cell, read_lets(lets), renames)
    what = _classify(f.lhs, names)
    if what[0] == "count":
        return _check_count(cell, names, f)
    d, runs = _runs(name_or_path)
    if what[0] == "adjoint":
        return _check_adjoint(d, runs, names, f, what[1])
    if what[0] == "param":
        return _check_param(d, runs, names, f, what[1])
    return _check_jacobian(d, runs, names, f, what[1], what[2])


def _mid_steps(runs):
    for seed, envs, _ in runs:
        for t in range(2, SIZES.T):
            yield seed, t, envs[t]


def _eval(names, node, env):
    ev = Evaluator(names, env)
    try:
        with np.errstate(all="ignore"):
            out = with_lets(names.lets, node, ev, ev.let_values)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
        raise DeriveError(f"cannot evaluate the right side: {e}") from None
    return out, ev.used


def _check_adjoint(d, runs, names, f, target) -> Result:
    adj = d.input_grad if target == d.cell.input else next((a for a in d.adjoints if a.target == target), None)
    if adj is None:
        raise DeriveError(f"the derivation has no adjoint for {printing.symbol_text(target)}", f.lhs.pos)
    quantity = f"d{printing.symbol_text(target)}, the gradient of the loss with respect to {printing.symbol_text(target)}"
    derived = f"{printing.symbol_text(ir.adjoint(target))} = {printing.terms_text(adj.terms)}"
    points = 0
    worst = None
    for seed, t, env in _mid_steps(runs):
        claim, used = _eval(names, f.rhs, env)
        if claim.kind == "scalar":
            claim = V("vector", np.full(SIZES.of(d.cell.dims[ir.ref(target).key]), claim.val))
        if claim.kind != "vector":
            raise DeriveError(f"the right side is a {_desc(claim)}; the adjoint of a vector is a vector",
                              getattr(f.rhs, "pos", Pos(1, 1)))
        exact = env.get(ir.adjoint(target))
        if exact is None:  # dx_t: the run returns it, the env does not hold it
            exact = sum(verify.evaluate(term, env) for term in adj.terms)
        truth = np.asarray(np.asarray(exact, dtype=object).astype(float))
        points += 1
        if not _close(claim.val, truth) and worst is None:
            worst = (seed, t, env, claim.val, truth, used)
    how = f"numerically at {points} points"
    if worst is None:
        sym = _symbolic_equal(d, names, f.rhs, adj.expr)
        return Result("correct", quantity, derived, "symbolically" if sym else how + "; not shown symbolically",
                      f.text)
    seed, t, env, cval, tval, used = worst
    hint = _term_hint(names, f.rhs, adj.terms, env, tval - cval)
    return _wrong(quantity, derived, how, f.text, hint, seed, t, used, adj.terms, env, tval, cval)


def _wrong(quantity, derived, how, text, hint, seed, t, used, terms, env, left, right) -> Result:
    ce = dict(used)
    for term in terms:
        for s in sorted(term.free_symbols, key=str):
            if ir.is_ir(s) and s in env and printing.symbol_text(s) not in ce:
                ce[printing.symbol_text(s)] = np.asarray(np.asarray(env[s], dtype=object).astype(float))
    where = f"I={SIZES.I}, H={SIZES.H}, T={SIZES.T}, step t={t}, seed {seed}"
    return Result("wrong", quantity, derived, how, text, hint=hint, where=where, counterexample=ce,
                  left=left, right=right)


def _term_hint(names, rhs, derived_terms, env, residual) -> str:
    """One term that explains residual = derivation - claim, if there is one."""
    vals = []
    for term in derived_terms:
        try:
            vals.append(np.asarray(np.asarray(verify.evaluate(term, env), dtype=object).astype(float)))
        except Exception:  # a term the float path cannot evaluate: no hint from it
            vals.append(None)
    for term, v in zip(derived_terms, vals):
        if v is not None and _close(residual, v):
            return f"missing term: {printing.text(term)}"
    known = [(t, v) for t, v in zip(derived_terms, vals) if v is not None]
    for size in (2, 3):
        for combo in itertools.combinations(known, size):
            if _close(residual, sum(v for _, v in combo)):
                return "missing terms: " + ", ".join(printing.text(t) for t, _ in combo)
    for term, v in zip(derived_terms, vals):
        if v is not None and _close(residual, 2 * v):
            return f"sign: the term {printing.text(term)} has the wrong sign"
    for sign, node in _terms(rhs):
        try:
            cv, _ = _eval(names, node, env)
        except DeriveError:
            continue
        if cv.kind in ("vector", "matrix") and _close(residual, -sign * cv.val):
            return f"extra term: {_ast_text(node)} is not part of the gradient"
        for term, v in zip(derived_terms, vals):
            if v is not None and cv.kind in ("vector", "matrix") and _close(residual, v - sign * cv.val):
                return f"the term {_ast_text(node)} should be {printing.text(term)}"
    return ""


def _ast_text(node) -> str:
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Name):
        return node.text
    if isinstance(node, Call):
        args = ", ".join(_ast_text(a) for a in node.args)
        p = "'" if node.prime else ""
        return f"{node.func}{p}({args})"
    k, a = node.kind, node.args
    if k in ("add", "sub"):
        return f"{_ast_text(a[0])} {'+' if k == 'add' else '-'} {_ast_text(a[1])}"
    if k == "mul":
        return " ".join(_wrap(x) for x in a)
    if k == "div":
        return f"{_wrap(a[0])} / {_wrap(a[1])}"
    if k == "neg":
        return f"-{_wrap(a[0])}"
    if k == "pow":
        return f"{_wrap(a[0])}^{_wrap(a[1])}"
    if k == "transpose":
        return f"{_wrap(a[0])}^T"
    if k == "delta":
        return f"delta {_ast_text(a[0])}"
    if k == "sum":
        return f"sum_t {_ast_text(a[0])}"
    if k == "concat":
        return "[" + ", ".join(_ast_text(x) for x in a) + "]"
    return k


def _wrap(node) -> str:
    s = _ast_text(node)
    return f"({s})" if isinstance(node, Node) and node.kind in ("add", "sub") else s


def _check_param(d, runs, names, f, param) -> Result:
    grad = next(g for g in d.params if g.param is param)
    quantity = f"d{param.key}, the gradient of the loss with respect to {param.key} (summed over t)"
    derived = f"d{param.key} = sum_t " + " + ".join(
        f"{printing.text(g)} ({printing.text(a)})^T" if a is not None else printing.text(g) for g, a in grad.terms)
    body = f.rhs.args[0] if isinstance(f.rhs, Node) and f.rhs.kind == "sum" else f.rhs
    points = 0
    for seed, envs, grads in runs:
        total, used = None, {}
        for t in range(1, SIZES.T + 1):
            v, u = _eval(names, body, envs[t])
            if v.kind not in ("vector", "matrix", "scalar"):
                raise DeriveError(f"the right side is a {_desc(v)}; a parameter gradient is a vector or a matrix")
            total = v.val if total is None else total + v.val
            if t == 2:
                used = {k + " (t=2)": val for k, val in u.items()}
        truth = np.asarray(np.asarray(grads[param.symbol], dtype=object).astype(float))
        points += 1
        if not _close(total, truth):
            hint = ""
            if np.shape(total) == truth.shape[::-1] and _close(np.transpose(total), truth):
                hint = f"transposed: the gradient of {param.key} has its shape {truth.shape}"
            elif np.shape(total) != truth.shape:
                hint = f"shape: your right side is {np.shape(total)}, the gradient is {truth.shape}"
            else:
                hint = _param_hint(grad, envs, truth - total)
            r = _wrong(quantity, derived, f"numerically, whole runs of {SIZES.T} steps", f.text, hint, seed, 2, used, [],
                       {}, truth, total)
            r.where = f"I={SIZES.I}, H={SIZES.H}, T={SIZES.T}, summed over t=1..{SIZES.T}, seed {seed}; values at t=2"
            return r
    return Result("correct", quantity, derived, f"numerically at {points} points (whole runs of {SIZES.T} steps)",
                  f.text)


def _param_hint(grad, envs, residual) -> str:
    for g, a in grad.terms:
        total = 0
        for t in range(1, SIZES.T + 1):
            gv = np.asarray(np.asarray(verify.evaluate(g, envs[t]), dtype=object).astype(float))
            total = total + (np.outer(gv, np.asarray(np.asarray(verify.evaluate(a, envs[t]), dtype=object)
                                                     .astype(float))) if a is not None else gv)
        if _close(residual, total):
            what = f"{printing.text(g)} ({printing.text(a)})^T" if a is not None else printing.text(g)
            return f"missing term: sum_t {what}"
    return ""


def _check_jacobian(d, runs, names, f, out_sym, in_sym) -> Result:
    ok = ir.ref(out_sym).time == 0 and ir.ref(in_sym).time == -1
    states = {ir.ref(s).key for s in d.cell.states}
    key = (ir.ref(out_sym).key, ir.ref(in_sym).key)
    if not ok or key not in d.jacobian:
        raise DeriveError(r"a Jacobian block is \frac{\partial s_t}{\partial s'_{t-1}} for states s, s' "
                          f"({', '.join(sorted(states))})", f.lhs.pos)
    chains = d.jacobian[key]
    quantity = f"d{printing.symbol_text(out_sym)}/d{printing.symbol_text(in_sym)}, a block of the state Jacobian"
    derived = " + ".join(printing.chain_text(c) for c in chains) or "0"
    size = {k: SIZES.of(d.cell.dims[k]) for k in states}
    points = 0
    for seed, t, env in _mid_steps(runs):
        claim, used = _eval(names, f.rhs, env)
        truth = verify.jacobian_value(chains, env, size[key[0]], size[key[1]]).astype(float)
        val = np.diag(claim.val) if claim.kind == "vector" else claim.val
        points += 1
        if not _close(val, truth):
            return _wrong(quantity, derived, f"numerically at {points} points", f.text, "", seed, t, used, [],
                          env, truth, val)
    return Result("correct", quantity, derived, f"numerically at {points} points", f.text)


# ------------------------------------------------------------------ symbolic comparison


class _NotSymbolic(Exception):
    pass


def _symbolic_equal(d, names, rhs, derived, seconds: float = 2.0):
    """True if SymPy shows claim == derived; None if it could not decide in time or form."""
    try:
        claim = with_lets(names.lets, rhs, lambda n: _to_ir(names, n), names.let_values["ir"])
    except (_NotSymbolic, DeriveError):
        return None
    outs = {}
    for act, out in d.forward.items():
        for k in (-1, 0, 1):
            outs[ir.shift(out, k)] = ir.shift(act, k)
    states = {ir.ref(s).key for s in d.cell.states}
    inner = {ir.adjoint(a.target): a.expr for a in d.adjoints if ir.ref(a.target).key not in states}
    diff = claim - derived
    for _ in range(len(inner)):  # adjoints of intermediates in terms of the states' adjoints
        nxt = diff.xreplace(inner)
        if nxt == diff:
            break
        diff = nxt
    diff = diff.xreplace(outs)

    def vanishes() -> bool:
        zero = sp.expand(diff)
        return bool(zero == 0 or sp.simplify(zero) == 0)

    try:
        return True if within(seconds, vanishes) else None
    except TimeoutError:
        return None


def within(seconds: float, compute):
    """``compute()`` (a picklable result) if it finishes within ``seconds``, else TimeoutError.

    SymPy cannot be interrupted from outside, so: in the main thread a SIGALRM timer raises
    inside it; in any other thread (signals reach only the main thread) it runs in a forked
    worker process that is killed at the deadline. Without fork, the answer is a timeout.
    """
    if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
        with _time_limit(seconds):
            return compute()
    if "fork" not in multiprocessing.get_all_start_methods():
        raise TimeoutError
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    worker = ctx.Process(target=_report, args=(send, compute), daemon=True)
    worker.start()
    send.close()
    try:
        if not receive.poll(seconds):
            raise TimeoutError
        ok, value = receive.recv()
    except EOFError:  # the worker died
        raise TimeoutError from None
    finally:
        if worker.is_alive():
            worker.kill()
        worker.join()
        receive.close()
    if not ok:
        raise TimeoutError
    return value


def _report(send, compute):
    """In the worker: send (True, compute()) back, or (False, None) if it raised."""
    try:
        send.send((True, compute()))
    except Exception:
        send.send((False, None))


class _time_limit:
    """A SIGALRM-bounded block; only for the main thread (see ``within``)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def _raise(self, *_):
        raise TimeoutError

    def __enter__(self):
        self.old = signal.signal(signal.SIGALRM, self._raise)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.old)
        return False


def _to_ir(names, node):
    """The right side as an elementwise IR expression (matrix products as MatVec atoms)."""
    if isinstance(node, Num):
        return sp.Rational(node.value)
    if isinstance(node, Name):
        ref = names.resolve(node)
        if ref.kind == "let":
            done = names.let_values["ir"]
            return done[node.text] if node.text in done else _to_ir(names, ref.value)
        if ref.kind == "vec":
            return ref.value
        if ref.kind == "adj":
            return ir.adjoint(ref.value)
        if ref.kind == "dy":
            return ref.value
        if ref.kind == "one":
            return sp.Integer(1)
        if ref.kind == "param" and not ref.value.is_matrix:
            return ref.value.symbol
        raise _NotSymbolic
    if isinstance(node, Call):
        name = _func_name(node.func)
        if len(node.args) != 1:
            raise _NotSymbolic
        arg = _to_ir(names, node.args[0])
        cls = _activation(name)
        if cls is not None:
            u = sp.Dummy("u", real=True)
            out = sp.diff(cls(u), u).xreplace({u: arg}) if node.prime else cls(arg)
        elif name in FUNCTIONS and not node.prime:
            out = FUNCTIONS[name][1](arg)
        else:
            raise _NotSymbolic
        return out ** _power(node)
    k, a = node.kind, node.args
    if k == "mul":
        out = _product_ir(names, a[0], a[1])
        for factor in a[2:]:  # a b c is (a b) c
            out = out * _to_ir(names, factor)
        return out
    if k == "add":
        return _to_ir(names, a[0]) + _to_ir(names, a[1])
    if k == "sub":
        return _to_ir(names, a[0]) - _to_ir(names, a[1])
    if k == "neg":
        return -_to_ir(names, a[0])
    if k == "div":
        return _to_ir(names, a[0]) / _to_ir(names, a[1])
    if k == "pow":
        return _to_ir(names, a[0]) ** _to_ir(names, a[1])
    if k == "delta" and isinstance(a[0], Name):
        return names.adjoint_of(a[0])
    raise _NotSymbolic


def _product_ir(names, left, right):
    """``W a`` and ``W^T g`` as matrix-product atoms; any other product elementwise."""
    if isinstance(left, Node) and left.kind == "transpose" and isinstance(left.args[0], Name):
        ref = names.resolve(left.args[0])
        if ref.kind == "param" and ref.value.is_matrix:
            return ir.MatVecT(ref.value.symbol, _to_ir(names, right))
    if isinstance(left, Name):
        ref = names.resolve(left)
        if ref.kind == "param" and ref.value.is_matrix:
            return ir.MatVec(ref.value.symbol, _to_ir(names, right))
    return _to_ir(names, left) * _to_ir(names, right)


# ------------------------------------------------------------------ parameter counts


def _check_count(cell, names, f) -> Result:
    claim = sp.expand(with_lets(names.lets, f.rhs, lambda n: _poly(names, n), names.let_values["poly"]))
    own = counts.default_convention(cell)
    options = []
    for conv in (own, *[c for c in counts.CONVENTIONS if c != own]):
        for bias in (True, False):
            options.append((conv, bias, False))
    if counts.supports_projection(cell):
        options.append(("pytorch", True, True))
    table = {o: sp.expand(counts.layer_count(cell, o[0], o[1], o[2])) for o in options}
    truth = table[(own, True, False)]
    quantity = f"the number of parameters of one layer and direction of {cell.name}"
    derived = f"{sp.factor(truth)} ({own} convention, with biases)"
    if sp.expand(claim - truth) == 0:
        return Result("correct", quantity, derived, "symbolically, as polynomials in I, H" +
                      (", P" if P in truth.free_symbols else ""), f.text)
    for (conv, bias, proj), value in table.items():
        if sp.expand(claim - value) == 0:
            what = f"the {conv} convention ({counts.bias_style(cell, conv)} bias)" if bias else \
                f"the {conv} convention without biases (bias=False)"
            if proj:
                what = "PyTorch with proj_size = P (W_{hr} added)"
            return Result("equivalent", quantity, derived, "symbolically", f.text,
                          convention=f"it counts {what}: {sp.factor(value)}")
    point = {I: 10, H: 20, P: 5}
    cv, tv = claim.subs(point), truth.subs(point)
    diff = sp.factor(truth - claim)
    return Result("wrong", quantity, derived, "symbolically", f.text,
                  hint=f"the derivation minus your formula: {diff}", where="I=10, H=20" +
                  (", P=5" if P in (truth.free_symbols | claim.free_symbols) else ""),
                  counterexample={"I": 10, "H": 20}, left=tv, right=cv)


def _poly(names, node):
    if isinstance(node, Call) and node.bare and not node.prime and len(node.args) == 1 and node.power == 1:
        return _poly(names, Name(node.func, node.pos)) * _poly(names, node.args[0])  # H(I + H): a product
    if isinstance(node, Num):
        return sp.Rational(node.value)
    if isinstance(node, Name):
        ref = names.resolve(node)
        if ref.kind == "let":
            done = names.let_values["poly"]
            return done[node.text] if node.text in done else _poly(names, ref.value)
        if ref.kind == "dim":
            return ref.value
        raise DeriveError(f"{node.text}: a parameter count is a polynomial in I, H (and P)", node.pos)
    if isinstance(node, Node) and node.kind in ("add", "sub", "mul", "neg", "pow", "div"):
        vals = [_poly(names, a) for a in node.args]
        if node.kind == "pow" and not (vals[1].is_Integer and 0 <= vals[1] <= 8):
            raise DeriveError("a power in a parameter count must be a small whole number", node.pos)
        if node.kind == "div" and vals[1] == 0:
            raise DeriveError("division by zero", node.pos)
        return {"add": lambda: vals[0] + vals[1], "sub": lambda: vals[0] - vals[1], "mul": lambda: sp.Mul(*vals),
                "neg": lambda: -vals[0], "pow": lambda: vals[0] ** vals[1], "div": lambda: vals[0] / vals[1]}[
            node.kind]()
    raise DeriveError("a parameter count is a polynomial in I, H (and P)", getattr(node, "pos", Pos(1, 1)))


# ------------------------------------------------------------------ activations


_X = sp.Symbol("x", real=True)


def check_activation(name: str, formula: str, lets=()) -> Result:
    cls = acts.get(name)
    if cls.kind != "elementwise":
        raise DeriveError(f"{name} is not elementwise; derive check takes one-argument activations")
    f = parse_formula(formula)
    lets = read_lets(lets)
    prime, var = _activation_lhs(cls, f.lhs)
    truth = sp.diff(cls.expr(_X), _X) if prime else cls.expr(_X)
    values: dict = {}  # --let name -> its SymPy value
    claim = with_lets(lets, f.rhs, lambda n: _act_expr(cls, n, var, values), values)
    quantity = f"{name}'({var})" if prime else f"{name}({var})"
    derived = f"{quantity} = {sp.sstr(truth)}"
    bad = _first_difference(claim, truth)
    how = f"numerically at {len(_POINTS)} points in [-6, 6]"
    if bad is None:
        sym = None
        try:
            sym = within(2.0, lambda: bool(sp.simplify(claim - truth) == 0))
        except TimeoutError:
            pass
        return Result("correct", quantity, derived, "symbolically" if sym else how, f.text)
    for other in ACT_FAMILY.get(cls.__name__, ()):
        o = acts.get(other)
        alt = sp.diff(o.expr(_X), _X) if prime else o.expr(_X)
        if _first_difference(claim, alt) is None:
            return Result("equivalent", quantity, derived, how, f.text,
                          convention=f"it is right for {other} ({o.summary})")
    x0, cv, tv = bad
    return Result("wrong", quantity, derived, how, f.text, where=f"{var} = {x0}",
                  counterexample={var: x0}, left=tv, right=cv)


_POINTS = [sp.Float(-6 + 12 * (k + 0.5) / 41 + 0.0137, 30) for k in range(41)]


def _first_difference(a, b):
    for p in _POINTS:
        try:
            va = complex(a.xreplace({_X: p}).evalf(30))
            vb = complex(b.xreplace({_X: p}).evalf(30))
        except (TypeError, ValueError, ZeroDivisionError):
            return (float(p), "undefined", "")
        if not (abs(va - vb) <= 1e-12 * (1 + abs(vb))):
            return (float(p), _num(va), _num(vb))
    return None


def _num(z: complex):
    return z.real if abs(z.imag) < 1e-300 else z


def _activation_lhs(cls, lhs):
    """f'(x), \\sigma'(x), gelu'(x) -> (True, "x"); f(x) -> (False, "x"); \\frac{\\partial f}{\\partial x} too."""
    if isinstance(lhs, Call) and len(lhs.args) == 1 and isinstance(lhs.args[0], Name):
        fn = _func_name(lhs.func)
        if fn in ("f", "phi", "g") or _activation(fn) is cls:
            return lhs.prime, lhs.args[0].text
    if isinstance(lhs, Node) and lhs.kind == "div" and all(isinstance(a, Node) and a.kind == "partial"
                                                           for a in lhs.args):
        var = lhs.args[1].args[0]
        if isinstance(var, Name):
            return True, var.text
    raise DeriveError(f"the left side must be f'(x) (or {cls.latex or cls.__name__}'(x)) for the derivative, "
                      f"or f(x) for the definition", getattr(lhs, "pos", Pos(1, 1)))


def _act_expr(cls, node, var, lets):
    """``node`` as a SymPy expression in x; ``lets`` holds the SymPy values of the --let names."""
    params = {p.name: v for p, v in zip(cls.params, cls.exact_params().values())}
    if isinstance(node, Num):
        return sp.Rational(node.value)
    if isinstance(node, Name):
        if node.text in lets:
            return lets[node.text]
        key = node.text.lstrip("\\")
        if node.text == var:
            return _X
        if key in params:
            return params[key]
        if key == "pi":
            return sp.pi
        if key == "e":
            return sp.E
        raise DeriveError(f"unknown symbol {node.text}; known: {var}, f({var}), "
                          f"{', '.join(params) + ', ' if params else ''}e, \\pi and functions "
                          f"({', '.join(sorted(FUNCTIONS))}, the activations)", node.pos)
    if isinstance(node, Call):
        fn = _func_name(node.func)
        args = [_act_expr(cls, a, var, lets) for a in node.args]
        if fn in ("max", "min") and len(args) == 2 and not node.prime:
            out = (sp.Max if fn == "max" else sp.Min)(*args)
        elif len(args) != 1:
            raise DeriveError(f"{node.func} takes one argument", node.pos)
        elif fn == "f":
            out = sp.diff(cls.expr(_X), _X).xreplace({_X: args[0]}) if node.prime else cls.expr(args[0])
        elif fn in ("phi",) and node.func.startswith("\\P"):  # \Phi: the normal CDF
            out = (1 + sp.erf(args[0] / sp.sqrt(2))) / 2
        elif _activation(fn) is not None:
            other = _activation(fn)
            out = sp.diff(other.expr(_X), _X).xreplace({_X: args[0]}) if node.prime else other.expr(args[0])
        elif fn in FUNCTIONS and not node.prime:
            out = FUNCTIONS[fn][1](args[0])
        elif node.bare and node.func == var:
            out = _X * args[0]
        else:
            raise DeriveError(f"unknown function {node.func}", node.pos)
        return out ** _power(node)
    k, a = node.kind, node.args
    vals = [_act_expr(cls, x, var, lets) for x in a if not isinstance(x, int)]
    table = {"add": lambda: vals[0] + vals[1], "sub": lambda: vals[0] - vals[1], "mul": lambda: sp.Mul(*vals),
             "div": lambda: vals[0] / vals[1], "neg": lambda: -vals[0], "pow": lambda: vals[0] ** vals[1]}
    if k not in table:
        raise DeriveError(f"{_ast_text(node)} has no meaning for a scalar function", node.pos)
    return table[k]()


# ------------------------------------------------------------------ entry point


def check(target: str, formula: str, *, let=()) -> Result:
    """Check ``formula`` against the derivation of ``target`` (a cell name or spec path, or an
    activation name). Raises DeriveError for input that cannot be read."""
    try:
        return _check(target, formula, list(let))
    except RecursionError:  # sums are balanced and products flat; this is a last guard
        raise DeriveError("the formula nests too deeply to check; split it with --let") from None


def _check(target: str, formula: str, lets: list) -> Result:
    is_cell = target in spec.builtin_names() or target.endswith(".toml")
    if not is_cell:
        try:
            acts.get(target)
        except KeyError:
            raise DeriveError(f"unknown cell or activation {target!r}; cells: {', '.join(spec.builtin_names())}; "
                              f"activations: {', '.join(acts.elementwise())}") from None
        return check_activation(target, formula, lets)
    result = check_cell(target, formula, lets)
    if result.verdict == "wrong" and not target.endswith(".toml"):
        for other, renames in FAMILY.get(target, {}).items():
            try:
                alt = check_cell(other, formula, lets, renames)
            except DeriveError:
                continue
            if alt.verdict == "correct":
                title = spec.load(other).title
                result.verdict = "equivalent"
                result.convention = f"it is right for {other} ({title}), not for {target}"
                break
    return result
