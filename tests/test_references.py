"""Review 4.9: references carry links. Every item of every page's References list links to the work
(arXiv, DOI, the proceedings, the repository or the framework's documentation), and every arXiv
identifier or DOI written in a page's prose is a link."""

import re
from pathlib import Path

import pytest

from derive.summary.cell import reference_md

SITE = Path(__file__).resolve().parents[1] / "site"
PAGES = sorted(p for p in SITE.rglob("*.md"))


def prose(text: str) -> str:
    """The page without code blocks and inline code (identifiers there are not citations)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


def references(text: str) -> list[str]:
    match = re.search(r"^## References\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    return [] if not match else [line for line in match.group(1).splitlines() if line.startswith("- ")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(SITE)))
def test_every_reference_and_identifier_is_linked(page):
    text = page.read_text(encoding="utf-8")
    for item in references(text):
        assert re.search(r"\]\(https?://|<https?://", item), f"{page.name}: unlinked reference {item!r}"
    body = prose(text)
    for ident in re.finditer(r"(arXiv:\d{4}\.\d{4,5}|doi:10\.\d{4,9}/\S+)", body):
        before = body[max(0, ident.start() - 1)]
        assert before == "[", f"{page.name}: {ident.group(0)} is not a link"


def test_pages_have_references_to_check():
    assert sum(bool(references(p.read_text(encoding="utf-8"))) for p in PAGES) >= 40


@pytest.mark.parametrize("text, link", [
    ("Le (2015), T, arXiv:1504.00941", "https://arxiv.org/abs/1504.00941"),
    ("S & P (1997), T, doi:10.1109/78.650093", "https://doi.org/10.1109/78.650093"),
    ("asappresearch/sru sru/modules.py SRUCell", "https://github.com/asappresearch/sru"),
    ("PyTorch torch.nn.GRU(num_layers=3)", "https://pytorch.org/docs/stable/generated/torch.nn.GRU.html"),
    ("Keras GRU(reset_after=False)", "https://keras.io/api/layers/recurrent_layers/gru/"),
    ("J (2015), T, ICML, https://proceedings.mlr.press/v37/jozefowicz15.html", "<https://proceedings.mlr.press/v37/jozefowicz15.html>"),
])
def test_reference_links(text, link):
    assert link in reference_md(text)
