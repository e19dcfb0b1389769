"""The activation side of the CLI: ``show``, the ``list`` table, ``verify``, ``bench``.

Output formatting only; the numbers come from ``properties``, ``witness`` and the kernels.
"""

from __future__ import annotations

import argparse

import numpy as np
import sympy as sp

from . import activations as acts
from .catalogue import activation
from .properties import analyse
from .textout import interval_text, short, table
from .timing import best

#: columns of ``derive list`` for activations: (header, key of Properties.row())
LIST_COLUMNS = (("name", "name"), ("range", "range"), ("monotonic", "monotonic"), ("smooth", "smoothness"),
                ("saturation -/+", "saturation"), ("zero-centred", "zero_centred"), ("gate", "gate_ok"))


def rows() -> list[dict]:
    """One dict per activation: properties as strings, plus summary and LaTeX name."""
    out = []
    for name, cls in acts.REGISTRY.items():
        r = analyse(name).row()
        r["range"] = interval_text(analyse(name).range)
        r["gate_ok"] = "yes" if r["gate_ok"] else "no"
        r.update(latex=cls.latex, summary=cls.summary, kind=cls.kind)
        out.append(r)
    return out


def collect(name: str) -> dict:
    """Everything ``derive show ACTIVATION --json`` prints (and a page would format)."""
    a = activation(name)
    cls = a.stanza
    data = {"name": a.name, "summary": cls.summary, "frameworks": cls.names, "notes": cls.notes,
            "kind": cls.kind, "latex_name": cls.latex,
            "parameters": [{"name": p.name, "default": p.default, "latex": p.latex, "learned": p.learned,
                            "doc": p.doc} for p in cls.params],
            "properties": analyse(name).row(), "code": a.code}
    if cls.kind == "elementwise":
        f = cls.symbolic()
        d = sp.diff(f, sp.Symbol("x", real=True))
        names = {p.symbol: p.latex for p in cls.params}  # alpha -> \alpha, negative_slope -> a
        data["definition"] = {"text": sp.sstr(f), "latex": sp.latex(f, symbol_names=names)}
        data["derivative"] = {"text": sp.sstr(d), "latex": sp.latex(d, symbol_names=names)}
        data["properties"]["range"] = interval_text(analyse(name).range)
    else:
        data["definition"] = {"text": cls.display, "latex": cls.display}
        data["reductions"] = [{"claim": c, "verified": ok} for c, ok in analyse(name).reductions]
    return data


def show_latex(name: str) -> str:
    """``derive show ACTIVATION --latex``: definition and derivative as an align* block."""
    data = collect(name)
    lines = [f"% {name}: {data['summary']}", r"\begin{align*}",
             rf"  f(x) &= {data['definition']['latex']}"]
    if "derivative" in data:
        lines[-1] += r" \\"
        lines.append(rf"  f'(x) &= {data['derivative']['latex']}")
    lines.append(r"\end{align*}")
    return "\n".join(lines)


def show(name: str) -> str:
    """``derive show ACTIVATION``: definition, derivative, properties, the NumPy kernels."""
    a = activation(name)
    cls, p = a.stanza, a.properties
    lines = [f"{name}: {cls.summary}"]
    if cls.names:
        lines.append(f"  frameworks: {cls.names}")
    for prm in cls.params:
        lines.append(f"  parameter {prm.name} = {prm.default!r}{' (learned)' if prm.learned else ''}: {prm.doc}")
    if cls.kind == "elementwise":
        lines.append("\nDefinition (parameters as symbols)")
        lines.append(f"  f(x) = {sp.sstr(cls.symbolic())}")
        lines.append("Derivative (at the defaults)")
        lines.append(f"  f'(x) = {sp.sstr(sp.simplify(a.derivative))}")
        if cls.derivative is not None:
            y = sp.Symbol("y")
            lines.append(f"  with y = f(x): f'(x) = {sp.sstr(cls.derivative(sp.Symbol('x'), y, **cls.exact_params()))}")
        lines.append("\nProperties (computed from the definition)")
        r = p.row()
        for key, label in (("range", "range"), ("limits", "f(-oo), f(+oo)"), ("f(0)", "f(0)"), ("f'(0)", "f'(0)"),
                           ("monotonic", "monotonic"), ("bounded", "bounded"), ("zero_centred", "zero-centred"),
                           ("smoothness", "smoothness"), ("minimum", "minimum"),
                           ("saturation", "saturation (left / right)"), ("mean_N01", "E f(z), z ~ N(0,1)"),
                           ("dead_mass_N01", "P(f'(z) = 0), z ~ N(0,1)")):
            value = interval_text(p.range) if key == "range" else r[key]
            if value != "":
                lines.append(f"  {label:28s} {value}")
        for point, order, jump in p.kinks:
            what = "continuous to all orders checked" if order is None else \
                ("jump" if order == 0 else f"f^({order}) jumps") + f" by {short(sp.nsimplify(jump) if jump.is_Rational else jump)}"
            lines.append(f"  kink at x = {short(point)}: {what}")
        lines.append(f"  fit for a gate (range within [0, 1]): {'yes' if p.gate_ok else 'no'}")
    else:
        lines.append(f"\nDefinition: {cls.display}")
        for claim, ok in p.reductions:
            lines.append(f"  {claim}: {'verified symbolically' if ok else 'FAILS'}")
    if cls.notes:
        lines.append(f"\nNote: {cls.notes}")
    lines.append("\nNumPy kernels (derive/kernels/activations.py)")
    lines.append(a.code.rstrip())
    return "\n".join(lines)


def verify(names, with_torch: bool) -> int:
    """``derive verify activations``: the ULP table; exit 1 if a kernel breaks its bound."""
    from .witness import BOUND, ulp_table

    rows = ulp_table(names or None, with_torch=with_torch)
    print("Worst error in ULPs against the definition evaluated by mpmath (>= 50 digits), over "
          "0, kinks, +-1e-8, +-1, +-20, +-40, +-100, +-1e3, +-1e300, +-inf, subnormals and 800 spread points.")
    print(f"'cond<=1' is the worst where the relative condition number |x g'/g| <= 1 (target {BOUND} ULP in "
          f"float64); 'all' may be larger where g is ill-conditioned (bound {BOUND} + 2 cond).")
    header = ("activation", "g", "dtype", "cond<=1", "all", "at x", "torch all", "at x", "ok")
    body = []
    bad = 0
    for r in rows:
        body.append((r.name, r.which, r.dtype, f"{r.well:.3g}", f"{r.worst:.3g}", f"{r.at:.6g}",
                     "" if r.torch_worst is None else f"{r.torch_worst:.3g}",
                     "" if r.torch_at is None else f"{r.torch_at:.6g}", "ok" if r.ok else "FAIL"))
        bad += not r.ok
    table(header, body)
    print(f"{len(rows) - bad}/{len(rows)} kernels within their bound")
    return 1 if bad else 0


def bench(names, size: int, repeat: int, threads: int) -> int:
    """``derive bench activations``: kernel vs naive NumPy formula vs torch.nn.functional."""
    from .witness import TORCH

    try:
        import torch
        import torch.nn.functional as F

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    print(f"{size} elements, best of {repeat}; torch with {threads} thread(s); times in ms; "
          f"ratio = derive / other (< 1: derive is faster)")
    header = ("activation", "dtype", "f", "naive f", "ratio", "torch f", "ratio", "f'", "naive f'", "ratio",
              "torch f+f'", "derive f+f'", "ratio")
    body = []
    rng = np.random.default_rng(0)
    for name in names or acts.elementwise():
        a = activation(name)
        f_naive, d_naive = _naive(name)
        for dtype in (np.float32, np.float64):
            xs = (rng.standard_normal(size) * 5).astype(dtype)
            t_f = best(lambda: a.f(xs), repeat)
            t_d = best(lambda: a.df(xs), repeat)
            with np.errstate(all="ignore"):
                t_nf = best(lambda: f_naive(xs), repeat)
                t_nd = best(lambda: d_naive(xs), repeat)
            t_tf = t_tfd = None
            if torch is not None and name in TORCH:
                fname, kwargs = TORCH[name]
                kw = kwargs(a.params)
                t = torch.from_numpy(xs)
                if "weight" in kw:
                    kw["weight"] = torch.tensor([kw["weight"]], dtype=t.dtype)
                fn = getattr(F, fname)
                t_tf = best(lambda: fn(t, **kw), repeat)
                tg = t.clone().requires_grad_(True)
                ones = torch.ones_like(tg)

                def fwd_bwd():
                    tg.grad = None
                    fn(tg, **kw).backward(ones)
                t_tfd = best(fwd_bwd, repeat)
            ms = lambda v: "" if v is None else f"{v * 1e3:.2f}"
            ratio = lambda a_, b_: "" if b_ is None else f"{a_ / b_:.2f}"
            body.append((name, np.dtype(dtype).name, ms(t_f), ms(t_nf), ratio(t_f, t_nf), ms(t_tf), ratio(t_f, t_tf),
                         ms(t_d), ms(t_nd), ratio(t_d, t_nd), ms(t_tfd), ms(t_f + t_d), ratio(t_f + t_d, t_tfd)))
    table(header, body)
    return 0


def _naive(name: str):
    """The textbook formula and its SymPy derivative, lambdified for NumPy (no stable rewrite)."""
    from .properties import x

    f = acts.get(name).expr(x)
    mods = ["scipy", "numpy"]
    return sp.lambdify(x, f, mods), sp.lambdify(x, sp.diff(f, x), mods)


def add_commands(sub) -> None:
    s = sub.add_parser("verify", help="check the activation kernels against mpmath (and PyTorch)")
    s.add_argument("what", choices=["activations"], help="what to verify")
    s.add_argument("names", nargs="*", help="activations (default: all elementwise ones)")
    s.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    s.set_defaults(run=lambda a: verify(_known(a.names), not a.no_torch))

    s = sub.add_parser("bench", help="time cell kernels against torch.nn, or the activation kernels")
    s.add_argument("what", nargs="+", help="cell names or .toml specs, or 'activations' [NAMES]")
    s.add_argument("--size", type=positive_int, default=10**6, help="activations: elements per array (default 10^6)")
    s.add_argument("--repeat", type=positive_int, default=None, help="timed runs, best kept (default 7; cells 3)")
    s.add_argument("--threads", type=positive_int, default=None,
                   help="threads for torch and NumPy's BLAS (default: activations 1, cells every core)")
    s.add_argument("--shape", action="append", metavar="T,B,I,H",
                   help="cells: a size to time (repeatable; default the three of issue 4)")
    s.set_defaults(run=_bench)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (0 and negatives are refused, not replaced by a default)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def _bench(a) -> int:
    if a.what[0] == "activations":
        return bench(_known(a.what[1:]), a.size, a.repeat or 7, a.threads or 1)
    from . import cellbench

    sizes = cellbench.SIZES if not a.shape else [cellbench.parse_shape(v) for v in a.shape]
    return cellbench.bench(cellbench.known(a.what), a.repeat or 3, a.threads, sizes)


def _known(names):
    from .errors import DeriveError

    for n in names:
        try:
            cls = acts.get(n)
        except KeyError as e:
            raise DeriveError(e.args[0]) from None
        if cls.kind != "elementwise":
            raise DeriveError(f"{n} is not elementwise; verify and bench cover the elementwise activations")
    return [acts.get(n).__name__ for n in names]


def is_activation(name: str) -> bool:
    try:
        acts.get(name)
        return True
    except KeyError:
        return False

