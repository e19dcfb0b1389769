"""The lines of ``_backward``: the forward schedule in reverse, then the gradients of the weights.

Pre-activation adjoints are written into ``dz`` (the layout of ``z``), so ``W_h^T dz_{t+1}`` is
one GEMM per step and every weight gradient one GEMM after the loop (``gradients``).
``backward_lines(plan)`` reads the frozen plan only, with a ``frame.Frame`` of its own.
"""

from __future__ import annotations

import sympy as sp

from derive.codegen.ewise import OUTPUT_DERIVATIVE, derivative_call
from derive.codegen.frame import Frame, clock_lines, fused_weights, sizes, slices, workspace
from derive.codegen.gradients import DX_ELEMENTWISE, after_loop, input_elementwise
from derive.codegen.names import Buffer, Namer, code_name
from derive.codegen.parts import GroupKind, dim_of
from derive.codegen.plan import Plan
from derive.symbolic import ir
from derive.symbolic.printing import text as ir_text


def backward_lines(plan: Plan) -> list[str]:
    return Backward(plan).lines()


class Backward:
    """Builds the body of ``_backward`` for one plan."""

    def __init__(self, plan: Plan):
        self.p = plan
        self.cell = plan.cell
        # the states' adjoints are the first per-step buffers
        self.frame = Frame(plan, [(plan.backward_names[ir.adjoint(s)], dim_of(plan.cell, s))
                                  for s in plan.cell.states])

    def lines(self) -> list[str]:
        p, cell, frame, w = self.p, self.cell, self.frame, self.p.w
        L = self.from_cache()
        L += sizes(p)
        L += clock_lines(p, forward=False)
        L += slices(p)
        L.append("")
        L += fused_weights(p)
        ND = str(p.blocks[-1].stop)
        L.append("")
        L.append(f"steps = {w.T} if truncate is None else max(0, min({w.T}, int(truncate)))")
        L.append(f"{w.dz} = {workspace(str(Buffer.DZ), f'({w.T}, {w.B}, {ND})')}  # adjoints of the pre-activations (and "
                 "products), " + " | ".join(f"d{b.name}" for b in p.blocks))
        L.append(f"{w.da} = np.empty({w.B} * {ND}, dtype)  # adjoints of the activations' outputs, block-major as a step of {w.a}")
        L.append(f"{w.dy_zero} = np.zeros(({w.B}, {p.dim(cell.output)}), dtype)  # {w.dy_t} when dy is None")
        for s in cell.states:
            key = ir.ref(s).key
            L.append(f"{Namer.carry(s)} = np.zeros(({w.B}, {dim_of(cell, s)}), dtype)")
            L.append(f"if dstates_T is not None and dstates_T.get({key!r}) is not None:")
            L.append(f"    {Namer.carry(s)}[...] = dstates_T[{key!r}]")
        for key in sorted(p.in_loop):
            prm = cell.params[key]
            L.append(f"{Namer.grad_sum(prm.symbol)} = np.zeros({prm.shape[0]}, dtype)")
        if input_elementwise(p.d) is not None:
            L.append(f"{DX_ELEMENTWISE[1]} = np.empty(({w.T}, {w.B}, {w.I}), dtype)  # dx_t where the input is read without a matrix")
        scratch_at = len(L)
        L.append("")
        L.append(f"for {w.t} in range({w.T} - 1, {w.T} - 1 - steps, -1):")
        body = frame.loop_body(self.step())
        L += ["    " + ln if ln else "" for ln in body]
        L[scratch_at:scratch_at] = frame.scratch_lines(body)
        L.append("")
        L += after_loop(p)
        return L

    def from_cache(self) -> list[str]:
        p, w = self.p, self.p.w
        L = [f"{w.x}, {w.z}, {w.a} = cache['x'], cache['{Buffer.Z}'], cache['{Buffer.A}']"]
        for n in [Namer.states(s) for s in self.cell.states] + sorted({n for n in p.saved.values() if n}):
            L.append(f"{n} = cache[{n!r}]")
        for g in p.groups:
            if g.kept:
                L.append(f"{Namer.product(g.name, '_all')} = cache['{Namer.product(g.name, '_all')}']")
            if g.keeps_arg:
                L.append(f"{Namer.arg_buffer(g.name, '_all')} = cache['{Namer.arg_buffer(g.name, '_all')}']")
        return L

    # ------------------------------------------------------------ the step
    def step(self) -> list[str]:
        p, cell, d, frame, w, namer = self.p, self.cell, self.p.d, self.frame, self.p.w, self.p.namer
        names = dict(p.backward_names)
        L = frame.view_lines()
        L.append(f"{namer.row(Buffer.DZ)} = {w.dz}[{w.t}]")
        for b in p.blocks:
            frame.step_view(namer.dz(b), Buffer.DZ, namer.span([b]))
            if b.in_a:
                frame.fixed_view(Namer.adjoint(b.gate), f"{w.da}[{namer.kspan([b])}].reshape({w.B}, {b.dim})")
        L.append(f"{w.dy_t} = dy[{w.t}] if dy is not None else {w.dy_zero}")
        adj = {a.target: a for a in d.adjoints}
        done_T = {}
        for lev in sorted({p.levels[a.target] for a in p.schedule}, reverse=True):
            at = [a for a in reversed(p.schedule) if p.levels[a.target] == lev]
            for a in at:
                if a.aux:
                    continue  # written with its gate below, or from its own terms
                t = a.target
                adjoint = adj[t]
                if ir.adjoint(t) in p.adjoint_buffers:
                    names[ir.adjoint(t)] = frame.buf(p.adjoint_buffers[ir.adjoint(t)], dim_of(cell, t))
                expr = sp.Add(*adjoint.own)
                if adjoint.carried or t in cell.states:  # a state gets dstates_T at the last step
                    carry = sp.Symbol(f"__carry_{ir.ref(t).key}")
                    names[carry] = Namer.carry(t)
                    expr = expr + carry
                L.append(f"# d{ir_text(t)} = " + " + ".join(ir_text(e) for e in adjoint.terms))
                L += self.matvec_t(expr, names, done_T)
                L += frame.emit(expr, names[ir.adjoint(t)], names)
            # pre-activation adjoints: f'(z) from the saved output, a whole run at once
            for run in p.gate_runs[lev]:
                L += self.gate_adjoints(run, names)
            # pre-activations that feed something other than one gate: from their own terms
            for a in at:
                if a.aux and not any(b.z == a.target and b.gate is not None for b in p.zblocks):
                    expr = sp.Add(*adj[a.target].own)
                    L.append(f"# d{ir_text(a.target)} = {ir_text(expr)}")
                    L += self.matvec_t(expr, names, done_T)
                    L += frame.emit(expr, names[ir.adjoint(a.target)], names)
        for b in p.blocks:  # extra gradient blocks (e.g. dz_n (.) r_t for W_hn)
            if b.z is None:
                L.append(f"# gradient block of {', '.join(b.groups)}: {ir_text(b.grad)}")
                L += frame.emit(b.grad, namer.dz(b), names)
        for pg in d.params:  # vector-parameter gradients that read this step's adjoints: accumulated here
            if pg.param.key in p.in_loop:
                expr = sp.Add(*[g for g, _ in pg.terms])
                tmp = frame.buf(Namer.grad_step(pg.param.symbol), pg.param.shape[0])
                L.append(f"# dL/d{pg.param.key} += sum over the batch of {ir_text(expr)}")
                L += frame.emit(expr, tmp, names)
                L.append(f"{Namer.grad_sum(pg.param.symbol)} += {tmp}.sum(axis=0)")
        dxe = input_elementwise(d)
        if dxe is not None:  # the input read without a matrix (I = H): this step's part of dx_t
            step, whole = (p.namer.claim(n, ir.adjoint(cell.input), "backward") for n in DX_ELEMENTWISE)
            L.append(f"# dx_t += {ir_text(dxe)}")
            L.append(f"{step} = {whole}[{w.t}]")
            L += self.matvec_t(dxe, names, done_T)
            L += frame.emit(dxe, step, names)
        for s in cell.states:  # carries to step t-1
            carry = d.carries[ir.ref(s).key]
            L.append(f"# d{ir_text(ir.at(s, -1))} = " + " + ".join(ir_text(e) for e in carry.terms))
            L += self.carry(carry.terms, Namer.carry(s), names, done_T)
        return L

    def gate_adjoints(self, blocks, names: dict) -> list[str]:
        """dz = dv * A'(z) for a run of gates: from the gate's output where A' has an output form."""
        cell, v = self.cell, self.frame.run_views(blocks)
        gate = blocks[0].gate
        fn = cell.assignment(gate).rhs
        name = type(fn).__name__
        state_gate = gate in cell.states
        dv = names[ir.adjoint(gate)] if state_gate else v.da
        y = names[gate] if state_gate else v.a
        L = ["# " + "; ".join(f"d{ir_text(b.z)} = " + ir_text(ir.adjoint(b.gate) * (
            OUTPUT_DERIVATIVE[name](b.gate) if name in OUTPUT_DERIVATIVE else fn.fdiff().xreplace(
                {fn.args[0]: b.z}))) for b in blocks)]
        self.check_gate_adjoint(blocks)
        if name in OUTPUT_DERIVATIVE:
            Y, DV = sp.Symbol("__y"), sp.Symbol("__dv")
            return L + self.frame.emit(DV * OUTPUT_DERIVATIVE[name](Y), v.dz, {Y: y, DV: dv}, dim=v.dim, strided=True)
        return L + [f"np.multiply({dv}, {derivative_call(fn).format(a=v.z)}, out={v.dz})"]

    def check_gate_adjoint(self, blocks):
        """The derivation's dz_v must be dv * A'(z) for the rule used here."""
        adj = {a.target: a for a in self.p.d.adjoints}
        for b in blocks:
            own = adj[b.z].own
            fn = self.cell.assignment(b.gate).rhs
            expect = ir.adjoint(b.gate) * fn.fdiff().xreplace(self.p.d.forward)
            if len(own) != 1 or sp.simplify(own[0] - expect) != 0:
                raise ValueError(f"unexpected adjoint for {ir_text(b.z)}: {', '.join(map(ir_text, own))}")

    def matvec_t(self, expr, names, done) -> list[str]:
        """GEMMs for the ``W^T g`` atoms of an adjoint expression not computed yet."""
        L = []
        for m in sorted(expr.atoms(ir.MatVecT), key=sp.default_sort_key):
            if m in names:
                continue
            W, g = m.args
            shape = self.cell.params[ir.ref(W).key].shape
            gname = names.get(g)
            if gname is None:
                gname = self.frame.buf(Namer.gradient_scratch(len(done)), shape[0])
                L += self.frame.emit(g, gname, names)
            buf = self.frame.buf(self.p.namer.transposed_product(W, gname), shape[1])
            L.append(f"np.matmul({gname}, {code_name(W)}, out={buf})  # {ir_text(m)}")
            names[m] = buf
            done[m] = buf
        return L

    def carry(self, terms, out, names, done) -> list[str]:
        """``out = sum(terms)``: bare ``W^T g`` terms of one group as one GEMM."""
        p, L = self.p, []
        rest = list(terms)
        for g in p.groups:
            mine = [t for t in rest if isinstance(t, ir.MatVecT) and any(
                t.args[0] == m.args[0] for m in g.atoms) and t.args[1] == p.block_of(
                next(m for m in g.atoms if m.args[0] == t.args[0])).grad]
            if g.kind == GroupKind.LATE or len(mine) != len(g.atoms) or not g.contiguous:
                continue
            L.append(f"np.matmul({self.frame.row_view(Buffer.DZ, g.cols)}, {Namer.fused(g.name)}.T, out={out})")
            rest = [t for t in rest if t not in mine]
            if rest:
                acc = sp.Symbol("__acc")
                L += self.matvec_t(sp.Add(*rest), names, done)
                L += self.frame.emit(acc + sp.Add(*rest), out, {**names, acc: out})
            return L
        L += self.matvec_t(sp.Add(*rest), names, done)
        L += self.frame.emit(sp.Add(*rest), out, names)
        return L
