"""``--check``: which committed files differ from what the generator gives, named on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from derive import fileio
from derive.cli import buildcache


def report(files: dict[Path, str], root: Path, what: str) -> int:
    """``--check``: name each stale file on stderr; exit status 1 if any."""
    bad = stale(files)
    for p in bad:
        print(f"stale: {p.relative_to(root) if p.is_relative_to(root) else p}", file=sys.stderr)
    print(f"{len(files) - len(bad)}/{len(files)} {what} up to date")
    return 1 if bad else 0


def stale(pages: dict[Path, str]) -> list[Path]:
    """The files whose bytes differ from ``pages`` (a missing or unreadable one included)."""
    return [p for p, text in sorted(pages.items()) if fileio.read_bytes(p) != text.encode("utf-8")]


def check(root: Path, render: Callable[[], dict[Path, str]], force: bool = False) -> int:
    """``--check``: the committed files against what the generator gives. When the last build in this
    checkout saw the same inputs (``buildcache``), their bytes are compared with the ones it wrote
    (a second); otherwise, or with ``--force``, every file is rendered in memory (what CI does on a
    fresh clone)."""
    digests = None if force else buildcache.committed_digests(root, buildcache.digest(root))
    if digests is None:
        return report(render(), root, "generated files")
    bad = buildcache.stale_against(root, digests)
    for rel in bad:
        print(f"stale: {rel}", file=sys.stderr)
    print(f"{len(digests) - len(bad)}/{len(digests)} generated files up to date (against the last build's "
          f"{buildcache.CACHE.as_posix()}: the inputs are the ones it saw; --force renders every file)")
    return 1 if bad else 0
