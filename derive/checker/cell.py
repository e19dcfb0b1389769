"""Claims about a cell: an adjoint at step t, a parameter gradient (summed over a run), a block
of the state Jacobian, or the parameter count, told apart by the left side."""

from __future__ import annotations

import enum

import numpy as np

from derive.checker.counts import COUNT_NAMES, check_count
from derive.checker.hints import param_hint, term_hint
from derive.checker.lets import read_lets
from derive.checker.names import Names, Ref, RefKind
from derive.checker.numeric import Shape, V, describe, evaluate
from derive.checker.result import Result, Verdict
from derive.checker.runs import as_float, close, mid_steps, runs, sizes
from derive.checker.symbolic import symbolic_equal
from derive.checker.visitor import Op, Visitor, is_op
from derive.errors import DeriveError, Pos
from derive.symbolic import ir, printing, spec
from derive.symbolic.rules import Factor
from derive.witness import derivation as verify
from derive.syntax.formulas import Name, parse_formula


class ClaimKind(enum.StrEnum):
    ADJOINT = "adjoint"  # (kind, the vector's symbol)
    PARAM = "param"  # (kind, the Param)
    JACOBIAN = "jacobian"  # (kind, the output state's symbol, the input state's)
    COUNT = "count"  # (kind,)


class LeftSide(Visitor):
    """What a claim's left side names: ``dc_t``, ``\\delta c_t``, ``\\frac{\\partial L}{\\partial W_{xf}}``,
    ``\\frac{\\partial h_t}{\\partial c_{t-1}}`` or ``N``; anything else is an error."""

    def __init__(self, names: Names):
        self.names = names

    def generic(self, lhs):
        raise DeriveError(r"the left side must name a gradient (dc_t, \delta c_t, \frac{\partial L}{\partial W_{xf}}), "
                          r"a Jacobian block (\frac{\partial h_t}{\partial c_{t-1}}) or the parameter count (N)",
                          getattr(lhs, "pos", Pos(1, 1)))

    def visit_Name(self, lhs):
        if lhs.text in COUNT_NAMES:
            return (ClaimKind.COUNT,)
        ref = self.names.resolve(lhs)
        if ref.kind in (RefKind.ADJ, RefKind.DPARAM):
            return _as_gradient(Ref(RefKind.VEC if ref.kind == RefKind.ADJ else RefKind.PARAM, ref.value), lhs)
        return self.generic(lhs)

    def visit_delta(self, lhs):
        if isinstance(lhs.args[0], Name):
            return _as_gradient(self.names.resolve(lhs.args[0]), lhs)
        return self.generic(lhs)

    def visit_div(self, lhs):
        top, bottom = lhs.args
        tn, bn = _differential(top), _differential(bottom)
        if tn is not None and bn is not None:
            tref, bref = self.names.resolve(tn), self.names.resolve(bn)
            if tref.kind == RefKind.LOSS:
                return _as_gradient(bref, lhs)
            if tref.kind == RefKind.VEC and bref.kind == RefKind.VEC:
                return (ClaimKind.JACOBIAN, tref.value, bref.value)
        return self.generic(lhs)


def _differential(node):
    """The name X of ``\\partial X`` or of plain ``dX`` (in ``dL/dW_xf``); None otherwise."""
    if is_op(node, Op.PARTIAL) and isinstance(node.args[0], Name):
        return node.args[0]
    if isinstance(node, Name) and node.text.startswith("d") and len(node.text) > 1:
        return Name(node.text[1:], node.pos)
    return None


def _as_gradient(ref: Ref, node):
    if ref.kind == RefKind.VEC:
        if ir.ref(ref.value).time != 0:
            raise DeriveError("state the adjoint at step t (e.g. dc_t); the derivation's recurrences are per step",
                              node.pos)
        return (ClaimKind.ADJOINT, ref.value)
    if ref.kind == RefKind.PARAM:
        return (ClaimKind.PARAM, ref.value)
    raise DeriveError("the gradient of what? name a vector at step t or a parameter", node.pos)


def check_cell(name_or_path: str, formula: str, lets=(), renames=None) -> Result:
    cell = spec.load(name_or_path)
    f = parse_formula(formula)
    lets = read_lets(lets)
    names = Names(cell, lets, renames)
    kind, *what = LeftSide(names).visit(f.lhs)
    if kind == ClaimKind.COUNT:
        return check_count(cell, names, f)
    d, witness = runs(name_or_path)
    # the derivation's own cell (a spec file is read anew by spec.load) and its dy_{loss,t}
    names = Names(d.cell, lets, renames, d.dy)
    kind, *what = LeftSide(names).visit(f.lhs)
    check = {ClaimKind.ADJOINT: check_adjoint, ClaimKind.PARAM: check_param, ClaimKind.JACOBIAN: check_jacobian}[kind]
    return check(d, witness, names, f, *what)


def check_adjoint(d, witness, names, f, target) -> Result:
    adj = d.input_grad if target == d.cell.input else next((a for a in d.adjoints if a.target == target), None)
    if adj is None:
        raise DeriveError(f"the derivation has no adjoint for {printing.symbol_text(target)}", f.lhs.pos)
    quantity = f"d{printing.symbol_text(target)}, the gradient of the loss with respect to {printing.symbol_text(target)}"
    derived = f"{printing.symbol_text(ir.adjoint(target))} = {printing.terms_text(adj.terms)}"
    points = 0
    worst = None
    for seed, t, env in mid_steps(witness, d.cell):
        claim, used = evaluate(names, f.rhs, env)
        if claim.kind == Shape.SCALAR:
            claim = V(Shape.VECTOR, np.full(sizes(d.cell).of(d.cell.dims[ir.ref(target).key]), claim.val))
        if claim.kind != Shape.VECTOR:
            raise DeriveError(f"the right side is a {describe(claim)}; the adjoint of a vector is a vector",
                              getattr(f.rhs, "pos", Pos(1, 1)))
        exact = env.get(ir.adjoint(target))
        if exact is None:  # dx_t: the run returns it, the env does not hold it
            exact = sum(verify.evaluate(term, env) for term in adj.terms)
        truth = as_float(exact)
        points += 1
        if not close(claim.val, truth) and worst is None:
            worst = (seed, t, env, claim.val, truth, used)
    how = f"numerically at {points} points"
    if worst is None:
        sym = symbolic_equal(d, names, f.rhs, adj.expr)
        return Result(Verdict.CORRECT, quantity, derived,
                      "symbolically" if sym else how + "; not shown symbolically", f.text)
    seed, t, env, cval, tval, used = worst
    hint = term_hint(names, f.rhs, adj.terms, env, tval - cval)
    return _wrong(d.cell, quantity, derived, how, f.text, hint, seed, t, used, adj.terms, env, tval, cval)


def _wrong(cell, quantity, derived, how, text, hint, seed, t, used, terms, env, left, right) -> Result:
    ce = dict(used)
    for term in terms:
        for s in sorted(term.free_symbols, key=str):
            if ir.is_ir(s) and s in env and printing.symbol_text(s) not in ce:
                ce[printing.symbol_text(s)] = as_float(env[s])
    where = f"{_sizes_text(cell)}, step t={t}, seed {seed}"
    return Result(Verdict.WRONG, quantity, derived, how, text, hint=hint, where=where, counterexample=ce,
                  left=left, right=right)


def _sizes_text(cell) -> str:
    n = sizes(cell)
    return f"I={n.I}, H={n.H}, T={n.T}"


def check_param(d, witness, names, f, param) -> Result:
    grad = next(g for g in d.params if g.param is param)
    quantity = f"d{param.key}, the gradient of the loss with respect to {param.key} (summed over t)"
    derived = f"d{param.key} = sum_t " + " + ".join(
        f"{printing.text(g)} ({printing.text(a)})^T" if a is not None else printing.text(g) for g, a in grad.terms)
    clock = d.cell.clock
    masked = clock is not None and param.key in clock.masked
    if masked:  # block-triangular (a clock): only the entries on and above the blocks are parameters
        quantity += f", on its free entries (block-upper-triangular, {clock.modules} modules)"
        derived = derived.replace(" = sum_t ", " = M (.) sum_t ", 1)
    body = f.rhs.args[0] if is_op(f.rhs, Op.SUM) else f.rhs
    points = 0
    steps = sizes(d.cell).T
    for seed, envs, grads in witness:
        total, used = None, {}
        for t in range(1, steps + 1):
            v, u = evaluate(names, body, envs[t])
            if v.kind not in (Shape.VECTOR, Shape.MATRIX, Shape.SCALAR):
                raise DeriveError(f"the right side is a {describe(v)}; a parameter gradient is a vector or a matrix")
            total = v.val if total is None else total + v.val
            if t == 2:
                used = {k + " (t=2)": val for k, val in u.items()}
        truth = as_float(grads[param.symbol])
        if masked and np.shape(total) == truth.shape:
            total = total * np.array(clock.block_pattern(truth.shape[0]), dtype=float)
        points += 1
        if not close(total, truth):
            hint = ""
            if np.shape(total) == truth.shape[::-1] and close(np.transpose(total), truth):
                hint = f"transposed: the gradient of {param.key} has its shape {truth.shape}"
            elif np.shape(total) != truth.shape:
                hint = f"shape: your right side is {np.shape(total)}, the gradient is {truth.shape}"
            else:
                hint = param_hint(grad, envs, truth - total)
            r = _wrong(d.cell, quantity, derived, f"numerically, whole runs of {steps} steps", f.text, hint, seed, 2,
                       used, [], {}, truth, total)
            r.where = f"{_sizes_text(d.cell)}, summed over t=1..{steps}, seed {seed}; values at t=2"
            return r
    return Result(Verdict.CORRECT, quantity, derived,
                  f"numerically at {points} points (whole runs of {steps} steps)", f.text)


def check_jacobian(d, witness, names, f, out_sym, in_sym) -> Result:
    ok = ir.ref(out_sym).time == 0 and ir.ref(in_sym).time == -1
    states = {ir.ref(s).key for s in d.cell.states}
    key = (ir.ref(out_sym).key, ir.ref(in_sym).key)
    if not ok or key not in d.jacobian:
        raise DeriveError(r"a Jacobian block is \frac{\partial s_t}{\partial s'_{t-1}} for states s, s' "
                          f"({', '.join(sorted(states))})", f.lhs.pos)
    chains = d.jacobian[key]
    quantity = f"d{printing.symbol_text(out_sym)}/d{printing.symbol_text(in_sym)}, a block of the state Jacobian"
    derived = " + ".join(printing.chain_text(c) for c in chains) or "0"
    size = {k: sizes(d.cell).of(d.cell.dims[k]) for k in states}
    points = 0
    for seed, t, env in mid_steps(witness, d.cell):
        claim, used = evaluate(names, f.rhs, env)
        truth = verify.jacobian_value(chains, env, size[key[0]], size[key[1]]).astype(float)
        val = _block(claim, truth.shape, f.rhs)
        points += 1
        if not close(val, truth):
            diagonals = [v for chain in chains for kind, v in chain if kind == Factor.DIAG]  # their values shown too
            return _wrong(d.cell, quantity, derived, f"numerically at {points} points", f.text, "", seed, t, used,
                          diagonals, env, truth, val)
    return Result(Verdict.CORRECT, quantity, derived, f"numerically at {points} points", f.text)


def _block(claim: V, shape: tuple, rhs):
    """A Jacobian block's value from the right side: diag(v) for a vector v, s I for a number s or
    diag(s) (0 for a block that is zero, whatever its shape), a matrix as it is."""
    if claim.kind == Shape.VECTOR:
        return np.diag(claim.val)
    if claim.kind in (Shape.SCALAR, Shape.IDENTITY):
        if claim.val == 0:
            return np.zeros(shape)
        if shape[0] != shape[1]:
            raise DeriveError(f"the block is {shape[0]} x {shape[1]}; a number stands for a multiple of the "
                              f"identity only in a square block", getattr(rhs, "pos", Pos(1, 1)))
        return claim.val * np.eye(shape[0])
    return claim.val
