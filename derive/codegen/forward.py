"""The lines of ``_forward``: the input GEMM for every step, then the step loop.

``forward_lines(plan)`` reads the frozen plan only; its buffers and views are its own
(``frame.Frame``), so it gives the same lines whether or not the backward was written first.
"""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.codegen.ewise import CodegenError
from derive.codegen.frame import Frame, clock_lines, fused_weights, halve, sizes, slices, span_code, workspace
from derive.codegen.names import Buffer, Namer, code_name
from derive.codegen.parts import GroupKind, dim_of, terms
from derive.codegen.plan import MASK_ALL, Plan
from derive.symbolic import ir
from derive.symbolic.printing import text as ir_text

#: a halved sigmoid gate from its z/2: sigma(z) = (1 + tanh(z/2)) / 2, in place
HALVED_SIGMOID = ("np.tanh({z}, out={a})", "np.multiply({a}, 0.5, out={a})", "np.add({a}, 0.5, out={a})")


def equation(a) -> str:
    return f"{ir_text(a.target)} = {ir_text(a.rhs)}"


def forward_lines(plan: Plan) -> list[str]:
    return Forward(plan).lines()


class Forward:
    """Builds the body of ``_forward`` for one plan."""

    def __init__(self, plan: Plan):
        self.p = plan
        self.cell = plan.cell
        self.frame = Frame(plan)

    def lines(self) -> list[str]:
        p, cell, frame, w = self.p, self.cell, self.frame, self.p.w
        zblocks = p.zblocks
        NZ = str(zblocks[-1].stop) if zblocks else "0"
        L: list[str] = []
        L += sizes(p)
        dims = ", ".join(f"{ir.ref(s).key!r}: {dim_of(cell, s)}" for s in cell.states)
        L.append(f"states0 = _interop.initial_states(states0, {{{dims}}}, {w.B}, dtype)")
        L += clock_lines(p, forward=True)
        L += slices(p)
        L.append("")
        L.append("# fused weights: one matrix per GEMM argument, columns in the order of the blocks")
        L += fused_weights(p, forward=True)
        L.append("")
        L.append(f"{w.z} = {workspace(str(Buffer.Z), f'({w.T}, {w.B}, {NZ})')}  # pre-activations, columns "
                 + " | ".join(f"{Buffer.Z}_{b.name}" + ("/2" if b.halved else "") for b in zblocks))
        if any(b.halved for b in p.blocks):
            L.append("# (z/2 where the weights and biases above are halved: sigma(z) = (1 + tanh(z/2)) / 2)")
        L += self.input_projection(NZ)
        L += self.tap_projections()
        for run in p.shared_runs:
            bs = [halve(" + ".join(code_name(s) for s in p.folded.get(b.z, [])), b)
                  if p.folded.get(b.z) else f"np.zeros({b.dim}, dtype)" for b in run.blocks]
            L.append(f"{p.namer.bias(run.group.name, run.blocks)} = np.concatenate([{', '.join(bs)}])"
                     f"  # biases of the blocks, added to the recurrent product each step")
        L += self.sequence_buffers(NZ)
        scratch_at = len(L)
        L.append("")
        L.append(f"for {w.t} in range({w.T}):")
        body = frame.loop_body(self.step())
        L += ["    " + ln if ln else "" for ln in body]
        L[scratch_at:scratch_at] = frame.scratch_lines(body)
        L.append("")
        L += self.results()
        return L

    def input_projection(self, NZ: str) -> list[str]:
        """The input GEMM of every step, and the biases folded into it."""
        p, L, w = self.p, [], self.p.w
        inp = p.input_group
        xblocks = [b for b in p.zblocks if inp is not None and inp.name in b.groups]
        if not xblocks:
            return L
        L.append("# input projection of every step in one GEMM")
        full = xblocks[0].start == 0 and xblocks[-1].stop == p.zblocks[-1].stop
        rows = f"{w.T} * {w.B}"
        target = f"{w.z}.reshape({rows}, {NZ})" + ("" if full else f"[:, {span_code(xblocks)}]")
        if full:
            L.append(f"np.matmul({w.x}.reshape({rows}, {w.I}), {Namer.fused(inp.name)}, out={target})")
        else:
            L.append(f"{target}[...] = {w.x}.reshape({rows}, {w.I}) @ {Namer.fused(inp.name)}")
        shared = {b.index for b, _ in p.shared}
        for b in xblocks:
            if b.index not in shared and p.folded.get(b.z):
                L.append(f"{w.z}[:, :, {p.namer.span([b])}] += {' + '.join(code_name(s) for s in p.folded[b.z])}"
                         f"  # the bias of {Buffer.Z}_{b.name}")
        return L

    def tap_projections(self) -> list[str]:
        """The GEMM of each input tap x_{t-k}: x shifted by k (zero before step k), before the loop;
        it adds to the columns the input GEMM wrote and writes the others (a block per GEMM unless
        the tap's columns are one run inside the input's)."""
        p, L, w = self.p, [], self.p.w
        inp = p.input_group
        written = {b.index for b in inp.cols} if inp is not None else set()
        for g in (g for g in p.groups if g.kind == GroupKind.TAP):
            k = -ir.ref(g.arg).time
            L.append(f"# the tap {ir_text(g.arg)}: zero before step {k}, so its GEMM adds to the steps from {k} on")
            whole = g.contiguous and all(b.index in written for b in g.cols)
            for blocks in [g.cols] if whole else [[b] for b in g.cols]:
                assert not any(b.halved for b in blocks)  # a halved gate's z has no tap (columns.halved)
                weight = Namer.fused(g.name) if whole else \
                    code_name(next(m for m in g.atoms if p.block_of(m) == blocks[0]).args[0]) + ".T"
                cols = f"{w.z}[{{}}, :, {span_code(blocks)}]"
                if blocks[0].index not in written:
                    L.append(f"{cols.format(f':{k}')} = 0.0")
                op = "+=" if blocks[0].index in written else "="
                L.append(f"{cols.format(f'{k}:')} {op} {w.x}[:max(0, {w.T} - {k})] @ {weight}"
                         f"  # " + " + ".join(ir_text(m) for m in g.atoms if p.block_of(m) in blocks))
        return L

    def sequence_buffers(self, NZ: str) -> list[str]:
        """``a``, the states of every step, what the backward reads, the per-step products."""
        p, cell, L, w = self.p, self.cell, [], self.p.w
        TB = f"{w.T}, {w.B}"
        if p.gate_blocks:
            L.append(f"{w.a} = {workspace(str(Buffer.A), f'({w.T}, {w.B} * {NZ})')}  # the activations' outputs, block-major: each "
                     "gate's (B, dim) rows one after another, so every gate is contiguous")
        else:
            L.append(f"{w.a} = None")
        for s in cell.states:
            n = Namer.states(s)
            L.append(f"{n} = {workspace(n, f'({w.T} + 1, {w.B}, {dim_of(cell, s)})')}")
            L.append(f"{n}[0] = states0[{ir.ref(s).key!r}]")
        for e, name in sorted(p.saved.items(), key=lambda kv: str(kv[1])):
            if name is None or name == p.output_all:
                continue
            L.append(f"{name} = {workspace(name, f'({TB}, {p.dim(e)})')}  # kept for the backward pass")
        if p.output_all is not None:
            L.append(f"{p.output_all} = {workspace(p.output_all, f'({TB}, {p.dim(cell.output)})')}  # outputs")
        for g in p.groups:
            if g.kind in (GroupKind.INPUT, GroupKind.TAP):
                continue
            if g.kept:
                n = Namer.product(g.name, "_all")
                L.append(f"{n} = {workspace(n, f'({TB}, {g.width})')}  # kept: the backward reads it")
            else:
                L.append(f"{Namer.product(g.name)} = np.empty(({w.B}, {g.width}), dtype)")
            if g.keeps_arg:
                n = Namer.arg_buffer(g.name, "_all")
                L.append(f"{n} = {workspace(n, f'({TB}, {g.arg_dim})')}  # GEMM argument, kept")
        return L

    def results(self) -> list[str]:
        p, cell, w = self.p, self.cell, self.p.w
        out_gate = next((b for b in p.gate_blocks if b.gate == cell.output), None)
        y = (f"{Namer.states(cell.output)}[1:]" if cell.output in cell.states
             else f"{w.a}[:, {p.namer.kspan([out_gate])}].reshape({w.T}, {w.B}, {out_gate.dim})"
             if out_gate is not None else p.saved[cell.output])
        states = ", ".join(f"{ir.ref(s).key!r}: {Namer.states(s)}[{w.T}]" for s in cell.states)
        # the cache's keys: x, z and a by their own names, everything else by its variable's
        keep = {"x": w.x, str(Buffer.Z): w.z, str(Buffer.A): w.a}
        keep.update({n: n for n in [Namer.states(s) for s in cell.states] + sorted({n for n in p.saved.values() if n})})
        keep.update({n: n for n in [Namer.product(g.name, "_all") for g in p.groups if g.kept]})
        keep.update({n: n for n in [Namer.arg_buffer(g.name, "_all") for g in p.groups if g.kind == GroupKind.LATE]})
        if cell.clock is not None:
            keep[MASK_ALL] = MASK_ALL
        return ["cache = {" + ", ".join(f"{k!r}: {v}" for k, v in keep.items()) + "}",
                f"return {y}, {{{states}}}, cache"]

    # ------------------------------------------------------------ the step
    def step(self) -> list[str]:
        p, frame = self.p, self.frame
        names = dict(p.step_names)
        L = frame.view_lines()
        pending = [f for f, n in p.saved.items() if n and isinstance(f, acts.Activation)]
        known = set()  # targets computed so far in this step
        L += self.saved_activations(pending, known, names)
        for g in p.groups:  # recurrent GEMMs: one per argument
            if g.kind == GroupKind.RECURRENT:
                L.append(f"np.matmul({names[g.arg]}, {Namer.fused(g.name)}, "
                         f"out={Namer.product(g.name, '_t')})  # " + " | ".join(ir_text(m) for m in g.atoms))
        # pre-activations: the direct recurrent products (and biases) of a run of blocks in one add
        for run in p.shared_runs:
            g, blocks = run.group, run.blocks
            zs = frame.row_view(Buffer.Z, blocks)
            hs = frame.product_view(g, run.first, run.first + p.width(blocks), p.namer.run_view(f"{g.name}W", blocks))
            L.append(f"np.add({hs}, {p.namer.bias(g.name, blocks)}, out={hs})")
            L.append(f"np.add({zs}, {hs}, out={zs})"
                     f"  # + " + " + ".join(ir_text(m) for m in g.atoms if p.block_of(m) in blocks) + " + b")
        handled = {b.z: [m for m in g.atoms if p.block_of(m) == b] for b, g in p.shared}  # z -> terms added
        late_done = set()
        for lev in sorted({p.levels[a.target] for a in p.schedule}):
            at = [a for a in p.schedule if p.levels[a.target] == lev]
            L += self.saved_activations(pending, known, names)
            known |= {a.target for a in at}
            for g in p.groups:
                if g.kind == GroupKind.LATE and g.name not in late_done and any(
                        m in a.rhs.atoms(ir.MatVec) for a in at for m in g.atoms):
                    late_done.add(g.name)
                    L.append(f"# GEMM argument {ir_text(g.arg)}")
                    L += frame.emit(g.arg, Namer.arg_buffer(g.name), names)
                    L.append(f"np.matmul({Namer.arg_buffer(g.name)}, {Namer.fused(g.name)}, "
                             f"out={Namer.product(g.name, '_t')})")
            for a in at:
                L += self.assignment(a, handled, names)
            for run in p.gate_runs[lev]:
                if run[0].in_a:
                    L += self.gates(run)
        L += self.saved_activations(pending, known, names)
        if pending:
            raise CodegenError(f"cannot compute {', '.join(map(ir_text, pending))} in the forward step")
        return L

    def assignment(self, a, handled: dict, names: dict) -> list[str]:
        """One equation of the step (a gate kept in ``a`` is written with its run, see ``gates``)."""
        p, cell, L = self.p, self.cell, []
        blk = next((b for b in p.zblocks if b.z == a.target), None)
        before = {g.name for g in p.groups if g.kind in (GroupKind.INPUT, GroupKind.TAP)}  # GEMMs before the loop
        if blk is not None:  # a pre-activation: what the GEMMs did not add
            rest = [t for t in terms(a.rhs) if t not in handled.get(a.target, [])]
            if before & set(blk.groups):
                rest = [t for t in rest if t not in p.folded.get(a.target, ())
                        and not (isinstance(t, ir.MatVec) and cell.is_input(t.args[1]))]
                if rest:
                    L.append(f"# {equation(a)}")
                    L += self.frame.emit(a.target + sp.Add(*rest), names[a.target], names)
            else:
                L.append(f"# {equation(a)}")
                L += self.frame.emit(a.rhs, names[a.target], names)
            return L
        if any(b.in_a and b.gate == a.target for b in p.zblocks):
            return L
        L.append(f"# {equation(a)}")
        if a.target in p.step_buffers:
            names[a.target] = self.frame.buf(p.step_buffers[a.target], dim_of(cell, a.target))
        return L + self.frame.emit(a.rhs, names[a.target], names)

    def gates(self, blocks) -> list[str]:
        """A run of gates of one activation: one call over their columns of ``a``."""
        assignments = [self.cell.assignment(b.gate) for b in blocks]
        L = ["# " + "; ".join(equation(a) for a in assignments)]
        fn = assignments[0].rhs
        v = self.frame.run_views(blocks)
        if blocks[0].halved:  # the GEMMs gave z/2
            return L + [line.format(z=v.z, a=v.a) for line in HALVED_SIGMOID]
        z = sp.Symbol("__zrun")
        return L + self.frame.emit(fn.func(z), v.a, {z: v.z}, dim=v.dim)

    def saved_activations(self, pending: list, known: set, names: dict) -> list[str]:
        """Kept activations of quantities known by now (``tanh(c_t)``, ``tanh(h_{t-1})``),
        each written into its per-step buffer once; ``pending`` loses what is written."""
        L = []
        for f in sorted(pending, key=sp.default_sort_key):
            if all(ir.ref(s).time != 0 or s in known or s == self.cell.input
                   for s in f.free_symbols if ir.is_ir(s)):
                pending.remove(f)
                L.append(f"# {ir_text(f)}, kept for the backward pass")
                L += self.frame.emit(f, names[f], {k: v for k, v in names.items() if k != f})
        return L
