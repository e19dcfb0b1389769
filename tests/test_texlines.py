"""Review 4.1: long display formulas are broken between terms, never inside one. For every built-in
cell's adjoints, parameter gradients and Jacobian blocks: each line is balanced (braces, \\left/\\right),
no line but a single-term one passes the width, and joining the lines back gives the formula."""

import re

import pytest

from derive.docs import texlines
from derive.docs.pages import cell_data
from derive.symbolic import spec


def balanced(line: str) -> bool:
    stripped = re.sub(r"\\[{}]", "", line)
    return stripped.count("{") == stripped.count("}") and line.count(r"\left") == line.count(r"\right")


@pytest.mark.parametrize("name", spec.builtin_names())
def test_formulas_break_between_terms(name):
    d = cell_data(name)
    for row in d["adjoints"] + d["parameters"] + d["jacobian"]:
        rhs = row["rhs"]["latex"]
        lines = texlines.aligned_rhs(rhs).split(" \\\\\n")
        assert all(balanced(line) for line in lines), lines
        for line in lines:
            single = len(texlines.terms(line.removeprefix("&\\quad").lstrip(" +-"))) == 1
            assert len(line) <= texlines.WIDTH + 8 or single, line
        [back] = texlines.joined([f"x = {lines[0]}", *lines[1:]])
        assert re.sub(r"\s+", " ", back) == re.sub(r"\s+", " ", f"x = {rhs}")


def test_terms_split_at_depth_zero_only():
    assert texlines.terms(r"a \left(b + c\right) - d_{t-1} + \frac{1}{2} (e - f)") == [
        ("", r"a \left(b + c\right)"), ("-", "d_{t-1}"), ("+", r"\frac{1}{2} (e - f)")]
    assert texlines.terms(r"- a + \left\|b - c\right\|") == [("", "- a"), ("+", r"\left\|b - c\right\|")]
    assert texlines.aligned_rhs("short + formula") == "short + formula"
