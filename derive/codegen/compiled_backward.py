"""The backward pass of the compiled backend: ``_backward_steps`` and the NumPy lines around it.

Each step in reverse evaluates the derivation's adjoints in its order (``d.adjoints``: every
target's own terms, plus the carry from step t+1 for a state), one statement each inside loops
over batch rows and units; writes each product's gradient ``g`` into its group's columns of
``dhW_all`` (so that ``W_h^T g`` is one ``np.dot`` per step and every weight gradient one GEMM
after the loop); adds the step's part of each vector parameter's gradient (``db_i_sum``); and
leaves the carries to step t-1 (``dh_carry``). A ``W^T g`` that an adjoint reads inside the step
(an output layer, Cho's reset product) is one ``np.dot`` before the statement that reads it.
"""

from __future__ import annotations

import sympy as sp

from derive.codegen.compiled import B_IDX, FUSE, J_IDX, T_IDX, Compiled, Nest, _atom_of
from derive.codegen.ewise import CodegenError
from derive.codegen.frame import sizes
from derive.codegen.gradients import DX_ELEMENTWISE, input_elementwise
from derive.codegen.names import Namer, code_name
from derive.codegen.parts import GroupKind, dim_of
from derive.codegen.scalar import Grouped, ScalarPrinter
from derive.symbolic import ir
from derive.symbolic.printing import text as ir_text

#: the whole dx_t's elementwise part (the input read without a matrix) of every step
DXE = DX_ELEMENTWISE[1]


class Backward:
    """Decides the backward's buffers (``mt``: the ``W^T g`` products read inside a step), then prints."""

    def __init__(self, c: Compiled):
        self.c, self.p, self.cell, self.d, self.w = c, c.p, c.cell, c.d, c.w
        self.body: list[str] = []
        self.mt: dict = {}  # MatVecT atom -> its (B, in) buffer
        self.scratch: list = []  # (name, dim) of the g buffers of those products
        self.nest: Nest | None = None
        #: groups whose products have the same g, column for column (W_x x_t and W_h h_{t-1} of the LSTM),
        #: share one buffer: group name -> the buffer of its g
        first = {}
        self.g_buffer = {g.name: first.setdefault(tuple(self.p.block_of(m).grad for m in g.atoms), c.grad_all(g))
                         for g in self.p.groups}
        #: adjoints kept in a g buffer's columns (dz_{i,t}: written there, read from there), not in a row
        #: (a group of one product first: its step is a contiguous (B, dim) array, the g a W^T g reads as is)
        self.in_g = {}
        self.whole = set()  # the g buffers of groups of one product
        for g in sorted(self.p.groups, key=lambda g: len(g.atoms) != 1):
            if len(g.atoms) == 1:
                self.whole.add(self.g_buffer[g.name])
            for m in g.atoms:
                grad = self.p.block_of(m).grad
                if isinstance(grad, sp.Symbol) and grad in {ir.adjoint(t) for t in self.adjoints()}:
                    self.in_g.setdefault(grad, (self.g_buffer[g.name], c.offsets[m][1]))
        self.inlined = self._single_reads()
        self.fused_carries: dict = {}  # state -> the group whose W^T g is one np.dot into its carry
        self.steps_lines = self._steps()

    def _single_reads(self) -> dict:
        """Adjoints of equations (not states) read by one statement of the step only, and not as the g of
        a ``W^T g``: written into that statement (``dz_o = dh tanh(c) o (1 - o)``), no pass of their own."""
        d = self.d
        exprs = [sp.Add(*a.own) for a in d.adjoints]
        exprs += [self.p.block_of(m).grad for g in self.p.groups for m in g.atoms]
        exprs += [sp.Add(*[g for g, _ in pg.terms]) for pg in d.params if not pg.param.is_matrix]
        exprs += [sp.Add(*c.terms) for c in d.carries.values()]
        dxe = input_elementwise(d)
        exprs += [dxe] if dxe is not None else []
        under_mt = {s for e in exprs for m in e.atoms(ir.MatVecT) for s in m.args[1].free_symbols}
        out = {}
        for a in d.adjoints:
            sym = ir.adjoint(a.target)
            readers = [e for e in exprs if sym in e.free_symbols]
            if a.target not in self.cell.states and sym not in self.in_g and sym not in under_mt \
                    and len(readers) == 1 and not sp.Add(*a.own).atoms(ir.MatVecT):
                out[sym] = sp.Add(*a.own)
        return out

    # ------------------------------------------------------------ names
    @staticmethod
    def row(sym) -> str:
        """The adjoint of a quantity at the current step, every row and unit: ``dc_row`` (B, dim)."""
        return f"d{Namer.states(sym).removesuffix('_all')}_row"

    def adjoints(self) -> list:
        return [a.target for a in self.d.adjoints]

    def summed_after(self) -> dict:
        """Vector parameters whose gradient is a sum of adjoints kept in g buffers: key -> those adjoints,
        summed over the steps and rows after the loop (one pass), not in it."""
        return {pg.param.key: [g for g, _ in pg.terms] for pg in self.d.params
                if not pg.param.is_matrix and all(g in self.in_g for g, _ in pg.terms)}

    def rows(self) -> list:
        """The targets whose adjoint has a row buffer (not kept in a g buffer, not inlined)."""
        return [t for t in self.adjoints() if ir.adjoint(t) not in self.in_g and ir.adjoint(t) not in self.inlined]

    def stored(self, t) -> str:
        """Where the adjoint of ``t`` at (b, j) of this step lives."""
        sym = ir.adjoint(t)
        if sym in self.in_g:
            buf, off = self.in_g[sym]
            return f"{buf}[{T_IDX}, {B_IDX}, {J_IDX if off == 0 else f'{off} + {J_IDX}'}]"
        return f"{self.row(t)}[{B_IDX}, {J_IDX}]"

    def args(self) -> list[str]:
        c, cell, w = self.c, self.cell, self.w
        args = [w.T, w.B, *c.size_names(), "steps", w.x, "dy"]
        args += [code_name(p.symbol) for p in c.vector_params]
        args += [a for a in c.forward_args() if a.endswith("_all") and a not in args]
        args += [c.transposed(g) for g in self.fused_carries.values()]
        args += sorted({code_name(m.args[0]) for m in self.mt})
        args += list(dict.fromkeys(self.g_buffer.values()))
        args += [Namer.carry(s) for s in cell.states]
        args += [self.row(t) for t in self.rows()]
        args += [Namer.grad_sum(p.symbol) for p in c.vector_params if p.key not in self.summed_after()]
        args += list(self.mt.values()) + [name for name, _ in self.scratch]
        if input_elementwise(self.d) is not None:
            args.append(DXE)
        return list(dict.fromkeys(args))

    # ------------------------------------------------------------ the loop
    def _close(self):
        if self.nest is not None:
            self.body += self.nest.text()
        self.nest = None

    def _statement(self, dim: str, comment: str, target: str, expr, local=None, name=None):
        """``target = expr`` in the nest of size ``dim`` (a new one if the current has another size);
        ``local``: the quantity the statement's scalar ``name`` holds for the rest of the nest."""
        if self.nest is None or self.nest.dim != dim or not FUSE:
            self._close()
            self.nest = Nest(dim, self.w.B)
        self.nest.lines += [f"# {comment}", f"{target}{self.bprint(expr)}"]
        if local is not None:
            self.nest.local[local] = name

    def _products(self, expr):
        """``np.dot`` lines for the ``W^T g`` atoms of ``expr`` not computed yet (closing the nest)."""
        for m in sorted(expr.atoms(ir.MatVecT), key=sp.default_sort_key):
            if m in self.mt:
                continue
            self._close()
            W, g = m.args
            shape = self.cell.params[ir.ref(W).key].shape
            if isinstance(g, sp.Symbol) and any(ir.adjoint(t) == g for t in self.rows()):
                garr = self.row(next(t for t in self.rows() if ir.adjoint(t) == g))
            elif g == self.d.dy:
                garr = f"dy[{T_IDX}]"
            elif g in self.in_g and self.in_g[g][0] in self.whole:
                garr = f"{self.in_g[g][0]}[{T_IDX}]"
            else:
                garr = f"_g{len(self.scratch)}"
                self.scratch.append((garr, str(shape[0])))
                self._statement(str(shape[0]), f"the g of {ir_text(m)}", f"{garr}[{B_IDX}, {J_IDX}] = ", g)
                self._close()
            name = self.mt[m] = f"_mt{len(self.mt)}"
            self.scratch.append((name, str(shape[1])))
            self.body.append(f"np.dot({garr}, {code_name(W)}, {name})  # {ir_text(m)}")

    def _steps(self) -> list[str]:
        c, cell, d = self.c, self.cell, self.d
        states = {s: ir.ref(s).key for s in cell.states}
        for a in d.adjoints:
            t = a.target
            expr = sp.Add(*a.own)
            if t in states:
                expr = expr + sp.Symbol(f"__carry_{states[t]}")
            elif a.carried:
                raise CodegenError(f"the adjoint of {ir_text(t)} has a term from step t+1 but {ir_text(t)} is no state")
            if ir.adjoint(t) in self.inlined:
                continue
            self._products(expr)
            local = Namer.adjoint(t)
            inner = [f"; d{ir_text(u.target)} = " + " + ".join(ir_text(e) for e in u.terms)
                     for u in d.adjoints
                     if ir.adjoint(u.target) in self.inlined and ir.adjoint(u.target) in expr.free_symbols]
            self._statement(c.dim(t), f"d{ir_text(t)} = " + " + ".join(ir_text(e) for e in a.terms) + "".join(inner),
                            f"{self.stored(t)} = " + (f"{local} = " if FUSE else ""), expr, ir.adjoint(t), local)
        for g in self.p.groups:  # each product's g, in its group's columns (once per buffer)
            if self.g_buffer[g.name] != c.grad_all(g):
                continue
            for m in g.atoms:
                blk = self.p.block_of(m)
                if self.in_g.get(blk.grad) == (self.g_buffer[g.name], c.offsets[m][1]):
                    continue  # written there as the adjoint itself
                self._products(blk.grad)
                _, off = c.offsets[m]
                col = J_IDX if off == 0 else f"{off} + {J_IDX}"
                self._statement(str(blk.dim), f"g of {ir_text(m)}: {ir_text(blk.grad)}",
                                f"{self.g_buffer[g.name]}[{T_IDX}, {B_IDX}, {col}] = ", blk.grad)
        for pg in d.params:
            if not pg.param.is_matrix and pg.param.key not in self.summed_after():
                expr = sp.Add(*[g for g, _ in pg.terms])
                self._products(expr)
                self._statement(str(pg.param.shape[0]), f"dL/d{pg.param.key} += {ir_text(expr)}",
                                f"{Namer.grad_sum(pg.param.symbol)}[{J_IDX}] += ", expr)
        dxe = input_elementwise(d)
        if dxe is not None:
            self._products(dxe)
            self._statement(c.dim(cell.input), f"dx_t += {ir_text(dxe)}",
                            f"{DXE}[{T_IDX}, {B_IDX}, {J_IDX}] = ", dxe)
        self._carries()
        self._close()
        loop = f"for {T_IDX} in range({self.w.T} - 1, {self.w.T} - 1 - steps, -1):"
        return [loop] + ["    " + ln for ln in self.body]

    def _carries(self):
        """d s_{t-1} for each state: a group's whole ``W^T g`` as one np.dot, the rest elementwise."""
        c, cell = self.c, self.cell
        rest = {}
        for s in cell.states:
            terms = list(self.d.carries[ir.ref(s).key].terms)
            for g in self.p.groups:
                if g.kind == GroupKind.INPUT:
                    continue
                mine = [t for t in terms if isinstance(t, ir.MatVecT) and _atom_of(g, t, self.p) is not None]
                if len(mine) == len(g.atoms) and s not in self.fused_carries:
                    self.fused_carries[s] = g
                    terms = [t for t in terms if t not in mine]
            rest[s] = terms
        if self.fused_carries:
            self._close()
        for s, g in self.fused_carries.items():
            self.body.append(f"np.dot({self.g_buffer[g.name]}[{T_IDX}], {c.transposed(g)}, {Namer.carry(s)})  "
                             f"# d{ir_text(ir.at(s, -1))} = " + " + ".join(
                                 ir_text(ir.MatVecT(m.args[0], self.p.block_of(m).grad)) for m in g.atoms))
        for s in cell.states:
            if not rest[s]:
                continue
            expr = sp.Add(*rest[s])
            self._products(expr)
            op = "+=" if s in self.fused_carries else "="
            self._statement(c.dim(s), f"d{ir_text(ir.at(s, -1))} {op} {ir_text(expr)}",
                            f"{Namer.carry(s)}[{B_IDX}, {J_IDX}] {op} ", expr)

    def bprint(self, expr) -> str:
        """``expr`` at (t, b, j) in the backward step."""
        c, nest = self.c, self.nest
        carries = {sp.Symbol(f"__carry_{ir.ref(s).key}"): s for s in self.cell.states}
        adjoints = set(self.adjoints())

        def leaf(e):
            if nest is not None and e in nest.local:
                return nest.local[e]
            if e in c.saved:
                return c.saved_at(e)
            if e in c.late_args:
                return c.late_arg_at(e)
            if e in carries:
                return f"{Namer.carry(carries[e])}[{B_IDX}, {J_IDX}]"
            if isinstance(e, ir.MatVecT):
                if e not in self.mt:
                    raise CodegenError(f"{ir_text(e)} read before its product")
                return f"{self.mt[e]}[{B_IDX}, {J_IDX}]"
            if isinstance(e, ir.MatVec):
                return c.product_at(e)
            if isinstance(e, sp.Symbol) and ir.is_ir(e):
                r = ir.ref(e)
                if e == self.d.dy:
                    return f"dy[{T_IDX}, {B_IDX}, {J_IDX}]"
                if r.adjoint:
                    if e in self.inlined:
                        return Grouped(self.bprint(self.inlined[e]))
                    for t in adjoints:
                        if ir.adjoint(t) == e:
                            return self.stored(t)
                    raise CodegenError(f"the backward step cannot read {ir_text(e)}")
                if r.time is None:
                    return c.param_at(e)
                if e == self.cell.input:
                    return f"{self.w.x}[{T_IDX}, {B_IDX}, {J_IDX}]"
                if r.time == -1 and ir.at(e, 0) in self.cell.states:
                    return f"{c.all_name(ir.at(e, 0))}[{T_IDX}, {B_IDX}, {J_IDX}]"
                if r.time == 0 and e in c.targets:
                    return f"{c.all_name(e)}[{c.step_index(e)}, {B_IDX}, {J_IDX}]"
                raise CodegenError(f"the backward step cannot read {ir_text(e)}")
            return None
        return ScalarPrinter(leaf).text(expr)


# ------------------------------------------------------------ the wrapper
def wrapper(bw: Backward) -> list[str]:
    """The body of ``_backward``: buffers, the call of ``_backward_steps``, then the gradients."""
    c, p, cell, w = bw.c, bw.p, bw.cell, bw.w
    L = [f"{w.x} = cache[{w.x!r}]"]
    L += [f"{a} = cache[{a!r}]" for a in c.forward_args() if a.endswith("_all")]
    L += sizes(p)
    L.append("# fused weights, as the forward's; the carries read their transposes")
    for g in p.groups:
        ws = ", ".join(code_name(m.args[0]) for m in g.atoms)
        if g in bw.fused_carries.values():
            L.append(f"{c.transposed(g)} = np.ascontiguousarray(np.concatenate([{ws}]))  "
                     f"# ({c.widths[g.name]}, {g.arg_dim})")
        if g.kind == GroupKind.INPUT:
            L.append(f"{Namer.fused(g.name)} = np.concatenate([{ws}]).T  # ({g.arg_dim}, {c.widths[g.name]})")
    for g in p.groups:
        n = c.grad_all(g)
        if bw.g_buffer[g.name] != n:
            continue
        L.append(f"{n} = WORKSPACE.empty({n!r}, ({w.T}, {w.B}, {c.widths[g.name]}), dtype)  "
                 f"# the g of each product: " + " | ".join(ir_text(p.block_of(m).grad) for m in g.atoms))
    for s in cell.states:
        key = ir.ref(s).key
        L.append(f"{Namer.carry(s)} = np.zeros(({w.B}, {dim_of(cell, s)}), dtype)")
        L.append(f"if dstates_T is not None and dstates_T.get({key!r}) is not None:")
        L.append(f"    {Namer.carry(s)}[...] = dstates_T[{key!r}]")
    for t in bw.rows():
        L.append(f"{bw.row(t)} = np.empty(({w.B}, {c.dim(t)}), dtype)")
    for prm in c.vector_params:
        if prm.key not in bw.summed_after():
            L.append(f"{Namer.grad_sum(prm.symbol)} = np.zeros({prm.shape[0]}, dtype)")
    for name, dim in bw.scratch:
        L.append(f"{name} = np.empty(({w.B}, {dim}), dtype)")
    if input_elementwise(bw.d) is not None:
        L.append(f"{DXE} = np.zeros(({w.T}, {w.B}, {w.I}), dtype)  # dx_t where the input is read without a matrix")
    call = ", ".join("dy if dy is not None else np.zeros((T, B, " + c.dim(cell.output) + "), dtype)"
                     .replace("T, B", f"{w.T}, {w.B}") if a == "dy" else a for a in bw.args())
    L.append("with _api.one_blas_thread():  # the steps' GEMMs on one BLAS thread")
    L.append(f"    _backward_steps({call})")
    L += after_loop(bw)
    return L


def after_loop(bw: Backward) -> list[str]:
    """dx, the states' and every parameter's gradient, from the kept g buffers: one GEMM per group."""
    c, p, cell, d, w = bw.c, bw.p, bw.cell, bw.d, bw.w
    L = [f"lo = {w.T} - steps  # the first step the gradient reached", "grads = {}"]
    inp = p.input_group
    if d.input_grad.terms:
        L.append(f"dx = WORKSPACE.empty('dx', ({w.T}, {w.B}, {w.I}), dtype)")
        L.append("dx[:lo] = 0.0")
        if inp is not None and any(isinstance(t, ir.MatVecT) for t in d.input_grad.terms):
            L.append(f"np.matmul({bw.g_buffer[inp.name]}[lo:].reshape(steps * {w.B}, {c.widths[inp.name]}), "
                     f"{Namer.fused(inp.name)}.T, out=dx[lo:].reshape(steps * {w.B}, {w.I}))  # dx_t = "
                     + " + ".join(ir_text(t) for t in d.input_grad.terms if isinstance(t, ir.MatVecT)))
        else:
            L.append("dx[lo:] = 0.0")
        if input_elementwise(d) is not None:
            L.append(f"dx[lo:] += {DXE}[lo:]")
        L.append("grads['x'] = dx")
    for s in cell.states:
        L.append(f"grads[{ir.ref(s).key!r}] = {Namer.carry(s)}")
    L.append("# weight gradients: sum_t g_t a_t^T, one GEMM per group")
    seen = set()
    for g in p.groups:
        arg = f"{w.x}[lo:]" if g.kind == GroupKind.INPUT else f"{Namer.arg_buffer(g.name, '_all')}[lo:]" \
            if g.kind == GroupKind.LATE else f"{Namer.states(ir.at(g.arg, 0))}[lo:{w.T}]"
        L.append(f"dW = ({arg}.reshape(steps * {w.B}, -1).T @ {bw.g_buffer[g.name]}[lo:].reshape(steps * {w.B}, -1)).T")
        for m in g.atoms:
            key = ir.ref(m.args[0]).key
            _, off = c.offsets[m]
            part = f"dW[{off}:{off + p.block_of(m).dim}]"
            L.append(f"grads[{key!r}] = " + (f"grads[{key!r}] + {part}" if key in seen else part))
            seen.add(key)
    summed = bw.summed_after()
    column_sums = set()  # buffers of g's whose columns are summed (over every step and row), once each
    for prm in c.vector_params:
        if prm.key in summed:
            parts = []
            for g in summed[prm.key]:
                buf, off = bw.in_g[g]
                if buf not in column_sums:
                    column_sums.add(buf)
                    L.append(f"{Namer.column_sum(buf)} = {buf}[lo:].reshape(steps * {w.B}, -1).sum(axis=0)"
                             f"  # every column summed over the steps and rows")
                parts.append(f"{Namer.column_sum(buf)}[{off}:{off + prm.shape[0]}]")
            L.append(f"grads[{prm.key!r}] = " + " + ".join(parts)
                     + f"  # sum_t {' + '.join(ir_text(g) for g in summed[prm.key])}")
        else:
            L.append(f"grads[{prm.key!r}] = {Namer.grad_sum(prm.symbol)}")
    L.append("return grads")
    return L
