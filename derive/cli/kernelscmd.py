"""``derive kernels``: the NumPy (and compiled) kernel modules of the built-in cells, or of spec files
into ``--out``; ``--check`` compares without writing."""

from __future__ import annotations

from pathlib import Path

from derive import fileio
from derive.cli import stale
from derive.cli.build import render_kernels, write_pages
from derive.codegen import selfcheck
from derive.errors import DeriveError, Pos
from derive.symbolic import bptt, spec


def _cmd_kernels(args) -> int:
    names = spec.builtin_names()
    cells = list(dict.fromkeys(c.replace("-", "_").lower() if c.replace("-", "_").lower() in names else c
                               for c in args.cells))  # a cell named twice is one kernel
    builtin = [c for c in cells if c in names]
    specs = [c for c in cells if c not in names]
    if args.out is None:
        if specs:
            raise DeriveError(f"{specs[0]} is not a built-in cell; to generate a kernel from a spec file, name the "
                              f"directory to write it to with --out DIR (built-in cells: {', '.join(names)})")
        root = Path(args.root).resolve()
        if not (root / "derive" / "kernels").is_dir():
            raise DeriveError(f"{root} is not a derive checkout (no derive/kernels/); use --root")
        files, where = render_kernels(root / "derive" / "kernels", builtin or None), root
    else:
        out = out_dir(args.out)
        files, where = render_kernels(out, builtin if cells else None), Path.cwd()
        files.update(spec_kernels(out, specs, {path: f"the built-in {path.stem} kernel" for path in files}))
    if args.check:
        return stale.report(files, where, "kernel modules")
    changed = write_pages(files)
    for p in changed:
        print(f"wrote {p}")
    print(f"{len(changed)} of {len(files)} kernel modules changed")
    return 0


def out_dir(given: str) -> Path:
    """``--out DIR`` as an absolute path: a directory, or a path where one can be made."""
    if not given:
        raise DeriveError("--out: no directory given")
    out = Path(given).resolve()
    if out.exists() and not out.is_dir():
        raise DeriveError(f"--out {given} is not a directory")
    return out


def kernel_target(out: Path, name: str) -> Path:
    """``out/<name>.py``; a DeriveError unless that is a file directly inside ``out``."""
    if not name or name in (".", "..") or "\0" in name or Path(name).name != name:
        raise DeriveError(f"the kernel name {name!r} is not a plain file name: its module would be written "
                          f"outside --out {out}; refusing")
    return out / f"{name}.py"


def spec_kernels(out: Path, paths: list[str], taken: dict[Path, str]) -> dict[Path, str]:
    """``{out/<name>.py: text}`` of the spec files; a located error when a spec's name is
    the name of another kernel of the same call (``taken``: target -> what made it)."""
    from derive import kernels  # generated code: imported when used (tests/test_layers.py, LAZY)

    own = Path(kernels.__file__).resolve().parent
    if paths and out.resolve() == own:
        raise DeriveError(f"--out {out} is derive's own kernel directory (the built-in cells and the activation "
                          f"kernels live there); write kernels of spec files to another directory")
    files = {}
    for path in paths:
        cell = spec.load(path)
        if cell.name.startswith("__") and cell.name.endswith("__"):
            raise DeriveError(f"name {cell.name!r} is reserved by Python; choose another", _name_pos(path), path)
        target = kernel_target(out, cell.name)
        if target in taken:
            raise DeriveError(f"name {cell.name!r} is also the name of {taken[target]}; both kernels would be "
                              f"written to {target}", _name_pos(path), path)
        taken[target] = path
        files[target] = selfcheck.verified_kernel(bptt.derive(cell), Path(path).name)[0]
    return files


def _name_pos(path: str) -> Pos | None:
    """Where a spec file sets ``name`` (the spec parser's key locator)."""
    return spec._key_pos(fileio.read_text(path, fileio.SPEC_LIMIT), "name")
