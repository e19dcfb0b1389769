"""What a figure highlights: the edges of one gate's path through the step, and the edges of
the unrolled network that carry a state's adjoint back from the losses."""

from __future__ import annotations

from derive.diagrams.graph import Graph


def _upstream(graph: Graph, node_id: str) -> set:
    """The edges of the equation that computes ``node_id``: back through operators to vectors."""
    edges, stack, seen = set(), [node_id], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for tail in graph.into(n):
            edges.add((tail, n))
            if not graph.is_vector(tail):
                stack.append(tail)
    return edges


def _downstream(graph: Graph, node_id: str) -> set:
    """The edges from ``node_id`` forward through operators to the next vectors it helps compute,
    with the other operands of the operators it feeds directly (what a gate multiplies)."""
    edges, stack, seen = set(), [node_id], set()
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        for head in graph.out_of(n):
            edges.add((n, head))
            if not graph.is_vector(head) and graph.nodes[head].kind != "output":
                stack.append(head)
    for head in graph.out_of(node_id):
        if not graph.is_vector(head):
            edges.update((tail, head) for tail in graph.into(head))
    return edges


def gate_path(graph: Graph, gate_id: str) -> set:
    """The gate's path: what computes it (its inputs, its layer) and where it acts (the products
    it switches, up to the vectors they make)."""
    return _upstream(graph, gate_id) | _downstream(graph, gate_id)


def reachable(graph: Graph, starts, forward: bool = True) -> set:
    seen, stack = set(), list(starts)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        stack.extend(graph.out_of(n) if forward else graph.into(n))
    return seen


def adjoint_paths(graph: Graph, start: str, losses) -> set:
    """Every edge on a path from ``start`` to a loss: the terms that sum into ``start``'s adjoint."""
    ahead, behind = reachable(graph, [start]), reachable(graph, losses, forward=False)
    return {(a, b) for a, b in graph.edges if a in ahead and b in behind}
