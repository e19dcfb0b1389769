"""Common factors of a Jacobian block, named for the page.

A block such as the peephole LSTM's ``dh_t/dh_{t-1}`` is a sum of chains ``diag(v_k) W_k`` whose
coefficients ``v_k`` all carry the same factor (there ``o_t (1 - tanh^2 c_t) + p_o o_t (1 - o_t)
tanh c_t``, the way h_t depends on c_t). Printed in full, every line repeats it; named once as
``kappa_{1,t}``, each line shows what is particular to its chain. The names are for reading only:
the page states each definition under the block, and a reader's ``derive check`` of a line passes
the definition with ``--let`` (the site's tests do exactly that).
"""

from __future__ import annotations

from collections import Counter

import sympy as sp

from derive.symbolic import ir
from derive.symbolic.printing import latex
from derive.symbolic.rules import Factor

#: the letter of the named factors: kappa_{1,t}, kappa_{2,t}, ... (numbered along the page)
LETTER = "kappa"


#: a factor is named when its LaTeX is at least this long and two chains of the page carry it
MIN_LATEX = 40


def _factors(v: sp.Expr) -> tuple:
    """The multiplicative factors of ``v``, after pulling the common factors of a sum out of it."""
    return sp.Mul.make_args(sp.factor_terms(v))


def name_common(jacobian: dict) -> tuple[dict, list]:
    """The blocks ``jacobian`` ((out, in) -> [chain]) with every long factor that two or more chains'
    leading diags share named ``kappa_{n,t}`` (numbered in the order the page shows them), and the
    definitions [(symbol, value)]. Only a factor holding a sum is named: a lone gate (o_t) or a
    product of gates is short enough to print where it stands."""
    seen: Counter = Counter()
    for chains in jacobian.values():
        for c in chains:
            if c and c[0][0] == Factor.DIAG:
                seen.update(f for f in set(_factors(c[0][1])) if isinstance(f, sp.Add)
                            and len(latex(f)) >= MIN_LATEX)
    names: dict = {}
    out = {}
    for key, chains in jacobian.items():
        out[key] = []
        for c in chains:
            if not (c and c[0][0] == Factor.DIAG):
                out[key].append(c)
                continue
            parts = []
            for f in _factors(c[0][1]):
                if seen[f] >= 2:
                    names.setdefault(f, ir.symbol(LETTER, str(len(names) + 1), 0))
                    f = names[f]
                parts.append(f)
            out[key].append([(Factor.DIAG, sp.Mul(*parts)), *c[1:]])
    return (out, [(k, v) for v, k in names.items()]) if names else (jacobian, [])
