"""The derivation step by step (``derive.symbolic.steps``, issue 21 item 2), one row per built-in cell.

* each local partial against ``sympy.diff`` of the equation's right-hand side, entry by entry, on
  explicit scalar symbols (no rule of ``rules.py``), both evaluated at one random point; the table writes
  an activation's derivative with its output, so the point gives every named output its forward value;
* the chain rule's sum, written out before it is simplified, against the derivation's adjoint (the
  formula the kernel computes) at a random point;
* which equations an adjoint sums over: exactly those whose right-hand side reads the quantity;
* the CLI (``derive show CELL --steps``) and the cell pages show the three stages.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import sympy as sp

import derive
from derive.cli.command import main
from derive.symbolic import ir, spec, steps
from derive.witness import derivation as verify
from derive.witness.derivation import evaluate, jacobian_value
from tests.test_site import page

CELLS = spec.builtin_names()
SIZES = {"I": 2, "H": 2, "P": 1}


def _size(cell, sym) -> tuple:
    """The shape of an IR symbol: a parameter's shape, else the vector's dimension."""
    r = ir.ref(sym)
    if r.time is None and r.key in cell.params:
        return tuple(SIZES[str(d)] for d in cell.params[r.key].shape)
    key = r.key if r.key in cell.dims else ir.ref(cell.output).key  # dy_t: the loss's gradient of the output
    return (SIZES[str(cell.dims[key])],)


def _point(cell, symbols, rng: random.Random) -> dict:
    """Every symbol an array of numbers in (0.1, 0.9) (inside every domain a built-in cell has)."""
    def draw(_):
        return sp.Float(rng.uniform(0.1, 0.9), 30)
    return {s: verify._array(_size(cell, s), draw) for s in symbols}


def _outputs(forward: dict, env: dict) -> dict:
    """The named outputs (f_t = sigma(a_{f,t})) at the point, for partials written with them."""
    return {name: evaluate(act, env) for act, name in forward.items() if act.free_symbols <= set(env)}


def _ir_symbols(expr) -> set:
    return {s for s in expr.free_symbols if ir.is_ir(s)} | {
        s for m in expr.atoms(ir.MatVec, ir.MatVecT) for s in m.args[:1]}


@pytest.mark.parametrize("name", CELLS)
def test_each_local_partial_is_sympy_diff_of_its_equation(name):
    d = derive.derive(derive.load(name))
    cell, rng = d.cell, random.Random(11)
    table = steps.steps(d).partials
    assert table, name
    for a in cell.assignments:
        args = _ir_symbols(a.rhs)
        scalars = {s: verify._array(_size(cell, s), lambda i, s=s: sp.Symbol(f"{s.name}[{i}]", real=True))
                   for s in args}
        rhs = evaluate(a.rhs, scalars)
        point = _point(cell, args, rng)
        values = {e: v for s in args for e, v in zip(scalars[s].flat, point[s].flat)}
        env = {**point, **_outputs(d.forward, point)}
        for p in (p for p in table if p.equation == a.target):
            exact = np.array([[sp.diff(out, e).xreplace(values) for e in scalars[p.argument].flat]
                              for out in np.broadcast_to(rhs, _size(cell, a.target))], dtype=float)
            shown = np.asarray(jacobian_value(p.chains, env, *exact.shape), dtype=float)
            np.testing.assert_allclose(shown, exact, rtol=1e-13, atol=1e-13, err_msg=f"{name}: {p}")


@pytest.mark.parametrize("name", CELLS)
def test_the_chain_rule_sum_is_the_derivations_adjoint(name):
    """Unsimplified (transposed chains applied to the adjoints) against the derivation's terms."""
    d = derive.derive(derive.load(name))
    rng = random.Random(5)
    for a in steps.steps(d).adjoints:
        before, after = a.unsimplified, sp.Add(*a.result)
        env = _point(d.cell, _ir_symbols(before) | _ir_symbols(after), rng)
        np.testing.assert_allclose(np.asarray(evaluate(before, env) * np.ones(1), dtype=float),
                                   np.asarray(evaluate(after, env) * np.ones(1), dtype=float),
                                   rtol=1e-13, atol=1e-13, err_msg=f"{name}: d{a.target}")


def _reads(rhs, q) -> bool:
    return q in rhs.free_symbols or any(q in m.free_symbols for m in rhs.atoms(ir.MatVec, ir.Mean))


@pytest.mark.parametrize("name", CELLS)
def test_an_adjoint_sums_over_the_equations_that_read_it(name):
    d = derive.derive(derive.load(name))
    cell = d.cell
    for a in steps.steps(d).adjoints:
        q = a.target
        later = [1] if q in cell.states else sorted(d.taps) if q == cell.input else []
        expected = [e.target for e in cell.assignments if _reads(e.rhs, q)]
        expected += [ir.at(e.target, k) for k in later for e in cell.assignments if _reads(e.rhs, ir.at(q, -k))]
        assert [t.partial.equation for t in a.terms] == expected, (name, q)
        assert (a.loss is not None) == (q == cell.output)


def test_gru_step_by_step_in_the_terminal(capsys):
    assert main(["show", "gru", "--steps"]) == 0
    out = capsys.readouterr().out
    assert "∂r_t/∂a_{r,t} = diag(r_t ⊙ (1 - r_t))" in out  # sigma' written with the gate's output
    assert "∂a_{n,t}/∂h_{t-1} = diag(r_t) W_{hn}" in out
    stages = ["dz_t = (∂h_t/∂z_t)^T dh_t", "     = diag(h_{t-1} - n_t) dh_t", "     = dh_t ⊙ (h_{t-1} - n_t)"]
    assert "\n  ".join(stages) in out
    assert out.index("Chain rule") < out.index("Adjoints, last step to first")


def test_gru_step_by_step_in_latex(capsys):
    assert main(["show", "gru", "--steps", "--latex"]) == 0
    out = capsys.readouterr().out
    assert r"\frac{\partial r_t}{\partial a_{r,t}} &= \operatorname{diag}\left(r_t \odot \left(1 - r_t\right)\right)" in out
    assert r"W_{hn}^\top \operatorname{diag}\left(r_{t+1}\right) \delta a_{n,t+1}" in out  # before
    assert r"W_{hn}^\top \left(\delta a_{n,t+1} \odot r_{t+1}\right)" in out  # after


def test_steps_is_for_a_cell(capsys):
    assert main(["show", "tanh", "--steps"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a cell" in err


@pytest.mark.parametrize("name", CELLS)
def test_the_cell_page_shows_every_stage(name):
    section = page(name)["Step by step"]
    data = derive.collect(derive.derive(derive.load(name)))["steps"]
    for p in data["partials"]:
        assert f"{p['lhs']['latex']} &= {p['rhs']['latex']}" in section
    for row in data["rows"]:
        assert f"{row['lhs']} &= {row['rhs']}" in section
