"""Kernel modules from a derivation: fused-GEMM forward and BPTT backward over a sequence.

The plan, from the cell's IR and its ``Derivation``:

* every ``MatVec(W, a)`` is grouped by its argument ``a``. The input group (``a = x_t``)
  becomes one GEMM for all time steps before the loop; a group whose argument depends
  only on states at ``t-1`` (``h_{t-1}``) is one GEMM per step; any other argument
  (GRU of Cho et al.: ``W_{hh} (r_t (.) h_{t-1})``) one GEMM per step once it is known.
* each pre-activation ``z_{v,t}`` is a column block of one buffer ``z`` (T, B, sum of
  blocks). Blocks are ordered so that each GEMM group covers a contiguous column range
  and gates with the same activation sit side by side: ``z_t += h_{t-1} W_h`` is one
  add and ``i, f, o = sigma(z_i, z_f, z_o)`` one call. Biases that add to an input
  GEMM are folded into it.
* the backward pass walks the forward schedule in reverse. Pre-activation adjoints are
  written into ``dz`` (same layout as ``z``), so ``W_h^T dz_{t+1}`` is one GEMM per
  step and every weight gradient one GEMM after the loop.

The emitted code is plain NumPy: one ufunc per line with ``out=`` buffers allocated
before the loop, a comment quoting each equation, names from the math.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import sympy as sp

from derive import activations as acts
from derive.symbolic import ir
from derive.symbolic.bptt import DY, Derivation
from derive.symbolic.cell import Cell
from derive.codegen.ewise import OUTPUT_DERIVATIVE, CodegenError, Emitter, Pool, code_name, derivative_call
from derive.symbolic.printing import text as ir_text


# --------------------------------------------------------------------- the plan
@dataclass
class Group:
    """The ``MatVec`` atoms sharing one argument: one fused matrix ``W`` (in, sum out)."""

    name: str  # "x", "h", "rh" ...: code name of the argument
    arg: sp.Expr
    kind: str  # "input" | "recurrent" | "late"
    atoms: list = field(default_factory=list)  # MatVec atoms, in column order

    @property
    def weights(self) -> list:
        return [a.args[0] for a in self.atoms]


@dataclass
class Block:
    """A column block of the fused buffers: a pre-activation or an extra gradient."""

    name: str  # "i", "hn": the code suffix
    dim: sp.Symbol
    z: sp.Symbol | None = None  # the pre-activation (None for an extra gradient block)
    act: str | None = None  # activation of the gate that reads z (None: read elsewhere)
    gate: sp.Symbol | None = None  # the gate's target, if z feeds exactly one activation
    grad: sp.Expr | None = None  # the gradient expression g written here (dz or an extra)
    groups: tuple = ()  # names of the GEMM groups whose gradients read this block
    start: sp.Expr = sp.Integer(0)

    @property
    def stop(self):
        return self.start + self.dim


def _dim_of(cell: Cell, sym: sp.Symbol):
    key = ir.ref(sym).key
    return cell.dims[ir.ref(cell.output).key if key == "y" else key]


def _time_free(expr) -> set:
    return {s for s in expr.free_symbols if ir.is_ir(s) and ir.ref(s).time is not None}


def _arg_name(arg, x) -> str:
    """The code name of a GEMM argument: ``h`` for h_{t-1}, ``ht`` for h_t (an output layer's
    argument), ``tanh_h_prev`` for tanh(h_{t-1}), the sorted vector names of a product."""
    if isinstance(arg, sp.Symbol):
        base = code_name(arg).removesuffix("_t").removesuffix("_prev")
        return base if ir.ref(arg).time == -1 or arg == x else base + "t"
    if isinstance(arg, acts.Activation) and isinstance(arg.args[0], sp.Symbol):
        return f"{type(arg).__name__}_{code_name(arg.args[0]).removesuffix('_t')}"
    return "_".join(sorted(code_name(s).removesuffix("_t").removesuffix("_prev") for s in _time_free(arg)))


def _group_name(cell: Cell, arg) -> str:
    """The GEMM group's name: the argument's, with ``_cat`` added while the fused matrix
    ``W_<name>`` would be a parameter of the spec (``W_h`` in ``W_h h_{t-1}``)."""
    name = _arg_name(arg, cell.input)
    while f"W_{name}" in cell.params:
        name += "_cat"
    return name


def _terms(expr) -> list:
    return list(expr.args) if isinstance(expr, sp.Add) else [expr]


@dataclass
class Plan:
    cell: Cell
    d: Derivation
    groups: dict  # name -> Group
    blocks: list  # [Block], column order of z / dz
    levels: dict  # assignment target -> level
    schedule: list  # assignments in forward order (level, then column)
    saved: dict  # expression to keep per step (time 0) -> code name of its (T, B, dim) buffer
    folded: dict  # z symbol -> [bias params folded into the input GEMM]
    atom_block: dict  # MatVec atom -> the block holding its weight gradient's g


def _levels(cell: Cell) -> dict:
    level: dict = {}
    for a in cell.assignments:
        deps = [level.get(s, 0) for s in _time_free(a.rhs) if ir.ref(s).time == 0 and s in level]
        late = [level[s] for m in a.rhs.atoms(ir.MatVec) for s in _time_free(m.args[1])
                if ir.ref(s).time == 0 and s in level]
        level[a.target] = 1 + max(deps + late, default=-1)
    return level


def make_plan(d: Derivation) -> Plan:
    cell = d.cell
    x = cell.input
    groups: dict[str, Group] = {}
    for a in cell.assignments:
        for m in sorted(a.rhs.atoms(ir.MatVec), key=sp.default_sort_key):
            arg = m.args[1]
            times = {ir.ref(s).time for s in _time_free(arg)}
            kind = "input" if arg == x else "recurrent" if times == {-1} and isinstance(arg, sp.Symbol) else "late"
            name = _group_name(cell, arg)
            g = groups.setdefault(name, Group(name, arg, kind))
            if g.arg != arg:
                raise ValueError(f"two GEMM arguments share the name {name}")
            if m not in g.atoms:
                g.atoms.append(m)
    levels = _levels(cell)

    # pre-activation blocks: which GEMM atoms add directly to each z
    aux = [a for a in cell.assignments if a.aux]
    gate_of = {}
    for a in cell.assignments:
        if isinstance(a.rhs, acts.Activation) and a.rhs.args[0] in {b.target for b in aux}:
            gate_of[a.rhs.args[0]] = a
    input_group = next((g for g in groups.values() if g.kind == "input"), None)
    direct = {}  # z -> {group name: atom}
    for a in aux:
        direct[a.target] = {}
        for term in _terms(a.rhs):
            if isinstance(term, ir.MatVec):
                gname = _group_name(cell, term.args[1])
                if groups[gname].kind in ("input", "recurrent"):
                    direct[a.target].setdefault(gname, term)

    def category(z):
        has_x = input_group is not None and input_group.name in direct[z]
        has_r = any(groups[n].kind == "recurrent" for n in direct[z])
        return 0 if not has_x and not has_r else 1 if not has_r else 2 if has_x else 3

    def act_name(z):
        return type(gate_of[z].rhs).__name__ if z in gate_of else "~"

    order = {a.target: k for k, a in enumerate(cell.assignments)}
    zs = sorted((a.target for a in aux), key=lambda z: (category(z), levels[z] + 1, act_name(z), order[z]))
    blocks = []
    for z in zs:
        gate = gate_of.get(z)
        blocks.append(Block(name=(ir.ref(gate.target).key if gate else ir.ref(z).sub).replace(",", "_"),
                            dim=_dim_of(cell, z), z=z, act=act_name(z) if gate else None,
                            gate=gate.target if gate else None, grad=ir.adjoint(z)))
    # weight-gradient terms (g, a): the block holding g, per group
    grad_block: dict = {b.grad: b for b in blocks}
    for pg in d.params:
        for g, arg in pg.terms:
            if arg is None:
                continue
            gname = _group_name(cell, arg)
            if g not in grad_block:
                dim = cell.params[pg.param.key].shape[0]
                blk = Block(name=ir.ref(pg.param.symbol).key.replace("W_", "").replace("_", ""), dim=dim, grad=g)
                grad_block[g] = blk
                blocks.append(blk)
            b = grad_block[g]
            if gname not in b.groups:
                b.groups = b.groups + (gname,)
    # atoms in each group follow the column order of their gradient blocks
    atom_block = {}
    for pg in d.params:
        for g, arg in pg.terms:
            if arg is None:
                continue
            m = ir.MatVec(pg.param.symbol, arg)
            if atom_block.setdefault(m, grad_block[g]) is not grad_block[g]:
                raise CodegenError(f"the product {ir_text(m)} feeds two pre-activations; the kernels need a "
                                   f"matrix product per use (name the product as a vector of its own)")
    col = {id(b): k for k, b in enumerate(blocks)}
    for g in groups.values():
        g.atoms.sort(key=lambda m: col[id(atom_block[m])])
    offset = sp.Integer(0)
    for b in blocks:
        b.start = offset
        offset = offset + b.dim

    # input-GEMM bias folding: a z whose sum has x and bias terms
    folded = {}
    for z in zs:
        if input_group is not None and input_group.name in direct[z]:
            rhs = cell.assignment(z).rhs
            folded[z] = [t for t in _terms(rhs) if isinstance(t, sp.Symbol) and ir.ref(t).time is None]

    schedule = sorted(cell.assignments, key=lambda a: (
        levels[a.target], col.get(id(next((b for b in blocks if b.gate == a.target or b.z == a.target), None)), 1e9),
        order[a.target]))
    saved = _saved(cell, d, blocks)
    return Plan(cell, d, groups, blocks, levels, schedule, saved, folded, atom_block)


def _backward_exprs(d: Derivation) -> list:
    out = []
    for a in d.adjoints:
        out += a.terms
    for c in d.carries.values():
        out += c.terms
    out += d.input_grad.terms
    for pg in d.params:
        for g, arg in pg.terms:
            out += [g] + ([arg] if arg is not None else [])
    return out


def _saved(cell: Cell, d: Derivation, blocks) -> dict:
    """Forward quantities the backward reads at time t: symbol or sub-expression -> name."""
    saved = {}
    gates = {b.gate for b in blocks if b.gate is not None}
    for e in _backward_exprs(d):
        for s in _time_free(e):
            r = ir.ref(s)
            if r.adjoint or r.time != 0 or s in gates or s in cell.states or s == cell.input:
                continue
            if any(b.z == s for b in blocks):
                continue
            saved[s] = code_name(s).removesuffix("_t") + "_all"
        for f in e.atoms(acts.Activation):
            if not f.args[0].free_symbols or f.args[0] in {b.z for b in blocks}:
                continue
            saved[f] = f"{type(f).__name__}_{code_name(f.args[0]).removesuffix('_t')}_all"
        for m in e.atoms(ir.MatVec):
            saved[m] = None  # served from the saved group buffer
    return saved


# ------------------------------------------------------------------ emission
def _ws(name: str, shape: str) -> str:
    """A sequence-sized buffer: from the kernel's workspace (reused when nothing refers to it)."""
    return f"WORKSPACE.empty({name!r}, {shape}, dtype)"


def _dim_code(dim) -> str:
    return str(dim)


def _kslice(blocks: list) -> str:
    """``slice`` over consecutive blocks in a step of the block-major ``a`` (B rows per block)."""
    start = blocks[0].start
    return f"slice({'0' if start == 0 else f'B * {_dim_code(start)}'}, B * {_dim_code(blocks[-1].stop)})"


def _span(blocks: list) -> str:
    """``slice(start, stop)`` over consecutive blocks, in terms of the dimensions."""
    return f"slice({_dim_code(blocks[0].start)}, {_dim_code(blocks[-1].stop)})"


def _used_views(body: list[str]) -> list[str]:
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


def _runs(items: list, key) -> list[list]:
    """Maximal runs of consecutive items with equal ``key`` (None never joins)."""
    out: list[list] = []
    for it in items:
        k = key(it)
        if out and k is not None and key(out[-1][-1]) == k:
            out[-1].append(it)
        else:
            out.append([it])
    return out


class Writer:
    """Builds the lines of ``forward`` and ``backward`` for one plan."""

    def __init__(self, plan: Plan):
        self.p = plan
        self.cell = plan.cell
        self.pools: dict[str, Pool] = {}
        self.order = {id(b): k for k, b in enumerate(plan.blocks)}
        self.bufs: list[tuple] = []  # (name, dim) per-step buffers to allocate before the loop
        self.spans: dict[str, str] = {}  # slice name -> slice(...) for runs of blocks
        self.views: dict[str, str] = {}  # view name -> its definition, made once before the loop
        self.step_lines: list[str] = []  # ``name = name_all[t]``: the per-step views, first in the loop

    def span(self, blocks) -> str:
        """The name of a slice over consecutive blocks (a single block's is ``s_i``)."""
        if len(blocks) == 1:
            return f"s_{blocks[0].name}"
        name = "s_" + "".join(b.name for b in blocks)
        self.spans[name] = _span(blocks)
        return name

    def step_view(self, name: str, base: str, index: str, shape: str | None = None,
                  transpose: bool = False) -> str:
        """``name``: a view of step t of the sequence buffer ``base`` (``a``, ``z``, ``dz`` or a
        kept product). It is made once for every step before the loop (``name_all``, with a
        leading time axis), so a step costs one index, ``name = name_all[t]``, instead of a
        slice, a reshape and a transpose per use (at small sizes those were a third of the time)."""
        whole = name.removesuffix("_t") + "_all"
        code = f"{base}[{':, ' if base == 'a' else ':, :, '}{index}]"
        if shape:
            code += f".reshape(T, {shape})"
        if transpose:
            code += ".transpose(0, 2, 1, 3)"
        if self.views.setdefault(whole, code) != code:
            raise ValueError(f"two views named {whole}")
        line = f"{name} = {whole}[t]"
        if line not in self.step_lines:
            self.step_lines.append(line)
        return name

    def fixed_view(self, name: str, code: str) -> str:
        """``name``: a view of a buffer every step reuses (``da``, a recurrent product), made once."""
        if self.views.setdefault(name, code) != code:
            raise ValueError(f"two views named {name}")
        return name

    def product_view(self, g: Group, lo, hi, name: str) -> str:
        """Columns lo:hi of step t's product of group ``g`` (the whole product: ``gW_t``)."""
        total = sum((self.grad_block_of(m).dim for m in g.atoms), sp.Integer(0))
        if lo == 0 and hi == total:
            return f"{g.name}W_t"
        cols = f"{_dim_code(lo)}:{_dim_code(hi)}"
        if any(m in self.p.saved for m in g.atoms):
            return self.step_view(name, f"{g.name}W_all", cols)
        return self.fixed_view(name, f"{g.name}W[:, {cols}]")

    def row_view(self, base: str, blocks) -> str:
        """Columns of consecutive blocks in step t of ``z`` or ``dz`` ((B, width), batch-major)."""
        last = (self.zblocks if base == "z" else self.p.blocks)[-1]
        if blocks[0].start == 0 and blocks[-1].stop == last.stop:
            return f"{base}_row"
        return self.step_view(f"{base}_{''.join(b.name for b in blocks)}_cols", base, self.span(blocks))

    def buf(self, name, dim) -> str:
        if (name, dim) not in self.bufs:
            self.bufs.append((name, dim))
        return name

    # names --------------------------------------------------------------
    def pool(self, dim) -> Pool:
        key = str(dim)
        if key not in self.pools:
            self.pools[key] = Pool(re.sub(r"\W", "", key).lower())
        return self.pools[key]

    def equation(self, a) -> str:
        return f"{ir_text(a.target)} = {ir_text(a.rhs)}"

    def state_of(self, sym):
        return sym in self.cell.states

    @property
    def zblocks(self):
        return [b for b in self.p.blocks if b.z is not None]

    def group_range(self, g: Group):
        """Blocks whose gradient feeds the group's weight gradient, if contiguous."""
        cols = [b for b in self.p.blocks if g.name in b.groups]
        idx = [self.order[id(b)] for b in cols]
        contiguous = idx == list(range(idx[0], idx[0] + len(idx))) if idx else False
        return cols, contiguous

    def atom_view(self, m) -> str:
        return f"{code_name(m.args[0])}_{_arg_name(m.args[1], self.cell.input)}"

    # -------------------------------------------------------------- prologue
    def sizes(self) -> list[str]:
        cell = self.cell
        lines = ["T, B, I = x.shape"]
        done = {"I"}
        for p in cell.params.values():
            for axis, dim in enumerate(p.shape):
                if str(dim) not in done:
                    done.add(str(dim))
                    lines.append(f"{dim} = {code_name(p.symbol)}.shape[{axis}]")
        return lines

    def fused_weights(self, forward: bool = False) -> list[str]:
        """One matrix per GEMM argument. The forward's per-step products read theirs
        row-major (a_{t-1} W is fastest so); the backward's ``dz W^T`` reads the transpose."""
        lines = []
        for g in self.p.groups.values():
            ws = ", ".join(self.half(code_name(m.args[0]), self.grad_block_of(m)) if forward else code_name(m.args[0])
                           for m in g.atoms)
            blocks = " | ".join(self.grad_block_of(m).name for m in g.atoms)
            fused = f"np.concatenate([{ws}]).T"
            if forward and g.kind != "input":
                fused = f"np.ascontiguousarray({fused})"
            lines.append(f"W_{g.name} = {fused}  # ({self.arg_dim(g)}, columns {blocks})")
        return lines

    def grad_block_of(self, m) -> Block:
        return self.p.atom_block[m]

    def arg_dim(self, g: Group):
        if g.arg == self.cell.input:
            return "I"
        return _dim_code(self.cell.params[ir.ref(g.atoms[0].args[0]).key].shape[1])

    def slices(self) -> list[str]:
        lines = []
        for b in self.p.blocks:
            lines.append(f"s_{b.name} = slice({_dim_code(b.start)}, {_dim_code(b.stop)})")
        for b in self.gate_blocks:
            lines.append(f"k_{b.name} = {_kslice([b])}  # gate {b.name} in a step of a: rows (B, {b.dim})")
        return lines

    @cached_property
    def gate_blocks(self) -> list:
        """Blocks whose activation's output lives in ``a`` (gates that are not states)."""
        return [b for b in self.zblocks if b.gate is not None and not self.state_of(b.gate)]

    def kspan(self, blocks) -> str:
        """The name of a slice of a step of ``a`` (block-major) over consecutive blocks."""
        if len(blocks) == 1:
            return f"k_{blocks[0].name}"
        name = "k_" + "".join(b.name for b in blocks)
        self.spans[name] = _kslice(blocks)
        return name

    def run_views(self, blocks) -> dict:
        """Views of a run of equal-width blocks, all of one shape: (B, D) for one block,
        (n, B, D) for several. ``a``/``da`` are block-major (contiguous); ``z``/``dz`` rows
        are batch-major (the GEMMs' layout) and are read through a transposed view."""
        n, D = len(blocks), _dim_code(blocks[0].dim)
        s, k = self.span(blocks), self.kspan(blocks)
        in_a = all(b in self.gate_blocks for b in blocks)
        if n == 1:
            b = blocks[0]
            return {"a": self.step_view(code_name(b.gate), "a", k, f"B, {D}") if in_a else None,
                    "da": self.fixed_view(f"d{code_name(b.gate)}", f"da[{k}].reshape(B, {D})") if in_a else None,
                    "z": self.step_view(f"z_{b.name}_t", "z", s), "dz": self.step_view(f"dz_{b.name}_t", "dz", s),
                    "dim": b.dim}
        names = "".join(b.name for b in blocks)
        return {"a": self.step_view(f"a_{names}", "a", k, f"{n}, B, {D}") if in_a else None,
                "da": self.fixed_view(f"da_{names}", f"da[{k}].reshape({n}, B, {D})") if in_a else None,
                "z": self.step_view(f"z_{names}", "z", s, f"B, {n}, {D}", transpose=True),
                "dz": self.step_view(f"dz_{names}", "dz", s, f"B, {n}, {D}", transpose=True),
                "dim": f"{n}, B, {D}"}

    # ------------------------------------------------------------- forward
    def forward(self) -> list[str]:
        p, cell = self.p, self.cell
        NZ = _dim_code(self.zblocks[-1].stop) if self.zblocks else "0"
        L: list[str] = []
        L += self.sizes()
        sizes = ", ".join(f"{ir.ref(s).key!r}: {_dim_code(_dim_of(cell, s))}" for s in cell.states)
        L.append(f"states0 = _interop.initial_states(states0, {{{sizes}}}, B, dtype)")
        L += self.slices()
        inp = next((g for g in p.groups.values() if g.kind == "input"), None)
        xblocks = [b for b in self.zblocks if inp is not None and inp.name in b.groups]
        L.append("")
        L.append("# fused weights: one matrix per GEMM argument, columns in the order of the blocks")
        L += self.fused_weights(forward=True)
        L.append("")
        L.append(f"z = {_ws('z', f'(T, B, {NZ})')}  # pre-activations, columns "
                 + " | ".join(f"z_{b.name}" + ("/2" if id(b) in self.halved else "") for b in self.zblocks))
        if self.halved:
            L.append("# (z/2 where the weights and biases above are halved: sigma(z) = (1 + tanh(z/2)) / 2)")
        shared = {id(b) for b, _ in self.shared()}
        if xblocks:
            xs = _span(xblocks)
            L.append("# input projection of every step in one GEMM")
            full = xblocks[0].start == 0 and xblocks[-1].stop == self.zblocks[-1].stop
            target = f"z.reshape(T * B, {NZ})" if full else f"z.reshape(T * B, {NZ})[:, {xs}]"
            if full:
                L.append(f"np.matmul(x.reshape(T * B, I), W_{inp.name}, out={target})")
            else:
                L.append(f"{target}[...] = x.reshape(T * B, I) @ W_{inp.name}")
            rest = [b for b in xblocks if id(b) not in shared and p.folded.get(b.z)]
            for b in rest:
                L.append(f"z[:, :, s_{b.name}] += {' + '.join(code_name(s) for s in p.folded[b.z])}"
                         f"  # the bias of z_{b.name}")
        for g, blocks, first in self.shared_runs():
            bs = [self.half(" + ".join(code_name(s) for s in p.folded.get(b.z, [])), b)
                  if p.folded.get(b.z) else f"np.zeros({b.dim}, dtype)" for b in blocks]
            L.append(f"b_{g.name}{''.join(b.name for b in blocks)} = np.concatenate([{', '.join(bs)}])"
                     f"  # biases of the blocks, added to the recurrent product each step")
        if self.gate_blocks:
            L.append(f"a = {_ws('a', f'(T, B * {NZ})')}  # gate outputs, block-major: each gate's (B, dim) rows"
                     " one after another, so every gate is contiguous")
        else:
            L.append("a = None")
        for s in cell.states:
            n = code_name(s).removesuffix("_t")
            L.append(f"{n}_all = {_ws(n + '_all', f'(T + 1, B, {_dim_code(_dim_of(cell, s))})')}")
            L.append(f"{n}_all[0] = states0[{ir.ref(s).key!r}]")
        for e, name in sorted(p.saved.items(), key=lambda kv: str(kv[1])):
            if name is None:
                continue
            dim = self.expr_dim(e)
            L.append(f"{name} = {_ws(name, f'(T, B, {dim})')}  # kept for the backward pass")
        out_gate = next((b for b in self.gate_blocks if b.gate == cell.output), None)  # y lives in a
        if cell.output not in cell.states and cell.output not in p.saved and out_gate is None:
            p.saved[cell.output] = code_name(cell.output).removesuffix("_t") + "_all"
            L.append(f"{p.saved[cell.output]} = {_ws(p.saved[cell.output], f'(T, B, {self.expr_dim(cell.output)})')}"
                     "  # outputs")
        for g in p.groups.values():
            if g.kind == "input":
                continue
            n = _dim_code(sum((self.grad_block_of(m).dim for m in g.atoms), sp.Integer(0)))
            keep = any(m in p.saved for m in g.atoms)
            if keep:
                L.append(f"{g.name}W_all = {_ws(g.name + 'W_all', f'(T, B, {n})')}  # kept: the backward reads it")
            else:
                L.append(f"{g.name}W = np.empty((B, {n}), dtype)")
            if g.kind == "late" and f"{g.name}_all" not in p.saved.values():
                L.append(f"{g.name}_all = {_ws(g.name + '_all', f'(T, B, {self.arg_dim(g)})')}  # GEMM argument, kept")
        scratch_at = len(L)
        L.append("")
        L.append("for t in range(T):")
        body = self.loop_body(self.forward_step())
        L += ["    " + ln if ln else "" for ln in body]
        L[scratch_at:scratch_at] = self.scratch_lines(body)
        y = (f"{code_name(cell.output).removesuffix('_t')}_all[1:]" if cell.output in cell.states
             else f"a[:, k_{out_gate.name}].reshape(T, B, {_dim_code(out_gate.dim)})" if out_gate is not None
             else p.saved[cell.output])
        states = ", ".join(f"{ir.ref(s).key!r}: {code_name(s).removesuffix('_t')}_all[T]" for s in cell.states)
        keep = ["x", "z", "a"] + [f"{code_name(s).removesuffix('_t')}_all" for s in cell.states]
        keep += sorted({n for n in p.saved.values() if n})
        keep += [f"{g.name}W_all" for g in p.groups.values() if any(m in p.saved for m in g.atoms)]
        keep += [f"{g.name}_all" for g in p.groups.values() if g.kind == "late"]
        L.append("")
        L.append("cache = {" + ", ".join(f"{k!r}: {k}" for k in dict.fromkeys(keep)) + "}")
        L.append(f"return {y}, {{{states}}}, cache")
        return L

    def expr_dim(self, e):
        syms = [s for s in e.free_symbols if ir.is_ir(s) and ir.ref(s).time is not None]
        return _dim_code(_dim_of(self.cell, syms[0]))

    def loop_body(self, body: list[str]) -> list[str]:
        """The step's lines, its per-step views first, unused views dropped."""
        body = _used_views(self.step_lines + body)
        self.step_lines = []
        return body

    def scratch_lines(self, body: list[str]) -> list[str]:
        """Slices, per-step buffers, scratch and the views the loop ``body`` reads, made before it."""
        out = [f"{n} = {v}" for n, v in self.spans.items()]
        for n, dim in self.bufs:
            out.append(f"{n} = np.empty((B, {_dim_code(dim)}), dtype)")
        for key, pool in sorted(self.pools.items()):
            shape = f"({key})" if "B" in key.split(", ") else f"(B, {key})"
            for n in pool.names:
                out.append(f"{n} = np.empty({shape}, dtype)  # scratch")
        views = [f"{n} = {v}" for n, v in self.views.items() if any(re.search(rf"\b{n}\b", ln) for ln in body)]
        if views:
            out.append("# views of every step (a step takes one index of each) and of the reused buffers")
            out += views
        self.pools, self.bufs, self.spans, self.views = {}, [], {}, {}
        return out

    def names_at_t(self) -> dict:
        """IR symbols at time t -> code names, for the forward and backward steps."""
        cell, p = self.cell, self.p
        names = {}
        for prm in cell.params.values():
            names[prm.symbol] = code_name(prm.symbol)
        for s in cell.states:
            names[s] = code_name(s)
            names[ir.at(s, -1)] = code_name(ir.at(s, -1))
        names[cell.input] = "x_t"
        for b in self.zblocks:
            names[b.z] = f"z_{b.name}_t"
            if b.gate is not None:
                names[b.gate] = code_name(b.gate)
        for e, n in p.saved.items():
            if n is not None:
                names[e] = n.removesuffix("_all") + "_t"
        for g in p.groups.values():
            for m in g.atoms:
                names[m] = self.atom_view(m)
        return names

    def view_lines(self) -> list[str]:
        """``h_prev = h_all[t]`` ... for the symbols a step reads."""
        cell, p = self.cell, self.p
        L = []
        for s in cell.states:
            n = code_name(s).removesuffix("_t")
            L.append(f"{n}_prev = {n}_all[t]")
            L.append(f"{n}_t = {n}_all[t + 1]")
        L.append("x_t = x[t]")
        L.append("z_row = z[t]")
        for b in self.zblocks:
            self.step_view(f"z_{b.name}_t", "z", f"s_{b.name}")
            if b in self.gate_blocks:
                self.step_view(code_name(b.gate), "a", f"k_{b.name}", f"B, {_dim_code(b.dim)}")
        for e, n in sorted(p.saved.items(), key=lambda kv: str(kv[1])):
            if n is not None:
                L.append(f"{n.removesuffix('_all')}_t = {n}[t]")
        for g in p.groups.values():
            if g.kind == "input":
                continue
            buf = f"{g.name}W_all[t]" if any(m in p.saved for m in g.atoms) else f"{g.name}W"
            L.append(f"{g.name}W_t = {buf}")
            off = sp.Integer(0)
            for m in g.atoms:
                blk = self.grad_block_of(m)
                view = self.product_view(g, off, off + blk.dim, self.atom_view(m))
                if view != self.atom_view(m):
                    L.append(f"{self.atom_view(m)} = {view}")
                off += blk.dim
            if g.kind == "late" and f"{g.name}_all" not in p.saved.values():
                L.append(f"{g.name}_t = {g.name}_all[t]")
        return L

    def shared(self) -> list:
        """(block, recurrent group) for blocks whose z adds an input and a recurrent product."""
        p = self.p
        out = []
        for b in self.zblocks:
            rec = [g for g in p.groups.values() if g.kind == "recurrent" and g.name in b.groups]
            if rec and any(g.kind == "input" and g.name in b.groups for g in p.groups.values()):
                out.append((b, rec[0]))
        return out

    @cached_property
    def halved(self) -> set:
        """Sigmoid gates whose z is exactly W_x x + W_h h + b (ids of their blocks). Their
        columns of the fused weights and biases are scaled by 1/2 in the forward pass, so the
        GEMMs give z/2 and sigma(z) = (1 + tanh(z/2))/2 costs one pass less. Exact: scaling by
        1/2 only changes the exponent. Only when the backward reads gate outputs, not z."""
        if not self.inplace():
            return set()
        cell, out = self.cell, set()
        for b, g in self.shared():
            if b.act != "sigmoid" or self.state_of(b.gate):
                continue
            gemm = {m for m in g.atoms if self.grad_block_of(m) is b}
            terms = _terms(cell.assignment(b.z).rhs)
            if all(t in gemm or t in self.p.folded.get(b.z, []) or
                   (isinstance(t, ir.MatVec) and t.args[1] == cell.input) for t in terms):
                out.add(id(b))
        return out

    def half(self, code: str, block) -> str:
        """``code`` scaled by 1/2 when ``block`` is a halved sigmoid gate."""
        return f"0.5 * {code}" if id(block) in self.halved else code

    def shared_runs(self) -> list:
        """(group, blocks, column offset in the group's product) per run of shared blocks."""
        out = []
        for run in _runs(self.shared(), key=lambda bg: bg[1].name):
            g = run[0][1]
            blocks = [b for b, _ in run]
            off, first = sp.Integer(0), None
            for m in g.atoms:
                blk = self.grad_block_of(m)
                if blk is blocks[0]:
                    first = off
                off += blk.dim
            out.append((g, blocks, first))
        return out

    def inplace(self) -> bool:
        """The backward pass reads gate outputs only, never a gate's pre-activation z."""
        gates = [b for b in self.zblocks if b.gate is not None]
        if any(b.act not in OUTPUT_DERIVATIVE for b in gates):
            return False
        read = set()
        for e in _backward_exprs(self.p.d):
            read |= e.free_symbols
        return not any(b.z in read for b in gates)

    def forward_step(self) -> list[str]:
        p, cell = self.p, self.cell
        names = self.names_at_t()
        L = self.view_lines()
        pending = [f for f, n in p.saved.items() if n and isinstance(f, acts.Activation)]
        known = set()  # targets computed so far in this step
        L += self.saved_activations(pending, known, names)
        # recurrent GEMMs: one per argument
        for g in p.groups.values():
            if g.kind == "recurrent":
                L.append(f"np.matmul({names[g.arg]}, W_{g.name}, "
                         f"out={g.name}W_t)  # " + " | ".join(ir_text(m) for m in g.atoms))
        # pre-activations: the direct recurrent products (and biases) of a run of blocks in one add
        for g, blocks, first in self.shared_runs():
            width = self.width(blocks)
            zs = self.row_view("z", blocks)
            hs = self.product_view(g, first, first + width, f"{g.name}W_{''.join(b.name for b in blocks)}")
            bias = f"b_{g.name}{''.join(b.name for b in blocks)}"
            L.append(f"np.add({hs}, {bias}, out={hs})")
            L.append(f"np.add({zs}, {hs}, out={zs})"
                     f"  # + " + " + ".join(ir_text(m) for m in g.atoms if self.grad_block_of(m) in blocks) + " + b")
        handled = {}  # z -> terms already in the buffer
        for b, g in self.shared():
            handled[b.z] = [m for m in g.atoms if self.grad_block_of(m) is b]
        inp = next((g for g in p.groups.values() if g.kind == "input"), None)
        levels = sorted({p.levels[a.target] for a in p.schedule})
        late_done = set()
        for lev in levels:
            at = [a for a in p.schedule if p.levels[a.target] == lev]
            L += self.saved_activations(pending, known, names)
            known |= {a.target for a in at}
            for g in p.groups.values():
                if g.kind == "late" and g.name not in late_done and any(
                        m in a.rhs.atoms(ir.MatVec) for a in at for m in g.atoms):
                    late_done.add(g.name)
                    L.append(f"# GEMM argument {ir_text(g.arg)}")
                    L += self.emit(g.arg, f"{g.name}_t", names)
                    L.append(f"np.matmul({g.name}_t, W_{g.name}, out={g.name}W_t)")
            gate_runs = []
            for a in at:
                blk = next((b for b in self.zblocks if b.z == a.target), None)
                if blk is not None:  # a pre-activation: what the GEMMs did not add
                    rest = [t for t in _terms(a.rhs) if t not in handled.get(a.target, [])]
                    if inp is not None and inp.name in blk.groups:
                        rest = [t for t in rest if t not in p.folded.get(a.target, [])
                                and not (isinstance(t, ir.MatVec) and t.args[1] == cell.input)]
                        if rest:
                            L.append(f"# {self.equation(a)}")
                            L += self.emit(a.target + sp.Add(*rest), names[a.target], names)
                    else:
                        L.append(f"# {self.equation(a)}")
                        L += self.emit(a.rhs, names[a.target], names)
                    continue
                gblk = next((b for b in self.zblocks if b.gate == a.target), None)
                if gblk is not None and not self.state_of(a.target):
                    gate_runs.append((gblk, a))
                    continue
                L.append(f"# {self.equation(a)}")
                out = names[a.target] if (a.target in cell.states or a.target in p.saved) else None
                if out is None:
                    out = names[a.target] = self.buf(code_name(a.target), _dim_of(cell, a.target))
                L += self.emit(a.rhs, out, names)
            for part in self._contiguous(sorted(gate_runs, key=lambda ba: self.order[id(ba[0])])):
                blocks = [b for b, _ in part]
                L.append("# " + "; ".join(self.equation(a) for _, a in part))
                fn = part[0][1].rhs
                v = self.run_views(blocks)
                if id(blocks[0]) in self.halved:  # the GEMMs gave z/2
                    L.append(f"np.tanh({v['z']}, out={v['a']})")
                    L.append(f"np.multiply({v['a']}, 0.5, out={v['a']})")
                    L.append(f"np.add({v['a']}, 0.5, out={v['a']})")
                    continue
                L += self.emit(fn.func(sp.Symbol("__zrun")), v["a"], {sp.Symbol("__zrun"): v["z"]}, dim=v["dim"])
        L += self.saved_activations(pending, known, names)
        if pending:
            raise CodegenError(f"cannot compute {', '.join(map(ir_text, pending))} in the forward step")
        return L

    def saved_activations(self, pending: list, known: set, names: dict) -> list[str]:
        """Kept activations of quantities known by now (``tanh(c_t)``, ``tanh(h_{t-1})``),
        each written into its per-step buffer once; ``pending`` loses what is written."""
        L = []
        for f in sorted(pending, key=sp.default_sort_key):
            if all(ir.ref(s).time != 0 or s in known or s == self.cell.input
                   for s in f.free_symbols if ir.is_ir(s)):
                pending.remove(f)
                L.append(f"# {ir_text(f)}, kept for the backward pass")
                L += self.emit(f, names[f], {k: v for k, v in names.items() if k != f})
        return L

    def _contiguous(self, run):
        """Split a run of (block, assignment) at gaps in the column order or parameter changes."""
        parts: list[list] = []
        for b, a in run:
            if parts:
                pb, pa = parts[-1][-1]
                if self.order[id(b)] == self.order[id(pb)] + 1 and type(a.rhs) is type(pa.rhs) and \
                        not self.state_of(a.target) and not self.state_of(pa.target) and \
                        a.rhs.exact_params() == pa.rhs.exact_params() and b.dim == pb.dim and \
                        (id(b) in self.halved) == (id(pb) in self.halved):
                    parts[-1].append((b, a))
                    continue
            parts.append([(b, a)])
        return parts

    def width(self, blocks):
        return sum((b.dim for b in blocks), sp.Integer(0))

    def emit(self, expr, out: str, names: dict, dim=None, strided: bool = False) -> list[str]:
        for s in expr.free_symbols if dim is None else ():
            if ir.is_ir(s) and ir.ref(s).time is not None:
                dim = _dim_of(self.cell, s)
                break
        pool = self.pool(dim if dim is not None else sp.Symbol("H"))
        return Emitter(names, pool).emit(expr, out, strided=strided)

    # ------------------------------------------------------------ backward
    def backward(self) -> list[str]:
        p, cell = self.p, self.cell
        L: list[str] = []
        L += ["x, z, a = cache['x'], cache['z'], cache['a']"]
        for s in cell.states:
            n = code_name(s).removesuffix("_t") + "_all"
            L.append(f"{n} = cache[{n!r}]")
        for n in sorted({n for n in p.saved.values() if n}):
            L.append(f"{n} = cache[{n!r}]")
        for g in p.groups.values():
            if any(m in p.saved for m in g.atoms):
                L.append(f"{g.name}W_all = cache['{g.name}W_all']")
            if g.kind == "late" and f"{g.name}_all" not in p.saved.values():
                L.append(f"{g.name}_all = cache['{g.name}_all']")
        L += self.sizes()
        L += self.slices()
        L.append("")
        L += self.fused_weights()
        ND = _dim_code(self.p.blocks[-1].stop)
        L.append("")
        L.append("steps = T if truncate is None else max(0, min(T, int(truncate)))")
        L.append(f"dz = {_ws('dz', f'(T, B, {ND})')}  # adjoints of the pre-activations (and products), "
                 + " | ".join(f"d{b.name}" for b in p.blocks))
        L.append(f"da = np.empty(B * {ND}, dtype)  # adjoints of the gate outputs, block-major as a step of a")
        L.append(f"dy_zero = np.zeros((B, {self.expr_dim(cell.output)}), dtype)  # dy_t when dy is None")
        for s in cell.states:
            key = ir.ref(s).key
            L.append(f"d{code_name(s).removesuffix('_t')}_carry = np.zeros((B, {_dim_code(_dim_of(cell, s))}), dtype)")
            L.append(f"if dstates_T is not None and dstates_T.get({key!r}) is not None:")
            L.append(f"    d{code_name(s).removesuffix('_t')}_carry[...] = dstates_T[{key!r}]")
        for key in sorted(self.in_loop):
            prm = cell.params[key]
            L.append(f"d{code_name(prm.symbol)}_sum = np.zeros({_dim_code(prm.shape[0])}, dtype)")
        scratch_at = len(L)
        L.append("")
        L.append("for t in range(T - 1, T - 1 - steps, -1):")
        body = self.loop_body(self.backward_step())
        L += ["    " + ln if ln else "" for ln in body]
        L[scratch_at:scratch_at] = self.scratch_lines(body)
        L.append("")
        L += self.after_loop()
        return L

    def backward_names(self) -> dict:
        p, cell = self.p, self.cell
        names = self.names_at_t()
        for s in cell.states:
            names[ir.adjoint(s)] = self.buf(f"d{code_name(s)}", _dim_of(cell, s))
        for b in p.blocks:
            if b.z is not None:
                names[ir.adjoint(b.z)] = f"dz_{b.name}_t"
                if b.gate is not None and not self.state_of(b.gate):
                    names[ir.adjoint(b.gate)] = f"d{code_name(b.gate)}"
        names[DY] = "dy_t"
        return names

    def backward_step(self) -> list[str]:
        p, cell, d = self.p, self.cell, self.p.d
        names = self.backward_names()
        L = self.view_lines()
        L.append("dz_row = dz[t]")
        for b in p.blocks:
            self.step_view(f"d{b.name if b.z is None else 'z_' + b.name}_t", "dz", f"s_{b.name}")
            if b in self.gate_blocks:
                self.fixed_view(f"d{code_name(b.gate)}", f"da[k_{b.name}].reshape(B, {_dim_code(b.dim)})")
        for s in cell.states:
            self.pool(_dim_of(cell, s))
        L.append("dy_t = dy[t] if dy is not None else dy_zero")
        adj = {a.target: a for a in d.adjoints}
        done_T = {}
        gates = {b.gate: b for b in self.zblocks if b.gate is not None}
        for lev in sorted({p.levels[a.target] for a in p.schedule}, reverse=True):
            at = [a for a in reversed(p.schedule) if p.levels[a.target] == lev]
            runs = []
            for a in at:
                if a.aux:
                    continue  # written with its gate below, or from its own terms
                t = a.target
                adjoint = adj[t]
                out = names.get(ir.adjoint(t))
                if out is None:
                    out = names[ir.adjoint(t)] = self.buf(f"d{code_name(t)}", _dim_of(cell, t))
                terms = list(adjoint.own)
                expr = sp.Add(*terms)
                if adjoint.carried or t in cell.states:  # a state gets dstates_T at the last step
                    carry = sp.Symbol(f"__carry_{ir.ref(t).key}")
                    names[carry] = f"d{code_name(t).removesuffix('_t')}_carry"
                    expr = expr + carry
                L.append(f"# d{ir_text(t)} = " + " + ".join(ir_text(e) for e in adjoint.terms))
                L += self.matvec_t(expr, names, done_T)
                L += self.emit(expr, out, names)
                if t in gates:
                    runs.append((gates[t], a))
            # pre-activation adjoints: f'(z) from the saved output, a whole run at once
            for part in self._contiguous(sorted(runs, key=lambda ba: self.order[id(ba[0])])):
                blocks = [b for b, _ in part]
                v = self.run_views(blocks)
                fn = part[0][1].rhs
                name = type(fn).__name__
                state_gate = self.state_of(part[0][1].target)
                dv = names[ir.adjoint(part[0][1].target)] if state_gate else v["da"]
                y = names[part[0][1].target] if state_gate else v["a"]
                dzv = v["dz"]
                L.append("# " + "; ".join(f"d{ir_text(b.z)} = " + ir_text(ir.adjoint(b.gate) * (
                    OUTPUT_DERIVATIVE[name](b.gate) if name in OUTPUT_DERIVATIVE else fn.fdiff().xreplace(
                        {fn.args[0]: b.z}))) for b in blocks))
                self.check_gate_adjoint(blocks)
                if name in OUTPUT_DERIVATIVE:
                    Y, DV = sp.Symbol("__y"), sp.Symbol("__dv")
                    L += self.emit(DV * OUTPUT_DERIVATIVE[name](Y), dzv, {Y: y, DV: dv}, dim=v["dim"], strided=True)
                else:
                    zv = v["z"]
                    call = derivative_call(fn).format(a=zv)
                    L.append(f"np.multiply({dv}, {call}, out={dzv})")
            # pre-activations that feed something other than one gate: from their own terms
            for a in at:
                if a.aux and not any(b.z == a.target and b.gate is not None for b in self.zblocks):
                    expr = sp.Add(*adj[a.target].own)
                    L.append(f"# d{ir_text(a.target)} = {ir_text(expr)}")
                    L += self.matvec_t(expr, names, done_T)
                    L += self.emit(expr, names[ir.adjoint(a.target)], names)
        # extra gradient blocks (e.g. dz_n (.) r_t for W_hn)
        for b in p.blocks:
            if b.z is None:
                L.append(f"# gradient block of {', '.join(b.groups)}: {ir_text(b.grad)}")
                L += self.emit(b.grad, f"d{b.name}_t", names)
        # vector-parameter gradients that read this step's adjoints: accumulated here
        for pg in d.params:
            if pg.param.key in self.in_loop:
                expr = sp.Add(*[g for g, _ in pg.terms])
                dim = pg.param.shape[0]
                acc = f"d{code_name(pg.param.symbol)}_sum"
                tmp = self.buf(f"d{code_name(pg.param.symbol)}_t", dim)
                L.append(f"# dL/d{pg.param.key} += sum over the batch of {ir_text(expr)}")
                L += self.emit(expr, tmp, names)
                L.append(f"{acc} += {tmp}.sum(axis=0)")
        # carries to step t-1
        for s in cell.states:
            key = ir.ref(s).key
            carry = d.carries[key]
            out = f"d{code_name(s).removesuffix('_t')}_carry"
            L.append(f"# d{ir_text(ir.at(s, -1))} = " + " + ".join(ir_text(e) for e in carry.terms))
            L += self.carry(carry.terms, out, names, done_T)
        return L

    def check_gate_adjoint(self, blocks):
        """The derivation's dz_v must be dv * A'(z) for the rule used here."""
        adj = {a.target: a for a in self.p.d.adjoints}
        for b in blocks:
            own = adj[b.z].own
            fn = self.cell.assignment(b.gate).rhs
            expect = ir.adjoint(b.gate) * fn.fdiff().xreplace(self.p.d.forward)
            if len(own) != 1 or sp.simplify(own[0] - expect) != 0:
                raise ValueError(f"unexpected adjoint for {b.z}: {own}")

    def matvec_t(self, expr, names, done) -> list[str]:
        """GEMMs for the ``W^T g`` atoms of an adjoint expression not computed yet."""
        L = []
        for m in sorted(expr.atoms(ir.MatVecT), key=sp.default_sort_key):
            if m in names:
                continue
            W, g = m.args
            dim = self.cell.params[ir.ref(W).key].shape[1]
            gname = names.get(g)
            if gname is None:
                gname = self.buf(f"_g{len(done)}", self.cell.params[ir.ref(W).key].shape[0])
                L += self.emit(g, gname, names)
            n = buf = self.buf(f"{code_name(W)}T_{gname.strip('_')}", dim)
            L.append(f"np.matmul({gname}, {code_name(W)}, out={buf})  # {ir_text(m)}")
            names[m] = buf
            done[m] = n
        return L

    def carry(self, terms, out, names, done) -> list[str]:
        """``out = sum(terms)``: bare ``W^T g`` terms of one group as one GEMM."""
        L = []
        rest = list(terms)
        for g in self.p.groups.values():
            mine = [t for t in rest if isinstance(t, ir.MatVecT) and any(
                t.args[0] == m.args[0] for m in g.atoms) and t.args[1] == self.grad_block_of(
                next(m for m in g.atoms if m.args[0] == t.args[0])).grad]
            if g.kind == "late" or len(mine) != len(g.atoms):
                continue
            cols, contiguous = self.group_range(g)
            if not contiguous:
                continue
            L.append(f"np.matmul({self.row_view('dz', cols)}, W_{g.name}.T, out={out})")
            rest = [t for t in rest if t not in mine]
            if rest:
                acc = sp.Symbol("__acc")
                L += self.matvec_t(sp.Add(*rest), names, done)
                L += self.emit(acc + sp.Add(*rest), out, {**names, acc: out})
            return L
        L += self.matvec_t(sp.Add(*rest), names, done)
        L += self.emit(sp.Add(*rest), out, names)
        return L

    def after_loop(self) -> list[str]:
        p, cell, d = self.p, self.cell, self.p.d
        L = ["lo = T - steps  # the first step the gradient reached", "grads = {}"]
        inp = next((g for g in p.groups.values() if g.kind == "input"), None)
        if d.input_grad.terms:
            if inp is None or any(not isinstance(t, ir.MatVecT) for t in d.input_grad.terms):
                raise ValueError("the input may only enter through matrix products")
            cols, contiguous = self.group_range(inp)
            L.append(f"# dx_t = {' + '.join(ir_text(t) for t in d.input_grad.terms)}: one GEMM for all steps")
            L.append(f"dx = {_ws('dx', '(T, B, I)')}")
            L.append("dx[:lo] = 0.0")
            L.append(f"np.matmul(dz[lo:, :, {_span(cols)}].reshape(steps * B, -1), W_{inp.name}.T, "
                     "out=dx[lo:].reshape(steps * B, I))")
            L.append("grads['x'] = dx")
        for s in cell.states:
            L.append(f"grads[{ir.ref(s).key!r}] = d{code_name(s).removesuffix('_t')}_carry")
        L.append("# weight gradients: sum_t g_t a_t^T, one GEMM per argument (as (a^T g)^T: BLAS is faster so)")
        seen = set()  # matrices whose gradient has a first part already
        for g in p.groups.values():
            cols, contiguous = self.group_range(g)
            if g.kind == "input":
                arg = "x[lo:]"
            elif g.kind == "recurrent" and isinstance(g.arg, sp.Symbol):
                arg = f"{code_name(g.arg).removesuffix('_prev')}_all[lo:T]"
            else:
                arg = f"{g.name}_all[lo:]"
            spans = [[b] for b in cols] if not contiguous else [cols]
            for blocks in spans:
                L.append(f"dW = ({arg}.reshape(steps * B, -1).T @ "
                         f"dz[lo:, :, {_span(blocks)}].reshape(steps * B, -1)).T")
                off = sp.Integer(0)
                for b in blocks:
                    for m in g.atoms:
                        if self.grad_block_of(m) is b:
                            key = ir.ref(m.args[0]).key  # a matrix in two products sums both
                            part = f"dW[{_dim_code(off)}:{_dim_code(off + b.dim)}]"
                            L.append(f"grads[{key!r}] = " + (f"grads[{key!r}] + {part}" if key in seen else part))
                            seen.add(key)
                    off += b.dim
        L.append("dz_sum = dz[lo:].sum(axis=(0, 1))")
        all_names = self.all_t_names
        for pg in d.params:
            if pg.param.key in self.in_loop:
                L.append(f"grads[{pg.param.key!r}] = d{code_name(pg.param.symbol)}_sum")
        L += self._vector_grads(all_names)
        L.append("return grads")
        return L

    @cached_property
    def in_loop(self) -> set:
        """Vector parameters whose gradient reads per-step adjoints: accumulated in the loop."""
        keys = set(self.all_t_names)
        out = set()
        for pg in self.p.d.params:
            if pg.param.is_matrix or all(any(b.grad == g for b in self.p.blocks) for g, _ in pg.terms):
                continue
            expr = sp.Add(*[g for g, _ in pg.terms])
            if any(ir.is_ir(s) and ir.ref(s).time is not None and s not in keys for s in expr.free_symbols):
                out.add(pg.param.key)
        return out

    @cached_property
    def all_t_names(self) -> dict:
        """Quantities kept for every step -> their (steps, B, dim) arrays after the loop."""
        p, cell = self.p, self.cell
        all_names = {}
        for b in p.blocks:
            all_names[b.grad] = f"dz[lo:, :, s_{b.name}]"
        for s in cell.states:
            n = code_name(s).removesuffix("_t")
            all_names[s] = f"{n}_all[lo + 1:]"
            all_names[ir.at(s, -1)] = f"{n}_all[lo:T]"
        for e, n in p.saved.items():
            if n:
                all_names[e] = f"{n}[lo:]"
        for b in self.zblocks:
            if b in self.gate_blocks:
                all_names[b.gate] = f"a[lo:, k_{b.name}].reshape(steps, B, {_dim_code(b.dim)})"
            all_names[b.z] = f"z[lo:, :, s_{b.name}]"
        return all_names

    def _vector_grads(self, all_names) -> list[str]:
        p, cell, d = self.p, self.cell, self.p.d
        L = []
        for pg in d.params:
            if pg.param.key in self.in_loop:
                continue
            if pg.param.is_matrix:
                continue
            key = pg.param.key
            parts = []
            for gexpr, _ in pg.terms:
                blk = next((b for b in p.blocks if b.grad == gexpr), None)
                parts.append(f"dz_sum[s_{blk.name}]" if blk is not None else None)
            if all(parts):
                L.append(f"grads[{key!r}] = " + " + ".join(parts))
                continue
            expr = sp.Add(*[gexpr for gexpr, _ in pg.terms])
            missing = [s for s in expr.free_symbols if ir.is_ir(s) and ir.ref(s).time is not None
                       and s not in all_names]
            if missing:
                raise ValueError(f"gradient of {key} reads {missing}, which the kernel does not keep")
            L.append(f"# dL/d{key} = sum_t {ir_text(expr)}")
            names = {**{prm.symbol: code_name(prm.symbol) for prm in cell.params.values()}, **all_names}
            big = "_big"
            L.append(f"{big} = np.empty((steps, B, {_dim_code(pg.param.shape[0])}), dtype)")
            pool = Pool("big")
            L += Emitter(names, pool).emit(expr, big)
            for n in pool.names:
                L.insert(len(L) - 1, f"{n} = np.empty_like({big})")
            L.append(f"grads[{key!r}] = {big}.sum(axis=(0, 1))")
        return L


# ------------------------------------------------------------ interop layout
def _find(expr, pred):
    return [e for e in sp.preorder_traversal(expr) if pred(e)]


def gate_layout(plan: Plan, gates: list) -> dict:
    """Per gate of a framework's fused order: the parameters of its four slots.

    ``ih``/``hh``: the weights multiplying the input and the recurrent argument;
    ``bias_ih``: the bias added to the pre-activation; ``bias_hh``: a bias inside the
    recurrent product (GRU's b_{hn}), or None where the framework's second bias merges
    into ``bias_ih``.
    """
    cell = plan.cell
    out = {"ih": [], "hh": [], "bias_ih": [], "bias_hh": []}
    for v in gates:
        blk = next((b for b in plan.blocks if b.z is not None and b.name == v), None)
        if blk is None:
            raise ValueError(f"{cell.name}: the fused gate order names {v!r}, which is not a gate block "
                             f"(blocks: {', '.join(b.name for b in plan.blocks if b.z is not None)})")
        rhs = cell.assignment(blk.z).rhs
        mv = _find(rhs, lambda e: isinstance(e, ir.MatVec))
        ih = [m for m in mv if m.args[1] == cell.input]
        hh = [m for m in mv if m.args[1] != cell.input]
        bias = [t for t in _terms(rhs) if isinstance(t, sp.Symbol) and ir.ref(t).time is None]
        inner = None
        for add in _find(rhs, lambda e: isinstance(e, sp.Add) and e is not rhs):
            if any(isinstance(t, ir.MatVec) for t in add.args):
                inner = next((t for t in add.args if isinstance(t, sp.Symbol) and ir.ref(t).time is None), None)
        out["ih"].append(ir.ref(ih[0].args[0]).key if ih else None)
        out["hh"].append(ir.ref(hh[0].args[0]).key if hh else None)
        out["bias_ih"].append(ir.ref(bias[0]).key if bias else None)
        out["bias_hh"].append(ir.ref(inner).key if inner is not None else None)
    return out


def layouts(plan: Plan) -> dict:
    cell = plan.cell
    conv, meta = cell.conventions, cell.meta
    out = {}
    torch_meta = meta.get("pytorch")
    if torch_meta and conv.get("fused"):
        out["torch"] = {"module": torch_meta["module"], "gates": list(conv["fused"]),
                        "nonlinearity": torch_meta.get("nonlinearity"), **gate_layout(plan, conv["fused"])}
        if torch_meta.get("projection"):
            out["torch"]["proj"] = torch_meta["projection"]
    keras_meta = meta.get("keras")
    if keras_meta and keras_meta.get("fused"):
        out["keras"] = {"layer": keras_meta["layer"], "gates": list(keras_meta["fused"]),
                        "bias": keras_meta.get("bias", "single"), "reset_after": keras_meta.get("reset_after"),
                        **gate_layout(plan, keras_meta["fused"])}
    return out


def context(d: Derivation, source: str) -> dict:
    """Everything the kernel template formats."""
    plan = make_plan(d)
    w = Writer(plan)
    fwd = w.forward()
    bwd = w.backward()
    cell = plan.cell
    uses_act = any("_act." in ln for ln in fwd + bwd)
    eqs = [f"{ir_text(a.target)} = {ir_text(a.rhs)}" for a in cell.assignments]
    params = [(p.key, " x ".join(map(str, p.shape))) for p in cell.params.values()]
    return {
        "name": cell.name, "title": cell.title, "source": source, "equations": eqs,
        "states": [(ir.ref(s).key, str(_dim_of(cell, s))) for s in cell.states],
        "output": ir.ref(cell.output).key, "output_dim": str(_dim_of(cell, cell.output)), "params": params,
        "forward": fwd, "backward": bwd, "uses_act": uses_act, "layouts": layouts(plan),
        "blocks": [b.name for b in plan.blocks],
        "gemms": {g.name: [ir_text(m) for m in g.atoms] for g in plan.groups.values()},
        "gemm_table": {g.name: {"kind": g.kind, "in": w.arg_dim(g),
                                "out": [str(w.grad_block_of(m).dim) for m in g.atoms]} for g in plan.groups.values()},
        "dims": sorted({str(dim) for p in cell.params.values() for dim in p.shape}),
    }


def render(d: Derivation, source: str) -> str:
    from derive.codegen.pytemplates import python_template

    return python_template("cell_kernel.py.j2").render(k=context(d, source))
