"""Independent witnesses for the activation kernels: mpmath at 50 digits, and PyTorch.

``ulp_table()`` evaluates every kernel (f and f') on ``grid(dtype)`` in float32 and
float64 and measures the error against the definition evaluated by mpmath at 50 digits
(the SymPy definition printed for mpmath, not the stable form), in units in the last
place of the true value rounded to the kernel's precision. Special values are exact
requirements: nan gives nan, +-inf give the limits.

``TORCH`` maps each activation PyTorch has to a call of ``torch.nn.functional``; the
same grid is run through it (values, and autograd for f') for the side-by-side columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import mpmath
import numpy as np
import sympy as sp

from derive import activations as acts
from derive.runtime.activations import activation
from derive.symbolic.properties import x
from derive.symbolic.properties import analyse, as_float
from derive.symbolic.properties import pieces

DPS = 50

#: name -> (torch.nn.functional function name, keyword arguments from our parameters)
TORCH = {
    "sigmoid": ("sigmoid", lambda p: {}),
    "tanh": ("tanh", lambda p: {}),
    "relu": ("relu", lambda p: {}),
    "leaky_relu": ("leaky_relu", lambda p: {"negative_slope": p["negative_slope"]}),
    "prelu": ("prelu", lambda p: {"weight": p["a"]}),
    "rrelu": ("rrelu", lambda p: {"lower": p["lower"], "upper": p["upper"], "training": False}),
    "elu": ("elu", lambda p: {"alpha": p["alpha"]}),
    "selu": ("selu", lambda p: {}),
    "celu": ("celu", lambda p: {"alpha": p["alpha"]}),
    "silu": ("silu", lambda p: {}),
    "gelu": ("gelu", lambda p: {"approximate": "none"}),
    "gelu_tanh": ("gelu", lambda p: {"approximate": "tanh"}),
    "mish": ("mish", lambda p: {}),
    "hardtanh": ("hardtanh", lambda p: {"min_val": p["min_val"], "max_val": p["max_val"]}),
    "softsign": ("softsign", lambda p: {}),
    "softplus": ("softplus", lambda p: {"beta": p["beta"], "threshold": p["threshold"]}),
    "hardsigmoid": ("hardsigmoid", lambda p: {}),
    "logsigmoid": ("logsigmoid", lambda p: {}),
}


def kinks(name: str) -> list[float]:
    """The finite boundaries of a piecewise definition."""
    return sorted({float(p.domain.sup) for p in pieces(acts.get(name).expr(x))[:-1]})


def grid(dtype, name: str) -> np.ndarray:
    """The issue's points (0, kinks, +-1e-8, +-1, +-20, +-40, +-100, +-1e3, +-1e300, +-inf,
    subnormals) plus a seeded spread of magnitudes and a dense band around the kinks."""
    tiny = np.finfo(dtype).smallest_subnormal
    base = [0.0, 1e-8, 1.0, 20.0, 40.0, 100.0, 1e3, 1e300, float(tiny), float(tiny) * 7,
            float(np.finfo(dtype).tiny), 0.5, 2.0, 5.0, 10.0, 30.0, 50.0, 88.0, 700.0, 1e10, 1e30]
    rng = np.random.default_rng(0)
    spread = list(10.0 ** rng.uniform(-12, 3, 60)) + list(rng.uniform(0, 45, 60))
    pts = [s * v for v in base + spread for s in (1.0, -1.0)]
    for k in kinks(name):
        pts += [k + d for d in (0.0, 1e-9, -1e-9, 1e-4, -1e-4, 0.1, -0.1)]
    pts += [math.inf, -math.inf]
    with np.errstate(over="ignore"):
        g = np.array(pts, dtype=np.float64).astype(dtype)
    return np.unique(g)


@lru_cache(maxsize=None)
def _references(name: str):
    """(f, f', f'') of the plain definition at PyTorch's parameters: SymPy forms and mpmath callables
    (each ``c + c erf(u)`` evaluated as ``c erfc(-u)``, the same number without the cancellation)."""
    f = acts.get(name).expr(x)
    forms = [f, sp.diff(f, x), sp.diff(f, x, 2)]
    evaluated = [_erfc_form(e) for e in forms]
    return forms, [sp.lambdify(x, e, [{"erfc": _erfc}, "mpmath"]) for e in evaluated]


def _erfc(z):
    """mpmath's erfc, which converts its argument's square to a float: past z = 1e6 the value
    (below e^-1e12) is returned as 0, which is what every float it is compared with rounds it to."""
    return mpmath.mpf(0) if z > 10 ** 6 else mpmath.erfc(z)


def _erfc_form(e: sp.Expr) -> sp.Expr:
    """``c + c erf(u)`` -> ``c erfc(-u)`` wherever a sum holds both terms (1 + erf(x/sqrt 2) at x = -38
    cancels 630 digits; erfc(38/sqrt 2) does not), left unevaluated so SymPy does not turn it back."""
    def rewrite(add: sp.Add) -> sp.Expr:
        for term in add.args:
            c, factor = term.as_coeff_Mul()
            if isinstance(factor, sp.erf) and c in add.args:
                rest = sp.Add(*[a for a in add.args if a is not term and a != c])
                return rest + c * sp.erfc(-factor.args[0], evaluate=False)
        return add
    return e.replace(lambda a: isinstance(a, sp.Add) and a.has(sp.erf), rewrite)


@lru_cache(maxsize=None)
def _gaussian(name: str) -> bool:
    """An erf is left that may cancel: the precision rule's x^2 term is needed (once per activation)."""
    forms, _ = _references(name)
    return any(_erfc_form(e).has(sp.erf) for e in forms)


def _true_value(fn, p: float, gaussian: bool = False):
    """f at the float p to ~35 digits, from the plain definition.

    Plain definitions absorb and cancel: log(1 + e^x) at x = -243 is 0 unless the working
    precision holds e^-243 next to 1, and 1 + erf(x/sqrt 2) at x = -38 needs e^{-x^2/2}.
    So the first precision covers those (50 digits + 0.87|x|, + 0.44 x^2 for erf; |x| taken
    at most 800, beyond which every true value here is an asymptote or below the float
    range), and the value is accepted when doubling the precision changes < 35 digits."""
    at = mpmath.mpf(p)
    m = min(abs(p), 800.0)
    dps = int(DPS + 0.87 * m + (0.44 * min(m * m, 1700.0) if gaussian else 0))
    prev = None
    while dps <= 6400:
        with mpmath.workdps(dps):
            v = mpmath.mpf(fn(at))
        # a 0 is what absorption gives (1 + tanh(-172) at 64 digits), so it is trusted only
        # when it survives up to 3200 digits
        if prev is not None and (v != 0 or dps >= 3200) and abs(v - prev) <= abs(v) * mpmath.mpf(10) ** -35:
            return v
        prev, dps = v, 2 * dps
    return prev


def _limit(name: str, which: str, side) -> float:
    """f or f' at -inf (side < 0) or +inf, as computed once by ``properties.analyse``."""
    p = analyse(name)
    return as_float((p.limits if which == "f" else p.slope_limits)[0 if side < 0 else 1])


def reference(name: str, which: str, points: np.ndarray) -> list:
    """True values at the (exactly representable) points: mpf, or float for nan/inf."""
    forms, fns = _references(name)
    k = 0 if which == "f" else 1
    out = []
    for p in points.astype(np.float64):
        if math.isnan(p):
            out.append(math.nan)
        elif math.isinf(p):
            out.append(_limit(name, which, p))
        else:
            out.append(_true_value(fns[k], float(p), _gaussian(name)))
    return out


def condition(name: str, which: str, points: np.ndarray) -> np.ndarray:
    """|x g'(x) / g(x)| for g = f or f': how much a relative error in x (or in an
    intermediate) is amplified. Kernels may lose about this many ULP; well-conditioned
    points (<= 1) are held to the 4-ULP target."""
    forms, fns = _references(name)
    k = 0 if which == "f" else 1
    out = np.zeros(len(points))
    gaussian = _gaussian(name)
    for i, p in enumerate(points.astype(np.float64)):
        if not math.isfinite(p) or p == 0:
            continue
        g = _true_value(fns[k], float(p), gaussian)
        dg = _true_value(fns[k + 1], float(p), gaussian)
        out[i] = math.inf if g == 0 else float(abs(p * dg / g))
    return out


def ulps(computed: np.ndarray, truth: list, dtype) -> np.ndarray:
    """|computed - truth| in units in the last place of truth rounded to dtype."""
    fi = np.finfo(dtype)
    out = np.zeros(len(truth))
    for i, (c, t) in enumerate(zip(computed.astype(np.float64), truth)):
        if not isinstance(t, mpmath.mpf):
            if math.isnan(t) or math.isinf(t):  # special values must match exactly
                out[i] = 0.0 if (math.isnan(c) and math.isnan(t)) or c == t else math.inf
                continue
            t = mpmath.mpf(t)
        with np.errstate(over="ignore"):
            rounded = dtype(float(t))
        if np.isinf(rounded):
            out[i] = 0.0 if c == float(rounded) else math.inf
            continue
        if math.isnan(c) or math.isinf(c):
            out[i] = math.inf
            continue
        # below the normal range the unit is the smallest normal number: a result that small
        # may be flushed to zero (scipy's erfc does), everything else is measured in ULPs
        spacing = float(np.spacing(np.abs(rounded))) if abs(rounded) >= fi.tiny else float(fi.tiny)
        with mpmath.workdps(DPS):
            out[i] = float(abs(mpmath.mpf(c) - t) / spacing)
    return out


BOUND = 4.0  # ULP, float64 target at well-conditioned points; float32 is computed in float64


@dataclass
class Row:
    name: str
    which: str  # "f" or "f'"
    dtype: str
    worst: float  # over every point
    at: float
    well: float  # over the points with condition number <= 1
    ok: bool  # every point within BOUND + 2 cond
    torch_worst: float | None = None
    torch_at: float | None = None


def _torch_eval(name: str, which: str, points: np.ndarray):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:  # torch is a test extra
        return None
    if name not in TORCH:
        return None
    fname, kwargs = TORCH[name]
    params = acts.get(name).param_values()
    t = torch.tensor(points, requires_grad=True)
    kw = kwargs(params)
    if "weight" in kw:
        kw["weight"] = torch.tensor([kw["weight"]], dtype=t.dtype)
    y = getattr(F, fname)(t, **kw)
    if which == "f":
        return y.detach().numpy()
    (g,) = torch.autograd.grad(y.sum(), t)
    return g.numpy()


def measure(name: str, which: str, dtype, with_torch: bool = True) -> Row:
    """Worst ULP error of one kernel (and of PyTorch's function) over the grid."""
    a = activation(name)
    pts = grid(dtype, name)
    kernel = a.f if which == "f" else a.df
    truth = reference(name, which, pts)
    err = ulps(kernel(pts), truth, dtype)
    over = np.nonzero(err > BOUND)[0]
    cond = np.zeros(len(pts))
    if len(over):
        cond[over] = condition(name, which, pts[over])
    allowed = BOUND + 2 * np.where(np.isfinite(cond), cond, 0.0)  # g = 0 exactly: no allowance
    i = int(np.argmax(err))
    well = err[cond <= 1]
    row = Row(name, "f" if which == "f" else "f'", np.dtype(dtype).name, float(err[i]), float(pts[i]),
              float(well.max()) if len(well) else 0.0, bool(np.all(err <= allowed)))
    if with_torch:
        finite = np.isfinite(pts)
        tv = _torch_eval(name, which, pts[finite])
        if tv is not None:
            terr = ulps(tv, [t for t, keep in zip(truth, finite) if keep], dtype)
            j = int(np.argmax(terr))
            row.torch_worst, row.torch_at = float(terr[j]), float(pts[finite][j])
    return row


def ulp_table(names=None, with_torch: bool = True) -> list[Row]:
    names = names or acts.elementwise()
    return [measure(n, w, dt, with_torch) for n in names for dt in (np.float64, np.float32) for w in ("f", "d")]
