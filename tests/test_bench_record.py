"""``derive bench --peers ... --site``: the measurements become committed data (``bench.record``), which
``derive build`` renders on the Performance page (``docs.performance``) without timing anything."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from derive.bench import record
from derive.docs import performance
from derive.errors import DeriveError

ROWS = [{"cell": "lstm", "size": [200, 1, 32, 32], "dtype": "float32", "first": 0.5,
         "times": {"numpy": 3.4e-3, "compiled": 5.8e-4, "auto": 5.8e-4, "JAX": 5.9e-4, "torch eager": 3.9e-2,
                   "torch.nn": 7.7e-4}},
        {"cell": "lstm", "size": [100, 64, 256, 256], "dtype": "float64", "first": None,
         "times": {"numpy": 0.32, "auto": 0.32, "JAX": 0.44, "torch eager": 2.459, "torch.nn": 0.469}}]
SETUP = {"threads": 1, "versions": {"numpy": "2", "numba": "0.68"}}


def test_write_is_byte_identical_and_rounded(tmp_path):
    path = tmp_path / "performance.json"
    record.write(ROWS, SETUP, 5, path)
    first = path.read_bytes()
    record.write(ROWS, SETUP, 5, path)
    assert path.read_bytes() == first
    d = json.loads(first)
    assert d["generated"] == record.MARK and d["rows"][0]["ms"]["compiled"] == 0.58
    assert d["rows"][1]["first_s"] is None and d["rows"][1]["ms"]["torch eager"] == 2459.0


@pytest.mark.parametrize("text", ['{"rows": []}', "not json", "[1, 2]"])
def test_write_leaves_a_foreign_file_alone(tmp_path, text):
    path = tmp_path / "performance.json"
    path.write_text(text)
    with pytest.raises(DeriveError, match="not written by derive bench --site"):
        record.write(ROWS, SETUP, 5, path)
    assert path.read_text() == text


def test_page_ratios(tmp_path, monkeypatch):
    path = tmp_path / "performance.json"
    record.write(ROWS, SETUP, 5, path)
    monkeypatch.setattr(record, "PATH", path)
    ctx = performance.context()
    small, large = ctx["rows"]
    assert small["fastest"] == "JAX" and small["ratio"] == pytest.approx(0.58 / 0.59)
    assert large["fastest"] == "JAX" and large["ratio"] == pytest.approx(320 / 440)
    assert large["ms"]["compiled"] == "—" and ctx["wins"] == 2 and ctx["cases"] == 2
    assert ctx["eager_worst"] == pytest.approx(320 / 2459)  # the worst case against the eager loop


def test_committed_measurements_render_on_the_page():
    d = record.load()
    assert d is not None and d["generated"] == record.MARK
    page = open("site/performance.md", encoding="utf-8").read()
    assert d["command"] in page
    for r in d["rows"]:
        assert "auto" in r["ms"] and any(k in r["ms"] for k in ("JAX", "torch eager", "torch.nn"))
        assert f"| {', '.join(map(str, r['size']))} | {r['dtype']} |" in page


def test_site_needs_peers():
    out = subprocess.run([sys.executable, "-m", "derive", "bench", "lstm", "--site"], capture_output=True, text=True)
    assert out.returncode == 2 and "use it with --peers" in out.stderr and "Traceback" not in out.stderr


def test_the_readme_quotes_the_committed_table():
    readme = open("README.md", encoding="utf-8").read()
    assert performance.readme_table() in readme
    d = record.load()
    assert d["command"] in readme
