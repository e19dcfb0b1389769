"""Shapes while a cell is built: what a sub-expression is, and sizes by unification.

Every vector and matrix side gets a dimension variable; an equation unifies them, and a
root may carry a label (the input size I, the hidden size H, the projection size P). Two
different labels meeting is a located shape conflict.
"""

from __future__ import annotations

from enum import StrEnum

import sympy as sp

from derive.errors import DeriveError, Pos

I, H, P = sp.symbols("I H P", positive=True, integer=True)  # input, hidden, projection


class Shape(StrEnum):
    """What a sub-expression of an equation is while the cell is built."""

    SCALAR = "scalar"
    VECTOR = "vector"
    MATRIX = "matrix"  # a parameter used on the left of a product


class Dims:
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
