"""Printers for the vector IR: LaTeX (``\\odot``, ``\\operatorname{diag}``) and terminal text.

They subclass SymPy's printers and override ``_print_X``; no string surgery. IR symbol
names carry their parts (see ``ir.py``), so ``a|f|0`` prints ``a_{f,t}`` and its adjoint
``\\delta a_{f,t}`` (text ``da_{f,t}``). Elementwise products print with ``\\odot``, with
the adjoint first and the forward values in the order of the equations.
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from derive import activations as acts
from derive.symbolic import ir
from derive.symbolic.rules import Factor

_DECOR = ("_tilde", "_hat", "_bar")


def _time(t: int, origin: int | None = None) -> str:
    """``t``, ``t-1``, ``t+1``; or, at a fixed step ``origin``, the step number itself."""
    if origin is not None:
        return str(origin + t)
    return "t" if t == 0 else (f"t+{t}" if t > 0 else f"t{t}")


#: names printed as Greek letters (derive's own kappa_{1,t} for a named common factor)
_GREEK = {"kappa"}


def _part_latex(part: str) -> str:
    if part in _GREEK:
        return f"\\{part}"
    for decor in _DECOR:
        if part.endswith(decor):
            return f"\\{decor[1:]}{{{part[: -len(decor)]}}}"
    return part


def _part_text(part: str) -> str:
    for decor in _DECOR:
        if part.endswith(decor):
            return part[: -len(decor)] + {"_tilde": "~", "_hat": "^", "_bar": "-"}[decor]
    return part


def name_latex(key: str) -> str:
    """A quantity's name without its step, as LaTeX: ``i_hat`` -> ``\\hat{i}``, ``g_y`` -> ``g_y``."""
    return _part_latex(key)


def name_text(key: str) -> str:
    """The same as text: ``i_hat`` -> ``i^``."""
    return _part_text(key)


def _compose(head: str, subs: list[str]) -> str:
    if not subs:
        return head
    body = ",".join(subs)
    return f"{head}_{body}" if len(body) == 1 else f"{head}_{{{body}}}"


def symbol_latex(sym: sp.Symbol, origin: int | None = None) -> str:
    r = ir.ref(sym)
    subs = [_part_latex(p) for p in r.sub.split(",") if p] if r.sub else []
    if r.time is not None:
        subs.append(_time(r.time, origin))
    name = _compose(_part_latex(r.base), subs)
    return rf"\delta {name}" if r.adjoint else name


def symbol_text(sym: sp.Symbol, origin: int | None = None) -> str:
    r = ir.ref(sym)
    subs = [_part_text(p) for p in r.sub.split(",") if p] if r.sub else []
    if r.time is not None:
        subs.append(_time(r.time, origin))
    name = _compose(_part_text(r.base), subs)
    return f"d{name}" if r.adjoint else name


def _factor_key(f):
    """Adjoints first, then vectors (latest time first, by name), then compound factors."""
    if f.is_Number:
        return (0, 0, "")
    if ir.is_ir(f):
        r = ir.ref(f)
        return (1 if r.adjoint else 2, -(r.time or 0), r.key)
    return (3, 0, sp.default_sort_key(f))


def _term_key(term):
    """Numbers, then products W a (input before state), then the rest, biases last."""
    if term.is_Number:
        rank = 0
    elif isinstance(term, ir.MatVec):
        times = [ir.ref(s).time or 0 for s in term.args[1].free_symbols if ir.is_ir(s)]
        rank = 1 if min(times, default=0) == 0 else 2
    elif ir.is_ir(term) and ir.ref(term).time is None:
        rank = 4
    else:
        rank = 3
    return (rank, term.could_extract_minus_sign(), sp.default_sort_key(term))


class _Mixin:
    """What the two printers share: the order of factors and terms."""

    hadamard = " * "
    origin = None  # print times relative to t (None) or at this step

    def _print_Symbol(self, expr):
        return self.symbol(expr) if ir.is_ir(expr) else super()._print_Symbol(expr)

    def _print_Mul(self, expr):
        if not isinstance(expr, sp.Mul) or expr.is_number:  # LatexPrinter prints x**-1 through _print_Mul
            return super()._print_Mul(expr)
        coeff, factors = expr.as_coeff_mul()
        if any(f.is_number for f in factors):  # sqrt(3), pi: part of the coefficient, not a vector
            coeff = coeff * sp.Mul(*[f for f in factors if f.is_number])
            factors = tuple(f for f in factors if not f.is_number)
        factors = sorted(factors, key=_factor_key)
        parts = [self._wrap(f) for f in factors]
        body = self.hadamard.join(parts)
        if coeff == 1:
            return body
        if coeff == -1:
            return "-" + body
        return f"{self._print(coeff)} {body}"

    def _wrap(self, f):
        s = self._print(f)
        return f"{self.lparen}{s}{self.rparen}" if isinstance(f, sp.Add) else s

    def _print_Add(self, expr, order=None):
        return self.join_terms([self._print(t) for t in sorted(expr.args, key=_term_key)])

    def join_terms(self, parts: list[str]) -> str:
        if not parts:
            return "0"
        out = parts[0]
        for p in parts[1:]:
            out += f" - {p[1:]}" if p.startswith("-") else f" + {p}"
        return out

    def _arg(self, e):
        s = self._print(e)
        simple = isinstance(e, sp.Symbol) or isinstance(e, (acts.Activation, ir.MatVec, ir.MatVecT, ir.Mean))
        return s if simple else f"{self.lparen}{s}{self.rparen}"


class IRLatexPrinter(_Mixin, LatexPrinter):
    hadamard = r" \odot "
    lparen, rparen = r"\left(", r"\right)"

    def symbol(self, s):
        return symbol_latex(s, self.origin)

    def _print_MatVec(self, expr):
        return f"{self._print(expr.args[0])} {self._arg(expr.args[1])}"

    def _print_MatVecT(self, expr):
        return rf"{self._print(expr.args[0])}^\top {self._arg(expr.args[1])}"

    def _print_Mean(self, expr, exp=None):
        """The mean over the units, broadcast: ``\\operatorname{mean}\\left(u\\right)``."""
        body = rf"\operatorname{{mean}}\left({self._print(expr.args[0])}\right)"
        return body if exp is None else f"{body}^{{{exp}}}"

    def _print_Heaviside(self, expr, exp=None):
        """The step of max/min's derivative, H(0) = 1/2."""
        body = rf"\operatorname{{H}}\left({self._print(expr.args[0])}\right)"
        return body if exp is None else f"{body}^{{{exp}}}"

    def _print_Pow(self, expr):
        base, exp = expr.args
        if isinstance(base, (acts.Activation, acts.step)) and exp.is_Integer and exp > 0:
            return base._latex(self, exp=self._print(exp))
        if isinstance(base, ir.Mean) and exp.is_Integer and exp > 0:
            return self._print_Mean(base, exp=self._print(exp))
        if ir.is_ir(base) and exp.is_Integer and exp > 0:
            return f"{self._print(base)}^{{{exp}}}"
        return super()._print_Pow(expr)


class IRTextPrinter(_Mixin, StrPrinter):
    hadamard = " ⊙ "
    lparen, rparen = "(", ")"

    def symbol(self, s):
        return symbol_text(s, self.origin)

    def _print_MatVec(self, expr):
        return f"{self._print(expr.args[0])} {self._arg(expr.args[1])}"

    def _print_MatVecT(self, expr):
        return f"{self._print(expr.args[0])}^T {self._arg(expr.args[1])}"

    def _print_Mean(self, expr):
        return f"mean({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        """The step of max/min's derivative, H(0) = 1/2."""
        return f"H({self._print(expr.args[0])})"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Pow(self, expr):
        base, exp = expr.args
        if isinstance(base, acts.Activation) and exp == 2:
            return f"{base.text}²({self._print(base.args[0])})"
        if exp.is_Integer and exp > 0:
            return f"{self._wrap_pow(base)}^{exp}"
        return super()._print_Pow(expr)

    def _wrap_pow(self, base):
        s = self._print(base)
        return s if isinstance(base, (sp.Symbol, sp.Function)) else f"({s})"


_LATEX, _TEXT = IRLatexPrinter(), IRTextPrinter()


def _at(printer_class, origin):
    printer = printer_class()
    printer.origin = origin
    return printer


def latex(expr, origin: int | None = None) -> str:
    return (_LATEX if origin is None else _at(IRLatexPrinter, origin)).doprint(expr)


def text(expr, origin: int | None = None) -> str:
    return (_TEXT if origin is None else _at(IRTextPrinter, origin)).doprint(expr)


def terms_latex(terms, origin: int | None = None) -> str:
    return _LATEX.join_terms([latex(t, origin) for t in terms])


def terms_text(terms, origin: int | None = None) -> str:
    return _TEXT.join_terms([text(t, origin) for t in terms])


def chain_latex(chain) -> str:
    """A Jacobian chain, read left to right; the mean's (1/n) 1 1^T applies to the rest of the
    chain as ``\\operatorname{mean}(M)``: the mean of each column of M over its rows, broadcast."""
    if not chain:
        return "I"
    parts = []
    for k, (kind, v) in enumerate(chain):
        if kind == Factor.MEAN:
            parts.append(rf"\operatorname{{mean}}\left({chain_latex(chain[k + 1:])}\right)")
            break
        parts.append(rf"\operatorname{{diag}}\left({latex(v)}\right)" if kind == Factor.DIAG else latex(v))
    return " ".join(parts)


def chain_text(chain) -> str:
    if not chain:
        return "I"
    parts = []
    for k, (kind, v) in enumerate(chain):
        if kind == Factor.MEAN:
            parts.append(f"mean({chain_text(chain[k + 1:])})")
            break
        parts.append(f"diag({text(v)})" if kind == Factor.DIAG else text(v))
    return " ".join(parts)


def gradient_term(g, arg, as_latex: bool) -> str:
    """A parameter gradient's term: ``g`` for a vector, the outer product ``g a^T`` for a matrix."""
    body = latex(g) if as_latex else text(g)
    if arg is None:
        return body
    if isinstance(g, (sp.Mul, sp.Add)):
        body = rf"\left({body}\right)" if as_latex else f"({body})"
    a = latex(arg) if as_latex else text(arg)
    if not isinstance(arg, sp.Symbol):
        a = rf"\left({a}\right)" if as_latex else f"({a})"
    return f"{body} {a}" + (r"^\top" if as_latex else "^T")


# ------------------------------------------------------------------ step by step (``steps.py``)


def partial_latex(equation, argument) -> str:
    """``\\frac{\\partial f_t}{\\partial a_{f,t}}``."""
    return rf"\frac{{\partial {symbol_latex(equation)}}}{{\partial {symbol_latex(argument)}}}"


def partial_text(equation, argument) -> str:
    return f"∂{symbol_text(equation)}/∂{symbol_text(argument)}"


def chains_latex(chains) -> str:
    """A Jacobian as a sum of chains: ``\\operatorname{diag}\\left(c_{t-1}\\right)``, ``W_{hf}``, ``I``."""
    return " + ".join(chain_latex(c) for c in chains) or "0"


def chains_text(chains) -> str:
    return " + ".join(chain_text(c) for c in chains) or "0"


def applied_latex(chain, g) -> str:
    """``chain^T g`` written out, factor by factor: (diag(a) W)^T g = W^\\top diag(a) g, before the
    diagonal products become elementwise ones."""
    out = latex(g)
    for kind, v in chain:
        if kind == Factor.DIAG:
            out = rf"\operatorname{{diag}}\left({latex(v)}\right) {out}"
        elif kind == Factor.MAT:
            out = rf"{latex(v)}^\top {out}"
        else:
            out = rf"\operatorname{{mean}}\left({out}\right)"
    return out


def applied_text(chain, g) -> str:
    out = text(g)
    for kind, v in chain:
        if kind == Factor.DIAG:
            out = f"diag({text(v)}) {out}"
        elif kind == Factor.MAT:
            out = f"{text(v)}^T {out}"
        else:
            out = f"mean({out})"
    return out
