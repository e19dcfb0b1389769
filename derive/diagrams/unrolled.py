"""The network unrolled over T steps, one node per state per step, from the cell's dependencies.

``step_reads`` says what each state at step t is computed from, following the intermediates
of the step: another state at t-1 (lag 1) or at t (lag 0, ``h_t`` reads ``c_t``), the input at
t or an earlier tap. The unrolled graph repeats that for t = 1..T, with the initial states at
step 0 and a loss L_t on each step's output. Nothing is specific to one cell.
"""

from __future__ import annotations

import sympy as sp

from derive.diagrams.graph import Graph, Node
from derive.diagrams.labels import Label, vector_label
from derive.diagrams.paths import adjoint_paths
from derive.symbolic import ir

STEPS = 3


def step_reads(cell, target: sp.Symbol) -> set:
    """``{(key, lag)}`` of the states and ``("input", k)`` of the taps ``target`` (at t) is computed from."""
    defs = {a.target: a.rhs for a in cell.assignments}
    states, found, stack, seen = set(cell.state_keys), set(), [target], set()
    while stack:
        sym = stack.pop()
        for s in sorted(defs[sym].free_symbols, key=lambda s: s.name):
            r = ir.ref(s) if ir.is_ir(s) else None
            if r is None or r.time is None or s in seen:
                continue
            seen.add(s)
            if cell.is_input(s):
                found.add(("input", -r.time))
            elif r.key in states:
                found.add((r.key, -r.time))
            elif s in defs:
                stack.append(s)
    return found


def adjoint_state(cell) -> sp.Symbol:
    """The state whose adjoint a figure follows: the first that is not the output (an LSTM's c),
    else the output."""
    return next((s for s in cell.states if s != cell.output), cell.states[0])


def _state_node(sym: sp.Symbol, step: int) -> Node:
    key = ir.ref(sym).key
    return Node(f"{key}[{step}]", "state", vector_label(sym, origin=step), group=key)


def unrolled(cell, steps: int = STEPS) -> Graph:
    """States at steps 0..T, inputs x_1..x_T, the output y_t when it is not a state, losses L_1..L_T."""
    g = Graph(f"{cell.name}_unrolled")
    out_is_state = cell.output in cell.states
    reads = {ir.ref(s).key: step_reads(cell, s) for s in cell.states}
    if not out_is_state:
        reads["output"] = step_reads(cell, cell.output)
    for s in sorted(cell.states, key=lambda s: s == cell.output):  # as the step's diagram: the output's state last
        g.add(_state_node(s, 0))
    g.first = list(g.nodes)
    for t in range(1, steps + 1):
        for s in cell.states:
            g.add(_state_node(s, t))
        g.add(Node(f"x[{t}]", "input", vector_label(cell.input, origin=t), group="input"))
        out = _output_node(cell, g, t, out_is_state)
        for key, sources in reads.items():
            head = out if key == "output" else f"{key}[{t}]"
            for source, lag in sorted(sources):
                tail = f"x[{t - lag}]" if source == "input" else f"{source}[{t - lag}]"
                if tail in g.nodes:
                    g.connect(tail, head)
        g.connect(out, g.add(Node(f"L[{t}]", "loss", Label("L", str(t)), group="loss")))
    return g


def _output_node(cell, g: Graph, t: int, out_is_state: bool) -> str:
    if out_is_state:
        return f"{ir.ref(cell.output).key}[{t}]"
    return g.add(Node(f"y[{t}]", "vector", vector_label(cell.output, origin=t), group="output"))


def adjoint_edges(cell, graph: Graph, state: sp.Symbol | None = None, step: int = 1) -> set:
    """The edges whose terms sum into the adjoint of ``state`` at ``step``."""
    state = state if state is not None else adjoint_state(cell)
    losses = [n for n in graph.nodes if n.startswith("L[")]
    return adjoint_paths(graph, f"{ir.ref(state).key}[{step}]", losses)
