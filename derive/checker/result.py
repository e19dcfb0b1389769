"""The verdict on one formula and its report text."""

from __future__ import annotations

import enum
import html
from dataclasses import dataclass, field

import numpy as np
import sympy as sp


class Verdict(enum.StrEnum):
    CORRECT = "correct"
    EQUIVALENT = "equivalent"  # right under another convention
    WRONG = "wrong"


HEADS = {Verdict.CORRECT: "correct", Verdict.EQUIVALENT: "equivalent under a convention", Verdict.WRONG: "wrong"}


@dataclass
class Result:
    """The verdict on one formula.

    ``verdict``: "correct", "equivalent" (the same function under a storage or counting
    convention, named in ``convention``) or "wrong" (``other`` may name the cell it is right
    for; then ``counterexample`` maps every symbol to its value
    and ``left``/``right`` are the derivation's and the claim's values there).
    """

    verdict: Verdict
    quantity: str
    derived: str
    how: str
    formula: str = ""
    reading: str = ""  # how a model's claim was read as a claim on its cell (``checker.model``)
    convention: str = ""
    other: str = ""  # for a wrong claim: the other cell or activation it is right for
    hint: str = ""
    where: str = ""
    counterexample: dict = field(default_factory=dict)
    left: object = None
    right: object = None

    @property
    def ok(self) -> bool:
        return self.verdict != Verdict.WRONG

    def _repr_html_(self) -> str:
        """Jupyter: the verdict in colour over the report (``derive check``'s text)."""
        colour = {Verdict.CORRECT: "#1a7f37", Verdict.EQUIVALENT: "#9a6700", Verdict.WRONG: "#cf222e"}[self.verdict]
        return (f'<div class="derive-check"><strong style="color: {colour}" data-verdict="{self.verdict}">'
                f"{html.escape(HEADS[self.verdict])}</strong>"
                f"<pre>{html.escape(self.report())}</pre></div>")

    def report(self) -> str:
        lines = [f"{HEADS[self.verdict]}: {self.quantity} ({self.how})"]
        if self.reading:
            lines.append(f"  read as: {self.reading}")
        if self.convention:
            lines.append(f"  {self.convention}")
        if self.other:
            lines.append(f"  {self.other}")
        lines.append(f"  the derivation: {self.derived}")
        if self.hint:
            lines.append(f"  {self.hint}")
        if self.verdict == Verdict.WRONG and self.counterexample:
            lines.append(f"  counterexample ({self.where}):")
            for k, v in self.counterexample.items():
                lines.append(f"    {k} = " + show(v, f"    {k} = "))
            lines.append("    the derivation gives " + show(self.left, "    the derivation gives "))
            lines.append("    your formula gives   " + show(self.right, "    your formula gives   "))
        return "\n".join(lines)


def show(v, prefix: str = "") -> str:
    if isinstance(v, (sp.Expr, int, str)):
        return str(v)
    a = np.asarray(v, dtype=float)
    return np.array2string(a, precision=6, separator=", ", max_line_width=110, prefix=prefix)
