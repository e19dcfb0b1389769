"""NumPy code for the stable forms: a printer, and the generated activation kernel module.

The printer writes the stable primitives of ``stable.py`` as calls to a few helpers that
open the generated module (``_sigmoid``, ``_dsigmoid``, ``_softplus``, ``_sech2``, ``_erfc``,
``_ndtr``, ``_gauss``), a ``Piecewise`` as nested
``np.where``, ``1/p^n`` as ``(1/p)**n`` (underflows where ``p**n`` would overflow), and
every irrational constant as a Python float literal, so a float32 array stays float32
(NumPy 2 treats Python scalars as weak; ``np.sqrt(2)`` would promote to float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from derive import activations as acts
from derive import stable
from derive.stable import x
from derive.codegen.pytemplates import python_template
from derive.symbolic.properties import analyse, as_float


class KernelPrinter(NumPyPrinter):
    """SymPy's NumPy printer with ``np.`` names and the stable primitives."""

    def _module_format(self, fqn, register=True):
        return "np." + fqn.split(".")[-1] if fqn.startswith("numpy.") else fqn

    def _call(self, name, expr):
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Clip(self, e):
        v, lo, hi = (self._print(a) for a in e.args)
        if e.args[1] == -sp.oo:
            return f"np.minimum({v}, {hi})"
        if e.args[2] == sp.oo:
            return f"np.maximum({v}, {lo})"
        return f"np.clip({v}, {lo}, {hi})"

    def _print_Scaled(self, e):
        u, a = e.args
        if a.is_Rational and a.p == 1:
            return f"({self._print(u)})/{a.q}"
        return f"{self._print(a)}*({self._print(u)})"

    def _print_Float(self, e):
        return repr(float(e))

    def _print_Piecewise(self, e):
        *pieces, (last, cond) = e.args
        out = self._print(last)
        if cond != sp.true:
            raise ValueError(f"a kernel's Piecewise needs a final True branch: {e}")
        for value, c in reversed(pieces):
            out = f"np.where({self._print(c)}, {self._print(value)}, {out})"
        return out

    def _print_Relational(self, e):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[e.rel_op]
        return f"({self._print(e.lhs)} {op} {self._print(e.rhs)})"

    def _print_maximum(self, e):
        return self._call("np.maximum", e)

    def _print_minimum(self, e):
        return self._call("np.minimum", e)

    def _print_Heaviside(self, e):
        if len(e.args) > 1 and e.args[1] != sp.Rational(1, 2):
            raise ValueError(f"a kernel's Heaviside step has H(0) = 1/2: {e}")
        return f"np.heaviside({self._print(e.args[0])}, 0.5)"

    def _print_Pow(self, e, rational=False):
        if e.exp.is_Integer and e.exp < -1 and not e.base.is_Number:
            return f"(1/{self.parenthesize(e.base, 1000)})**{-e.exp}"
        return super()._print_Pow(e, rational)


def literal_constants(expr):
    """Replace each numeric factor that is not rational by one Float (Python literal)."""
    if expr.is_Number:
        return expr
    if expr.is_number:
        return sp.Float(expr.evalf(20), 17)
    if not expr.args or isinstance(expr, (sp.Symbol,)):
        return expr
    if isinstance(expr, sp.Mul):
        num = [a for a in expr.args if a.is_number]
        rest = [literal_constants(a) for a in expr.args if not a.is_number]
        coeff = sp.Mul(*num)
        coeff = coeff if coeff.is_Rational else sp.Float(coeff.evalf(20), 17)
        return sp.Mul(coeff, *rest, evaluate=False) if coeff != 1 else sp.Mul(*rest)
    return expr.func(*[literal_constants(a) for a in expr.args])


#: stable primitives and SymPy functions printed as a call of one helper or ufunc: class -> callee
CALLS = {"Sigmoid": "_sigmoid", "DSigmoid": "_dsigmoid", "Softplus": "_softplus", "Tanh": "np.tanh",
         "Sech2": "_sech2", "Phi": "_ndtr", "Gauss": "_gauss", "Erfc": "_erfc", "expm1": "np.expm1",
         "log1p": "np.log1p"}


def _caller(callee: str):
    def _print(self, e):
        return self._call(callee, e)
    return _print


for _cls, _callee in CALLS.items():  # as SymPy's printers add their known functions
    setattr(KernelPrinter, f"_print_{_cls}", _caller(_callee))


PRINTER = KernelPrinter({"fully_qualified_modules": True, "allow_unknown_functions": False})


def body(expr, result="y") -> list[str]:
    """Lines computing ``expr`` into ``result``, one common sub-expression per line."""
    expr = literal_constants(expr)
    if not expr.free_symbols & {x, *sp.symbols("a b", real=True)}:
        return [f"{result} = np.full_like(x, {PRINTER.doprint(expr)})"]
    subs, (reduced,) = sp.cse([expr], symbols=sp.numbered_symbols("t"), order="none")
    lines = [f"{s} = {PRINTER.doprint(e)}" for s, e in subs]
    lines.append(f"{result} = {PRINTER.doprint(reduced)}")
    return lines


@dataclass
class Function:
    """One generated function: name, signature, docstring, body lines."""

    name: str
    args: str
    doc: str
    lines: list[str]
    returns: str = "_cast(y, dtype)"


@dataclass
class Stanza:
    """The generated functions of one activation and the rules that made them stable."""

    name: str
    summary: str
    rules: list[str]
    functions: list[Function] = field(default_factory=list)


def _signature(cls, first="x") -> str:
    return ", ".join([first] + [f"{p.name}={p.default!r}" for p in cls.params])


def elementwise_stanza(cls) -> Stanza:
    f, grads, rules = stable.stable_form(cls)
    sig = _signature(cls)
    name = cls.__name__
    funcs = [
        Function(name, sig, f"f(x) = {sp.sstr(cls.symbolic())}", ["x, dtype = _float(x)", *body(f)]),
        Function(f"{name}_d", sig, "f'(x), from x (stable; not from the saved output)",
                 ["x, dtype = _float(x)", *body(grads[x])]),
    ]
    for pname, g in stable.param_gradients(cls).items():
        funcs.append(Function(f"{name}_d{pname}", sig,
                              f"d f / d {pname} per element (sum over the axes {pname} is shared on)",
                              ["x, dtype = _float(x)", *body(g)]))
    st = Stanza(name, cls.summary, rules, funcs)
    fix_special_values(cls, st)
    return st


def halves_stanza(cls) -> Stanza:
    a, b = sp.symbols("a b", real=True)
    f, grads, rules = stable.stable_form(cls, a, b)
    name = cls.__name__
    split = ["x, dtype = _float(x)", "a, b = np.split(x, 2, axis=-1)"]
    return Stanza(name, cls.summary, rules, [
        Function(name, "x", "a * sigma(b) with x = [a | b] split along the last axis", [*split, *body(f)]),
        Function(f"{name}_d", "x", "(d f/d a, d f/d b) in the layout of x: [sigma(b) | a sigma(b) sigma(-b)]",
                 [*split, *body(grads[a], "da"), *body(grads[b], "db"), "y = np.concatenate([da, db], axis=-1)"]),
    ])


def pieces_stanza(cls) -> Stanza:
    name = cls.__name__
    group = ["x, dtype = _float(x)", "z = x.reshape(*x.shape[:-1], x.shape[-1] // k, k)"]
    return Stanza(name, cls.summary, ["max over each group of k pieces"], [
        Function(name, "x, k=2", "max over groups of k consecutive entries of the last axis", [*group, "y = z.max(axis=-1)"]),
        Function(f"{name}_d", "x, k=2", "1 at the first arg max of each group, 0 elsewhere (layout of x)",
                 [*group, "first = z.argmax(axis=-1)[..., None]",
                  "y = (np.arange(k) == first).reshape(x.shape)"]),
    ])


# --- special values: nan propagates, f(+-inf) is the limit ---------------------------------

def _probe(source: str, func: str) -> np.ndarray:
    namespace: dict = {}
    exec(compile(source, "<derive kernel probe>", "exec"), namespace)  # our own generated code
    with np.errstate(all="ignore"):
        return namespace[func](np.array([np.nan, -np.inf, np.inf]))


def fix_special_values(cls, st: Stanza) -> None:
    """Add ``np.where`` lines where the formula gives nan at +-inf or a number at nan."""
    props = analyse(cls.__name__)
    expected = {"f": props.limits, "d": props.slope_limits}
    for fn, key in zip(st.functions[:2], ("f", "d")):
        got = _probe(render_module([st], probe=True), fn.name)
        lo, hi = expected[key]
        want = [math.nan, as_float(lo), as_float(hi)]
        fixes, inf_fixes = [], []
        if not math.isnan(got[0]):
            fixes.append("y = np.where(np.isnan(x), x, y)  # nan propagates")
        for value, w, exact, side in ((got[1], want[1], lo, -sp.oo), (got[2], want[2], hi, sp.oo)):
            if not (value == w or (math.isnan(value) and math.isnan(w))):
                limit = _limit_code(cls, key, side, exact) or repr(w)
                inf_fixes.append(f"y = np.where(x == {'-' if side < 0 else ''}np.inf, {limit}, y)"
                                 f"  # the limit of f{'' if key == 'f' else chr(39)}")
        if inf_fixes:  # the formula meets inf * 0 at x = +-inf only; those entries are replaced
            first, *rest = fn.lines
            fn.lines = [first, 'with np.errstate(invalid="ignore"):  # inf * 0 at x = +-inf, replaced below',
                        *("    " + line for line in rest)]
        fn.lines.extend(fixes + inf_fixes)


def _limit_code(cls, key: str, side, at_defaults) -> str | None:
    """The limit of f (key "f") or f' at ``side`` as an expression of the parameters, when it
    depends on them (selu: -alpha*scale): the end piece's limit, kept only if it equals
    ``at_defaults`` (the properties' limit) at the default values. None: use the number."""
    if not cls.params:
        return None
    g = cls.symbolic() if key == "f" else sp.diff(cls.symbolic(), x)
    pieces = g.args if isinstance(g, sp.Piecewise) else ((g, sp.true),)
    end = pieces[0][0] if side < 0 else pieces[-1][0]
    limit = sp.limit(end, x, side)
    defaults = {p.symbol: p.exact for p in cls.params}
    if not limit.free_symbols or sp.simplify(limit.xreplace(defaults) - at_defaults) != 0:
        return None
    return PRINTER.doprint(literal_constants(limit))


def stanzas() -> list[Stanza]:
    make = {"elementwise": elementwise_stanza, "halves": halves_stanza, "pieces": pieces_stanza}
    return [make[cls.kind](cls) for cls in acts.REGISTRY.values()]


def render_module(stanzas_: list[Stanza], probe: bool = False) -> str:
    """The text of ``derive/kernels/activations.py`` (Jinja2 template ``activations.py.j2``)."""
    return python_template("activations.py.j2").render(stanzas=stanzas_, probe=probe)
