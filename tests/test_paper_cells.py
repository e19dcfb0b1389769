"""Cells of the literature, written as spec files from their papers, against independent
PyTorch autograd references (issue 17).

``tests/paper_specs/<cell>.toml`` is each cell as its paper states it (a user's spec, written
without looking at derive's output); ``tests/paper_cells.py`` is each cell's PyTorch
reference, written from the same equations. ``ROWS`` is the table, one row per spec:

* ``matches``: ``derive.kernel(spec)`` agrees with the reference over T = 4 steps in float64,
  outputs, final states and every gradient (parameters, x, initial states) of a random loss
  sum(w y) + sum(v_s s_T), to 1e-10 relative; its parameter count is the paper's formula.
* ``refused``: derive refuses the spec today with a ``DeriveError`` (never another exception)
  whose message contains ``message``; ``needs`` names what the spec language lacks. When
  the language grows, the row's status becomes ``matches`` (one word) and the full
  comparison runs.
* ``mismatch``: derive accepts the spec but disagrees with the reference (none today).

A row with ``rename`` runs the same spec with a name changed (e.g. Greff's block output y
renamed h): where only a name stops derive, the cell's mathematics is checked today; where
nothing does, the renamed cell must give the same numbers (derive's own names yield to the
spec's, so greff_v's state y and its renamed h both match).

The references are themselves checked against independent code where the forms coincide
(``torch.nn.LSTM``, ``torch.nn.GRU``, ``torch.nn.RNN``, ``F.layer_norm``) and their
parameter counts against the table of ``reference-cells.md``.
"""

from __future__ import annotations

import re
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

torch = pytest.importorskip("torch")

import derive  # noqa: E402

import paper_cells as pc  # noqa: E402  (tests/ is on sys.path: pytest prepends it)

SPECS = Path(__file__).parent / "paper_specs"
BUILTIN = Path(derive.__file__).parent / "cells"
#: the built-in cells of the first wave, witnessed by torch.nn modules and textbook forms in
#: test_kernels.py; every other built-in cell came from a paper and has a row here
FIRST_WAVE = {"rnn_tanh", "rnn_relu", "lstm", "lstm_peephole", "lstm_cifg", "lstm_proj", "gru", "gru_cho"}
T, B = 4, 3
RTOL = 1e-10


def row(cell, status, *, needs=None, message=None, rename=None):
    ident = cell + ("" if not rename else "[" + ",".join(f"{a}->{b}" for a, b in rename.items()) + "]")
    return pytest.param(cell, status, needs, message, rename or {}, id=ident)


_SAME = "size relation I = H (a weightless x_t in an H-vector), declared as sizes = { x = \"H\" }"
_TAP = "input tap x_{t-1} (window-2 convolution), zero before the first step"

#: the to-do list: cell, status (matches | refused | mismatch), what the language needs
ROWS = [
    row("greff_v", "matches"),
    row("greff_v", "matches", rename={"y": "h"}),  # the same cell under another name: the same numbers
    row("greff_nig", "matches"),
    row("greff_nfg", "matches"),
    row("greff_nog", "matches"),
    row("greff_niaf", "matches"),
    row("greff_noaf", "matches"),
    row("greff_np", "matches"),
    row("greff_cifg", "matches"),
    row("greff_fgr", "matches"),
    row("mut1", "matches"),
    row("mut2", "matches"),
    row("mut3", "matches"),
    row("mgu", "matches"),
    row("sru", "matches"),
    row("sru_proj", "matches"),
    row("qrnn_f_w1", "matches"),
    row("qrnn_fo_w1", "matches"),
    row("qrnn_ifo_w1", "matches"),
    row("qrnn_f_w2", "matches", needs=_TAP, message="only states may be read at t-1"),
    row("qrnn_fo_w2", "matches", needs=_TAP, message="only states may be read at t-1"),
    row("qrnn_ifo_w2", "matches", needs=_TAP, message="only states may be read at t-1"),
    row("indrnn", "matches"),
    row("clockwork", "matches", needs="time schedule: per-module periods, update mask m_t, block-triangular W_H",
        message="unknown key 'clock'"),
    row("mingru", "matches"),
    row("minlstm", "matches"),
    row("slstm", "matches", needs="two-argument \\max, \\exp, \\log (stabiliser state m)",
        message="unexpected character ','"),
    row("gru_ds", "matches"),
    row("gru1", "matches"),
    row("gru2", "matches"),
    row("gru3", "matches"),
    row("ugrnn", "matches"),
    row("plusrnn", "matches"),
    row("janet", "matches"),
    row("janet_one", "matches"),
    row("ln_lstm", "matches", needs="layer normalisation over a vector (dense Jacobian); a 4H-wide stack split "
        "into gates (\\begin{pmatrix}); 4H sizes", message="unexpected '\\\\begin'"),
    row("lstmp", "matches"),
]


# ---------------------------------------------------------------- helpers


#: cell -> {reference parameter: the spec's parameters that are its blocks along the first axis, in
#: order}. The built-in LN-LSTM writes each H-block of the paper's 4H-wide W_h, W_x, alpha_1, beta_1,
#: alpha_2, beta_2 and b (gates f, i, o, g) as a parameter of its own; the reference keeps the paper's
#: 4H-wide ones (its gate order f, i, o, g), so a block of the reference's parameter is the spec's.
SPLIT = {"ln_lstm": {
    "W_h": ("W_hf", "W_hi", "W_ho", "W_hg"), "W_x": ("W_xf", "W_xi", "W_xo", "W_xg"),
    "alpha_1": ("a_1f", "a_1i", "a_1o", "a_1g"), "beta_1": ("b_1f", "b_1i", "b_1o", "b_1g"),
    "alpha_2": ("a_2f", "a_2i", "a_2o", "a_2g"), "beta_2": ("b_2f", "b_2i", "b_2o", "b_2g"),
    "b": ("b_f", "b_i", "b_o", "b_g"), "alpha_3": ("a_3",), "beta_3": ("b_3",)}}


def block_shape(shape: str, k: int) -> str:
    """``"4H x H"`` split into k = 4 blocks along the first axis: ``"H x H"``."""
    first, *rest = shape.split(" x ")
    n = (int(first[:-1]) if len(first) > 1 else 1) // k
    return " x ".join([f"{n if n > 1 else ''}{first[-1]}", *rest])


def spec_params(cell: str, ref: pc.Cell, keymap: dict) -> dict:
    """The kernel's parameters (name -> shape) the reference's parameters give."""
    split = SPLIT.get(cell, {})
    out = {}
    for n, shape in ref.params.items():
        for part in split.get(n, (keymap.get(n, n),)):
            out[part] = block_shape(shape, len(split[n])) if n in split else shape
    return out


def _key(name: str) -> str:
    """A spec name's key: W_{xh} -> W_xh."""
    return re.sub(r"[{}]", "", name)


def rename_spec(text: str, old: str, new: str) -> str:
    """Rename the spec name ``old`` (a state such as y, or a bare parameter such as W): every
    ``old_t``, ``old_{t-1}``, bare ``old`` and ``"old"``; never ``old_z`` or a longer name."""
    pat = re.compile(r"(?<![A-Za-z\\])" + re.escape(old) + r"(?=_t(?![A-Za-z0-9])|_\{t[-+}]|[^_A-Za-z0-9{]|$)")
    return pat.sub(lambda m: new, text)


@lru_cache(maxsize=None)
def spec_path(cell: str, rename: tuple) -> Path:
    path = SPECS / f"{cell}.toml" if (SPECS / f"{cell}.toml").exists() else BUILTIN / f"{cell}.toml"
    if not rename:
        return path
    text = path.read_text()
    for old, new in rename:
        text = rename_spec(text, old, new)
    text = text.replace(f'name = "{cell}"', f'name = "{cell}_renamed"', 1)
    out = Path(_tmpdir().name) / f"{cell}_renamed.toml"
    out.write_text(text)
    return out


@lru_cache(maxsize=1)
def _tmpdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="paper_specs_")


@pytest.fixture(scope="module", autouse=True)
def _forget_kernels():
    """The kernels and renamed specs live for this module only."""
    yield
    kernel.cache_clear()
    spec_path.cache_clear()
    _tmpdir().cleanup()
    _tmpdir.cache_clear()


@lru_cache(maxsize=None)
def kernel(cell: str, rename: tuple):
    """derive.kernel(spec) once per module: the kernel, or the exception it raised. A built-in
    cell's kernel is its committed module (derive/kernels/<cell>.py), what users import."""
    try:
        if cell in derive.builtin_names() and not rename:
            return derive.kernel(cell)
        return derive.kernel(str(spec_path(cell, rename)))
    except Exception as e:  # noqa: BLE001 - recorded and asserted on by the caller
        return e


def sizes(cell: pc.Cell, I=3, H=4):
    if cell.same_size:
        I = H
    P = H - 2 if "P" in cell.states.values() or cell.output[1] == "P" else None
    return I, H, P


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300)) if np.linalg.norm(b) else \
        float(np.linalg.norm(a))


def compare(cell: pc.Cell, k, keymap: dict, seed=0, split=None):
    """Run the kernel and the reference on one random problem; {what: relative error}. ``split``:
    reference parameter -> the spec's parameters that are its blocks (``SPLIT``)."""
    split = split or {}
    I, H, P = sizes(cell)
    dims = {"H": H, "P": P}
    gen = torch.Generator().manual_seed(seed)
    p = pc.random_params(cell, I, H, P, gen=gen)
    x = torch.randn(T, B, I, generator=gen, dtype=torch.float64)
    s0 = {}
    for s, d in cell.states.items():
        v0 = torch.randn(B, dims[d], generator=gen, dtype=torch.float64)
        s0[s] = v0.abs() + 0.5 if s in cell.positive else v0
    w = torch.randn(T, B, dims[cell.output[1]], generator=gen, dtype=torch.float64)
    v = {s: torch.randn(B, dims[d], generator=gen, dtype=torch.float64) for s, d in cell.states.items()}

    # derive's kernel (NumPy), under the spec's names
    kp = {}
    for n, a in p.items():
        parts = split.get(n, (keymap.get(n, n),))
        kp.update(zip(parts, (b.copy() for b in np.split(a.numpy(), len(parts)))))
    y, sT, cache = k.forward(x.numpy().copy(), {keymap.get(s, s): a.numpy().copy() for s, a in s0.items()}, kp)
    g = k.backward(w.numpy().copy(), {keymap.get(s, s): a.numpy().copy() for s, a in v.items()}, cache, kp)

    # the reference, PyTorch autograd
    leaves = {"x": x.clone().requires_grad_()}
    leaves.update({("state", s): a.clone().requires_grad_() for s, a in s0.items()})
    leaves.update({("param", n): a.clone().requires_grad_() for n, a in p.items()})
    y_ref, sT_ref = pc.unroll(cell, {n: leaves[("param", n)] for n in p}, leaves["x"],
                              {s: leaves[("state", s)] for s in s0})
    L = (w * y_ref).sum() + sum((v[s] * sT_ref[s]).sum() for s in cell.states)
    grads = dict(zip(leaves, torch.autograd.grad(L, list(leaves.values()))))

    err = {"y": _rel(y, y_ref.detach())}
    for s in cell.states:
        err[f"final {s}"] = _rel(sT[keymap.get(s, s)], sT_ref[s].detach())
    err["d x"] = _rel(g["x"], grads["x"])
    for s in cell.states:
        err[f"d {s}_0"] = _rel(g[keymap.get(s, s)], grads[("state", s)])
    for n in p:  # a split parameter's gradient is its blocks' gradients stacked
        parts = split.get(n, (keymap.get(n, n),))
        err[f"d {n}"] = _rel(np.concatenate([g[part] for part in parts]), grads[("param", n)])
    assert set(g) == {"x", *(keymap.get(s, s) for s in cell.states),
                      *(part for n in p for part in split.get(n, (keymap.get(n, n),)))}, sorted(g)
    return err


def kernel_count(k, I, H, P):
    """The kernel's parameters: every entry, but those a clock fixes at zero (below the blocks of a
    block-triangular matrix: module i reads modules j >= i, Koutnik et al. 2014)."""
    masked = getattr(k, "CLOCK", {}).get("block_triangular", [])
    g = getattr(k, "CLOCK", {}).get("modules", 1)
    fixed = {n: sum(1 for r in range(H) for c in range(H) if r // (H // g) > c // (H // g)) for n in masked}
    return sum(int(a.size) - fixed.get(n, 0) for n, a in k.init_params(I, H, proj_size=P).items())


# ---------------------------------------------------------------- the table


@pytest.mark.parametrize("cell,status,needs,message,rename", ROWS)
def test_paper_cell(cell, status, needs, message, rename):
    ref = pc.CELLS[cell]
    rename_t = tuple(sorted(rename.items()))
    keymap = {_key(old): _key(new) for old, new in rename.items()}
    k = kernel(cell, rename_t)
    path = spec_path(cell, rename_t)
    if status == "refused":
        assert needs, "a refused row names the feature it needs"
        assert isinstance(k, derive.DeriveError), \
            f"{cell}: expected derive to refuse the spec ({needs}); got {k!r}" + \
            ("; the language grew: set status='matches'" if not isinstance(k, Exception) else "")
        text = str(k)
        assert text.startswith(str(path)), text  # the message names the spec file
        assert "\n" not in text and "Traceback" not in text, text
        assert message in text, f"the refusal changed: {text}"
        return
    if isinstance(k, Exception):
        raise AssertionError(f"{cell}: derive refused or failed on a spec the table says it accepts: "
                             f"{type(k).__name__}: {k}")
    # the kernel has the reference's states, sizes and parameter shapes (under the spec's names)
    assert set(k.STATES) == {keymap.get(s, s) for s in ref.states}
    assert k.STATE_DIMS == {keymap.get(s, s): d for s, d in ref.states.items()}
    assert k.OUTPUT_DIM == ref.output[1]
    assert k.PARAMS == spec_params(cell, ref, keymap)
    # the parameter count is the paper's formula: the kernel's parameters and derive.count
    # (the cell's own convention; a projected cell: see test_count_of_a_projected_spec)
    loaded = derive.load(str(path))
    for I, H in [(3, 4), (5, 8), (8, 4)]:
        I, H, P = sizes(ref, I, H)
        assert kernel_count(k, I, H, P) == ref.count(I, H, P), (I, H, P, ref.count_text)
        if P is None:
            assert derive.count(loaded, input_size=I, hidden=H).total == ref.count(I, H, P), (I, H, ref.count_text)
    err = compare(ref, k, keymap, split=SPLIT.get(cell))
    worst = max(err, key=err.get)
    if status == "matches":
        assert err[worst] <= RTOL, f"{cell}: {worst} differs by {err[worst]:.3g} relative; all: {err}"
    else:
        assert status == "mismatch", status
        assert err[worst] > RTOL, f"{cell} now matches its reference: set status='matches'"


def test_count_of_a_projected_spec():
    """Today derive.count cannot give the single-bias count of a user spec with a P-sized state
    (Sak's LSTMP): without proj it asks for --proj, with proj it wants the pytorch convention,
    whose double bias adds 4H. Documented here; when it works, assert the formula instead."""
    cell = derive.load("lstmp")
    I, H, P = 5, 8, 3
    with pytest.raises(derive.DeriveError, match="give --proj P"):
        derive.count(cell, input_size=I, hidden=H)
    with pytest.raises(derive.DeriveError, match="exists only in the pytorch convention"):
        derive.count(cell, input_size=I, hidden=H, proj=P)
    torch_count = derive.count(cell, input_size=I, hidden=H, proj=P, convention="pytorch").total
    assert torch_count == pc.CELLS["lstmp"].count(I, H, P) + 4 * H  # double bias


def test_every_spec_has_a_row_and_a_reference():
    """Every paper spec and every built-in cell outside the first wave has a row, and a
    built-in cell's row matches (a built-in cell is never refused or wrong)."""
    files = {p.stem for p in SPECS.glob("*.toml")}
    papers = set(derive.builtin_names()) - FIRST_WAVE
    assert not files & set(derive.builtin_names()), "a paper spec shadows a built-in cell"
    rows = {r.values[0] for r in ROWS}
    assert files | papers == rows == set(pc.CELLS)
    assert all(r.values[1] == "matches" for r in ROWS if r.values[0] in papers)


def test_refused_rows_name_their_need():
    """The table reads as the to-do list: every refused row says what it needs."""
    for r in ROWS:
        cell, status, needs, message, rename = r.values
        assert status in ("matches", "refused", "mismatch")
        if status == "refused":  # needs and message may stay on a row that flipped, as history
            assert needs and message, r.id


# ---------------------------------------------------------------- the references themselves


def _data(I, H, seed, T=5, B=3, P=None):
    gen = torch.Generator().manual_seed(seed)
    return gen, torch.randn(T, B, I, generator=gen, dtype=torch.float64)


def _run(name, p, x, s0):
    y, sT = pc.unroll(pc.CELLS[name], p, x, s0)
    return y, sT


def _close(a, b, tol=1e-12):
    assert torch.allclose(a, b, rtol=tol, atol=tol), float((a - b).abs().max())


def _greff_as_torch_lstm(p, I, H, *, forget=None):
    """torch.nn.LSTM (gate rows i|f|g|o, bias_hh = 0) with Greff's weights; ``forget`` overrides f's."""
    m = torch.nn.LSTM(I, H).double()
    W_f, R_f, b_f = forget or (p["W_f"], p["R_f"], p["b_f"])
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.cat([p["W_i"], W_f, p["W_z"], p["W_o"]]))
        m.weight_hh_l0.copy_(torch.cat([p["R_i"], R_f, p["R_z"], p["R_o"]]))
        m.bias_ih_l0.copy_(torch.cat([p["b_i"], b_f, p["b_z"], p["b_o"]]))
        m.bias_hh_l0.zero_()
    return m


def test_greff_np_is_torch_lstm():
    I, H = 3, 4
    gen, x = _data(I, H, 1)
    p = pc.random_params(pc.CELLS["greff_np"], I, H, gen=gen)
    c0, y0 = torch.randn(2, 3, H, generator=gen, dtype=torch.float64)
    y, sT = _run("greff_np", p, x, {"c": c0, "y": y0})
    ty, (th, tc) = _greff_as_torch_lstm(p, I, H)(x, (y0[None], c0[None]))
    _close(y, ty)
    _close(sT["y"], th[0])
    _close(sT["c"], tc[0])


def test_greff_v_without_peepholes_is_np():
    I, H = 3, 4
    gen, x = _data(I, H, 2)
    p = pc.random_params(pc.CELLS["greff_v"], I, H, gen=gen)
    s0 = {"c": torch.randn(3, H, generator=gen, dtype=torch.float64), "y": torch.randn(3, H, generator=gen,
                                                                                        dtype=torch.float64)}
    zero = {**p, **{k: torch.zeros_like(p[k]) for k in ("p_i", "p_f", "p_o")}}
    np_params = {k: v for k, v in p.items() if not k.startswith("p_")}
    _close(_run("greff_v", zero, x, s0)[0], _run("greff_np", np_params, x, s0)[0])
    assert not torch.allclose(_run("greff_v", p, x, s0)[0], _run("greff_np", np_params, x, s0)[0])


def test_greff_cifg_without_peepholes_is_torch_lstm_with_coupled_gates():
    """sigma(-a) = 1 - sigma(a): an LSTM whose forget weights are minus the input gate's is CIFG."""
    I, H = 3, 4
    gen, x = _data(I, H, 3)
    p = pc.random_params(pc.CELLS["greff_cifg"], I, H, gen=gen)
    p = {**p, "p_i": torch.zeros(H, dtype=torch.float64), "p_o": torch.zeros(H, dtype=torch.float64)}
    c0, y0 = torch.randn(2, 3, H, generator=gen, dtype=torch.float64)
    y, sT = _run("greff_cifg", p, x, {"c": c0, "y": y0})
    m = _greff_as_torch_lstm(p, I, H, forget=(-p["W_i"], -p["R_i"], -p["b_i"]))
    ty, (th, tc) = m(x, (y0[None], c0[None]))
    _close(y, ty)
    _close(sT["c"], tc[0])


def test_greff_variants_are_v_with_one_change():
    """NIG/NFG/NOG: V with the gate saturated at 1 (bias 800: sigma = 1 exactly in float64);
    NIAF/NOAF against their own tanh replaced; FGR with R_ab = 0 is V."""
    I, H = 3, 4
    gen, x = _data(I, H, 4)
    pv = pc.random_params(pc.CELLS["greff_v"], I, H, gen=gen)
    s0 = {"c": torch.randn(3, H, generator=gen, dtype=torch.float64), "y": torch.randn(3, H, generator=gen,
                                                                                        dtype=torch.float64)}
    yv = _run("greff_v", pv, x, s0)[0]
    for name, gate in (("greff_nig", "i"), ("greff_nfg", "f"), ("greff_nog", "o")):
        sat = {**pv, f"b_{gate}": torch.full((H,), 800.0, dtype=torch.float64)}
        sat = {**sat, f"W_{gate}": 0 * pv[f"W_{gate}"], f"R_{gate}": 0 * pv[f"R_{gate}"],
               f"p_{gate}": 0 * pv[f"p_{gate}"]}
        p = {k: v for k, v in pv.items() if k in pc.CELLS[name].params}
        _close(_run(name, p, x, s0)[0], _run("greff_v", sat, x, s0)[0])
    fgr = {**pv, **{f"R_{a}{b}": torch.zeros(H, H, dtype=torch.float64) for a in "ifo" for b in "ifo"}}
    s0f = {**s0, **{g: torch.rand(3, H, generator=gen, dtype=torch.float64) for g in "ifo"}}
    _close(_run("greff_fgr", fgr, x, s0f)[0], yv)
    # NOAF: y = c o; NIAF: z linear. Check one step by hand against the paper's lines.
    p = pv
    z_bar = pc.lin(p["W_z"], x[0]) + pc.lin(p["R_z"], s0["y"]) + p["b_z"]
    i = torch.sigmoid(pc.lin(p["W_i"], x[0]) + pc.lin(p["R_i"], s0["y"]) + p["p_i"] * s0["c"] + p["b_i"])
    f = torch.sigmoid(pc.lin(p["W_f"], x[0]) + pc.lin(p["R_f"], s0["y"]) + p["p_f"] * s0["c"] + p["b_f"])
    for name, g, h in (("greff_niaf", pc.ident, torch.tanh), ("greff_noaf", torch.tanh, pc.ident)):
        c = g(z_bar) * i + s0["c"] * f
        o = torch.sigmoid(pc.lin(p["W_o"], x[0]) + pc.lin(p["R_o"], s0["y"]) + p["p_o"] * c + p["b_o"])
        _close(pc.CELLS[name].step(p, x[0], s0)[0], h(c) * o)


def _gru_module(I, H, W, U, b):
    """torch.nn.GRU (rows r|z|n) from per-gate W, U, b (bias_hh = 0)."""
    m = torch.nn.GRU(I, H).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.cat([W["r"], W["z"], W["n"]]))
        m.weight_hh_l0.copy_(torch.cat([U["r"], U["z"], U["n"]]))
        m.bias_ih_l0.copy_(torch.cat([b["r"], b["z"], b["n"]]))
        m.bias_hh_l0.zero_()
    return m


def test_gru_ds_is_torch_gru_where_the_forms_coincide():
    """With U_h diagonal, r (U_h h) = U_h (r h), so reset before and after the matmul agree;
    PyTorch's z is Dey & Salem's 1 - z (negated z weights)."""
    I, H = 3, 4
    gen, x = _data(I, H, 5)
    p = pc.random_params(pc.CELLS["gru_ds"], I, H, gen=gen)
    p["U_h"] = torch.diag(torch.randn(H, generator=gen, dtype=torch.float64))
    h0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    y, sT = _run("gru_ds", p, x, {"h": h0})
    m = _gru_module(I, H, {"r": p["W_r"], "z": -p["W_z"], "n": p["W_h"]}, {"r": p["U_r"], "z": -p["U_z"], "n": p["U_h"]},
                    {"r": p["b_r"], "z": -p["b_z"], "n": p["b_h"]})
    ty, th = m(x, h0[None])
    _close(y, ty)
    _close(sT["h"], th[0])


def test_gru_variants_are_gru_ds_with_parts_removed():
    I, H = 3, 4
    gen, x = _data(I, H, 6)
    p = pc.random_params(pc.CELLS["gru_ds"], I, H, gen=gen)
    h0 = {"h": torch.randn(3, H, generator=gen, dtype=torch.float64)}
    zero = lambda *keys: {**p, **{k: torch.zeros_like(p[k]) for k in keys}}  # noqa: E731
    for name, removed in (("gru1", ("W_z", "W_r")), ("gru2", ("W_z", "W_r", "b_z", "b_r")),
                          ("gru3", ("W_z", "W_r", "U_z", "U_r"))):
        own = {k: v for k, v in p.items() if k in pc.CELLS[name].params}
        _close(_run(name, own, x, h0)[0], _run("gru_ds", zero(*removed), x, h0)[0])


def test_mgu_is_gru_ds_with_one_gate():
    I, H = 3, 4
    gen, x = _data(I, H, 7)
    p = pc.random_params(pc.CELLS["mgu"], I, H, gen=gen)
    h0 = {"h": torch.randn(3, H, generator=gen, dtype=torch.float64)}
    g = {"W_z": p["W_xf"], "U_z": p["W_hf"], "b_z": p["b_f"], "W_r": p["W_xf"], "U_r": p["W_hf"], "b_r": p["b_f"],
         "W_h": p["W_xh"], "U_h": p["W_hh"], "b_h": p["b_h"]}
    _close(_run("mgu", p, x, h0)[0], _run("gru_ds", g, x, h0)[0])


def test_ugrnn_is_torch_gru_without_reset():
    """A reset bias of 800 makes r = 1 exactly; then PyTorch's GRU is h = (1 - z) n + z h: UGRNN, z = g."""
    I, H = 3, 4
    gen, x = _data(I, H, 8)
    p = pc.random_params(pc.CELLS["ugrnn"], I, H, gen=gen)
    h0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    zero = torch.zeros(H, I, dtype=torch.float64)
    m = _gru_module(I, H, {"r": zero, "z": p["W_gx"], "n": p["W_cx"]},
                    {"r": torch.zeros(H, H, dtype=torch.float64), "z": p["W_gh"], "n": p["W_ch"]},
                    {"r": torch.full((H,), 800.0, dtype=torch.float64), "z": p["b_g"], "n": p["b_c"]})
    ty, th = m(x, h0[None])
    y, sT = _run("ugrnn", p, x, {"h": h0})
    _close(y, ty)
    _close(sT["h"], th[0])


def test_indrnn_is_torch_relu_rnn_with_a_diagonal_recurrence():
    I, H = 3, 4
    gen, x = _data(I, H, 9)
    p = pc.random_params(pc.CELLS["indrnn"], I, H, gen=gen)
    h0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    m = torch.nn.RNN(I, H, nonlinearity="relu").double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(p["W"])
        m.weight_hh_l0.copy_(torch.diag(p["u"]))
        m.bias_ih_l0.copy_(p["b"])
        m.bias_hh_l0.zero_()
    ty, th = m(x, h0[None])
    _close(_run("indrnn", p, x, {"h": h0})[0], ty)


def test_clockwork_every_period_one_is_a_tanh_rnn_with_a_block_triangular_matrix():
    I, H = 3, 8
    gen, x = _data(I, H, 10, T=9)
    cell = pc.CELLS["clockwork"]
    p = pc.random_params(cell, I, H, gen=gen)
    h0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    every = pc.Cell("cw1", pc.clockwork((1, 1, 1, 1)), cell.states, cell.output, cell.params, cell.count, "", "")
    y1, _ = pc.unroll(every, p, x, {"h": h0})
    module = torch.arange(H) // 2
    tri = (module[None, :] >= module[:, None]).double()
    assert tri[0].tolist() == [1] * 8 and tri[7].tolist() == [0] * 6 + [1, 1]
    m = torch.nn.RNN(I, H).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(p["W_I"])
        m.weight_hh_l0.copy_(p["W_H"] * tri)
        m.bias_ih_l0.copy_(p["b"])
        m.bias_hh_l0.zero_()
    _close(y1, m(x, h0[None])[0])
    # with the periods 1, 2, 4, 8: at step t, module i changes iff t mod T_i = 0 (every module at t = 0)
    y, _ = pc.unroll(cell, p, x, {"h": h0})
    prev = torch.cat([h0[None], y[:-1]])
    for t in range(9):
        for i, period in enumerate(pc.CLOCK_PERIODS):
            moved = not torch.equal(y[t][:, 2 * i:2 * i + 2], prev[t][:, 2 * i:2 * i + 2])
            assert moved == (t % period == 0), (t, i)


def test_slstm_stabiliser_leaves_h_unchanged():
    """The paper: h_t is unchanged by the stabiliser (c, n rescaled by exp(-m))."""
    I, H = 3, 4
    gen, x = _data(I, H, 11, T=6)
    p = pc.random_params(pc.CELLS["slstm"], I, H, gen=gen, scale=1.0)
    h0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    c0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    n0 = torch.rand(3, H, generator=gen, dtype=torch.float64) + 0.5
    m0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    y, sT = _run("slstm", p, x, {"h": h0, "c": c0, "n": n0, "m": m0})
    s = {"h": h0, "c": c0 * m0.exp(), "n": n0 * m0.exp()}
    ys = []
    for t in range(x.shape[0]):
        yt, s = pc.slstm_unstabilised(p, x[t], s)
        ys.append(yt)
    _close(y, torch.stack(ys), 1e-10)
    _close(sT["c"] * sT["m"].exp(), s["c"], 1e-10)


def test_layer_norm_is_torch_layer_norm():
    gen = torch.Generator().manual_seed(12)
    z, a, b = torch.randn(3, 3, 16, generator=gen, dtype=torch.float64)
    _close(pc.layer_norm(z, a[0], b[0]), torch.nn.functional.layer_norm(z, (16,), a[0], b[0], eps=0.0))
    _close(pc.layer_norm(z, a[0], b[0], 1e-5), torch.nn.functional.layer_norm(z, (16,), a[0], b[0], eps=1e-5))


def test_ln_lstm_step_by_hand():
    """One step of LN-LSTM: the 4H stacks normalised as wholes, gate blocks (f, i, o, g)."""
    I, H = 3, 4
    gen, x = _data(I, H, 13)
    p = pc.random_params(pc.CELLS["ln_lstm"], I, H, gen=gen)
    c0, h0 = torch.randn(2, 3, H, generator=gen, dtype=torch.float64)
    ln = torch.nn.functional.layer_norm
    a = ln(h0 @ p["W_h"].T, (4 * H,), p["alpha_1"], p["beta_1"], eps=pc.LN_EPS) + \
        ln(x[0] @ p["W_x"].T, (4 * H,), p["alpha_2"], p["beta_2"], eps=pc.LN_EPS) + p["b"]
    f, i, o, g = a[:, :H], a[:, H:2 * H], a[:, 2 * H:3 * H], a[:, 3 * H:]
    c = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(ln(c, (H,), p["alpha_3"], p["beta_3"], eps=pc.LN_EPS))
    y, s = pc.CELLS["ln_lstm"].step(p, x[0], {"c": c0, "h": h0})
    _close(y, h)
    _close(s["c"], c)


def test_lstmp_without_peepholes_is_torch_lstm_with_proj_size():
    I, H, P = 3, 5, 2
    gen, x = _data(I, H, 14)
    p = pc.random_params(pc.CELLS["lstmp"], I, H, P, gen=gen)
    for k in ("W_ic", "W_fc", "W_oc"):
        p[k] = torch.zeros(H, dtype=torch.float64)
    c0 = torch.randn(3, H, generator=gen, dtype=torch.float64)
    r0 = torch.randn(3, P, generator=gen, dtype=torch.float64)
    m = torch.nn.LSTM(I, H, proj_size=P).double()
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.cat([p["W_ix"], p["W_fx"], p["W_cx"], p["W_ox"]]))
        m.weight_hh_l0.copy_(torch.cat([p["W_ir"], p["W_fr"], p["W_cr"], p["W_or"]]))
        m.bias_ih_l0.copy_(torch.cat([p["b_i"], p["b_f"], p["b_c"], p["b_o"]]))
        m.bias_hh_l0.zero_()
        m.weight_hr_l0.copy_(p["W_rm"])
    ty, (th, tc) = m(x, (r0[None], c0[None]))
    y, sT = _run("lstmp", p, x, {"c": c0, "r": r0})
    _close(y, ty)
    _close(sT["c"], tc[0])


def test_qrnn_window_two_with_zero_past_weights_is_window_one():
    I, H = 3, 4
    gen, x = _data(I, H, 15)
    for pool in ("f", "fo", "ifo"):
        p1 = pc.random_params(pc.CELLS[f"qrnn_{pool}_w1"], I, H, gen=gen)
        p2 = {}
        for k, v in p1.items():
            if k.startswith("W_"):
                p2[k + "1"], p2[k + "2"] = torch.zeros_like(v), v
            else:
                p2[k] = v
        s0 = {s: torch.randn(3, H, generator=gen, dtype=torch.float64) for s in pc.CELLS[f"qrnn_{pool}_w1"].states}
        _close(_run(f"qrnn_{pool}_w1", p1, x, s0)[0], _run(f"qrnn_{pool}_w2", p2, x, s0)[0])
        # and the tap is really x_{t-1}: with only past weights, step 0 sees zeros
        p3 = {k: (torch.zeros_like(v) if re.fullmatch(r"W_\w2", k) else v) for k, v in p2.items()}
        p3.update({k[:-1] + "1": v for k, v in p2.items() if re.fullmatch(r"W_\w2", k)})
        y3, _ = _run(f"qrnn_{pool}_w2", p3, x, s0)
        shifted = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
        _close(y3, _run(f"qrnn_{pool}_w1", p1, shifted, s0)[0])


def test_minlstm_gates_are_normalised():
    I, H = 3, 4
    gen, x = _data(I, H, 16)
    p = pc.random_params(pc.CELLS["minlstm"], I, H, gen=gen)
    # with W_h = 0, b_h = c and h_0 = c, h stays c: f' + i' = 1
    p["W_h"] = torch.zeros_like(p["W_h"])
    h0 = p["b_h"].expand(3, H)
    y, _ = _run("minlstm", p, x, {"h": h0})
    _close(y, h0.expand(5, 3, H))


#: the parameter counts of reference-cells.md, as printed (section tables and summary)
TABLE = {
    "greff_v": "4IH+4H^2+7H", "greff_nig": "3IH+3H^2+5H", "greff_nfg": "3IH+3H^2+5H", "greff_nog": "3IH+3H^2+5H",
    "greff_niaf": "4IH+4H^2+7H", "greff_noaf": "4IH+4H^2+7H", "greff_np": "4IH+4H^2+4H",
    "greff_cifg": "3IH+3H^2+5H", "greff_fgr": "4IH+13H^2+7H",
    "mut1": "2IH+2H^2+3H", "mut2": "2IH+3H^2+3H", "mut3": "3IH+3H^2+3H", "mgu": "2IH+2H^2+2H",
    "sru": "3H^2+4H", "sru_proj": "4IH+4H",
    "qrnn_f_w1": "2kIH+2H", "qrnn_f_w2": "2kIH+2H", "qrnn_fo_w1": "3kIH+3H", "qrnn_fo_w2": "3kIH+3H",
    "qrnn_ifo_w1": "4kIH+4H", "qrnn_ifo_w2": "4kIH+4H",  # ifo: not in the table; the fo count plus the i block
    "indrnn": "IH+2H",
    "clockwork": "IH+k^2g(g+1)/2 + H",  # the paper's count (no bias) plus the bias b of the symbolic form
    "mingru": "2IH+2H", "minlstm": "3IH+3H", "slstm": "4IH+4H^2+4H",
    "gru_ds": "3IH+3H^2+3H", "gru1": "IH+3H^2+3H", "gru2": "IH+3H^2+H", "gru3": "IH+H^2+3H",
    "ugrnn": "2IH+2H^2+2H", "plusrnn": "8H^2+4H", "janet": "2IH+2H^2+2H", "janet_one": "2IH+2H^2+2H",
    "ln_lstm": "4IH+4H^2+22H", "lstmp": "4H(I+P)+7H+HP",
}


def _formula(text: str):
    code = re.sub(r"(?<=[0-9A-Za-z)])(?=[A-Za-z(])", "*", text.replace(" ", "")).replace("^", "**")
    return sp.sympify(code, locals={n: sp.Symbol(n) for n in ("I", "H", "P", "k", "g")})


@pytest.mark.parametrize("name", sorted(pc.CELLS))
def test_parameter_count_is_the_table_and_the_reference_shapes(name):
    cell = pc.CELLS[name]
    f = _formula(TABLE[name])
    for I, H in [(3, 4), (5, 8), (7, 12)]:
        I, H, P = sizes(cell, I, H)
        values = {"I": I, "H": H, "P": P, "k": cell.window if name.startswith("qrnn") else H // 4, "g": 4}
        table = int(f.subs({sp.Symbol(n): v for n, v in values.items() if v is not None}))
        assert cell.count(I, H, P) == table, (name, I, H, cell.count_text, TABLE[name])
        shapes = sum(int(np.prod(pc.size(s, I, H, P))) for s in cell.params.values())
        if name == "clockwork":  # W_H is stored H x H; the block-triangular mask leaves k^2 g(g+1)/2 trainable
            g, k = 4, H // 4
            shapes -= H * H - k * k * g * (g + 1) // 2
        assert shapes == table, (name, I, H)


if __name__ == "__main__":  # the to-do list: python tests/test_paper_cells.py
    for r in ROWS:
        cell, status, needs, message, rename = r.values
        k = kernel(cell, tuple(sorted(rename.items())))
        what = f"{type(k).__name__}: {k}" if isinstance(k, Exception) else "kernel"
        print(f"{r.id:22} {status:8} {pc.CELLS[cell].count_text:22} {needs or ''}\n{'':22} {what}")
    _tmpdir().cleanup()
