"""The project's one parser for the LaTeX subset of cell specs (no eval, no sympify).

An equation such as ``f_t = \\sigma(W_{xf} x_t + W_{hf} h_{t-1} + b_f)`` becomes a small
AST of positioned nodes; ``cell.py`` gives the names their meaning. Juxtaposition and
``\\cdot`` are the matrix-vector product (or a scalar times a vector); ``\\odot``,
``\\circ``, ``\\otimes`` and ``*`` are the elementwise (Hadamard) product.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import DeriveError, Pos

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
     | juxt power             -> juxt
?power: atom
      | atom "^" exponent     -> pow
?atom: NAME                   -> name
     | NUMBER                 -> number
     | "(" expr ")"
     | "\\left(" expr "\\right)"
     | "{" expr "}"
     | FUNC "(" expr ")"                  -> call
     | FUNC "\\left(" expr "\\right)"     -> call
     | FUNC "^" exponent "(" expr ")"     -> powcall
     | "\\frac" "{" expr "}" "{" expr "}" -> frac
exponent: INT | "{" INT "}"

HADAMARD: "\\odot" | "\\circ" | "\\otimes" | "*"
FUNC.2: /\\(operatorname|mathrm|text|mathit)\{[A-Za-z][A-Za-z0-9]*\}/
      | /\\(?!(odot|circ|otimes|cdot|left|right|frac|tilde|hat|bar)(?![A-Za-z]))[A-Za-z]+/
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


@dataclass(frozen=True)
class Op:
    """``add``, ``sub``, ``had`` (elementwise), ``juxt`` (matrix-vector or scalar), ``neg``, ``div``."""

    kind: str
    args: tuple
    pos: Pos


@dataclass(frozen=True)
class Pow:
    base: object
    exponent: int
    pos: Pos


@dataclass(frozen=True)
class Call:
    func: str
    arg: object
    pos: Pos
    exponent: int = 1


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


def split_name(text: str, pos: Pos) -> Name:
    """``W_{xf}`` -> base W, sub xf; ``h_{t-1}`` -> base h, time -1; ``\\tilde{c}_t`` -> c~, 0."""
    m = _NAME.match(text)
    if not m:  # the NAME terminal and this pattern agree, so this is a bug guard
        raise DeriveError(f"cannot read the name {text!r}", pos)
    if m["decor"]:
        base = f"{m['inner']}_{m['decor']}"
        sub = m["sub"] or m["isub"]
    else:
        base, sub = m["base"], m["sub"]
    if sub is not None:
        sub = sub[1:-1].strip() if sub.startswith("{") else sub
    time = None
    if sub is not None:
        parts = [p.strip() for p in sub.split(",")]
        t = _TIME.match(parts[-1].replace(" ", ""))
        if t:
            time = 0 if not t[1] else (int(t[2]) if t[1] == "+" else -int(t[2]))
            parts = parts[:-1]
        sub = ",".join(parts) or None
    return Name(base, sub, time, text, pos)


def _pos(meta_or_token) -> Pos:
    return Pos(meta_or_token.line, meta_or_token.column)


@v_args(meta=True)
class _ToAst(Transformer):
    def start(self, meta, children):
        return children[0]

    def equation(self, meta, children):
        lhs, rhs = children
        return Equation(split_name(str(lhs), _pos(lhs)), rhs, _pos(meta))

    def name(self, meta, children):
        (tok,) = children
        return split_name(str(tok), _pos(tok))

    def number(self, meta, children):
        return Num(str(children[0]), _pos(meta))

    def exponent(self, meta, children):
        return int(children[0])

    def _op(kind):
        def build(self, meta, children):
            args = tuple(c for c in children if not isinstance(c, Token))
            return Op(kind, args, _pos(meta))

        return build

    add, sub, had, juxt, neg = _op("add"), _op("sub"), _op("had"), _op("juxt"), _op("neg")

    def frac(self, meta, children):
        return Op("div", tuple(children), _pos(meta))

    def pow(self, meta, children):
        return Pow(children[0], children[1], _pos(meta))

    def call(self, meta, children):
        func, arg = children
        return Call(str(func), arg, _pos(func))

    def powcall(self, meta, children):
        func, exponent, arg = children
        return Call(str(func), arg, _pos(func), exponent)


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


def _check_size(text: str) -> None:
    if len(text) > MAX_LENGTH:
        raise DeriveError(f"the equation is longer than {MAX_LENGTH} characters", Pos(1, MAX_LENGTH + 1))
    depth = 0
    for col, ch in enumerate(text, start=1):
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        if depth > MAX_DEPTH:
            raise DeriveError(f"brackets nest deeper than {MAX_DEPTH} levels", Pos(1, col))


def parse_equation(text: str) -> Equation:
    """Parse one equation; a syntax error is a ``DeriveError`` at the offending column."""
    _check_size(text)
    try:
        tree = _parser.parse(text)
    except UnexpectedCharacters as e:
        raise DeriveError(f"unexpected character {text[e.pos_in_stream]!r}", Pos(e.line, e.column)) from None
    except UnexpectedEOF as e:
        raise DeriveError(f"the equation ends early; expected {_expected(e.expected)}",
                          Pos(1, len(text) + 1)) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            raise DeriveError(f"the equation ends early; expected {_expected(e.expected)}",
                              Pos(1, len(text.rstrip()) + 1)) from None
        raise DeriveError(f"unexpected {str(tok)!r}; expected {_expected(e.expected)}",
                          Pos(tok.line, tok.column)) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above are exhaustive
        raise DeriveError(f"cannot parse: {e}", Pos(getattr(e, "line", 1), getattr(e, "column", 1))) from None
    try:
        return _ToAst().transform(tree)
    except RecursionError:  # pragma: no cover - the limits above keep trees shallow
        raise DeriveError("the equation is nested too deeply", Pos(1, 1)) from None


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
