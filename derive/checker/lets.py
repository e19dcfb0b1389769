"""``--let NAME=EXPR``: names a formula may use, defined by expressions, each checked for
cycles and converted before the formula that uses it (so a chain of lets never recurses)."""

from __future__ import annotations

from derive.checker.functions import is_function
from derive.checker.visitor import Visitor, walk
from derive.errors import DeriveError, Pos
from derive.syntax.formulas import Name, parse_let


class Lets(dict):
    """--let definitions, name -> expression (AST); ``texts`` their --let texts, ``overrides`` the
    names given with --override, which may replace a name of the cell (``dh_t``)."""

    texts: dict
    overrides: frozenset

    def where(self, name: str) -> str:
        flag = "--override" if name in self.overrides else "--let"
        return f"{flag} {self.texts.get(name, name)!r}"


def read_lets(texts, overrides=()) -> Lets:
    """``--let NAME=EXPR`` definitions (and ``--override NAME=EXPR`` ones): name -> expression (AST).

    A name that is a function (``tanh``), defined twice, or defined in terms of itself
    (``a = a + 1``, or through other lets) is an error located in its --let. A --let that names
    one of the cell's own names is refused by ``Names`` (only --override may replace one).
    """
    if isinstance(texts, Lets):
        return texts
    lets, texts_of = Lets(), {}
    lets.overrides = frozenset()
    items = [(t, False) for t in texts] + [(t, True) for t in overrides]
    over = set()
    for text, is_override in items:
        where = f"{'--override' if is_override else '--let'} {text!r}"
        try:
            name, expr = parse_let(text)
        except DeriveError as e:
            raise DeriveError(e.message, e.pos, where) from None
        if is_function(name):
            raise DeriveError(f"{name} is a function; a --let defines a new name", Pos(1, 1), where)
        if name in lets:
            raise DeriveError(f"{name} is defined twice (also by --let {texts_of[name]!r})", Pos(1, 1), where)
        lets[name], texts_of[name] = expr, text
        if is_override:
            over.add(name)
    lets.texts, lets.overrides = texts_of, frozenset(over)
    for name in lets:
        _let_order(lets, Name(name, Pos(1, 1)), texts_of)
    return lets


def with_lets(lets: dict, node, convert, values: dict):
    """``convert(node)``, each --let it reaches converted first (dependencies first) into
    ``values``, where ``convert`` looks them up: a chain of lets never recurses."""
    for name in _let_order(lets, node):
        if name not in values:
            values[name] = convert(lets[name])
    return convert(node)


def _let_order(lets: dict, node, texts: dict | None = None) -> list[str]:
    """The --let names ``node`` uses, directly or through other lets, each after those it
    uses (an iterative depth-first search). A cycle is an error in the let that closes it."""
    order, state, path = [], {}, []
    stack = [(None, iter(LetRefs(lets).of(node)))]
    while stack:
        owner, refs = stack[-1]
        ref = next(refs, None)
        if ref is None:
            stack.pop()
            if owner is not None:
                state[owner] = "done"
                order.append(path.pop())
            continue
        if state.get(ref.text) == "done":
            continue
        if state.get(ref.text) == "active":
            cycle = path[path.index(ref.text):] + [ref.text]
            how = f" ({' -> '.join(cycle)})" if len(cycle) > 2 else ""
            where = f"--let {texts[owner]!r}" if texts and owner in texts else None
            if where and isinstance(lets, Lets) and owner in lets.overrides:
                where = "--override" + where[5:]
            raise DeriveError(f"{ref.text} is defined in terms of itself{how}", ref.pos, where)
        state[ref.text] = "active"
        path.append(ref.text)
        stack.append((ref.text, iter(LetRefs(lets).of(lets[ref.text]))))
    return order


class LetRefs(Visitor):
    """The names in a tree that are --let names, in the order they are written (a bare call
    ``a(x)`` uses ``a`` as a factor, after its argument). Each node is visited on its own, in
    ``walk`` order, so a deep formula does not recurse here."""

    def __init__(self, lets: dict):
        self.lets = lets
        self.found: list[Name] = []

    def of(self, node) -> list[Name]:
        for n in walk(node):
            self.visit(n)
        return self.found

    def generic(self, node):
        """Any other node: nothing to collect (its children come on their own from ``walk``)."""

    def visit_Name(self, n):
        if n.text in self.lets:
            self.found.append(n)

    def visit_Call(self, c):
        if c.bare and c.func in self.lets:
            self.found.append(Name(c.func, c.pos))
