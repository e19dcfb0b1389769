"""``derive list``: the built-in cells, models, activations and the functions a spec may call."""

from __future__ import annotations

import json

import sympy as sp

from derive.cli import activations as actcli
from derive.cli.params import poly
from derive.summary import activation as activation_summary
from derive.symbolic import counts, functions, properties, spec
from derive.symbolic import model as model_spec
from derive.symbolic import seq2seq as seq2seq_spec
from derive.textout import table


def _cmd_list(args) -> int:
    cells = []
    for name in spec.builtin_names():
        cell = spec.load(name)
        per_layer = sp.factor(counts.layer_count(cell, counts.default_convention(cell)))
        cells.append((name, cell.title, ", ".join(cell.state_keys), ", ".join(cell.gates) or "-",
                      poly(per_layer).replace("*", "")))
    spec_functions = [(", ".join(f.commands), str(f.arity), f.domain or "every real number", f.summary)
                      for f in functions.FUNCTIONS]
    models = [_model_row(name) for name in model_spec.builtin_names()]
    activations = properties.stored_rows() or activation_summary.rows()
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
