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

#: a Clockwork RNN's head and step (issue 17): [clock] follows the equations (lines 8 on)
CLOCK_HEAD = 'name = "bad"\ninput = "x"\nstates = ["h"]\noutput = "h"\n'
CLOCK_STEP = "h_t = m_t \\odot \\tanh(W x_t + U h_{t-1} + b) + (1 - m_t) \\odot h_{t-1}\n"
CLOCK_OK = 'modules = 2\nperiods = [1, 2]\nmask = "m"\n'


def clocked(table: str, equations: str = CLOCK_STEP) -> str:
    return spec_with(equations, CLOCK_HEAD) + "[clock]\n" + table


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
    ("non-state at t-1", spec_with("c_t = c_{t-1}\nu_t = c_t\nh_t = u_{t-1}\n"), 8, 7, "only states may be read at t-1"),
    # input taps (issue 17): x_{t-k} is accepted (zero before step k); the future and a state at t-2 are not
    ("input in the future", spec_with("c_t = c_{t-1}\nh_t = W x_{t+1}\n"), 7, 9, "x_{t+1} reads the future"),
    ("state at t-2", spec_with("c_t = c_{t-2}\nh_t = W x_{t-1}\n"), 6, 7, "a step may read states at t-1 only"),
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
    # the functions, constants and size relations of issue 17
    ("undefined function, near names", spec_with("c_t = c_{t-1}\nh_t = \\sigmoid(c_t)\n"), 7, 7,
     "did you mean \\operatorname{sigmoid}"),
    ("undefined function, no near name", spec_with("c_t = c_{t-1}\nh_t = \\foo(c_t)\n"), 7, 7,
     "functions: \\exp, \\log, \\sqrt, \\abs, \\max, \\min"),
    ("max with one argument", spec_with("c_t = c_{t-1}\nh_t = \\max(c_t)\n"), 7, 7, "\\max takes 2 arguments"),
    # the vector-wide functions: a vector's units, never a number
    ("mean of a constant", spec_with("c_t = c_{t-1}\nh_t = \\operatorname{mean}(\\pi) \\odot c_t\n"), 7, 27,
     "\\operatorname{mean} reads every unit of a vector; here its argument is a number"),
    ("mean of a number", spec_with("c_t = c_{t-1}\nh_t = c_t + \\operatorname{mean}(2)\n"), 7, 33,
     "its argument is a number"),
    ("LN with two arguments", spec_with("c_t = c_{t-1}\nh_t = \\operatorname{LN}(c_t, h_{t-1})\n"), 7, 7,
     "\\operatorname{LN} takes one argument"),
    ("exp with two arguments", spec_with("c_t = c_{t-1}\nh_t = \\exp(c_t, h_{t-1})\n"), 7, 7,
     "\\exp takes one argument"),
    ("function without argument", spec_with("c_t = c_{t-1}\nh_t = \\exp c_t\n"), 7, 7, "\\exp is a function"),
    ("braces on a function", spec_with("c_t = c_{t-1}\nh_t = \\tanh{c_t}\n"), 7, 7,
     "braces hold the argument of \\sqrt only"),
    ("bars after a factor", spec_with("c_t = c_{t-1}\nh_t = c_t |h_{t-1}|\n"), 7, 11, "b \\odot |a|"),
    ("unknown constant", spec_with("c_t = c_{t-1}\nh_t = \\gamma c_t\n"), 7, 7, "unknown constant \\gamma"),
    ("unknown constant, near name", spec_with("c_t = c_{t-1}\nh_t = \\betta c_t\n", HEAD + "constants = { beta = 1 }\n"),
     8, 7, "did you mean \\beta?"),
    ("constant shadows a state", spec_with("c_t = c_{t-1}\nh_t = c_t\n", HEAD + "constants = { h = 1.0 }\n"),
     5, 15, "the constant h has the name of the state h_t"),
    ("constant shadows a parameter", spec_with("c_t = W c_{t-1}\nh_t = c_t\n",
                                               HEAD + 'parameters = ["W"]\nconstants = { W = 2 }\n'),
     6, 15, "the declared parameter W"),
    ("constant named as a function", spec_with("c_t = c_{t-1}\nh_t = c_t\n", HEAD + "constants = { sigma = 1 }\n"),
     5, 15, "has the name of a function (\\sigma)"),
    ("constant not finite", spec_with("c_t = c_{t-1}\nh_t = c_t\n", HEAD + "constants = { beta = inf }\n"),
     5, 15, "beta must be a finite number"),
    ("constant nan", spec_with("c_t = c_{t-1}\nh_t = c_t\n", HEAD + "constants = { beta = nan }\n"),
     5, 15, "beta must be a finite number"),
    ("constant not a number", spec_with("c_t = c_{t-1}\nh_t = c_t\n", HEAD + 'constants = { beta = "1" }\n'),
     5, 15, "beta must be a number"),
    ("constant true", spec_with("c_t = c_{t-1}\nh_t = c_t\n", HEAD + "constants = { beta = true }\n"),
     5, 15, "beta must be a number"),
    ("input sized P", spec_with(LSTM_OK, HEAD + 'sizes = { x = "P" }\n'), 5, 11, "the input x may be declared H"),
    ("input joins a state without I = H", spec_with("c_t = c_{t-1}\nh_t = \\tanh(W h_{t-1} + \\tanh(x_t)) \\odot c_t\n"),
     7, 25, 'declare sizes = { x = "H" } if the input has the hidden size'),
    # [clock]: modules, periods, the update mask m_t and block-triangular matrices (Clockwork RNN)
    ("clock: unknown key", clocked(CLOCK_OK + "speed = 3\n"), 12, 1, "unknown key 'speed' in [clock]"),
    ("clock: equations inside it", CLOCK_HEAD + "[clock]\n" + CLOCK_OK + "equations = '''\n" + CLOCK_STEP + "'''\n",
     9, 1, "equations is inside the [clock] table"),
    ("clock: no mask", clocked("modules = 2\nperiods = [1, 2]\n"), 8, 1, "[clock] needs mask"),
    ("clock: modules not an integer", clocked("modules = 1.5\nperiods = [1, 2]\nmask = \"m\"\n"), 9, 1,
     "modules must be a positive integer"),
    ("clock: a period per module", clocked("modules = 2\nperiods = [1]\nmask = \"m\"\n"), 10, 1,
     "lists 1 periods for 2 modules"),
    ("clock: zero period", clocked("modules = 2\nperiods = [0, 1]\nmask = \"m\"\n"), 10, 1,
     "periods must be a list of g positive integers"),
    ("clock: slowest first", clocked("modules = 2\nperiods = [4, 1]\nmask = \"m\"\n"), 10, 1, "fastest first"),
    ("clock: mask with a time index", clocked("modules = 2\nperiods = [1, 2]\nmask = \"m_t\"\n"), 11, 1,
     "is not a name such as m"),
    ("clock: mask is a state", clocked("modules = 2\nperiods = [1, 2]\nmask = \"h\"\n"), 11, 1,
     "[clock] mask h is also the state h_t"),
    ("clock: mask at t-1", clocked(CLOCK_OK, "h_t = m_{t-1} \\odot \\tanh(W x_t + U h_{t-1})\n"), 6, 7,
     "known at step t only"),
    ("clock: mask never read", clocked(CLOCK_OK, "h_t = \\tanh(W x_t + U h_{t-1})\n"), 11, 1, "no equation reads m_t"),
    ("clock: block-triangular vector", clocked(CLOCK_OK + 'block_triangular = ["b"]\n'), 12, 1,
     "b is not a matrix parameter of the cell (matrices: W, U)"),
    ("clock: block-triangular H x I", clocked(CLOCK_OK + 'block_triangular = ["W"]\n'), 12, 1,
     "W is H x I; a block-triangular matrix maps the H units to the H units"),
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


def test_shape_conflict_names_the_operation_that_joins_the_input():
    """MUT1 without its declaration: the conflict is the sum with tanh(x_t), not a later product."""
    text = spec_with(r"""r_t = \sigma(W_{xr} x_t + W_{hr} h_{t-1} + b_r)
c_t = c_{t-1}
h_t = \tanh(W_{hh} (r_t \odot h_{t-1}) + \tanh(x_t) + b_h) \odot r_t + h_{t-1} \odot (1 - r_t)
""")
    with pytest.raises(DeriveError) as info:
        parse_spec(text, source="bad.toml")
    err = info.value
    assert (err.pos.line, err.pos.column) == (8, 42), str(err)
    assert err.message.startswith("shape conflict in a sum: this side has the input size I"), str(err)
    assert parse_spec(text.replace('output = "h"\n', 'output = "h"\nsizes = { x = "H" }\n')).input_size is not None


@pytest.mark.parametrize("use,warned", [
    (r"c_t = i_t \odot c_{t-1}", False),
    (r"c_t = \frac{i_t}{i_t + 1} \odot c_{t-1}", False),  # a normalised gate (minLSTM's f / (f + i))
    (r"c_t = i_t + c_{t-1}", True),
    (r"c_t = \frac{c_{t-1}}{i_t + 1} \odot c_{t-1}", True),  # i only in a denominator
])
def test_a_gate_that_never_switches_is_warned_about(use, warned):
    text = spec_with("i_t = \\sigma(W_{xi} x_t + b_i)\n" + use + "\nh_t = \\tanh(c_t)\n", HEAD + 'gates = ["i"]\n')
    cell = parse_spec(text)
    assert any("never multiplies" in w for w in cell.warnings) == warned, cell.warnings


def test_builtin_cells_have_no_warnings():
    from derive import builtin_names, load

    for name in builtin_names():
        assert load(name).warnings == [], name
