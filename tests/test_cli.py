"""The derive command as a user runs it."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from derive import builtin_names

ROOT = Path(__file__).resolve().parents[1]


def derive(*args, cwd=ROOT):
    env = dict(os.environ, PYTHONHASHSEED="random")
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, cwd=cwd,
                          env=env)


#: the tests that read ``derive list``: on one worker, so it runs once
LIST_GROUP = pytest.mark.xdist_group("list")


@functools.lru_cache(maxsize=1)
def listing() -> str:
    """``derive list``'s output, run once per test process (three tests read it)."""
    proc = derive("list")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_params_prints_the_number_first():
    proc = derive("params", "lstm", "--input", "10", "--hidden", "20", "--layers", "2", "--bidirectional")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "15040"
    assert "4*H*(H + I + 2)" in proc.stdout and "4*H*(3*H + 2)" in proc.stdout


@pytest.mark.parametrize("args,expected", [
    (["lstm", "--convention", "keras"], 2480), (["gru", "--convention", "keras"], 1920),
    (["gru_cho", "--convention", "keras"], 1860), (["rnn_tanh", "--convention", "keras"], 620),
    (["rnn_tanh"], 640), (["lstm", "--proj", "5"], 4 * 20 * (10 + 5 + 2) + 5 * 20),
    (["lstm", "--no-bias"], 4 * 20 * 30),
])
def test_params_conventions(args, expected):
    proc = derive("params", *args, "--input", "10", "--hidden", "20")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout.splitlines()[0]) == expected


@pytest.mark.parametrize("args,words", [
    (["params", "gru", "--input", "10", "--hidden", "20", "--proj", "5"], "has no projection"),
    (["params", "lstm", "--input", "10", "--hidden", "4", "--proj", "5"], "must be smaller"),
    (["params", "lstm", "--input", "0", "--hidden", "4"], "--input must be a positive integer"),
    (["params", "lstm", "--input", "ten", "--hidden", "4"], "invalid int value"),
    (["show", "nosuchcell"], "unknown cell 'nosuchcell'"),
    (["show", "/nonexistent/x.toml"], "cannot read"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_with_one_error_line(args, words):
    proc = derive(*args)
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if "error:" in l]
    assert len(errors) == 1 and words in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_lstm_prints_the_textbook_recurrences():
    proc = derive("show", "lstm")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "dc_t = dh_t ⊙ o_t ⊙ (1 - tanh²(c_t)) + dc_{t+1} ⊙ f_{t+1}" in out
    assert "da_{f,t} = df_t ⊙ f_t ⊙ (1 - f_t)" in out
    assert "dL/dW_{xf} = sum_t da_{f,t} x_t^T" in out
    assert "dc_t/dc_{t-1} = diag(f_t)" in out
    assert "pytorch  (double bias): 4*H*(H + I + 2)" in out


def test_show_latex_and_json():
    latex = derive("show", "gru", "--latex").stdout
    assert r"\delta h_t &= \delta y_t + W_{hr}^\top \delta a_{r,t+1}" in latex
    assert latex.count(r"\begin{align*}") == latex.count(r"\end{align*}") >= 5
    data = json.loads(derive("show", "gru", "--json").stdout)
    assert {a["lhs"]["text"] for a in data["adjoints"]} >= {"dh_t", "da_{n,t}", "dr_t"}


#: ``derive show NAME --json`` for every built-in cell, in one process (the CLI's own entry point per cell)
SHOW_ALL = ("import sys; from derive.cli.command import main\n"
            "for name in sys.argv[1:]:\n"
            "    print(f'=== {name}', flush=True)\n"
            "    assert main(['show', name, '--json']) == 0, name\n")


def test_derivations_are_deterministic_across_processes():
    """Two processes with different hash seeds (PYTHONHASHSEED=random: set and dict orders differ) print
    every cell's derivation byte for byte alike; cells in the opposite order in the second, so no cell's
    output depends on what the process derived before it."""
    names = builtin_names()
    env = dict(os.environ, PYTHONHASHSEED="random")
    runs = [subprocess.run([sys.executable, "-c", SHOW_ALL, *order], capture_output=True, text=True, cwd=ROOT,
                           env=env) for order in (names, names[::-1])]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    first, second = ({block.split("\n", 1)[0]: block for block in r.stdout.split("=== ")[1:]} for r in runs)
    assert sorted(first) == sorted(names) and first == second


def test_a_users_spec_works_like_a_builtin(tmp_path):
    spec = tmp_path / "mgu.toml"
    spec.write_text(r"""name = "mgu"
title = "Minimal gated unit"
input = "x"
states = ["h"]
output = "h"
gates = ["f"]
equations = '''
f_t = \sigma(W_{xf} x_t + W_{hf} h_{t-1} + b_f)
\tilde{h}_t = \tanh(W_{xh} x_t + W_{hh} (f_t \odot h_{t-1}) + b_h)
h_t = (1 - f_t) \odot h_{t-1} + f_t \odot \tilde{h}_t
'''
""")
    proc = derive("show", str(spec))
    assert proc.returncode == 0, proc.stderr
    assert "dh~_t = dh_t ⊙ f_t" in proc.stdout
    assert int(derive("params", str(spec), "--input", "3", "--hidden", "4", "--convention", "single")
               .stdout.splitlines()[0]) == 2 * 4 * (3 + 4 + 1)


@LIST_GROUP
def test_list_shows_cells_and_activations():
    out = listing()
    for name in builtin_names():
        assert name in out
    assert "sigmoid" in out and "relu" in out


def test_build_refuses_to_overwrite_a_file_it_did_not_generate(tmp_path):
    import shutil

    for part in ("templates", "mkdocs.yml", "derive/docs/data"):  # the committed measurements: not measured again
        src = ROOT / part
        (tmp_path / part).parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / part)
    cache = ROOT / "build" / "derive-cache.json"  # when current (CI builds first), --check compares with it
    if cache.is_file():
        (tmp_path / "build").mkdir()
        shutil.copy(cache, tmp_path / "build" / cache.name)
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.md").write_text("my own notes\n")
    proc = derive("build", "--no-html", "--root", str(tmp_path))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert (tmp_path / "site" / "index.md").read_text() == "my own notes\n"
    assert not (tmp_path / "nav.yml").exists()  # refused before writing anything
    stale = derive("build", "--check", "--root", str(tmp_path))
    assert stale.returncode == 1 and "stale: site/cells/lstm.md" in stale.stderr
    assert "stale: site/index.md" in stale.stderr


def test_show_an_activation_prints_properties_and_kernels():
    proc = derive("show", "swish")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "minimum" in out and "-0.278465 at -1.27846" in out
    assert "def swish_d(x, beta=1.0):" in out and "_sigmoid(" in out


@LIST_GROUP
def test_list_shows_every_spec_function_and_constant():
    from derive.symbolic import functions

    out = listing()
    section = out.split("Functions a spec's equations may call")[1]
    for f in functions.FUNCTIONS:
        row = next(line for line in section.splitlines() if line.strip().startswith(f.commands[0]))
        assert str(f.arity) in row and f.summary in row, row
    assert all(c in section for c in functions.BUILTIN_CONSTANTS)
    data = json.loads(derive("list", "--json").stdout)
    assert [f["commands"] for f in data["functions"]] == [", ".join(f.commands) for f in functions.FUNCTIONS]
    from derive.symbolic import model as model_spec
    assert [m["name"] for m in data["models"]] == model_spec.builtin_names()
    row = next(line for line in out.split("Models (")[1].splitlines() if line.strip().startswith("seq2seq_bahdanau"))
    assert "Seq2seq with Bahdanau attention" in row and "gru encoder, gru decoder, bahdanau attention" in row


@LIST_GROUP
def test_list_shows_activation_properties():
    out = listing()
    row = next(line for line in out.splitlines() if line.strip().startswith("hardsigmoid "))
    assert "[0, 1]" in row and "hard / hard" in row and row.rstrip().endswith("yes")


def test_verify_activations_prints_the_ulp_table():
    proc = derive("verify", "activations", "sigmoid", "relu", "--no-torch")
    assert proc.returncode == 0, proc.stderr
    assert "8/8 kernels within their bound" in proc.stdout
    bad = derive("verify", "activations", "relu6")
    assert bad.returncode == 2 and "unknown activation 'relu6'" in bad.stderr


def test_bench_activations_runs_side_by_side():
    proc = derive("bench", "activations", "tanh", "--size", "1000", "--repeat", "1")
    assert proc.returncode == 0, proc.stderr
    assert "tanh" in proc.stdout and "naive f" in proc.stdout


def test_kernels_check_and_refusal(tmp_path):
    """Per file, so for one cell: the check passing, the refusal of a foreign file, a missing module reported
    stale, and the module written. (That every committed kernel is what the specs give: tests/test_site.py's
    full build, which must leave derive/kernels byte for byte as it was.)"""
    assert derive("kernels", "rnn_tanh", "--check").returncode == 0
    target = tmp_path / "derive" / "kernels" / "rnn_tanh.py"
    target.parent.mkdir(parents=True)
    target.write_text("# my own kernels\n")
    proc = derive("kernels", "rnn_tanh", "--root", str(tmp_path))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert target.read_text() == "# my own kernels\n"
    target.unlink()
    assert derive("kernels", "rnn_tanh", "--check", "--root", str(tmp_path)).returncode == 1
    assert derive("kernels", "rnn_tanh", "--root", str(tmp_path)).returncode == 0
    assert target.read_bytes() == (ROOT / "derive" / "kernels" / "rnn_tanh.py").read_bytes()


def test_show_an_activation_as_latex_and_json():
    latex = derive("show", "leaky_relu", "--latex").stdout
    assert r"a x & \text{if } x \leq 0" in latex and "f'(x)" in latex  # x on the left of its condition
    data = json.loads(derive("show", "gelu", "--json").stdout)
    assert data["properties"]["smoothness"] == "C^inf" and "def gelu_d" in data["code"]
    assert data["parameters"] == [] and data["definition"]["text"].startswith("x*(erf(")


def test_kernels_check_names_a_stale_kernel_and_refuses_foreign_files(tmp_path):
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(ROOT / "derive" / "kernels", root / "derive" / "kernels")
    assert derive("kernels", "gru", "--check", "--root", str(root)).returncode == 0  # (the whole check: above)
    target = root / "derive" / "kernels" / "gru.py"
    target.write_text(target.read_text().replace("np.tanh(", "np.sinh(", 1))
    proc = derive("kernels", "gru", "lstm", "--check", "--root", str(root))
    assert proc.returncode == 1 and "stale: derive/kernels/gru.py" in proc.stderr and "lstm.py" not in proc.stderr
    proc = derive("kernels", "gru", "--root", str(root))
    assert proc.returncode == 0 and target.read_text() == (ROOT / "derive" / "kernels" / "gru.py").read_text()
    target.write_text("# my own file\n")
    proc = derive("kernels", "gru", "--root", str(root))
    assert proc.returncode == 2 and "refusing to overwrite" in proc.stderr
    assert target.read_text() == "# my own file\n"


def test_kernels_from_a_user_spec_go_where_the_user_says(tmp_path):
    spec_path = tmp_path / "mine.toml"
    spec_path.write_text((ROOT / "derive" / "cells" / "gru_cho.toml").read_text().replace(
        'name = "gru_cho"', 'name = "mine"'))
    proc = derive("kernels", str(spec_path))
    assert proc.returncode == 2 and "--out" in proc.stderr
    out = tmp_path / "out"
    proc = derive("kernels", str(spec_path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = (out / "mine.py").read_text()
    assert text.startswith("# generated by `derive build`") and "def backward(" in text
    assert derive("kernels", str(spec_path), "--out", str(out), "--check").returncode == 0


def test_bench_a_cell_prints_ratios_and_gemm_fraction():
    proc = derive("bench", "rnn_tanh", "gru", "--repeat", "1", "--threads", "1", "--shape", "5,2,3,4")
    assert proc.returncode == 0, proc.stderr
    assert "GEMM %" in proc.stdout and proc.stdout.count("5, 2, 3, 4") == 4
    proc = derive("bench", "lstm", "--repeat", "1", "--threads", "1", "--shape", "5,2,3,4")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()[1:]
    at = header.index(" hand ") + 1  # the hand-fused NumPy LSTM's column (the table is aligned)
    assert len(rows) == 2 and all(float(r[at:].split()[0]) > 0 for r in rows)
    assert all(float(r[header.index("vs hand"):].split()[0]) > 0 for r in rows)
    assert derive("bench", "nosuchcell").returncode == 2
    assert derive("bench", "lstm", "--shape", "1,2").returncode == 2
