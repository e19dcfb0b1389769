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
claim under the cell's conventions (``CONVENTIONS``: "equivalent") and on its relatives
(``RELATIVES``: still "wrong", the report says whose formula it is). The claim kinds are ``cell.py`` (with ``counts.py``
and ``hints.py``) and ``activation.py``; ``derive/checker/__init__.py`` lists the rest.
"""

from __future__ import annotations

from derive import activations as acts
from derive.checker.activation import check_activation
from derive.checker.cell import check_cell
from derive.checker.lets import read_lets
from derive.checker.model import check_model
from derive.checker.result import Result, Verdict
from derive.checker.seq2seq import check_seq2seq
from derive.errors import DeriveError
from derive.symbolic import model, seq2seq, spec

#: The verdict policy. "equivalent" is kept for the same function under a storage or counting
#: convention: the GRU's reset placement (PyTorch/cuDNN/Keras reset_after=True against Cho et al.'s
#: reset before the matmul: one layer, a framework switch) here, the bias storage and the
#: Keras/single/no-bias counts in ``counts.py``. A claim right for another CELL (the plain LSTM's
#: dc_t checked against the peephole LSTM) is ``wrong``; its report names the cell it is right for.
_GRU_TO_CHO = {"n": "h_tilde", "a_n": "a_h_tilde", "W_xn": "W_xh", "W_hn": "W_hh", "b_n": "b_h"}
CONVENTIONS = {
    "gru": {"gru_cho": _GRU_TO_CHO}, "gru_cho": {"gru": {v: k for k, v in _GRU_TO_CHO.items()}},
}
#: notations of the literature that rename a cell's quantities: (who, the equation as the spec writes it, as they
#: write it, what to say). Olah's GRU (and the lecture notes that copy its figure) writes z for the spec's 1 - z.
_COLAH = ("Olah's notation (z for this page's 1 - z: h_t = (1 - z_t) h_{t-1} + z_t h~_t)",)
NOTATIONS = {
    "gru": [(r"h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}", r"h_t = (1 - z_t) \odot h_{t-1} + z_t \odot n_t",
             *_COLAH)],
    "gru_cho": [(r"h_t = (1 - z_t) \odot \tilde{h}_t + z_t \odot h_{t-1}",
                 r"h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde{h}_t", *_COLAH)],
}
#: other cells a wrong claim is tried on, only to say whose formula it is (the verdict stays wrong)
RELATIVES = {
    "lstm": ("lstm_peephole", "lstm_cifg"), "lstm_peephole": ("lstm",), "lstm_cifg": ("lstm",),
    "rnn_tanh": ("rnn_relu",), "rnn_relu": ("rnn_tanh",),
}


def check(target: str, formula: str, *, let=(), override=()) -> Result:
    """Check ``formula`` against the derivation of ``target`` (a cell name or spec path, or an
    activation name). ``let``: ``NAME = EXPR`` texts defining new names; ``override``: the same for
    names the cell already has (``dh_t = 0``), which a --let may not replace. Raises DeriveError
    for input that cannot be read."""
    if isinstance(let, str) or isinstance(override, str):
        raise DeriveError("let= and override= take a list of 'NAME = EXPR' texts")
    try:
        return _check(target, formula, read_lets(list(let), list(override)))
    except RecursionError:  # sums are balanced and products flat; this is a last guard
        raise DeriveError("the formula nests too deeply to check; split it with --let") from None


def _check(target: str, formula: str, lets: list) -> Result:
    if model.is_model(target) and target not in acts.elementwise():
        return _check_model(target, formula, lets)
    is_cell = target in spec.builtin_names() or target.endswith(".toml")
    if not is_cell:
        try:
            acts.get(target)
        except KeyError:
            raise DeriveError(f"unknown cell or activation {target!r}; cells: {', '.join(spec.builtin_names())}; "
                              f"activations: {', '.join(acts.elementwise())}") from None
        return check_activation(target, formula, lets)
    result = check_cell(target, formula, lets)
    if result.verdict != Verdict.WRONG or target.endswith(".toml"):
        return result
    for other, renames in CONVENTIONS.get(target, {}).items():
        if _right_for(other, formula, lets, renames):
            result.verdict = Verdict.EQUIVALENT
            result.convention = f"it is right for {other} ({spec.load(other).title}), not for {target}"
            return result
    for written, theirs, who in NOTATIONS.get(target, ()):
        if _right_in(target, written, theirs, formula, lets):
            result.verdict = Verdict.EQUIVALENT
            result.convention = f"it is right in {who}; derive check {target} reads z_t as this page does"
            result.hint = ""  # the "wrong sign" it would name is the notation's, not a slip
            return result
    for other in RELATIVES.get(target, ()):
        if _right_for(other, formula, lets, None):
            result.other = (f"this is the formula for {other} ({spec.load(other).title}); "
                            f"{target} is another cell, not a convention")
            break
    return result


def _right_in(target: str, written: str, theirs: str, formula: str, lets: list) -> bool:
    """Whether the claim is right for ``target`` with its equation ``written`` replaced by ``theirs``."""
    text, source = spec.text_of(target)
    if written not in text:  # the spec and this table drifted apart: a bug, not the user's
        raise AssertionError(f"{source} no longer has the equation {written}")

    def amend(data):
        return {**data, "equations": data["equations"].replace(written, theirs)}
    cell = spec.parse_spec(text, source, amend=amend)
    try:
        return check_cell(target, formula, lets, cell=cell).verdict == Verdict.CORRECT
    except DeriveError:
        return False


def _check_model(target: str, formula: str, lets: list) -> Result:
    m = seq2seq.load_model(target)
    if isinstance(m, seq2seq.Seq2SeqSpec):
        return check_seq2seq(m, formula, lets)
    return check_model(m, formula, lets)


def _right_for(other: str, formula: str, lets: list, renames) -> bool:
    try:
        return check_cell(other, formula, lets, renames).verdict == Verdict.CORRECT
    except DeriveError:  # a name the other cell does not have
        return False
