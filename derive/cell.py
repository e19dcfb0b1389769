"""``Cell``: a recurrent cell as ordered elementwise assignments over named vectors.

``build_cell`` gives the parsed equations their meaning: it resolves every name (input,
state, intermediate, parameter), turns each right-hand side into the vector IR of
``ir.py``, infers every shape by unification (``W_{xf} x_t`` feeding an H-vector makes
``W_{xf}`` H x I), introduces a pre-activation ``z_{v,t}`` for each activation of an
affine expression, orders the assignments and rejects cycles. Every error names the
line and column it is about.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from . import activations as acts
from .properties import interval_text
from . import ir
from .errors import DeriveError, Pos
from .grammar import Call, Equation, Name, Num, Op, Pow

I, H, P = sp.symbols("I H P", positive=True, integer=True)  # input, hidden, projection


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

    def state_prev(self, state: sp.Symbol) -> sp.Symbol:
        return ir.at(state, -1)

    def assignment(self, target: sp.Symbol) -> Assignment:
        return next(a for a in self.assignments if a.target == target)

    @property
    def state_keys(self) -> list[str]:
        return [ir.ref(s).key for s in self.states]


# ------------------------------------------------------------ shape unification


class _Dims:
    """Union-find over dimension variables; roots may carry a label (I, H or P)."""

    def __init__(self):
        self.parent: dict[int, int] = {}
        self.label: dict[int, tuple] = {}  # root -> (symbol, why)
        self.count = 0

    def new(self, label=None, why="") -> int:
        self.count += 1
        self.parent[self.count] = self.count
        if label is not None:
            self.label[self.count] = (label, why)
        return self.count

    def find(self, d: int) -> int:
        while self.parent[d] != d:
            self.parent[d] = self.parent[self.parent[d]]
            d = self.parent[d]
        return d

    def unify(self, a: int, b: int, pos: Pos, what: str):
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        la, lb = self.label.get(ra), self.label.get(rb)
        if la and lb and la[0] != lb[0]:
            raise DeriveError(
                f"shape conflict in {what}: one side has size {la[0]} ({la[1]}), "
                f"the other size {lb[0]} ({lb[1]})", pos)
        self.parent[rb] = ra
        if lb and not la:
            self.label[ra] = lb

    def resolve(self, d: int, default=H):
        lab = self.label.get(self.find(d))
        return lab[0] if lab else default


@dataclass
class _Val:
    """A converted sub-expression: the IR expression, its kind and its dimension."""

    expr: sp.Expr
    kind: str  # "scalar" | "vector"
    dim: int | None = None


class _Builder:
    def __init__(self, equations, input_name: Name, state_names: list, declared_params, source, sizes=None):
        self.source = source
        self.dims = _Dims()
        self.eqs: list[Equation] = equations
        self.defined: dict[str, Equation] = {}
        self.names: dict[str, tuple] = {}  # key -> (base, sub)
        for n in [input_name, *state_names]:
            self.names[_key(n)] = (n.base, n.sub)
        input_name, state_names = _key(input_name), [_key(n) for n in state_names]
        for eq in equations:
            lhs = eq.lhs
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
        self.vec_dim[input_name] = self.dims.new(I, f"the input {input_name}_t")
        for s in state_names:
            size = {"H": H, "P": P}[(sizes or {}).get(s, "H")]
            self.vec_dim[s] = self.dims.new(size, f"the state {s}_t")
        if input_name in self.defined:
            raise DeriveError(f"the input {input_name}_t cannot be assigned", self.defined[input_name].lhs.pos)

    # names ------------------------------------------------------------
    def known(self) -> str:
        names = [f"{self.input_key}_t"] + [f"{s}_t, {s}_{{t-1}}" for s in self.state_keys]
        names += [f"{k}_t" for k in self.defined if k not in self.state_keys]
        return ", ".join(names)

    def vector(self, n: Name, user: str) -> _Val:
        key = ir.Ref(n.base, n.sub or "", 0).key
        if n.time is None:
            return self.param_vector(n, key)
        if n.time > 0:
            raise DeriveError(f"{n.text} reads the future; a step may use time t and t-1 only", n.pos)
        is_state = key in self.state_keys
        if n.time < 0 and not is_state:
            what = "the input" if key == self.input_key else "not a state"
            if key in self.defined or key == self.input_key:
                raise DeriveError(f"{n.text}: {key} is {what}; only states may be read at t-1 "
                                  f"(states: {', '.join(self.state_keys)})", n.pos)
        if n.time < -1:
            raise DeriveError(f"{n.text}: a step may read states at t-1 only", n.pos)
        if key != self.input_key and key not in self.defined and not is_state:
            raise DeriveError(f"unknown symbol {n.text}; known: {self.known()}", n.pos)
        if n.time == 0:
            self.uses.setdefault(user, set()).add(key)
        if key not in self.vec_dim:
            self.vec_dim[key] = self.dims.new()
        return _Val(ir.symbol(n.base, n.sub, n.time), "vector", self.vec_dim[key])

    def param_entry(self, n: Name, key: str, kind: str) -> dict:
        if self.declared_params is not None and key not in self.declared_params:
            raise DeriveError(f"unknown symbol {n.text}; declared parameters: "
                              f"{', '.join(sorted(self.declared_params))}", n.pos)
        if key in self.defined or key in self.state_keys or key == self.input_key:
            raise DeriveError(f"{n.text} has no time index; write {n.text}_t "
                              f"(a name without one is a parameter)", n.pos)
        entry = self.params.get(key)
        if entry is None:
            dims = (self.dims.new(), self.dims.new()) if kind == "matrix" else (self.dims.new(),)
            entry = self.params[key] = {"kind": kind, "dims": dims, "pos": n.pos, "name": n}
        elif entry["kind"] != kind:
            first = entry["pos"]
            raise DeriveError(f"{n.text} is used as a {kind} here but as a {entry['kind']} at line "
                              f"{first.line}, column {first.column}", n.pos)
        return entry

    def param_vector(self, n: Name, key: str) -> _Val:
        entry = self.param_entry(n, key, "vector")
        return _Val(ir.symbol(n.base, n.sub), "vector", entry["dims"][0])

    # expressions ------------------------------------------------------
    def convert(self, node, user: str) -> _Val:
        if isinstance(node, Name):
            return self.vector(node, user)
        if isinstance(node, Num):
            return _Val(sp.Rational(node.value), "scalar")
        if isinstance(node, Pow):
            base = self.convert(node.base, user)
            return _Val(base.expr ** node.exponent, base.kind, base.dim)
        if isinstance(node, Call):
            cls = acts.by_command(node.func)
            if cls is None:
                raise DeriveError(f"undefined activation {node.func}; known: {', '.join(acts.all_commands())}",
                                  node.pos)
            arg = self.convert(node.arg, user)
            return _Val(cls(arg.expr) ** node.exponent, arg.kind, arg.dim)
        assert isinstance(node, Op)
        if node.kind == "juxt":
            return self.juxt(node, user)
        vals = [self.convert(a, user) for a in node.args]
        if node.kind == "neg":
            return _Val(-vals[0].expr, vals[0].kind, vals[0].dim)
        a, b = vals
        what = {"add": "a sum", "sub": "a difference", "had": "an elementwise product",
                "div": "a quotient"}[node.kind]
        dim = self.join(a, b, node.pos, what)
        if node.kind == "had":
            for side in node.args:
                if isinstance(side, Name) and side.time == 0:
                    self.hadamard_factors.add(ir.Ref(side.base, side.sub or "", 0).key)
        expr = {"add": lambda: a.expr + b.expr, "sub": lambda: a.expr - b.expr,
                "had": lambda: a.expr * b.expr, "div": lambda: a.expr / b.expr}[node.kind]()
        kind = "vector" if "vector" in (a.kind, b.kind) else "scalar"
        return _Val(expr, kind, dim)

    def join(self, a: _Val, b: _Val, pos: Pos, what: str):
        if a.kind == "vector" and b.kind == "vector":
            self.dims.unify(a.dim, b.dim, pos, what)
            return a.dim
        return a.dim if a.kind == "vector" else b.dim

    def juxt(self, node: Op, user: str) -> _Val:
        left, right = node.args
        rhs = self.convert(right, user)
        if isinstance(left, Name) and left.time is None and rhs.kind == "vector":
            key = ir.Ref(left.base, left.sub or "", 0).key
            entry = self.param_entry(left, key, "matrix")
            self.dims.unify(entry["dims"][1], rhs.dim, node.pos,
                            f"the product {left.text} times its argument")
            return _Val(ir.MatVec(ir.symbol(left.base, left.sub), rhs.expr), "vector", entry["dims"][0])
        lhs = self.convert(left, user)
        if lhs.kind == "scalar" or rhs.kind == "scalar":
            return _Val(lhs.expr * rhs.expr, "vector" if "vector" in (lhs.kind, rhs.kind) else "scalar",
                        lhs.dim if lhs.kind == "vector" else rhs.dim)
        raise DeriveError("two vectors side by side: write \\odot for the elementwise product, "
                          "or use a parameter name (without time index) as the matrix", node.pos)


def _name_latex(base: str, sub: str) -> str:
    if base.endswith(("_tilde", "_hat", "_bar")):
        letter, decor = base.split("_")
        head = f"\\{decor}{{{letter}}}"
    else:
        head = base
    return head if not sub else f"{head}_{{{sub}}}"


def _key(n: Name) -> str:
    return ir.Ref(n.base, n.sub or "", 0).key


def build_cell(equations: list[Equation], *, name: str, input_name: Name, state_names: list,
               output_name: Name, gates=(), sizes=None, parameters=None, title: str = "", conventions=None,
               meta=None, positions=None, source: str = "", written=()) -> Cell:
    """Turn parsed equations and declarations into a checked ``Cell``.

    ``positions`` maps a declaration key (``"states"``, ``"output"``, ``"gates"``) to
    where it stands, for errors about declarations.
    """
    positions = positions or {}
    b = _Builder(equations, input_name, list(state_names), None if parameters is None else set(parameters),
                 source, sizes)
    for s in b.state_keys:
        if s not in b.defined:
            raise DeriveError(f"the state {s} is never updated: add an equation {s}_t = ...",
                              positions.get("states"))
    raw: dict[str, tuple] = {}
    for eq in equations:
        key = ir.Ref(eq.lhs.base, eq.lhs.sub or "", 0).key
        val = b.convert(eq.rhs, key)
        if key not in b.vec_dim:
            b.vec_dim[key] = b.dims.new()
        if val.kind == "vector":
            b.dims.unify(b.vec_dim[key], val.dim, eq.pos, f"the equation for {eq.lhs.text}")
        raw[key] = (eq, val.expr)
    order = _topological(raw, b.uses)

    # pre-activations: f_t = sigma(affine) becomes z_{f,t} = affine; f_t = sigma(z_{f,t})
    assignments: list[Assignment] = []
    for key in order:
        eq, rhs = raw[key]
        target = ir.symbol(eq.lhs.base, eq.lhs.sub, 0)
        rhs, aux = _name_preactivations(rhs, eq.lhs)
        for k, (sym, arg) in enumerate(aux):
            b.vec_dim[ir.ref(sym).key] = b.vec_dim[key]
            assignments.append(Assignment(sym, arg, eq.pos, aux=True))
        assignments.append(Assignment(target, rhs, eq.pos, source=written[equations.index(eq)]
                                      if written else ""))

    out_key = _key(output_name)
    if out_key not in b.defined:
        raise DeriveError(f"the output {output_name.text} is not defined by any equation", positions.get("output"))
    dims = {k: b.dims.resolve(d) for k, d in b.vec_dim.items()}
    params = {}
    for key, entry in b.params.items():
        n = entry["name"]
        shape = tuple(b.dims.resolve(d) for d in entry["dims"])
        params[key] = Param(key, ir.symbol(n.base, n.sub), shape, entry["pos"])
    cell = Cell(
        name=name, title=title or name, input=ir.symbol(input_name.base, input_name.sub, 0),
        states=[ir.symbol(n.base, n.sub, 0) for n in state_names],
        output=ir.symbol(output_name.base, output_name.sub, 0), assignments=assignments, params=params, dims=dims,
        gates=[_key(g) for g in gates], conventions=conventions or {}, meta=meta or {}, source=source,
        equations=list(written))
    _check_gates(cell, b, positions.get("gates"))
    return cell


def _name_preactivations(rhs: sp.Expr, lhs: Name):
    """Give each activation of a non-trivial argument a named pre-activation symbol."""
    aux = []

    def visit(e, top):
        if isinstance(e, acts.Activation) and not isinstance(e.args[0], sp.Symbol):
            inner = visit(e.args[0], False)
            sub = lhs.base if not lhs.sub else f"{lhs.base},{lhs.sub}"
            if not top or aux:
                sub += f",{len(aux) + 1}"
            z = ir.symbol("z", sub, 0)
            aux.append((z, inner))
            return e.func(z)
        if e.args and not isinstance(e, (sp.Symbol, ir.MatVec)):
            return e.func(*[visit(a, False) for a in e.args])
        if isinstance(e, ir.MatVec):
            return ir.MatVec(e.args[0], visit(e.args[1], False))
        return e

    top_is_act = isinstance(rhs, acts.Activation)
    out = visit(rhs, top_is_act)
    return out, aux


def _topological(raw: dict, uses: dict) -> list[str]:
    """Equations in an order where each is computed after what it uses (stable)."""
    order, state = [], {}

    def visit(key, path):
        if state.get(key) == "done":
            return
        if state.get(key) == "active":
            cycle = path[path.index(key):] + [key]
            eq = raw[key][0]
            raise DeriveError("cycle within one step: " + " -> ".join(f"{k}_t" for k in cycle)
                              + " (use a state at t-1 to break it)", eq.pos)
        state[key] = "active"
        for dep in sorted(uses.get(key, ())):
            if dep in raw:
                visit(dep, path + [key])
        state[key] = "done"
        order.append(key)

    for key in raw:
        visit(key, [])
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
            if not acts.is_gate_activation(act):
                rng = acts.value_range(act)
                cell.warnings.append(
                    f"gate {g} uses {act}, whose range {interval_text(rng)} is not within [0, 1]: a gate "
                    f"scales what passes through it, so it needs a saturating activation with range "
                    f"[0, 1] such as sigmoid (with an unbounded one the cell can amplify without "
                    f"limit and its gradients can explode)")
