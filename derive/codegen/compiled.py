"""The compiled backend: the whole time loop of forward and of backward in one numba function each.

Generated from the same frozen plan as the NumPy kernel (``plan.make_plan``): its GEMM groups (one
fused matrix per argument; the input's product of every step one GEMM before the loop), its
schedule of equations and its names. What differs is the step: instead of ~25 NumPy calls per
step, ``_forward_steps`` and ``_backward_steps`` run every step in one ``@njit`` function, with one
statement per equation inside explicit loops over batch rows (``_b``) and units (``_j``); the
per-step GEMMs are ``np.dot`` on contiguous arrays (BLAS). Equations of one size that follow each
other share one loop nest; a GEMM whose argument the step computes closes it.

Layout (the compiled module's own, simpler than the NumPy kernel's): every equation's result is
kept for every step (``i_all`` (T, B, H); a state ``h_all`` (T + 1, B, H), its initial value
first); each group's product ``hW_all`` (T, B, width) and, in the backward, its gradient
``dhW_all`` (the ``g`` of each ``W a`` in the group's columns), so that after the loop every weight
gradient is one GEMM per group and ``dx`` one GEMM, as in the NumPy kernel. Vector parameters'
gradients are summed inside the loop (``db_i_sum``).

``Compiled(plan)`` decides and prints; ``limits(plan)`` names what it cannot express yet (a
clock, an input tap x_{t-k}, ``mean``, an activation without a scalar form): the compiled backend
refuses such a cell with that name, never a silently wrong kernel.
"""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.codegen.ewise import CodegenError
from derive.codegen.frame import sizes
from derive.codegen.names import Namer, code_name, time_symbols
from derive.codegen.parts import GroupKind, backward_exprs, dim_of
from derive.codegen.plan import Plan
from derive.codegen.scalar import Grouped, ScalarPrinter, bare
from derive.symbolic import ir
from derive.symbolic.printing import text as ir_text

#: the loop indices of the generated functions (a spec name never starts with ``_``)
T_IDX, B_IDX, J_IDX = "_t", "_b", "_j"
#: activations applied to a step's whole block by one shared compiled function (``derive.jitmath``):
#: the statement writes the pre-activation, the call after its loop nest replaces it. Measured: each
#: cell's first compile 2-3x shorter than with the activation's arithmetic inlined into every statement,
#: the run time 1-5% longer (the two LSTM modules side by side at the bench's sizes), the same bits
ROWS = {"tanh": "_jm.tanh_rows", "sigmoid": "_jm.sigmoid_rows"}
#: equations of one size share a loop nest (True), or each equation has its own (False). Measured: one
#: nest per equation is 2-3x faster, because LLVM vectorizes a loop over units only when it can check at
#: run time that its arrays do not overlap, and gives up past a few arrays (a fused LSTM step writes 8)
FUSE = False


def limits(plan: Plan) -> str | None:
    """What the compiled emitter cannot express in this plan, as a message part, or None."""
    cell = plan.cell
    if cell.clock is not None:
        return "a clock (the update mask m_t of a Clockwork RNN)"
    if any(g.kind == GroupKind.TAP for g in plan.groups):
        return "an input tap x_{t-k} (a filter wider than one step)"
    exprs = [a.rhs for a in cell.assignments]
    d = plan.d
    exprs += [t for a in d.adjoints for t in a.terms] + [t for c in d.carries.values() for t in c.terms]
    exprs += list(d.input_grad.terms) + [g for pg in d.params for g, _ in pg.terms]
    for e in exprs:
        if e.atoms(ir.Mean):
            return "mean(...) (a vector-wide average over the units, as in layer normalisation)"
    for pg in d.params:
        if len(pg.param.shape) not in (1, 2):
            return f"the parameter {pg.param.key} of shape {pg.param.shape} (only vectors and matrices)"
        if pg.param.is_matrix:
            for g, arg in pg.terms:
                if not any(m.args[0] == pg.param.symbol and m.args[1] == arg and plan.block_of(m).grad == g
                           for grp in plan.groups for m in grp.atoms):
                    return f"the gradient of {pg.param.key} ({ir_text(g)} against {ir_text(arg)})"
    inp = plan.input_group
    for t in d.input_grad.terms:
        if isinstance(t, ir.MatVecT) and not (inp is not None and _atom_of(inp, t, plan) is not None):
            return f"the input's gradient term {ir_text(t)}"
    return None


def _atom_of(group, mt, plan: Plan):
    """The atom ``W a`` of ``group`` whose transposed product with its block's gradient is ``mt``."""
    W, g = mt.args
    return next((m for m in group.atoms if m.args[0] == W and plan.block_of(m).grad == g), None)


class Nest:
    """Statements of one size at (``_b``, ``_j``), printed inside one loop nest."""

    def __init__(self, dim: str, batch: str):
        self.dim, self.batch = dim, batch
        self.lines: list[str] = []
        self.local: dict = {}  # quantity -> its scalar in this nest

    def text(self) -> list[str]:
        if not self.lines:
            return []
        return [f"for {B_IDX} in range({self.batch}):", f"    for {J_IDX} in range({self.dim}):"] + \
            ["        " + ln for ln in self.lines]


class Compiled:
    """The lines of the compiled module's functions for one plan."""

    def __init__(self, plan: Plan):
        self.p = plan
        self.cell = plan.cell
        self.d = plan.d
        self.w = plan.w
        self.offsets = {}  # atom -> (group, column offset in the group's product)
        for g in plan.groups:
            off = sp.Integer(0)
            for m in g.atoms:
                self.offsets[m] = (g, off)
                off += plan.block_of(m).dim
        self.widths = {g.name: sum((plan.block_of(m).dim for m in g.atoms), sp.Integer(0)) for g in plan.groups}
        self.targets = [a.target for a in plan.schedule]
        self.vector_params = [p for p in self.cell.params.values() if not p.is_matrix]
        #: activations of one vector the backward reads (``tanh(c_t)``): computed once, kept for every step
        #: pre-activations written into their one reader (``i_t = sigma(b_i + hW + xW)``): no pass of their
        #: own, no buffer; those of aux targets nothing else reads (not the backward, not a GEMM argument)
        read_back = {s for e in backward_exprs(plan.d) for s in time_symbols(e)}
        late = [g.arg for g in plan.groups if g.kind == GroupKind.LATE]
        readers = {a.target: [b for b in plan.schedule if a.target in b.rhs.free_symbols] for a in plan.schedule}
        self.inlined = {a.target: a.rhs for a in plan.schedule
                        if a.aux and a.target not in read_back and a.target not in self.cell.states
                        and a.target != self.cell.output and len(readers[a.target]) == 1
                        and not any(a.target in e.free_symbols for e in late)}
        self.targets = [t for t in self.targets if t not in self.inlined]
        #: a late GEMM's argument (tanh(h_{t-1}), r_t (.) h_{t-1}) -> its buffer of every step, which the
        #: backward reads too (the argument is kept there, not among the saved activations)
        self.late_args = {g.arg: Namer.arg_buffer(g.name, "_all") for g in plan.groups if g.kind == GroupKind.LATE}
        self.saved = {f: n for f, n in plan.saved.items()
                      if n and isinstance(f, acts.Activation) and f not in self.late_args}

    # ------------------------------------------------------------ names
    def all_name(self, sym) -> str:
        """Every step of a forward quantity: ``i_all`` (T, B, dim); a state's ``h_all`` (T + 1, ...)."""
        return Namer.states(sym) if sym in self.cell.states else Namer.whole(code_name(sym))

    def step_index(self, sym) -> str:
        """The index of step t in ``all_name(sym)`` (a state's array holds its initial value first)."""
        return f"{T_IDX} + 1" if sym in self.cell.states else T_IDX

    @staticmethod
    def grad_all(group) -> str:
        """The gradient of a group's product at every step: ``dhW_all``."""
        return f"d{Namer.product(group.name, '_all')}"

    @staticmethod
    def transposed(group) -> str:
        return f"{Namer.fused(group.name)}T"

    def dim(self, sym) -> str:
        return str(dim_of(self.cell, sym))

    def size_names(self) -> list[str]:
        """The sizes the loops read, as the wrapper names them (``H``, ``I``, ``P``)."""
        dims = {self.w.I}
        for p in self.cell.params.values():
            dims |= {str(n) for n in p.shape}
        return sorted(dims)

    # ------------------------------------------------------------ forward
    def forward_args(self) -> list[str]:
        cell = self.cell
        args = [self.w.T, self.w.B, *self.size_names(), self.w.x]
        args += [code_name(p.symbol) for p in self.vector_params]
        for g in self.p.groups:
            if g.kind != GroupKind.INPUT:
                args.append(Namer.fused(g.name))
            args.append(Namer.product(g.name, "_all"))
            if g.kind == GroupKind.LATE:
                args.append(Namer.arg_buffer(g.name, "_all"))
        args += [self.all_name(s) for s in cell.states]
        args += [self.all_name(t) for t in self.targets if t not in cell.states]
        args += [self.saved[f] for f in self.saved_order()]
        return args

    def saved_order(self) -> list:
        return sorted(self.saved, key=sp.default_sort_key)

    def saved_at(self, f) -> str:
        return f"{self.saved[f]}[{T_IDX}, {B_IDX}, {J_IDX}]"

    def late_arg_at(self, arg) -> str:
        return f"{self.late_args[arg]}[{T_IDX}, {B_IDX}, {J_IDX}]"

    def forward_wrapper(self) -> list[str]:
        """The body of ``_forward`` before and after the call of ``_forward_steps``."""
        p, cell, w = self.p, self.cell, self.w
        L = sizes(p)
        dims = ", ".join(f"{ir.ref(s).key!r}: {dim_of(cell, s)}" for s in cell.states)
        L.append(f"states0 = _interop.initial_states(states0, {{{dims}}}, {w.B}, dtype)")
        L.append("# fused weights: one matrix per GEMM argument, the products' columns in this order")
        for g in p.groups:
            ws = ", ".join(code_name(m.args[0]) for m in g.atoms)
            L.append(f"{Namer.fused(g.name)} = np.ascontiguousarray(np.concatenate([{ws}]).T)  "
                     f"# ({g.arg_dim}, {' | '.join(ir_text(m) for m in g.atoms)})")
        for g in p.groups:
            n = Namer.product(g.name, "_all")
            L.append(f"{n} = WORKSPACE.empty({n!r}, ({w.T}, {w.B}, {self.widths[g.name]}), dtype)")
            if g.kind == GroupKind.INPUT:
                L.append(f"np.matmul({w.x}.reshape({w.T} * {w.B}, {w.I}), {Namer.fused(g.name)}, "
                         f"out={n}.reshape({w.T} * {w.B}, {self.widths[g.name]}))  # every step in one GEMM")
            if g.kind == GroupKind.LATE:
                a = Namer.arg_buffer(g.name, "_all")
                L.append(f"{a} = WORKSPACE.empty({a!r}, ({w.T}, {w.B}, {g.arg_dim}), dtype)  "
                         f"# GEMM argument {ir_text(g.arg)}")
        for s in cell.states:
            n = self.all_name(s)
            L.append(f"{n} = WORKSPACE.empty({n!r}, ({w.T} + 1, {w.B}, {dim_of(cell, s)}), dtype)")
            L.append(f"{n}[0] = states0[{ir.ref(s).key!r}]")
        for t in self.targets:
            if t not in cell.states:
                n = self.all_name(t)
                L.append(f"{n} = WORKSPACE.empty({n!r}, ({w.T}, {w.B}, {dim_of(cell, t)}), dtype)")
        for f in self.saved_order():
            L.append(f"{self.saved[f]} = WORKSPACE.empty({self.saved[f]!r}, ({w.T}, {w.B}, {p.dim(f)}), dtype)  "
                     f"# {ir_text(f)}, kept for the backward pass")
        L.append("with _api.one_blas_thread():  # the steps' GEMMs on one BLAS thread")
        L.append(f"    _forward_steps({', '.join(self.forward_args())})")
        y = f"{self.all_name(cell.output)}[1:]" if cell.output in cell.states else self.all_name(cell.output)
        keep = [w.x] + [Namer.fused(g.name) for g in p.groups] + [a for a in self.forward_args()
                                                                  if a.endswith("_all")]
        keep = list(dict.fromkeys(keep))
        L.append("cache = {" + ", ".join(f"{k!r}: {k}" for k in keep) + "}")
        states = ", ".join(f"{ir.ref(s).key!r}: {self.all_name(s)}[{w.T}]" for s in cell.states)
        L.append(f"return {y}, {{{states}}}, cache")
        return L

    def forward_steps(self) -> list[str]:
        """The body of ``_forward_steps``: the loop over steps."""
        p, cell = self.p, self.cell
        body: list[str] = []
        for g in p.groups:
            if g.kind == GroupKind.RECURRENT:
                body.append(f"np.dot({self.all_name(ir.at(g.arg, 0))}[{T_IDX}], {Namer.fused(g.name)}, "
                            f"{Namer.product(g.name, '_all')}[{T_IDX}])  # " + " | ".join(ir_text(m) for m in g.atoms))
        nest = None
        done = set()
        pending = self.saved_order()
        for a in (a for a in p.schedule if a.target not in self.inlined):
            rhs = self.expanded(a.rhs)
            for f in [f for f in pending if f in rhs.atoms(acts.Activation)]:
                pending.remove(f)
                nest = self._saved_statement(f, nest, body)
            for g in p.groups:
                if g.kind == GroupKind.LATE and g.name not in done and any(m in rhs.atoms(ir.MatVec) for m in g.atoms):
                    done.add(g.name)
                    body += nest.text() if nest else []
                    arg = Nest(g.arg_dim, self.w.B)
                    arg.lines.append(f"# the argument of {', '.join(ir_text(m) for m in g.atoms)}")
                    arg.lines.append(f"{Namer.arg_buffer(g.name, '_all')}[{T_IDX}, {B_IDX}, {J_IDX}] = "
                                     + self.fprint(g.arg, arg))
                    body += arg.text()
                    body.append(f"np.dot({Namer.arg_buffer(g.name, '_all')}[{T_IDX}], {Namer.fused(g.name)}, "
                                f"{Namer.product(g.name, '_all')}[{T_IDX}])")
                    nest = None
            dim = self.dim(a.target)
            if nest is None or nest.dim != dim or not FUSE:
                body += nest.text() if nest else []
                nest = Nest(dim, self.w.B)
            local = code_name(a.target)
            nest.lines.append(f"# {ir_text(a.target)} = {ir_text(a.rhs)}" + "".join(
                f"; {ir_text(z)} = {ir_text(rhs)}" for z, rhs in self.inlined.items() if z in a.rhs.free_symbols))
            if self._by_block(a.rhs, self.all_name(a.target), self.step_index(a.target), nest, body):
                nest = None
                continue
            nest.lines.append(f"{self.all_name(a.target)}[{self.step_index(a.target)}, {B_IDX}, {J_IDX}] = "
                              + (f"{local} = " if FUSE else "") + self.fprint(a.rhs, nest))
            nest.local[a.target] = local
        for f in pending:  # read by the backward only
            nest = self._saved_statement(f, nest, body)
        body += nest.text() if nest else []
        return [f"for {T_IDX} in range({self.w.T}):"] + ["    " + ln for ln in body]

    def expanded(self, expr):
        """``expr`` with the inlined pre-activations written out (what its statement reads)."""
        while any(z in expr.free_symbols for z in self.inlined):
            expr = expr.xreplace(self.inlined)
        return expr

    def _saved_statement(self, f, nest, body):
        """``tanh_c_all[t, b, j] = tanh_c_t = tanh(c_t)``, in ``nest`` if it has f's size; the nest."""
        dim = self.p.dim(f)
        if nest is None or nest.dim != dim or not FUSE:
            body += nest.text() if nest else []
            nest = Nest(dim, self.w.B)
        local = Namer.at_t(self.saved[f])
        nest.lines.append(f"# {ir_text(f)}, kept for the backward pass")
        if self._by_block(f, self.saved[f], T_IDX, nest, body):
            return None
        nest.lines.append(f"{self.saved_at(f)} = " + (f"{local} = " if FUSE else "")
                          + self.fprint(f.func(f.args[0]), nest, own=False))
        nest.local[f] = local
        return nest

    def _by_block(self, f, array: str, index: str, nest: Nest, body: list[str]) -> bool:
        """When ``f`` is an activation of ``ROWS``: its argument into ``array[index, _b, _j]`` in ``nest``,
        then, after the nest, ``_jm.tanh_rows(array[index])`` over the step's block (True); else False."""
        rows = ROWS.get(type(f).__name__) if isinstance(f, acts.Activation) else None
        if rows is None:
            return False
        nest.lines.append(f"{array}[{index}, {B_IDX}, {J_IDX}] = " + bare(self.fprint(f.args[0], nest)))
        body += nest.text() + [f"{rows}({array}[{index}])"]
        return True

    def fprint(self, expr, nest: Nest, own: bool = True) -> str:
        """``expr`` at (t, b, j) in the forward step."""
        cell = self.cell

        def leaf(e):
            if e in nest.local and (own or e != expr):
                return nest.local[e]
            if e in self.saved and (own or e != expr):
                return self.saved_at(e)
            if e in self.inlined:
                return Grouped(self.fprint(self.inlined[e], nest))
            if isinstance(e, ir.MatVec):
                return self.product_at(e)
            if isinstance(e, sp.Symbol) and ir.is_ir(e):
                r = ir.ref(e)
                if r.time is None:
                    return self.param_at(e)
                if e == cell.input:
                    return f"{self.w.x}[{T_IDX}, {B_IDX}, {J_IDX}]"
                if r.time == -1 and ir.at(e, 0) in cell.states:
                    return f"{self.all_name(ir.at(e, 0))}[{T_IDX}, {B_IDX}, {J_IDX}]"
                if r.time == 0 and not r.adjoint and e in self.targets:
                    return f"{self.all_name(e)}[{self.step_index(e)}, {B_IDX}, {J_IDX}]"
                raise CodegenError(f"the forward step cannot read {ir_text(e)}")
            return None
        return ScalarPrinter(leaf).text(expr)

    def product_at(self, m) -> str:
        g, off = self.offsets[m]
        col = J_IDX if off == 0 else f"{off} + {J_IDX}"
        return f"{Namer.product(g.name, '_all')}[{T_IDX}, {B_IDX}, {col}]"

    def param_at(self, sym) -> str:
        prm = self.cell.params[ir.ref(sym).key]
        if prm.is_matrix:
            raise CodegenError(f"the matrix {ir_text(sym)} read elementwise")
        return f"{code_name(sym)}[{J_IDX}]"
