"""``derive check``: is a hand-derived formula right? "correct", or a counterexample.

A claim ``LEFT = RIGHT`` (read by ``derive/syntax/formulas.py``, never by ``eval``) is checked against
the derivation of a cell or an activation:

| left side                                   | the quantity                      | compared |
|---------------------------------------------|-----------------------------------|----------|
| ``dc_t``, ``\\delta c_t``, ``\\frac{\\partial L}{\\partial c_t}`` | adjoint of a vector at step t | per step, t in the middle of a run |
| ``dW_{xf}``, ``\\frac{\\partial L}{\\partial W_{xf}}``        | a parameter gradient (sum over t) | over a whole run |
| ``\\frac{\\partial h_t}{\\partial c_{t-1}}``                   | a block of the state Jacobian     | per step |
| ``N``, ``params``                           | parameters per layer and direction | as polynomials in I, H, P |
| ``f'(x)``, ``\\sigma'(x)``, ``f(x)``          | an activation's derivative or definition | symbolically and at points |

Numbers come from the derivation evaluated at 30 digits on random parameters, inputs and
loss weights (sizes I=2, H=3, P=2, T=4; I = H for a spec with ``sizes = { x = "H" }``, and
T = 3 + k for an input tap x_{t-k}, k > 1), the same witness the tests use; the claim is
evaluated in float64 from those values. A vector claim is also compared symbolically
(SymPy, within a time bound). A wrong claim gets the step and the values of every symbol
at which the two sides differ, and, when one term explains the difference, its name.

This module is the entry point: it tells a cell from an activation and tries a wrong cell
claim on the cell's relatives (``FAMILY``). The claim kinds are ``cell.py`` (with ``counts.py``
and ``hints.py``) and ``activation.py``; ``derive/checker/__init__.py`` lists the rest.
"""

from __future__ import annotations

from derive import activations as acts
from derive.checker.activation import check_activation
from derive.checker.cell import check_cell
from derive.checker.result import Result, Verdict
from derive.errors import DeriveError
from derive.symbolic import spec

#: cells whose formulas differ by a convention: a claim wrong for one may be right for another
#: (names of the one cell -> names of the other where they differ)
_GRU_TO_CHO = {"n": "h_tilde", "z_n": "z_h_tilde", "W_xn": "W_xh", "W_hn": "W_hh", "b_n": "b_h"}
FAMILY = {
    "gru": {"gru_cho": _GRU_TO_CHO}, "gru_cho": {"gru": {v: k for k, v in _GRU_TO_CHO.items()}},
    "lstm": {"lstm_peephole": {}, "lstm_cifg": {}}, "lstm_peephole": {"lstm": {}}, "lstm_cifg": {"lstm": {}},
    "rnn_tanh": {"rnn_relu": {}}, "rnn_relu": {"rnn_tanh": {}},
}


def check(target: str, formula: str, *, let=()) -> Result:
    """Check ``formula`` against the derivation of ``target`` (a cell name or spec path, or an
    activation name). Raises DeriveError for input that cannot be read."""
    try:
        return _check(target, formula, list(let))
    except RecursionError:  # sums are balanced and products flat; this is a last guard
        raise DeriveError("the formula nests too deeply to check; split it with --let") from None


def _check(target: str, formula: str, lets: list) -> Result:
    is_cell = target in spec.builtin_names() or target.endswith(".toml")
    if not is_cell:
        try:
            acts.get(target)
        except KeyError:
            raise DeriveError(f"unknown cell or activation {target!r}; cells: {', '.join(spec.builtin_names())}; "
                              f"activations: {', '.join(acts.elementwise())}") from None
        return check_activation(target, formula, lets)
    result = check_cell(target, formula, lets)
    if result.verdict == Verdict.WRONG and not target.endswith(".toml"):
        for other, renames in FAMILY.get(target, {}).items():
            try:
                alt = check_cell(other, formula, lets, renames)
            except DeriveError:
                continue
            if alt.verdict == Verdict.CORRECT:
                title = spec.load(other).title
                result.verdict = Verdict.EQUIVALENT
                result.convention = f"it is right for {other} ({title}), not for {target}"
                break
    return result
