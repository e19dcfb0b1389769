"""``derive params NAME``: a cell's or a model's parameter count under a framework's convention."""

from __future__ import annotations

import json

from derive.errors import DeriveError
from derive.symbolic import counts, spec
from derive.symbolic import model as model_spec
from derive.symbolic import seq2seq as seq2seq_spec


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
    print(f"  layer 0, per direction:   {poly(n.per_layer)}")
    if n.upper_layer is not None:
        print(f"  layers 1+, per direction: {poly(n.upper_layer)}")
    print(f"  total: {poly(n.formula)} = {n.total}")
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
    parts = spec.count(args.hidden, input_size=args.input, convention=conv)
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


def poly(e) -> str:
    return str(e).replace("**", "^")
