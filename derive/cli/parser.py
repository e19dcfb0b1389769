"""The ``derive`` command line: every subcommand's arguments, and the function that runs it.

A subcommand names its handler as ``"module:function"``; ``handler`` imports that module when the
command runs, so ``derive params lstm`` loads the symbolic layer and not the kernels, the checker,
the benches or the docs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from derive.errors import DeriveError
from derive.symbolic.counts import CONVENTIONS
from derive.version import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise DeriveError(message)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (0 and negatives are refused, not replaced by a default)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Symbolic BPTT derivations, kernels and docs for recurrent cells.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="list the built-in cells and the activations")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run="derive.cli.listing:_cmd_list")

    s = sub.add_parser("show", help="print a cell's derivation (forward, adjoints, gradients, Jacobian, counts) "
                                    "or an activation's definition, derivative, properties and kernels")
    s.add_argument("cell", metavar="NAME", help="a built-in cell, the path of a .toml spec, or an activation")
    fmt = s.add_mutually_exclusive_group()
    fmt.add_argument("--latex", action="store_true", help="LaTeX align* blocks")
    fmt.add_argument("--json", action="store_true", help="JSON with text and LaTeX of every formula")
    fmt.add_argument("--diagram", metavar="OUT.svg", help="write the cell's dataflow diagram (SVG) instead")
    s.add_argument("--gate", metavar="GATE", help="with --diagram: highlight this gate's path")
    s.add_argument("--unrolled", action="store_true",
                   help="with --diagram: the network unrolled for T = 3, a state's adjoint paths highlighted")
    s.add_argument("--steps", action="store_true", help="a cell's derivation step by step: the local derivatives, "
                                                        "then each adjoint by the chain rule, then simplified")
    s.set_defaults(run="derive.cli.show:_cmd_show")

    s = sub.add_parser("params", help="count a cell's parameters under a framework's convention")
    s.add_argument("cell", help="a built-in cell name or the path of a .toml spec")
    s.add_argument("--input", "-I", type=int, required=True, metavar="I", help="input size")
    s.add_argument("--hidden", "-H", type=int, required=True, metavar="H", help="hidden size")
    s.add_argument("--layers", type=int, default=1, metavar="N", help="stacked layers (default 1)")
    s.add_argument("--bidirectional", action="store_true", help="two directions per layer")
    s.add_argument("--proj", type=int, default=0, metavar="P", help="PyTorch LSTM proj_size (default 0)")
    s.add_argument("--no-bias", action="store_true", help="no bias vectors (PyTorch bias=False)")
    s.add_argument("--convention", choices=CONVENTIONS, default=None,
                   help="pytorch (double bias), keras, or single (textbook); default: the cell's own")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run="derive.cli.params:_cmd_params")

    s = sub.add_parser("check", help="check a hand-derived formula: correct, right under another convention, "
                                     "or wrong with a counterexample")
    s.add_argument("target", metavar="CELL|ACTIVATION", help="a built-in cell, a .toml spec, or an activation")
    s.add_argument("formula", nargs="*", help="LEFT = RIGHT in LaTeX or plain text, e.g. "
                                              "'dc_t = dh_t*o_t*(1 - tanh(c_t)**2) + dc_next*f_next'")
    s.add_argument("--file", metavar="FILE", help="formulas one per line (# starts a comment)")
    s.add_argument("--let", action="append", default=[], metavar="NAME=EXPR",
                   help="a name the formulas use, e.g. --let 'W_f = [W_{hf}, W_{xf}]' (repeatable); "
                        "a name the cell already has is refused")
    s.add_argument("--override", action="append", default=[], metavar="NAME=EXPR",
                   help="replace a name the cell already has, e.g. --override 'dh_t = dy_t' (repeatable)")
    s.add_argument("--json", action="store_true", help="machine-readable verdicts")
    s.set_defaults(run="derive.cli.checks:_cmd_check")

    add_build_command(sub)
    add_kernels_command(sub)
    add_activation_commands(sub)
    return p


def parse(argv=None) -> argparse.Namespace:
    """The command line as the CLI reads it (DeriveError when it does not parse)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "check" and not any(x.startswith("--") for x in extra):
        args.formula += extra  # formulas after an option: derive check lstm --let W=... 'dc_t = ...'
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def add_build_command(sub) -> None:
    s = sub.add_parser("build", help="derive everything, regenerate the pages and build the site")
    s.add_argument("--check", action="store_true", help="exit 1 if committed pages are stale; write nothing")
    s.add_argument("--no-html", action="store_true", help="write the Markdown pages only")
    s.add_argument("--serve", action="store_true", help="preview the site (mkdocs serve)")
    s.add_argument("--force", action="store_true",
                   help="derive everything even when nothing changed since the last build (build/derive-cache.json); "
                        "with --check, render every file instead of comparing with the last build's")
    s.add_argument("--site-dir", help="where the HTML goes (default: build/html)")
    s.add_argument("--root", default=".", help="the checkout to build (default: the current directory)")
    s.set_defaults(run="derive.cli.build:_cmd_build")


def add_kernels_command(sub) -> None:
    s = sub.add_parser("kernels", help="regenerate the NumPy kernel modules (derive/kernels/, or --out for a spec)")
    s.add_argument("cells", nargs="*", help="built-in cell names or .toml spec paths (default: every built-in "
                                            "cell and the activations)")
    s.add_argument("--out", help="write the kernels to this directory (required for spec files; default for "
                                 "built-in cells: derive/kernels/ of --root)")
    s.add_argument("--check", action="store_true", help="exit 1 if a committed kernel is stale; write nothing")
    s.add_argument("--root", default=".", help="the checkout (default: the current directory)")
    s.set_defaults(run="derive.cli.kernelscmd:_cmd_kernels")


def add_activation_commands(sub) -> None:
    s = sub.add_parser("verify", help="check the activation kernels against mpmath (and PyTorch)")
    s.add_argument("what", choices=["activations"], help="what to verify")
    s.add_argument("names", nargs="*", help="activations (default: all elementwise ones)")
    s.add_argument("--no-torch", action="store_true", help="skip the PyTorch column")
    s.set_defaults(run="derive.cli.measure:_verify")

    s = sub.add_parser("bench", help="time cell kernels or models against PyTorch, or the activation kernels")
    s.add_argument("what", nargs="+", help="cell names or .toml specs, model names or model specs, or "
                                          "'activations' [NAMES]")
    s.add_argument("--size", type=positive_int, default=10**6, help="activations: elements per array (default 10^6)")
    s.add_argument("--repeat", type=positive_int, default=None, help="timed runs, best kept (default 7; cells 3)")
    s.add_argument("--threads", type=positive_int, default=None,
                   help="threads for torch and NumPy's BLAS (default: activations 1, cells every core)")
    s.add_argument("--shape", action="append", metavar="T,B,I,H",
                   help="cells: a size to time (repeatable; default the three of issue 4)")
    s.add_argument("--peers", action="store_true",
                   help="cells: derive's backends (numpy, compiled, auto) against JAX jit(grad(scan)), a PyTorch "
                        "eager loop and torch.nn, with the ratio to the fastest")
    s.add_argument("--site", action="store_true",
                   help="with --peers: also write the measurements to derive/docs/data/performance.json, which "
                        "derive build renders on the site's Performance page")
    s.set_defaults(run="derive.cli.measure:_bench")


def handler(args: argparse.Namespace):
    """The function that runs the parsed command (its module imported now)."""
    module, name = args.run.split(":")
    return getattr(importlib.import_module(module), name)
