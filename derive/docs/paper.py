"""A cell page's "In the paper's notation" section, from the spec's ``[paper]`` table: the
paper's equations beside the spec's, line by line, and the reference implementation whose
parameter count the table states. That count is a claim like any other: ``derive check``
compares it with the derivation's count when the page is built, and a count that is wrong
stops the build with the spec's line and column (a page never shows an unchecked number).
"""

from __future__ import annotations

from itertools import zip_longest

from derive.checker.claims import check
from derive.checker.result import Verdict
from derive.errors import DeriveError
from derive.symbolic import spec
from derive.symbolic.bptt import Derivation


def paper_section(name: str, d: Derivation) -> dict | None:
    """``{"rows": [{"paper", "spec"}], "symbols", "implementation", "count"}`` or None."""
    cell = d.cell
    table = cell.meta.get("paper")
    if not table:
        return None
    paper_lines = [line.strip() for line in table.get("notation", "").splitlines() if line.strip()]
    rows = [{"paper": p, "spec": s} for p, s in zip_longest(paper_lines, cell.equations, fillvalue="")]
    out = {"rows": rows if paper_lines else [], "symbols": table.get("symbols", ""),
           "implementation": table.get("implementation", ""), "count": None}
    if "count" in table:
        result = check(name if name in spec.builtin_names() else cell.source, "N = " + table["count"])
        if result.verdict == Verdict.WRONG:
            raise DeriveError(f"[paper] count {table['count']!r} is not the derivation's: "
                              f"{result.derived}; {result.hint}", cell.meta.get("paper_count_at"), cell.source)
        out["count"] = {"latex": table["count"], "derived": result.derived,
                        "how": result.convention or f"equal to the derivation's count, {result.how}"}
    return out
