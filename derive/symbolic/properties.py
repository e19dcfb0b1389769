"""Properties of an activation, computed from its SymPy definition.

Nothing here is typed in: limits come from ``sympy.limit``, derivatives from
``sympy.diff``, critical points from the derivative's sign changes refined by mpmath's
root finder at 50 digits (and made exact when a simple closed form satisfies the
derivative exactly), smoothness from one-sided limits of f, f', f'', ... at each kink of a
piecewise definition.

Properties are those of the mathematical function (``Activation.math_expr``). Where a
framework computes it with a shortcut (PyTorch's softplus returns x above its threshold), the
shortcut's own kinks are measured apart (``Properties.shortcut``) and never change the function's
monotonicity or smoothness.

Definitions used (stated on the pages too):

* zero-centred: the mean output is zero, E f(z) = 0 for z ~ N(0, 1) (to ``ZERO_MEAN_TOL``),
  the sense of "sigmoid outputs are not zero-centred" and of the lecture notes' bias shift
  (偏移现象) of ReLU;
* sign-preserving: f(0) = 0 and f(x) has the sign of x (negative inputs give negative
  outputs). Weaker: Leaky ReLU preserves the sign but its mean output is almost ReLU's;
* saturation on a side: ``hard`` when f is constant beyond some point (f' = 0 exactly),
  ``soft`` when f' -> 0 but never reaches it, ``none`` otherwise;
* hard-saturated mass: P(f'(z) = 0) for z ~ N(0, 1), the seeds' "half of the
  initialised units start in ReLU's saturated region".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import mpmath
import numpy as np
import sympy as sp

from derive import activations as acts
from derive import fileio
from derive.textout import short

x = sp.Symbol("x", real=True)
DPS = 50
SCAN = 60  # critical points and sign changes are looked for in [-SCAN, SCAN]
MAX_ORDER = 4  # smoothness is checked up to this derivative at each kink
#: |E f(z)| below this is a zero mean (SELU's float constants leave 2e-17; the next smallest is 0.16)
ZERO_MEAN_TOL = 1e-9


@dataclass
class Piece:
    expr: sp.Expr
    domain: sp.Interval

    @property
    def constant(self) -> bool:
        return not self.expr.has(x)


@dataclass
class Properties:
    name: str
    kind: str
    range: sp.Set = sp.S.Reals
    limits: tuple = (None, None)  # f(-oo), f(+oo)
    slope_limits: tuple = (None, None)  # f'(-oo), f'(+oo)
    value_at_0: sp.Expr | None = None
    slope_at_0: tuple = (None, None)  # left and right derivative at 0
    monotonic: str = ""
    bounded: str = ""
    zero_centred: bool | None = None  # zero mean output under N(0, 1)
    sign_preserving: bool | None = None  # f(0) = 0 and sign f(x) = sign x
    shortcut: list = field(default_factory=list)  # (point, order, jump): the implementation's own kinks
    smoothness: str = ""
    kinks: list = field(default_factory=list)  # (point, first order that jumps, jump size)
    minimum: tuple | None = None  # (value, where) when the infimum is attained
    critical: list = field(default_factory=list)  # (x, f(x)) interior critical points
    saturation: tuple = ("", "")  # left, right
    gaussian_mean: float | None = None
    saturated_mass: float | None = None
    gate_ok: bool = False
    reductions: list = field(default_factory=list)  # (claim, verified) for vector kinds

    def row(self) -> dict:
        """Plain strings for tables and JSON."""
        def s(v):
            return "" if v is None else sp.sstr(v)
        lo, hi = self.limits
        return {
            "name": self.name, "range": s(self.range), "limits": f"{s(lo)}, {s(hi)}",
            "f(0)": s(self.value_at_0), "f'(0)": _slopes(self.slope_at_0),
            "monotonic": self.monotonic, "bounded": self.bounded,
            "zero_centred": _yes(self.zero_centred), "sign_preserving": _yes(self.sign_preserving),
            "smoothness": self.smoothness, "shortcut": self.shortcut_text(),
            "minimum": "" if self.minimum is None else f"{short(self.minimum[0])} at {_where(self.minimum[1])}",
            "saturation": f"{self.saturation[0]} / {self.saturation[1]}" if any(self.saturation) else "—",
            "mean_N01": "" if self.gaussian_mean is None else f"{self.gaussian_mean:.4f}",
            "dead_mass_N01": "" if self.saturated_mass is None else f"{self.saturated_mass:.4f}",
            "gate_ok": self.gate_ok,
        }


    def shortcut_text(self) -> str:
        """The implementation's departures from the function, e.g. "jump of 2.1e-09 at x = 20"."""
        out = []
        for point, order, jump in self.shortcut:
            what = "f" if order == 0 else f"f^({order})"
            way = "down" if jump < 0 else "up"
            out.append(f"{what} jumps {way} by {abs(float(jump)):.2g} at x = {short(point)}")
        return "; ".join(out)


def _yes(v):
    return "" if v is None else ("yes" if v else "no")


def _where(where) -> str:
    if isinstance(where, sp.FiniteSet) and len(where) == 1:
        return short(next(iter(where)))
    return sp.sstr(where)


def _slopes(pair) -> str:
    left, right = pair
    if left is None:
        return ""
    if left == right:
        return short(left)
    return f"{short(left)} (left) / {short(right)} (right)"


def pieces(expr) -> list[Piece]:
    """The definition as (expression, interval) pieces, in order along the real line."""
    if isinstance(expr, sp.Piecewise):
        pairs = expr.as_expr_set_pairs(sp.S.Reals)
        return sorted((Piece(e, d) for e, d in pairs if d is not sp.S.EmptySet), key=lambda p: p.domain.inf)
    return [Piece(expr, sp.S.Reals)]


def _mp(expr):
    return sp.lambdify(x, expr, modules="mpmath")


def _np(expr):
    return sp.lambdify(x, expr, modules=["scipy", "numpy"])


def _grid(domain: sp.Interval) -> np.ndarray:
    lo = max(float(domain.inf), -SCAN)
    hi = min(float(domain.sup), SCAN)
    if lo >= hi:
        return np.array([])
    g = np.linspace(lo, hi, 4801) + (hi - lo) * 1e-5 / np.pi  # shifted off round numbers
    return g[(g > lo) & (g < hi)]


def critical_points(piece: Piece) -> list[sp.Expr]:
    """Zeros of f' inside the piece: sign changes on a grid, refined to 50 digits."""
    if piece.constant:
        return []
    d = sp.diff(piece.expr, x)
    if not d.has(x):
        return []
    grid = _grid(piece.domain)
    with np.errstate(all="ignore"):
        vals = np.asarray(_np(d)(grid), dtype=float) * np.ones_like(grid)
    roots = []
    dmp = _mp(d)
    for i in np.nonzero(np.sign(vals[:-1]) * np.sign(vals[1:]) < 0)[0]:
        with mpmath.workdps(DPS):
            r = mpmath.findroot(dmp, (mpmath.mpf(grid[i]), mpmath.mpf(grid[i + 1])), solver="anderson")
        roots.append(_exact_or_float(d, r))
    return roots


def _exact_or_float(d, r) -> sp.Expr:
    """An exact root when a small rational makes f' exactly 0, else a 30-digit Float."""
    guess = sp.nsimplify(sp.Float(r, 30), rational=True, tolerance=1e-25)
    if guess.q <= 1000 and sp.simplify(d.subs(x, guess)) == 0:
        return guess
    return sp.Float(r, 30)


def _value(expr, at) -> sp.Expr:
    v = expr.subs(x, at)
    return sp.nsimplify(v) if isinstance(v, sp.Float) and v == int(v) else v


def _limit(expr, at, side="+"):
    if not expr.has(x):
        return expr
    if at in (sp.oo, -sp.oo):
        return sp.limit(expr, x, at)
    return sp.limit(expr, x, at, side)


def _piece_range(piece: Piece, crit: list) -> tuple[sp.Set, list]:
    """Image of a continuous piece over its interval, and the attained (value, where) pairs."""
    d = piece.domain
    if piece.constant:
        return sp.FiniteSet(piece.expr), [(piece.expr, d)]
    cands = []  # (value, attained, where)
    for end, side, closed in ((d.inf, "+", not d.left_open), (d.sup, "-", not d.right_open)):
        cands.append((_limit(piece.expr, end, side), bool(closed) and end.is_finite, sp.FiniteSet(end)))
    for c in crit:
        v = piece.expr.subs(x, c)
        cands.append((v.evalf(30) if isinstance(c, sp.Float) else sp.simplify(v), True, sp.FiniteSet(c)))
    key = lambda c: float(c[0]) if c[0].is_finite else (np.inf if c[0] == sp.oo else -np.inf)
    lo = min(cands, key=key)
    hi = max(cands, key=key)
    lo_att = any(key(c) == key(lo) and c[1] for c in cands)
    hi_att = any(key(c) == key(hi) and c[1] for c in cands)
    rng = sp.Interval(lo[0], hi[0], left_open=not lo_att, right_open=not hi_att)
    attained = [(c[0], c[2]) for c in cands if c[1]]
    return rng, attained


def _restrict(ps: list[Piece], domain: sp.Interval) -> list[Piece]:
    return [Piece(p.expr, p.domain.intersect(domain)) for p in ps if p.domain.intersect(domain) != sp.S.EmptySet]


def _kinks(ps: list[Piece]) -> list[tuple]:
    """(point, first derivative order that differs or None, size of that jump)."""
    out = []
    for left, right in zip(ps, ps[1:]):
        p = left.domain.sup
        fl, fr = left.expr, right.expr
        order, jump = None, None
        for n in range(MAX_ORDER + 1):
            a = sp.simplify(_limit(fl, p, "-"))
            b = sp.simplify(_limit(fr, p, "+"))
            if sp.simplify(a - b) != 0:
                order, jump = n, b - a
                break
            fl, fr = sp.diff(fl, x), sp.diff(fr, x)
        out.append((p, order, jump))
    return out


def _smoothness(kinks) -> str:
    if not kinks:
        return "C^inf"
    orders = [k[1] for k in kinks]
    if any(o is None for o in orders) and all(o is None for o in orders):
        return f"C^{MAX_ORDER}+"
    worst = min(o for o in orders if o is not None)
    return "discontinuous" if worst == 0 else f"C^{worst - 1}"


def _sign_scan(expr, ps) -> tuple[bool, bool]:
    """(has negative values, has positive values) of a function given piecewise, on the grid."""
    neg = pos = False
    for p in ps:
        grid = _grid(p.domain)
        if len(grid) == 0:
            continue
        with np.errstate(all="ignore"):
            v = np.asarray(_np(expr(p))(grid), dtype=float) * np.ones_like(grid)
        neg |= bool(np.any(v < -1e-300))
        pos |= bool(np.any(v > 1e-300))
    return neg, pos


def _monotonic(ps, kinks) -> str:
    neg, _ = _sign_scan(lambda p: sp.diff(p.expr, x), ps)
    drops = [k for k in kinks if k[1] == 0 and k[2] < 0]
    if neg or drops:
        if drops and not neg:
            p, _, j = drops[0]
            return f"no (drops by {float(-j):.2g} at x = {short(p)})"
        return "no"
    if any(p.constant for p in ps):
        return "non-decreasing"
    return "increasing"


def _saturation(piece: Piece, slope) -> str:
    """hard: constant beyond some point; soft: f' -> 0 without reaching it; else none."""
    if piece.constant:
        return "hard"
    return "soft" if slope == 0 else "none"


def as_float(v) -> float:
    """A SymPy limit or value as a float, +-oo as +-inf."""
    return float(v) if v.is_finite else (math.inf if v == sp.oo else -math.inf)


def _gaussian(ps) -> tuple[float, float]:
    """E f(z) and P(f'(z) = 0) for z ~ N(0, 1)."""
    with mpmath.workdps(30):
        phi = lambda t: mpmath.exp(-t * t / 2) / mpmath.sqrt(2 * mpmath.pi)
        mean = mpmath.mpf(0)
        dead = mpmath.mpf(0)
        for p in ps:
            a = mpmath.mpf(float(p.domain.inf)) if p.domain.inf.is_finite else -mpmath.inf
            b = mpmath.mpf(float(p.domain.sup)) if p.domain.sup.is_finite else mpmath.inf
            f = _mp(p.expr)
            mean += mpmath.quad(lambda t: f(t) * phi(t), [a, 0, b] if a < 0 < b else [a, b])
            if p.constant:
                dead += mpmath.ncdf(b) - mpmath.ncdf(a)
        return float(mean), float(dead)


@lru_cache(maxsize=None)
def _analyse(name: str, overrides: tuple) -> Properties:
    cls = acts.get(name)
    if cls.kind != "elementwise":
        return _analyse_vector(cls)
    f = cls.math_expr(x, dict(overrides))
    ps = pieces(f)
    kinks = _kinks(ps)
    shortcut = [] if cls.mathematical is None else \
        [k for k in _kinks(pieces(cls.expr(x, dict(overrides)))) if k[1] is not None and k not in kinks]
    crit = {id(p): critical_points(p) for p in ps}
    ranges, attained = [], []
    for p in ps:
        r, att = _piece_range(p, crit[id(p)])
        ranges.append(r)
        attained.extend(att)
    rng = sp.Union(*ranges)
    lo, hi = rng.inf, rng.sup
    at0 = next(p for p in ps if p.domain.contains(0) == sp.true)
    left0 = next(p for p in ps if p.domain.contains(-sp.Rational(1, 10**9)) == sp.true)
    right0 = next(p for p in ps if p.domain.contains(sp.Rational(1, 10**9)) == sp.true)
    f0 = _value(at0.expr, 0)
    neg_left, pos_left = _sign_scan(lambda p: p.expr, _restrict(ps, sp.Interval.open(-sp.oo, 0)))
    neg_right, pos_right = _sign_scan(lambda p: p.expr, _restrict(ps, sp.Interval.open(0, sp.oo)))
    sign_preserving = f0 == 0 and neg_left and not pos_left and pos_right and not neg_right
    mins = [w for v, w in attained if v.is_finite and lo.is_finite and sp.simplify(v - lo) == 0]
    minimum = (lo, sp.Union(*mins)) if mins else None
    mean, dead = _gaussian(ps)
    slopes = (_limit(sp.diff(ps[0].expr, x), -sp.oo), _limit(sp.diff(ps[-1].expr, x), sp.oo))
    props = Properties(
        name=name, kind=cls.kind, range=rng,
        limits=(_limit(ps[0].expr, -sp.oo), _limit(ps[-1].expr, sp.oo)),
        value_at_0=f0,
        slope_at_0=(_limit(sp.diff(left0.expr, x), 0, "-"), _limit(sp.diff(right0.expr, x), 0, "+")),
        monotonic=_monotonic(ps, kinks),
        bounded={(True, True): "yes", (True, False): "below", (False, True): "above",
                 (False, False): "no"}[(lo.is_finite, hi.is_finite)],
        zero_centred=abs(mean) < ZERO_MEAN_TOL, sign_preserving=bool(sign_preserving),
        smoothness=_smoothness(kinks), kinks=kinks, shortcut=shortcut,
        minimum=minimum, critical=[(c, p.expr.subs(x, c)) for p in ps for c in crit[id(p)]],
        slope_limits=slopes,
        saturation=(_saturation(ps[0], slopes[0]), _saturation(ps[-1], slopes[1])),
        gaussian_mean=mean, saturated_mass=dead,
    )
    props.gate_ok = bool(rng.is_subset(sp.Interval(0, 1)))
    return props


def _analyse_vector(cls) -> Properties:
    """GLU and Maxout take several inputs: check the special cases the seeds name."""
    if cls.kind == acts.Kind.HALVES:
        claims = [("GLU(x, x) = SiLU(x)", sp.simplify(cls.definition(x, x) - acts.silu.expr(x)) == 0)]
    else:
        # by cases: x < 0, x = 0, x > 0 (the symbols carry the sign)
        n, q = sp.Symbol("n", negative=True), sp.Symbol("q", positive=True)
        relu = acts.relu.expr
        claims = [("maxout(0, x) = ReLU(x)",
                   all(sp.simplify(cls.definition(0, v) - relu(v)) == 0 for v in (n, sp.S.Zero, q)))]
    return Properties(name=cls.__name__, kind=cls.kind, range=sp.S.Reals, monotonic="in each argument"
                      if cls.kind == acts.Kind.PIECES else "no", bounded="no", smoothness="C^0" if cls.kind == acts.Kind.PIECES
                      else "C^inf", reductions=claims)


def analyse(name: str, **overrides) -> Properties:
    """The properties of an activation at its default (or the given) parameter values."""
    return _analyse(name, tuple(sorted(overrides.items())))


@lru_cache(maxsize=None)
def value_range(name: str) -> sp.Set:
    """The range of an activation over the reals."""
    return analyse(name).range


#: the rows as the last build derived them, with the digest of what they depend on (the build writes it
#: with the other committed measurements; ``derive build --check`` covers it)
ROWS_NAME = "activation-rows"
ROWS_FILE = Path(__file__).resolve().parents[1] / "docs" / "data" / "measured" / f"{ROWS_NAME}.json"


def rows_sources() -> tuple[list[Path], tuple[str, ...]]:
    """What the rows depend on: every module of the packages that define, analyse and print an
    activation, and SymPy's version (its limits decide the properties)."""
    package = Path(__file__).resolve().parents[1]
    files = [package / "activations.py", package / "textout.py", package / "stanza.py",
             *sorted((package / "symbolic").glob("*.py")), *sorted((package / "summary").glob("*.py"))]
    return files, (sp.__version__,)


def stored_rows() -> list[dict] | None:
    """The committed rows when their digest is that of the sources now (``derive list`` reads them
    and ``is_gate_activation`` read them instead of taking SymPy's limits again, seconds each); None
    otherwise."""
    found, value = fileio.stored_value(ROWS_FILE, fileio.sources_digest(ROWS_NAME, *rows_sources()))
    return value if found and isinstance(value, list) else None


@lru_cache(maxsize=None)
def _stored_gates() -> dict[str, bool]:
    """``gate_ok`` of every activation as the stored rows have it, while they are current."""
    return {r["name"]: r.get("gate_ok") == "yes" for r in stored_rows() or () if isinstance(r, dict) and "name" in r}


def is_gate_activation(name: str) -> bool:
    """True when the activation's range lies within [0, 1] (the seeds' rule for gates). Read from the
    stored rows while they are current (loading a gated cell took most of a second of SymPy limits),
    else computed."""
    stored = _stored_gates()
    if name in stored:
        return stored[name]
    return value_range(name).is_subset(sp.Interval(0, 1))
