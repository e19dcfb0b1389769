"""Malformed specs: one located error line, exit status 2, no traceback, nothing run."""

import subprocess
import sys

import pytest

from derive import DeriveError, parse_spec

HEAD = '''name = "bad"
input = "x"
states = ["h", "c"]
output = "h"
'''


def spec_with(equations: str, head: str = HEAD) -> str:
    return head + "equations = '''\n" + equations + "'''\n"


LSTM_OK = r"""i_t = \sigma(W_{xi} x_t + W_{hi} h_{t-1} + b_i)
c_t = i_t \odot c_{t-1}
h_t = \tanh(c_t)
"""

#: (what is wrong, spec text, expected line, expected column, words the message must have)
CASES = [
    ("syntax: operator with no operand", spec_with("h_t = \\tanh(W_{hh} h_{t-1} + )\nc_t = c_{t-1}\n"),
     6, 30, "unexpected ')'"),
    ("syntax: stray character", spec_with("c_t = c_{t-1}\nh_t = c_t $ 2\n"), 7, 11, "unexpected character '$'"),
    ("unknown symbol", spec_with("c_t = c_{t-1}\nh_t = \\tanh(W_{hh} h_{t-1} + q_t)\n"), 7, 30, "unknown symbol q_t"),
    ("undefined activation", spec_with("c_t = c_{t-1}\nh_t = \\swish(c_t)\n"), 7, 7, "undefined activation \\swish"),
    ("shape conflict", spec_with("c_t = c_{t-1}\nh_t = x_t + c_t\n"), 7, 7, "shape conflict"),
    ("matrix used as vector", spec_with("c_t = W c_{t-1}\nh_t = W + c_t\n"), 7, 7, "used as a vector"),
    ("state never updated", HEAD + "equations = '''\nh_t = \\tanh(W x_t)\n'''\n", 3, 1, "never updated"),
    ("cycle within a step", spec_with("c_t = h_t\nh_t = \\tanh(c_t)\n"), 6, 1, "cycle within one step"),
    ("defined twice", spec_with("c_t = c_{t-1}\nh_t = c_t\nh_t = c_t\n"), 8, 1, "defined twice"),
    ("future value", spec_with("c_t = c_{t+1}\nh_t = c_t\n"), 6, 7, "reads the future"),
    ("non-state at t-1", spec_with("c_t = c_{t-1}\nh_t = x_{t-1}\n"), 7, 7, "only states may be read at t-1"),
    ("left side not at t", spec_with("c_{t-1} = c_t\nh_t = c_t\n"), 6, 1, "must be at time t"),
    ("two vectors side by side", spec_with("c_t = c_{t-1} h_{t-1}\nh_t = c_t\n"), 6, 7, "two vectors side by side"),
    ("invalid TOML", 'name = "bad\ninput = "x"\n', 1, 12, "not valid TOML"),
    ("unknown key", HEAD + 'colour = "red"\n' + "equations = '''\n" + LSTM_OK + "'''\n", 5, 1, "unknown key 'colour'"),
    ("missing key", 'name = "x"\n', 1, 1, "has no 'input'"),
    ("bad convention", spec_with(LSTM_OK) + '[conventions]\nbias = "triple"\n', 11, 1, "bias must be one of"),
    ("gate not defined", HEAD + 'gates = ["q"]\n' + "equations = '''\n" + LSTM_OK + "'''\n", 5, 1,
     "gate q is not defined"),
    ("empty equations", spec_with(""), 5, 1, "empty"),
    ("output undefined", HEAD.replace('output = "h"', 'output = "y"') + "equations = '''\n" + LSTM_OK + "'''\n",
     4, 1, "output y is not defined"),
]


@pytest.mark.parametrize("what,text,line,column,words", CASES, ids=[c[0] for c in CASES])
def test_malformed_spec_is_a_located_error(what, text, line, column, words):
    with pytest.raises(DeriveError) as info:
        parse_spec(text, source="bad.toml")
    err = info.value
    assert words in err.message, str(err)
    assert (err.pos.line, err.pos.column) == (line, column), str(err)
    assert str(err).startswith(f"bad.toml:{line}:{column}: error: ")
    assert "\n" not in str(err)


def test_the_cli_prints_one_line_and_exits_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(CASES[2][1])
    for args in (["show", str(path)], ["params", str(path), "--input", "3", "--hidden", "4"]):
        proc = subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert lines == [f"{path}:7:30: error: unknown symbol q_t; known: x_t, h_t, h_{{t-1}}, c_t, c_{{t-1}}"]


def test_python_payloads_in_a_spec_are_never_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    for eq in (f"h_t = {payload}", f"h_t = \\tanh({payload})", "h_t = ().__class__.__bases__[0]"):
        with pytest.raises(DeriveError):
            parse_spec(spec_with("c_t = c_{t-1}\n" + eq + "\n"))
    assert not marker.exists()


def test_a_gate_with_an_unbounded_activation_is_warned_about():
    text = spec_with(r"""i_t = \operatorname{ReLU}(W_{xi} x_t + b_i)
c_t = i_t \odot c_{t-1}
h_t = \tanh(c_t)
""", HEAD + 'gates = ["i"]\n')
    cell = parse_spec(text)
    assert len(cell.warnings) == 1
    assert "gate i uses relu" in cell.warnings[0] and "[0, 1]" in cell.warnings[0]


def test_builtin_cells_have_no_warnings():
    from derive import builtin_names, load

    for name in builtin_names():
        assert load(name).warnings == [], name
