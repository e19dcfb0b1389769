"""One step of a cell as a dataflow graph, built from the cell's assignments (SymPy).

Vectors are nodes: the input x_t (and its taps), the states in (s_{t-1}) and out (s_t), the
gates and the other intermediates the spec names; a pre-activation derive introduced (a_{f,t})
is drawn inside the operator that computes it, not as a node. Operators are nodes too: an
affine map followed by its activation (``sigma(W x_t + U h_{t-1} + b)``) is one *layer* box
labelled with the activation, the way cells are drawn; every other operation (a product, a
sum, ``1 -``, a quotient, an activation of a non-affine argument, a function) is a small
operator node. Parameters label nothing and have no node: a layer box stands for its matrices
and bias, a parameter vector scaling a value (``a \\odot v``) is drawn as the value. Equal
subexpressions share a node (``1 - z_t`` used twice is one node).
"""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.diagrams.graph import Graph, Node
from derive.diagrams.labels import Label, vector_label
from derive.symbolic import functions, ir

#: how an activation or function is drawn (the others by their own name)
_NAMES = {"sigmoid": "σ", "tanh": "tanh", "relu": "ReLU", "identity": "id", "exp": "exp", "log": "log",
          "Abs": "abs", "maximum": "max", "minimum": "min", "Mean": "mean"}
PRODUCT, SUM, QUOTIENT = "⊙", "+", "÷"


def head_name(e) -> str:
    """``sigmoid`` -> σ, ``sqrt`` -> √, ``maximum`` -> max."""
    if isinstance(e, sp.Pow):
        return "√"
    name = type(e).__name__
    return _NAMES.get(name, getattr(e, "text", "") or name)


def dataflow(cell) -> Graph:
    """The step's graph: states in on the left, states out on the right, the equations between."""
    return _Builder(cell).build()


def vector_id(sym: sp.Symbol) -> str:
    """The node id of a vector: ``h|_|-1`` -> ``h[t-1]``; ``c|_|0`` -> ``c[t]``."""
    r = ir.ref(sym)
    return f"{r.key}[{'t' if r.time == 0 else f't{r.time}'}]"


class _Builder:
    def __init__(self, cell):
        self.cell = cell
        self.graph = Graph(cell.name)
        self.aux = {a.target: a.rhs for a in cell.assignments if a.aux}
        self.targets = [a for a in cell.assignments if not a.aux]
        self.memo: dict = {}
        self.state_keys = set(cell.state_keys)

    def build(self) -> Graph:
        # the carries first, the output's state last: creation order is the layout's top to bottom
        for s in sorted(self.cell.states, key=lambda s: s == self.cell.output):
            self.vector(ir.at(s, -1))
        self.vector(self.cell.input)
        for a in self.targets:
            top = self.expr(a.rhs)
            target = self.vector(a.target)
            if top is not None:
                self.graph.connect(top, target)
        out = self.graph.add(Node("output", "output", Label("output")))
        self.graph.connect(vector_id(self.cell.output), out)
        self.carry_lines()
        self.graph.first = [n.id for kind in ("state_in", "input", "given") for n in self.graph.nodes.values()
                            if n.kind == kind]
        return self.graph

    def carry_lines(self) -> None:
        """Each state's line from s_{t-1} to s_t (a shortest path) shares one group: drawn straight."""
        for s in self.cell.states:
            for n in self.graph.shortest_path(vector_id(ir.at(s, -1)), vector_id(s)):
                self.graph.regroup(n, ir.ref(s).key)

    # vectors ----------------------------------------------------------
    def kind(self, sym: sp.Symbol) -> str:
        r = ir.ref(sym)
        if self.cell.is_input(sym):
            return "input"
        if r.key in self.state_keys:
            return "state_in" if r.time == -1 else "state_out"
        if r.key in self.cell.gates:
            return "gate"
        return "vector" if any(a.target == sym for a in self.targets) else "given"

    def vector(self, sym: sp.Symbol) -> str:
        return self.graph.add(Node(vector_id(sym), self.kind(sym), vector_label(sym)))

    # expressions ------------------------------------------------------
    def expr(self, e) -> str | None:
        """The node that computes ``e`` (None for a parameter or a number)."""
        if e in self.memo:
            return self.memo[e]
        node = self._expr(e)
        self.memo[e] = node
        return node

    def _expr(self, e) -> str | None:
        if isinstance(e, sp.Symbol):
            if e in self.aux:
                return self.expr(self.aux[e])
            return None if ir.ref(e).time is None else self.vector(e)
        if e.is_number:
            return None
        if isinstance(e, acts.Activation) or functions.is_head(e):
            return self.activation(e)
        if isinstance(e, ir.MatVec) or (isinstance(e, sp.Add) and _is_affine(e)):
            return self.layer("linear", e)
        if isinstance(e, sp.Add):
            return self.sum(e)
        if isinstance(e, sp.Mul):
            return self.product(e)
        if isinstance(e, sp.Pow):
            return self.op(_power_name(e.exp), [e.base])
        return self.op(head_name(e), list(e.args))

    def op(self, name: str, args: list, sub: str = "") -> str | None:
        children = [c for c in (self.expr(a) for a in args) if c is not None]
        if not children:
            return None
        node = self.graph.add(Node(f"op{len(self.graph.nodes)}", "op", Label(name, sub)))
        for c in children:
            self.graph.connect(c, node)
        return node

    def activation(self, e) -> str | None:
        arg = self.aux.get(e.args[0], e.args[0])
        if isinstance(arg, ir.MatVec) or (isinstance(arg, sp.Add) and _is_affine(arg)):
            return self.layer(head_name(e), arg)
        return self.op(head_name(e), [e.args[0], *[a for a in e.args[1:] if not a.is_number]])

    def layer(self, name: str, affine) -> str | None:
        """An affine map (matrices times vectors, parameter vectors scaling vectors, a bias) and
        its activation, drawn as one box."""
        reads = []
        for term in sp.Add.make_args(affine):
            if isinstance(term, ir.MatVec):
                reads.append(term.args[1])
            elif isinstance(term, sp.Mul):
                reads.extend(f for f in term.args if not _is_parameter(f))
        node = self.op(name, reads)
        if node is not None:
            self.graph.nodes[node] = Node(node, "layer", Label(name))
        return node

    def sum(self, e: sp.Add) -> str | None:
        terms = [t for t in e.args if not t.is_number]
        constant = e - sp.Add(*terms)
        if len(terms) == 1 and terms[0].could_extract_minus_sign():  # 1 - z_t
            return self.op(f"{constant}−" if constant != 0 else "−", [-terms[0]])
        negative = sum(t.could_extract_minus_sign() for t in terms)
        name = SUM if not negative else ("−" if len(terms) == 2 and negative == 1 else "±")
        return self.op(name, [-t if t.could_extract_minus_sign() else t for t in terms])

    def product(self, e: sp.Mul) -> str | None:
        """``a ⊙ b``, and ``a / b`` as a quotient node; numbers and parameter factors scale."""
        above = [f for f in e.args if not _is_parameter(f) and not _is_reciprocal(f)]
        below = [1 / f for f in e.args if _is_reciprocal(f) and not _is_parameter(f)]
        top = self.op(PRODUCT, above) if len(above) > 1 else (self.expr(above[0]) if above else None)
        if not below:
            return top
        bottom = self.op(PRODUCT, below) if len(below) > 1 else self.expr(below[0])
        if top is None:
            return self.op("1/", below)
        node = self.graph.add(Node(f"op{len(self.graph.nodes)}", "op", Label(QUOTIENT)))
        for c in (top, bottom):
            if c is not None:
                self.graph.connect(c, node)
        return node


def _is_parameter(e) -> bool:
    """A number, or a product of parameters and numbers (no time index anywhere)."""
    return all(ir.is_ir(s) and ir.ref(s).time is None for s in e.free_symbols)


def _is_reciprocal(e) -> bool:
    return isinstance(e, sp.Pow) and e.exp.is_negative


def _is_affine(e: sp.Add) -> bool:
    """A sum of matrix-vector products, parameter-scaled vectors and parameters, with at least
    one matrix-vector product: the argument of a layer."""
    terms = sp.Add.make_args(e)

    def term_ok(t):
        if isinstance(t, ir.MatVec) or _is_parameter(t):
            return True
        return isinstance(t, sp.Mul) and sum(not _is_parameter(f) for f in t.args) == 1 and \
            all(isinstance(f, sp.Symbol) or _is_parameter(f) for f in t.args)

    return any(isinstance(t, ir.MatVec) for t in terms) and all(term_ok(t) for t in terms)


def _power_name(exponent) -> str:
    return {2: "x²", 3: "x³", sp.Rational(1, 2): "√"}.get(exponent, f"x^{exponent}")
