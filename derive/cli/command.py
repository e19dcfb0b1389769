"""The ``derive`` command: argument parsing, output formatting and exit codes only.

Exit status: 0 success, 1 a check failed, 2 bad input (one ``file:line:col: error:``
line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import sympy as sp

from derive.version import __version__
from derive.cli import activations as actcli
from derive.symbolic import bptt, counts, functions, spec
from derive.symbolic import model as model_spec
from derive.symbolic import seq2seq as seq2seq_spec
from derive.errors import DeriveError
from derive.summary import activation as activation_summary
from derive.summary.cell import collect
from derive.summary import model as model_summary
from derive.summary import seq2seq as seq2seq_summary
from derive.textout import table
from derive.checker.claims import check
from derive.runtime.model import model
from derive.checker.files import read_formulas
from derive.cli.build import add_build_command, add_kernels_command
from derive.cli.diagram import write_diagram


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise DeriveError(message)


def _cmd_list(args) -> int:
    cells = []
    for name in spec.builtin_names():
        cell = spec.load(name)
        per_layer = sp.factor(counts.layer_count(cell, counts.default_convention(cell)))
        cells.append((name, cell.title, ", ".join(cell.state_keys), ", ".join(cell.gates) or "-",
                      _poly(per_layer).replace("*", "")))
    spec_functions = [(", ".join(f.commands), str(f.arity), f.domain or "every real number", f.summary)
                      for f in functions.FUNCTIONS]
    models = [_model_row(name) for name in model_spec.builtin_names()]
    activations = activation_summary.stored_rows() or activation_summary.rows()
    if args.json:
        print(json.dumps({"cells": [dict(zip(("name", "title", "states", "gates", "params"), c)) for c in cells],
                          "activations": activations,
                          "functions": [dict(zip(("commands", "arguments", "domain", "summary"), f))
                                        for f in spec_functions],
                          "constants": sorted(functions.BUILTIN_CONSTANTS),
                          "models": [dict(zip(("name", "title", "kind"), m)) for m in models]}, indent=2))
        return 0
    print("Cells (derive show NAME; parameters per layer and direction, default convention):")
    table(("name", "title", "states", "gates", "parameters"), cells)
    print("\nModels (derive show NAME; derive.model(NAME) in Python):")
    table(("name", "title", "what"), models)
    print("\nActivations (derive show NAME; properties computed from each definition at PyTorch's defaults):")
    table([h for h, _ in actcli.LIST_COLUMNS], [[r[k] for _, k in actcli.LIST_COLUMNS] for r in activations])
    print("\nFunctions a spec's equations may call, besides the activations (\\sigma, \\tanh, "
          "\\operatorname{NAME} for the others):")
    table(("command", "arguments", "domain", "what"), spec_functions)
    print(f"Constants: {', '.join(functions.BUILTIN_CONSTANTS)}, numbers (0.5, \\frac{{1}}{{2}}, \\sqrt{{3}}) and "
          f"the names a spec declares in constants = {{ beta = 0.25 }}.")
    return 0


def _model_row(name: str) -> tuple:
    m = seq2seq_spec.load_model(name)
    if isinstance(m, seq2seq_spec.Seq2SeqSpec):
        what = f"{m.encoder.cell.name} encoder, {m.decoder.name} decoder, {m.attention} attention"
    else:
        what = f"{m.layers} x {m.cell.name}" + (f", bidirectional ({m.merge})" if m.bidirectional else "") + \
            (", residual" if m.residual else "")
    return name, m.title, what


def _cmd_show(args) -> int:
    if args.diagram is not None or args.gate is not None or args.unrolled:
        if args.diagram is None:
            raise DeriveError("--gate and --unrolled choose what --diagram OUT.svg draws; give --diagram")
        print(write_diagram(args.cell, args.diagram, args.gate, args.unrolled))
        return 0
    if args.steps and (model_spec.is_model(args.cell) or
                       actcli.is_activation(args.cell) and not args.cell.endswith(".toml")):
        raise DeriveError(f"--steps shows a cell's derivation step by step; {args.cell} is not a cell")
    if actcli.is_activation(args.cell) and not args.cell.endswith(".toml"):
        if args.json:
            print(json.dumps(activation_summary.collect(args.cell), indent=2, ensure_ascii=False))
        else:
            print(activation_summary.show_latex(args.cell) if args.latex else actcli.show(args.cell))
        return 0
    if model_spec.is_model(args.cell):
        m = seq2seq_spec.load_model(args.cell)
        summary = seq2seq_summary if isinstance(m, seq2seq_spec.Seq2SeqSpec) else model_summary
        data = summary.collect(m)
        print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else summary.render_text(data))
        return 0
    data = collect(bptt.derive(spec.load(args.cell)))
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    elif args.latex:
        print(_render(data, "latex", steps=args.steps))
    else:
        print(_render(data, "text", steps=args.steps))
    for w in data["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def _render_steps(steps: dict, form: str) -> list[str]:
    """``derive show --steps``: the local derivatives, then each adjoint as the chain rule's sum over the
    equations that read it, each partial substituted, and the result (a line equal to the one before is left out)."""
    latex = form == "latex"
    partials_note = "a diagonal Jacobian is written diag(v); I is the identity"
    rule_note = ("each adjoint: the sum over the equations that read it, each partial substituted, "
                 "then the result the kernel uses")
    if latex:
        lines = [f"% Local derivatives ({partials_note})", r"\begin{align*}"]
        lines += [rf"  {p['lhs']['latex']} &= {p['rhs']['latex']} \\" for p in steps["partials"]]
        lines[-1] = lines[-1][:-3]
        lines += [r"\end{align*}", f"% Chain rule ({rule_note})", r"\begin{align*}"]
        for a in steps["adjoints"]:
            lines += [rf"  {a['lhs']['latex']} &= {row} \\" if k == 0 else rf"  &= {row} \\"
                      for k, row in enumerate(st["latex"] for st in a["stages"])]
        lines[-1] = lines[-1][:-3]
        return lines + [r"\end{align*}"]
    lines = [f"\nLocal derivatives  ({partials_note})"]
    lines += [f"  {p['lhs']['text']} = {p['rhs']['text']}" for p in steps["partials"]]
    lines.append(f"\nChain rule  ({rule_note})")
    for a in steps["adjoints"]:
        lhs = a["lhs"]["text"]
        lines += [f"  {lhs if k == 0 else ' ' * len(lhs)} = {row}" for k, row in enumerate(st["text"] for st in a["stages"])]
    return lines


def _render(data: dict, form: str, steps: bool = False) -> str:
    """``derive show`` as terminal text (``form="text"``) or LaTeX ``align*`` blocks; ``steps``: with the
    derivation step by step before the adjoints."""
    lines = []
    latex = form == "latex"

    def section(title, rows, note=None):
        if latex:
            lines.append(f"% {title}")
            if note:
                lines.append(f"% {note}")
            lines.append(r"\begin{align*}")
            lines.extend(rf"  {r['lhs']['latex']} &= {r['rhs']['latex']} \\" for r in rows)
            lines[-1] = lines[-1][:-3]
            lines.append(r"\end{align*}")
        else:
            lines.append(f"\n{title}" + (f"  ({note})" if note else ""))
            lines.extend(f"  {r['lhs']['text']} = {r['rhs']['text']}" for r in rows)

    if not latex:
        lines.append(f"{data['title']}  [{data['name']}, {data['source']}]")
        if data["summary"]:
            lines.append(data["summary"])
        lines.append(f"input {data['input']['text']}, states "
                     + ", ".join(s["text"] for s in data["states"]) + f", output {data['output']['text']}"
                     + (f", gates {data['gates_shown']['text']}" if data["gates"] else ""))
    section("Forward step", data["forward"], f"{data['preactivation']}_{{v,t}}: pre-activations derive introduced" if not latex else None)
    if not latex:
        lines.append("\nParameters")
        lines.extend(f"  {p['name']['text']}: {p['shape']}" for p in data["shapes"])
        if data["clock"]:
            c = data["clock"]
            lines.append(f"\nClock: {c['text']}; {c['mask']['text']} is 1 on the units of the modules that run, "
                         f"known (no gradient)")
            lines.extend(f"  {w['text']} is block-upper-triangular: used as {w['text']} (.) M, gradient M (.) sum_t ..."
                         for w in c["block_triangular"])
    if steps:
        lines.extend(_render_steps(data["steps"], form))
    section("Adjoints, last step to first", data["adjoints"],
            data["dy"][form] + "; terms at t+1 come from the next step and are 0 after the last")
    section("Input gradient", [data["input_gradient"]])
    section("Initial-state gradients", data["initial_states"])
    section("Parameter gradients", data["parameters"])
    section("State Jacobian, one step", data["jacobian"])
    if latex:
        lines.append("% Parameters per layer and direction")
        lines.extend(f"% {c['convention']} ({c['bias']} bias): {c['formula']['latex']}" for c in data["counts"])
    else:
        lines.append("\nParameters per layer and direction (I inputs, H hidden)")
        lines.extend(f"  {c['convention']:8s} ({c['bias']} bias): {c['formula']['text']}" for c in data["counts"])
        if data["doubled_biases"]:
            lines.append(f"  double bias: each of {', '.join(data['doubled_biases'])} is stored as an input-side "
                         f"and a hidden-side vector (b_ih + b_hh); both halves get the same gradient")
    return "\n".join(lines)


def _cmd_params(args) -> int:
    if model_spec.is_model(args.cell):
        return _model_params(args)
    cell = spec.load(args.cell)
    n = counts.count(cell, input_size=args.input, hidden=args.hidden, layers=args.layers,
                     bidirectional=args.bidirectional, proj=args.proj, bias=not args.no_bias,
                     convention=args.convention)
    if args.json:
        print(json.dumps({"cell": cell.name, "total": n.total, "convention": n.convention,
                          "bias": n.bias_style, "per_layer": str(n.per_layer),
                          "upper_layer": None if n.upper_layer is None else str(n.upper_layer),
                          "formula": str(n.formula), "notes": n.notes}, indent=2))
        return 0
    D = 2 if args.bidirectional else 1
    print(n.total)
    print(f"  {cell.name}, {n.convention} convention ({n.bias_style} bias"
          f"{', no bias' if args.no_bias else ''}), I={args.input}, H={args.hidden}"
          f"{f', P={args.proj}' if args.proj else ''}, {args.layers} layer(s), {D} direction(s)")
    print(f"  layer 0, per direction:   {_poly(n.per_layer)}")
    if n.upper_layer is not None:
        print(f"  layers 1+, per direction: {_poly(n.upper_layer)}")
    print(f"  total: {_poly(n.formula)} = {n.total}")
    for note in n.notes:
        print(f"  note: {note}")
    return 0


def _model_params(args) -> int:
    """``derive params MODEL``: the model's layers and directions are its own (not --layers/--bidirectional)."""
    m = seq2seq_spec.load_model(args.cell)
    if isinstance(m, seq2seq_spec.Seq2SeqSpec):
        return _seq2seq_params(args, m)
    if args.layers != 1 or args.bidirectional or args.no_bias:
        raise DeriveError(f"{m.name} is a model: its spec fixes the layers and directions ({m.layers} layer(s)"
                          f"{', bidirectional' if m.bidirectional else ''}); --layers, --bidirectional and --no-bias "
                          f"are for a cell")
    proj = args.proj or None
    conv = args.convention or counts.default_convention(m.cell)
    total = m.count(args.input, args.hidden, proj=proj, convention=conv)
    if args.json:
        print(json.dumps({"model": m.name, "total": total, "convention": conv,
                          "layer_inputs": m.layer_inputs(args.input, args.hidden, proj)}, indent=2))
        return 0
    print(total)
    print(f"  {m.name}: {m.layers} layer(s) of {m.cell.name}{', bidirectional ' + m.merge if m.bidirectional else ''}"
          f"{', residual (no weights)' if m.residual else ''}; {conv} convention, I={args.input}, H={args.hidden}")
    print(f"  layer inputs: {', '.join(map(str, m.layer_inputs(args.input, args.hidden, proj)))}")
    return 0


def _seq2seq_params(args, spec) -> int:
    """``derive params SEQ2SEQ``: parameters per part; --input is the source's size when it is vectors."""
    if args.layers != 1 or args.bidirectional or args.no_bias or args.proj:
        raise DeriveError(f"{spec.name} is an encoder-decoder: its spec fixes the layers and directions; "
                          f"--layers, --bidirectional, --proj and --no-bias are for a cell")
    conv = args.convention or "single"
    parts = model(args.cell).count(args.hidden, input_size=args.input, convention=conv)
    total = sum(parts.values())
    if args.json:
        print(json.dumps({"model": spec.name, "total": total, "convention": conv, "parts": parts}, indent=2))
        return 0
    print(total)
    print(f"  {spec.name}: {conv} convention, H={args.hidden}, vocabulary {spec.target_vocab}, embedding {spec.embed}"
          + ("" if not spec.source_vocab else " (the source is token ids: --input is not used)"))
    for k, n in parts.items():
        print(f"  {k:8s} {n}")
    return 0


def _cmd_check(args) -> int:
    """0: every formula correct (or right under a named convention); 1: one is wrong; 2: unreadable."""
    from dataclasses import asdict

    items = [(f, None, 0) for f in args.formula]
    if args.file is not None:
        items += [(line, args.file, n) for n, line in read_formulas(args.file)]
    if not items:
        raise DeriveError("give a formula, or --file with one formula per line")
    status, out = 0, []
    for formula, source, line in items:
        try:
            r = check(args.target, formula, let=args.let, override=args.override)
        except DeriveError as e:
            if source is None:
                raise
            print(str(e.located(source, lines=line - 1)), file=sys.stderr)
            status = 2
            continue
        if r.verdict == "wrong":
            status = max(status, 1)
        if args.json:
            d = asdict(r)
            for k in ("counterexample", "left", "right"):
                d[k] = _jsonable(d[k])
            out.append(d)
        else:
            print((f"{source}:{line}: " if source else "") + formula)
            print(r.report())
            print()
    if args.json:
        print(json.dumps(out, indent=2))
    return status


def _jsonable(v):
    import numpy as np

    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, (int, float, str)) or v is None:
        return v
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _poly(e) -> str:
    return str(e).replace("**", "^")


def _build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="derive", description="Symbolic BPTT derivations, kernels and docs for recurrent cells.")
    p.add_argument("--version", action="version", version=f"derive {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("list", help="list the built-in cells and the activations")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_list)

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
    s.set_defaults(run=_cmd_show)

    s = sub.add_parser("params", help="count a cell's parameters under a framework's convention")
    s.add_argument("cell", help="a built-in cell name or the path of a .toml spec")
    s.add_argument("--input", "-I", type=int, required=True, metavar="I", help="input size")
    s.add_argument("--hidden", "-H", type=int, required=True, metavar="H", help="hidden size")
    s.add_argument("--layers", type=int, default=1, metavar="N", help="stacked layers (default 1)")
    s.add_argument("--bidirectional", action="store_true", help="two directions per layer")
    s.add_argument("--proj", type=int, default=0, metavar="P", help="PyTorch LSTM proj_size (default 0)")
    s.add_argument("--no-bias", action="store_true", help="no bias vectors (PyTorch bias=False)")
    s.add_argument("--convention", choices=counts.CONVENTIONS, default=None,
                   help="pytorch (double bias), keras, or single (textbook); default: the cell's own")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(run=_cmd_params)

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
    s.set_defaults(run=_cmd_check)

    add_build_command(sub)
    add_kernels_command(sub)
    actcli.add_commands(sub)
    return p


def parse(argv=None) -> argparse.Namespace:
    """The command line as the CLI reads it (DeriveError when it does not parse)."""
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "check" and not any(x.startswith("--") for x in extra):
        args.formula += extra  # formulas after an option: derive check lstm --let W=... 'dc_t = ...'
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv=None) -> int:
    try:
        args = parse(argv)
        status = args.run(args)
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
