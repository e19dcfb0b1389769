"""The LaTeX-subset grammar: what it reads, and that nothing else gets through."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from derive.errors import DeriveError
from derive.syntax.equations import Call, Const, Name, Num, Op, Pow, parse_equation, split_name


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
    r"y_t = \exp(x_t) + \log(h_t) + \ln(h_t)",
    r"y_t = \sqrt{x_t} + \sqrt(x_t) + \sqrt\left(x_t\right) + \sqrt{3} x_t",
    r"y_t = |x_t| + \abs(x_t) + \left| x_t \right| + \lvert x_t \rvert + \left\lvert x_t \right\rvert",
    r"y_t = \max(x_t, h_t) + \min\left(x_t, 0\right) + \max^2(x_t, 1)",
    r"y_t = \sigma(x_t - \beta) + \pi x_t + \mathrm{e} \cdot |x_t|",
])
def test_accepted_forms(text):
    from derive.syntax.equations import equation_lines

    [(_, line)] = list(equation_lines(text))
    assert parse_equation(line).lhs.time == 0


def _abs(arg):
    return isinstance(arg, Call) and arg.func == r"\abs"


#: (equation, what its right side must be): each new construct of issue 17 and its AST
NEW_FORMS = [
    (r"h_t = |x_t|", lambda r: _abs(r) and isinstance(r.arg, Name)),
    (r"h_t = |a_t - |b_t|| \odot c_t", lambda r: r.kind == "had" and _abs(r.args[0]) and _abs(r.args[0].arg.args[1])),
    (r"h_t = |x_t| h_t", lambda r: r.kind == "juxt" and _abs(r.args[0])),
    (r"h_t = |x_t|^2", lambda r: r.exponent == 2 and _abs(r.base)),
    (r"h_t = \max(a_t, b_t)", lambda r: r.func == r"\max" and len(r.args) == 2),
    (r"h_t = \min\left(a_t, 0\right)", lambda r: r.func == r"\min" and isinstance(r.args[1], Num)),
    (r"h_t = \sqrt{3} x_t", lambda r: r.kind == "juxt" and r.args[0].func == r"\sqrt"),
    (r"h_t = \beta x_t", lambda r: r.kind == "juxt" and r.args[0] == Const(r"\beta", r.args[0].pos)),
    (r"h_t = \beta(x_t)", lambda r: isinstance(r, Call) and r.func == r"\beta"),  # a constant: cell.py scales
    (r"h_t = \pi^2 x_t", lambda r: isinstance(r.args[0], Pow) and isinstance(r.args[0].base, Const)),
    (r"h_t = \sigma(s_t - \beta)", lambda r: r.arg.kind == "sub" and isinstance(r.arg.args[1], Const)),
    (r"h_t = \exp(\log(\sqrt{|x_t|}))", lambda r: r.arg.func == r"\log" and r.arg.arg.func == r"\sqrt"),
]


@pytest.mark.parametrize("text,check", NEW_FORMS, ids=[t for t, _ in NEW_FORMS])
def test_new_forms_parse_to_their_tree(text, check):
    assert check(parse_equation(text).rhs)


#: (equation, column, words): the grammar's errors for the new forms
NEW_ERRORS = [
    (r"h_t = 2 |x_t|", 9, r"b \odot |a|"),
    (r"h_t = \tanh{x_t}", 7, r"braces hold the argument of \sqrt only"),
    (r"h_t = \max(a_t, )", 17, "unexpected ')'"),
    (r"h_t = |x_t", 11, "ends early"),
    ("h_t = " + " + ".join(["|x_t|"] * 70), 7 + 8 * 64, "more than 128 absolute-value bars"),
]


@pytest.mark.parametrize("text,column,words", NEW_ERRORS, ids=[t[:30] for t, _, _ in NEW_ERRORS])
def test_new_form_errors_are_located(text, column, words):
    with pytest.raises(DeriveError) as info:
        parse_equation(text)
    assert words in info.value.message and info.value.pos.column == column, str(info.value)


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


ALPHABET = list("xhWbct_{}()+-=^*,.0123456789 |") + [r"\odot", r"\sigma", r"\tanh", r"\left(", r"\right)",
                                                      r"\frac", r"\tilde{h}", "_t", "_{t-1}", "\\", "'", '"', ";",
                                                      r"\max", r"\sqrt", r"\beta", r"\left|", r"\right|"]


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
