"""The glossary and the home page's reading order: every linked page exists, both languages are on the
page, and each term's symbol is one KaTeX renders (the build renders it; here, the page carries it)."""

from __future__ import annotations

import re
from pathlib import Path

from derive.docs.glossary import TERMS

SITE = Path(__file__).resolve().parent.parent / "site"


def test_every_term_links_an_existing_page():
    for zh, en, _, page in TERMS:
        assert (SITE / page).is_file(), (zh, page)
        assert re.search(r"[\u4e00-\u9fff]", zh) and en.isascii(), (zh, en)


def test_the_page_lists_every_term_once():
    page = (SITE / "glossary.md").read_text(encoding="utf-8")
    for zh, en, _, _ in TERMS:
        assert page.count(f"| {zh} | {en} |") == 1, zh
    assert len({zh for zh, *_ in TERMS}) == len(TERMS)


def test_the_reading_order_links_exist():
    home = (SITE / "index.md").read_text(encoding="utf-8")
    start = home[home.index("**Start here.**"):home.index("**Cells:**")]
    links = re.findall(r"\]\(([^)]+\.md)\)", start)
    assert len(links) >= 10 and all((SITE / link).is_file() for link in links), links
