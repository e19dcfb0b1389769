"""Every name the generated kernels use, made in one place.

The kernels read as the math does: ``f_t``, ``c_prev``, ``z_f_t``, ``W_h`` (the fused matrix of
the products of ``h_{t-1}``), ``hW_t`` (its product at step t), ``tanh_c_all`` (``tanh(c_t)``
kept for every step). ``code_name`` spells an IR symbol; a ``Namer`` spells everything else a
kernel binds.

Two kinds of name meet in a kernel: the spec's (``spec_names``: each parameter, each vector at
t and t-1, its adjoint, its buffer of every step, its carry) and derive's own (the sizes
``T, B, I, H``, the step ``t``, the buffers ``x, z, a``, the output gradient ``dy_t``, the fused
matrices ``W_x``, the slices ``s_i`` ...). derive's own names yield: one that a spec name takes
is written with a leading ``_`` (``_dy_t`` beside a state named y; a spec name never starts
with ``_``), a fused matrix gets ``_cat`` (``W_h_cat`` beside a parameter ``W_h``), a size
``_H`` beside a matrix named H (``plan.in_code``), so a spec is never refused for a name derive
chose for its own quantity (only the kernel's interface, ``grads["x"]``, is fixed). ``claim``
refuses (``DeriveError``) a name that would still stand for two quantities (two of the spec's),
naming both as written and where. The kernel's source audit (``selfcheck.audit``) stays the
safety net behind it.
"""

from __future__ import annotations

import re
from enum import StrEnum
from types import SimpleNamespace

import sympy as sp

from derive import activations as acts
from derive.codegen.ewise import CodegenError
from derive.errors import DeriveError
from derive.symbolic import ir
from derive.symbolic.bptt import DY
from derive.symbolic.cell import Cell
from derive.symbolic.printing import text as ir_text


class Buffer(StrEnum):
    """The kernel's own sequence buffers, whose steps the views index."""

    Z = "a"  # pre-activations a_{v,t} (T, B, columns), batch-major (codegen calls them z)
    A = "act"  # the activations' outputs (T, B * columns), block-major
    DZ = "da"  # adjoints of the pre-activations (and extra gradient blocks), as a
    DA = "dact"  # adjoints of the activations' outputs of one step, as a step of act


#: derive's own fixed names that a spec name can take (a parameter ``T``, ``B`` or ``a``; ``da_sum``
#: the summed gradient of a parameter a; ``dy_t`` the adjoint of a state y), each as ``Namer.w``
#: spells it (``w.z`` is the buffer of pre-activations, named ``a`` in the code as on the pages);
#: the sizes in shapes (``H``, ``P``, ``I``) yield in ``plan.in_code``, the rows ``a_row`` in ``Namer.row``. The others it binds (``steps``, ``grads``, ``dW`` ...) no spec
#: name can spell (a parameter is a letter with a subscript). A spec whose input is not x cannot
#: name a state or parameter x: ``backward`` returns the input's gradient as ``grads["x"]``.
WORDS = {"x": "x", "t": "t", "T": "T", "B": "B", "I": "I", "z": str(Buffer.Z), "a": str(Buffer.A),
         "dz": str(Buffer.DZ), "da": str(Buffer.DA), "dz_sum": f"{Buffer.DZ}_sum", "dy_t": "dy_t", "dy_zero": "dy_zero"}

#: time offset -> the suffix of a code name
TIME_SUFFIX = {0: "_t", -1: "_prev", 1: "_next"}


def code_name(sym: sp.Symbol) -> str:
    """``f_t``, ``c_prev``, ``z_f_t``, ``h_tilde_t``, ``dc_t``, ``W_xf``."""
    r = ir.ref(sym)
    base = r.base + (f"_{r.sub.replace(',', '_')}" if r.sub else "")
    if r.time is None:
        return _identifier(base)
    suffix = TIME_SUFFIX.get(r.time) or f"_{'prev' if r.time < 0 else 'next'}{abs(r.time)}"  # x_{t-2}: x_prev2
    return _identifier(("d" if r.adjoint else "") + base + suffix)


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


def whole(step_name: str) -> str:
    """The view of every step behind a step's view: ``z_i_all`` for ``z_i_t``."""
    return step_name.removesuffix("_t") + "_all"


def spec_names(cell: Cell, d=None) -> dict:
    """Every name the spec's own quantities take in the kernels -> the quantity: each parameter
    and its summed gradient; each vector (input, state, equation, pre-activation) at t and t-1,
    its adjoint, its buffer of every step and its carry; each kept activation of one vector
    (``tanh_c_all``)."""
    names = {}
    for p in cell.params.values():
        n = code_name(p.symbol)
        names.update({n: p.symbol, f"d{n}_sum": ir.adjoint(p.symbol), f"d{n}_t": ir.adjoint(p.symbol)})
    exprs = [a.rhs for a in cell.assignments]
    for v in [cell.input, *cell.states, *(a.target for a in cell.assignments)]:
        base, prev, dv, dprev = base_name(v), ir.at(v, -1), ir.adjoint(v), ir.adjoint(ir.at(v, -1))
        names.update({base + "_t": v, base + "_prev": prev, f"d{base}_t": dv, f"d{base}_prev": dprev,
                      base + "_all": v, f"d{base}_all": dv, f"d{base}_carry": dprev})
    if d is not None:
        exprs += [t for a in d.adjoints for t in a.terms] + [t for c in d.carries.values() for t in c.terms]
    for e in exprs:
        for f in e.atoms(acts.Activation):
            if isinstance(f.args[0], sp.Symbol) and ir.is_ir(f.args[0]) and ir.ref(f.args[0]).time is not None:
                names.update({Namer.saved(f): f, Namer.at_t(Namer.saved(f)): f})
    return names


def quantity_text(quantity) -> str:
    """A quantity as the spec writes it: ``W x_t``; a run of several: ``W_f x_t, W_r x_t and W x_t``."""
    if isinstance(quantity, sp.Tuple):
        parts = [quantity_text(q) for q in quantity.args]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return ir_text(quantity)


class Namer:
    """The generated names of one cell's kernel: derive's own yield to the spec's (``own``), and
    none may stand for two quantities (``claim``)."""

    def __init__(self, cell: Cell, d=None):
        self.cell = cell
        self._claims: dict[tuple, tuple] = {}  # (space, name) -> (quantity, equation)
        self.spec = spec_names(cell, d)
        matvecs = {m for a in cell.assignments for m in a.rhs.atoms(ir.MatVec)}
        self._group_forms = frozenset(n for m in matvecs for n, _ in self._forms(self.group(m.args[1]), m.args[1]))
        #: derive's fixed names as this kernel spells them: ``w.T``, ``w.x``, ``w.dy_t`` ...
        words = {attr: self.own(word) for attr, word in WORDS.items()}
        words["dy_t"] = self.own("dy_t", DY if d is None else d.dy)  # the adjoint of an output named y is dy_t
        self.w = SimpleNamespace(**words)

    # ------------------------------------------------------------ collisions
    def _taken(self, name: str, quantity=None) -> bool:
        """Whether ``name`` is the spec's name of a quantity other than ``quantity``."""
        return name in self.spec and self.spec[name] != quantity

    def own(self, name: str, quantity=None, *, view: bool = False, avoid=frozenset()) -> str:
        """derive's own ``name`` (for ``quantity``, if the spec may name it too), yielding to the
        spec: ``_`` + name while it (or, for a ``view``, its view of every step) is the spec's name
        of another quantity, or in ``avoid``."""
        while self._taken(name, quantity) or name in avoid or (view and (self._taken(whole(name)) or
                                                                         whole(name) in avoid)):
            name = "_" + name
        return name

    def claim(self, name: str, quantity, space: str = "step") -> str:
        """``name`` for ``quantity`` in ``space`` (the step's names, the GEMM groups ...); a
        DeriveError if it stands for another quantity there already."""
        held = self._claims.get((space, name))
        if held is None:
            held = self._claims[space, name] = (quantity, self.equation_of(quantity))
        elif held[0] != quantity:
            pos = self._pos_of(quantity, self._assignment_of(quantity))
            first = self._pos_of(held[0], self._assignment_of(held[0]))
            at = f"; the first is written at line {first.line}, column {first.column}" \
                if first is not None and first != pos else ""
            raise DeriveError(f"the generated name {name!r} would stand for both {quantity_text(held[0])} "
                              f"(in {held[1]}) and {quantity_text(quantity)} (in {self.equation_of(quantity)}), "
                              f"two quantities of the spec{at}; rename one of them in the spec",
                              pos, self.cell.source or None)
        return name

    def claim_all(self, names: dict, space: str = "step") -> dict:
        """``claim`` every ``quantity -> name`` of ``names``; returns ``names``."""
        for quantity, name in names.items():
            self.claim(name, quantity, space)
        return names

    def _assignment_of(self, quantity):
        """The assignment that defines or first reads ``quantity`` (None: no equation)."""
        if isinstance(quantity, sp.Tuple):  # a run of blocks or a product: its first part
            quantity = quantity.args[0]
        if isinstance(quantity, sp.Symbol) and ir.is_ir(quantity) and ir.ref(quantity).adjoint:
            r = ir.ref(quantity)
            quantity = ir.symbol(r.base, r.sub, r.time)
        found = next((a for a in self.cell.assignments if a.target == quantity), None) or \
            next((a for a in self.cell.assignments if isinstance(quantity, sp.Basic) and a.rhs.has(quantity)), None)
        if found is not None and found.aux:  # a pre-activation derive named: the equation it was taken from
            found = next((a for a in self.cell.assignments if not a.aux and a.pos == found.pos), found)
        return found

    def _pos_of(self, quantity, found):
        """Where the spec writes ``quantity``: a parameter's first use, else its equation."""
        prm = next((p for p in self.cell.params.values() if p.symbol == quantity), None)
        return prm.pos if prm is not None else (found.pos if found is not None else None)

    def equation_of(self, quantity) -> str:
        """The equation of the cell that defines or first reads ``quantity``, as written."""
        found = self._assignment_of(quantity)
        if found is None:
            return "no equation"
        return found.source or f"{ir_text(found.target)} = {ir_text(found.rhs)}"

    # ------------------------------------------------------ GEMM arguments
    def arg(self, arg) -> str:
        """The code name of a GEMM argument: ``h`` for h_{t-1}, ``ht`` for h_t (an output layer's
        argument), ``tanh_h_prev`` for tanh(h_{t-1}), the sorted vector names of a product."""
        if isinstance(arg, sp.Symbol) and arg != self.cell.input and self.cell.is_input(arg):
            return base_name(arg)  # a tap: x_prev for x_{t-1}
        if isinstance(arg, sp.Symbol):
            base = base_name(arg).removesuffix("_prev")
            return base if ir.ref(arg).time == -1 or arg == self.cell.input else base + "t"
        if isinstance(arg, acts.Activation) and isinstance(arg.args[0], sp.Symbol):
            return f"{type(arg).__name__}_{base_name(arg.args[0])}"
        return "_".join(sorted(base_name(s).removesuffix("_prev") for s in time_symbols(arg)))

    def _late(self, arg) -> bool:
        return not self.cell.is_input(arg) and not (isinstance(arg, sp.Symbol) and ir.ref(arg).time == -1)

    def _forms(self, name: str, arg) -> list:
        """(name, quantity) of what a GEMM group binds: its fused matrix, its product (at t, kept),
        its argument (a kept ``tanh(h_{t-1})`` is the spec's buffer of that activation)."""
        forms = [(self.fused(name), None), (self.product(name), None), (self.product(name, "_t"), None),
                 (self.product(name, "_all"), None)]
        return forms + ([(self.arg_buffer(name), arg), (self.arg_buffer(name, "_all"), arg)] if self._late(arg) else [])

    def group(self, arg) -> str:
        """The GEMM group's name: the argument's, with ``_cat`` added while one of the group's
        names would be a spec name (``W_h`` in ``W_h h_{t-1}``)."""
        name = self.arg(arg)
        while any(self._taken(n, q) for n, q in self._forms(name, arg)):
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

    def bias(self, group: str, blocks) -> str:
        """The biases of a run of blocks added to a recurrent product: ``b_hifo``."""
        return self.own(f"b_{group}{run_name(blocks)}")

    def _atom(self, m) -> str:
        return f"{code_name(m.args[0])}_{self.arg(m.args[1])}"

    def atom(self, m) -> str:
        """The columns of one ``W a`` in its group's product: ``W_hi_h`` (``_W_x`` for ``W x_t``,
        beside the fused matrix ``W_x``)."""
        return self.own(self._atom(m), view=True, avoid=self._group_forms)

    # ---------------------------------------------------------------- blocks
    @staticmethod
    def block(gate, z) -> str:
        """A pre-activation block's name: its gate's key (``i``), else z's subscript."""
        return (ir.ref(gate).key if gate is not None else ir.ref(z).sub).replace(",", "_")

    @staticmethod
    def grad_block(param) -> str:
        """An extra gradient block's name, from its matrix: ``hn`` for W_{hn}."""
        return ir.ref(param).key.replace("W_", "").replace("_", "")

    def span(self, blocks) -> str:
        """The slice over consecutive blocks of z / dz: ``s_i``, ``s_ifo``."""
        return self.own(f"s_{run_name(blocks)}")

    def kspan(self, blocks) -> str:
        """The slice over consecutive blocks of a step of ``a``: ``k_i``, ``k_ifo``."""
        return self.own(f"k_{run_name(blocks)}")

    @staticmethod
    def z(block) -> str:
        return f"{Buffer.Z}_{block.name}_t"

    def dz(self, block) -> str:
        """``da_i_t`` for a pre-activation, ``dhn_t`` for an extra gradient block (derive's own)."""
        return f"{Buffer.DZ}_{block.name}_t" if block.z is not None else self.own(f"d{block.name}_t", view=True)

    def buffer(self, base: Buffer) -> str:
        """The code name of a sequence buffer: ``a``, or ``_a`` beside a parameter a."""
        return self.own(str(base))

    def run_view(self, base: str, blocks) -> str:
        """A view of a run of blocks of ``z``, ``dz``, ``a`` or ``da``: ``z_ifo``."""
        return self.own(f"{base}_{run_name(blocks)}", view=True)

    def cols(self, base: str, blocks) -> str:
        """A step's columns of consecutive blocks of ``z`` or ``dz``: ``dz_ifo_cols``."""
        return self.own(f"{base}_{run_name(blocks)}_cols", view=True)

    def row(self, base: Buffer) -> str:
        """Step t of ``z`` or ``dz``, every column: ``z_row``."""
        return self.own(f"{base}_row")

    whole = staticmethod(whole)

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
    def column_sum(buffer: str) -> str:
        """A buffer of ``g``'s columns summed over the steps and rows: ``dhW_all`` -> ``dhW_colsum``."""
        return f"{buffer.removesuffix('_all')}_colsum"

    @staticmethod
    def grad_step(param) -> str:
        return f"d{code_name(param)}_t"

    def transposed_product(self, matrix, g: str) -> str:
        """The buffer of ``W^T g``: ``W_hhT_dz_h_t``."""
        return self.own(f"{code_name(matrix)}T_{g.strip('_')}")

    @staticmethod
    def gradient_scratch(k: int) -> str:
        """A per-step buffer for the ``g`` of a ``W^T g`` that no buffer holds yet: ``_g0``."""
        return f"_g{k}"

    @staticmethod
    def pool_prefix(dim_key: str) -> str:
        """The prefix of the scratch buffers of one shape: ``_h0``, ``_h1`` for (B, H)."""
        return re.sub(r"\W", "", dim_key).lower()
