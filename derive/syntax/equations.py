"""The project's one parser for the LaTeX subset of cell specs (no eval, no sympify).

An equation such as ``f_t = \\sigma(W_{xf} x_t + W_{hf} h_{t-1} + b_f)`` becomes a small
AST of positioned nodes; ``cell.py`` gives the names their meaning. Juxtaposition and
``\\cdot`` are the matrix-vector product (or a scalar times a vector); ``\\odot``,
``\\circ``, ``\\otimes`` and ``*`` are the elementwise (Hadamard) product.

A subscript holds ASCII letters, digits, ``_`` and commas (``W_{xf}``, ``a_{f,t}``), so every
name becomes a plain identifier in generated code. An activation whose name has an
underscore is written ``\\operatorname{gelu_tanh}`` or ``\\operatorname{gelu\\_tanh}``.
Chains such as ``a + b - c + ...`` and ``a \\odot b \\odot ...`` become balanced trees
(depth log n), so nothing downstream recurses once per term.

A function takes its arguments in parentheses (``\\max(a, b)``), ``\\sqrt`` also in braces
(``\\sqrt{3}``); ``|a|``, ``\\left| a \\right|`` and ``\\lvert a \\rvert`` are ``\\abs(a)``. A
command without an argument (``\\beta``, ``\\pi``) is a constant; a constant followed by
parentheses parses as a call (the parser shifts) and ``cell.py`` reads it as a product. An
absolute value ``|a|`` may start a product (``|a| b``) but not follow a factor (``b |a|``
would make every ``|`` ambiguous): there, write ``b \\cdot |a|``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from lark import Lark, Token, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from derive.errors import DeriveError, Pos

GRAMMAR = r"""
start: equation
equation: NAME "=" expr

?expr: term
     | expr "+" term          -> add
     | expr "-" term          -> sub
?term: unary
     | term HADAMARD unary    -> had
     | term "\\cdot" unary    -> juxt
?unary: juxt
      | "-" unary             -> neg
      | "+" unary
?juxt: power
     | bars
     | bars "^" exponent      -> pow
     | juxt power             -> juxt
?power: atom
      | atom "^" exponent     -> pow
bars: "|" expr "|"
    | "\\left|" expr "\\right|"
    | "\\lvert" expr "\\rvert"
    | "\\left\\lvert" expr "\\right\\rvert"
?atom: NAME                   -> name
     | NUMBER                 -> number
     | FUNC                   -> constant
     | FUNC "^" exponent      -> powconstant
     | "(" expr ")"
     | "\\left(" expr "\\right)"
     | "{" expr "}"
     | FUNC "(" args ")"                  -> call
     | FUNC "\\left(" args "\\right)"     -> call
     | FUNC "{" expr "}"                  -> bracecall
     | FUNC "^" exponent "(" args ")"     -> powcall
     | FUNC "^" exponent "\\left(" args "\\right)" -> powcall
     | "\\frac" "{" expr "}" "{" expr "}" -> frac
args: expr ("," expr)*
exponent: INT | "{" INT "}"

HADAMARD: "\\odot" | "\\circ" | "\\otimes" | "*"
FUNC.2: /\\(operatorname|mathrm|text|mathit)\{[A-Za-z]([A-Za-z0-9]|\\?_)*\}/
      | /\\(?!(odot|circ|otimes|cdot|left|right|frac|tilde|hat|bar|lvert|rvert)(?![A-Za-z]))[A-Za-z]+/
NAME: /(\\(tilde|hat|bar)\{[A-Za-z](_(\{[^{}]*\}|[A-Za-z0-9]))?\}|[A-Za-z])(_(\{[^{}]*\}|[A-Za-z0-9]))?/
NUMBER: /\d+(\.\d+)?/
INT: /\d+/
WS: /([ \t&]|\\[,;!:]|\\quad|\\qquad)+/
%ignore WS
"""

_parser = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)

#: terminal name -> how an error message spells it
_SPELLING = {
    "NAME": "a name such as x_t or W_{xf}",
    "NUMBER": "a number",
    "INT": "an integer",
    "FUNC": r"a function such as \sigma",
    "HADAMARD": r"\odot",
    "EQUAL": "'='",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "LPAR": "'('",
    "RPAR": "')'",
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "CIRCUMFLEX": "'^'",
    "VBAR": "'|'",
    "COMMA": "','",
    "$END": "end of equation",
}


# ---------------------------------------------------------------- AST nodes


@dataclass(frozen=True)
class Name:
    """A name as written: base letter (with decoration), subscript, time offset or None."""

    base: str
    sub: str | None
    time: int | None
    text: str
    pos: Pos


@dataclass(frozen=True)
class Num:
    value: str
    pos: Pos


class OpKind(StrEnum):
    """The operations of a cell equation."""

    ADD = "add"
    SUB = "sub"
    HAD = "had"    # elementwise (Hadamard) product
    JUXT = "juxt"  # juxtaposition: matrix-vector or scalar product
    NEG = "neg"
    DIV = "div"


@dataclass(frozen=True)
class Op:
    """``add``, ``sub``, ``had`` (elementwise), ``juxt`` (matrix-vector or scalar), ``neg``, ``div``."""

    kind: OpKind
    args: tuple
    pos: Pos


@dataclass(frozen=True)
class Pow:
    base: object
    exponent: int
    pos: Pos


@dataclass(frozen=True)
class Call:
    """``func(args...)``: an activation or a function of the spec language, as written."""

    func: str
    args: tuple
    pos: Pos
    exponent: int = 1

    @property
    def arg(self):
        return self.args[0]


@dataclass(frozen=True)
class Const:
    """A command without an argument: a named constant (``\\beta``) or ``\\pi``."""

    name: str
    pos: Pos


@dataclass(frozen=True)
class Equation:
    lhs: Name
    rhs: object
    pos: Pos


_TIME = re.compile(r"^t(?:\s*([+-])\s*(\d+))?$")
_NAME = re.compile(
    r"^(?:\\(?P<decor>tilde|hat|bar)\{(?P<inner>[A-Za-z])(?:_(?P<isub>\{[^{}]*\}|[A-Za-z0-9]))?\}"
    r"|(?P<base>[A-Za-z]))(?:_(?P<sub>\{[^{}]*\}|[A-Za-z0-9]))?$"
)
#: what a subscript part may hold: it becomes part of an identifier in generated code
_SUB_PART = re.compile(r"[A-Za-z0-9_]+")
SUBSCRIPT_RULE = "subscripts may use ASCII letters, digits, commas and _"


def split_name(text: str, pos: Pos | None) -> Name:
    """``W_{xf}`` -> base W, sub xf; ``h_{t-1}`` -> base h, time -1; ``\\tilde{c}_t`` -> c~, 0.

    ``\\tilde{h_1}_t`` keeps both subscripts (sub 1, time 0). A subscript part that could not
    be part of a Python identifier is an error at its character.
    """
    m = _NAME.match(text)
    if not m:  # the NAME terminal and this pattern agree, so this is a bug guard
        raise DeriveError(f"cannot read the name {text!r}", pos)
    base = f"{m['inner']}_{m['decor']}" if m["decor"] else m["base"]
    parts = []  # (offset in text, part as written)
    for group in ("isub", "sub"):
        body, offset = m[group], m.start(group)
        if body is None:
            continue
        if body.startswith("{"):
            body, offset = body[1:-1], offset + 1
        for part in body.split(","):
            parts.append((offset, part))
            offset += len(part) + 1
    time = None
    if parts:
        t = _TIME.match(parts[-1][1].replace(" ", ""))
        if t:
            time = 0 if not t[1] else (int(t[2]) if t[1] == "+" else -int(t[2]))
            parts.pop()
    for offset, part in parts:
        _check_sub_part(text, part, offset, pos)
    sub = ",".join(p.strip() for _, p in parts) or None
    return Name(base, sub, time, text, pos)


def _check_sub_part(text: str, part: str, offset: int, pos: Pos | None) -> None:
    body = part.strip()
    start = offset + len(part) - len(part.lstrip())
    where = (lambda k: pos.shifted(columns=k)) if pos else (lambda k: None)
    if not body:
        raise DeriveError(f"{text}: an empty part in the subscript; {SUBSCRIPT_RULE}", where(offset))
    m = _SUB_PART.match(body)
    bad = m.end() if m else 0
    if bad < len(body):
        raise DeriveError(f"{text}: {body[bad]!r} in a subscript; {SUBSCRIPT_RULE}", where(start + bad))


# ------------------------------------------------------------------ chains


class _Chain:
    """The operands of a left-deep chain ``a + b - c ...`` (``had``: ``a \\odot b ...``;
    ``juxt``: ``a b c``) while the parser reduces it, one operator at a time."""

    def __init__(self, kind: str, first, pos: Pos):
        self.kind, self.terms, self.pos = kind, [(1, first)], pos


def balanced(terms: list, join):
    """One tree for ``t1 ± t2 ± ... ± tn`` of depth log2(n), the operands kept in order.

    ``terms`` are ``(sign, node)`` with the first sign +1; ``join(kind, left, right)`` makes
    an ``add`` or ``sub`` node. Pairs are joined level by level: ``-a + b`` is ``-(a - b)``
    and ``-a - b`` is ``-(a + b)``, so a sign only ever moves outwards.
    """
    while len(terms) > 1:
        paired = [(s1, join(OpKind.ADD if s1 == s2 else OpKind.SUB, a, b))
                  for (s1, a), (s2, b) in zip(terms[0::2], terms[1::2])]
        terms = paired + ([terms[-1]] if len(terms) % 2 else [])
    sign, node = terms[0]
    assert sign == 1, "a chain starts with a + term"
    return node


def _done(node):
    """A finished chain as AST: balanced sums and elementwise products, an n-ary juxt."""
    if not isinstance(node, _Chain):
        return node
    if node.kind == OpKind.JUXT:
        return Op(OpKind.JUXT, tuple(t for _, t in node.terms), node.pos)
    kind = node.kind
    return balanced(node.terms, lambda k, a, b: Op(k if kind == OpKind.ADD else kind, (a, b), a.pos))


def _negated(node, pos: Pos):
    """``-node``; ``--a`` is ``a``, so a run of minus signs never nests."""
    if isinstance(node, Op) and node.kind == OpKind.NEG:
        return node.args[0]
    return Op(OpKind.NEG, (node,), pos)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """The parse tree as AST nodes; ``where(line, column)`` places a position in the file."""

    def __init__(self, where):
        super().__init__()
        self.where = where

    def _pos(self, meta_or_token) -> Pos:
        return self.where(meta_or_token.line, meta_or_token.column)

    def _exprs(self, children) -> list:
        return [_done(c) for c in children if not isinstance(c, Token)]

    def start(self, meta, children):
        return children[0]

    def equation(self, meta, children):
        lhs, rhs = children
        return Equation(split_name(str(lhs), self._pos(lhs)), _done(rhs), self._pos(meta))

    def name(self, meta, children):
        (tok,) = children
        return split_name(str(tok), self._pos(tok))

    def number(self, meta, children):
        return Num(str(children[0]), self._pos(meta))

    def exponent(self, meta, children):
        return int(children[0])

    def _link(kind, sign=1):
        def build(self, meta, children):
            left, right = [c for c in children if not isinstance(c, Token)]
            if isinstance(left, _Chain) and left.kind == kind:
                chain = left
            else:
                chain = _Chain(kind, _done(left), self._pos(meta))
            chain.terms.append((sign, _done(right)))
            return chain

        return build

    add, sub, had, juxt = _link(OpKind.ADD), _link(OpKind.ADD, -1), _link(OpKind.HAD), _link(OpKind.JUXT)

    def neg(self, meta, children):
        (arg,) = self._exprs(children)
        return _negated(arg, self._pos(meta))

    def frac(self, meta, children):
        return Op(OpKind.DIV, tuple(self._exprs(children)), self._pos(meta))

    def pow(self, meta, children):
        base, exponent = children
        return Pow(_done(base), exponent, self._pos(meta))

    def args(self, meta, children):
        return tuple(self._exprs(children))

    def call(self, meta, children):
        func, args = children
        return Call(_function(func), args, self._pos(func))

    def powcall(self, meta, children):
        func, exponent, args = children
        return Call(_function(func), args, self._pos(func), exponent)

    def bracecall(self, meta, children):
        func, arg = children
        if _function(func) not in BRACED:
            raise DeriveError(f"{func}{{...}}: braces hold the argument of {', '.join(BRACED)} only; "
                              f"write {func}(...)", self._pos(func))
        return Call(_function(func), (_done(arg),), self._pos(func))

    def bars(self, meta, children):
        (arg,) = self._exprs(children)
        return Call(ABS, (arg,), self._pos(meta))

    def constant(self, meta, children):
        (tok,) = children
        return Const(_function(tok), self._pos(tok))

    def powconstant(self, meta, children):
        tok, exponent = children
        return Pow(Const(_function(tok), self._pos(tok)), exponent, self._pos(meta))


#: the functions whose argument may stand in braces (``\\sqrt{3}``); how ``|a|`` is called
BRACED = (r"\sqrt",)
ABS = r"\abs"


def _function(token) -> str:
    r"""``\operatorname{gelu\_tanh}`` as the activation's spelling ``\operatorname{gelu_tanh}``."""
    return str(token).replace("\\_", "_")


def _spell(terminal: str) -> str:
    if terminal in _SPELLING:
        return _SPELLING[terminal]
    pattern = _parser.get_terminal(terminal).pattern
    return f"'{pattern.value}'" if pattern.type == "str" else terminal


def _expected(tokens) -> str:
    names = sorted({_spell(t) for t in tokens})
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


#: limits on one equation: longer or deeper input is refused before parsing
MAX_LENGTH = 2000
MAX_DEPTH = 64
MAX_BARS = 2 * MAX_DEPTH  # | cannot say whether it opens or closes: their number is bounded


def _check_size(text: str, where) -> None:
    if len(text) > MAX_LENGTH:
        raise DeriveError(f"the equation is longer than {MAX_LENGTH} characters", where(1, MAX_LENGTH + 1))
    depth = 0
    for col, ch in enumerate(text, start=1):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        if depth > MAX_DEPTH:
            raise DeriveError(f"brackets nest deeper than {MAX_DEPTH} levels", where(1, col))
    bars = [m.start() for m in re.finditer(r"\||\\[lr]vert", text)]
    if len(bars) > MAX_BARS:
        raise DeriveError(f"more than {MAX_BARS} absolute-value bars in one equation", where(1, bars[MAX_BARS] + 1))


BAR_HINT = r" (a product with an absolute value is written b \odot |a|, 2 \cdot |a| or with \abs(a))"


def parse_equation(text: str, where=Pos) -> Equation:
    """Parse one equation; a syntax error is a ``DeriveError`` at the offending column.

    ``where(line, column)`` turns a position in ``text`` into the position every node and
    error carries (a spec passes the place of the equation in its file).
    """
    _check_size(text, where)
    try:
        tree = _parser.parse(text)
    except UnexpectedCharacters as e:
        raise DeriveError(f"unexpected character {text[e.pos_in_stream]!r}", where(e.line, e.column)) from None
    except UnexpectedEOF as e:
        raise DeriveError(f"the equation ends early; expected {_expected(e.expected)}",
                          where(1, len(text) + 1)) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            raise DeriveError(f"the equation ends early; expected {_expected(e.expected)}",
                              where(1, len(text.rstrip()) + 1)) from None
        hint = BAR_HINT if tok.type == "VBAR" else ""
        raise DeriveError(f"unexpected {str(tok)!r}; expected {_expected(e.expected)}{hint}",
                          where(tok.line, tok.column)) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above are exhaustive
        raise DeriveError(f"cannot parse: {e}", where(getattr(e, "line", 1), getattr(e, "column", 1))) from None
    try:
        return _ToAst(where).transform(tree)
    except VisitError as e:  # a DeriveError raised while building a node (a subscript)
        if isinstance(e.orig_exc, DeriveError):
            raise e.orig_exc from None
        raise


def equation_lines(block: str):
    """``(line_number, column_offset, text)`` for each equation line of a block.

    Blank lines and comments (``%`` or ``#`` to the end of the line) are skipped; a
    trailing LaTeX line break ``\\\\`` is dropped.
    """
    for number, raw in enumerate(block.split("\n"), start=1):
        text = re.split(r"(?<!\\)[%#]", raw, maxsplit=1)[0].rstrip()
        if text.endswith("\\\\"):
            text = text[:-2].rstrip()
        if text.strip():
            yield number, text
