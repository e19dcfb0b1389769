"""``Cell``: a recurrent cell as ordered elementwise assignments over named vectors.

``build_cell`` gives the parsed equations their meaning: it resolves every name (input,
state, intermediate, parameter), turns each right-hand side into the vector IR of
``ir.py``, infers every shape by unification (``W_{xf} x_t`` feeding an H-vector makes
``W_{xf}`` H x I), introduces a pre-activation ``a_{v,t}`` for each activation of an
affine expression (``z_{v,t}`` in a cell that names a quantity ``a`` itself), orders the assignments and rejects cycles. Every error names the
line and column it is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from derive import activations as acts
from derive.symbolic import display, functions, ir, printing
from derive.symbolic.calls import Calls, check_constants
from derive.symbolic.clock import Clock
from derive.symbolic.preactivations import is_input, name_preactivations, preactivation_prefix
from derive.symbolic.properties import is_gate_activation, value_range
from derive.textout import interval_text
from derive.errors import DeriveError, Pos
from derive.symbolic.shapes import H, I, P, Dims, Shape, Val as _Val
from derive.syntax.equations import Call, Const, Equation, Name, Num, Op, OpKind, Pow

__all__ = ["H", "I", "P", "Assignment", "Cell", "Param", "build_cell"]


@dataclass
class Param:
    """A learned parameter: a matrix (rows, cols) or a vector (rows,)."""

    key: str
    symbol: sp.Symbol
    shape: tuple
    pos: Pos

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) == 2


@dataclass
class Assignment:
    """``target_t = rhs``; ``aux`` marks a pre-activation that derive introduced."""

    target: sp.Symbol
    rhs: sp.Expr
    pos: Pos
    aux: bool = False
    source: str = ""


@dataclass
class Cell:
    name: str
    title: str
    input: sp.Symbol  # x_t
    states: list  # [h, c] at time t
    output: sp.Symbol  # y_t, a state or intermediate at time t
    assignments: list  # [Assignment], in evaluation order
    params: dict  # key -> Param, in order of first use
    dims: dict  # vector key -> dimension symbol (I, H or P)
    gates: list = field(default_factory=list)
    conventions: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    equations: list = field(default_factory=list)  # the equations as written (LaTeX)
    warnings: list = field(default_factory=list)
    source: str = ""
    #: the size the spec declares for the input (``sizes = { x = "H" }``: H), or None (its own size I)
    input_size: sp.Symbol | None = None
    constants: dict = field(default_factory=dict)  # the spec's [constants]: name -> exact value
    #: the spec's [clock] (modules, periods, the update mask m_t, block-triangular matrices), or None
    clock: Clock | None = None
    #: the letter of the pre-activations derive named (a_{f,t}; z_{f,t} in a cell with a quantity a)
    preactivation: str = "a"

    @property
    def taps(self) -> tuple:
        """The input's earlier steps the cell reads, k of each x_{t-k} (QRNN window 2: (1,));
        x_{t-k} is zero for t < k, a tap is no state the caller passes."""
        key = ir.ref(self.input).key
        return tuple(sorted({-ir.ref(s).time for a in self.assignments for s in a.rhs.free_symbols
                             if ir.is_ir(s) and ir.ref(s).key == key and (ir.ref(s).time or 0) < 0}))

    def is_input(self, sym) -> bool:
        """``sym`` is the input at t or one of its taps x_{t-k}."""
        return is_input(sym, ir.ref(self.input).key)

    def state_prev(self, state: sp.Symbol) -> sp.Symbol:
        return ir.at(state, -1)

    def assignment(self, target: sp.Symbol) -> Assignment:
        return next(a for a in self.assignments if a.target == target)

    @property
    def state_keys(self) -> list[str]:
        return [ir.ref(s).key for s in self.states]

    def _repr_latex_(self) -> str:  # Jupyter: the forward step (``display.py``)
        return display.cell_latex(self)

    def _repr_svg_(self) -> str | None:  # a diagram, when a layer above registered one
        return display.cell_svg(self)


class _Builder(Calls):
    def __init__(self, equations, input_name: Name, state_names: list, declared_params, source, sizes=None,
                 constants=None, clock: Clock | None = None, clock_pos: Pos | None = None):
        self.source = source
        self.clock = clock
        declared = (sizes or {}).get(_key(input_name), (sizes or {}).get(input_name.text))
        self.input_size = H if declared == "H" else None  # sizes = { x = "H" }: I = H
        self.dims = Dims([(I, H)] if self.input_size == H else (), _key(input_name))
        self.constants = dict(constants or {})
        self.eqs: list[Equation] = equations
        self.defined: dict[str, Equation] = {}
        self.names: dict[str, tuple] = {}  # key -> (base, sub)
        self.spellings: dict[str, Name] = {}  # code name -> the first name written for it
        for n in [input_name, *state_names]:
            self.claim(n)
            self.names[_key(n)] = (n.base, n.sub)
        input_name, state_names = _key(input_name), [_key(n) for n in state_names]
        for eq in equations:
            lhs = eq.lhs
            self.claim(lhs)
            if lhs.time != 0:
                raise DeriveError(f"the left side {lhs.text} must be at time t (write {lhs.base}_t)", lhs.pos)
            key = ir.Ref(lhs.base, lhs.sub or "", 0).key
            if key in self.defined:
                first = self.defined[key].pos
                raise DeriveError(f"{lhs.text} is defined twice (first at line {first.line})", lhs.pos)
            self.defined[key] = eq
            self.names[key] = (lhs.base, lhs.sub)
        self.input_key = input_name
        self.state_keys = state_names
        self.declared_params = declared_params
        self.vec_dim: dict[str, int] = {}
        self.params: dict[str, dict] = {}  # key -> {"kind", "dims", "pos", "name"}
        self.uses: dict[str, set] = {}  # key -> keys used at time t
        self.hadamard_factors: set[str] = set()
        self.reads_input: set[str] = set()  # matrices multiplying x_t itself: their columns are I
        self.vec_dim[input_name] = self.dims.new(I, f"the input {input_name}_t")
        for s in state_names:
            size = {"H": H, "P": P}[(sizes or {}).get(s, "H")]
            self.vec_dim[s] = self.dims.new(size, f"the state {s}_t")
        if input_name in self.defined:
            raise DeriveError(f"the input {input_name}_t cannot be assigned", self.defined[input_name].lhs.pos)
        taken = {input_name: f"the input {input_name}_t", **{s: f"the state {s}_t" for s in state_names}}
        taken.update({k: f"the vector {k}_t" for k in self.defined if k not in taken})
        taken.update({k: f"the declared parameter {k}" for k in declared_params or ()})
        check_constants(self.constants, taken)
        if clock is not None:
            mask = clock.mask_key
            if mask in taken:
                where = clock_pos
                raise DeriveError(f"[clock] mask {mask} is also {taken[mask]}: the update mask {mask}_t is given "
                                  f"by the clock, not computed or carried; choose another name", where)
            self.vec_dim[mask] = self.dims.new(H, f"the clock's update mask {mask}_t")
            self.mask_read = False

    # names ------------------------------------------------------------
    def claim(self, n: Name):
        """Two different names must not become one name in generated code (W_{x,h}, W_{x_h})."""
        code = _key(n).replace(",", "_")
        first = self.spellings.setdefault(code, n)
        if (first.base, first.sub) != (n.base, n.sub):
            at = f" (line {first.pos.line}, column {first.pos.column})" if first.pos else ""
            raise DeriveError(f"{_written(n)} and {_written(first)}{at} both become {code} in generated code; "
                              f"rename one", n.pos)

    def known(self) -> str:
        names = [f"{self.input_key}_t"] + [f"{s}_t, {s}_{{t-1}}" for s in self.state_keys]
        names += [f"{k}_t" for k in self.defined if k not in self.state_keys]
        return ", ".join(names)

    def vector(self, n: Name, user: str) -> _Val:
        key = ir.Ref(n.base, n.sub or "", 0).key
        if n.time is None:
            value = self.named_constant(key)
            return _Val(value, Shape.SCALAR) if value is not None else self.param_vector(n, key)
        if n.time > 0:
            raise DeriveError(f"{n.text} reads the future; a step may use time t and t-1 only", n.pos)
        is_state = key in self.state_keys
        if self.clock is not None and key == self.clock.mask_key:
            if n.time != 0:
                raise DeriveError(f"{n.text}: the clock's update mask is known at step t only (write {key}_t)",
                                  n.pos)
            self.mask_read = True
            return _Val(self.clock.mask, Shape.VECTOR, self.vec_dim[key])
        if n.time < 0 and not is_state and key in self.defined:
            raise DeriveError(f"{n.text}: {key} is not a state; only states may be read at t-1, and the input "
                              f"{self.input_key} at earlier steps (states: {', '.join(self.state_keys)})", n.pos)
        if n.time < -1 and key != self.input_key:  # the input's taps x_{t-k} start at zero (Cell.taps)
            raise DeriveError(f"{n.text}: a step may read states at t-1 only", n.pos)
        if key != self.input_key and key not in self.defined and not is_state:
            raise DeriveError(f"unknown symbol {n.text}; known: {self.known()}", n.pos)
        if n.time == 0:
            self.uses.setdefault(user, set()).add(key)
        if key not in self.vec_dim:
            self.vec_dim[key] = self.dims.new()
        return _Val(ir.symbol(n.base, n.sub, n.time), Shape.VECTOR, self.vec_dim[key])

    def param_entry(self, n: Name, key: str, kind: Shape) -> dict:
        self.claim(n)
        if self.declared_params is not None and key not in self.declared_params:
            raise DeriveError(f"unknown symbol {n.text}; declared parameters: "
                              f"{', '.join(sorted(self.declared_params))}", n.pos)
        if key in self.defined or key in self.state_keys or key == self.input_key:
            raise DeriveError(f"{n.text} has no time index; write {n.text}_t "
                              f"(a name without one is a parameter)", n.pos)
        entry = self.params.get(key)
        if entry is None:
            dims = (self.dims.new(), self.dims.new()) if kind == Shape.MATRIX else (self.dims.new(),)
            entry = self.params[key] = {"kind": kind, "dims": dims, "pos": n.pos, "name": n}
        elif entry["kind"] != kind:
            first = entry["pos"]
            raise DeriveError(f"{n.text} is used as a {kind} here but as a {entry['kind']} at line "
                              f"{first.line}, column {first.column}", n.pos)
        return entry

    def param_vector(self, n: Name, key: str) -> _Val:
        entry = self.param_entry(n, key, Shape.VECTOR)
        return _Val(ir.symbol(n.base, n.sub), Shape.VECTOR, entry["dims"][0])

    # expressions ------------------------------------------------------
    def convert(self, node, user: str) -> _Val:
        if isinstance(node, Name):
            return self.vector(node, user)
        if isinstance(node, Num):
            return _Val(sp.Rational(node.value), Shape.SCALAR)
        if isinstance(node, Pow):
            base = self.convert(node.base, user)
            return _Val(base.expr ** node.exponent, base.kind, base.dim)
        if isinstance(node, Call):
            return self.call(node, user)
        if isinstance(node, Const):
            return self.constant(node)
        assert isinstance(node, Op)
        if node.kind == OpKind.JUXT:
            return self.juxt(node, user)
        vals = [self.convert(a, user) for a in node.args]
        if node.kind == OpKind.NEG:
            return _Val(-vals[0].expr, vals[0].kind, vals[0].dim)
        a, b = vals
        what = {OpKind.ADD: "a sum", OpKind.SUB: "a difference", OpKind.HAD: "an elementwise product",
                OpKind.DIV: "a quotient"}[node.kind]
        dim = self.join(a, b, node.pos, what, (node.args[0].pos, node.args[1].pos))
        if node.kind == OpKind.HAD:
            for side in node.args:
                if getattr(side, "kind", None) == OpKind.DIV:  # a normalised gate f / (f + i) (minLSTM)
                    side = side.args[0]
                if isinstance(side, Name) and side.time == 0:
                    self.hadamard_factors.add(ir.Ref(side.base, side.sub or "", 0).key)
        expr = {OpKind.ADD: lambda: a.expr + b.expr, OpKind.SUB: lambda: a.expr - b.expr,
                OpKind.HAD: lambda: a.expr * b.expr, OpKind.DIV: lambda: a.expr / b.expr}[node.kind]()
        kind = Shape.VECTOR if Shape.VECTOR in (a.kind, b.kind) else Shape.SCALAR
        return _Val(expr, kind, dim)

    def join(self, a: _Val, b: _Val, pos: Pos, what: str, sides=(None, None)):
        if a.kind == Shape.VECTOR and b.kind == Shape.VECTOR:
            self.dims.unify(a.dim, b.dim, pos, what, sides)
            return a.dim
        return a.dim if a.kind == Shape.VECTOR else b.dim

    def juxt(self, node: Op, user: str) -> _Val:
        """``a b c`` as the left-deep ``(a b) c``: operands converted right to left, then
        multiplied from the left; only the first two can be a matrix-vector product."""
        rest = [self.convert(arg, user) for arg in reversed(node.args[2:])][::-1]
        out = self.product(node.args[0], self.convert(node.args[1], user), node.pos, user, node.args[1])
        for rhs in rest:
            out = self.scale(out, rhs, node.pos)
        return out

    def product(self, left, rhs: _Val, pos: Pos, user: str, right=None) -> _Val:
        key = ir.Ref(left.base, left.sub or "", 0).key if isinstance(left, Name) else None
        if key is not None and left.time is None and rhs.kind == Shape.VECTOR and key not in self.constants:
            entry = self.param_entry(left, key, Shape.MATRIX)
            self.dims.unify(entry["dims"][1], rhs.dim, pos,
                            f"the product {left.text} times its argument", (left.pos, right.pos if right else None))
            if isinstance(right, Name) and _key(right) == self.input_key and right.time is not None:
                self.reads_input.add(key)
            return _Val(ir.MatVec(ir.symbol(left.base, left.sub), rhs.expr), Shape.VECTOR, entry["dims"][0])
        return self.scale(self.convert(left, user), rhs, pos)

    def scale(self, lhs: _Val, rhs: _Val, pos: Pos) -> _Val:
        if lhs.kind == Shape.SCALAR or rhs.kind == Shape.SCALAR:
            return _Val(lhs.expr * rhs.expr, Shape.VECTOR if Shape.VECTOR in (lhs.kind, rhs.kind) else Shape.SCALAR,
                        lhs.dim if lhs.kind == Shape.VECTOR else rhs.dim)
        raise DeriveError("two vectors side by side: write \\odot for the elementwise product, "
                          "or use a parameter name (without time index) as the matrix", pos)


def _name_latex(base: str, sub: str) -> str:
    if base.endswith(("_tilde", "_hat", "_bar")):
        letter, decor = base.split("_")
        head = f"\\{decor}{{{letter}}}"
    else:
        head = base
    return head if not sub else f"{head}_{{{sub}}}"


def _key(n: Name) -> str:
    return ir.Ref(n.base, n.sub or "", 0).key


def _written(n: Name) -> str:
    """A name as written, without its time index: W_{x,h}, \\tilde{h}."""
    return _name_latex(n.base, n.sub or "")


def build_cell(equations: list[Equation], *, name: str, input_name: Name, state_names: list,
               output_name: Name, gates=(), sizes=None, parameters=None, title: str = "", conventions=None,
               meta=None, positions=None, source: str = "", written=(), constants=None, clock=None) -> Cell:
    """Turn parsed equations and declarations into a checked ``Cell``.

    ``positions`` maps a declaration key (``"states"``, ``"output"``, ``"gates"``) to
    where it stands, for errors about declarations.
    """
    positions = positions or {}
    b = _Builder(equations, input_name, list(state_names), None if parameters is None else set(parameters),
                 source, sizes, constants, clock, positions.get("mask") or positions.get("clock"))
    for s in b.state_keys:
        if s not in b.defined:
            raise DeriveError(f"the state {s} is never updated: add an equation {s}_t = ...",
                              positions.get("states"))
    raw: dict[str, tuple] = {}
    written = list(written) or [""] * len(equations)
    for eq, text in zip(equations, written):
        key = ir.Ref(eq.lhs.base, eq.lhs.sub or "", 0).key
        val = b.convert(eq.rhs, key)
        if key not in b.vec_dim:
            b.vec_dim[key] = b.dims.new()
        if val.kind == Shape.VECTOR:
            b.dims.unify(b.vec_dim[key], val.dim, eq.pos, f"the equation for {eq.lhs.text}", (eq.lhs.pos, eq.rhs.pos))
        raw[key] = (eq, val.expr, text)
    order = _topological(raw, b.uses)

    # pre-activations: f_t = sigma(affine) becomes a_{f,t} = affine; f_t = sigma(a_{f,t})
    assignments: list[Assignment] = []
    prefix = preactivation_prefix({base for base, _ in b.names.values()}
                                  | {e["name"].base for e in b.params.values()})
    for key in order:
        eq, rhs, text = raw[key]
        target = ir.symbol(eq.lhs.base, eq.lhs.sub, 0)
        rhs, aux = name_preactivations(rhs, eq.lhs, b.input_key, prefix)
        for sym, arg, is_aux in aux:
            _check_free(b, sym, eq.lhs, positions)
            b.vec_dim[ir.ref(sym).key] = b.vec_dim[key]
            assignments.append(Assignment(sym, arg, eq.pos, aux=is_aux))
        assignments.append(Assignment(target, rhs, eq.pos, source=text))

    out_key = _key(output_name)
    if out_key not in b.defined:
        raise DeriveError(f"the output {output_name.text} is not defined by any equation", positions.get("output"))
    dims = {k: b.dims.resolve(d) for k, d in b.vec_dim.items()}
    params = {}
    for key, entry in b.params.items():
        n = entry["name"]
        shape = tuple(b.dims.resolve(d) for d in entry["dims"])
        if key in b.reads_input and b.input_size is not None:
            shape = (shape[0], I)  # I = H declared: a matrix reading x_t keeps the input's size in its shape
        params[key] = Param(key, ir.symbol(n.base, n.sub), shape, entry["pos"])
    cell = Cell(
        name=name, title=title or name, input=ir.symbol(input_name.base, input_name.sub, 0),
        states=[ir.symbol(n.base, n.sub, 0) for n in state_names],
        output=ir.symbol(output_name.base, output_name.sub, 0), assignments=assignments, params=params, dims=dims,
        gates=[_key(g) for g in gates], conventions=conventions or {}, meta=meta or {}, source=source,
        equations=[w for w in written if w], input_size=b.input_size,
        constants={k: v for k, (v, _) in b.constants.items()}, clock=clock, preactivation=prefix)
    _check_gates(cell, b, positions.get("gates"))
    if clock is not None:
        clock.check(cell, b.mask_read, positions.get("mask") or positions.get("clock"),
                    positions.get("block_triangular") or positions.get("clock"))
    return cell



def _check_free(b: _Builder, z: sp.Symbol, lhs: Name, positions: dict):
    """The pre-activation name derive makes (a_{f,t}) must not be one of the spec's names."""
    key = ir.ref(z).key
    if key in b.defined:
        pos = b.defined[key].lhs.pos
    elif key in b.params:
        pos = b.params[key]["pos"]
    elif key == b.input_key or key in b.state_keys:
        pos = positions.get("input" if key == b.input_key else "states")
    else:
        return
    raise DeriveError(f"{printing.symbol_text(z)} is the name derive gives the pre-activation of {lhs.text}; "
                      f"choose another name", pos)


def _topological(raw: dict, uses: dict) -> list[str]:
    """Equations in an order where each is computed after what it uses (stable).

    A depth-first search with its own stack, so a chain of thousands of equations is fine.
    """
    order, state = [], {}

    def deps(key):
        return iter(sorted(d for d in uses.get(key, ()) if d in raw))

    for root in raw:
        if root in state:
            continue
        state[root], path, stack = "active", [root], [deps(root)]
        while stack:
            dep = next(stack[-1], None)
            if dep is None:
                stack.pop()
                key = path.pop()
                state[key] = "done"
                order.append(key)
            elif state.get(dep) == "active":
                cycle = path[path.index(dep):] + [dep]
                raise DeriveError("cycle within one step: " + " -> ".join(f"{k}_t" for k in cycle)
                                  + " (use a state at t-1 to break it)", raw[dep][0].pos)
            elif dep not in state:
                state[dep] = "active"
                path.append(dep)
                stack.append(deps(dep))
    return order


def _check_gates(cell: Cell, b: _Builder, pos):
    for g in cell.gates:
        if g not in b.defined:
            raise DeriveError(f"the gate {g} is not defined by any equation", pos)
        rhs = cell.assignment(ir.symbol(*b.names[g], 0)).rhs
        if g not in b.hadamard_factors:
            cell.warnings.append(f"gate {g} never multiplies another value elementwise (\\odot), "
                                 f"so it does not act as a switch")
        if isinstance(rhs, acts.Activation):
            act = type(rhs).__name__
            if not is_gate_activation(act):
                rng = value_range(act)
                cell.warnings.append(
                    f"gate {g} uses {act}, whose range {interval_text(rng)} is not within [0, 1]: a gate "
                    f"scales what passes through it, so it needs a saturating activation with range "
                    f"[0, 1] such as sigmoid (with an unbounded one the cell can amplify without "
                    f"limit and its gradients can explode)")
