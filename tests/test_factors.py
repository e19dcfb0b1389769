"""Common factors of the Jacobian blocks, named kappa_{n,t} on the cell pages: substituted back,
every chain is the derivation's own, each name stands for a sum that two or more chains carry, and
the peephole LSTM's dh_t/dh_{t-1} prints one chain per line, each short."""

import pytest
import sympy as sp

import derive
from derive.summary import factors
from derive.summary.cell import collect
from derive.symbolic.rules import Factor
from derive.symbolic.spec import builtin_names

CELLS = builtin_names()


@pytest.mark.parametrize("name", CELLS)
def test_named_factors_substituted_back_give_the_derivation(name):
    d = derive.derive(derive.load(name))
    named, where = factors.name_common(d.jacobian)
    back = dict(where)
    uses = {k: 0 for k in back}
    for key, chains in d.jacobian.items():
        assert len(named[key]) == len(chains)
        for mine, theirs in zip(named[key], chains):
            assert [f[0] for f in mine] == [f[0] for f in theirs]
            if mine and mine[0][0] == Factor.DIAG:
                v = mine[0][1]
                for k in back:
                    uses[k] += v.has(k)
                assert sp.simplify(v.xreplace(back) - theirs[0][1]) == 0
    for k, value in back.items():
        assert isinstance(value, sp.Add) and uses[k] >= 2, (k, value, uses[k])


def test_the_peephole_jacobian_names_what_its_chains_share():
    data = collect(derive.derive(derive.load("lstm_peephole")))
    assert len(data["jacobian_where"]) == 2
    block = next(j for j in data["jacobian"] if j["lhs"]["text"] == "dh_t/dh_{t-1}")
    chains = block["rhs"]["latex"].split(" + \\operatorname{diag}")
    assert len(chains) == 4 and max(map(len, chains)) < 110, [len(c) for c in chains]
    assert r"\kappa_{1,t}" in block["rhs"]["latex"]
