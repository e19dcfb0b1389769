"""The activation side of the CLI: ``show``, the ``list`` table, ``verify``, ``bench``.

Output formatting only; the numbers come from ``properties``, ``witness`` and the kernels.
"""

from __future__ import annotations

import argparse

import sympy as sp

from derive import activations as acts
from derive.bench.activations import bench
from derive.runtime.activations import activation
from derive.textout import interval_text, short, table
from derive.bench import cells as cellbench
from derive.bench import peers as peerbench
from derive.bench import models as modelbench
from derive.symbolic import model as model_spec
from derive.errors import DeriveError
from derive.witness.activations import BOUND, ulp_table

#: columns of ``derive list`` for activations: (header, key of Properties.row())
LIST_COLUMNS = (("name", "name"), ("range", "range"), ("monotonic", "monotonic"), ("smooth", "smoothness"),
                ("saturation -/+", "saturation"), ("zero-centred", "zero_centred"), ("gate", "gate_ok"))


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
        lines.append(f"  f(x) = {sp.sstr(cls.symbolic_math())}")
        if cls.mathematical is not None:
            lines.append(f"  as the framework computes it: f(x) = {sp.sstr(cls.symbolic())}")
            lines.append(f"    ({p.shortcut_text()}; the properties below are the function's)")
        lines.append("Derivative (at the defaults)")
        lines.append(f"  f'(x) = {sp.sstr(sp.simplify(a.derivative))}")
        if cls.derivative is not None:
            y = sp.Symbol("y")
            lines.append(f"  with y = f(x): f'(x) = {sp.sstr(cls.derivative(sp.Symbol('x'), y, **cls.exact_params()))}")
        lines.append("\nProperties (computed from the definition)")
        r = p.row()
        for key, label in (("range", "range"), ("limits", "f(-oo), f(+oo)"), ("f(0)", "f(0)"), ("f'(0)", "f'(0)"),
                           ("monotonic", "monotonic"), ("bounded", "bounded"),
                           ("zero_centred", "zero-centred (E f(z) = 0)"), ("sign_preserving", "sign f(x) = sign x"),
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


def add_commands(sub) -> None:
    s = sub.add_parser("verify", help="check the activation kernels against mpmath (and PyTorch)")
    s.add_argument("what", choices=["activations"], help="what to verify")
    s.add_argument("names", nargs="*", help="activations (default: all elementwise ones)")
    s.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    s.set_defaults(run=lambda a: verify(_known(a.names), not a.no_torch))

    s = sub.add_parser("bench", help="time cell kernels or models against PyTorch, or the activation kernels")
    s.add_argument("what", nargs="+", help="cell names or .toml specs, model names or model specs, or "
                                          "'activations' [NAMES]")
    s.add_argument("--size", type=positive_int, default=10**6, help="activations: elements per array (default 10^6)")
    s.add_argument("--repeat", type=positive_int, default=None, help="timed runs, best kept (default 7; cells 3)")
    s.add_argument("--threads", type=positive_int, default=None,
                   help="threads for torch and NumPy's BLAS (default: activations 1, cells every core)")
    s.add_argument("--shape", action="append", metavar="T,B,I,H",
                   help="cells: a size to time (repeatable; default the three of issue 4)")
    s.add_argument("--peers", action="store_true",
                   help="cells: derive's backends (numpy, compiled, auto) against JAX jit(grad(scan)), a PyTorch "
                        "eager loop and torch.nn, with the ratio to the fastest")
    s.add_argument("--site", action="store_true",
                   help="with --peers: also write the measurements to derive/docs/data/performance.json, which "
                        "derive build renders on the site's Performance page")
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
    if a.site and not a.peers:
        raise DeriveError("--site records the peers' table of cells: use it with --peers")
    if a.what[0] == "activations":
        return bench(_known(a.what[1:]), a.size, a.repeat or 7, a.threads or 1)

    if all(model_spec.is_model(n) for n in a.what):
        if a.shape:
            raise DeriveError("--shape is for cells; a model's bench has its own sizes (derive.bench.models)")
        return modelbench.bench(a.what, a.repeat or 3, a.threads)
    sizes = cellbench.SIZES if not a.shape else [cellbench.parse_shape(v) for v in a.shape]
    if a.peers:
        return peerbench.bench(cellbench.known(a.what), a.repeat or 5, a.threads, sizes, site=a.site)
    return cellbench.bench(cellbench.known(a.what), a.repeat or 3, a.threads, sizes)


def _known(names):
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

