"""The activation side of the CLI: ``show``, the ``list`` table, ``verify``, ``bench``.

Output formatting only; the numbers come from ``properties``, ``witness`` and the kernels.
"""

from __future__ import annotations

import sympy as sp

from derive import activations as acts
from derive.runtime.activations import activation
from derive.textout import interval_text, short
from derive.errors import DeriveError

#: columns of ``derive list`` for activations: (header, key of Properties.row())
LIST_COLUMNS = (("name", "name"), ("range", "range"), ("monotonic", "monotonic"), ("smooth", "smoothness"),
                ("saturation -/+", "saturation"), ("zero-centred", "zero_centred"), ("gate", "gate_ok"))


def show(name: str) -> str:
    """``derive show ACTIVATION``: definition, derivative, properties, the NumPy kernels."""
    a = activation(name)
    cls, p = a.stanza, a.properties
    lines = [f"{name}: {cls.summary}"]
    if cls.names:
        lines.append(f"  frameworks: {cls.names}")
    for prm in cls.params:
        lines.append(f"  parameter {prm.name} = {prm.default!r}{' (learned)' if prm.learned else ''}: {prm.doc}")
    if cls.kind == "elementwise":
        lines.append("\nDefinition (parameters as symbols)")
        lines.append(f"  f(x) = {sp.sstr(cls.symbolic_math())}")
        if cls.mathematical is not None:
            lines.append(f"  as the framework computes it: f(x) = {sp.sstr(cls.symbolic())}")
            lines.append(f"    ({p.shortcut_text()}; the properties below are the function's)")
        lines.append("Derivative (at the defaults)")
        lines.append(f"  f'(x) = {sp.sstr(sp.simplify(a.derivative))}")
        if cls.derivative is not None:
            y = sp.Symbol("y")
            lines.append(f"  with y = f(x): f'(x) = {sp.sstr(cls.derivative(sp.Symbol('x'), y, **cls.exact_params()))}")
        lines.append("\nProperties (computed from the definition)")
        r = p.row()
        for key, label in (("range", "range"), ("limits", "f(-oo), f(+oo)"), ("f(0)", "f(0)"), ("f'(0)", "f'(0)"),
                           ("monotonic", "monotonic"), ("bounded", "bounded"),
                           ("zero_centred", "zero-centred (E f(z) = 0)"), ("sign_preserving", "sign f(x) = sign x"),
                           ("smoothness", "smoothness"), ("minimum", "minimum"),
                           ("saturation", "saturation (left / right)"), ("mean_N01", "E f(z), z ~ N(0,1)"),
                           ("dead_mass_N01", "P(f'(z) = 0), z ~ N(0,1)")):
            value = interval_text(p.range) if key == "range" else r[key]
            if value != "":
                lines.append(f"  {label:28s} {value}")
        for point, order, jump in p.kinks:
            what = "continuous to all orders checked" if order is None else \
                ("jump" if order == 0 else f"f^({order}) jumps") + f" by {short(sp.nsimplify(jump) if jump.is_Rational else jump)}"
            lines.append(f"  kink at x = {short(point)}: {what}")
        lines.append(f"  fit for a gate (range within [0, 1]): {'yes' if p.gate_ok else 'no'}")
    else:
        lines.append(f"\nDefinition: {cls.display}")
        for claim, ok in p.reductions:
            lines.append(f"  {claim}: {'verified symbolically' if ok else 'FAILS'}")
    if cls.notes:
        lines.append(f"\nNote: {cls.notes}")
    lines.append("\nNumPy kernels (derive/kernels/activations.py)")
    lines.append(a.code.rstrip())
    return "\n".join(lines)


def known(names):
    for n in names:
        try:
            cls = acts.get(n)
        except KeyError as e:
            raise DeriveError(e.args[0]) from None
        if cls.kind != "elementwise":
            raise DeriveError(f"{n} is not elementwise; verify and bench cover the elementwise activations")
    return [acts.get(n).__name__ for n in names]


def is_activation(name: str) -> bool:
    try:
        acts.get(name)
        return True
    except KeyError:
        return False

