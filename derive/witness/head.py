"""A witness for one decoder step of an encoder-decoder: the attention, the decoder cell, the
output layer and the step's loss as a graph of SymPy scalars at small sizes, every gradient by
``sympy.diff`` (no adjoint formula of ``runtime.seq2seq`` and no rule of ``rules.py``).

The step (``runtime.seq2seq`` has the same equations for a batch; ``symbolic.seq2seq`` the spec):

* Bahdanau: z_{t,s} = W_a s_{t-1} + U_a a_s, e_{t,s} = v_a^T tanh(z_{t,s}), alpha_t = softmax(e_t),
  c_t = sum_s alpha_{t,s} a_s, x_t = [E y_{t-1}; c_t], s_t = cell(x_t, s_{t-1}), o_t = W_o [s_t; c_t] + b_o;
* Luong: x_t = E y_{t-1} (with input feeding [E y_{t-1}; h~_{t-1}]), s_t = cell(x_t, s_{t-1}),
  e_{t,s} = s_t^T a_s (dot) or s_t^T W_a a_s (general), alpha_t, c_t as above,
  h~_t = tanh(W_c [c_t; s_t]), o_t = W_o h~_t + b_o;
* no attention: x_t = E y_{t-1}, s_t = cell(x_t, s_{t-1}), o_t = W_o s_t + b_o;
* p_t = softmax(o_t), L_t = -log p_t[y_t].

Each quantity is a node: fresh symbols, each defined by an expression in earlier nodes and leaves
(the annotations a_s, the previous states, the embedding, the parameters). The gradient of a node
or leaf is the total derivative of L_t through every path: the chain rule over the scalar graph,
each edge's local derivative by ``sympy.diff`` of one definition, evaluated at 30 digits. The bridge is a
second graph, s_0 = tanh(W_b u + b_b) (or s_0 = u), with the loss g^T s_0 for a given g = dL/ds_0.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from derive.symbolic import ir
from derive.symbolic.cell import Cell
from derive.witness.derivation import Sizes, forward, symbols_for

DIGITS = 30


@dataclass(frozen=True)
class HeadSizes:
    S: int = 3  # source positions
    H: int = 2  # the decoder's and the encoder's hidden size
    E: int = 2  # the target embedding's size
    V: int = 3  # the target vocabulary
    D: int = 1  # annotations of D H entries (2 for a bidirectional encoder with merge = concat)

    @property
    def A(self) -> int:
        return self.D * self.H


@dataclass
class Graph:
    """Nodes in order: name -> (symbols array, definitions array); leaves: name -> symbols array."""

    leaves: dict = field(default_factory=dict)
    nodes: dict = field(default_factory=dict)

    def leaf(self, name: str, shape: tuple) -> np.ndarray:
        self.leaves[name] = _symbols(f"step.{name}", shape)  # apart from the cell's symbols (an LSTM's b_o)
        return self.leaves[name]

    def node(self, name: str, definition) -> np.ndarray:
        definition = np.asarray(definition, dtype=object)
        syms = _symbols(f"step.{name}", definition.shape)
        self.nodes[name] = (syms, definition)
        return syms


@dataclass
class Point:
    """Values and gradients (dL/d of each leaf and node) in float64, keyed by name."""

    values: dict
    grads: dict
    paths: dict = field(default_factory=dict)  # (q, n) -> the part of dL/dq through node n
    aliases: dict = field(default_factory=dict)  # another name -> the graph's

    def key(self, name: str) -> str:
        return self.aliases.get(name, name)

    def part(self, name: str, through: set) -> np.ndarray:
        """The part of dL/d``name`` that flows through the nodes ``through``."""
        q = self.key(name)
        return sum((self.paths[(q, n)] for n in sorted(through) if (q, n) in self.paths), np.zeros_like(self.grads[q]))


def _symbols(name: str, shape: tuple) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = sp.Symbol(f"{name}[{','.join(map(str, idx))}]", real=True)
    return out


def _softmax(z) -> list:
    e = [sp.exp(v) for v in z]
    total = sum(e)
    return [v / total for v in e]


def _dot(M, v):
    return np.array([sum(M[i, j] * v[j] for j in range(M.shape[1])) for i in range(M.shape[0])], dtype=object)


def head_graph(attention: str, cell: Cell, sizes: HeadSizes, input_feeding: bool = False, target: int = 0) -> Graph:
    """The step's graph for an attention ("bahdanau", "luong_dot", "luong_general", "none")."""
    g, n = Graph(), sizes
    a = g.leaf("a", (n.S, n.A))
    emb = g.leaf("emb", (n.E,))
    dec_in = n.E + (n.A if attention == "bahdanau" else 0) + (n.H if input_feeding else 0)
    params, _, s0 = symbols_for(cell, Sizes(T=1, I=dec_in, H=n.H))
    for p in cell.params.values():
        g.leaves[f"cell:{p.key}"] = params[p.symbol]
    for st in cell.states:
        g.leaves[f"prev:{ir.ref(st).key}"] = s0[st]
    s_prev = s0[cell.output]
    if attention == "bahdanau":
        W_a, U_a, v_a = g.leaf("W_a", (n.H, n.H)), g.leaf("U_a", (n.H, n.A)), g.leaf("v_a", (n.H,))
        z = g.node("z", [_dot(W_a, s_prev) + _dot(U_a, a[s]) for s in range(n.S)])
        e = g.node("e", [sum(v_a[k] * sp.tanh(z[s, k]) for k in range(n.H)) for s in range(n.S)])
        c = _context(g, e, a, n)
        x = g.node("x", [*emb, *c])
    else:
        x = g.node("x", [*emb, *g.leaf("h_fed", (n.H,))] if input_feeding else list(emb))
    env = {**params, **s0}
    step = forward(cell, {p.symbol: env[p.symbol] for p in cell.params.values()}, [x], s0)[1]
    s = g.node("s", step[cell.output])
    if attention.startswith("luong"):
        proj = a if attention == "luong_dot" else np.array([_dot(g.leaf("W_a", (n.H, n.A)), a[i]) for i in range(n.S)])
        e = g.node("e", [sum(s[k] * proj[i][k] for k in range(n.H)) for i in range(n.S)])
        c = _context(g, e, a, n)
        W_c = g.leaf("W_c", (n.H, n.A + n.H))
        K = g.node("ht", [sp.tanh(v) for v in _dot(W_c, np.array([*c, *s], dtype=object))])
    elif attention == "bahdanau":
        K = np.array([*s, *c], dtype=object)
    else:
        K = s
    W_o, b_o = g.leaf("W_o", (n.V, len(K))), g.leaf("b_o", (n.V,))
    o = g.node("o", _dot(W_o, K) + b_o)
    p = g.node("p", _softmax(o))
    g.node("L", [-sp.log(p[target])])
    return g


def _context(g: Graph, e, a, n: HeadSizes):
    alpha = g.node("alpha", _softmax(e))
    return g.node("c", [sum(alpha[s] * a[s, k] for s in range(n.S)) for k in range(n.A)])


def bridge_graph(bridge: str, sizes: HeadSizes, U: int) -> Graph:
    """s_0 = tanh(W_b u + b_b) ("learned") or s_0 = u ("direct"); L = g^T s_0, g given (dL/ds_0)."""
    g, n = Graph(), sizes
    u = g.leaf("u", (U,))
    if bridge == "learned":
        W_b, b_b = g.leaf("W_b", (n.H, U)), g.leaf("b_b", (n.H,))
        s0 = g.node("s0", [sp.tanh(v) for v in _dot(W_b, u) + b_b])
    else:
        s0 = g.node("s0", list(u))
    ds0 = g.leaf("ds0", (len(s0),))
    g.node("L", [sum(ds0[k] * s0[k] for k in range(len(s0)))])
    return g


def evaluate(g: Graph, seed: int = 0) -> Point:
    """Values at a random point and dL/d of every node and leaf: the chain rule over the scalar graph,
    from L back to the leaves, each local derivative by ``sympy.diff`` of one node's definition. Each
    edge's share is kept too: ``paths[(q, n)]`` is the part of dL/dq that flows through node n."""
    rng = random.Random(seed)
    point = {}
    for arr in g.leaves.values():
        for sym in arr.flat:
            point[sym] = sp.Float(sp.Rational(rng.randint(-90, 90), 100), DIGITS)
    defs, owner = {}, {}
    for name, (syms, definitions) in g.nodes.items():  # forward: each node's value
        for sym, d in zip(syms.flat, definitions.flat):
            defs[sym], owner[sym] = sp.sympify(d), name
            point[sym] = defs[sym].xreplace(point).evalf(DIGITS)
    both = {**g.leaves, **{k: v[0] for k, v in g.nodes.items()}}
    where = {sym: (name, idx) for name, arr in both.items() for idx, sym in np.ndenumerate(arr)}
    adjoint = {s: sp.Float(0, DIGITS) for s in point}
    adjoint[next(iter(g.nodes["L"][0].flat))] = sp.Float(1, DIGITS)
    paths: dict = {}
    for sym in reversed(list(defs)):  # every path from L, each edge's local derivative once
        if adjoint[sym] == 0:
            continue
        for q in defs[sym].free_symbols:
            share = sp.diff(defs[sym], q).xreplace(point).evalf(DIGITS) * adjoint[sym]
            adjoint[q] += share
            name, idx = where[q]
            part = paths.setdefault((name, owner[sym]), np.zeros(both[name].shape))
            part[idx] += float(share)
    return Point({k: _floats(v, point) for k, v in both.items()}, {k: _floats(v, adjoint) for k, v in both.items()},
                 paths)


def _floats(arr: np.ndarray, point: dict) -> np.ndarray:
    out = np.empty(arr.shape, dtype=float)
    for idx in np.ndindex(*arr.shape):
        out[idx] = float(point[arr[idx]])
    return out
