"""The kernel plan: every layout decision, made once from a derivation and then frozen.

* every ``MatVec(W, a)`` is grouped by its argument ``a`` (a ``Group``). The input group
  (``a = x_t``) becomes one GEMM for all time steps before the loop; a group whose argument
  is a state at ``t-1`` (``h_{t-1}``) is one GEMM per step; any other argument (GRU of Cho et
  al.: ``W_{hh} (r_t (.) h_{t-1})``) one GEMM per step once it is known.
* each pre-activation ``z_{v,t}`` is a column ``Block`` of one buffer ``z`` (T, B, sum of
  blocks), ordered so that each GEMM group covers a contiguous column range and gates with
  the same activation sit side by side (``columns``). Biases that add to an input GEMM are
  folded into it.
* what the backward pass reads of the forward pass is kept per step (``saved``); the names
  every step reads are fixed here (``step_names``, ``backward_names``), claimed through the
  ``Namer`` so that no name stands for two quantities; derive's own names yield to the spec's
  (a size a parameter's name takes, a matrix named H, is ``_H`` in the code: ``in_code``).

``make_plan`` builds it; the emitters (``forward``, ``backward``) only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Mapping

import sympy as sp

from derive import activations as acts
from derive.codegen import columns
from derive.codegen.ewise import CodegenError
from derive.codegen.names import Buffer, Namer, code_name, time_symbols
from derive.codegen.parts import Block, BlockKind, Group, GroupKind, SharedRun, backward_exprs, dim_of
from derive.errors import DeriveError
from derive.symbolic import ir
from derive.symbolic.bptt import Derivation
from derive.symbolic.cell import Cell
from derive.symbolic.printing import text as ir_text


@dataclass(frozen=True)
class Plan:
    cell: Cell
    d: Derivation
    groups: tuple  # (Group), in order of first use
    blocks: tuple  # (Block), column order of z / dz
    levels: Mapping  # assignment target -> level
    schedule: tuple  # assignments in forward order (level, then column)
    saved: Mapping  # expression to keep per step (time 0) -> its (T, B, dim) buffer (None: a kept product)
    output_all: str | None  # the buffer of an output kept only as the output (not read backward)
    folded: Mapping  # z symbol -> (bias params folded into the input GEMM)
    atom_block: Mapping  # MatVec atom -> the block holding its weight gradient's g
    shared_runs: tuple  # (SharedRun)
    inplace: bool  # the backward reads gate outputs only, never a gate's z
    gate_runs: Mapping  # level -> runs (tuples of blocks) of gates computed by one call
    in_loop: frozenset  # vector parameters whose gradient is accumulated in the backward loop
    step_names: Mapping  # quantities a step reads (forward and backward) -> code names
    step_buffers: Mapping  # forward targets with a per-step buffer of their own -> its name
    backward_names: Mapping  # step_names with the adjoints and dy
    adjoint_buffers: Mapping  # targets whose adjoint gets a per-step buffer in the loop -> its name
    all_t_names: Mapping  # quantities of every step -> their (steps, B, dim) arrays after the loop
    sizes: Mapping  # a size renamed in the code (a parameter takes its name) -> its code name: H -> _H
    namer: Namer = field(compare=False, repr=False)

    @property
    def w(self):
        """derive's fixed names as this kernel spells them (``names.WORDS``): ``p.w.T``."""
        return self.namer.w

    def group(self, name: str) -> Group:
        return next(g for g in self.groups if g.name == name)

    @property
    def input_group(self) -> Group | None:
        return next((g for g in self.groups if g.kind == GroupKind.INPUT), None)

    @property
    def zblocks(self) -> tuple:
        return tuple(b for b in self.blocks if b.kind == BlockKind.PREACTIVATION)

    @property
    def gate_blocks(self) -> tuple:
        """Blocks whose activation's output lives in ``a`` (gates that are not states)."""
        return tuple(b for b in self.blocks if b.in_a)

    @property
    def shared(self) -> tuple:
        """(block, recurrent group) for blocks whose z adds an input and a recurrent product."""
        return tuple((b, run.group) for run in self.shared_runs for b in run.blocks)

    def block_of(self, m) -> Block:
        """The block holding the gradient of the matrix product ``m``."""
        return self.atom_block[m]

    def width(self, blocks):
        return sum((b.dim for b in blocks), sp.Integer(0))

    def dim(self, expr):
        """The size (in code) of an elementwise expression: that of its first vector."""
        syms = list(time_symbols(expr))
        return str(dim_of(self.cell, syms[0]))


#: the clock's update mask of every step, (T, 1, H) (``kernelapi.clock_mask``)
MASK_ALL = "m_all"


def clock_mask(cell: Cell):
    """The IR symbol of the clock's update mask m_t, or None."""
    return cell.clock.mask if cell.clock is not None else None


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(dict(mapping))


def _kind(cell: Cell, arg) -> GroupKind:
    if arg == cell.input:
        return GroupKind.INPUT
    if cell.is_input(arg):
        return GroupKind.TAP
    times = {ir.ref(s).time for s in time_symbols(arg)}
    return GroupKind.RECURRENT if times == {-1} and isinstance(arg, sp.Symbol) else GroupKind.LATE


def _levels(cell: Cell) -> dict:
    level: dict = {}
    for a in cell.assignments:
        deps = [level.get(s, 0) for s in time_symbols(a.rhs) if ir.ref(s).time == 0 and s in level]
        late = [level[s] for m in a.rhs.atoms(ir.MatVec) for s in time_symbols(m.args[1])
                if ir.ref(s).time == 0 and s in level]
        level[a.target] = 1 + max(deps + late, default=-1)
    return level


def _group_atoms(cell: Cell, namer: Namer) -> dict:
    """group name -> (argument, kind, [MatVec atoms]), in the order the equations use them."""
    out: dict = {}
    for a in cell.assignments:
        for m in sorted(a.rhs.atoms(ir.MatVec), key=sp.default_sort_key):
            arg = m.args[1]
            name = namer.claim(namer.group(arg), arg, "group")
            atoms = out.setdefault(name, (arg, _kind(cell, arg), []))[2]
            if m not in atoms:
                atoms.append(m)
    return out


def _saved(cell: Cell, d: Derivation, blocks) -> dict:
    """Forward quantities the backward reads at time t: symbol or sub-expression -> name."""
    saved = {}
    gates = {b.gate for b in blocks if b.gate is not None}
    zs = {b.z for b in blocks if b.z is not None}
    gated = {b.z for b in blocks if b.gate is not None}  # z whose activation is a gate (kept as the gate)
    for e in backward_exprs(d):
        for s in time_symbols(e):
            r = ir.ref(s)
            if r.adjoint or r.time != 0 or s in gates or s in cell.states or s == cell.input or s in zs \
                    or s == clock_mask(cell):  # the clock's mask: the kernels keep it for every step (m_all)
                continue
            saved[s] = Namer.saved(s)
        for f in e.atoms(acts.Activation):
            if not f.args[0].free_symbols or f.args[0] in gated or _reads_next_step(f):
                continue
            saved[f] = Namer.saved(f)
        for m in e.atoms(ir.MatVec):
            saved[m] = None  # served from the saved group buffer
    return saved


def _reads_next_step(expr) -> bool:
    """An expression of step t+1 (``sigma(s_{t+1})``) is read only by a carried term, which
    the backward evaluates one step later, shifted to t, as part of the state's carry."""
    return any(ir.ref(s).time == 1 for s in time_symbols(expr))


def in_code(d: Derivation, namer: Namer) -> tuple[Derivation, dict]:
    """``d`` as the kernels spell its sizes: one whose name a parameter takes (a matrix H) is
    renamed (``_H``) in every shape; ``d`` itself when none is. Also {size: code name}."""
    cell = d.cell
    shapes = [*cell.dims.values(), *(n for p in cell.params.values() for n in p.shape)]
    sizes = {s for n in shapes for s in sp.sympify(n).free_symbols}
    rename = {s: sp.Symbol(namer.own(s.name), **s.assumptions0) for s in sizes if namer.own(s.name) != s.name}
    if not rename:
        return d, {}
    params = {k: replace(p, shape=tuple(sp.sympify(n).xreplace(rename) for n in p.shape))
              for k, p in cell.params.items()}
    cell = replace(cell, dims={k: sp.sympify(n).xreplace(rename) for k, n in cell.dims.items()}, params=params)
    return (replace(d, cell=cell, params=[replace(pg, param=params[pg.param.key]) for pg in d.params]),
            {s.name: r.name for s, r in rename.items()})


def _gradient_keys(cell: Cell) -> None:
    """``backward`` returns the input's gradient as ``grads["x"]`` whatever the spec calls the input
    (``kernelapi``): a state or parameter of a cell whose input has another name cannot be x."""
    if ir.ref(cell.input).key == "x":
        return
    for key, what, pos in [*((p.key, "parameter", p.pos) for p in cell.params.values()),
                           *((ir.ref(s).key, "state", cell.assignment(s).pos) for s in cell.states)]:
        if key == "x":
            raise DeriveError(f"a {what} named x: the kernels return the gradient of the input "
                              f"({ir_text(cell.input)}) as grads['x'] and of each {what} under its name; rename the "
                              f"{what} (or name the input x)", pos, cell.source or None)


def _check_taps(cell: Cell) -> None:
    """The kernels read an input tap x_{t-k} only in a product ``W x_{t-k}`` added into a pre-activation
    (its GEMM runs before the loop, over x shifted by k); any other use is a located limit."""
    for a in cell.assignments:
        direct = {t: sp.Integer(0) for t in sp.Add.make_args(a.rhs)
                  if a.aux and isinstance(t, ir.MatVec) and cell.is_input(t.args[1]) and t.args[1] != cell.input}
        left = sorted((s for s in time_symbols(a.rhs.xreplace(direct)) if s != cell.input and cell.is_input(s)),
                      key=sp.default_sort_key)
        if left:
            raise CodegenError(f"{ir_text(left[0])} is read other than in a matrix product W {ir_text(left[0])} "
                               f"added into a pre-activation; the kernels take an earlier input only so (write "
                               f"u_t = \\tanh(W {ir_text(left[0])} + ...) and read u_t)", a.pos)


def make_plan(d: Derivation) -> Plan:
    """Every layout decision of the kernels of ``d``."""
    _gradient_keys(d.cell)
    _check_taps(d.cell)
    namer = Namer(d.cell, d)
    d, sizes = in_code(d, namer)
    cell = d.cell
    drafts = _group_atoms(cell, namer)
    levels = _levels(cell)
    layout = columns.column_layout(cell, d, namer, drafts, levels)
    if not layout.blocks:
        raise CodegenError("no equation of the cell has a matrix product (W a): the kernels need one at least")
    saved = _saved(cell, d, layout.blocks)
    out_gate = next((b for b in layout.blocks if b.in_a and b.gate == cell.output), None)  # y lives in a
    output_all = None
    if cell.output not in cell.states and cell.output not in saved and out_gate is None:
        output_all = saved[cell.output] = Namer.saved(cell.output)

    # halving needs the groups and runs; the final blocks, groups and runs carry it
    inplace = columns.inplace(d, layout.blocks)
    groups = _groups(cell, drafts, layout.blocks, layout.atom_block, saved)
    runs = _shared_runs(layout.blocks, groups, layout.atom_block)
    halved = columns.halved(cell, runs, layout.atom_block, layout.folded) if inplace else set()
    blocks = tuple(replace(b, halved=b.index in halved) for b in layout.blocks)
    atom_block = {m: blocks[b.index] for m, b in layout.atom_block.items()}
    groups = _groups(cell, drafts, blocks, atom_block, saved)
    shared_runs = _shared_runs(blocks, groups, atom_block)
    schedule = tuple(sorted(cell.assignments, key=lambda a: (
        levels[a.target], next((b.index for b in blocks if b.gate == a.target or b.z == a.target), 1e9),
        layout.order[a.target])))

    step_names = _step_names(cell, namer, blocks, saved, groups)
    step_buffers = {a.target: code_name(a.target) for a in schedule if a.target not in cell.states
                    and a.target not in saved and not any(b.z == a.target or (b.in_a and b.gate == a.target)
                                                          for b in blocks)}
    backward_names = _backward_names(cell, namer, d.dy, blocks, step_names)
    adjoint_buffers = {ir.adjoint(a.target): Namer.adjoint(a.target) for a in reversed(schedule)
                       if not a.aux and ir.adjoint(a.target) not in backward_names}
    all_t_names = _all_t_names(cell, namer, blocks, saved)
    plan = Plan(cell=cell, d=d, groups=groups, blocks=blocks, levels=_frozen(levels), schedule=schedule,
                saved=_frozen(saved), output_all=output_all, folded=_frozen(layout.folded),
                atom_block=_frozen(atom_block), shared_runs=shared_runs, inplace=inplace,
                gate_runs=_frozen(columns.gate_runs(cell, blocks, schedule, levels)),
                in_loop=_in_loop(d, blocks, all_t_names), step_names=_frozen(step_names),
                step_buffers=_frozen(step_buffers), backward_names=_frozen(backward_names),
                adjoint_buffers=_frozen(adjoint_buffers), all_t_names=_frozen(all_t_names), sizes=_frozen(sizes),
                namer=namer)
    _claim_names(plan)
    return plan


def _groups(cell: Cell, drafts: dict, blocks, atom_block, saved) -> tuple:
    """The frozen groups: atoms in the column order of their gradient blocks."""
    return tuple(_group(cell, name, arg, kind, tuple(sorted(ms, key=lambda m: atom_block[m].index)), blocks,
                        atom_block, saved) for name, (arg, kind, ms) in drafts.items())


def _shared_runs(blocks, groups, atom_block) -> tuple:
    return tuple(SharedRun(g, tuple(bs), first) for g, bs, first in columns.shared_runs(blocks, groups, atom_block))


def _group(cell, name, arg, kind, atoms, blocks, atom_block, saved) -> Group:
    cols = tuple(b for b in blocks if name in b.groups)
    idx = [b.index for b in cols]
    contiguous = idx == list(range(idx[0], idx[0] + len(idx))) if idx else False
    arg_dim = str(dim_of(cell, arg) if arg == cell.input else cell.params[ir.ref(atoms[0].args[0]).key].shape[1])
    return Group(name=name, arg=arg, kind=kind, atoms=atoms, cols=cols, contiguous=contiguous,
                 width=sum((atom_block[m].dim for m in atoms), sp.Integer(0)), arg_dim=arg_dim,
                 kept=any(m in saved for m in atoms),
                 keeps_arg=kind == GroupKind.LATE and Namer.arg_buffer(name, "_all") not in saved.values())


def _step_names(cell: Cell, namer: Namer, blocks, saved: dict, groups) -> dict:
    """IR symbols at time t -> code names, for the forward and backward steps."""
    names = {}
    for prm in cell.params.values():
        names[prm.symbol] = code_name(prm.symbol)
    for s in cell.states:
        names[s] = code_name(s)
        names[ir.at(s, -1)] = code_name(ir.at(s, -1))
    names[cell.input] = code_name(cell.input)
    if cell.clock is not None:
        names[cell.clock.mask] = code_name(cell.clock.mask)
    for b in blocks:
        if b.z is not None:
            names[b.z] = Namer.z(b)
            if b.gate is not None:
                names[b.gate] = code_name(b.gate)
    for e, n in saved.items():
        if n is not None:
            names[e] = Namer.at_t(n)
    for g in groups:
        for m in g.atoms:
            names[m] = namer.atom(m)
    return names


def _backward_names(cell: Cell, namer: Namer, dy, blocks, step_names: dict) -> dict:
    names = dict(step_names)
    for s in cell.states:
        names[ir.adjoint(s)] = Namer.adjoint(s)
    for b in blocks:
        if b.z is not None:
            names[ir.adjoint(b.z)] = namer.dz(b)
            if b.in_a:
                names[ir.adjoint(b.gate)] = Namer.adjoint(b.gate)
    names[dy] = namer.w.dy_t
    return names


def _claim_names(p: Plan) -> None:
    """Every name the two generated functions bind from the cell's quantities, claimed for
    one quantity each (``Namer.claim``): ``X_t`` is X at step t, ``X_all`` X at every step."""
    namer, cell = p.namer, p.cell
    tup = sp.Tuple
    for space, names in (("forward", {**p.step_names, **p.step_buffers}),
                         ("backward", {**p.backward_names, **p.adjoint_buffers})):
        def claim(name, quantity, space=space):
            namer.claim(name, quantity, space)

        namer.claim_all(names, space)
        for s in cell.states:
            claim(Namer.states(s), s)
        if cell.clock is not None:
            claim(MASK_ALL, cell.clock.mask)
        for e, n in p.saved.items():
            if n is not None:
                claim(n, e)
        for b in p.blocks:
            claim(namer.span([b]), tup(b.grad))
            if b.z is not None:
                claim(Namer.whole(Namer.z(b)), b.z)
            if b.in_a:
                claim(namer.kspan([b]), tup(b.grad))
                claim(Namer.whole(code_name(b.gate)), b.gate)
        for g in p.groups:
            product = tup(*g.atoms)
            claim(Namer.fused(g.name), product)
            claim(Namer.product(g.name), product)
            claim(Namer.product(g.name, "_t"), product)
            if g.kept:
                claim(Namer.product(g.name, "_all"), product)
                for m in g.atoms:
                    claim(Namer.whole(namer.atom(m)), m)
            if g.kind == GroupKind.LATE:
                claim(Namer.arg_buffer(g.name), g.arg)
                claim(Namer.arg_buffer(g.name, "_all"), g.arg)
        for run in p.shared_runs:
            claim(namer.bias(run.group.name, run.blocks), tup(*[b.z for b in run.blocks]))
        for run in (r for runs in p.gate_runs.values() for r in runs if len(r) > 1):
            claim(namer.span(run), tup(*[b.grad for b in run]))
            claim(namer.kspan(run), tup(*[b.grad for b in run]))
            for base, quantity in ((Buffer.Z, tup(*[b.z for b in run])), (Buffer.A, tup(*[b.gate for b in run])),
                                   (Buffer.DZ, tup(*[b.grad for b in run])),
                                   (Buffer.DA, tup(*[ir.adjoint(b.gate) for b in run]))):
                claim(namer.run_view(base, run), quantity)
                claim(Namer.whole(namer.run_view(base, run)), quantity)
    for b in p.blocks:
        namer.claim(Namer.whole(namer.dz(b)), b.grad, "backward")
    for s in cell.states:
        namer.claim(Namer.carry(s), ir.adjoint(ir.at(s, -1)), "backward")
    for pg in p.d.params:
        if pg.param.key in p.in_loop:
            namer.claim(Namer.grad_sum(pg.param.symbol), ir.adjoint(pg.param.symbol), "backward")
            namer.claim(Namer.grad_step(pg.param.symbol), ir.adjoint(pg.param.symbol), "backward")


def _all_t_names(cell: Cell, namer: Namer, blocks, saved: dict) -> dict:
    """Quantities kept for every step -> their (steps, B, dim) arrays after the loop."""
    out, w = {}, namer.w
    for b in blocks:
        out[b.grad] = f"{w.dz}[lo:, :, {namer.span([b])}]"
    for s in cell.states:
        n = Namer.states(s)
        out[s] = f"{n}[lo + 1:]"
        out[ir.at(s, -1)] = f"{n}[lo:{w.T}]"
    for e, n in saved.items():
        if n:
            out[e] = f"{n}[lo:]"
    if cell.clock is not None:
        out[cell.clock.mask] = f"{MASK_ALL}[lo:]"
    for b in blocks:
        if b.z is None:
            continue
        if b.in_a:
            out[b.gate] = f"{w.a}[lo:, {namer.kspan([b])}].reshape(steps, {w.B}, {b.dim})"
        out[b.z] = f"{w.z}[lo:, :, {namer.span([b])}]"
    return out


def _in_loop(d: Derivation, blocks, all_t_names: dict) -> frozenset:
    """Vector parameters whose gradient reads per-step adjoints: accumulated in the loop."""
    out = set()
    for pg in d.params:
        if pg.param.is_matrix or all(any(b.grad == g for b in blocks) for g, _ in pg.terms):
            continue
        expr = sp.Add(*[g for g, _ in pg.terms])
        if any(ir.is_ir(s) and ir.ref(s).time is not None and s not in all_t_names for s in expr.free_symbols):
            out.add(pg.param.key)
    return frozenset(out)

