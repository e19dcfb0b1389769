"""The lines after the backward loop: the input's gradient and every parameter's, as sums over steps.

``dx`` is one GEMM for all steps; each weight gradient is one GEMM per argument over the kept
``dz`` (``sum_t g_t a_t^T``); a vector's gradient is a column sum of ``dz`` where it is a
block's, else its expression over every step at once (``plan.all_t_names``).
"""

from __future__ import annotations

import sympy as sp

from derive.codegen.ewise import Emitter, Pool
from derive.codegen.frame import span_code, workspace
from derive.codegen.names import Namer, code_name
from derive.codegen.parts import GroupKind
from derive.codegen.plan import Plan
from derive.symbolic import ir
from derive.symbolic.printing import text as ir_text

#: group kind -> the (steps, B, in) argument of its weight gradient's GEMM (``kept``: its buffer)
WEIGHT_ARG = {
    GroupKind.INPUT: lambda g, w: f"{w.x}[lo:]",
    GroupKind.RECURRENT: lambda g, w: f"{Namer.states(ir.at(g.arg, 0))}[lo:{w.T}]",
    GroupKind.LATE: lambda g, w: f"{Namer.arg_buffer(g.name, '_all')}[lo:]",
    GroupKind.TAP: lambda g, w: f"{w.x}[{tap_lo(g)} - {tap(g)}:{w.T} - {tap(g)}]",
}


def tap(g) -> int:
    """k of a tap group's argument x_{t-k}."""
    return -ir.ref(g.arg).time


def tap_lo(g) -> str:
    """The first step whose tap x_{t-k} the gradient reached (no tap before step k)."""
    return f"lo{tap(g)}"


#: the per-step buffer of the elementwise part of dx_t (the input read without a matrix), and all steps
DX_ELEMENTWISE = ("dxe_t", "dxe")


def input_elementwise(d) -> sp.Expr | None:
    """The terms of dx_t that are not ``W^T g`` (the input read without a matrix, I = H), or None."""
    rest = [t for t in d.input_grad.own if not isinstance(t, ir.MatVecT)]  # a tap's are refused (plan)
    return sp.Add(*rest) if rest else None


def after_loop(plan: Plan) -> list[str]:
    p, cell, d, w = plan, plan.cell, plan.d, plan.w
    L = [f"lo = {w.T} - steps  # the first step the gradient reached", "grads = {}"]
    inp = p.input_group
    products = [t for t in d.input_grad.own if isinstance(t, ir.MatVecT)]
    taps = [g for g in p.groups if g.kind == GroupKind.TAP]
    for k in sorted({tap(g) for g in taps}):
        L.append(f"lo{k} = max(lo, {k})  # the first step whose tap x_{{t-{k}}} the gradient reached")
    if products and inp is None:
        raise ValueError("the input's products are not one GEMM")
    if d.input_grad.terms:
        L.append(f"# dx_t = {' + '.join(ir_text(t) for t in d.input_grad.terms)}: one GEMM for all steps"
                 + (" and the elementwise part kept in the loop" if input_elementwise(d) is not None else ""))
        L.append(f"dx = {workspace('dx', f'({w.T}, {w.B}, {w.I})')}")
        L.append("dx[:lo] = 0.0")
        if products:
            L.append(f"np.matmul({w.dz}[lo:, :, {span_code(inp.cols)}].reshape(steps * {w.B}, -1), "
                     f"{Namer.fused(inp.name)}.T, out=dx[lo:].reshape(steps * {w.B}, {w.I}))")
        else:
            L.append("dx[lo:] = 0.0")
        if input_elementwise(d) is not None:
            L.append(f"dx[lo:] += {DX_ELEMENTWISE[1]}[lo:]")
        L += tap_input_gradients(p, taps)
        L.append("grads['x'] = dx")
    for s in cell.states:
        L.append(f"grads[{ir.ref(s).key!r}] = {Namer.carry(s)}")
    L.append("# weight gradients: sum_t g_t a_t^T, one GEMM per argument (as (a^T g)^T: BLAS is faster so)")
    L += weight_gradients(p)
    if cell.clock is not None:
        for key in cell.clock.masked:
            L.append(f"grads[{key!r}] *= _api.block_pattern({p.sizes.get('H', 'H')}, {cell.clock.modules}, dtype)"
                     f"  # M (.) sum_t ...: the entries below the blocks are no parameters")
    L.append(f"{w.dz_sum} = {w.dz}[lo:].sum(axis=(0, 1))")
    for pg in d.params:
        if pg.param.key in p.in_loop:
            L.append(f"grads[{pg.param.key!r}] = {Namer.grad_sum(pg.param.symbol)}")
    L += vector_gradients(p)
    L.append("return grads")
    return L


def tap_input_gradients(p: Plan, taps) -> list[str]:
    """dx_{t-k} += W^T dz_t for each tap x_{t-k} (a truncated gradient reaches x_{lo-k} so: the step lo
    reads it)."""
    L, w = [], p.w
    for g in taps:
        k, lo = tap(g), tap_lo(g)
        for blocks in [g.cols] if g.contiguous else [[b] for b in g.cols]:
            weight = Namer.fused(g.name) + ".T" if g.contiguous else \
                code_name(next(m for m in g.atoms if p.block_of(m) == blocks[0]).args[0])
            L.append(f"dx[{lo} - {k}:{w.T} - {k}] += {w.dz}[{lo}:, :, {span_code(blocks)}] @ {weight}"
                     f"  # dx_t += " + " + ".join(ir_text(ir.shift(ir.MatVecT(m.args[0], p.block_of(m).grad), k))
                                                for m in g.atoms if p.block_of(m) in blocks))
    return L


def weight_gradients(p: Plan) -> list[str]:
    L, w = [], p.w
    seen = set()  # matrices whose gradient has a first part already
    for g in p.groups:
        arg = WEIGHT_ARG[g.kind](g, w)
        for blocks in [g.cols] if g.contiguous else [[b] for b in g.cols]:
            if g.kind == GroupKind.TAP:  # steps from max(lo, k) on: rows known from the sizes only
                L.append(f"dW = ({arg}.reshape(-1, {w.I}).T @ {w.dz}[{tap_lo(g)}:, :, {span_code(blocks)}]"
                         f".reshape(-1, {blocks[-1].stop - blocks[0].start})).T")
            else:
                L.append(f"dW = ({arg}.reshape(steps * {w.B}, -1).T @ "
                         f"{w.dz}[lo:, :, {span_code(blocks)}].reshape(steps * {w.B}, -1)).T")
            off = sp.Integer(0)
            for b in blocks:
                for m in g.atoms:
                    if p.block_of(m) == b:
                        key = ir.ref(m.args[0]).key  # a matrix in two products sums both
                        part = f"dW[{off}:{off + b.dim}]"
                        L.append(f"grads[{key!r}] = " + (f"grads[{key!r}] + {part}" if key in seen else part))
                        seen.add(key)
                off += b.dim
    return L


def vector_gradients(p: Plan) -> list[str]:
    """Vector parameters not accumulated in the loop: column sums of dz, or their expression
    evaluated over every step at once."""
    cell, d, all_names = p.cell, p.d, p.all_t_names
    L = []
    pools: dict[str, Pool] = {}  # one scratch pool per size, shared by the parameters: each name bound once
    for pg in d.params:
        if pg.param.key in p.in_loop or pg.param.is_matrix:
            continue
        key = pg.param.key
        parts = []
        for gexpr, _ in pg.terms:
            blk = next((b for b in p.blocks if b.grad == gexpr), None)
            parts.append(f"{p.w.dz_sum}[{p.namer.span([blk])}]" if blk is not None else None)
        if all(parts):
            L.append(f"grads[{key!r}] = " + " + ".join(parts))
            continue
        expr = sp.Add(*[gexpr for gexpr, _ in pg.terms])
        missing = [s for s in expr.free_symbols if ir.is_ir(s) and ir.ref(s).time is not None
                   and s not in all_names]
        if missing:
            raise ValueError(f"the gradient of {ir_text(pg.param.symbol)} reads {', '.join(map(ir_text, missing))}, "
                             "which the kernel does not keep")
        L.append(f"# dL/d{key} = sum_t {ir_text(expr)}")
        names = {**{prm.symbol: code_name(prm.symbol) for prm in cell.params.values()}, **all_names}
        big = "_big"
        L.append(f"{big} = np.empty((steps, {p.w.B}, {pg.param.shape[0]}), dtype)")
        size = str(pg.param.shape[0])
        pool = pools.setdefault(size, Pool("big" if not pools else f"big_{len(pools)}_"))
        known = set(pool.names)
        lines = Emitter(names, pool).emit(expr, big)
        L += [f"{n} = np.empty_like({big})" for n in pool.names if n not in known]  # scratch, before its first use
        L += lines
        L.append(f"grads[{key!r}] = {big}.sum(axis=(0, 1))")
    return L
