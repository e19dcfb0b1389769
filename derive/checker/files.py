"""``derive check --file``: a file of formulas, read safely. The file must be a regular file (a
FIFO's open blocks, ``/dev/zero`` never ends), its size is checked before anything is read, and
no more than the limit is ever read; each line is decoded on its own, so a byte that is not UTF-8
is an error at its line and column."""

from __future__ import annotations

import os
import stat

from derive.errors import DeriveError, Pos

LIMIT = 1 << 20  # bytes: about ten thousand formulas, more than a check runs in minutes


def _not_regular(path, mode: int):
    kind = next((name for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
                                         (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
                                         (stat.S_ISSOCK, "a socket")) if test(mode)), "not a regular file")
    return DeriveError(f"cannot read {path}: it is {kind}; --file takes a regular file of formulas")


def read_formulas(path: str, limit: int = LIMIT) -> list[tuple[int, str]]:
    """(line number, text) of every formula in ``path``: blank lines and ``#`` comments skipped."""
    if not str(path):
        raise DeriveError("--file: no file name given")
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # before opening: opening a FIFO blocks
            raise _not_regular(path, mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise DeriveError(f"cannot read {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # swapped since the stat
            raise _not_regular(path, st.st_mode)
        if st.st_size > limit:
            raise DeriveError(f"cannot read {path}: {st.st_size} bytes, larger than the limit of {limit} bytes "
                              f"for a file of formulas; split it")
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise DeriveError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > limit:  # it grew since the fstat
        raise DeriveError(f"cannot read {path}: larger than the limit of {limit} bytes for a file of formulas")
    out = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            col = len(raw[:e.start].decode("utf-8", "replace")) + 1
            raise DeriveError(f"byte 0x{raw[e.start]:02x} is not UTF-8 text; save the file as UTF-8",
                              Pos(n, col), str(path)) from None
        line = line.rstrip("\r")
        if line.strip() and not line.lstrip().startswith("#"):
            out.append((n, line))
    return out
