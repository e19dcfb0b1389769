"""The guides cannot drift from the CLI: every ``derive ...`` command that the built pages
(``site/**/*.md``) and the README show is parsed by the CLI's own parser, so a command or an
option that does not exist fails here (the pages once told users to run ``derive count``), and
every one that can run here is run through the CLI's entry point, each within a time bound: it
must exit 0 (``derive check`` may also exit 1, its verdict "wrong", which the check guide shows
on purpose). Not run: commands that write files, time things or take minutes (``PARSE_ONLY``),
and templates with placeholders (``...``, ``LEFT = RIGHT``, a bare sub-command, a check
without a formula).
"""

from __future__ import annotations

import re
import shlex
import signal
from pathlib import Path

import pytest

from derive.cli import command
from derive.errors import DeriveError

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "tests" / "golden" / "specs" / "mgu.toml"

#: placeholders the guides use -> what stands in for them here
PLACEHOLDERS = {"CELL": "lstm", "my_cell.toml": str(SPEC), "./mycell.toml": str(SPEC), "ACTIVATION": "swish", "NAME": "gelu"}
#: commands only parsed, never run here: build and kernels write files, bench times things,
#: verify evaluates mpmath at up to thousands of digits (a minute for GELU)
PARSE_ONLY = {"build", "kernels", "bench", "verify"}
#: seconds one command may take (the slowest, a derivation through a layer norm, takes about 20)
TIME_BOUND = 120


def _documents():
    yield ROOT / "README.md"
    yield from sorted((ROOT / "site").rglob("*.md"))


def _commands() -> list[tuple[str, str]]:
    """(where, command line) for every command shown: ``$ derive ...`` lines of code blocks,
    README code lines that start with ``derive ``, and inline ``derive <sub-command> ...``."""
    found = {}
    for doc in _documents():
        text = doc.read_text(encoding="utf-8")
        rel = doc.relative_to(ROOT)
        for n, line in enumerate(text.splitlines(), 1):
            m = re.match(r"^\s*(?:\$ )?(derive [a-z].*)$", line)
            if m and (line.lstrip().startswith("$") or doc.name == "README.md"):
                found.setdefault(_strip_comment(m.group(1)), f"{rel}:{n}")
            for m in re.finditer(r"`(derive [a-z][^`]*)`", line):
                found.setdefault(m.group(1).strip(), f"{rel}:{n}")
    return sorted((where, cmd) for cmd, where in found.items())


def _strip_comment(cmd: str) -> str:
    """The command without a trailing ``# comment`` (a ``#`` inside quotes stays)."""
    quote = None
    for i, ch in enumerate(cmd):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or cmd[i - 1] == " "):
            return cmd[:i].rstrip()
    return cmd.rstrip()


def _argv(cmd: str, tmp: Path) -> list[str]:
    args = shlex.split(cmd)[1:]
    out = []
    for a in args:
        a = PLACEHOLDERS.get(a, a)
        if a in ("gen/", "mykernels/"):
            a = str(tmp / "out")
        elif a.endswith(".svg"):  # derive show CELL --diagram OUT.svg writes into the test's directory
            a = str(tmp / a)
        elif a == "my_derivation.txt":
            (tmp / "formulas.txt").write_text("dc_t = dh_t*o_t*(1 - tanh(c_t)**2)\n", encoding="utf-8")
            a = str(tmp / "formulas.txt")
        out.append(a)
    return out


COMMANDS = _commands()


def test_the_guides_show_commands():
    assert len(COMMANDS) > 40, COMMANDS  # the collector itself works


@pytest.mark.parametrize("where,cmd", COMMANDS, ids=[c for _, c in COMMANDS])
def test_every_command_shown_parses(where, cmd, tmp_path):
    argv = _argv(cmd, tmp_path)
    if len(argv) == 1:  # a mention of a sub-command in prose: it must exist
        argv.append("--help")
    try:
        command.parse(argv)
    except SystemExit as e:  # --help
        assert e.code == 0, f"{where}: `{cmd}`"
    except DeriveError as e:
        pytest.fail(f"{where}: `{cmd}` does not parse: {e}")


def _runnable():
    out = []
    for where, cmd in COMMANDS:
        args = shlex.split(cmd)[1:]
        mention = len(args) == 1 and args[0] != "list" or args[0] == "check" and len(args) < 3  # `derive check gru`
        if mention or args[0] in PARSE_ONLY or "..." in cmd or "LEFT = RIGHT" in cmd:
            continue
        out.append((where, cmd))
    return out


RUNNABLE = _runnable()


def test_most_commands_shown_are_run():
    assert len(RUNNABLE) > 0.6 * len(COMMANDS), (len(RUNNABLE), len(COMMANDS))


class _TooSlow(Exception):
    pass


def _alarm(signum, frame):
    raise _TooSlow


@pytest.mark.parametrize("where,cmd", RUNNABLE, ids=[c for _, c in RUNNABLE])
def test_every_command_shown_runs(where, cmd, tmp_path, capsys):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIME_BOUND)
    try:
        code = command.main(_argv(cmd, tmp_path))
    except _TooSlow:
        pytest.fail(f"{where}: `{cmd}` took more than {TIME_BOUND} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capsys.readouterr().err
    allowed = (0, 1) if shlex.split(cmd)[1] == "check" else (0,)
    assert code in allowed, f"{where}: `{cmd}` exited {code}: {err}"


def test_a_command_that_does_not_exist_is_caught():
    with pytest.raises(DeriveError):
        command.parse(["count", "lstm", "--input", "10", "--hidden", "20"])
