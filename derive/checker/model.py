"""Claims about a layer of a stack (``derive check MODEL 'formula'``).

A stack's layer l is its cell run on x^{(l)}_t, seen from above through u_t = x^{(l+1)}_t
(``symbolic.layer``: u_t = y_t, plus x_t with a residual identity, plus W_r x_t with a residual
projection). A claim names the layer by a superscript, ``h^{(l)}_t`` or ``h^{[l]}_t`` (a layer
above the first) or ``h^{(1)}_t`` (a numbered layer), and a direction of a bidirectional layer
by an arrow, ``\\overrightarrow{h}^{(l)}_t`` or ``\\overleftarrow{h}^{(l)}_t``. It is read as a
claim on that layer's cell:

| in the claim                                  | on the layer's cell                      |
|-----------------------------------------------|------------------------------------------|
| ``v^{(l)}_t``, ``W_{xf}^{(l)}``                  | ``v_t``, ``W_{xf}``                          |
| ``x^{(l)}_t`` (the layer's input)              | the cell's input ``x_t``                    |
| ``x^{(l+1)}_t``, ``\\delta y^{(l)}_t``           | ``u_t``, ``\\delta u_t`` (the gradient from above) |
| ``y^{(l)}_t`` (the layer's output)             | the cell's output                        |
| ``\\overleftarrow{v}``, times t+k               | ``v``, times t-k (the reverse direction runs backwards in time) |

and checked by the cell checker against the derivation of that cell, so the verdict, the
counterexample and the hints are the cell checker's. Every superscript is a layer here: a time is
a subscript (``h^{(t)}`` reads as a time only on cells).
"""

from __future__ import annotations

import re

from derive.checker.cell import check_cell
from derive.checker.result import Result
from derive.errors import DeriveError, Pos
from derive.symbolic import counts, ir
from derive.symbolic.layer import Shortcut, layer_cell
from derive.symbolic.model import ModelSpec
from derive.syntax.notation import Source

_ARROW = re.compile(r"\\(overrightarrow|overleftarrow)\s*\{\s*([^{}]*?)\s*\}")
_SUB = r"_(?:\{(?:[^{}]|\{[^{}]*\})*\}|\\?[A-Za-z0-9]+)"
_LAYERED = re.compile(
    r"(?P<d>\\delta\s*|\\partial\s*)?(?<![A-Za-z\\])(?P<head>[A-Za-z]+|\\(?:tilde|hat|bar)\s*\{[A-Za-z]\})"
    rf"(?P<sub1>{_SUB})?\s*\^\s*\{{\s*[(\[]\s*(?P<l>l|\d+)\s*(?:(?P<sign>[+-])\s*(?P<k>\d+))?\s*[)\]]"
    r"\s*(?:<\s*(?P<t1>t[^<>{}]*?)\s*>|\\langle\s*(?P<t2>t[^<>{}]*?)\s*\\rangle)?"
    rf"\s*(?P<tr>\\top|T|\\prime|')?\s*\}}(?P<sub2>{_SUB})?")
_TIME = re.compile(r"(?<![A-Za-z\\])t\s*([+-])\s*(\d+)")


def check_model(m: ModelSpec, formula: str, lets=()) -> Result:
    if not isinstance(formula, str):
        raise DeriveError("a formula must be text")
    src = Source(formula)
    reverse = _directions(m, src)
    layers = [_layer(mt) for mt in _LAYERED.finditer(src.text)]
    if not layers:
        raise DeriveError(rf"name the layer the claim is about: \delta h^{{(l)}}_t (a layer above the first), "
                          rf"h^{{(1)}}_t (layer 1), x^{{(l+1)}}_t (the layer above's input); {m.name} has "
                          f"{m.layers} layer(s)", Pos(1, 1))
    if len({symbolic for symbolic, _ in layers}) > 1:
        raise DeriveError("give every layer as l (l+1) or every layer as a number, not both", Pos(1, 1))
    own = {lv for lv, mt in zip(layers, _LAYERED.finditer(src.text)) if _head(mt) != "x"}
    base = min(own) if own else min(layers)
    if len(own) > 1:
        raise DeriveError(f"a claim is about one layer: it names layers {', '.join(_show(v) for v in sorted(own))}; "
                          f"only the layer above's input x^(l+1) may join layer l's names", Pos(1, 1))
    if not base[0] and not 1 <= base[1] <= m.layers:
        raise DeriveError(f"{m.name} has layers 1..{m.layers}, not {base[1]}", Pos(1, 1))
    shortcut = _shortcut(m, base, reverse)
    try:
        cell, u = layer_cell(m.cell_ref, m.cell, shortcut)
    except DeriveError as e:
        raise DeriveError(f"{e.message} (the residual of layer {_show(base)})") from None
    src.sub(_LAYERED, lambda mt: _rename(mt, base, m, cell, u, src))
    if reverse:  # the reverse direction's recurrences run from t+1: read as the cell's, times mirrored
        src.sub(_TIME, lambda mt: f"t{'-' if mt[1] == '+' else '+'}{mt[2]}")
    try:
        result = check_cell(m.cell_ref, src.text, lets, cell=cell)
    except DeriveError as e:
        if e.pos is not None and e.source is None:
            message = e.message
            if reverse and "is not known at this step" in message:
                message += ("; the reverse direction runs backwards in time: its later step is t-1 (write "
                            r"\delta \overleftarrow{z}_{t-1}, read here mirrored as dz_{t+1})")
            raise DeriveError(message, src.pos(e.pos.line, e.pos.column)) from None
        raise
    result.formula = formula
    result.reading = _reading(m, base, cell, u, shortcut, reverse, src.text)
    return result


def _directions(m: ModelSpec, src: Source) -> bool:
    """Whether the claim is about the reverse direction; the arrows are dropped from ``src``."""
    arrows = {mt[1] for mt in _ARROW.finditer(src.text)}
    if len(arrows) > 1:
        raise DeriveError("a claim is about one direction: it names both (the two directions of a layer have "
                          "their own parameters and recurrences)", Pos(1, 1))
    reverse = arrows == {"overleftarrow"}
    if reverse and not m.bidirectional:
        raise DeriveError(rf"{m.name} has no reverse direction (\overleftarrow); its layers run forward in time",
                          Pos(1, 1))
    if m.bidirectional and not arrows:
        raise DeriveError(rf"{m.name} is bidirectional: name the direction, \overrightarrow{{h}}^{{(l)}}_t or "
                          rf"\overleftarrow{{h}}^{{(l)}}_t", Pos(1, 1))
    src.sub(_ARROW, lambda mt: mt[2])
    return reverse


def _layer(mt: re.Match) -> tuple:
    """(whether the layer is written with l, its number or its offset from l): ^{(l+1)} -> (True, 1)"""
    k = int(mt["k"]) if mt["k"] else 0
    k = -k if mt["sign"] == "-" else k
    return (True, k) if mt["l"] == "l" else (False, int(mt["l"]) + k)


def _head(mt: re.Match) -> str:
    head = mt["head"]
    return head[1:] if len(head) > 1 and head.startswith("d") and mt["d"] is None else head


def _shortcut(m: ModelSpec, base, reverse: bool) -> Shortcut:
    """What layer ``base`` adds to its output: nothing (no residual, or a direction of a bidirectional
    layer, whose gradient is its half of the one from above), an identity (a layer above the first), or
    at layer 1 (input size I) the projection of ``residual = "project"``."""
    if not m.residual or m.bidirectional:
        return Shortcut.NONE
    if base == (False, 1):
        return Shortcut.PROJECTION if m.residual == "project" else Shortcut.NONE
    if counts.projects(m.cell):
        raise DeriveError(f"{m.cell.name} projects its output to size P: a residual layer of it adds x^(l) of size "
                          f"P, which a claim is not read on; check the cell: derive check {m.cell.name} '...'",
                          Pos(1, 1))
    return Shortcut.IDENTITY


def _rename(mt: re.Match, base, m: ModelSpec, cell, u: str, src: Source) -> str:
    level = _layer(mt)
    head, adjoint = _head(mt), mt["d"] is not None or (mt["head"] != _head(mt))
    dee = "d" if mt["head"] != head else ""
    sub = _subscript(mt)
    tr = "" if not mt["tr"] else ("'" if mt["tr"] in ("\\prime", "'") else r"^{\top}")
    above = level == (base[0], base[1] + 1)
    if level != base and not (above and head == "x"):
        raise DeriveError(f"layer {_show(level)} in a claim about layer {_show(base)}: a claim reads its own layer's "
                          f"names and the layer above's input x^({_show(base, 1)})", src.typed_pos(mt.start()))
    x_key = ir.ref(cell.input).key
    if head == "x" and above or head == "y" and adjoint:
        if m.bidirectional and m.merge == "concat" and head == "x":
            raise DeriveError(rf"with merge = concat a direction's gradient from above is its half of \delta "
                              rf"x^{{({_show(base, 1)})}}_t: write \delta \overrightarrow{{y}}^{{({_show(base)})}}_t "
                              rf"or \delta \overleftarrow{{y}}^{{({_show(base)})}}_t", src.typed_pos(mt.start()))
        return f"{mt['d'] or ''}{dee}{u}{sub}{tr}"
    if head == "x":
        if adjoint and m.bidirectional:
            raise DeriveError(f"in a bidirectional layer dx^({_show(base)})_t sums both directions' input gradients"
                              f"{' and the residual' if m.residual else ''}; claims are read per direction: check "
                              f"a direction's own terms on the cell (derive check {m.cell.name} 'dx_t = ...')",
                              src.typed_pos(mt.start()))
        return f"{mt['d'] or ''}{dee}{x_key}{sub}{tr}"
    if head == "y" and "y" not in cell.dims:
        return f"{ir.ref(cell.output).base}{sub}{tr}"
    return f"{mt['d'] or ''}{mt['head']}{sub}{tr}"


def _subscript(mt: re.Match) -> str:
    """The name's subscript, with a time written in the superscript (Ng's a^{[l]<t>}) added as its last part."""
    sub = (mt["sub1"] or "") + (mt["sub2"] or "")
    time = (mt["t1"] or mt["t2"] or "").replace(" ", "")
    if not time:
        return sub
    if not sub:
        return f"_{{{time}}}"
    inner = sub[2:-1] if sub.startswith("_{") else sub[1:]
    return f"_{{{inner},{time}}}"


def _show(level: tuple, plus: int = 0) -> str:
    symbolic, k = level[0], level[1] + plus
    return (f"l{k:+d}" if k else "l") if symbolic else str(k)


def _reading(m, base, cell, u, shortcut, reverse, text) -> str:
    out = ir.ref(cell.output)
    y = ir.ref(m.cell.output).key
    eq = {Shortcut.NONE: f"{y}_t", Shortcut.IDENTITY: f"{y}_t + x_t", Shortcut.PROJECTION: f"{y}_t + W_r x_t"}
    what = f"layer {_show(base)} of {m.name}, the cell {m.cell.name} with "
    if m.bidirectional:
        what += (f"{out.key}_t = {eq[shortcut]}, this direction's output (d{u}_t: its "
                 f"{'half' if m.merge == 'concat' else 'copy'} of dx^({_show(base, 1)})_t, the gradient from above)")
    else:
        what += f"{out.key}_t = x^({_show(base, 1)})_t = {eq[shortcut]} (d{u}_t: the gradient from above)"
    if reverse:
        what += "; the reverse direction, its times mirrored (t+1 <-> t-1)"
    return f"{what}: {text}"
