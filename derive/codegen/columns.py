"""The column layout of ``z`` / ``dz``: which block goes where, and what each step does with it.

Blocks are ordered so that each GEMM group covers a contiguous column range and gates with the
same activation sit side by side: ``z_t += h_{t-1} W_h`` is one add and ``i, f, o = sigma(z_i,
z_f, z_o)`` one call. The decisions here read only the cell, its derivation and the groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive import activations as acts
from derive.codegen.ewise import OUTPUT_DERIVATIVE, CodegenError
from derive.codegen.names import Namer
from derive.codegen.parts import Block, BlockKind, GroupKind, backward_exprs, dim_of, terms
from derive.symbolic import ir
from derive.symbolic.bptt import Derivation
from derive.symbolic.cell import Cell
from derive.symbolic.printing import text as ir_text

#: (z adds the input product, z adds a recurrent product) -> rank of its block in the column order
CATEGORY = {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}
#: the kinds of group whose products add straight into a pre-activation before its own terms
DIRECT = (GroupKind.INPUT, GroupKind.RECURRENT, GroupKind.TAP)


@dataclass(frozen=True)
class ColumnLayout:
    blocks: tuple  # (Block) in column order (``halved`` still unset)
    atom_block: dict  # MatVec atom -> the block holding its weight gradient's g
    folded: dict  # z symbol -> (bias params folded into the input GEMM)
    order: dict  # assignment target -> its position in the cell's equations


def column_layout(cell: Cell, d: Derivation, namer: Namer, groups: dict, levels: dict) -> ColumnLayout:
    """The blocks of ``groups`` (name -> (argument, kind, atoms)) in column order."""
    aux = [a for a in cell.assignments if a.aux]
    aux_targets = {a.target for a in aux}
    gate_of = {a.rhs.args[0]: a for a in cell.assignments
               if isinstance(a.rhs, acts.Activation) and a.rhs.args[0] in aux_targets}
    input_name = next((n for n, (_, kind, _) in groups.items() if kind == GroupKind.INPUT), None)
    direct = {}  # z -> {group name: atom}: the GEMM atoms that add directly to each z
    for a in aux:
        direct[a.target] = {}
        for term in terms(a.rhs):
            if isinstance(term, ir.MatVec):
                gname = namer.group(term.args[1])
                if groups[gname][1] in DIRECT:
                    direct[a.target].setdefault(gname, term)

    def category(z):
        has_x = input_name is not None and input_name in direct[z]
        return CATEGORY[has_x, any(groups[n][1] == GroupKind.RECURRENT for n in direct[z])]

    def act_name(z):
        return type(gate_of[z].rhs).__name__ if z in gate_of else "~"

    order = {a.target: k for k, a in enumerate(cell.assignments)}
    zs = sorted((a.target for a in aux), key=lambda z: (category(z), levels[z] + 1, act_name(z), order[z]))
    drafts = []
    for z in zs:
        gate = gate_of.get(z)
        drafts.append({"name": Namer.block(gate.target if gate else None, z), "kind": BlockKind.PREACTIVATION,
                       "dim": dim_of(cell, z), "z": z, "act": act_name(z) if gate else None,
                       "gate": gate.target if gate else None, "grad": ir.adjoint(z), "groups": []})
    # weight-gradient terms (g, a): the block holding g, per group
    by_grad = {b["grad"]: b for b in drafts}
    for pg in d.params:
        for g, arg in pg.terms:
            if arg is None:
                continue
            if g not in by_grad:
                by_grad[g] = {"name": Namer.grad_block(pg.param.symbol), "kind": BlockKind.GRADIENT,
                              "dim": cell.params[pg.param.key].shape[0], "grad": g, "groups": []}
                drafts.append(by_grad[g])
            gname = namer.group(arg)
            if gname not in by_grad[g]["groups"]:
                by_grad[g]["groups"].append(gname)
    atom_grad = _atom_gradients(cell, d)
    blocks, offset = [], sp.Integer(0)
    for k, b in enumerate(drafts):
        gate = b.get("gate")
        blocks.append(Block(name=b["name"], kind=b["kind"], index=k, dim=b["dim"], start=offset, grad=b["grad"],
                            groups=tuple(b["groups"]), z=b.get("z"), act=b.get("act"), gate=gate,
                            in_a=gate is not None and gate not in cell.states))
        namer.claim(b["name"], b["grad"] if b.get("z") is None else b["z"], "block")
        offset = offset + b["dim"]
    index = {b.grad: b for b in blocks}
    folded = {}  # input-GEMM bias folding: a z whose sum has x and bias terms
    for z in zs:
        if input_name is not None and input_name in direct[z]:
            folded[z] = tuple(t for t in terms(cell.assignment(z).rhs)
                              if isinstance(t, sp.Symbol) and ir.ref(t).time is None)
    return ColumnLayout(tuple(blocks), {m: index[g] for m, g in atom_grad.items()}, folded, order)


def _uses(cell: Cell, m) -> tuple[list, object]:
    """The equations (as written) that read the product ``m``, and where the last one is."""
    found = [a for a in cell.assignments if a.rhs.has(m)]
    written = [next((b for b in cell.assignments if not b.aux and b.pos == a.pos), a) for a in found]
    return list(dict.fromkeys(a.source or f"{ir_text(a.target)} = {ir_text(a.rhs)}" for a in written)), \
        (found[-1].pos if found else None)


def _atom_gradients(cell: Cell, d: Derivation) -> dict:
    """Each product ``W a`` -> the gradient ``g`` its weight gradient ``g a^T`` reads: one per product,
    and one product per argument and gradient (a located CodegenError names the limit)."""
    atom_grad, by_slot = {}, {}
    for pg in d.params:
        for g, arg in pg.terms:
            if arg is None:
                continue
            m = ir.MatVec(pg.param.symbol, arg)
            if atom_grad.setdefault(m, g) != g:
                eqs, pos = _uses(cell, m)
                raise CodegenError(f"the product {ir_text(m)} feeds two pre-activations ({'; '.join(eqs)}); the "
                                   f"kernels need a matrix product per use: name the product as a vector of its own "
                                   f"(u_t = {ir_text(m)}) and read u_t in each", pos)
            other = by_slot.setdefault((arg, g), m)
            if other != m:
                eqs, pos = _uses(cell, m)
                raise CodegenError(f"{ir_text(other)} and {ir_text(m)} multiply the same vector into one "
                                   f"pre-activation ({'; '.join(eqs)}); the kernels take one matrix per vector "
                                   f"there: write one matrix for both", pos)
    return atom_grad


def runs(items: list, key) -> list[list]:
    """Maximal runs of consecutive items with equal ``key`` (None never joins)."""
    out: list[list] = []
    for it in items:
        k = key(it)
        if out and k is not None and key(out[-1][-1]) == k:
            out[-1].append(it)
        else:
            out.append([it])
    return out


def shared_runs(blocks, groups, atom_block) -> list:
    """(recurrent group, blocks, column offset in the group's product) per run of blocks whose z
    adds an input and a recurrent product (so a step adds them and their biases at once)."""
    shared = []
    for b in blocks:
        if b.kind != BlockKind.PREACTIVATION:
            continue
        rec = [g for g in groups if g.kind == GroupKind.RECURRENT and g.name in b.groups]
        if rec and any(g.kind == GroupKind.INPUT and g.name in b.groups for g in groups):
            shared.append((b, rec[0]))
    out = []
    for run in runs(shared, key=lambda bg: bg[1].name):
        g = run[0][1]
        first_block = run[0][0]
        off, first = sp.Integer(0), None
        for m in g.atoms:
            blk = atom_block[m]
            if blk.index == first_block.index:
                first = off
            off += blk.dim
        out.append((g, [b for b, _ in run], first))
    return out


def inplace(d: Derivation, blocks) -> bool:
    """The backward pass reads gate outputs only, never a gate's pre-activation z."""
    gates = [b for b in blocks if b.gate is not None]
    if any(b.act not in OUTPUT_DERIVATIVE for b in gates):
        return False
    read = set()
    for e in backward_exprs(d):
        read |= e.free_symbols
    return not any(b.z in read for b in gates)


def halved(cell: Cell, runs_, atom_block, folded) -> set:
    """Sigmoid gates whose z is exactly W_x x + W_h h + b (indices of their blocks). Their
    columns of the fused weights and biases are scaled by 1/2 in the forward pass, so the
    GEMMs give z/2 and sigma(z) = (1 + tanh(z/2))/2 costs one pass less. Exact: scaling by
    1/2 only changes the exponent. Only when the backward reads gate outputs, not z (the
    caller asks ``inplace`` first)."""
    out = set()
    for run in runs_:
        g = run.group
        for b in run.blocks:
            if b.act != "sigmoid" or b.gate in cell.states:
                continue
            gemm = {m for m in g.atoms if atom_block[m].index == b.index}
            if all(t in gemm or t in folded.get(b.z, ()) or (isinstance(t, ir.MatVec) and t.args[1] == cell.input)
                   for t in terms(cell.assignment(b.z).rhs)):
                out.add(b.index)
    return out


def gate_runs(cell: Cell, blocks, schedule, levels) -> dict:
    """level -> the runs of gates computed at that level, each run by one call: adjacent
    columns, one activation with the same parameters, one width, all halved or none (a gate
    that is a state stands alone)."""
    gates = {b.gate: b for b in blocks if b.gate is not None}
    out = {}
    for lev in sorted({levels[a.target] for a in schedule}):
        at = sorted((gates[a.target] for a in schedule if levels[a.target] == lev and not a.aux
                     and a.target in gates), key=lambda b: b.index)
        parts: list[list] = []
        for b in at:
            if parts and _joins(cell, parts[-1][-1], b):
                parts[-1].append(b)
            else:
                parts.append([b])
        out[lev] = tuple(tuple(p) for p in parts)
    return out


def _joins(cell: Cell, pb, b) -> bool:
    fa, fb = cell.assignment(pb.gate).rhs, cell.assignment(b.gate).rhs
    return (b.index == pb.index + 1 and type(fb) is type(fa) and b.in_a and pb.in_a
            and fb.exact_params() == fa.exact_params() and b.dim == pb.dim and b.halved == pb.halved)
