"""The grammar of formulas a person checks: LaTeX as on the pages, or plain SymPy-style text.

``derive check`` reads claims such as

    \\frac{\\partial L}{\\partial W_{xf}} = \\sum_t \\delta a_{f,t} x_t^\\top
    dc_t = dh_t*o_t*(1 - tanh(c_t)**2) + dc_next*f_next
    \\sigma'(x) = \\sigma(x)(1 - \\sigma(x))

into a small positioned AST; ``checker.py`` gives the names their meaning. Nothing is
evaluated here and no user text reaches Python's ``eval``: Lark tokenises and parses,
the transformer builds frozen dataclasses. Meaning is decided later by types, so
juxtaposition, ``\\cdot``, ``*``, ``@`` and ``\\odot`` all parse as products.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass

from lark import Lark, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from derive.errors import DeriveError, Pos
from derive.syntax.equations import balanced
from derive.syntax.notation import UNICODE, Source, advice, rewrite

MAX_CHARS = 2000  # a formula longer than this is refused before parsing

GRAMMAR = r"""
start: expr "=" expr

?expr: term
     | expr "+" term              -> add
     | expr "-" term              -> sub
?term: unary
     | term PRODUCT unary         -> mul
     | term "/" unary             -> idiv
?unary: juxt
      | "-" unary                 -> neg
      | "+" unary
      | SUM unary                 -> sum
?juxt: power
     | juxt power                 -> jmul
     | juxt SUM juxt              -> jsum
?power: postfix
      | postfix POWER exponent    -> pow
      | postfix POWER TRANSPOSE   -> transpose
      | postfix POWER "{" TRANSPOSE "}" -> transpose
?postfix: atom
        | postfix ".T"            -> transpose
?atom: NAME                       -> name
     | NUMBER                     -> number
     | "(" expr ")"
     | "\\left(" expr "\\right)"
     | "{" expr "}"
     | "[" expr ("," expr)+ "]"                 -> concat
     | "[" expr (";" expr)+ "]"                 -> concat
     | "\\left[" expr ("," expr)+ "\\right]"    -> concat
     | "\\left[" expr (";" expr)+ "\\right]"    -> concat
     | callee "(" args ")"                      -> call
     | callee "\\left(" args "\\right)"         -> call
     | callee "{" args "}"                      -> call
     | callee POWER exponent "(" args ")"       -> powcall
     | callee POWER exponent "\\left(" args "\\right)" -> powcall
     | callee POWER exponent "{" args "}"       -> powcall
     | "\\frac" "{" expr "}" "{" expr "}"       -> div
     | INDICATOR expr CMP NUMBER _close         -> indicator
     | "\\partial" atom                         -> partial
     | "\\delta" atom                           -> delta
     | CASES case_row (ROWSEP case_row)* ROWSEP? "]" -> cases
case_row: expr ";" condition
condition: expr CMP expr          -> compare
         | OTHERWISE              -> otherwise
callee: FUNC
      | FUNC PRIME                -> prime
      | BFUNC PRIME               -> bareprime
      | BFUNC                     -> bare
args: expr ("," expr)*
exponent: INT | NAME -> name | "{" expr "}" | "(" expr ")"

INDICATOR.4: /\\math(bb|bf)\{1\}\s*(\\left)?\[/
CASES.4: "\\cases["
OTHERWISE.4: "\\otherwise"
ROWSEP: "\\\\"
CMP.3: /\\(geq?|leq?|geqslant|leqslant)(?![A-Za-z])|>=|<=|<|>/
_close: "\\right]" | "]"
PRODUCT: "\\odot" | "\\circ" | "\\otimes" | "\\cdot" | "\\times" | "*" | "@"
POWER.2: "^" | "**"
TRANSPOSE.3: "\\top" | "\\intercal" | "T"
PRIME: "'" | "^\\prime" | "^{\\prime}"
SUM.2: /\\sum(\\limits)?(\s*_\s*(\{[^{}]*\}|[A-Za-z]))?(\s*\^\s*(\{[^{}]*\}|\\?[A-Za-z0-9]+))?/ | /sum_t(?![A-Za-z0-9_])/
BFUNC.3: /[A-Za-z][A-Za-z0-9]*(?=\s*(\(|'|\*\*\s*\d+\s*\(|\^\s*\{?\d+\}?\s*\())/
FUNC.2: /\\(operatorname|mathrm|text|mathit)\{[A-Za-z]([A-Za-z0-9]|\\?_)*\}/
      | /\\(?!(odot|circ|otimes|cdot|times|left|right|frac|partial|delta|sum|top|intercal|prime|tilde|hat|bar|mathbf|mathbb|GREEK)(?![A-Za-z]))[A-Za-z]+/
NAME: /(\\(GREEK)(?![A-Za-z])|d?\\(tilde|hat|bar)\{[A-Za-z](_(\{[^{}]*\}|[A-Za-z0-9]+))?\}|\\math(bf|bb)\{1\}|[A-Za-z][A-Za-z0-9]*)(_(\{([^{}]|\{[^{}]*\})*\}|[A-Za-z0-9]+))*/
NUMBER: /\d+(\.\d+)?/
INT: /\d+/
WS: /([ \t\n&]|\\[,;!:]|\\quad|\\qquad)+/
%ignore WS
"""

#: Greek letters that are names (constants a spec declares, activation parameters), not functions;
#: \sigma, \phi and \Phi are functions (the sigmoid, an activation, the normal CDF)
GREEK = ("alpha|beta|gamma|lambda|pi|theta|epsilon|kappa|mu|tau|eta|rho|omega|zeta|nu|xi|chi|psi|iota|upsilon"
         "|varepsilon|vartheta|varrho|varpi|Gamma|Theta|Lambda|Xi|Pi|Upsilon|Psi|Omega")
GRAMMAR = GRAMMAR.replace("GREEK", GREEK)
_parser = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)

_SPELLING = {
    "NAME": "a name such as x_t, W_{xf} or dh_t", "NUMBER": "a number", "INT": "an integer",
    "FUNC": r"a function such as \sigma", "PRODUCT": r"a product (\odot, *, \cdot)", "EQUAL": "'='",
    "PLUS": "'+'", "MINUS": "'-'", "LPAR": "'('", "RPAR": "')'", "LBRACE": "'{'", "RBRACE": "'}'",
    "LSQB": "'['", "RSQB": "']'", "COMMA": "','", "POWER": "'^'", "SLASH": "'/'", "SUM": r"\sum_t",
    "TRANSPOSE": r"\top", "PRIME": "'", "$END": "the end of the formula", "BFUNC": "a function such as tanh",
    "DOT": "'.'", "SEMICOLON": "';' (between a case's value and its condition)", "CMP": "a comparison (>, \\geq)",
    "ROWSEP": "\\\\ (the next case)", "OTHERWISE": "\\text{otherwise}", "CASES": "\\begin{cases}",
}


# ---------------------------------------------------------------- AST nodes


@dataclass(frozen=True)
class Name:
    text: str  # as written, e.g. "W_{xf}", "dc_next", "\\tilde{c}_t"
    pos: Pos


@dataclass(frozen=True)
class Num:
    value: str
    pos: Pos


@dataclass(frozen=True)
class Node:
    """``kind`` is add, sub, mul, div, neg, pow, transpose, sum, concat, partial, delta. A sum with
    bounds, ``\\sum_{t=1}^{T}``, keeps them: ``bounds`` = (first, last - T) as numbers, the last
    step counted from T (``\\sum_{t=0}^{T-1}`` is (0, -1)); None for ``\\sum_t``."""

    kind: str
    args: tuple
    pos: Pos
    bounds: tuple | None = None
    index: str = "t"  # a sum's index: t, or a source position (s, s', j) where a caller allows it


@dataclass(frozen=True)
class Call:
    """``func(args)``; ``prime`` marks a derivative f'(x), ``power`` \\tanh^2(x)."""

    func: str
    args: tuple
    pos: Pos
    prime: bool = False
    power: int = 1
    bare: bool = False  # written without a backslash: tanh(x), f(x), or a product o_t(1 - o_t)


@dataclass(frozen=True)
class Formula:
    lhs: object
    rhs: object
    text: str


#: the claim being parsed (``notation.Source``): positions are mapped back to the text as typed
_SOURCE: ContextVar = ContextVar("formula_source", default=None)
#: the indices a sum may run over besides t (an encoder-decoder's source positions s, s', j)
_INDICES: ContextVar = ContextVar("formula_sum_indices", default=())


def _pos(meta) -> Pos:
    line, column = getattr(meta, "line", 1), getattr(meta, "column", 1)
    src = _SOURCE.get()
    return src.pos(line, column) if src is not None else Pos(line, column)


class _Sum:
    """The signed terms of a left-deep chain ``a + b - c ...`` while the parser reduces it."""

    def __init__(self, first, pos: Pos):
        self.terms, self.pos = [(1, first)], pos


def _done(node):
    """A finished sum as a balanced tree of add/sub nodes (depth log n, terms in order)."""
    if isinstance(node, _Sum):
        return balanced(node.terms, lambda kind, a, b: Node(kind, (a, b), a.pos))
    return node


def _exprs(children) -> tuple:
    return tuple(_done(c) for c in children if not _is_token(c))


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """The parse tree as AST nodes. Sums become balanced trees and a run of products one
    n-ary ``mul`` node, so a long flat formula never nests once per term."""

    def start(self, meta, children):
        lhs, rhs = _exprs(children)
        return (lhs, rhs)

    def name(self, meta, children):
        return Name(str(children[0]), _pos(children[0]))

    def number(self, meta, children):
        return Num(str(children[0]), _pos(children[0]))

    def _node(kind):
        def make(self, meta, children):
            return Node(kind, _exprs(children), _pos(meta))
        return make

    div = _node("div")

    def __init__(self):
        super().__init__()
        self._juxt: set = set()  # ids of the products written by juxtaposition (8 H^2)

    def sum(self, meta, children):
        token, arg = children[0], _done(children[-1])
        index = _index(str(token), _pos(token))
        if index != "t":
            return Node("sum", (arg,), _pos(meta), None, index)
        return Node("sum", (arg,), _pos(meta), _bounds(str(token), _pos(token)))

    def jsum(self, meta, children):
        """``W^T \\sum_s x_s``: a factor times a sum, the sum taking the rest of the product."""
        left, token, arg = children
        summed = self.sum(meta, [token, arg])
        return self.jmul(meta, [left, summed])

    def idiv(self, meta, children):
        """``a / b``: a denominator written as a juxtaposition (``5/8 H^2``) is ambiguous."""
        num, den = _exprs(children)
        if id(den) in self._juxt:
            raise DeriveError(r"a / b c is ambiguous (is it (a/b) c or a/(b c)?): write \frac{a}{b} c, (a/b) c "
                              r"or a/(b c), e.g. \frac{5}{8} H^2", _pos(meta))
        return Node("div", (num, den), _pos(meta))

    def jmul(self, meta, children):
        out = self.mul(meta, children)
        self._juxt.add(id(out))
        return out

    def cases(self, meta, children):
        """``\\begin{cases} v & cond \\\\ ... \\end{cases}``: a call of ``cases`` on value, condition, ..."""
        rows = [c for c in children if isinstance(c, tuple)]
        args = tuple(x for row in rows for x in row)
        return Call("cases", args, _pos(children[0]))

    def case_row(self, meta, children):
        value, cond = children
        return (_done(value), cond)

    def compare(self, meta, children):
        left, op, right = children
        name = {">": "gt", "<": "lt", ">=": "ge", "<=": "le"}.get(str(op)) or \
            {"ge": "ge", "geq": "ge", "geqslant": "ge", "le": "le", "leq": "le", "leqslant": "le"}[str(op)[1:]]
        return Call(name, (_done(left), _done(right)), _pos(op))

    def otherwise(self, meta, children):
        return Call("otherwise", (), _pos(children[0]))
    concat, partial, delta, transpose = _node("concat"), _node("partial"), _node("delta"), _node("transpose")

    def _link(sign):
        def make(self, meta, children):
            left, right = [c for c in children if not _is_token(c)]
            chain = left if isinstance(left, _Sum) else _Sum(_done(left), _pos(meta))
            chain.terms.append((sign, _done(right)))
            return chain
        return make

    add, sub = _link(1), _link(-1)

    def neg(self, meta, children):
        (arg,) = _exprs(children)
        if isinstance(arg, Node) and arg.kind == "neg":  # --a is a: a run of minus signs never nests
            return arg.args[0]
        return Node("neg", (arg,), _pos(meta))

    def mul(self, meta, children):
        left, right = _exprs(children)
        if isinstance(left, Node) and left.kind == "mul":  # a b c: one node, multiplied left to right
            return Node("mul", left.args + (right,), left.pos)
        return Node("mul", (left, right), _pos(meta))

    def pow(self, meta, children):
        base, _, exp = children
        return Node("pow", (_done(base), exp), _pos(meta))

    def exponent(self, meta, children):
        c = children[0]
        return Num(str(c), _pos(c)) if _is_token(c) else _done(c)

    def args(self, meta, children):
        return _exprs(children)

    def bare(self, meta, children):
        return ("bare", str(children[0]), _pos(children[0]))

    def prime(self, meta, children):
        return ("prime", str(children[0]).replace("\\_", "_"), _pos(children[0]))

    def bareprime(self, meta, children):
        return ("bareprime", str(children[0]), _pos(children[0]))

    def callee(self, meta, children):
        return ("func", str(children[0]).replace("\\_", "_"), _pos(children[0]))

    def call(self, meta, children):
        (how, func, pos), args = children
        return Call(func, args, pos, prime=how in ("prime", "bareprime"), bare=how in ("bare", "bareprime"))

    def indicator(self, meta, children):
        """``\\mathbf{1}[u > 0]`` (or ``\\mathbb{1}``), ReLU's derivative (0 at 0), as the pages print it."""
        start, arg, op, number = children
        arg = _done(arg)
        if float(number) != 0 or str(op) != ">":
            raise DeriveError("an indicator compares with 0: \\mathbb{1}[u > 0]", _pos(number))
        return Call("step", (arg,), _pos(start))

    def powcall(self, meta, children):
        (how, func, pos), _, power, args = children
        return Call(func, args, pos, prime=how in ("prime", "bareprime"), power=power,
                    bare=how in ("bare", "bareprime"))


_BOUNDS = re.compile(r"\\sum(?:\\limits)?\s*(?:_\s*(?:\{\s*([A-Za-z])\s*(?:=\s*(-?\d+)\s*)?\}|([A-Za-z])))?"
                     r"\s*(?:\^\s*(?:\{\s*(\\?[A-Za-z]+)\s*(?:([+-])\s*(\d+))?\s*\}|(\\?[A-Za-z]+)))?\s*$")


_OTHER_INDEX = re.compile(r"\\sum(?:\\limits)?\s*_\s*(?:\{\s*([A-Za-z]'?)\s*\}|([A-Za-z]))\s*$")


def _index(text: str, pos: Pos) -> str:
    """A sum's index: t, or one the caller allows (``parse_formula(..., sum_indices=)``), written without bounds."""
    m = _OTHER_INDEX.match(text)
    var = m and (m[1] or m[2])
    if not var or var == "t" or var not in _INDICES.get():
        return "t"
    return var


def _bounds(text: str, pos: Pos):
    """``\\sum_t`` -> None; ``\\sum_{t=1}^{T}`` -> (1, 0); ``\\sum_{t=0}^{T-1}`` -> (0, -1). The index must
    be t (the summand's time); the last step is T (or n, N, \\tau) plus or minus a number."""
    if text.startswith("sum_t"):
        return None
    m = _BOUNDS.match(text)
    if m is None:
        raise DeriveError(r"write a sum over the steps as \sum_t or \sum_{t=1}^{T}", pos)
    var = m[1] or m[3]
    if var is not None and var != "t":
        raise DeriveError(rf"sum over t, the summand's time index (\sum_{{t=1}}^{{T}}), not {var}", pos)
    if m[2] is None and m[4] is None and m[7] is None:
        return None
    first = int(m[2]) if m[2] is not None else 1
    last = m[4] or m[7]
    if last is not None and last.lstrip("\\") not in ("T", "n", "N", "tau", "L"):
        raise DeriveError(rf"the last step of a sum is T (or T-1 ...), not {last}", pos)
    shift = 0 if m[5] is None else int(m[6]) * (1 if m[5] == "+" else -1)
    return (first, shift)


def _is_token(c) -> bool:
    return type(c).__name__ == "Token"


def _spell(terminal: str) -> str:
    if terminal in _SPELLING:
        return _SPELLING[terminal]
    try:
        pattern = _parser.get_terminal(terminal).pattern
    except KeyError:
        return terminal.lower()
    return repr(pattern.value) if type(pattern).__name__ == "PatternStr" else terminal.lower()


def _expected(tokens) -> str:
    names = sorted({_spell(t) for t in tokens if t not in ("WS",)}, key=lambda n: (n.startswith("'"), n))
    return ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")


def normalise(text: str) -> str:
    """The literature's spellings as the grammar's (``notation.rewrite``): Unicode, ``$...$``,
    superscript times, bold names, ``\\nabla``, bars, cases."""
    return rewrite(text).text


def parse_formula(text: str, sum_indices: tuple = ()) -> Formula:
    """Parse ``LEFT = RIGHT``; errors say where (line, column) and what was expected. A sum runs over
    t (a cell's steps) or, where the caller names them in ``sum_indices``, over those indices."""
    if not isinstance(text, str):
        raise DeriveError("a formula must be text")
    if len(text) > MAX_CHARS:
        raise DeriveError(f"the formula has {len(text)} characters; the limit is {MAX_CHARS}")
    bad = re.search(r"[^\x20-\x7e\t\n" + "".join(UNICODE) + "]", text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        col = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise DeriveError(f"unexpected character {bad.group()!r}", Pos(line, col))
    src = rewrite(text)
    token, indices = _SOURCE.set(src), _INDICES.set(tuple(sum_indices))
    try:
        return _parse(src)
    finally:
        _SOURCE.reset(token)
        _INDICES.reset(indices)


def _parse(src: Source) -> Formula:
    source, hint = src.text, advice(src.typed)
    if "=" not in source:
        raise DeriveError("a formula needs '=': write LEFT = RIGHT, e.g. dc_t = ...", Pos(1, 1))
    try:
        tree = _parser.parse(source)
    except UnexpectedCharacters as e:
        raise DeriveError(f"unexpected character {source[e.pos_in_stream]!r}; expected "
                          f"{_expected(e.allowed)}{hint}", src.pos(e.line, e.column)) from None
    except UnexpectedEOF as e:
        raise DeriveError(f"the formula ends too early; expected {_expected(e.expected)}{hint}",
                          src.typed_pos(len(source))) from None
    except UnexpectedToken as e:
        what = "end of the formula" if e.token.type == "$END" else repr(str(e.token))
        where = src.pos(e.line, e.column) if e.line > 0 and e.column > 0 else src.typed_pos(len(source))
        raise DeriveError(f"unexpected {what}; expected {_expected(e.expected)}{hint}", where) from None
    except UnexpectedInput as e:  # pragma: no cover - the three above are all Lark raises
        raise DeriveError(f"cannot read the formula: {e}", Pos(1, 1)) from None
    except RecursionError:
        raise DeriveError("the formula is nested too deeply", Pos(1, 1)) from None
    try:
        lhs, rhs = _ToAst().transform(tree)
    except RecursionError:
        raise DeriveError("the formula is nested too deeply", Pos(1, 1)) from None
    except VisitError as e:  # a DeriveError raised while building the tree
        if isinstance(e.orig_exc, DeriveError):
            raise e.orig_exc from None
        raise
    return Formula(lhs, rhs, source)


def parse_let(text: str) -> tuple[str, object]:
    """``--let NAME=EXPR``: a name the formula may use, defined by an expression."""
    f = parse_formula(text)
    if not isinstance(f.lhs, Name):
        raise DeriveError("--let wants NAME = EXPRESSION, e.g. --let 'W_f = [W_{hf}, W_{xf}]'", Pos(1, 1))
    return f.lhs.text, f.rhs
