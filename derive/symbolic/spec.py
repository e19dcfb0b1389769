"""Cell spec files: TOML with the equations in a LaTeX block, parsed into a ``Cell``.

A spec names the input, the states (carried from step to step), the output and the
gates, lists the equations one per line in a ``'''`` literal block, and states the
conventions that matter for interop. See ``derive/cells/lstm.toml`` for a full example.
Every error points at the line and column of the spec file it is about.
"""

from __future__ import annotations

import keyword
import math
import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

import sympy as sp

from derive import activations as acts
from derive import fileio
from derive.symbolic import ir
from derive.symbolic.cell import Cell, build_cell
from derive.symbolic.clock import Clock
from derive.errors import DeriveError, Pos
from derive.syntax.equations import SUBSCRIPT_RULE, equation_lines, parse_equation, split_name

#: top-level keys a spec may have -> what each must be
KEYS = {
    "name": str, "title": str, "summary": str, "references": list, "input": str, "states": list,
    "output": str, "sizes": dict, "gates": list, "parameters": list, "equations": str, "conventions": dict,
    "pytorch": dict, "keras": dict, "notes": str, "constants": dict, "paper": dict, "clock": dict,
}
_TYPE_NAMES = {str: "a string", list: "a list", dict: "a table", bool: "true or false"}
SIZE_NAMES = ("H", "P")  # a state is H (hidden) or P (projected, PyTorch proj_size)
INPUT_SIZES = ("H",)  # the input is I, or declared to have the hidden size (I = H)
REQUIRED = ("name", "input", "states", "output", "equations")
#: the tables of a spec: key -> its type, or the values it may take. ``[pytorch]`` and
#: ``[keras]`` hold what ``codegen.layouts`` and ``counts`` read; ``fused`` lists gates.
TABLES = {
    "conventions": {"bias": ("single", "double"), "fused": list},
    "pytorch": {"module": ("RNN", "LSTM", "GRU"), "nonlinearity": ("tanh", "relu"), "proj_size": bool,
                "projection": str},
    "keras": {"layer": ("SimpleRNN", "LSTM", "GRU"), "fused": list, "bias": ("single", "double"),
              "reset_after": bool},
    # the cell as its paper writes it, shown beside the spec's equations on the cell's page:
    # the paper's equations (LaTeX, one a line), how its symbols map to the spec's, and the
    # reference implementation whose parameter count ``count`` (a polynomial in I, H, P) is;
    # ``derive build`` checks that count against the derivation
    "paper": {"notation": str, "symbols": str, "implementation": str, "count": str},
}


def builtin_names() -> list[str]:
    """The built-in cells, in the order the docs list them."""
    order = ["rnn_tanh", "rnn_relu", "indrnn", "clockwork", "lstm", "lstm_peephole", "lstm_cifg", "lstm_proj", "lstmp",
             *(f"greff_{v}" for v in ("v", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")),
             "slstm", "ln_lstm", "janet", "gru", "gru_cho", "gru1", "gru2", "gru3", "mgu", "mut1", "mut2", "mut3", "ugrnn",
             "minlstm", "mingru", "sru", "sru_proj",
             *(f"qrnn_{p}_w{k}" for p in ("f", "fo", "ifo") for k in (1, 2)), "plusrnn"]
    found = sorted(p.name[:-5] for p in resources.files("derive.cells").iterdir() if p.name.endswith(".toml"))
    return [n for n in order if n in found] + [n for n in found if n not in order]


# ------------------------------------------------------------------ places in the file

_QUOTE = re.compile(r"[#\"']")
#: the rest of a string after its opening delimiter, up to and with the closing one
_STRING_END = {
    '"""': re.compile(r'(?:[^"\\]|\\.|"(?!""))*""""{0,2}', re.S),
    "'''": re.compile(r"(?:[^']|'(?!''))*''''{0,2}", re.S),
    '"': re.compile(r'(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"[^'\n]*'"),
}
_HEADER = re.compile(r"^[ \t]*\[", re.M)


@lru_cache(maxsize=4)
def _masked(text: str) -> tuple[str, int | None]:
    """The text with the contents of every string and comment blanked (offsets and lines
    kept), so a key is never found inside ``notes`` or the equations; and the offset of a
    string that is never closed (None if there is none)."""
    out, i = [], 0
    while (m := _QUOTE.search(text, i)) is not None:
        j = m.start()
        out.append(text[i:j])
        if text[j] == "#":
            end = text.find("\n", j)
            end = len(text) if end < 0 else end
            out.append(_blank(text[j:end]))
            i = end
            continue
        delim = text[j] * 3 if text.startswith(text[j] * 3, j) else text[j]
        rest = _STRING_END[delim].match(text, j + len(delim))
        if rest is None:
            return "".join(out) + _blank(text[j:]), j
        out.append(delim + _blank(text[j + len(delim):rest.end()]))
        i = rest.end()
    out.append(text[i:])
    return "".join(out), None


def _blank(s: str) -> str:
    return re.sub(r"[^\n]", " ", s)


def _key_pos(text: str, key: str, table: str | None = None) -> Pos | None:
    """Where ``key = ...`` stands: at the top level, or in ``[table]`` (a header, an inline
    table ``table = {key = ...}`` or a dotted ``table.key``); a top-level table's header."""
    masked = _masked(text)[0]
    k = re.escape(key)
    if table is None:
        first = _HEADER.search(masked)
        m = re.compile(rf"^[ \t]*({k})[ \t]*[=.]", re.M).search(masked, 0, first.start() if first else len(masked))
        m = m or re.compile(rf"^[ \t]*(\[)\[?[ \t]*{k}[ \t]*\]", re.M).search(masked)
        return _offset_pos(text, m.start(1)) if m else None
    t = re.escape(table)
    header = re.compile(rf"^[ \t]*\[[ \t]*{t}[ \t]*\]", re.M).search(masked)
    if header:
        after = _HEADER.search(masked, header.end())
        end = after.start() if after else len(masked)
        m = re.compile(rf"^[ \t]*({k})[ \t]*=", re.M).search(masked, header.end(), end)
        if m:
            return _offset_pos(text, m.start(1))
    inline = re.compile(rf"^[ \t]*{t}[ \t]*=[ \t]*\{{[^\n]*?(?<![\w-])({k})[ \t]*=", re.M).search(masked)
    dotted = re.compile(rf"^[ \t]*{t}[ \t]*\.[ \t]*({k})[ \t]*=", re.M).search(masked)
    m = inline or dotted
    return _offset_pos(text, m.start(1)) if m else _key_pos(text, table)


def _offset_pos(text: str, offset: int) -> Pos:
    line = text.count("\n", 0, offset) + 1
    return Pos(line, offset - text.rfind("\n", 0, offset))


def _block_origin(text: str, block: str) -> Pos | None:
    """Where the first character of the equations string stands, if the file holds it
    verbatim (a ``'''`` block, or a string without escapes); None otherwise."""
    masked = _masked(text)[0]
    first = _HEADER.search(masked)
    m = re.compile(r"^[ \t]*equations[ \t]*=[ \t]*(\"\"\"|'''|\"|')", re.M).search(
        masked, 0, first.start() if first else len(masked))
    if not m:
        return None
    start = m.end()
    if len(m[1]) == 3 and text.startswith("\n", start):  # TOML drops a newline right after the quotes
        start += 1
    return _offset_pos(text, start) if text[start:start + len(block)] == block else None


# ------------------------------------------------------------------ the checks


def _names(value, key, text, source):
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise DeriveError(f"{key} must name vectors as strings", _key_pos(text, key), source)
        try:
            out.append(split_name(item.strip(), _key_pos(text, key)))
        except DeriveError as e:
            why = f" ({e.message})" if SUBSCRIPT_RULE in e.message else ""
            raise DeriveError(f"{key}: {item!r} is not a name such as h or \\tilde{{h}}{why}",
                              _key_pos(text, key), source) from None
    return out


def _read_toml(text: str, source: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
        pos = Pos(int(m[1]), int(m[2])) if m else _offset_pos(text, len(text))
        unclosed = _masked(text)[1]
        if m is None and unclosed is not None:
            delim = text[unclosed] * (3 if text.startswith(text[unclosed] * 3, unclosed) else 1)
            msg, pos = f"the string opened here with {delim} is never closed", _offset_pos(text, unclosed)
        raise DeriveError(f"not valid TOML: {msg}", pos, source) from None


def _check_keys(data: dict, text: str, source: str) -> None:
    for key, value in data.items():
        if key not in KEYS:
            raise DeriveError(f"unknown key {key!r}; a spec has: {', '.join(KEYS)}", _key_pos(text, key), source)
        if not isinstance(value, KEYS[key]):
            extra = f" ([{key}], not [[{key}]])" if KEYS[key] is dict and isinstance(value, list) else ""
            raise DeriveError(f"{key} must be {_TYPE_NAMES[KEYS[key]]}{extra}", _key_pos(text, key), source)
    for key in REQUIRED:
        if key not in data:
            table = next((t for t, v in data.items() if isinstance(v, dict) and key in v), None)
            if table:
                raise DeriveError(_misplaced(key, table), _key_pos(text, key, table), source)
            raise DeriveError(f"the spec has no {key!r}", Pos(1, 1), source)
    name = data["name"]
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or keyword.iskeyword(name):
        raise DeriveError(f"name {name!r} must be a Python identifier (letters, digits and _, not starting "
                          f"with a digit, not a keyword): it names the kernel module", _key_pos(text, "name"), source)


def _misplaced(key: str, table: str) -> str:
    return (f"{key} is inside the [{table}] table: in TOML every key after a [{table}] header belongs to it; "
            f"put the top-level keys (name, equations, ...) before the first [table]")


def _check_tables(data: dict, text: str, source: str) -> None:
    """``[conventions]``, ``[pytorch]``, ``[keras]``: known keys, values of the right kind."""
    for table, layout in TABLES.items():
        values = data.get(table, {})
        for key, value in values.items():
            pos = _key_pos(text, key, table)
            if key not in layout:
                why = _misplaced(key, table) if key in KEYS else \
                    f"unknown key {key!r} in [{table}]; it may have: {', '.join(layout)}"
                raise DeriveError(why, pos, source)
            kind = layout[key]
            if isinstance(kind, tuple) and value not in kind:
                raise DeriveError(f"{key} must be one of {', '.join(kind)}, not {value!r}", pos, source)
            if isinstance(kind, type) and not (isinstance(value, kind) and
                                               (kind is not list or all(isinstance(v, str) for v in value))):
                what = "a list of gate names" if kind is list else _TYPE_NAMES[kind]
                raise DeriveError(f"[{table}] {key} must be {what}", pos, source)
    if "pytorch" in data and "module" not in data["pytorch"]:
        raise DeriveError(f"[pytorch] needs module = one of {', '.join(TABLES['pytorch']['module'])}",
                          _key_pos(text, "pytorch"), source)
    keras = data.get("keras", {})
    if "fused" in keras and "layer" not in keras:
        raise DeriveError(f"[keras] with fused needs layer = one of {', '.join(TABLES['keras']['layer'])}",
                          _key_pos(text, "keras"), source)


def _check_fused(cell: Cell, data: dict, text: str) -> None:
    """Each ``fused`` list names gates: vectors computed as an activation of a pre-activation."""
    preactivations = {a.target for a in cell.assignments if a.aux}
    gates = [ir.ref(a.target).key for a in cell.assignments
             if isinstance(a.rhs, acts.Activation) and a.rhs.args[0] in preactivations]
    for table in ("conventions", "keras"):
        fused = data.get(table, {}).get("fused", [])
        for k, name in enumerate(fused):
            if name not in gates:
                raise DeriveError(f"[{table}] fused: {name!r} is not a gate of the cell (a vector computed as an "
                                  f"activation of W x + ...); gates: {', '.join(gates) or 'none'}",
                                  _key_pos(text, "fused", table))
            if name in fused[:k]:
                raise DeriveError(f"[{table}] fused names {name!r} twice", _key_pos(text, "fused", table))
    projection = data.get("pytorch", {}).get("projection")
    if projection is not None and not (projection in cell.params and cell.params[projection].is_matrix):
        raise DeriveError(f"[pytorch] projection: {projection!r} is not a matrix parameter of the cell "
                          f"(matrices: {', '.join(k for k, p in cell.params.items() if p.is_matrix)})",
                          _key_pos(text, "projection", "pytorch"))


def _parameters(declared, text: str, source: str) -> set | None:
    """``parameters = ["W_{xf}", "W_xf", ...]``: the keys of the declared parameters."""
    if declared is None:
        return None
    keys = set()
    for item in declared:
        pos = _key_pos(text, "parameters")
        if not isinstance(item, str):
            raise DeriveError("parameters must name parameters as strings", pos, source)
        try:
            n = split_name(item.strip(), pos)
        except DeriveError:
            n = None
        if n is not None and n.time is None:
            keys.add(ir.Ref(n.base, n.sub or "", 0).key)
        elif re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", item.strip()):
            keys.add(item.strip())
        else:
            raise DeriveError(f"parameters: {item!r} is not a parameter name such as W_{{xf}} or W_xf "
                              f"(a name without a time index)", pos, source)
    return keys


def parse_spec(text: str, source: str = "<spec>", amend=None) -> Cell:
    """Parse the text of a spec file into a checked ``Cell``. ``amend``: a function of the checked
    keys returning them changed (a model's layer adds an equation and an output: ``symbolic.layer``)."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")  # a UTF-8 BOM; Windows line ends
    data = _read_toml(text, source)
    _check_keys(data, text, source)
    _check_tables(data, text, source)
    if amend is not None:
        data = amend(dict(data))
    conventions = data.get("conventions", {})
    equations, written = _equations(data["equations"], text, source)

    positions = {k: _key_pos(text, k) for k in ("states", "output", "gates", "input", "clock")}
    positions["block_triangular"] = _key_pos(text, "block_triangular", "clock")
    positions["mask"] = _key_pos(text, "mask", "clock")
    try:
        cell = build_cell(
            equations,
            name=data["name"],
            title=data.get("title", ""),
            input_name=_names(data["input"], "input", text, source)[0],
            state_names=_names(data["states"], "states", text, source),
            output_name=_names(data["output"], "output", text, source)[0],
            gates=_names(data.get("gates", []), "gates", text, source),
            sizes=_sizes(data.get("sizes", {}), data["states"], data["input"], text, source),
            constants=_constants(data.get("constants", {}), text, source),
            clock=_clock(data.get("clock"), data, text, source),
            parameters=_parameters(data.get("parameters"), text, source),
            conventions={**conventions, "pytorch": data.get("pytorch", {}), "keras": data.get("keras", {})},
            meta={**{k: data[k] for k in ("summary", "references", "notes", "pytorch", "keras", "paper") if k in data},
                  "paper_count_at": _key_pos(text, "count", "paper")},
            positions=positions,
            source=source,
            written=written,
        )
        _check_fused(cell, data, text)
    except DeriveError as e:
        raise DeriveError(e.message, e.pos, source) from None
    return cell


def _equations(block: str, text: str, source: str) -> tuple[list, list]:
    """The parsed equations, every position in file coordinates, and their text as written."""
    origin = _block_origin(text, block)
    key = _key_pos(text, "equations")
    equations, written = [], []
    for line, eq_text in equation_lines(block):
        try:
            equations.append(parse_equation(eq_text, _placer(origin, line, key)))
        except DeriveError as e:
            raise DeriveError(e.message, e.pos, source) from None
        written.append(eq_text.strip())
    if not equations:
        raise DeriveError("the equations block is empty", key or origin, source)
    return equations, written


def _placer(origin: Pos | None, line: int, key: Pos | None):
    """(line, column) in an equation -> its position in the file; without a verbatim block
    (escapes in a \"\"\" string), the equations key."""
    if origin is None:
        return lambda row, column: key
    first, shift = origin.line + line - 1, (origin.column - 1 if line == 1 else 0)
    return lambda row, column: Pos(first + row - 1, column + shift)


def _sizes(sizes: dict, states, input_name, text: str, source: str) -> dict:
    """``sizes = { h = "P" }``: a state whose size is not the hidden size H (a projection);
    ``sizes = { x = "H" }``: the input has the hidden size (I = H)."""
    for key, value in sizes.items():
        if key == input_name and isinstance(input_name, str):
            if value not in INPUT_SIZES:
                raise DeriveError(f"sizes: the input {key} may be declared {' or '.join(INPUT_SIZES)} (the hidden "
                                  f"size, I = H), not {value!r}; without a declaration it has its own size I",
                                  _key_pos(text, key, "sizes"), source)
            continue
        if key not in states:
            raise DeriveError(f"sizes: {key!r} is not a state or the input (states: {', '.join(states)}; "
                              f"input: {input_name})", _key_pos(text, key, "sizes"), source)
        if value not in SIZE_NAMES:
            raise DeriveError(f"sizes: {key} must be one of {', '.join(SIZE_NAMES)}, not {value!r}",
                              _key_pos(text, key, "sizes"), source)
    return dict(sizes)


#: the keys of ``[clock]`` -> what each must be (``derive.symbolic.clock``)
CLOCK_KEYS = {"modules": "a positive integer (g: the H units form g modules of H/g)",
              "periods": "a list of g positive integers, fastest first (T_i: module i runs when t mod T_i = 0)",
              "mask": "the name of the update mask, e.g. \"m\" (read as m_t)",
              "block_triangular": "a list of H x H matrix parameters (block (i, j) is zero for j < i)"}


def _clock(table: dict | None, data: dict, text: str, source: str) -> Clock | None:
    """``[clock]``: g modules with periods, the update mask's name, the block-triangular matrices."""
    if table is None:
        return None

    def fail(why, key=None):
        raise DeriveError(why, _key_pos(text, key, "clock") if key else _key_pos(text, "clock"), source)
    for key in table:
        if key not in CLOCK_KEYS:
            fail(_misplaced(key, "clock") if key in KEYS else
                 f"unknown key {key!r} in [clock]; it may have: {', '.join(CLOCK_KEYS)}", key)
    for key in ("modules", "periods", "mask"):
        if key not in table:
            fail(f"[clock] needs {key} = {CLOCK_KEYS[key]}")
    g = table["modules"]
    if isinstance(g, bool) or not isinstance(g, int) or g < 1:
        fail(f"[clock] modules must be {CLOCK_KEYS['modules']}, not {g!r}", "modules")
    periods = table["periods"]
    if not isinstance(periods, list) or not all(isinstance(T, int) and not isinstance(T, bool) and T > 0
                                                for T in periods):
        fail(f"[clock] periods must be {CLOCK_KEYS['periods']}, not {periods!r}", "periods")
    if len(periods) != g:
        fail(f"[clock] periods lists {len(periods)} periods for {g} modules", "periods")
    if periods != sorted(periods):
        fail("[clock] periods must be listed fastest first (non-decreasing): module i reads the modules j >= i, "
             "the slower ones", "periods")
    mask = table["mask"]
    if not isinstance(mask, str):
        fail(f"[clock] mask must be {CLOCK_KEYS['mask']}", "mask")
    try:
        n = split_name(mask.strip(), _key_pos(text, "mask", "clock"))
    except DeriveError:
        n = None
    if n is None or n.time is not None:
        fail(f"[clock] mask: {mask!r} is not a name such as m (written without a time index)", "mask")
    masked = table.get("block_triangular", [])
    if not isinstance(masked, list) or not all(isinstance(m, str) for m in masked):
        fail(f"[clock] block_triangular must be {CLOCK_KEYS['block_triangular']}", "block_triangular")
    keys = []
    for m in masked:
        try:
            w = split_name(m.strip(), None)
        except DeriveError:
            w = None
        if w is None or w.time is not None:
            fail(f"[clock] block_triangular: {m!r} is not a parameter name such as W_H", "block_triangular")
        keys.append(ir.Ref(w.base, w.sub or "", 0).key)
    return Clock(g, tuple(periods), ir.symbol(n.base, n.sub, 0), tuple(keys))


def _constants(constants: dict, text: str, source: str) -> dict:
    """``[constants]`` ``beta = 1.0``: name -> (exact value, where it is declared). A constant
    is a finite number, used as ``\\beta`` or as a name without a time index (``k``)."""
    out = {}
    for key, value in constants.items():
        pos = _key_pos(text, key, "constants")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", key):
            raise DeriveError(f"constants: {key!r} is not a name (letters, digits and _, starting with a letter)",
                              pos, source)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DeriveError(f"constants: {key} must be a number, not {value!r}", pos, source)
        if not math.isfinite(value):
            raise DeriveError(f"constants: {key} must be a finite number, not {value!r}", pos, source)
        out[key] = (sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(value)), pos)
    return out


@lru_cache(maxsize=None)
def _load_builtin(name: str) -> Cell:
    return parse_spec(*text_of(name))


def text_of(name_or_path: str) -> tuple[str, str]:
    """A cell spec's text and the source name its errors give (``derive/cells/lstm.toml`` or the path)."""
    key = name_or_path.replace("-", "_").lower()
    if key in builtin_names():
        return (resources.files("derive.cells") / f"{key}.toml").read_text(encoding="utf-8"), f"derive/cells/{key}.toml"
    return fileio.read_text(name_or_path, fileio.SPEC_LIMIT), str(Path(name_or_path))


def load(name_or_path: str) -> Cell:
    """A built-in cell by name (``lstm``) or a user's spec file by path (``./mycell.toml``)."""
    key = name_or_path.replace("-", "_").lower()
    if key in builtin_names():
        return _load_builtin(key)
    path = Path(name_or_path)
    if not name_or_path or path.suffix == ".toml" or path.exists():
        return parse_spec(fileio.read_text(name_or_path, fileio.SPEC_LIMIT), source=str(path))
    raise DeriveError(f"unknown cell {name_or_path!r}; built-in cells: {', '.join(builtin_names())} "
                      f"(or give the path of a .toml spec)")
