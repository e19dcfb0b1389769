"""For a wrong cell claim: the one term (or two or three) of the derivation that explains the
difference, a term with the wrong sign, or a term of the claim that does not belong."""

from __future__ import annotations

import itertools

import numpy as np

from derive.checker.numeric import Shape, evaluate
from derive.checker.runs import as_float, close
from derive.checker.tree import terms, text
from derive.errors import DeriveError
from derive.symbolic import printing
from derive.witness import derivation as verify

ARRAYS = (Shape.VECTOR, Shape.MATRIX)


def term_hint(names, rhs, derived_terms, env, residual) -> str:
    """One term that explains residual = derivation - claim, if there is one."""
    vals = []
    for term in derived_terms:
        try:
            vals.append(as_float(verify.evaluate(term, env)))
        except Exception:  # a term the float path cannot evaluate: no hint from it
            vals.append(None)
    for term, v in zip(derived_terms, vals):
        if v is not None and close(residual, v):
            return f"missing term: {printing.text(term)}"
    known = [(t, v) for t, v in zip(derived_terms, vals) if v is not None]
    for size in (2, 3):
        for combo in itertools.combinations(known, size):
            if close(residual, sum(v for _, v in combo)):
                return "missing terms: " + ", ".join(printing.text(t) for t, _ in combo)
    for term, v in zip(derived_terms, vals):
        if v is not None and close(residual, 2 * v):
            return f"sign: the term {printing.text(term)} has the wrong sign"
    for sign, node in terms(rhs):
        try:
            cv, _ = evaluate(names, node, env)
        except DeriveError:
            continue
        if cv.kind in ARRAYS and close(residual, -sign * cv.val):
            return f"extra term: {text(node)} is not part of the gradient"
        for term, v in zip(derived_terms, vals):
            if v is not None and cv.kind in ARRAYS and close(residual, v - sign * cv.val):
                return f"the term {text(node)} should be {printing.text(term)}"
    return ""


def param_hint(grad, envs, residual) -> str:
    """A term of a parameter gradient, summed over the run, that explains the residual."""
    for g, a in grad.terms:
        total = 0
        for t in range(1, len(envs) + 1):
            gv = as_float(verify.evaluate(g, envs[t]))
            total = total + (np.outer(gv, as_float(verify.evaluate(a, envs[t]))) if a is not None else gv)
        if close(residual, total):
            what = f"{printing.text(g)} ({printing.text(a)})^T" if a is not None else printing.text(g)
            return f"missing term: sum_t {what}"
    return ""
