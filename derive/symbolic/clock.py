"""A cell's clock: modules that run at their own periods (the Clockwork RNN, Koutnik et al. 2014).

A spec's ``[clock]`` table splits the H units into ``modules`` = g blocks of k = H / g
consecutive units; module i (from 1) has the period ``periods[i]`` = T_i. Two things follow:

* the **update mask** ``m_t`` (``mask = "m"``): a known vector, not a parameter and not
  learned, with m_t[j] = 1 when the step index t is a multiple of the period of unit j's
  module, else 0. Steps are counted from 0 at a sequence's first step (every module runs
  there), or from the ``t0`` a kernel's caller gives (a sequence continued in chunks). A
  step reads ``m_t`` like any vector at time t; nothing flows back into it.
* **block-upper-triangular matrices** (``block_triangular = ["W_H"]``): H x H parameters
  whose block (i, j) is fixed at zero for j < i, so module i reads only the modules j >= i
  (periods T_j >= T_i, the slower ones). Such a matrix stands for W (.) M everywhere (M the
  0/1 block pattern); its gradient is M (.) (the sum the derivation gives), and only its
  k^2 g (g + 1) / 2 free entries are parameters.

Periods are listed fastest first (non-decreasing), so "the modules j >= i" are the slower
ones, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.errors import DeriveError
from derive.symbolic import ir
from derive.symbolic.shapes import H


@dataclass(frozen=True)
class Clock:
    modules: int  # g
    periods: tuple  # T_1 .. T_g, non-decreasing
    mask: sp.Symbol  # m_t, the IR symbol at time t
    masked: tuple = ()  # keys of the block-upper-triangular matrices

    @property
    def mask_key(self) -> str:
        return ir.ref(self.mask).key

    def fits(self, hidden: int) -> bool:
        return hidden > 0 and hidden % self.modules == 0

    def unit_periods(self, hidden: int) -> list[int]:
        """The period of each unit's module (units in modules of k = H / g, in order)."""
        k = hidden // self.modules
        return [self.periods[j // k] for j in range(hidden)]

    def mask_at(self, t: int, hidden: int) -> list[int]:
        """m_t: 1 where the unit's module runs at step t (t mod T_i = 0), else 0."""
        return [1 if t % period == 0 else 0 for period in self.unit_periods(hidden)]

    def block_pattern(self, hidden: int) -> list[list[int]]:
        """M: entry (r, c) is 1 when unit r's module is at most unit c's (block-upper-triangular)."""
        k = hidden // self.modules
        return [[1 if r // k <= c // k else 0 for c in range(hidden)] for r in range(hidden)]

    @property
    def free_fraction(self) -> sp.Rational:
        """The free entries of a block-upper-triangular H x H matrix over H^2: (g + 1) / 2g."""
        return sp.Rational(self.modules + 1, 2 * self.modules)

    def describe(self) -> str:
        g = self.modules
        return (f"{g} modules of H/{g} units with periods {', '.join(map(str, self.periods))}; "
                f"module i runs at a step whose clock count tau (0 at the first step, or t0) has tau mod T_i = 0")

    def check(self, cell, mask_read: bool, pos, masked_pos) -> None:
        """The mask is read by an equation, and each block-triangular matrix is an H x H parameter of ``cell``."""
        if not mask_read:
            raise DeriveError(f"[clock] mask {self.mask_key}: no equation reads {self.mask_key}_t, so no module "
                              f"ever waits; write the update, e.g. h_t = m_t \\odot (...) + (1 - m_t) \\odot h_{{t-1}}",
                              pos)
        for key in self.masked:
            p = cell.params.get(key)
            if p is None or not p.is_matrix:
                matrices = ", ".join(k for k, q in cell.params.items() if q.is_matrix)
                raise DeriveError(f"[clock] block_triangular: {key} is not a matrix parameter of the cell "
                                  f"(matrices: {matrices})", masked_pos)
            if p.shape != (H, H):
                raise DeriveError(f"[clock] block_triangular: {key} is {p.shape[0]} x {p.shape[1]}; a "
                                  f"block-triangular matrix maps the H units to the H units (H x H)", masked_pos)
