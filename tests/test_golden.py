"""Golden kernels: user specs that take paths no built-in cell takes (an output that is not a
state, an activation without an output form, a product outside any activation, a late
product). Their generated kernels are committed under tests/golden/kernels and must stay
byte-identical; a deliberate change regenerates them in a commit of its own that says why:

    cd tests/golden && derive kernels specs/*.toml --out kernels
"""

from pathlib import Path

import pytest

from derive.cli.command import main

GOLDEN = Path(__file__).parent / "golden"
SPECS = sorted((GOLDEN / "specs").glob("*.toml"))


@pytest.mark.parametrize("spec", SPECS, ids=[s.stem for s in SPECS])
def test_golden_kernel_is_byte_identical(spec, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(GOLDEN)  # the header names the spec by its file name, as the command above does
    assert main(["kernels", f"specs/{spec.name}", "--out", str(tmp_path)]) == 0
    made = (tmp_path / f"{spec.stem}.py").read_bytes()
    assert made == (GOLDEN / "kernels" / f"{spec.stem}.py").read_bytes(), \
        f"{spec.stem}: the generated kernel changed; regenerate the golden files if that is intended"


def test_every_golden_spec_has_its_kernel_and_no_other():
    assert sorted(p.stem for p in (GOLDEN / "kernels").glob("*.py")) == [s.stem for s in SPECS]
