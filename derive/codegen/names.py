"""Every name the generated kernels use, made in one place.

The kernels read as the math does: ``f_t``, ``c_prev``, ``z_f_t``, ``W_h`` (the fused matrix of
the products of ``h_{t-1}``), ``hW_t`` (its product at step t), ``tanh_c_all`` (``tanh(c_t)``
kept for every step). ``code_name`` spells an IR symbol; a ``Namer`` spells everything else a
kernel binds from the cell's quantities, and ``claim`` refuses (``DeriveError``) a name that
would stand for two different quantities, naming the equations both come from. The kernel's
source audit (``selfcheck.audit``) stays the safety net behind it.
"""

from __future__ import annotations

import re
from enum import StrEnum

import sympy as sp

from derive import activations as acts
from derive.codegen.ewise import CodegenError
from derive.errors import DeriveError
from derive.symbolic import ir
from derive.symbolic.cell import Cell
from derive.symbolic.printing import text as ir_text

class Buffer(StrEnum):
    """The kernel's own sequence buffers, whose steps the views index."""

    Z = "z"  # pre-activations (T, B, columns), batch-major
    A = "a"  # gate outputs (T, B * columns), block-major
    DZ = "dz"  # adjoints of z (and extra gradient blocks), as z
    DA = "da"  # adjoints of the gate outputs of one step, as a step of a


#: the step's input and output gradient, whatever the spec calls them (``x_t = x[t]``)
INPUT_STEP, DY_STEP = "x_t", "dy_t"

#: time offset -> the suffix of a code name
TIME_SUFFIX = {0: "_t", -1: "_prev", 1: "_next"}


def code_name(sym: sp.Symbol) -> str:
    """``f_t``, ``c_prev``, ``z_f_t``, ``h_tilde_t``, ``dc_t``, ``W_xf``."""
    r = ir.ref(sym)
    base = r.base + (f"_{r.sub.replace(',', '_')}" if r.sub else "")
    if r.time is None:
        return _identifier(base)
    return _identifier(("d" if r.adjoint else "") + base + TIME_SUFFIX[r.time])


def _identifier(name: str) -> str:
    """Generated code holds only names that are plain identifiers (never code)."""
    if not (name.isidentifier() and name.isascii()):
        raise CodegenError(f"cannot use {name!r} as a name in generated code")
    return name


def time_symbols(expr) -> set:
    """The IR symbols of ``expr`` that carry a time (vectors, not parameters)."""
    return {s for s in expr.free_symbols if ir.is_ir(s) and ir.ref(s).time is not None}


def base_name(sym: sp.Symbol) -> str:
    """``h`` for h_t, ``h_prev`` for h_{t-1}: the code name without its ``_t``."""
    return code_name(sym).removesuffix("_t")


def run_name(blocks) -> str:
    """The joined names of consecutive column blocks: ``ifo``."""
    return "".join(b.name for b in blocks)


class Namer:
    """The generated names of one cell's kernel, and the check that none stands for two things."""

    def __init__(self, cell: Cell):
        self.cell = cell
        self._claims: dict[tuple, tuple] = {}  # (space, name) -> (quantity, equation)

    # ------------------------------------------------------------ collisions
    def claim(self, name: str, quantity, space: str = "step") -> str:
        """``name`` for ``quantity`` in ``space`` (the step's names, the GEMM groups ...); a
        DeriveError if it stands for another quantity there already."""
        held = self._claims.get((space, name))
        if held is None:
            held = self._claims[space, name] = (quantity, self.equation_of(quantity))
        elif held[0] != quantity:
            raise DeriveError(f"generated name {name!r} would stand for both {ir_text(held[0])} (in {held[1]}) and "
                              f"{ir_text(quantity)} (in {self.equation_of(quantity)}); rename one of them in the spec",
                              source=self.cell.source or None)
        return name

    def claim_all(self, names: dict, space: str = "step") -> dict:
        """``claim`` every ``quantity -> name`` of ``names``; returns ``names``."""
        for quantity, name in names.items():
            self.claim(name, quantity, space)
        return names

    def equation_of(self, quantity) -> str:
        """The equation of the cell that defines or first reads ``quantity``, as written."""
        if isinstance(quantity, sp.Tuple):  # a run of blocks or a product: its first part
            quantity = quantity.args[0]
        if isinstance(quantity, sp.Symbol) and ir.is_ir(quantity) and ir.ref(quantity).adjoint:
            r = ir.ref(quantity)
            quantity = ir.symbol(r.base, r.sub, r.time)
        found = next((a for a in self.cell.assignments if a.target == quantity), None) or \
            next((a for a in self.cell.assignments if isinstance(quantity, sp.Basic) and a.rhs.has(quantity)), None)
        if found is None:
            return "no equation"
        if found.aux:  # a pre-activation derive named: the equation it was taken from
            found = next((a for a in self.cell.assignments if not a.aux and a.pos == found.pos), found)
        return found.source or f"{ir_text(found.target)} = {ir_text(found.rhs)}"

    # ------------------------------------------------------ GEMM arguments
    def arg(self, arg) -> str:
        """The code name of a GEMM argument: ``h`` for h_{t-1}, ``ht`` for h_t (an output layer's
        argument), ``tanh_h_prev`` for tanh(h_{t-1}), the sorted vector names of a product."""
        if isinstance(arg, sp.Symbol):
            base = base_name(arg).removesuffix("_prev")
            return base if ir.ref(arg).time == -1 or arg == self.cell.input else base + "t"
        if isinstance(arg, acts.Activation) and isinstance(arg.args[0], sp.Symbol):
            return f"{type(arg).__name__}_{base_name(arg.args[0])}"
        return "_".join(sorted(base_name(s).removesuffix("_prev") for s in time_symbols(arg)))

    def group(self, arg) -> str:
        """The GEMM group's name: the argument's, with ``_cat`` added while the fused matrix
        ``W_<name>`` would be a parameter of the spec (``W_h`` in ``W_h h_{t-1}``)."""
        name = self.arg(arg)
        while f"W_{name}" in self.cell.params:
            name += "_cat"
        return name

    @staticmethod
    def fused(group: str) -> str:
        """The fused matrix of a group: ``W_h``."""
        return f"W_{group}"

    @staticmethod
    def product(group: str, when: str = "") -> str:
        """A group's product ``hW``; ``when`` ``"_t"`` its step, ``"_all"`` every step kept."""
        return f"{group}W{when}"

    @staticmethod
    def arg_buffer(group: str, when: str = "_t") -> str:
        """The buffer of a late group's argument: ``h_r_t`` (a step), ``h_r_all`` (kept)."""
        return f"{group}{when}"

    @staticmethod
    def bias(group: str, blocks) -> str:
        """The biases of a run of blocks added to a recurrent product: ``b_hifo``."""
        return f"b_{group}{run_name(blocks)}"

    def atom(self, m) -> str:
        """The columns of one ``W a`` in its group's product: ``W_hi_h``."""
        return f"{code_name(m.args[0])}_{self.arg(m.args[1])}"

    # ---------------------------------------------------------------- blocks
    @staticmethod
    def block(gate, z) -> str:
        """A pre-activation block's name: its gate's key (``i``), else z's subscript."""
        return (ir.ref(gate).key if gate is not None else ir.ref(z).sub).replace(",", "_")

    @staticmethod
    def grad_block(param) -> str:
        """An extra gradient block's name, from its matrix: ``hn`` for W_{hn}."""
        return ir.ref(param).key.replace("W_", "").replace("_", "")

    @staticmethod
    def span(blocks) -> str:
        """The slice over consecutive blocks of z / dz: ``s_i``, ``s_ifo``."""
        return f"s_{run_name(blocks)}"

    @staticmethod
    def kspan(blocks) -> str:
        """The slice over consecutive blocks of a step of ``a``: ``k_i``, ``k_ifo``."""
        return f"k_{run_name(blocks)}"

    @staticmethod
    def z(block) -> str:
        return f"z_{block.name}_t"

    @staticmethod
    def dz(block) -> str:
        """``dz_i_t`` for a pre-activation, ``dhn_t`` for an extra gradient block."""
        return f"d{block.name if block.z is None else 'z_' + block.name}_t"

    @staticmethod
    def run_view(base: str, blocks) -> str:
        """A view of a run of blocks of ``z``, ``dz``, ``a`` or ``da``: ``z_ifo``."""
        return f"{base}_{run_name(blocks)}"

    @staticmethod
    def cols(base: str, blocks) -> str:
        """A step's columns of consecutive blocks of ``z`` or ``dz``: ``dz_ifo_cols``."""
        return f"{base}_{run_name(blocks)}_cols"

    @staticmethod
    def row(base: Buffer) -> str:
        """Step t of ``z`` or ``dz``, every column: ``z_row``."""
        return f"{base}_row"

    @staticmethod
    def whole(step_name: str) -> str:
        """The view of every step behind a step's view: ``z_i_all`` for ``z_i_t``."""
        return step_name.removesuffix("_t") + "_all"

    @staticmethod
    def at_t(whole: str) -> str:
        """A step of a sequence buffer: ``tanh_c_t`` of ``tanh_c_all``."""
        return whole.removesuffix("_all") + "_t"

    # ------------------------------------------------ states, kept values, adjoints
    @staticmethod
    def states(sym) -> str:
        """Every step of a state, initial one first: ``h_all``."""
        return base_name(sym) + "_all"

    @staticmethod
    def carry(sym) -> str:
        """The adjoint carried to step t-1: ``dh_carry``."""
        return f"d{base_name(sym)}_carry"

    @staticmethod
    def adjoint(sym) -> str:
        """A per-step adjoint buffer: ``dh_t``, ``dh_tilde_t``."""
        return f"d{code_name(sym)}"

    @staticmethod
    def saved(expr) -> str:
        """A forward value kept for every step: ``o_all``, ``tanh_c_all``."""
        if isinstance(expr, acts.Activation):
            return f"{type(expr).__name__}_{base_name(expr.args[0])}_all"
        return base_name(expr) + "_all"

    # ------------------------------------------------------------ parameters
    @staticmethod
    def grad_sum(param) -> str:
        """A vector parameter's gradient accumulated over the steps: ``db_sum``."""
        return f"d{code_name(param)}_sum"

    @staticmethod
    def grad_step(param) -> str:
        return f"d{code_name(param)}_t"

    @staticmethod
    def transposed_product(matrix, g: str) -> str:
        """The buffer of ``W^T g``: ``W_hhT_dz_h_t``."""
        return f"{code_name(matrix)}T_{g.strip('_')}"

    @staticmethod
    def gradient_scratch(k: int) -> str:
        """A per-step buffer for the ``g`` of a ``W^T g`` that no buffer holds yet: ``_g0``."""
        return f"_g{k}"

    @staticmethod
    def pool_prefix(dim_key: str) -> str:
        """The prefix of the scratch buffers of one shape: ``_h0``, ``_h1`` for (B, H)."""
        return re.sub(r"\W", "", dim_key).lower()
