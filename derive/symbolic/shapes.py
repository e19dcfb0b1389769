"""Shapes while a cell is built: what a sub-expression is, and sizes by unification.

Every vector and matrix side gets a dimension variable; an equation unifies them, and a
root may carry a label (the input size I, the hidden size H, the projection size P). Two
different labels meeting is a located shape conflict.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import sympy as sp

from derive.errors import DeriveError, Pos

I, H, P = sp.symbols("I H P", positive=True, integer=True)  # input, hidden, projection


class Shape(StrEnum):
    """What a sub-expression of an equation is while the cell is built."""

    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"  # a parameter used on the left of a product


@dataclass
class Val:
    """A converted sub-expression: the IR expression, its kind and its dimension variable."""

    expr: sp.Expr
    kind: Shape
    dim: int | None = None


def same_size_fix(input_key: str = "x") -> str:
    """The fix of a conflict between the input size and the hidden size."""
    return f'declare sizes = {{ {input_key} = "H" }} if the input has the hidden size'


class Dims:
    """Union-find over dimension variables; roots may carry a label (I, H or P).

    ``equal`` holds pairs of labels the spec declares equal (the input size I and the hidden
    size H: ``sizes = { x = "H" }``); a class with the first resolves to the second. Every
    unification is kept as an edge (two variables, the positions of the two operands, the
    operation), so a conflict between the input size and another size is reported at the
    operation where the input first meets the other side, along the shortest chain of
    operations between the two labels.
    """

    def __init__(self, equal=(), input_key: str = "x"):
        self.parent: dict[int, int] = {}
        self.label: dict[int, tuple] = {}  # root -> (symbol, why, the variable that carries it)
        self.equal = {frozenset(pair): pair[1] for pair in equal}
        self.alias = dict(equal)
        self.fix = same_size_fix(input_key)
        self.edges: list[tuple] = []  # (a, b, operand position of a, of b, what)
        self.count = 0

    def new(self, label=None, why="") -> int:
        self.count += 1
        self.parent[self.count] = self.count
        if label is not None:
            self.label[self.count] = (label, why, self.count)
        return self.count

    def find(self, d: int) -> int:
        while self.parent[d] != d:
            self.parent[d] = self.parent[self.parent[d]]
            d = self.parent[d]
        return d

    def unify(self, a: int, b: int, pos: Pos, what: str, sides=(None, None)):
        """Make ``a`` and ``b`` one size (``what`` at ``pos``; ``sides``: where each operand stands)."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        self.edges.append((a, b, sides[0] or pos, sides[1] or pos, what))
        la, lb = self.label.get(ra), self.label.get(rb)
        if la and lb and la[0] != lb[0]:
            pair = frozenset((la[0], lb[0]))
            if pair not in self.equal:
                self._conflict(la, lb, pos, what)
            la = la if la[0] == self.equal[pair] else lb
        self.parent[rb] = ra
        if la or lb:
            self.label[ra] = la or lb

    def _conflict(self, la, lb, pos, what):
        if I in (la[0], lb[0]):
            inp, other = (la, lb) if la[0] == I else (lb, la)
            edge = self._first_step(inp[2], other[2])
            if edge is not None:
                where, op = edge
                raise DeriveError(f"shape conflict in {op}: this side has the input size I ({inp[1]}), "
                                  f"the other the size {other[0]} ({other[1]}); {self.fix}", where)
        raise DeriveError(
            f"shape conflict in {what}: one side has size {la[0]} ({la[1]}), "
            f"the other size {lb[0]} ({lb[1]})", pos)

    def _first_step(self, start: int, goal: int):
        """(position of the operand on ``start``'s side, operation) of the first edge on a
        shortest chain of unifications from variable ``start`` to ``goal``."""
        links: dict[int, list] = {}
        for a, b, pa, pb, what in self.edges:
            links.setdefault(a, []).append((b, pa, what))
            links.setdefault(b, []).append((a, pb, what))
        first = {start: None}
        frontier = [start]
        while frontier:
            nxt = []
            for v in frontier:
                for w, at, what in links.get(v, ()):
                    if w not in first:
                        first[w] = first[v] or (at, what)
                        nxt.append(w)
            frontier = nxt
        return first.get(goal)

    def resolve(self, d: int, default=H):
        lab = self.label.get(self.find(d))
        return self.alias.get(lab[0], lab[0]) if lab else default
