"""The Performance page: the committed measurements of ``derive bench --peers ... --site``
(``bench.record``) as tables and plots. Nothing is timed at build time."""

from __future__ import annotations

from derive.bench import record
from derive.bench.peers import LABELS, PEERS, gemm_bound

#: the page's columns: the bench's, in ms
COLUMNS = LABELS


def context() -> dict:
    d = record.load()
    if d is None:
        return {"data": None}
    rows = [_row(r) for r in d["rows"]]
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    ratios = [r["ratio"] for r in rows if r["ratio"] is not None]
    eager = [r["eager"] for r in rows if r["eager"] is not None]
    over = [r for r in rows if r["eager"] is not None and r["eager"] > 0.5]  # above half the eager loop
    return {"data": d, "rows": rows, "cells": cells, "columns": COLUMNS, "eager_over": over,
            "eager_over_sizes": sorted({r["size"] for r in over}),
            "eager_floor": _span(over, "floor"), "over_gemm": _span(over, "gemm_frac"),
            "wins": sum(1 for v in ratios if v <= 1.0), "cases": len(ratios),
            "best": min(ratios) if ratios else None, "worst": max(ratios) if ratios else None,
            "eager_worst": max(eager) if eager else None,
            "versions": ", ".join(f"{k} {v}" for k, v in sorted(d["versions"].items()))}


def _span(rows: list[dict], key: str) -> tuple[float, float] | None:
    """(least, greatest) of ``key`` over ``rows``; None when there are none or one lacks it."""
    values = [r[key] for r in rows]
    return (min(values), max(values)) if values and None not in values else None


def _row(r: dict) -> dict:
    ms = r["ms"]
    peers = {k: ms[k] for k in PEERS if k in ms}
    fastest = min(peers, key=peers.get) if peers else None
    return {"cell": r["cell"], "size": ", ".join(map(str, r["size"])), "dtype": r["dtype"],
            "ms": {k: (f"{ms[k]:.3g}" if k in ms else "—") for k in COLUMNS},
            "ratio": ms["auto"] / peers[fastest] if fastest else None, "fastest": fastest or "—",
            "eager": ms["auto"] / ms["torch eager"] if "torch eager" in ms else None,
            "gemm": "—" if gemm_bound(ms) is None else f"{100 * gemm_bound(ms):.0f}%", "gemm_frac": gemm_bound(ms),
            # the GEMM-bound limit over the eager loop's time: above 0.5, half the eager time is below it
            "floor": ms["GEMMs"] / ms["torch eager"] if "GEMMs" in ms and "torch eager" in ms else None,
            "first": "—" if r["first_s"] is None else f"{r['first_s']:.2f}"}


def ratio_series() -> dict:
    """For the plot: per cell, the case labels and derive's auto time over the fastest peer's."""
    ctx = context()
    out: dict = {}
    for r in ctx.get("rows") or []:
        if r["ratio"] is not None:
            out.setdefault(r["cell"], []).append((f"{r['size']} {r['dtype']}", r["ratio"]))
    return out


def readme_table() -> str:
    """The README's copy of the table (``tests/test_bench_record.py`` holds it equal to the data)."""
    ctx = context()
    head = "| cell | T, B, I, H | dtype | " + " | ".join(COLUMNS) + " | derive / peer | GEMM-bound |"
    lines = [head, "| " + " | ".join(["---"] * (len(COLUMNS) + 5)) + " |"]
    for r in ctx["rows"]:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "—"
        lines.append(f"| {r['cell']} | {r['size']} | {r['dtype']} | " + " | ".join(r["ms"][c] for c in COLUMNS)
                     + f" | {ratio} | {r['gemm']} |")
    return "\n".join(lines)
