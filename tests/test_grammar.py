"""The LaTeX-subset grammar: what it reads, and that nothing else gets through."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.errors import DeriveError
from derive.syntax.equations import Call, Name, Op, parse_equation, split_name


@pytest.mark.parametrize("text,base,sub,time", [
    ("x_t", "x", None, 0), ("h_{t-1}", "h", None, -1), ("W_{xf}", "W", "xf", None), ("b_f", "b", "f", None),
    (r"\tilde{h}_t", "h_tilde", None, 0), (r"\tilde{C_t}", "C_tilde", None, 0), ("z_{f,t}", "z", "f", 0),
    ("c_{t+1}", "c", None, 1), ("p", "p", None, None),
])
def test_names(text, base, sub, time):
    n = split_name(text, None)
    assert (n.base, n.sub, n.time) == (base, sub, time)


def test_juxtaposition_is_a_product_and_odot_is_elementwise():
    eq = parse_equation(r"c_t = f_t \odot c_{t-1} + W_{xc} x_t")
    add = eq.rhs
    assert isinstance(add, Op) and add.kind == "add"
    assert add.args[0].kind == "had" and add.args[1].kind == "juxt"


def test_precedence_of_minus_and_odot():
    eq = parse_equation(r"h_t = (1 - z_t) \odot n_t + z_t \odot h_{t-1}")
    left = eq.rhs.args[0]
    assert left.kind == "had" and left.args[0].kind == "sub"


@pytest.mark.parametrize("text", [
    r"h_t &= o_t \odot \tanh\left(c_t\right) \\",  # align-style input
    r"f_t = \sigma(W_{xf} \cdot x_t + b_f)",
    r"n_t = \operatorname{ReLU}(W x_t)",
    r"y_t = \tanh^2(x_t) + \frac{1}{2} x_t",
])
def test_accepted_forms(text):
    from derive.syntax.equations import equation_lines

    [(_, line)] = list(equation_lines(text))
    assert parse_equation(line).lhs.time == 0


def test_function_position_is_reported():
    eq = parse_equation(r"h_t = o_t \odot \tanh(c_t)")
    call = eq.rhs.args[1]
    assert isinstance(call, Call) and call.pos.column == 17


HOSTILE = [
    "__import__('os').system('echo pwned')", "().__class__.__bases__[0].__subclasses__()",
    "eval('1')", "exec('import os')", "lambda: 0", "h_t = x_t; import os", "h_t = {{7*7}}",
    "h_t = ${7*7}", "h_t = \\input{/etc/passwd}", "h_t = \\def\\x{1}", "h_t = " + "(" * 5000,
    "h_t = x_t" + " + x_t" * 2000, "\x00", "h_t = \\tanh(", "h_t = 1e309", "h_t = W_{" + "x" * 10000 + "}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_a_clean_error_or_a_parse(text):
    try:
        eq = parse_equation(text)
    except DeriveError as e:
        assert e.pos is not None and e.pos.line >= 1 and e.pos.column >= 1
    else:
        assert isinstance(eq.lhs, Name)


ALPHABET = list("xhWbct_{}()+-=^*,.0123456789 ") + [r"\odot", r"\sigma", r"\tanh", r"\left(", r"\right)",
                                                     r"\frac", r"\tilde{h}", "_t", "_{t-1}", "\\", "'", '"', ";"]


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join))
def test_fuzz_parser_never_crashes(text):
    try:
        parse_equation(text)
    except DeriveError as e:
        assert e.pos is not None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_parser_on_arbitrary_text(text):
    try:
        parse_equation(text)
    except DeriveError:
        pass
