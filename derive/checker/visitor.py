"""The one walker over a claim's tree (``derive/syntax/formulas.py``): every pass of the checker
(numbers, SymPy, counts, activations, the text of a term, the --let names a formula uses) is a
subclass of ``Visitor`` that overrides only the nodes it treats differently.

A node is dispatched by its type (``visit_Num``, ``visit_Name``, ``visit_Call``) or, for an
operator ``Node``, by its kind (``visit_add``, ``visit_mul``, ... one per ``Op``). What a
walker does not override goes to its ``generic``, which by default visits the children in
order. A node of a type or kind the base does not know is refused with a DeriveError, so a new
notation is added to the grammar, to ``Op`` and to the walkers that give it a meaning, and is
never silently skipped.
"""

from __future__ import annotations

import enum

from derive.errors import DeriveError, Pos
from derive.syntax.formulas import Call, Name, Node, Num


class Op(enum.StrEnum):
    """The kind of an operator node, as the grammar names it (``Node.kind``)."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    NEG = "neg"
    POW = "pow"
    TRANSPOSE = "transpose"
    SUM = "sum"
    CONCAT = "concat"
    PARTIAL = "partial"
    DELTA = "delta"


#: the node types dispatched by type; an operator ``Node`` is dispatched by its kind
LEAVES = (Num, Name, Call)
TREE = (*LEAVES, Node)


def children(node) -> tuple:
    """The subtrees of ``node`` in order: an operator's operands; a call's arguments, then its
    power when that is written as an expression (\\tanh^{k}(x)); none for a number or a name."""
    if isinstance(node, Node):
        return node.args
    if isinstance(node, Call):
        return (*node.args, node.power) if isinstance(node.power, TREE) else node.args
    return ()


def walk(node):
    """Every node of the tree, children before their parent, left to right, without recursion
    (for a walker that looks at each node on its own: a deep formula costs no stack)."""
    stack = [(node, False)]
    while stack:
        n, expanded = stack.pop()
        below = children(n)
        if expanded or not below:
            yield n
        else:
            stack.append((n, True))
            stack.extend((c, False) for c in reversed(below))


def is_op(node, *ops: Op) -> bool:
    """``node`` is an operator node of one of ``ops``."""
    return isinstance(node, Node) and node.kind in ops


class Visitor:
    """Dispatch on a node of a claim's tree; ``visit(node, *args)`` passes ``args`` on to the
    method. A subclass overrides ``visit_<Type>`` / ``visit_<op>`` for what it means and
    ``generic`` for everything else (by default: visit the children, return None)."""

    _table: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._table = cls._dispatch()

    @classmethod
    def _dispatch(cls) -> dict:
        """Node type or operator kind -> the function that handles it (``generic`` by default).
        Kinds are ``Op`` members, which hash and compare as their strings."""
        keys = [(t, f"visit_{t.__name__}") for t in LEAVES] + [(op, f"visit_{op}") for op in Op]
        return {key: getattr(cls, method, cls.generic) for key, method in keys}

    def visit(self, node, *args):
        method = self._table.get(node.kind if type(node) is Node else type(node))
        if method is None:
            self.refuse(node)
        return method(self, node, *args)

    def generic(self, node, *args):
        """A node this walker gives no meaning of its own: its children are visited."""
        for child in children(node):
            self.visit(child, *args)

    def refuse(self, node):
        """A node of a type or kind the checker does not know: an error, never a silent skip."""
        what = f"operator {node.kind!r}" if isinstance(node, Node) else type(node).__name__
        pos = getattr(node, "pos", None)
        raise DeriveError(f"the checker has no rule for {what} ({type(self).__name__})",
                          pos if isinstance(pos, Pos) else None)


Visitor._table = Visitor._dispatch()
