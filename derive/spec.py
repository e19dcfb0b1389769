"""Cell spec files: TOML with the equations in a LaTeX block, parsed into a ``Cell``.

A spec names the input, the states (carried from step to step), the output and the
gates, lists the equations one per line in a ``'''`` literal block, and states the
conventions that matter for interop. See ``derive/cells/lstm.toml`` for a full example.
Every error points at the line and column of the spec file it is about.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .cell import Cell, build_cell
from .errors import DeriveError, Pos
from .grammar import equation_lines, parse_equation, split_name

#: top-level keys a spec may have -> what each must be
KEYS = {
    "name": str, "title": str, "summary": str, "references": list, "input": str, "states": list,
    "output": str, "sizes": dict, "gates": list, "parameters": list, "equations": str, "conventions": dict,
    "pytorch": dict, "keras": dict, "notes": str,
}
SIZE_NAMES = ("H", "P")  # a state is H (hidden) or P (projected, PyTorch proj_size)
REQUIRED = ("name", "input", "states", "output", "equations")
CONVENTION_KEYS = {"bias": ("single", "double"), "fused": None}


def builtin_names() -> list[str]:
    """The built-in cells, in the order the docs list them."""
    order = ["rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "lstm_cifg", "gru", "gru_cho"]
    found = sorted(p.name[:-5] for p in resources.files("derive.cells").iterdir() if p.name.endswith(".toml"))
    return [n for n in order if n in found] + [n for n in found if n not in order]


def _key_pos(text: str, key: str) -> Pos | None:
    m = re.search(rf"^[ \t]*{re.escape(key)}[ \t]*=", text, re.M)
    if not m:
        return None
    return Pos(text.count("\n", 0, m.start()) + 1, m.start() - text.rfind("\n", 0, m.start()))


def _offset_pos(text: str, offset: int) -> Pos:
    line = text.count("\n", 0, offset) + 1
    return Pos(line, offset - text.rfind("\n", 0, offset))


def _names(value, key, text, source):
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str):
            raise DeriveError(f"{key} must name vectors as strings", _key_pos(text, key), source)
        try:
            out.append(split_name(item.strip(), _key_pos(text, key)))
        except DeriveError:
            raise DeriveError(f"{key}: {item!r} is not a name such as h or \\tilde{{h}}",
                              _key_pos(text, key), source) from None
    return out


def parse_spec(text: str, source: str = "<spec>") -> Cell:
    """Parse the text of a spec file into a checked ``Cell``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        pos = Pos(int(m[1]), int(m[2])) if m else None
        raise DeriveError(f"not valid TOML: {msg}", pos, source) from None
    for key, value in data.items():
        if key not in KEYS:
            raise DeriveError(f"unknown key {key!r}; a spec has: {', '.join(KEYS)}", _key_pos(text, key), source)
        if not isinstance(value, KEYS[key]):
            raise DeriveError(f"{key} must be a {KEYS[key].__name__}", _key_pos(text, key), source)
    for key in REQUIRED:
        if key not in data:
            raise DeriveError(f"the spec has no {key!r}", Pos(1, 1), source)
    conventions = data.get("conventions", {})
    for key, value in conventions.items():
        if key not in CONVENTION_KEYS:
            raise DeriveError(f"unknown convention {key!r}; known: {', '.join(CONVENTION_KEYS)}",
                              _key_pos(text, key), source)
        allowed = CONVENTION_KEYS[key]
        if allowed and value not in allowed:
            raise DeriveError(f"{key} must be one of {', '.join(allowed)}", _key_pos(text, key), source)

    block = data["equations"]
    start = text.find(block) if block else -1
    origin = _offset_pos(text, start) if start >= 0 else _key_pos(text, "equations")
    equations, written = [], []
    for line, eq_text in equation_lines(block):
        try:
            equations.append(parse_equation(eq_text))
        except DeriveError as e:
            if start < 0:  # the block used escapes: point at its key
                raise DeriveError(e.message, origin, source) from None
            col = origin.column - 1 if line == 1 else 0
            raise e.located(source, lines=origin.line + line - 2, columns=col) from None
        written.append(eq_text.strip())
    if not equations:
        raise DeriveError("the equations block is empty", origin, source)
    if start >= 0:
        equations = [_move(eq, origin, line) for eq, (line, _) in zip(equations, equation_lines(block))]

    positions = {k: _key_pos(text, k) for k in ("states", "output", "gates", "input")}
    try:
        return build_cell(
            equations,
            name=data["name"],
            title=data.get("title", ""),
            input_name=_names(data["input"], "input", text, source)[0],
            state_names=_names(data["states"], "states", text, source),
            output_name=_names(data["output"], "output", text, source)[0],
            gates=_names(data.get("gates", []), "gates", text, source),
            sizes=_sizes(data.get("sizes", {}), data["states"], text, source),
            parameters=data.get("parameters"),
            conventions={**conventions, "pytorch": data.get("pytorch", {}), "keras": data.get("keras", {})},
            meta={k: data[k] for k in ("summary", "references", "notes", "pytorch", "keras") if k in data},
            positions=positions,
            source=source,
            written=written,
        )
    except DeriveError as e:
        raise DeriveError(e.message, e.pos, source) from None


def _sizes(sizes: dict, states, text: str, source: str) -> dict:
    """``sizes = { h = "P" }``: a state whose size is not the hidden size H (a projection)."""
    for key, value in sizes.items():
        if key not in states:
            raise DeriveError(f"sizes: {key!r} is not a state (states: {', '.join(states)})",
                              _key_pos(text, key), source)
        if value not in SIZE_NAMES:
            raise DeriveError(f"sizes: {key} must be one of {', '.join(SIZE_NAMES)}, not {value!r}",
                              _key_pos(text, key), source)
    return dict(sizes)


def _move(eq, origin: Pos, line: int):
    """Re-base every position of a parsed equation from its own line to the spec file."""
    from dataclasses import fields, is_dataclass, replace

    def mv(node):
        if isinstance(node, Pos):
            return Pos(origin.line + line - 1, node.column + (origin.column - 1 if line == 1 else 0))
        if isinstance(node, tuple):
            return tuple(mv(n) for n in node)
        if is_dataclass(node):
            return replace(node, **{f.name: mv(getattr(node, f.name)) for f in fields(node)})
        return node

    return mv(eq)


@lru_cache(maxsize=None)
def _load_builtin(name: str) -> Cell:
    path = resources.files("derive.cells") / f"{name}.toml"
    return parse_spec(path.read_text(encoding="utf-8"), source=f"derive/cells/{name}.toml")


def load(name_or_path: str) -> Cell:
    """A built-in cell by name (``lstm``) or a user's spec file by path (``./mycell.toml``)."""
    key = name_or_path.replace("-", "_").lower()
    if key in builtin_names():
        return _load_builtin(key)
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise DeriveError(f"cannot read {name_or_path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise DeriveError(f"{name_or_path} is not UTF-8 text") from None
        return parse_spec(text, source=str(path))
    raise DeriveError(f"unknown cell {name_or_path!r}; built-in cells: {', '.join(builtin_names())} "
                      f"(or give the path of a .toml spec)")
