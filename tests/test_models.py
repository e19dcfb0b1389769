"""Whole models (issue 19): stacks of a cell in layers and directions, with residual connections.

Witnesses, float64:

* ``torch.nn.RNN/LSTM/GRU`` with ``num_layers`` and ``bidirectional``: outputs, final states and
  every gradient (x, each initial state, each parameter through ``to_torch``) within 1e-10;
* stacks torch.nn has not (residual connections, directions summed) against PyTorch autograd
  compositions of single-layer torch.nn modules, written here from the definition
  y_l = f_l(x_l) (+ x_l);
* central finite differences of the model's own forward, for every argument;
* located errors for bad model specs.
"""

from __future__ import annotations

import numpy as np
import pytest

import derive
from derive.symbolic import model as model_spec

torch = pytest.importorskip("torch")

T, B = 5, 3
TOL = 1e-10


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


#: (model spec or built-in, torch module factory (I, H) -> module)
TORCH_STACKS = [
    ({"cell": "lstm", "layers": 3, "bidirectional": True}, lambda I, H: torch.nn.LSTM(I, H, 3, bidirectional=True)),
    ({"cell": "lstm_proj", "layers": 2}, lambda I, H: torch.nn.LSTM(I, H, 2, proj_size=2)),
    ({"cell": "gru", "layers": 2}, lambda I, H: torch.nn.GRU(I, H, 2)),
    ("deep_bigru", lambda I, H: torch.nn.GRU(I, H, 3, bidirectional=True)),
    ({"cell": "rnn_tanh", "layers": 2, "bidirectional": True}, lambda I, H: torch.nn.RNN(I, H, 2, bidirectional=True)),
    ({"cell": "rnn_relu", "layers": 3}, lambda I, H: torch.nn.RNN(I, H, 3, nonlinearity="relu")),
]


@pytest.mark.parametrize("spec,make", TORCH_STACKS, ids=[str(s) for s, _ in TORCH_STACKS])
def test_stacks_match_torch_nn(spec, make):
    I, H = 4, 5
    torch.manual_seed(0)
    mod = make(I, H).double()
    m = derive.model(spec)
    p = m.from_torch(mod)
    D = 2 if mod.bidirectional else 1
    lstm = isinstance(mod, torch.nn.LSTM)
    out_h = mod.proj_size or H
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(mod.num_layers * D, B, out_h, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(mod.num_layers * D, B, H, dtype=torch.float64, requires_grad=True)
    y, final = mod(x, (h0, c0)) if lstm else mod(x, h0)
    hT, cT = final if lstm else (final, None)
    w, vh, vc = torch.randn_like(y), torch.randn_like(hT), torch.randn_like(c0)
    L = (w * y).sum() + (vh * hT).sum() + ((vc * cT).sum() if lstm else 0)
    L.backward()

    def per_layer(a, layer, rev):
        return a[layer * D + int(rev)].detach().numpy().copy()
    s0 = {(l, r): {"h": per_layer(h0, l, r), **({"c": per_layer(c0, l, r)} if lstm else {})} for l, r in m.keys()}
    dsT = {(l, r): {"h": per_layer(vh, l, r), **({"c": per_layer(vc, l, r)} if lstm else {})} for l, r in m.keys()}
    ours, sT, cache = m.forward(x.detach().numpy(), s0, p)
    g = m.backward(w.numpy(), dsT, cache, p)
    assert _rel(ours, y.detach()) < TOL
    for (l, r), states in sT.items():
        assert _rel(states["h"], per_layer(hT, l, r)) < TOL
        if lstm:
            assert _rel(states["c"], per_layer(cT, l, r)) < TOL
        assert _rel(g[(l, r)]["h"], per_layer(h0.grad, l, r)) < TOL
        if lstm:
            assert _rel(g[(l, r)]["c"], per_layer(c0.grad, l, r)) < TOL
    assert _rel(g["x"], x.grad) < TOL
    named = dict(mod.named_parameters())
    exported = m.to_torch(g)
    assert set(exported) == set(named)
    for name, prm in named.items():
        assert _rel(exported[name], prm.grad) < TOL, name
    assert m.count(I, H, proj=mod.proj_size or None, convention="pytorch") == sum(q.numel() for q in mod.parameters())
    # the single-bias count is what the kernels store: b = b_ih + b_hh
    assert m.count(I, H, proj=mod.proj_size or None, convention="single") == sum(
        a.size for prm in p.values() for a in prm.values())


def _torch_stack(layers, rev_layers, x, residual, merge, projections=None):
    """Reference: each layer a single-layer torch.nn module per direction; directions side by side or
    added; y_l = f_l(x_l) + x_l where the sizes match (residual), + W_r x_l (a Linear without bias, in
    ``projections``) where they do not."""
    inp = x
    for layer, (fwd, bwd) in enumerate(zip(layers, rev_layers)):
        outs = [fwd(inp)[0]]
        if bwd is not None:
            outs.append(bwd(inp.flip(0))[0].flip(0))
        out = outs[0] if len(outs) == 1 else (torch.cat(outs, -1) if merge == "concat" else outs[0] + outs[1])
        if residual and out.shape == inp.shape:
            out = out + inp
        elif projections and layer in projections:
            out = out + projections[layer](inp)
        inp = out
    return inp


#: (model spec, input size I, hidden H): stacks torch.nn has not
COMPOSED = [
    ("deep_residual_lstm", 3, 5),  # layer 0 reads I = 3 != H: no residual there; layers 1-3 add theirs
    ({"cell": "lstm", "layers": 3, "residual": True}, 5, 5),  # I = H: every layer adds its input
    ({"cell": "gru", "layers": 2, "bidirectional": True, "merge": "sum", "residual": True}, 4, 4),
    ({"cell": "rnn_tanh", "layers": 2, "bidirectional": True, "merge": "sum"}, 3, 4),
]


@pytest.mark.parametrize("spec,I,H", COMPOSED, ids=[str(c[0]) for c in COMPOSED])
def test_residual_and_summed_stacks_match_torch_compositions(spec, I, H):
    torch.manual_seed(1)
    m = derive.model(spec)
    s = m.spec
    kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn_tanh": torch.nn.RNN}[s.cell.name]
    sizes = m.layer_inputs(I, H)
    fwd = [kind(n, H).double() for n in sizes]
    bwd = [kind(n, H).double() if s.bidirectional else None for n in sizes]
    p = {}
    for layer in range(s.layers):
        p[(layer, False)] = m.k.from_torch(fwd[layer])
        if s.bidirectional:
            p[(layer, True)] = m.k.from_torch(bwd[layer])
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    y = _torch_stack(fwd, bwd, x, s.residual, s.merge)
    w = torch.randn_like(y)
    (w * y).sum().backward()
    ours, _, cache = m.forward(x.detach().numpy(), None, p)
    g = m.backward(w.numpy(), None, cache, p)
    assert _rel(ours, y.detach()) < TOL
    assert _rel(g["x"], x.grad) < TOL
    for layer in range(s.layers):
        for rev, mod in ((False, fwd[layer]), (True, bwd[layer])):
            if mod is None:
                continue
            exported = m.k.to_torch(g[(layer, rev)], gradients=True)
            for name, prm in mod.named_parameters():
                assert _rel(exported[name], prm.grad) < TOL, (layer, rev, name)
    if s.residual:  # the identity is there: without it the stack computes something else
        assert cache["residual"][-1] == "identity"


def test_a_residual_bidirectional_stack_matches_finite_differences():
    m = derive.model({"cell": "gru", "layers": 2, "bidirectional": True, "merge": "sum", "residual": True})
    rng = np.random.default_rng(2)
    I = H = 4
    p = m.init_params(I, H, seed=3)
    x = rng.standard_normal((T, B, I))
    s0 = {key: {"h": rng.standard_normal((B, H))} for key in m.keys()}
    w = rng.standard_normal((T, B, H))
    v = {key: {"h": rng.standard_normal((B, H))} for key in m.keys()}

    def loss(xx, ss, pp):
        y, sT, _ = m.forward(xx, ss, pp)
        return float((w * y).sum() + sum((v[k]["h"] * sT[k]["h"]).sum() for k in m.keys()))
    y, sT, cache = m.forward(x, s0, p)
    g = m.backward(w, v, cache, p)
    eps = 1e-6
    u = rng.standard_normal(x.shape)
    fd = (loss(x + eps * u, s0, p) - loss(x - eps * u, s0, p)) / (2 * eps)
    assert abs(fd - (g["x"] * u).sum()) < 1e-7 * max(1, abs(fd))
    for key in m.keys():
        for name in [*p[key], "h"]:
            if name == "h":
                u = rng.standard_normal((B, H))
                plus = {**s0, key: {"h": s0[key]["h"] + eps * u}}
                minus = {**s0, key: {"h": s0[key]["h"] - eps * u}}
                fd = (loss(x, plus, p) - loss(x, minus, p)) / (2 * eps)
            else:
                u = rng.standard_normal(p[key][name].shape)
                plus = {**p, key: {**p[key], name: p[key][name] + eps * u}}
                minus = {**p, key: {**p[key], name: p[key][name] - eps * u}}
                fd = (loss(x, s0, plus) - loss(x, s0, minus)) / (2 * eps)
            assert abs(fd - (g[key][name] * u).sum()) < 1e-7 * max(1, abs(fd)), (key, name)


def test_builtin_models_load():
    assert model_spec.builtin_names() == ["deep_bigru", "deep_residual_lstm", "seq2seq_bahdanau", "seq2seq_luong"]
    for name in model_spec.builtin_names():
        m = derive.model(name)
        assert m.spec.name == name and m.spec.meta["references"]


#: (what is wrong, model spec text, line, column, words)
BAD = [
    ("unknown key", 'name = "m"\ncell = "lstm"\ndepth = 3\n', 3, 1, "unknown key 'depth'"),
    ("an encoder-decoder key in a stack", 'name = "m"\ncell = "lstm"\nattention = "bahdanau"\n', 3, 1,
     "'attention' belongs to an encoder-decoder spec"),
    ("layers zero", 'name = "m"\ncell = "lstm"\nlayers = 0\n', 3, 1, "layers must be a positive integer"),
    ("layers bool", 'name = "m"\ncell = "lstm"\nlayers = true\n', 3, 1, "layers must be a positive integer"),
    ("merge", 'name = "m"\ncell = "lstm"\nbidirectional = true\nmerge = "mean"\n', 4, 1, 'merge must be "concat" or "sum"'),
    ("unknown cell", 'name = "m"\ncell = "lsmt"\n', 2, 1, "cell 'lsmt': unknown cell"),
    ("no cell", 'name = "m"\n', 1, 1, "the model spec has no 'cell'"),
    ("bad toml", 'name = "m"\ncell = \n', 2, 8, "not valid TOML"),
]


@pytest.mark.parametrize("what,text,line,column,words", BAD, ids=[b[0] for b in BAD])
def test_a_bad_model_spec_is_a_located_error(what, text, line, column, words):
    with pytest.raises(derive.DeriveError) as info:
        model_spec.parse_model(text, source="bad_model.toml")
    err = info.value
    assert words in err.message, str(err)
    assert str(err).startswith(f"bad_model.toml:{line}:{column}: error: "), str(err)
    assert "\n" not in str(err)


def test_from_torch_refuses_a_module_of_another_shape():
    m = derive.model({"cell": "lstm", "layers": 2})
    with pytest.raises(derive.DeriveError, match="has 3 layer"):
        m.from_torch(torch.nn.LSTM(3, 4, 3))
    with pytest.raises(derive.DeriveError, match="not a torch.nn stack"):
        derive.model("deep_residual_lstm").from_torch(torch.nn.LSTM(3, 4, 4))


def _cli(*args):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "derive", *args], capture_output=True, text=True, timeout=300)


def test_the_cli_shows_and_counts_a_model():
    r = _cli("show", "deep_residual_lstm")
    assert r.returncode == 0, r.stderr
    assert "x^(l+1)_t = y^(l)_t + x^(l)_t" in r.stdout  # the residual, forward
    assert "dx^(l)_t = dx->^(l)_t + dx^(l+1)_t" in r.stdout  # and its identity in the backward pass
    assert "W_{xi}^T da_{i,t}" in r.stdout  # the cell's own input gradient, per layer
    r = _cli("show", "deep_bigru")
    assert "dx^(l)_t = dx->^(l)_t + dx<-^(l)_t" in r.stdout and "states<-^(l)_(t+1)" in r.stdout
    r = _cli("params", "deep_bigru", "-I", "10", "-H", "20", "--convention", "pytorch")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[0]) == sum(q.numel() for q in torch.nn.GRU(10, 20, 3, bidirectional=True).parameters())
    r = _cli("params", "deep_bigru", "-I", "10", "-H", "20", "--layers", "2")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "its spec fixes the layers" in r.stderr


def test_a_model_spec_file_is_read_by_path(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\ncell = "gru"\nlayers = 2\nbidirectional = true\nmerge = "sum"\n')
    m = derive.model(str(path))
    assert m.spec.name == "mine" and m.layer_inputs(3, 4) == [3, 4]
    r = _cli("params", str(path), "-I", "3", "-H", "4", "--convention", "single")
    # two layers, two directions, each a GRU reading 3 then 4 features: what the kernels store (single bias)
    stored = sum(a.size for prm in m.init_params(3, 4).values() for a in prm.values())
    assert r.returncode == 0 and int(r.stdout.split()[0]) == stored


def test_every_builtin_model_has_a_page_with_its_counts():
    """site/models/NAME.md exists (derive build writes it) and its worked count is the model's."""
    from pathlib import Path
    site = Path(__file__).parent.parent / "site" / "models"
    for name in ["deep_bigru", "deep_residual_lstm"]:
        text = (site / f"{name}.md").read_text(encoding="utf-8")
        m = derive.model(name)
        single, torch_count = m.count(10, 20, convention="single"), m.count(10, 20, convention="pytorch")
        assert f"{single} parameters as the kernels store them" in text
        assert f"{torch_count}\nas PyTorch stores them" in text


def test_the_depth_measurement_shows_what_the_page_says():
    """The measured gradient reaching layer 1: a plain LSTM stack loses orders of magnitude over
    16 layers; the residual one keeps it of order 1 (docs.models.layer1_gradient, the page's table)."""
    from derive.docs import models as pages
    plain, residual = pages.layer1_gradient("lstm", 16, False), pages.layer1_gradient("lstm", 16, True)
    assert plain < 1e-6 and 0.5 < residual < 2


@pytest.mark.parametrize("spec,I,H", [
    ({"cell": "lstm", "layers": 3, "residual": "project"}, 3, 5),  # layer 0: 3 -> 5, projected; then identities
    ({"cell": "gru", "layers": 2, "bidirectional": True, "residual": "project"}, 4, 3),  # 4 -> 6 projected
])
def test_a_projected_residual_matches_torch(spec, I, H):
    """residual = "project": y_l = f_l(x_l) + W_r x_l where a layer's input has another size (a torch Linear
    without bias), identities elsewhere; the count adds W_r's entries."""
    torch.manual_seed(2)
    m = derive.model(spec)
    s = m.spec
    kind = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[s.cell.name]
    sizes = m.layer_inputs(I, H)
    fwd = [kind(n, H).double() for n in sizes]
    bwd = [kind(n, H).double() if s.bidirectional else None for n in sizes]
    D = 2 if s.bidirectional else 1
    lin = {layer: torch.nn.Linear(i, o, bias=False).double() for layer, (o, i) in s.projected(I, H).items()}
    assert list(lin) == [0]
    p = {(layer, False): m.k.from_torch(fwd[layer]) for layer in range(s.layers)}
    p.update({(layer, True): m.k.from_torch(bwd[layer]) for layer in range(s.layers) if s.bidirectional})
    p.update({("residual", layer): {"W_r": mod.weight.detach().numpy().copy()} for layer, mod in lin.items()})
    x = torch.randn(T, B, I, dtype=torch.float64, requires_grad=True)
    y = _torch_stack(fwd, bwd, x, True, s.merge, lin)
    w = torch.randn_like(y)
    (w * y).sum().backward()
    ours, _, cache = m.forward(x.detach().numpy(), None, p)
    g = m.backward(w.numpy(), None, cache, p)
    assert cache["residual"] == ["project"] + ["identity"] * (s.layers - 1)
    assert _rel(ours, y.detach()) < TOL and _rel(g["x"], x.grad) < TOL
    assert _rel(g[("residual", 0)]["W_r"], lin[0].weight.grad) < TOL
    single = sum(a.size for prm in m.init_params(I, H).values() for a in prm.values())
    assert m.count(I, H, convention="single") == single == sum(
        a.size for key, prm in p.items() for a in prm.values())
    assert ("residual", 0) in m.init_params(I, H) and m.init_params(I, H)[("residual", 0)]["W_r"].shape == (D * H, I)
    with pytest.raises(derive.DeriveError, match="its residual needs"):
        m.forward(x.detach().numpy(), None, {k: v for k, v in p.items() if k[0] != "residual"})


def test_check_on_a_model_asks_for_the_layer():
    """derive check on a stack reads claims about a layer (tests/test_check_model.py); a claim without a
    layer superscript is refused in one located line (exit 2)."""
    r = _cli("check", "deep_residual_lstm", "dc_t = dh_t")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("<input>:1:1: error: name the layer")
