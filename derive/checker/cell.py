"""Claims about a cell: an adjoint at step t, a parameter gradient (summed over a run), a block
of the state Jacobian, or the parameter count, told apart by the left side."""

from __future__ import annotations

import enum

import numpy as np

from derive.checker.counts import COUNT_NAMES, check_count
from derive.checker.hints import edit_hint, factor_hint, param_hint, term_hint
from derive.checker.lets import read_lets
from derive.checker.names import Names, Ref, RefKind, differential
from derive.checker.numeric import Shape, V, describe, evaluate
from derive.checker.result import Result, Verdict
from derive.checker.runs import as_float, close, mid_steps, runs, runs_of, sizes
from derive.checker.symbolic import symbolic_equal
from derive.checker.visitor import Op, Visitor, is_op, walk
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
        if ref.kind == RefKind.LET and isinstance(ref.value, Name):  # --let 'dW = dW_{hh}': another name for it
            return self.visit(ref.value)
        if ref.kind in (RefKind.ADJ, RefKind.DPARAM):
            return _as_gradient(Ref(RefKind.VEC if ref.kind == RefKind.ADJ else RefKind.PARAM, ref.value), lhs)
        return self.generic(lhs)

    def visit_delta(self, lhs):
        if isinstance(lhs.args[0], Name):
            return _as_gradient(self.names.resolve(lhs.args[0]), lhs)
        return self.generic(lhs)

    def visit_div(self, lhs):
        top, bottom = lhs.args
        tn, bn = differential(top), differential(bottom)
        if tn is not None and bn is not None:
            tref, bref = self.names.resolve(tn), self.names.resolve(bn)
            if bref.kind == RefKind.LET and isinstance(bref.value, Name):  # \nabla_W L with --let 'W = W_{hh}'
                bref = self.names.resolve(bref.value)
            if tref.kind == RefKind.LOSS:
                return _as_gradient(bref, lhs)
            if tref.kind == RefKind.VEC and bref.kind == RefKind.VEC:
                return (ClaimKind.JACOBIAN, tref.value, bref.value)
        return self.generic(lhs)


def _as_gradient(ref: Ref, node):
    if ref.kind == RefKind.VEC:
        if abs(ir.ref(ref.value).time) > 1:
            raise DeriveError("state the adjoint at step t, t-1 or t+1 (e.g. dc_t); the derivation's recurrences "
                              "are per step", node.pos)
        return (ClaimKind.ADJOINT, ref.value)
    if ref.kind == RefKind.PARAM:
        return (ClaimKind.PARAM, ref.value)
    raise DeriveError("the gradient of what? name a vector at step t or a parameter", node.pos)


def check_cell(name_or_path: str, formula: str, lets=(), renames=None, cell=None) -> Result:
    """``cell``: a cell built in memory (a model's layer) instead of loading ``name_or_path``."""
    given = cell
    cell = cell if cell is not None else spec.load(name_or_path)
    f = parse_formula(formula)
    lets = read_lets(lets)
    names = Names(cell, lets, renames)
    kind, *what = LeftSide(names).visit(f.lhs)
    if kind == ClaimKind.COUNT:
        return check_count(cell, names, f)
    d, witness = runs(name_or_path) if given is None else runs_of(given)
    # the derivation's own cell (a spec file is read anew by spec.load) and its dy_{loss,t}
    names = Names(d.cell, lets, renames, d.dy)
    kind, *what = LeftSide(names).visit(f.lhs)
    time = ir.ref(what[0]).time if kind in (ClaimKind.ADJOINT, ClaimKind.JACOBIAN) else 0
    if time:  # dc_{t-1} = dc_t f_t + ...: the whole claim read one step later, at t
        names = names.shifted(-time)
        kind, *what = LeftSide(names).visit(f.lhs)
    if kind == ClaimKind.ADJOINT:
        result = check_adjoint(d, witness, names, f, *what, stated_at=time)
        if time and result.verdict != Verdict.EQUIVALENT:
            result.how += f"; stated at t{time:+d}"
    else:
        check = {ClaimKind.PARAM: check_param, ClaimKind.JACOBIAN: check_jacobian}[kind]
        result = check(d, witness, names, f, *what)
    return _respelled(result, names)


def _respelled(result: Result, names: Names) -> Result:
    """The report in the claim's own letter for the pre-activations (its z_{f,t} for the page's a_{f,t})."""
    for field in ("quantity", "derived", "how", "hint"):
        setattr(result, field, names.respell(getattr(result, field)))
    result.counterexample = {names.respell(k) if isinstance(k, str) else k: v
                             for k, v in result.counterexample.items()}
    return result


def check_adjoint(d, witness, names, f, target, stated_at: int = 0) -> Result:
    adj = d.input_grad if target == d.cell.input else next((a for a in d.adjoints if a.target == target), None)
    if adj is None:
        raise DeriveError(f"the derivation has no adjoint for {printing.symbol_text(target)}", f.lhs.pos)
    shown = ir.at(target, stated_at)  # as the claim states it: dc_{t-1} is read at t, shown at t-1
    quantity = f"d{printing.symbol_text(shown)}, the gradient of the loss with respect to {printing.symbol_text(shown)}"
    derived = f"{printing.symbol_text(ir.adjoint(shown))} = " \
              f"{printing.terms_text([ir.shift(term, stated_at) for term in adj.terms])}"
    points = 0
    worst = None
    truths = []  # (env, the derivation's value) at every point, for the hints
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
        truths.append((env, truth))
        points += 1
        if not close(claim.val, truth) and worst is None:
            worst = (seed, t, env, claim.val, truth, used)
    how = f"numerically at {points} points"
    if worst is None:
        sym = symbolic_equal(d, names, f.rhs, adj.expr)
        return Result(Verdict.CORRECT, quantity, derived,
                      "symbolically" if sym else how + "; not shown symbolically", f.text)
    seed, t, env, cval, tval, used = worst
    carry = _carry(d, witness, names, f, target, adj) if stated_at == -1 else None
    if carry is not None:
        return carry
    hint = term_hint(names, f.rhs, adj.terms, env, tval - cval)
    if not hint.startswith("missing term"):  # one small edit of the claim may say more than a term does

        def right(tree):
            return all(close(_vector(evaluate(names, tree, e)[0]), v) for e, v in truths)
        hint = edit_hint(names, f.rhs, right) or factor_hint(names, f.rhs, adj.terms, truths) or hint
    return _wrong(d.cell, quantity, derived, how, f.text, hint, seed, t, used, adj.terms, env, tval, cval,
                  frame=stated_at)


def _vector(v: V):
    return v.val if v.kind in (Shape.VECTOR, Shape.SCALAR) else np.full(1, np.nan)


def _carry(d, witness, names, f, target, adj):
    """A state's adjoint stated at t-1 that is exactly the carry, the terms step t passes back
    (``dc_{t-1} = dc_t \\odot f_t``, what a step's backward returns: CS231n's ``dprev_c``)."""
    later = [term for term in adj.terms if any(ir.is_ir(s) and (ir.ref(s).time or 0) > 0 for s in term.free_symbols)]
    if target not in d.cell.states or not later or len(later) == len(adj.terms):
        return None
    for _, _, env in mid_steps(witness, d.cell):
        claim, _ = evaluate(names, f.rhs, env)
        truth = sum(as_float(verify.evaluate(term, env)) for term in later)
        if claim.kind != Shape.VECTOR or not close(claim.val, truth):
            return None
    prev = printing.symbol_text(ir.at(target, -1))
    rest = printing.terms_text([ir.shift(term, -1) for term in adj.terms if term not in later])
    return Result(Verdict.EQUIVALENT, f"d{prev}, read as the carry: the part of the gradient of {prev} that step t "
                  f"passes back", f"d{prev} = carry + (terms of step t-1); carry = "
                  f"{printing.terms_text([ir.shift(term, -1) for term in later])}", "numerically at 6 points", f.text,
                  convention=f"read as the carry a step's backward returns (CS231n's dprev); the full adjoint "
                             f"d{prev} adds {rest}")


def _wrong(cell, quantity, derived, how, text, hint, seed, t, used, terms, env, left, right, frame=0) -> Result:
    ce = dict(used)
    for term in terms:
        for s in sorted(term.free_symbols, key=str):
            key = printing.symbol_text(ir.shift(s, frame)) if ir.is_ir(s) else ""
            if ir.is_ir(s) and s in env and key not in ce:
                ce[key] = as_float(env[s])
    where = f"{_sizes_text(cell)}, step t={t - frame}, seed {seed}"
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
    names, run = _summed_steps(names, f.rhs, body, steps)
    for seed, envs, grads in witness:
        total, used = None, {}
        for t in run:
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


def _summed_steps(names, rhs, body, steps: int):
    """The names to read the summand with and the run's steps it is summed over. The step of a term
    is that of the adjoint it holds (``\\sum_{t=0}^{T-1} dz_{t+1} x_{t+1}^T`` reads steps 1..T). A sum
    of T terms is the whole run, counted from 1 or from 0; bounds that cover fewer steps are summed
    as written (steps from 1)."""
    times = {ir.ref(s).time for s in _adjoints(names, body)}
    m = times.pop() if len(times) == 1 else 0
    bounds = rhs.bounds if is_op(rhs, Op.SUM) else None
    run = range(1, steps + 1)
    if bounds is not None:
        first, last = bounds[0] + m, steps + bounds[1] + m
        if last - first + 1 != steps or first not in (0, 1):
            run = range(first, last + 1)
            if first < 1 or last > steps:
                raise DeriveError(f"the sum reads steps {first}..{last} of a run of steps 1..T (T = {steps} here); "
                                  r"sum over every step: \sum_{t=1}^{T}", rhs.pos)
    return (names.shifted(-m) if m else names), run


def _adjoints(names, node) -> list:
    """The adjoint symbols a tree names (dz_{f,t+1}, \\delta c_t, \\frac{\\partial L}{\\partial h_t})."""
    out = []
    for n in walk(node):
        try:
            if isinstance(n, Name):
                ref = names.resolve(n)
                if ref.kind == RefKind.ADJ:
                    out.append(ref.value)
            elif is_op(n, Op.DELTA) and isinstance(n.args[0], Name):
                out.append(names.adjoint_of(n.args[0]))
            elif is_op(n, Op.DIV) and names.loss_gradient(n) is not None:
                out.append(names.loss_gradient(n))
        except DeriveError:  # reported when the summand is evaluated
            continue
    return out


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
    points = []
    for seed, t, env in mid_steps(witness, d.cell):
        claim, used = evaluate(names, f.rhs, env)
        truth = verify.jacobian_value(chains, env, size[key[0]], size[key[1]]).astype(float)
        points.append((seed, t, env, used, truth, _block(claim, truth.shape, f.rhs)))
    bad = next((p for p in points if not close(p[5], p[4])), None)
    if bad is None:
        return Result(Verdict.CORRECT, quantity, derived, f"numerically at {len(points)} points", f.text)
    seed, t, env, used, truth, val = bad
    if all(np.shape(v) == np.shape(tr) and close(np.transpose(v), tr) for *_, tr, v in points):
        hint = (f"transposed: the block d{printing.symbol_text(out_sym)}/d{printing.symbol_text(in_sym)} has a row "
                f"per entry of {printing.symbol_text(out_sym)}; your matrix is its transpose (what the backward "
                f"pass multiplies a gradient by)")
    else:
        hint = edit_hint(names, f.rhs, lambda tree: all(
            close(_block(evaluate(names, tree, e)[0], tr.shape, f.rhs), tr) for _, _, e, _, tr, _ in points))
    diagonals = [v for chain in chains for kind, v in chain if kind == Factor.DIAG]  # their values shown too
    return _wrong(d.cell, quantity, derived, f"numerically at {len(points)} points", f.text, hint, seed, t, used,
                  diagonals, env, truth, val)


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
