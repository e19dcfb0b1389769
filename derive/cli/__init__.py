"""The ``derive`` command: argument parsing, output formatting, exit codes; the only layer that writes files."""

from derive.cli.command import main

__all__ = ["main"]
