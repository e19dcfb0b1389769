"""``derive check TARGET FORMULA...``: verdicts on hand-derived formulas (exit 0 correct, 1 wrong, 2 unreadable)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

import numpy as np

from derive.checker.claims import check
from derive.checker.files import read_formulas
from derive.errors import DeriveError


def _cmd_check(args) -> int:
    """0: every formula correct (or right under a named convention); 1: one is wrong; 2: unreadable."""
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
