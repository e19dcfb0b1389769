"""``derive verify activations`` (the ULP table against mpmath) and ``derive bench`` (activations,
cells against their peers, models)."""

from __future__ import annotations

from derive.bench import cells as cellbench
from derive.bench import models as modelbench
from derive.bench import peers as peerbench
from derive.bench.activations import bench
from derive.cli.activations import known
from derive.errors import DeriveError
from derive.symbolic import model as model_spec
from derive.textout import table
from derive.witness.activations import BOUND, ulp_table


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


def _verify(a) -> int:
    return verify(known(a.names), not a.no_torch)


def _bench(a) -> int:
    if a.site and not a.peers:
        raise DeriveError("--site records the peers' table of cells: use it with --peers")
    if a.what[0] == "activations":
        return bench(known(a.what[1:]), a.size, a.repeat or 7, a.threads or 1)

    if all(model_spec.is_model(n) for n in a.what):
        if a.shape:
            raise DeriveError("--shape is for cells; a model's bench has its own sizes (derive.bench.models)")
        return modelbench.bench(a.what, a.repeat or 3, a.threads)
    sizes = cellbench.SIZES if not a.shape else [cellbench.parse_shape(v) for v in a.shape]
    if a.peers:
        return peerbench.bench(cellbench.known(a.what), a.repeat or 5, a.threads, sizes, site=a.site)
    return cellbench.bench(cellbench.known(a.what), a.repeat or 3, a.threads, sizes)
