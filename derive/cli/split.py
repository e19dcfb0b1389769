"""The build on two cores: the activations in a second process, everything else in the first.

The activations' work (their properties, SymPy limits at +-inf, then their kernel module, pages,
plots and the comparison page) needs nothing the cells' work makes, and takes about as long as
the activation kernel does before the cells' pages can start. So ``derive build`` forks once
(``fork``: the child starts with everything the parent imported) and the child sends back, through
a pipe, first the activation module's text and the activations' summary rows (the cells' pages
read both: the home page lists every activation), then every file it made with what each took, or
the error that stopped it. Without ``fork`` (not Linux) or with one core, the caller runs
everything itself.

What goes through the pipe is text, numbers and lists made by this package in the forked child
(``multiprocessing``'s pickling of its own objects), never anything read from a file.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from pathlib import Path
from typing import Callable

from derive.errors import DeriveError

def is_activation_task(label: str) -> bool:
    """A task (by label) the second process makes: the activations' pages and plots and their comparison."""
    return label.startswith(("activations/", "plots/activation_")) or label == "concepts/compare_activations.md"


def available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1


class Second:
    """The second process: ``start`` forks it; ``first`` waits for the activation module and rows;
    ``result`` for the files. ``run_first`` and ``run_rest`` are what the child calls."""

    def __init__(self, run_first: Callable[[], tuple[dict[Path, str], list]],
                 run_rest: Callable[[], tuple[dict[Path, str], dict[Path, str], dict, dict, dict]]):
        self.run_first, self.run_rest = run_first, run_rest
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=self._child, args=(child,), daemon=True)

    def start(self) -> None:
        self.process.start()

    def _child(self, conn) -> None:
        from threadpoolctl import threadpool_limits

        try:
            with threadpool_limits(1):  # one core each: BLAS threads would take the first process's
                conn.send(("first", self.run_first()))
                conn.send(("rest", self.run_rest()))
        except DeriveError as e:
            conn.send(("error", str(e)))
        except BaseException as e:  # noqa: BLE001 (a bug: its text reaches the parent, which raises it)
            conn.send(("bug", "".join(traceback.format_exception_only(type(e), e)).strip()))
        finally:
            conn.close()

    def _receive(self, want: str):
        try:
            kind, value = self.conn.recv()
        except EOFError:
            self.process.join(timeout=5)
            raise DeriveError(f"the build's second process stopped (exit status {self.process.exitcode}) "
                              "before it sent the activations") from None
        if kind == "error":
            raise DeriveError(value)
        if kind == "bug":
            raise RuntimeError(f"in the build's second process: {value}")
        assert kind == want, (kind, want)
        return value

    def first(self):
        return self._receive("first")

    def result(self):
        t0 = time.perf_counter()
        value = self._receive("rest")
        self.process.join(timeout=30)
        return value, time.perf_counter() - t0

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=5)
