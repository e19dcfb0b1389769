"""Review 4.2: tables fit the column. A table of text or formulas has at most 6 columns; a wider one is
allowed only when every cell after the first two columns is short (the performance tables' timings)."""

import re
from pathlib import Path

import pytest

SITE = Path(__file__).resolve().parents[1] / "site"
PAGES = sorted(SITE.rglob("*.md"))
MAX_COLUMNS = 6
SHORT = 12  # visible characters


def visible(cell: str) -> str:
    """What a cell shows, roughly: link texts, a TeX command as one glyph, no markup."""
    cell = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", cell)
    cell = re.sub(r"\\(left|right|operatorname|mathrm|text)\b", "", cell)
    cell = re.sub(r"\\[a-zA-Z]+", "x", cell)
    return re.sub(r"[{}$`*_^\\]", "", cell).strip()


def tables(text: str) -> list[list[list[str]]]:
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    out, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            out.append([r for r in rows if not set("".join(r)) <= set("-: ")])
            rows = []
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(SITE)))
def test_tables_fit(page):
    for table in tables(page.read_text(encoding="utf-8")):
        header, body = table[0], table[1:]
        if len(header) <= MAX_COLUMNS:
            continue
        wide = [cell for row in body for cell in row[2:] if len(visible(cell)) > SHORT]
        assert not wide, f"{page.name}: a {len(header)}-column table {header} with text cells {wide[:3]}"


def test_the_rule_can_fail():
    wide = "| a | b | c | d | e | f | g |\n| --- | --- | --- | --- | --- | --- | --- |\n| x | y | $z$ | 1 | 2 | 3 | 4 |\n"
    [table] = tables(wide)
    assert len(table[0]) > MAX_COLUMNS and len(visible("$(0.5000,\\ 0.4000)$")) > SHORT
    assert visible(r"[x](y.md) $\operatorname{diag}\left(a\right)$") == "x diag(a)"
