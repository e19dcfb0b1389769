"""The buffers and views of one generated function, and the lines both functions open with.

A ``Frame`` collects, while an emitter writes the loop body of ``forward`` or ``backward``,
what that body needs made before the loop: per-step buffers, scratch buffers (a pool per
shape), slices over runs of blocks and views of every step (``z_i_all``: a step costs one
index, ``z_i_t = z_i_all[t]``). ``scratch_lines`` writes them, for the views the body reads.
Each emitter has a frame of its own, so neither depends on the other having run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sympy as sp

from derive.codegen.ewise import Emitter, Pool
from derive.codegen.names import Buffer, Namer, code_name
from derive.codegen.parts import GroupKind, dim_of
from derive.codegen.plan import MASK_ALL, Plan
from derive.symbolic import ir

#: the base of a step view -> how a step's columns are indexed in it (``a`` is (T, B * width))
STEP_INDEX = {Buffer.A: ":, "}


def workspace(name: str, shape: str) -> str:
    """A sequence-sized buffer: from the kernel's workspace (reused when nothing refers to it)."""
    return f"WORKSPACE.empty({name!r}, {shape}, dtype)"


def span_code(blocks) -> str:
    """``slice(start, stop)`` over consecutive blocks, in terms of the dimensions."""
    return f"slice({blocks[0].start}, {blocks[-1].stop})"


def kslice_code(blocks, B: str = "B") -> str:
    """``slice`` over consecutive blocks in a step of the block-major ``a`` (B rows per block)."""
    start = blocks[0].start
    return f"slice({'0' if start == 0 else f'{B} * {start}'}, {B} * {blocks[-1].stop})"


def used_views(body: list[str]) -> list[str]:
    """Drop ``name = view`` lines whose name no later line reads (repeat: views of views)."""
    while True:
        keep = []
        for k, ln in enumerate(body):
            m = re.match(r"(\w+) = ", ln)
            if m and not ln.startswith(("np.", "#")) and "np." not in ln:
                used = any(re.search(rf"\b{m.group(1)}\b", later) for later in body[k + 1:])
                if not used:
                    continue
            keep.append(ln)
        if keep == body:
            return body
        body = keep


def halve(code: str, block) -> str:
    """``code`` scaled by 1/2 when ``block`` is a halved sigmoid gate."""
    return f"0.5 * {code}" if block.halved else code


# ------------------------------------------------------------ the prologue
def sizes(plan: Plan) -> list[str]:
    w = plan.w
    lines = [f"{w.T}, {w.B}, {w.I} = {w.x}.shape"]
    done = {w.I}
    for p in plan.cell.params.values():
        for axis, dim in enumerate(p.shape):
            if str(dim) not in done:
                done.add(str(dim))
                lines.append(f"{dim} = {code_name(p.symbol)}.shape[{axis}]")
    if plan.cell.input_size is not None and str(plan.cell.input_size) in done:  # sizes = { x = "H" }
        lines.append(f"_api.same_size(I, {plan.cell.input_size})  # the spec declares I = {plan.cell.input_size}")
    return lines


def clock_lines(plan: Plan, forward: bool) -> list[str]:
    """A clock's update mask of every step: the forward makes it from t0, the backward reads the cache
    (the block-triangular matrices are masked where the functions bind them, ``cell_kernel.py.j2``)."""
    clock = plan.cell.clock
    if clock is None:
        return []
    if forward:
        return [f"{MASK_ALL} = _api.clock_mask({plan.w.T}, {plan.sizes.get('H', 'H')}, CLOCK['periods'], t0, dtype)  "
                f"# {code_name(clock.mask)} for steps t0 .. t0 + T - 1: 1 where the unit's module runs (t mod T_i = 0)"]
    return [f"{MASK_ALL} = cache[{MASK_ALL!r}]"]


def slices(plan: Plan) -> list[str]:
    namer = plan.namer
    lines = [f"{namer.span([b])} = {span_code([b])}" for b in plan.blocks]
    for b in plan.gate_blocks:
        lines.append(f"{namer.kspan([b])} = {kslice_code([b], plan.w.B)}  # gate {b.name} in a step of a: rows "
                     f"(B, {b.dim})")
    return lines


def fused_weights(plan: Plan, forward: bool = False) -> list[str]:
    """One matrix per GEMM argument. The forward's per-step products read theirs
    row-major (a_{t-1} W is fastest so); the backward's ``dz W^T`` reads the transpose."""
    lines = []
    for g in plan.groups:
        ws = ", ".join(halve(code_name(m.args[0]), plan.block_of(m)) if forward else code_name(m.args[0])
                       for m in g.atoms)
        blocks = " | ".join(plan.block_of(m).name for m in g.atoms)
        fused = f"np.concatenate([{ws}]).T"
        if forward and g.kind not in (GroupKind.INPUT, GroupKind.TAP):
            fused = f"np.ascontiguousarray({fused})"
        lines.append(f"{Namer.fused(g.name)} = {fused}  # ({g.arg_dim}, columns {blocks})")
    return lines


@dataclass(frozen=True)
class RunViews:
    """The views of a run of blocks in a step (``a``, ``da``: None unless its gates live in a)."""

    a: str | None
    da: str | None
    z: str
    dz: str
    dim: object  # the shape of each view: a block's dimension, or "n, B, D" for a run of n


class Frame:
    """What the loop of one generated function needs made before it."""

    def __init__(self, plan: Plan, bufs=()):
        self.p = plan
        self.cell = plan.cell
        self.namer, self.w = plan.namer, plan.w
        self.pools: dict[str, Pool] = {}
        self.bufs: list[tuple] = list(bufs)  # (name, dim) per-step buffers to allocate before the loop
        self.spans: dict[str, str] = {}  # slice name -> slice(...) for runs of blocks
        self.views: dict[str, str] = {}  # view name -> its definition, made once before the loop
        self.step_lines: list[str] = []  # ``name = name_all[t]``: the per-step views, first in the loop

    # ------------------------------------------------------------ buffers
    def buf(self, name, dim) -> str:
        if (name, dim) not in self.bufs:
            self.bufs.append((name, dim))
        return name

    def pool(self, dim) -> Pool:
        key = str(dim)
        if key not in self.pools:
            self.pools[key] = Pool(Namer.pool_prefix(key))
        return self.pools[key]

    def emit(self, expr, out: str, names: dict, dim=None, strided: bool = False) -> list[str]:
        """Lines that leave the elementwise ``expr`` in ``out``, scratch from the pool of its shape."""
        for s in expr.free_symbols if dim is None else ():
            if ir.is_ir(s) and ir.ref(s).time is not None:
                dim = dim_of(self.cell, s)
                break
        pool = self.pool(dim if dim is not None else sp.Symbol(self.p.sizes.get("H", "H")))
        return Emitter(names, pool).emit(expr, out, strided=strided)

    # -------------------------------------------------------------- views
    def span(self, blocks) -> str:
        """The name of a slice over consecutive blocks (a single block's is ``s_i``)."""
        name = self.namer.span(blocks)
        if len(blocks) > 1:
            self.spans[name] = span_code(blocks)
        return name

    def kspan(self, blocks) -> str:
        """The name of a slice of a step of ``a`` (block-major) over consecutive blocks."""
        name = self.namer.kspan(blocks)
        if len(blocks) > 1:
            self.spans[name] = kslice_code(blocks, self.w.B)
        return name

    def step_view(self, name: str, base: str, index: str, shape: str | None = None,
                  transpose: bool = False) -> str:
        """``name``: a view of step t of the sequence buffer ``base`` (``a``, ``z``, ``dz`` or a
        kept product). It is made once for every step before the loop (``name_all``, with a
        leading time axis), so a step costs one index, ``name = name_all[t]``, instead of a
        slice, a reshape and a transpose per use (at small sizes those were a third of the time)."""
        whole = Namer.whole(name)
        buffer = self.namer.buffer(base) if base in tuple(Buffer) else base
        code = f"{buffer}[{STEP_INDEX.get(base, ':, :, ')}{index}]"
        if shape:
            code += f".reshape({self.w.T}, {shape})"
        if transpose:
            code += ".transpose(0, 2, 1, 3)"
        if self.views.setdefault(whole, code) != code:
            raise ValueError(f"two views named {whole}")
        line = f"{name} = {whole}[{self.w.t}]"
        if line not in self.step_lines:
            self.step_lines.append(line)
        return name

    def fixed_view(self, name: str, code: str) -> str:
        """``name``: a view of a buffer every step reuses (``da``, a recurrent product), made once."""
        if self.views.setdefault(name, code) != code:
            raise ValueError(f"two views named {name}")
        return name

    def product_view(self, g, lo, hi, name: str) -> str:
        """Columns lo:hi of step t's product of group ``g`` (the whole product: ``gW_t``)."""
        if lo == 0 and hi == g.width:
            return Namer.product(g.name, "_t")
        cols = f"{lo}:{hi}"
        if g.kept:
            return self.step_view(name, Namer.product(g.name, "_all"), cols)
        return self.fixed_view(name, f"{Namer.product(g.name)}[:, {cols}]")

    def row_view(self, base: str, blocks) -> str:
        """Columns of consecutive blocks in step t of ``z`` or ``dz`` ((B, width), batch-major)."""
        last = (self.p.zblocks if base == Buffer.Z else self.p.blocks)[-1]
        if blocks[0].start == 0 and blocks[-1].stop == last.stop:
            return self.namer.row(base)
        return self.step_view(self.namer.cols(base, blocks), base, self.span(blocks))

    def run_views(self, blocks) -> RunViews:
        """Views of a run of equal-width blocks, all of one shape: (B, D) for one block,
        (n, B, D) for several. ``a``/``da`` are block-major (contiguous); ``z``/``dz`` rows
        are batch-major (the GEMMs' layout) and are read through a transposed view."""
        n, D, B, namer = len(blocks), str(blocks[0].dim), self.w.B, self.namer
        s, k = self.span(blocks), self.kspan(blocks)
        in_a = all(b.in_a for b in blocks)
        da = namer.buffer(Buffer.DA)
        if n == 1:
            b = blocks[0]
            return RunViews(
                a=self.step_view(code_name(b.gate), Buffer.A, k, f"{B}, {D}") if in_a else None,
                da=self.fixed_view(Namer.adjoint(b.gate), f"{da}[{k}].reshape({B}, {D})") if in_a else None,
                z=self.step_view(Namer.z(b), Buffer.Z, s), dz=self.step_view(namer.dz(b), Buffer.DZ, s), dim=b.dim)
        shape = f"{n}, {B}, {D}"
        return RunViews(
            a=self.step_view(namer.run_view(Buffer.A, blocks), Buffer.A, k, shape) if in_a else None,
            da=self.fixed_view(namer.run_view(Buffer.DA, blocks), f"{da}[{k}].reshape({shape})") if in_a else None,
            z=self.step_view(namer.run_view(Buffer.Z, blocks), Buffer.Z, s, f"{B}, {n}, {D}", transpose=True),
            dz=self.step_view(namer.run_view(Buffer.DZ, blocks), Buffer.DZ, s, f"{B}, {n}, {D}", transpose=True),
            dim=f"{n}, B, {D}")

    def view_lines(self) -> list[str]:
        """``h_prev = h_all[t]`` ... for the symbols a step reads."""
        p, L, w, namer = self.p, [], self.w, self.namer
        for s in self.cell.states:
            n = Namer.states(s)
            L.append(f"{code_name(ir.at(s, -1))} = {n}[{w.t}]")
            L.append(f"{code_name(s)} = {n}[{w.t} + 1]")
        L.append(f"{p.step_names[self.cell.input]} = {w.x}[{w.t}]")
        if self.cell.clock is not None:
            L.append(f"{p.step_names[self.cell.clock.mask]} = {MASK_ALL}[{w.t}]")
        L.append(f"{namer.row(Buffer.Z)} = {w.z}[{w.t}]")
        for b in p.zblocks:
            self.step_view(Namer.z(b), Buffer.Z, namer.span([b]))
            if b.in_a:
                self.step_view(code_name(b.gate), Buffer.A, namer.kspan([b]), f"{w.B}, {b.dim}")
        for e, n in sorted(p.saved.items(), key=lambda kv: str(kv[1])):
            if n is not None:
                L.append(f"{Namer.at_t(n)} = {n}[{w.t}]")
        for g in p.groups:
            if g.kind in (GroupKind.INPUT, GroupKind.TAP):
                continue
            L.append(f"{Namer.product(g.name, '_t')} = "
                     + (f"{Namer.product(g.name, '_all')}[{w.t}]" if g.kept else Namer.product(g.name)))
            off = sp.Integer(0)
            for m in g.atoms:
                blk = p.block_of(m)
                view = self.product_view(g, off, off + blk.dim, p.namer.atom(m))
                if view != p.namer.atom(m):
                    L.append(f"{p.namer.atom(m)} = {view}")
                off += blk.dim
            if g.keeps_arg:
                L.append(f"{Namer.arg_buffer(g.name)} = {Namer.arg_buffer(g.name, '_all')}[{w.t}]")
        return L

    # ---------------------------------------------------------- the loop
    def loop_body(self, body: list[str]) -> list[str]:
        """The step's lines, its per-step views first, unused views dropped."""
        body = used_views(self.step_lines + body)
        self.step_lines = []
        return body

    def scratch_lines(self, body: list[str]) -> list[str]:
        """Slices, per-step buffers, scratch and the views the loop ``body`` reads, made before it."""
        out = [f"{n} = {v}" for n, v in self.spans.items()]
        B = self.w.B
        for n, dim in self.bufs:
            out.append(f"{n} = np.empty(({B}, {dim}), dtype)")
        for key, pool in sorted(self.pools.items()):
            shape = f"({key.replace('B', B)})" if "B" in key.split(", ") else f"({B}, {key})"
            for n in pool.names:
                out.append(f"{n} = np.empty({shape}, dtype)  # scratch")
        views = [f"{n} = {v}" for n, v in self.views.items() if any(re.search(rf"\b{n}\b", ln) for ln in body)]
        if views:
            out.append("# views of every step (a step takes one index of each) and of the reused buffers")
            out += views
        return out

