"""``derive show NAME``: a cell's derivation (text, LaTeX, JSON, step by step, a diagram), a model's
summary, or an activation's definition, properties and kernels."""

from __future__ import annotations

import json
import sys

from derive.cli import activations as actcli
from derive.cli.diagram import write_diagram
from derive.errors import DeriveError
from derive.summary import activation as activation_summary
from derive.summary import model as model_summary
from derive.summary import seq2seq as seq2seq_summary
from derive.summary.cell import collect
from derive.symbolic import bptt, spec
from derive.symbolic import model as model_spec
from derive.symbolic import seq2seq as seq2seq_spec


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
