"""Files in and out: reading a user's file safely, writing a generated file atomically.

``read_text`` refuses anything but a regular file before opening it (a FIFO's open blocks,
``/dev/zero`` never ends), caps the size and reads no more than the cap. ``write_atomic``
writes a temporary file in the target's directory and ``os.replace``s it, so an interrupted
write leaves the old file or the new one, never half of one. ``read_bytes`` is the current
content of a generated file, or None when there is none to compare with. Every failure is
a ``DeriveError`` naming the path.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from pathlib import Path

from derive.errors import DeriveError

SPEC_LIMIT = 1 << 20  # bytes of a spec file
FORMULA_FILE_LIMIT = 16 << 20  # bytes of a `derive check --file`


def _kind(mode: int) -> str:
    """What a non-regular file is, for a message."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _regular(path, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise DeriveError(f"cannot read {path}: it is {_kind(mode)}, not a regular file")


def read_text(path: str | os.PathLike, limit: int) -> str:
    """The UTF-8 text of the regular file ``path`` of at most ``limit`` bytes."""
    if not str(path):
        raise DeriveError("no file name given")
    try:
        _regular(path, os.stat(path).st_mode)  # before opening: opening a FIFO blocks
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise DeriveError(f"cannot read {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        _regular(path, os.fstat(fd).st_mode)  # it may have been swapped since the stat
        try:
            data = f.read(limit + 1)
        except OSError as e:
            raise DeriveError(f"cannot read {path}: {e.strerror}") from None
    if len(data) > limit:
        raise DeriveError(f"cannot read {path}: larger than the limit of {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DeriveError(f"{path} is not UTF-8 text (byte {e.start})") from None


def read_bytes(path: Path) -> bytes | None:
    """The content of the regular file ``path``; None if it does not exist or is not a
    readable regular file (to a ``--check``, such a file is simply stale)."""
    try:
        if not path.is_file():
            return None
        return path.read_bytes()
    except OSError:
        return None


def first_line(path: Path) -> bytes | None:
    """The first line (up to 4 KiB) of an existing file, b"" for an empty one, None if
    there is no file; a DeriveError if something else is there."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        raise DeriveError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise DeriveError(f"{path} is {_kind(mode)}; refusing to overwrite it")
    try:
        with open(path, "rb") as f:
            return f.readline(4096)
    except OSError as e:
        raise DeriveError(f"cannot read {path}: {e.strerror}") from None


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
        os.replace(tmp, path)
    except OSError as e:
        raise DeriveError(f"cannot write {path}: {e.strerror or e}") from None
    finally:
        try:
            tmp.unlink(missing_ok=True)  # gone after the replace; a leftover after a failure
        except OSError:
            pass


def sources_digest(name: str, sources, texts=()) -> str:
    """The SHA-256 that keys a stored value (``derive/docs/data/measured/*.json``): its name, the bytes
    of every source it depends on and any other text it depends on (a version, a rendered kernel)."""
    digest = hashlib.sha256(name.encode())
    for src in sources:
        digest.update(Path(src).read_bytes())
    for text in texts:
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def stored_value(path: Path, inputs: str):
    """``(True, value)`` when ``path`` holds a value stored under the digest ``inputs``, else
    ``(False, None)`` (no file, another digest, not ours)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, None
    if isinstance(stored, dict) and stored.get("inputs") == inputs and "value" in stored:
        return True, stored["value"]
    return False, None
