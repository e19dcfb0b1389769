"""Model specs: stacks of one cell, in layers and directions, with residual connections (issue 19).

A model spec is TOML in the style of a cell spec (built-ins in ``derive/models/``), or a dict of
the same keys::

    name = "deep_residual_lstm"
    cell = "lstm"            # a built-in cell or a cell spec's path
    layers = 3
    bidirectional = false
    merge = "concat"         # the two directions' outputs side by side, or "sum"
    residual = true          # y_l += x_l wherever a layer's input has its output's size;
                             # "project": and y_l += W_r x_l (learned, no bias) where it has not

Layer 0 reads the input (I features); layer l > 0 reads layer l-1's output: D H features with
``merge = "concat"`` (D = 2 directions), H with ``"sum"`` (P with a projecting cell). The
reverse direction runs on the time-reversed sequence, as ``torch.nn.LSTM`` does. A residual
connection adds a layer's input to its output where the two have one size (an identity, no
weights): every layer above the first, and the first when I equals its output's size.

With ``residual = "project"`` a layer whose input has another size adds a learned projection of
it, y_l = f_l(x_l) + W_r^{(l)} x_l (an out x in matrix, no bias; GNMT's and He et al.'s option
for a shortcut across sizes). Encoder-decoder specs are ``symbolic.seq2seq``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from derive import fileio
from derive.errors import DeriveError, Pos
import sympy as sp

from derive.symbolic import counts
from derive.symbolic import spec as cell_spec
from derive.symbolic.cell import H, I, P, Cell

#: key -> (type, what it must be)
KEYS = {
    "name": (str, "a Python identifier"),
    "title": (str, "a string"),
    "summary": (str, "a string"),
    "references": (list, "a list of strings"),
    "notes": (str, "a string"),
    "cell": (str, "a built-in cell's name or a cell spec's path"),
    "layers": (int, "a positive integer"),
    "bidirectional": (bool, "true or false"),
    "merge": (str, '"concat" or "sum"'),
    "residual": ((bool, str), 'true, false or "project"'),
}
MERGES = ("concat", "sum")
#: keys of an encoder-decoder spec (``symbolic.seq2seq``)
SEQ2SEQ = ("encoder", "decoder", "attention", "embedding", "bridge")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    cell: Cell
    cell_ref: str  # as the spec names it: a built-in name or a path
    layers: int = 1
    bidirectional: bool = False
    merge: str = "concat"
    residual: bool | str = False  # True: identities; "project": and learned projections between sizes
    title: str = ""
    meta: dict = field(default_factory=dict)
    source: str = ""

    @property
    def directions(self) -> tuple:
        return (False, True) if self.bidirectional else (False,)

    def keys(self) -> list:
        """(layer, reverse) of every layer and direction, bottom layer first."""
        return [(layer, rev) for layer in range(self.layers) for rev in self.directions]

    def layer_inputs(self, inputs, hidden, proj=None) -> list:
        """The features each layer reads: I, then the layer below's output (D H with concat, H with sum; P
        for H with a projecting cell)."""
        out = proj if counts.projects(self.cell) else hidden
        D = len(self.directions) if self.merge == "concat" else 1
        return [inputs] + [D * out] * (self.layers - 1)

    def projected(self, inputs, hidden, proj=None) -> dict:
        """{layer: (out, in)} of the learned residual projections W_r (``residual = "project"``: where a layer's
        input has another size than its output)."""
        if self.residual != "project":
            return {}
        out = (proj if counts.projects(self.cell) else hidden) * (len(self.directions) if self.merge == "concat" else 1)
        return {layer: (out, n) for layer, n in enumerate(self.layer_inputs(inputs, hidden, proj)) if n != out}

    def count(self, input_size: int, hidden: int, *, proj: int | None = None, convention: str | None = None) -> int:
        """Parameters of every layer and direction under a framework's convention (``counts``); residual
        connections are identities and add none."""
        if self.cell.clock is not None and not self.cell.clock.fits(hidden):
            raise DeriveError(f"{self.cell.name}: hidden {hidden} is not a multiple of the clock's modules")
        convention = convention or counts.default_convention(self.cell)
        values = {I: input_size, H: hidden, P: proj or 0}
        total = sum(o * i for o, i in self.projected(input_size, hidden, proj).values())
        for n in self.layer_inputs(input_size, hidden, proj):
            total += len(self.directions) * int(counts.layer_count(self.cell, convention, inputs=sp.Integer(n))
                                                .subs(values))
        return total


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("derive.models").iterdir() if p.name.endswith(".toml"))


def is_model(name_or_path) -> bool:
    """A built-in model's name, or the path of a TOML file with a top-level ``cell`` and no ``equations``
    (a model spec, not a cell spec); anything else is left to the cell loader."""
    if not isinstance(name_or_path, str):
        return isinstance(name_or_path, dict)
    if name_or_path.replace("-", "_").lower() in builtin_names():
        return True
    path = Path(name_or_path)
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        text = fileio.read_text(name_or_path, fileio.SPEC_LIMIT)
    except DeriveError:
        return False
    return re.search(r"^(cell|encoder)\s*=", text, re.M) is not None and \
        re.search(r"^equations\s*=", text, re.M) is None


def read(name_or_spec) -> tuple[dict, str | None, str]:
    """(the spec's keys, its text (None for a dict), its source) of a built-in model, a path or a dict."""
    if isinstance(name_or_spec, dict):
        return dict(name_or_spec), None, "<model>"
    if not isinstance(name_or_spec, str):
        raise DeriveError(f"a model is a built-in name, a spec path or a dict, not {type(name_or_spec).__name__}")
    key = name_or_spec.replace("-", "_").lower()
    if key in builtin_names():
        text, source = (resources.files("derive.models") / f"{key}.toml").read_text(encoding="utf-8"), \
            f"derive/models/{key}.toml"
    elif name_or_spec.endswith(".toml") or Path(name_or_spec).exists():
        text, source = fileio.read_text(name_or_spec, fileio.SPEC_LIMIT), name_or_spec
    else:
        raise DeriveError(f"unknown model {name_or_spec!r}; built-in models: {', '.join(builtin_names())} "
                          f"(or give the path of a .toml model spec, or a dict)")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    return cell_spec._read_toml(text, source), text, source


def is_seq2seq(data: dict) -> bool:
    return any(key in data for key in SEQ2SEQ)


def load(name_or_spec) -> ModelSpec:
    """A stack: a built-in model by name, a model spec file by path, or a dict of the spec's keys."""
    data, text, source = read(name_or_spec)
    return stack_from_dict(data, text=text, source=source)


def parse_model(text: str, source: str = "<model>") -> ModelSpec:
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    return stack_from_dict(cell_spec._read_toml(text, source), text=text, source=source)


def stack_from_dict(data: dict, *, text: str | None, source: str) -> ModelSpec:
    def at(key):
        return cell_spec._key_pos(text, key) if text is not None else None

    def fail(message, key=None):
        raise DeriveError(message, at(key) if key else (Pos(1, 1) if text is not None else None),
                          source if text is not None else None)

    for key, value in data.items():
        if key in SEQ2SEQ:
            fail(f"{key!r} belongs to an encoder-decoder spec (encoder, decoder, attention, bridge, embedding); "
                 f"a stack has: {', '.join(KEYS)}", key)
        if key not in KEYS:
            fail(f"unknown key {key!r}; a model spec has: {', '.join(KEYS)}", key)
        kind, what = KEYS[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if kind is list:
            ok = ok and all(isinstance(v, str) for v in value)
        if not ok:
            fail(f"{key} must be {what}, not {value!r}", key)
    for key in ("name", "cell"):
        if key not in data:
            fail(f"the model spec has no {key!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", data["name"]):
        fail(f"name {data['name']!r} must be {KEYS['name'][1]}", "name")
    layers = data.get("layers", 1)
    if layers < 1:
        fail(f"layers must be {KEYS['layers'][1]}, not {layers}", "layers")
    if data.get("residual", False) not in (True, False, "project"):
        fail(f"residual must be {KEYS['residual'][1]}, not {data['residual']!r}", "residual")
    merge = data.get("merge", "concat")
    if merge not in MERGES:
        fail(f"merge must be {KEYS['merge'][1]}, not {merge!r}", "merge")
    try:
        cell = cell_spec.load(data["cell"])
    except DeriveError as e:
        fail(f"cell {data['cell']!r}: {e.message}", "cell")
    return ModelSpec(name=data["name"], cell=cell, cell_ref=data["cell"], layers=layers,
                     bidirectional=data.get("bidirectional", False), merge=merge,
                     residual=data.get("residual", False), title=data.get("title", data["name"]),
                     meta={k: data[k] for k in ("summary", "references", "notes") if k in data}, source=source)
