"""A diagram's data: named nodes of a few kinds, and directed edges in the order they were made
(insertion order is the layout's input order, so the same cell always gives the same graph)."""

from __future__ import annotations

from dataclasses import dataclass, field

from derive.diagrams.labels import Label

#: kinds of node that stand for a vector (the others are operators, a loss or a marker)
VECTORS = ("input", "given", "state_in", "state_out", "state", "gate", "vector")


@dataclass(frozen=True)
class Node:
    id: str
    kind: str  # a VECTORS kind, "layer" (affine map, then an activation), "op", "output", "loss"
    label: Label
    group: str = ""  # the nodes of one state's carry line: drawn on a straight line


@dataclass
class Graph:
    title: str
    nodes: dict = field(default_factory=dict)  # id -> Node, in order of creation
    edges: list = field(default_factory=list)  # (tail id, head id), each once
    first: list = field(default_factory=list)  # ids on the first rank, top to bottom

    def add(self, node: Node) -> str:
        self.nodes.setdefault(node.id, node)
        return node.id

    def connect(self, tail: str, head: str) -> None:
        if (tail, head) not in self.edges:
            self.edges.append((tail, head))

    def regroup(self, node_id: str, group: str) -> None:
        node = self.nodes[node_id]
        if not node.group:
            self.nodes[node_id] = Node(node.id, node.kind, node.label, group)

    def into(self, node_id: str) -> list[str]:
        return [a for a, b in self.edges if b == node_id]

    def out_of(self, node_id: str) -> list[str]:
        return [b for a, b in self.edges if a == node_id]

    def is_vector(self, node_id: str) -> bool:
        return self.nodes[node_id].kind in VECTORS

    def sources(self, node_id: str) -> set[str]:
        """The vectors an equation reads: walking back from ``node_id`` through operators."""
        found, stack, seen = set(), list(self.into(node_id)), set()
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if self.is_vector(n):
                found.add(n)
            else:
                stack.extend(self.into(n))
        return found

    def shortest_path(self, start: str, goal: str) -> list[str]:
        """The nodes of a shortest directed path (breadth first, edges in order), or []."""
        parent, frontier = {start: None}, [start]
        while frontier and goal not in parent:
            nxt = []
            for n in frontier:
                for m in self.out_of(n):
                    if m not in parent:
                        parent[m] = n
                        nxt.append(m)
            frontier = nxt
        if goal not in parent:
            return []
        path, n = [], goal
        while n is not None:
            path.append(n)
            n = parent[n]
        return path[::-1]
