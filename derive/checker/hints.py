"""For a wrong cell claim: the one term (or two or three) of the derivation that explains the
difference, a term with the wrong sign, or a term of the claim that does not belong."""

from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np

from derive.checker.names import RefKind
from derive.checker.numeric import Shape, evaluate
from derive.checker.runs import as_float, close
from derive.checker.tree import terms, text
from derive.checker.visitor import Op, children, is_op, walk
from derive.errors import DeriveError
from derive.symbolic import ir, printing
from derive.syntax.formulas import Call, Name, Node, Num
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


# ---------------------------------------------------------------- one small edit that makes the claim right

#: edits tried on a wrong claim, at most this many (each is evaluated at every point of the check)
MAX_EDITS = 400


def edit_hint(names, rhs, right) -> str:
    """'did you mean ...' when one small edit of the claim's right side makes ``right(tree)`` true:
    a factor dropped or its time index moved, a product written for a sum (or the reverse), a
    bracket moved, a transpose added or removed, z and 1 - z swapped (a GRU written the other way)."""
    for what, tree in itertools.islice(_edits(names, rhs), MAX_EDITS):
        try:
            ok = right(tree)
        except (DeriveError, ValueError, TypeError, KeyError, IndexError):
            continue
        if ok:
            return f"did you mean {text(tree)} ? ({what})"
    return ""


def _edits(names, rhs):
    nodes = list(walk(rhs))
    transposed = {id(n.args[0]) for n in nodes if is_op(n, Op.TRANSPOSE)}
    gates = sorted({n.text for n in nodes if isinstance(n, Name) and _gate(names, n)})
    for g in gates:
        yield f"{g} and 1 - {g} swapped", _swap(rhs, g)
    for n in nodes:
        if isinstance(n, Name):
            for by in (-1, 1):
                moved = _moved(n, by)
                if moved is not None:
                    yield f"{n.text} at another step", substitute(rhs, n, moved)
    for n in nodes:
        if is_op(n, Op.MUL):
            for i, a in enumerate(n.args):
                rest = n.args[:i] + n.args[i + 1:]
                yield f"without the factor {text(a)}", substitute(rhs, n, rest[0] if len(rest) == 1 else
                                                              Node("mul", rest, n.pos))
            for k in range(1, len(n.args)):  # a b c d -> a b + c d
                left, right = n.args[:k], n.args[k:]
                parts = [x[0] if len(x) == 1 else Node("mul", x, n.pos) for x in (left, right)]
                yield "a sum, not a product", substitute(rhs, n, Node("add", tuple(parts), n.pos))
            for i, a in enumerate(n.args):
                if is_op(a, Op.ADD, Op.SUB) and i > 0:  # a (b + c) -> a b + c
                    inner = Node("mul", n.args[:i] + (a.args[0],), n.pos)
                    moved = Node(a.kind, (inner, a.args[1]), n.pos)
                    rest = n.args[i + 1:]
                    yield "a bracket moved", substitute(rhs, n, Node("mul", (moved,) + rest, n.pos) if rest else moved)
                if is_op(a, Op.ADD, Op.SUB) and i == 0 and len(n.args) > 1:  # (a + b) c -> a + b c
                    inner = Node("mul", (a.args[1],) + n.args[1:], n.pos)
                    yield "a bracket moved", substitute(rhs, n, Node(a.kind, (a.args[0], inner), n.pos))
        if is_op(n, Op.ADD):
            yield "a product, not a sum", substitute(rhs, n, Node("mul", n.args, n.pos))
        if is_op(n, Op.ADD, Op.SUB) and is_op(n.args[0], Op.MUL):  # a b c + d -> a (b c + d)
            a = n.args[0]
            for k in range(len(a.args) - 1, 0, -1):
                kept = a.args[k:]
                inner = Node(n.kind, (kept[0] if len(kept) == 1 else Node("mul", kept, n.pos), n.args[1]), n.pos)
                yield "a bracket moved", substitute(rhs, n, Node("mul", a.args[:k] + (inner,), n.pos))
        if is_op(n, Op.TRANSPOSE):
            yield f"{text(n.args[0])} not transposed", substitute(rhs, n, n.args[0])
        elif isinstance(n, Name) and id(n) not in transposed and _matrix(names, n):
            yield f"{n.text} transposed", substitute(rhs, n, Node("transpose", (n,), n.pos))


def factor_hint(names, rhs, derived_terms, truths) -> str:
    """'missing factor F in the term X': one top-level term of the claim times a factor of one of
    the derivation's terms gives the derivation at every point."""
    factors = []
    for term in derived_terms:
        for f in (term.args if term.is_Mul else ()):
            if f not in factors and not f.is_Number:
                factors.append(f)
    for sign, node in terms(rhs):
        for f in factors:
            try:
                ok = all(_with_factor(names, rhs, node, sign, f, env, truth) for env, truth in truths)
            except (DeriveError, ValueError, TypeError):
                ok = False
            if ok:
                return f"missing factor: {printing.text(f)} in the term {text(node)}"
    return ""


def _with_factor(names, rhs, node, sign, f, env, truth) -> bool:
    claim, _ = evaluate(names, rhs, env)
    part, _ = evaluate(names, node, env)
    if part.kind not in (Shape.VECTOR, Shape.SCALAR):
        return False
    fv = as_float(verify.evaluate(f, env))
    return close(claim.val + sign * part.val * (fv - 1), truth)


def _gate(names, n) -> bool:
    try:
        ref = names.resolve(n)
    except DeriveError:
        return False
    cell = names.cell
    return ref.kind == RefKind.VEC and ir.ref(ref.value).key in getattr(cell, "gates", ())


def _matrix(names, n) -> bool:
    try:
        ref = names.resolve(n)
    except DeriveError:
        return False
    return ref.kind == RefKind.PARAM and ref.value.is_matrix


_TIME_AT = re.compile(r"(?<=[_{,])t(?:([+-])(\d+))?(?=\}?$)")


def _moved(n: Name, by: int):
    """``n`` with its time index moved by ``by`` (h_{t-1} -> h_t), or None without one."""
    m = _TIME_AT.search(n.text)
    if m is None:
        return None
    k = (int(m[2]) * (1 if m[1] == "+" else -1) if m[1] else 0) + by
    t = "t" if k == 0 else f"t{k:+d}"
    body = n.text[:m.start()] + t + n.text[m.end():]
    if n.text[m.start() - 1] == "_" and k != 0:  # h_t -> h_{t-1}
        body = n.text[:m.start()] + "{" + t + "}" + n.text[m.end():]
    return Name(body, n.pos)


def _swap(rhs, gate: str):
    """Every ``1 - z`` as ``z`` and every other ``z`` as ``1 - z``."""
    ones = {id(n) for n in walk(rhs) if is_op(n, Op.SUB) and isinstance(n.args[0], Num) and
            float(n.args[0].value) == 1 and isinstance(n.args[1], Name) and n.args[1].text == gate}
    inside = {id(n.args[1]) for n in walk(rhs) if id(n) in ones}
    out = rhs
    for n in list(walk(rhs)):
        if id(n) in ones:
            out = substitute(out, n, n.args[1])
        elif isinstance(n, Name) and n.text == gate and id(n) not in inside:
            out = substitute(out, n, Node("sub", (Num("1", n.pos), n), n.pos))
    return out


def substitute(tree, old, new):
    """``tree`` with the node ``old`` (by identity) replaced by ``new``, rebuilt bottom-up without recursion."""
    built: dict = {}
    for n in walk(tree):
        if n is old:
            built[id(n)] = new
            continue
        kids = children(n)
        if not kids or not any(id(k) in built for k in kids):
            continue
        args = tuple(built.get(id(k), k) for k in (n.args if isinstance(n, (Node, Call)) else kids))
        built[id(n)] = dataclasses.replace(n, args=args)
    return built.get(id(tree), tree)
