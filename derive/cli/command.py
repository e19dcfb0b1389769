"""The ``derive`` command: argument parsing, output formatting and exit codes only.

Exit status: 0 success, 1 a check failed, 2 bad input (one ``file:line:col: error:``
line on stderr, never a traceback).
"""

from __future__ import annotations

import os
import sys

from derive.cli import parser as cli_args
from derive.errors import DeriveError

#: ``parse`` is the parser's (tests and the guides read the command line as the CLI does)
parse = cli_args.parse


def main(argv=None) -> int:
    try:
        args = parse(argv)
        status = cli_args.handler(args)(args)
        sys.stdout.flush()  # a full disk or a closed pipe shows here, not after main
        return status
    except DeriveError as e:
        return _fail(str(e))
    except BrokenPipeError:  # e.g. derive show lstm | head
        _silence_stdout()
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        if e.filename is None:  # a write to an open stream (stdout); derive's own files are named
            _silence_stdout()
            return _fail(f"derive: error: cannot write output: {e.strerror or e}")
        return _fail(f"derive: error: {e.filename}: {e.strerror or e}")
    except RecursionError:
        return _fail("derive: error: the input is nested too deeply (Python's recursion limit, "
                     f"{sys.getrecursionlimit()} frames)")
    except MemoryError:
        return _fail("derive: error: out of memory")
    except Exception as e:  # the last resort: still one line, never a traceback
        message = " ".join(str(e).split())  # one line
        return _fail(f"derive: internal error: {type(e).__name__}: {message} (a bug in derive, please report it)")


def _fail(line: str) -> int:
    """Print one error line on stderr: exit status 2."""
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass
    return 2


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
