"""The build's progress display (``derive build``): per stage, with an estimate from the last build."""

from __future__ import annotations

import sys
import time


class Progress:
    """What the build is doing, per stage (kernels, pages, plots). On a terminal one line rewritten in place,
    ``[pages 12/89] cells/lstm.md · about 21s left``, the estimate being what the remaining files took in
    the last build (``build/derive-cache.json``), else the stage's mean so far; elsewhere (CI, a pipe) one
    plain line as each stage ends, ``pages: 89 files in 25.3s``."""

    def __init__(self, steps: list[tuple[str, str]], estimates: dict[str, float] | None = None,
                 live=sys.stderr, plain=sys.stdout):
        self.steps, self.estimates = steps, estimates or {}
        self.live = live.isatty()
        self.stream = live if self.live else plain
        self.files: dict[str, int] = {}  # a stage made in one step (the kernels): how many files it wrote
        self.done, self.stage, self.stage_start, self.count = 0, None, time.perf_counter(), 0
        self.taken: dict[str, list[float]] = {}

    def begin(self, index: int) -> None:
        """Step ``index`` of ``steps`` starts."""
        stage, label = self.steps[index]
        if stage != self.stage:
            self._end_stage()
            self.stage, self.stage_start, self.count = stage, time.perf_counter(), 0
        if self.live:
            total = sum(s == stage for s, _ in self.steps)
            left = self.left(index)
            eta = f" · about {left:.0f}s left" if left is not None else ""
            self.stream.write(f"\r\033[K[{stage} {self.count + 1}/{total}] {label}{eta}")
            self.stream.flush()

    def end(self, index: int, seconds: float) -> None:
        self.count += 1
        self.taken.setdefault(self.steps[index][0], []).append(seconds)

    def left(self, index: int) -> float | None:
        """Seconds the steps from ``index`` on are expected to take; None before anything is known."""
        total, known = 0.0, bool(self.estimates)
        for stage, label in self.steps[index:]:
            if label in self.estimates:
                total += self.estimates[label]
            elif self.taken.get(stage):
                total += sum(self.taken[stage]) / len(self.taken[stage])
                known = True
        return total if known else None

    def _end_stage(self) -> None:
        if self.stage is None:
            return
        took = time.perf_counter() - self.stage_start
        if self.live:
            self.stream.write("\r\033[K")
        else:
            self.stream.write(f"{self.stage}: {self.files.get(self.stage, self.count)} files in {took:.1f}s\n")
        self.stream.flush()

    def note(self, line: str) -> None:
        """A line of its own (off a terminal: after the current stage's)."""
        self._end_stage()
        self.stage = None
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        self._end_stage()
        self.stage = None
