"""A claim's right side in numbers: evaluated in float64 at one step of a witness run, each
value carrying its shape (a number, a vector, a transposed vector, a matrix, ...)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from derive.checker.functions import BINARY, FUNCTIONS, VECTOR_WIDE, activation, func_name, pair, power, single
from derive.checker.lets import with_lets
from derive.checker.names import Names, RefKind
from derive.checker.visitor import Visitor
from derive.errors import DeriveError
from derive.symbolic import ir, printing
from derive.syntax.formulas import Call, Name
from derive.runtime.activations import activation as runtime_activation


class Shape(enum.StrEnum):
    SCALAR = "scalar"
    VECTOR = "vector"
    ROW = "row"  # a transposed vector
    MATRIX = "matrix"
    BLOCKS = "blocks"  # a row of matrices [W_h, W_x]
    STACK = "stack"  # a concatenated vector [h; x]
    ROWSTACK = "rowstack"  # a transposed concatenated vector
    BLOCKCOL = "blockcol"  # a transposed row of matrices
    IDENTITY = "identity"  # diag(s) of a number s: s times the identity, of the size its neighbours have


#: the shapes that are lists of arrays
PARTS = (Shape.BLOCKS, Shape.STACK, Shape.ROWSTACK, Shape.BLOCKCOL)
FLIP = {Shape.VECTOR: Shape.ROW, Shape.ROW: Shape.VECTOR, Shape.MATRIX: Shape.MATRIX, Shape.SCALAR: Shape.SCALAR,
        Shape.STACK: Shape.ROWSTACK, Shape.BLOCKS: Shape.BLOCKCOL, Shape.IDENTITY: Shape.IDENTITY,
        Shape.ROWSTACK: Shape.STACK, Shape.BLOCKCOL: Shape.BLOCKS}


@dataclass
class V:
    """A numeric value with its shape: scalar, vector, row (a transposed vector), matrix,
    blocks (a row of matrices [W_h, W_x]) or stack (a concatenated vector [h; x])."""

    kind: Shape
    val: object


def _fail(msg, pos=None):
    raise DeriveError(msg, pos)


class Evaluator(Visitor):
    """The right side at one step of a run, in float64: ``Evaluator(names, env)(node)``."""

    def __init__(self, names: Names, env: dict):
        self.names = names
        self.env = env
        self.used: dict = {}  # printed name -> value, for a counterexample
        self.let_values: dict = {}  # --let name -> its value at this step

    __call__ = Visitor.visit

    def value(self, sym, pos=None):
        if sym not in self.env:
            raise DeriveError(f"{printing.symbol_text(sym)} is not known at this step (a step's formulas read "
                              f"the vectors at t-1, t and t+1 and their adjoints)", pos)
        v = np.asarray(np.asarray(self.env[sym], dtype=object).astype(float))
        self.used[printing.symbol_text(ir.shift(sym, -self.names.shift) if self.names.shift else sym)] = v
        return v

    def visit_Num(self, node) -> V:
        return V(Shape.SCALAR, float(node.value))

    def visit_Name(self, n: Name) -> V:
        ref = self.names.resolve(n)
        if ref.kind == RefKind.LET:
            return self.let_values[n.text] if n.text in self.let_values else self(ref.value)
        if ref.kind in (RefKind.VEC, RefKind.ADJ, RefKind.DY):
            sym = ir.adjoint(ref.value) if ref.kind == RefKind.ADJ else ref.value
            return V(Shape.VECTOR, self.value(sym, n.pos))
        if ref.kind == RefKind.PARAM:
            v = self.value(ref.value.symbol)
            return V(Shape.MATRIX if v.ndim == 2 else Shape.VECTOR, v)
        if ref.kind == RefKind.ONE:
            return V(Shape.SCALAR, 1.0)
        if ref.kind == RefKind.CONST:  # a constant of the spec (shown in a counterexample), e or \pi
            if ref.value.is_Rational:
                self.used[n.text] = float(ref.value)
            return V(Shape.SCALAR, float(ref.value))
        raise DeriveError(f"{n.text} cannot be used on the right side here", n.pos)

    # operators ------------------------------------------------------------
    def visit_add(self, node, sign=1.0):
        a, b = self(node.args[0]), self(node.args[1])
        if Shape.IDENTITY in (a.kind, b.kind):
            return add_identity(a, b, sign, node.pos)
        if a.kind == Shape.SCALAR and b.kind != Shape.SCALAR:
            return V(b.kind, a.val + sign * b.val)
        if b.kind == Shape.SCALAR and a.kind != Shape.SCALAR:
            return V(a.kind, a.val + sign * b.val)
        if a.kind != b.kind or np.shape(a.val) != np.shape(b.val):
            _fail(f"cannot add a {describe(a)} and a {describe(b)}", node.pos)
        return V(a.kind, a.val + sign * b.val)

    def visit_sub(self, node):
        return self.visit_add(node, -1.0)

    def visit_neg(self, node):
        a = self(node.args[0])
        return V(a.kind, -a.val if a.kind not in PARTS else [-x for x in a.val])

    def visit_sum(self, node):
        return self(node.args[0])

    def visit_div(self, node):
        adjoint = self.names.loss_gradient(node)  # \frac{\partial L}{\partial h_t} on the right side: dh_t
        if adjoint is not None:
            return V(Shape.VECTOR, self.value(adjoint, node.pos))
        a, b = self(node.args[0]), self(node.args[1])
        if b.kind not in (Shape.SCALAR, Shape.VECTOR) or (
                b.kind == Shape.VECTOR and a.kind not in (Shape.VECTOR, Shape.SCALAR)):
            _fail(f"cannot divide a {describe(a)} by a {describe(b)}", node.pos)
        return V(a.kind if a.kind != Shape.SCALAR else b.kind, a.val / b.val)

    def visit_pow(self, node):
        a = self(node.args[0])
        e = self(node.args[1])
        if a.kind not in (Shape.SCALAR, Shape.VECTOR) or e.kind not in (Shape.SCALAR, Shape.VECTOR) or (
                Shape.SCALAR not in (a.kind, e.kind) and np.shape(a.val) != np.shape(e.val)):
            _fail(f"cannot raise a {describe(a)} to a {describe(e)}", node.pos)
        return V(Shape.VECTOR if Shape.VECTOR in (a.kind, e.kind) else Shape.SCALAR, np.power(a.val, e.val))

    def visit_transpose(self, node):
        a = self(node.args[0])
        if a.kind in PARTS:
            return V(FLIP[a.kind], [np.transpose(x) for x in a.val])
        return V(FLIP[a.kind], a.val.T if a.kind == Shape.MATRIX else a.val)

    def visit_concat(self, node):
        parts = [self(x) for x in node.args]
        kinds = {p.kind for p in parts}
        if kinds == {Shape.MATRIX}:
            return V(Shape.BLOCKS, [p.val for p in parts])
        if kinds == {Shape.VECTOR}:
            return V(Shape.STACK, [p.val for p in parts])
        _fail("a concatenation [a, b] holds vectors (a stacked input) or matrices (a row of blocks)", node.pos)

    def visit_mul(self, node):
        out = self(node.args[0])
        for factor in node.args[1:]:  # a b c: left to right
            out = product(out, self(factor), node.pos)
        return out

    def visit_partial(self, node):
        _fail(r"\partial belongs on the left side, in \frac{\partial L}{\partial ...}", node.pos)

    def visit_delta(self, node):
        inner = node.args[0]
        if not isinstance(inner, Name):
            _fail(r"\delta applies to a name, e.g. \delta h_t", node.pos)
        return V(Shape.VECTOR, self.value(self.names.adjoint_of(inner), node.pos))

    def visit_Call(self, c: Call) -> V:
        name = func_name(c.func)
        if c.bare and name not in FUNCTIONS and name not in BINARY and name not in VECTOR_WIDE \
                and activation(name) is None and name != "diag":
            # o(1 - o) written without an operator: a product
            return product(self.visit_Name(Name(c.func, c.pos)), self(single(c)), c.pos)
        if name in BINARY:
            return self.binary(c, name)
        arg = self(single(c))
        if name == "diag":
            if arg.kind not in (Shape.VECTOR, Shape.SCALAR) or c.prime:
                _fail("diag takes a vector (or a number: diag(2) is 2 times the identity)", c.pos)
            return V(Shape.MATRIX, np.diag(arg.val)) if arg.kind == Shape.VECTOR else V(Shape.IDENTITY, arg.val)
        if name in VECTOR_WIDE:
            return self.vector_wide(c, name, arg)
        if arg.kind not in (Shape.SCALAR, Shape.VECTOR):
            _fail(f"{c.func} applies elementwise to a vector, not a {describe(arg)}", c.pos)
        out = elementwise(name, c, arg.val)
        k = power(c)
        return V(arg.kind, out ** k if k != 1 else out)

    def vector_wide(self, c: Call, name: str, arg: V) -> V:
        """``\\operatorname{mean}`` of a vector (its mean in every unit) or of a matrix (each column's mean
        in every row: the factor (1/n) 1 1^T of a Jacobian chain); ``\\operatorname{LN}`` of a vector."""
        kinds = (Shape.VECTOR, Shape.MATRIX) if name == "mean" else (Shape.VECTOR,)
        if arg.kind not in kinds or c.prime:
            _fail(f"{c.func} takes a vector{' or a matrix' if name == 'mean' else ''}, not a {describe(arg)}", c.pos)
        out = VECTOR_WIDE[name][0](arg.val)
        k = power(c)
        return V(arg.kind, out ** k if k != 1 else out)

    def binary(self, c: Call, name: str) -> V:
        """``\\max(a, b)``, ``\\min(a, b)`` elementwise, of numbers or vectors of one size."""
        a, b = (self(x) for x in pair(c))
        if {a.kind, b.kind} - {Shape.SCALAR, Shape.VECTOR} or (
                a.kind == b.kind == Shape.VECTOR and np.shape(a.val) != np.shape(b.val)):
            _fail(f"{c.func} compares numbers or vectors of one size, not a {describe(a)} and a {describe(b)}", c.pos)
        out = BINARY[name][0](a.val, b.val)
        k = power(c)
        return V(Shape.VECTOR if Shape.VECTOR in (a.kind, b.kind) else Shape.SCALAR, out ** k if k != 1 else out)


def elementwise(name: str, c: Call, x):
    if name in FUNCTIONS and not c.prime:
        with np.errstate(all="ignore"):
            return FUNCTIONS[name][0](x)
    cls = activation(name)
    if cls is None:
        raise DeriveError(f"unknown function {c.func}; known: {', '.join(sorted(FUNCTIONS))}, diag and the "
                          f"activations (sigma, tanh, relu, ...)", c.pos)
    f = runtime_activation(cls.__name__)
    arr = np.asarray(x, dtype=float)
    return f.df(arr) if c.prime else f.f(arr)


def describe(v: V) -> str:
    if v.kind == Shape.MATRIX:
        return "{} x {} matrix".format(*np.shape(v.val))
    if v.kind in PARTS:
        sizes = " + ".join(str(np.shape(x)[0]) if np.ndim(x) else "1" for x in v.val)
        return {Shape.STACK: f"concatenated vector ({sizes} entries)", Shape.ROWSTACK: "transposed concatenated vector",
                Shape.BLOCKS: f"row of matrices ({sizes} rows)", Shape.BLOCKCOL: "column of matrices"}[v.kind]
    return {Shape.SCALAR: "number", Shape.VECTOR: f"vector of {np.size(v.val)}", Shape.ROW: "transposed vector",
            Shape.IDENTITY: "multiple of the identity"}.get(v.kind, v.kind)


def product(a: V, b: V, pos) -> V:
    if a.kind == Shape.SCALAR or b.kind == Shape.SCALAR:
        s, o = (a, b) if a.kind == Shape.SCALAR else (b, a)
        if o.kind in PARTS:
            return V(o.kind, [s.val * x for x in o.val])
        return V(o.kind, s.val * o.val)
    k = (a.kind, b.kind)
    if a.kind == Shape.IDENTITY and b.kind in (Shape.IDENTITY, Shape.VECTOR, Shape.MATRIX):
        return V(b.kind, a.val * b.val)  # diag(s) v, diag(s) W
    if b.kind == Shape.IDENTITY and a.kind in (Shape.MATRIX, Shape.ROW):
        return V(a.kind, a.val * b.val)  # W diag(s), v^T diag(s)
    try:
        if k == (Shape.VECTOR, Shape.VECTOR):
            if a.val.shape != b.val.shape:
                raise ValueError
            return V(Shape.VECTOR, a.val * b.val)
        if k in ((Shape.MATRIX, Shape.VECTOR), (Shape.MATRIX, Shape.MATRIX), (Shape.ROW, Shape.MATRIX)):
            out = a.val @ b.val
            return V(b.kind if a.kind == Shape.MATRIX else Shape.ROW, out)
        if k == (Shape.VECTOR, Shape.ROW):
            return V(Shape.MATRIX, np.outer(a.val, b.val))
        if k == (Shape.ROW, Shape.VECTOR):
            return V(Shape.SCALAR, float(a.val @ b.val))
        if k == (Shape.BLOCKS, Shape.STACK):
            if len(a.val) != len(b.val):
                raise ValueError
            return V(Shape.VECTOR, sum(m @ v for m, v in zip(a.val, b.val)))
        if k == (Shape.VECTOR, Shape.ROWSTACK):
            return V(Shape.BLOCKS, [np.outer(a.val, r) for r in b.val])
        if k == (Shape.BLOCKCOL, Shape.VECTOR):
            return V(Shape.STACK, [m @ b.val for m in a.val])
    except ValueError:
        pass
    _fail(f"the sizes do not fit: a {describe(a)} times a {describe(b)}", pos)


def add_identity(a: V, b: V, sign: float, pos) -> V:
    """s I + t I, or s I + W for a square matrix W (and the differences)."""
    if a.kind == b.kind == Shape.IDENTITY:
        return V(Shape.IDENTITY, a.val + sign * b.val)
    m = a if a.kind == Shape.MATRIX else b
    if m.kind != Shape.MATRIX or np.shape(m.val)[0] != np.shape(m.val)[1]:
        _fail(f"cannot add a {describe(a)} and a {describe(b)}", pos)
    eye = np.eye(np.shape(m.val)[0])
    return V(Shape.MATRIX, (a.val * eye if a.kind == Shape.IDENTITY else a.val)
             + sign * (b.val * eye if b.kind == Shape.IDENTITY else b.val))


def evaluate(names: Names, node, env: dict):
    """The value of ``node`` at the step ``env`` and the values it used (printed name -> value)."""
    ev = Evaluator(names, env)
    try:
        with np.errstate(all="ignore"):
            out = with_lets(names.lets, node, ev, ev.let_values)
    except (ValueError, TypeError, ZeroDivisionError, OverflowError) as e:
        raise DeriveError(f"cannot evaluate the right side: {e}") from None
    return out, ev.used
