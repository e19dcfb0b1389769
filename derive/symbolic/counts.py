"""Parameter counts as SymPy polynomials in I, H (and P), per framework convention.

The count starts from the spec's own parameters (their inferred shapes) and applies a
convention:

| convention | biases                                                              |
|------------|---------------------------------------------------------------------|
| ``single`` | as the spec writes them: one vector per gate (the textbook count)   |
| ``pytorch``| double: a bias in a pre-activation that sums an input product and a |
|            | recurrent product is stored twice (``b_{ih}`` and ``b_{hh}``, cuDNN) |
| ``keras``  | the spec's ``[keras] bias``: ``single`` or ``double`` (GRU          |
|            | ``reset_after=True`` keeps a (2, 3H) bias)                           |

Layers and directions: layer 0 reads I inputs, every later layer reads D * H_out, where
D = 2 when bidirectional and H_out = P with a projection (PyTorch ``proj_size``), else H.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from derive.symbolic import ir
from derive.symbolic.cell import H, I, P, Cell
from derive.errors import DeriveError

CONVENTIONS = ("pytorch", "keras", "single")


def _matvec_args(cell: Cell) -> dict:
    """parameter symbol -> free symbols of the vectors it multiplies."""
    out: dict = {}
    for a in cell.assignments:
        for atom in a.rhs.atoms(ir.MatVec):
            out.setdefault(atom.args[0], set()).update(atom.args[1].free_symbols)
    return out


def doubled_biases(cell: Cell) -> list[str]:
    """Biases the double-bias layout stores twice: those added at the top level of a
    pre-activation that also sums an input product and a recurrent product."""
    prev_states = {ir.at(s, -1) for s in cell.states}
    out = []
    for a in cell.assignments:
        terms = sp.Add.make_args(a.rhs)
        products = [t for t in terms if isinstance(t, ir.MatVec)]
        reads_input = any(cell.input in t.args[1].free_symbols for t in products)
        reads_state = any(prev_states & t.args[1].free_symbols for t in products)
        if reads_input and reads_state:
            out += [ir.ref(t).key for t in terms
                    if isinstance(t, sp.Symbol) and ir.is_ir(t) and ir.ref(t).time is None]
    return out


def default_convention(cell: Cell) -> str:
    """The cell's own layout: pytorch for a double-bias cell, else single."""
    return "pytorch" if cell.conventions.get("bias") == "double" else "single"


def supports_projection(cell: Cell) -> bool:
    """The cell's PyTorch module has a ``proj_size`` option (plain LSTM: counted by adding W_{hr})."""
    return bool(cell.conventions.get("pytorch", {}).get("proj_size"))


def projects(cell: Cell) -> bool:
    """The cell itself has a P-sized state (``sizes = {h = "P"}``, the lstm_proj cell)."""
    return any(d == P for p in cell.params.values() for d in p.shape)


def bias_style(cell: Cell, convention: str) -> str:
    if convention == "pytorch":
        return "double"
    if convention == "keras":
        return cell.conventions.get("keras", {}).get("bias", "single")
    return "single"


def layer_count(cell: Cell, convention: str = "pytorch", bias: bool = True, proj: bool = False,
                inputs: sp.Expr = I) -> sp.Expr:
    """Parameters of one layer and direction reading ``inputs`` features (H for a cell whose
    spec declares ``sizes = { x = "H" }``: its input has the hidden size, so I is not free)."""
    if cell.input_size is not None and inputs == I:
        inputs = cell.input_size
    if convention not in CONVENTIONS:
        raise DeriveError(f"unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    reads = _matvec_args(cell)
    out_state = ir.at(cell.output, -1)
    doubled = set(doubled_biases(cell)) if bias_style(cell, convention) == "double" else set()
    total = sp.Integer(0)
    for key, p in cell.params.items():
        if not p.is_matrix:
            if bias or _is_not_bias(cell, p):
                total += p.shape[0] * (2 if key in doubled else 1)
            continue
        rows, cols = p.shape
        if proj and out_state in reads.get(p.symbol, ()):
            cols = P
        masked = cell.clock is not None and key in cell.clock.masked  # block-triangular: its free entries
        total += rows * cols * (cell.clock.free_fraction if masked else 1)
    if proj:
        total += P * H  # W_{hr}: h_t <- W_{hr} h_t
    return sp.expand(total.subs(I, inputs))


def _is_not_bias(cell: Cell, p) -> bool:
    """A vector parameter that multiplies something (a peephole) is a weight, not a bias."""
    return any(p.symbol in m.args for a in cell.assignments for m in a.rhs.atoms(sp.Mul))


@dataclass
class Count:
    total: int
    per_layer: sp.Expr  # layer 0, one direction, in I, H (and P)
    upper_layer: sp.Expr | None  # a layer above the first, one direction
    formula: sp.Expr  # the whole stack, in I, H (and P)
    convention: str
    bias_style: str
    notes: list


def count(cell: Cell, *, input_size: int, hidden: int, layers: int = 1, bidirectional: bool = False,
          proj: int = 0, bias: bool = True, convention: str | None = None) -> Count:
    """The number of parameters of a stack of the cell under a framework's convention."""
    convention = convention or default_convention(cell)
    notes = []
    for name, value in (("--input", input_size), ("--hidden", hidden), ("--layers", layers)):
        if value < 1:
            raise DeriveError(f"{name} must be a positive integer, not {value}")
    if proj < 0:
        raise DeriveError(f"--proj must be 0 or positive, not {proj}")
    if projects(cell) and not proj:
        raise DeriveError(f"{cell.name} projects its output to P features: give --proj P (proj_size)")
    if proj:
        if not (supports_projection(cell) or projects(cell)):
            raise DeriveError(f"{cell.name} has no projection; proj_size is PyTorch's LSTM option")
        if convention != "pytorch":
            raise DeriveError("a projection (proj_size) exists only in the pytorch convention")
        if proj >= hidden:
            raise DeriveError(f"proj_size must be smaller than the hidden size ({proj} >= {hidden}), "
                              f"as PyTorch requires")
    if cell.input_size is not None:  # sizes = { x = "H" }: every layer reads H features
        declared = 'its spec declares sizes = { x = "H" }: the input has the hidden size'
        if input_size != hidden:
            raise DeriveError(f"{cell.name}: --input {input_size} differs from --hidden {hidden}, but {declared}")
        if layers > 1 and (bidirectional or proj):
            raise DeriveError(f"{cell.name}: a layer above the first would read {'2H' if bidirectional else 'P'} "
                              f"features, but {declared}")
    if cell.clock is not None and not cell.clock.fits(hidden):
        raise DeriveError(f"{cell.name}: --hidden {hidden} is not a multiple of the clock's {cell.clock.modules} "
                          f"modules (H = g k)")
    if convention == "pytorch" and not cell.conventions.get("pytorch", {}).get("module"):
        notes.append("PyTorch has no module for this cell: counted with PyTorch's double-bias layout")
    if convention == "keras" and not cell.conventions.get("keras", {}).get("layer"):
        notes.append("Keras has no layer for this cell: counted with Keras's single-bias layout")
    D = 2 if bidirectional else 1
    h_out = P if proj else H
    add_proj = bool(proj) and not projects(cell)  # the plain LSTM counted with W_{hr} added
    first = layer_count(cell, convention, bias, add_proj, I)
    upper = layer_count(cell, convention, bias, add_proj, D * h_out) if layers > 1 else None
    formula = D * first + (layers - 1) * D * (upper if upper is not None else 0)
    values = {I: input_size, H: hidden, P: proj}
    return Count(int(formula.subs(values)), sp.factor(first), sp.factor(upper) if upper is not None else None,
                 sp.expand(formula), convention, bias_style(cell, convention), notes)
