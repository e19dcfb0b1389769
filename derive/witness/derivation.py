"""Independent witnesses for a derivation.

* ``evaluate`` gives the IR its forward meaning on arrays of SymPy numbers or
  expressions (``MatVec`` is ``@``, ``Mean`` is (1/n) times the sum of the n entries, repeated
  n times; everything else elementwise).
* ``unrolled_loss`` unrolls a cell for T steps on explicit scalar symbols and builds the loss
  ``L = sum_t w_t . y_t + sum_s v_s . s_T``; ``chain.gradients`` differentiates it at a point by
  the chain rule over its expression DAG, each node's local derivative by ``sympy.diff``
  (``brute_force``: ``sympy.diff`` of the whole loss, the same numbers, minutes for an LSTM):
  no adjoint, no rule of ``rules.py``, no carry is involved.
* ``run_derivation`` evaluates the derived formulas as a reverse-time recurrence.

``compare`` runs both at one random high-precision point and reports the largest
relative difference per quantity.

``method="differences"`` compares with central differences of the same unrolled forward
evaluated at 80 digits with a step of 10^-30 (truncation and rounding both below 10^-45), again
no rule of ``rules.py``, no adjoint and no carry; the LN-LSTM, whose unrolled loss was too
large for ``sympy.diff`` (its normalisations over every unit: about 3 10^4 operations for one
step, each derivative seconds), is compared both ways.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import numpy as np
import sympy as sp

from derive.symbolic import ir
from derive.symbolic.bptt import Derivation
from derive.symbolic.cell import H, Cell
from derive.symbolic.rules import Factor
from derive.witness.chain import Numeric, gradients


def _apply(func, value):
    if isinstance(value, np.ndarray):
        return np.frompyfunc(func, 1, 1)(value)
    return func(value)


def evaluate(expr, env: dict):
    """The value of an IR expression; ``env`` maps IR symbols to object arrays."""
    if isinstance(expr, sp.Symbol):
        return env[expr]
    if expr.is_number:  # numbers and constants such as pi
        return expr
    if isinstance(expr, ir.MatVec):
        return env[expr.args[0]].dot(evaluate(expr.args[1], env))
    if isinstance(expr, ir.MatVecT):
        return env[expr.args[0]].T.dot(evaluate(expr.args[1], env))
    if isinstance(expr, ir.Mean):  # the sum of the unit scalars over n, broadcast: no rule of derive's
        value = evaluate(expr.args[0], env)
        if not isinstance(value, np.ndarray):
            return value
        total = _fold(lambda a, b: a + b, list(value.flat))
        return np.array([total / len(value)] * len(value), dtype=object)
    if isinstance(expr, sp.Add):
        return _fold(lambda a, b: a + b, [evaluate(a, env) for a in expr.args])
    if isinstance(expr, sp.Mul):
        return _fold(lambda a, b: a * b, [evaluate(a, env) for a in expr.args])
    if isinstance(expr, sp.Pow):
        return evaluate(expr.base, env) ** expr.exp
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        return _apply(expr.func, evaluate(expr.args[0], env))
    if isinstance(expr, sp.Piecewise):  # a kinked activation's derivative, element by element
        pieces = [(evaluate(e, env), evaluate(c, env)) for e, c in expr.args]
        return _select(pieces)
    if isinstance(expr, sp.Function) and len(expr.args) == 2:  # max, min; the step H(x, 1/2) of their derivatives
        return _apply2(expr.func, evaluate(expr.args[0], env), evaluate(expr.args[1], env))
    if isinstance(expr, sp.core.relational.Relational):
        return _apply2(lambda a, b: bool(expr.func(a, b)), evaluate(expr.lhs, env), evaluate(expr.rhs, env))
    if expr in (sp.true, sp.false):
        return bool(expr)
    raise TypeError(f"cannot evaluate {expr!r}")


def _apply2(func, a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.frompyfunc(func, 2, 1)(a, b)
    return func(a, b)


def _select(pieces):
    """The value of the first piece whose condition holds, per element."""
    arrays = [v for pair in pieces for v in pair if isinstance(v, np.ndarray)]
    if not arrays:
        return next(v for v, c in pieces if c)
    shape = arrays[0].shape
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        for value, cond in pieces:
            if (cond[idx] if isinstance(cond, np.ndarray) else cond):
                out[idx] = value[idx] if isinstance(value, np.ndarray) else value
                break
    return out


def _fold(op, values):
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


@dataclass
class Sizes:
    T: int = 3
    I: int = 2
    H: int = 2
    P: int = 1

    def of(self, dim) -> int:
        return {"I": self.I, "H": self.H, "P": self.P}[str(dim)]

    def for_cell(self, cell: Cell) -> "Sizes":
        """These sizes with I = H when the spec declares so (``sizes = { x = "H" }``), and H rounded
        up to a multiple of a clock's modules (``[clock]``: H = g k)."""
        out = self
        if cell.clock is not None and not cell.clock.fits(out.H):
            g = cell.clock.modules
            out = replace(out, H=g * max(1, -(-out.H // g)))
        return replace(out, I=out.of(cell.input_size)) if cell.input_size is not None else out


def _array(shape, make):
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        out[idx] = make(idx)
    return out


def symbols_for(cell: Cell, sizes: Sizes):
    """Scalar symbols for every parameter entry, input entry and initial-state entry."""
    sizes = sizes.for_cell(cell)
    def sym(name):
        return lambda idx: sp.Symbol(f"{name}[{','.join(map(str, idx))}]", real=True)

    params = {p.symbol: _array(tuple(sizes.of(d) for d in p.shape), sym(p.key)) for p in cell.params.values()}
    params = masked(cell, params)  # a clock's block-triangular matrices: zero below the blocks, no symbol
    xs = [_array((sizes.I,), sym(f"x{t}")) for t in range(1, sizes.T + 1)]
    s0 = {s: _array((sizes.of(cell.dims[ir.ref(s).key]),), sym(f"{ir.ref(s).key}0")) for s in cell.states}
    return params, xs, s0


def masked(cell: Cell, params: dict) -> dict:
    """``params`` with a clock's block-triangular matrices times their 0/1 pattern (``symbolic.clock``)."""
    if cell.clock is None:
        return params
    out = dict(params)
    for key in cell.clock.masked:
        p = cell.params[key]
        W = params[p.symbol]
        M = np.array(cell.clock.block_pattern(W.shape[0]), dtype=object)
        out[p.symbol] = np.where(M == 1, W, sp.Integer(0))
    return out


def clock_env(cell: Cell, step: int, hidden: int) -> dict:
    """The clock's update mask at the step index ``step`` (0 at the first step), if the cell has a clock."""
    if cell.clock is None:
        return {}
    return {cell.clock.mask: np.array([sp.Integer(v) for v in cell.clock.mask_at(step, hidden)], dtype=object)}


def forward(cell: Cell, params: dict, xs: list, s0: dict) -> list:
    """Per step, the values of every vector (keyed by IR symbols at time 0); index 0 is t=0."""
    steps = [{s: v for s, v in s0.items()}]
    params = masked(cell, params)
    hidden = _hidden(cell, s0)
    for i, x in enumerate(xs):
        env = dict(params)
        env[cell.input] = x
        env.update(_taps(cell, xs, i))
        env.update(clock_env(cell, i, hidden))
        for s in cell.states:
            env[ir.at(s, -1)] = steps[-1][s]
        for a in cell.assignments:
            env[a.target] = evaluate(a.rhs, env)
        steps.append({k: v for k, v in env.items() if ir.is_ir(k) and ir.ref(k).time == 0})
    return steps


def _hidden(cell: Cell, s0: dict) -> int | None:
    """H, from the initial state of H units a clock cell has (its mask is H wide)."""
    if cell.clock is None:
        return None
    return next(len(v) for s, v in s0.items() if cell.dims[ir.ref(s).key] == H)


def _taps(cell: Cell, xs: list, i: int) -> dict:
    """The input's taps at step index ``i``: x_{t-k} is ``xs[i - k]``, zero before the first step."""
    return {ir.at(cell.input, -k): xs[i - k] if i >= k else np.array([sp.Integer(0)] * len(xs[i]), dtype=object)
            for k in cell.taps}


def loss_weights(cell: Cell, sizes: Sizes, rng: random.Random):
    """Random rational weights: dL/dy_t = w_t and dL/ds_T = v_s."""
    sizes = sizes.for_cell(cell)
    def rnd(_):
        return sp.Rational(rng.randint(-9, 9), rng.randint(1, 9))

    H_out = sizes.of(cell.dims[ir.ref(cell.output).key])
    w = [_array((H_out,), rnd) for _ in range(sizes.T)]
    v = {s: _array((sizes.of(cell.dims[ir.ref(s).key]),), rnd) for s in cell.states}
    return w, v


def unrolled_loss(cell: Cell, sizes: Sizes, w, v):
    """The unrolled loss ``L = sum_t w_t . y_t + sum_s v_s . s_T`` on scalar symbols: ``L``, the
    symbols it is differentiated by, ``(params, xs, s0)`` and the per-step values."""
    sizes = sizes.for_cell(cell)
    params, xs, s0 = symbols_for(cell, sizes)
    steps = forward(cell, params, xs, s0)
    L = sum((w[t - 1] * steps[t][cell.output]).sum() for t in range(1, sizes.T + 1))
    L += sum((v[s] * steps[-1][s]).sum() for s in cell.states)
    wrt = [e for arr in [*params.values(), *xs, *s0.values()] for e in arr.flat if isinstance(e, sp.Symbol)]
    return L, wrt, (params, xs, s0), steps


def brute_force(cell: Cell, sizes: Sizes, w, v):
    """``{symbol: dL/dsymbol}`` by ``sympy.diff`` of the whole unrolled loss, and the symbols: the
    expanded derivatives (minutes for an LSTM at T = 3). ``compare`` uses ``gradients`` instead,
    which gives the same numbers; a test holds the two against each other."""
    L, wrt, symbols, steps = unrolled_loss(cell, sizes, w, v)
    return {e: sp.diff(L, e) for e in wrt}, symbols, steps


def run_derivation(d: Derivation, params: dict, xs: list, s0: dict, w, v, record: list | None = None):
    """Evaluate the derived BPTT formulas; returns gradients keyed like ``symbols_for``.

    ``record``: a list that receives ``(t, env)`` per step, env holding every value the
    step's formulas read (vectors at t-1, t, t+1, adjoints at t and t+1, parameters)."""
    cell = d.cell
    steps = forward(cell, params, xs, s0)
    params, hidden = masked(cell, params), _hidden(cell, s0)
    T = len(xs)
    adj_next: dict = {}
    grads = {p.symbol: 0 for p in cell.params.values()}
    dxs = [None] * T
    envs: dict = {}  # step -> its env, for the taps' terms of dx
    for t in range(T, 0, -1):
        env = dict(params)
        env[cell.input] = xs[t - 1]
        env.update(_taps(cell, xs, t - 1))
        env.update(clock_env(cell, t - 1, hidden))
        env[d.dy] = w[t - 1]
        for k, v_ in steps[t].items():
            env[k] = v_
        for s in cell.states:
            env[ir.at(s, -1)] = steps[t - 1][s]
        if t < T:
            for k, v_ in steps[t + 1].items():
                env[ir.at(k, 1)] = v_
            env.update(adj_next)
        for a in d.adjoints:
            value = _fold(lambda p, q: p + q, [evaluate(term, env) for term in a.own]) if a.own else 0
            key = ir.ref(a.target).key
            if a.carried and t < T:
                value = value + _fold(lambda p, q: p + q, [evaluate(term, env) for term in a.carried])
            elif key in cell.state_keys and t == T:
                value = value + v[a.target]
            env[ir.adjoint(a.target)] = value
        # dx_t: its own terms, and each tap's terms at step t+k (where x_t is x_{t-k}), as written
        envs[t] = env
        dxs[t - 1] = sum(evaluate(term, env) for term in d.input_grad.own)
        if d.taps:
            dxs[t - 1] = dxs[t - 1] + sum((evaluate(term, envs[t + k]) for k, tap in d.taps.items() if t + k <= T
                                           for term in tap.terms), np.array([sp.Integer(0)] * len(xs[0]), dtype=object))
        if record is not None:
            record.append((t, env))
        for g in d.params:
            for gt, arg in g.terms:
                gv = evaluate(gt, env)
                grads[g.param.symbol] = grads[g.param.symbol] + (
                    np.outer(gv, evaluate(arg, env)) if arg is not None else gv)
        adj_next = {ir.at(k, 1): val for k, val in env.items() if ir.is_ir(k) and ir.ref(k).adjoint
                    and ir.ref(k).time == 0}
        if t == 1:
            ds0 = {s: sum(evaluate(term, env) for term in d.carries[ir.ref(s).key].terms) for s in cell.states}
    for key in (cell.clock.masked if cell.clock is not None else ()):  # M (.) sum_t ...: the free entries
        p = cell.params[key]
        M = np.array(cell.clock.block_pattern(hidden), dtype=object)
        grads[p.symbol] = np.where(M == 1, grads[p.symbol], sp.Integer(0))
    return grads, dxs, ds0, steps


def jacobian_value(chains, env, size_out, size_in):
    total = np.zeros((size_out, size_in), dtype=object)
    for chain in chains:
        m = np.eye(size_in, dtype=object) * sp.Integer(1) if not chain else None
        for kind, val in chain:
            width = size_out if m is None else m.shape[1]
            if kind == Factor.DIAG:  # a vector, or a scalar over the current row size (H inside W_hr diag(.) W)
                f = np.diag(evaluate(val, env) * np.ones(width, dtype=object))
            elif kind == Factor.MEAN:  # (1/n) 1 1^T
                f = np.full((width, width), sp.Rational(1, width), dtype=object)
            else:
                f = env[val]
            m = f if m is None else m.dot(f)
        total = total + m
    return total


#: the precision and step of ``method="differences"``: (L(p + h) - L(p - h)) / 2h at 80 digits
FD_DIGITS, FD_STEP = 80, sp.Rational(1, 10**30)


def differences(cell: Cell, sizes: Sizes, w, v, point: dict):
    """``{symbol: dL/dsymbol}`` and ``{(out key, in key): d s_1 / d s_0}`` by central differences of the
    unrolled forward (``forward``, the mean summed over its units) at ``FD_DIGITS`` digits."""
    sizes = sizes.for_cell(cell)
    params, xs, s0 = symbols_for(cell, sizes)
    at = {k: sp.Float(val, FD_DIGITS) for k, val in point.items()}

    def values(shift: dict):
        def num(arr):
            return np.frompyfunc(lambda e: at[e] + shift.get(e, 0), 1, 1)(arr)
        return {k: num(a) for k, a in params.items()}, [num(x) for x in xs], {s: num(a) for s, a in s0.items()}

    def loss(shift: dict):
        p, x, s = values(shift)
        steps = forward(cell, p, x, s)
        total = sum((w[t - 1] * steps[t][cell.output]).sum() for t in range(1, len(xs) + 1))
        return total + sum((v[st] * steps[-1][st]).sum() for st in cell.states)

    wrt = [e for arr in [*params.values(), *xs, *s0.values()] for e in arr.flat]
    grads = {e: (loss({e: FD_STEP}) - loss({e: -FD_STEP})) / (2 * FD_STEP) for e in wrt}

    def first_step(shift: dict):
        p, x, s = values(shift)
        return forward(cell, p, x[:1], s)[1]

    jac = {}
    for s_in in cell.states:
        columns = []
        for e in s0[s_in].flat:
            up, down = first_step({e: FD_STEP}), first_step({e: -FD_STEP})
            columns.append({s_out: (up[s_out] - down[s_out]) / (2 * FD_STEP) for s_out in cell.states})
        for s_out in cell.states:
            jac[ir.ref(s_out).key, ir.ref(s_in).key] = np.array([[c[s_out][i] for c in columns]
                                                                 for i in range(len(columns[0][s_out]))])
    return grads, jac


def random_point(symbols, rng: random.Random, digits: int = 30):
    return {s: sp.Float(rng.uniform(-1.5, 1.5), digits) for s in symbols}


@dataclass
class Report:
    cell: str
    quantities: int
    worst: float
    worst_name: str
    jacobian_worst: float


def _rel(a, b) -> float:
    a, b = sp.Float(sp.N(a, 30), 30), sp.Float(sp.N(b, 30), 30)  # N: sqrt(2), erf(...) left symbolic
    return float(abs(a - b) / max(1, abs(b)))


#: how ``compare`` differentiates the unrolled loss
METHODS = ("chain", "sympy.diff", "differences")


def compare(d: Derivation, sizes: Sizes = Sizes(), seed: int = 0, digits: int = 30,
            method: str = "chain") -> Report:
    """Derived formulas against the derivatives of the unrolled loss at one random point:
    ``method="chain"``, the chain rule over the loss's expression DAG (``gradients``);
    ``"sympy.diff"``, the loss expanded by ``sympy.diff`` per symbol (``brute_force``: the same
    numbers, minutes for an LSTM); ``"differences"``, central differences of it at 80 digits
    (``differences``). The state Jacobian at step 1 is compared the same way."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}: one of {METHODS}")
    cell = d.cell
    rng = random.Random(seed)
    w, v = loss_weights(cell, sizes, rng)
    if method == "differences":
        params, xs, s0 = symbols_for(cell, sizes)
        wrt = [e for arr in [*params.values(), *xs, *s0.values()] for e in arr.flat]
    else:
        L, wrt, (params, xs, s0), steps = unrolled_loss(cell, sizes, w, v)
    point = random_point(sorted(wrt, key=sp.default_sort_key), rng, digits)
    at_point = Numeric(point, digits)
    if method == "differences":
        exact, fd_jacobian = differences(cell, sizes, w, v, point)
    elif method == "chain":
        exact = gradients(L, wrt, at_point)
    else:
        exact = {e: at_point(sp.diff(L, e)) for e in wrt}

    def num(arr):
        return np.frompyfunc(at_point, 1, 1)(arr)

    nparams = {k: num(a) for k, a in params.items()}
    nxs, ns0 = [num(x) for x in xs], {s: num(a) for s, a in s0.items()}
    grads, dxs, ds0, nsteps = run_derivation(d, nparams, nxs, ns0, w, v)
    derived = {}
    for k, arr in params.items():
        derived.update(zip(arr.flat, np.asarray(grads[k]).flat))
    for x, dx in zip(xs, dxs):
        derived.update(zip(x.flat, dx.flat))
    for s, arr in s0.items():
        derived.update(zip(arr.flat, ds0[s].flat))
    worst, worst_name = 0.0, ""
    for sym, value in exact.items():
        err = _rel(derived[sym], value)
        if err >= worst:
            worst, worst_name = err, sym.name

    # the state Jacobian at step 1, d s_1 / d s_0, differentiated as the loss is
    env = masked(cell, nparams)
    env[cell.input] = nxs[0]
    env.update(_taps(cell, nxs, 0))
    env.update(clock_env(cell, 0, _hidden(cell, ns0)))
    env.update(nsteps[1])
    for s in cell.states:
        env[ir.at(s, -1)] = ns0[s]

    def brute(o, ins):
        if method == "chain":
            row = gradients(o, ins, at_point)
            return [row[i] for i in ins]
        return [at_point(sp.diff(o, i)) for i in ins]

    jworst = 0.0
    for (out_key, in_key), chains in d.jacobian.items():
        s_out = next(s for s in cell.states if ir.ref(s).key == out_key)
        s_in = next(s for s in cell.states if ir.ref(s).key == in_key)
        exact_j = fd_jacobian[out_key, in_key] if method == "differences" else \
            np.array([brute(o, list(s0[s_in].flat)) for o in steps[1][s_out].flat])
        mine = jacobian_value(chains, env, exact_j.shape[0], exact_j.shape[1])
        for a, b in zip(mine.flat, exact_j.flat):
            jworst = max(jworst, _rel(a, b))
    return Report(cell.name, len(exact), worst, worst_name, jworst)
