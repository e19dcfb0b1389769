"""Red-team findings on the kernel generator (shared/reviews/redteam.md, findings 1-8 and 17;
issue 17: names of the spec that are also names derive gives its own quantities, ``NAMES``).

Each cell the report found silently wrong is a row: its spec, and its forward step written
here by hand in NumPy, straight from the equations (the witness: no derive code involved).
The generated kernel's outputs must equal that loop and its gradients must equal central
finite differences of it. Cells derive cannot compile yet must be refused with a
DeriveError, never handed out. Hostile free text in every spec field and in the file name
must never run.
"""

from __future__ import annotations

import os
import re
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import derive
from derive import DeriveError

T, B, I, H = 3, 2, 3, 4


def sig(u):
    return 1.0 / (1.0 + np.exp(-u))


def spec_text(name, states, output, equations, **extra):
    lines = [f'name = "{name}"', 'input = "x"', f"states = {states!r}".replace("'", '"'), f'output = "{output}"']
    lines += [f"{k} = {v}" for k, v in extra.items()]
    return "\n".join(lines) + f"\nequations = '''\n{equations}\n'''\n"


def relu(u):
    return np.maximum(u, 0.0)


#: issue 17: a name of the spec that derive would also give one of its own quantities (the output
#: gradient dy_t, the fused matrix W_x, the sizes T B I H, the step t, the buffers z and a, the
#: slices s_h and k_h, the GEMM argument h_r_t); derive's own name yields, the kernel must be right
NAMES = {
    "names-state-y": (["y"], "y", r"y_t = \tanh(W_{xy} x_t + W_{yy} y_{t-1} + b)",
                      lambda P, x, s: {"y": np.tanh(x @ P["W_xy"].T + s["y"] @ P["W_yy"].T + P["b"])}),
    "names-states-c-y-greff": (["c", "y"], "y", "c_t = \\sigma(W_{xf} x_t + R_f y_{t-1}) \\odot c_{t-1} + "
                                                "\\tanh(W_{xz} x_t + R_z y_{t-1})\n"
                                                "y_t = \\tanh(c_t) \\odot \\sigma(W_{xo} x_t + R_o y_{t-1})",
                               lambda P, x, s: _greff(P, x, s)),
    "names-output-y-read-again": (["h"], "y", "y_t = \\sigma(W_{xy} x_t + W_{hy} h_{t-1})\n"
                                              "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1}) \\odot y_t",
                                  lambda P, x, s: {"y": sig(x @ P["W_xy"].T + s["h"] @ P["W_hy"].T),
                                                   "h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T)
                                                   * sig(x @ P["W_xy"].T + s["h"] @ P["W_hy"].T)}),
    "names-intermediate-y": (["h"], "h", "y_t = \\tanh(W_{xy} x_t + W_{hy} h_{t-1})\n"
                                         "h_t = y_t \\odot h_{t-1} + W_{xh} x_t",
                             lambda P, x, s: {"h": np.tanh(x @ P["W_xy"].T + s["h"] @ P["W_hy"].T) * s["h"]
                                              + x @ P["W_xh"].T}),
    "names-parameter-W": (["h"], "h", r"h_t = \operatorname{ReLU}(W x_t + u \odot h_{t-1} + b)",
                          lambda P, x, s: {"h": relu(x @ P["W"].T + P["u"] * s["h"] + P["b"])}),
    "F8-parameter-T": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1}) \odot T",
                       lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T) * P["T"]}),
    "F8-parameter-t": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1}) \odot t",
                       lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T) * P["t"]}),
    "names-parameters-z-a": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + z) \odot a",
                             lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + P["z"]) * P["a"]}),
    "names-parameter-z-reads-h": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + z \odot h_{t-1})",
                                  lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + P["z"] * s["h"])}),
    "names-matrices-B-H": (["h"], "h", r"h_t = \tanh(B x_t + H h_{t-1})",
                           lambda P, x, s: {"h": np.tanh(x @ P["B"].T + s["h"] @ P["H"].T)}),
    "names-matrices-I-P": (["h"], "h", r"h_t = \tanh(I x_t + P h_{t-1})",
                           lambda P, x, s: {"h": np.tanh(x @ P["I"].T + s["h"] @ P["P"].T)}),
    "names-slices-s-k-z_row": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + s_{h}) \odot k_{h} + z_{row}",
                               lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + P["s_h"])
                                                * P["k_h"] + P["z_row"]}),
    "names-vector-h_r-vs-gemm-argument": (
        ["h"], "h", "r_t = \\sigma(W_{xr} x_t + W_{hr} h_{t-1})\nh_{r,t} = \\tanh(W_{xq} x_t)\n"
                    "h_t = \\tanh(W_{xh} x_t + W_{hh} (r_t \\odot h_{t-1})) \\odot h_{r,t}",
        lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + (sig(x @ P["W_xr"].T + s["h"] @ P["W_hr"].T) * s["h"])
                                      @ P["W_hh"].T) * np.tanh(x @ P["W_xq"].T)}),
    "names-linear-term-two-activations": (
        ["h"], "h", "s_t = W_{hs} h_{t-1} + W_{xs} x_t + b_s\nh_t = \\tanh(s_t) \\odot \\sigma(s_t)",
        lambda P, x, s: _two_acts(x @ P["W_xs"].T + s["h"] @ P["W_hs"].T + P["b_s"])),
    "names-linear-term-janet-and-elsewhere": (
        ["c", "h"], "h", "s_t = W_{hs} h_{t-1} + W_{xs} x_t + b_s\n"
                         "c_t = \\sigma(s_t) \\odot c_{t-1} + (1 - \\sigma(s_t - 1)) \\odot "
                         "\\tanh(W_{xc} x_t + W_{hc} h_{t-1})\n"
                         "h_t = \\tanh(c_t) + s_t",
        lambda P, x, s: _janet(P, x, s)),
    "names-comma-subscripts": (["h"], "h", r"h_t = \tanh(W_{x,h} x_t + W_{h,h} h_{t-1} + b_{h})",
                               lambda P, x, s: {"h": np.tanh(x @ P["W_x,h"].T + s["h"] @ P["W_h,h"].T + P["b_h"])}),
}


def _greff(P, x, s):
    c = sig(x @ P["W_xf"].T + s["y"] @ P["R_f"].T) * s["c"] + np.tanh(x @ P["W_xz"].T + s["y"] @ P["R_z"].T)
    return {"c": c, "y": np.tanh(c) * sig(x @ P["W_xo"].T + s["y"] @ P["R_o"].T)}


def _two_acts(u):
    return {"h": np.tanh(u) * sig(u)}


def _janet(P, x, s):
    u = x @ P["W_xs"].T + s["h"] @ P["W_hs"].T + P["b_s"]
    c = sig(u) * s["c"] + (1 - sig(u - 1)) * np.tanh(x @ P["W_xc"].T + s["h"] @ P["W_hc"].T)
    return {"c": c, "h": np.tanh(c) + u}


#: id -> (states, output, equations, step(P, x_t, prev) -> new states dict (and "y" if not a state))
CELLS = {
    "F3-plus-2b": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + 2 b)",
                   lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + 2 * P["b"])}),
    "F3-b-odot-b": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1} + b \odot b)",
                    lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + P["b"] ** 2)}),
    "F3-h-odot-h": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + h_{t-1} \odot h_{t-1})",
                    lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] ** 2)}),
    "F3-tanh-h": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + \tanh(h_{t-1}))",
                  lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + np.tanh(s["h"]))}),
    "F4-two-states": (["h", "c"], "h", "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + W_{ch} c_{t-1} + b_h)\n"
                                       "c_t = \\tanh(W_{xc} x_t + W_{hc} h_{t-1} + b_c)",
                      lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + s["c"] @ P["W_ch"].T
                                                    + P["b_h"]),
                                       "c": np.tanh(x @ P["W_xc"].T + s["h"] @ P["W_hc"].T + P["b_c"])}),
    "F4-cross-coupled": (["q", "h"], "h", "q_t = \\tanh(W_{xq} x_t + W_{hq} h_{t-1})\n"
                                          "h_t = \\tanh(W_{xh} x_t + W_{qh} q_{t-1})",
                         lambda P, x, s: {"q": np.tanh(x @ P["W_xq"].T + s["h"] @ P["W_hq"].T),
                                          "h": np.tanh(x @ P["W_xh"].T + s["q"] @ P["W_qh"].T)}),
    "F5-state-never-read": (["h", "c"], "h", "c_t = \\tanh(W_{xc} x_t)\n"
                                             "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)",
                            lambda P, x, s: {"c": np.tanh(x @ P["W_xc"].T),
                                             "h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + P["b_h"])}),
    "F5-h-never-read": (["h"], "h", r"h_t = \tanh(W_{xh} x_t)", lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T)}),
    "F6-W-tanh-h": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} \tanh(h_{t-1}))",
                    lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + np.tanh(s["h"]) @ P["W_hh"].T)}),
    "F6-W-sigma-h": (["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} \sigma(h_{t-1}))",
                     lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + sig(s["h"]) @ P["W_hh"].T)}),
    "F8-W_h-is-a-spec-name": (["h"], "h", r"h_t = \tanh(W_x x_t + W_h h_{t-1})",
                              lambda P, x, s: {"h": np.tanh(x @ P["W_x"].T + s["h"] @ P["W_h"].T)}),
    "F17-elman-output-layer": (["h"], "y", "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)\ny_t = W_{hy} h_t + b_y",
                               lambda P, x, s: _with_y(np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + P["b_h"]),
                                                       lambda h: h @ P["W_hy"].T + P["b_y"])),
    "F17-output-gate": (["h"], "q", "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + b_h)\nq_t = \\tanh(W_{hq} h_t)",
                        lambda P, x, s: _with_y(np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + P["b_h"]),
                                                lambda h: np.tanh(h @ P["W_hq"].T))),
    "F17-same-W-twice": (["h"], "h", "r_t = \\sigma(W_{xr} x_t + W_{hr} h_{t-1})\n"
                                     "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + W_{hh} (r_t \\odot h_{t-1}))",
                         lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T + (
                             sig(x @ P["W_xr"].T + s["h"] @ P["W_hr"].T) * s["h"]) @ P["W_hh"].T)}),
    "F17-gate-without-activation": (["h"], "h", "r_t = W_{xr} x_t\nh_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1}) \\odot r_t",
                                    lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T)
                                                     * (x @ P["W_xr"].T)}),
    "F17-frac-of-state": (["h"], "h", r"h_t = \frac{W_{xh} x_t}{1 + h_{t-1} \odot h_{t-1}}",
                          lambda P, x, s: {"h": (x @ P["W_xh"].T) / (1 + s["h"] ** 2)}),
    "input-product-in-a-product": (["h"], "h", "r_t = \\sigma(W_{hr} h_{t-1} + b_r)\n"
                                               "h_t = \\tanh((W_{xh} x_t) \\odot r_t + W_{hh} h_{t-1})",
                                   lambda P, x, s: {"h": np.tanh((x @ P["W_xh"].T) * sig(s["h"] @ P["W_hr"].T + P["b_r"])
                                                                 + s["h"] @ P["W_hh"].T)}),
    "F17-nested-activations": (["h"], "h", r"h_t = \tanh(\sigma(\tanh(W_{xh} x_t + W_{hh} h_{t-1})))",
                               lambda P, x, s: {"h": np.tanh(sig(np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T)))}),
    "F17-shared-product-as-a-vector": (["h", "c"], "h", "u_t = W_{hh} h_{t-1}\nh_t = \\tanh(W_{xh} x_t + u_t)\n"
                                                        "c_t = \\tanh(W_{xc} x_t + u_t + c_{t-1})",
                                       lambda P, x, s: {"h": np.tanh(x @ P["W_xh"].T + s["h"] @ P["W_hh"].T),
                                                        "c": np.tanh(x @ P["W_xc"].T + s["h"] @ P["W_hh"].T + s["c"])}),
    "minLSTM": (["h"], "h", "f_t = \\sigma(W_f x_t + b_f)\ni_t = \\sigma(W_i x_t + b_i)\n"
                            "\\tilde{h}_t = W_h x_t + b_h\nh_t = f_t \\odot h_{t-1} + i_t \\odot \\tilde{h}_t",
                lambda P, x, s: {"h": sig(x @ P["W_f"].T + P["b_f"]) * s["h"]
                                 + sig(x @ P["W_i"].T + P["b_i"]) * (x @ P["W_h"].T + P["b_h"])}),
    "MGU": (["h"], "h", "f_t = \\sigma(W_{xf} x_t + W_{hf} h_{t-1} + b_f)\n"
                        "\\tilde{h}_t = \\tanh(W_{xh} x_t + W_{hh} (f_t \\odot h_{t-1}) + b_h)\n"
                        "h_t = (1 - f_t) \\odot h_{t-1} + f_t \\odot \\tilde{h}_t",
            lambda P, x, s: _mgu(P, x, s)),
    **NAMES,
}


def _with_y(h, out):
    return {"h": h, "y": out(h)}


def _mgu(P, x, s):
    f = sig(x @ P["W_xf"].T + s["h"] @ P["W_hf"].T + P["b_f"])
    ht = np.tanh(x @ P["W_xh"].T + (f * s["h"]) @ P["W_hh"].T + P["b_h"])
    return {"h": (1 - f) * s["h"] + f * ht}


def _run(step, states, output, P, x, s0):
    s, ys = dict(s0), []
    for t in range(x.shape[0]):
        new = step(P, x[t], s)
        s = {k: new[k] for k in states}
        ys.append(new["y"] if output not in states else new[output])
    return np.stack(ys), s


def _loss(step, states, output, P, x, s0, w, v):
    y, sT = _run(step, states, output, P, x, s0)
    return float((w * y).sum() + sum((v[k] * sT[k]).sum() for k in states))


@pytest.mark.parametrize("row", CELLS, ids=list(CELLS))
def test_generated_kernel_equals_a_hand_written_loop_and_finite_differences(row, tmp_path):
    states, output, equations, step = CELLS[row]
    path = tmp_path / "cell.toml"
    path.write_text(spec_text("cell", states, output, equations))
    k = derive.kernel(str(path))
    rng = np.random.default_rng(7)
    P = {n: rng.uniform(-0.8, 0.8, tuple({"I": I, "H": H}[d] for d in shape.split(" x ")))
         for n, shape in k.PARAMS.items()}
    x = rng.standard_normal((T, B, I))
    s0 = {s: rng.standard_normal((B, H)) for s in states}
    y, sT, cache = k.forward(x, s0, P)
    y_ref, sT_ref = _run(step, states, output, P, x, s0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    for s in states:
        np.testing.assert_allclose(sT[s], sT_ref[s], rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(y.shape)
    v = {s: rng.standard_normal((B, H)) for s in states}
    for dy, dsT in ((w, v), (w, None), (None, v)):
        g = k.backward(dy, dsT, cache, P)
        ww = np.zeros_like(w) if dy is None else w
        vv = {s: np.zeros((B, H)) for s in states} if dsT is None else v
        for key in ["x", *states, *P]:
            base = x if key == "x" else s0[key] if key in s0 else P[key]
            u = rng.standard_normal(base.shape)
            eps = 1e-6

            def at(sign):
                xx = x + sign * eps * u if key == "x" else x
                ss = {**s0, key: s0[key] + sign * eps * u} if key in s0 else s0
                pp = {**P, key: P[key] + sign * eps * u} if key in P else P
                return _loss(step, states, output, pp, xx, ss, ww, vv)
            fd = (at(1) - at(-1)) / (2 * eps)
            got = float((g[key] * u).sum())
            assert abs(got - fd) <= 1e-6 * max(1.0, abs(fd)), (row, key, dy is None, dsT is None, got, fd)


#: cells derive cannot compile yet: refused, with the message fragment
REFUSED = {
    "F17-constant-state": ((["h"], "h", "h_t = 3"), "cannot generate a kernel"),
    "F17-one-product-in-two-equations": ((["h", "c"], "h", "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1})\n"
                                                           "c_t = \\tanh(W_{xc} x_t + W_{hh} h_{t-1})"), "feeds two"),
    "F17-400-digit-number": ((["h"], "h", r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1}) \odot " + "9" * 400),
                             "not a finite float64"),
    # issue 17, the limits a name meets: backward returns the input's gradient as grads["x"]
    "names-parameter-x-beside-input-u": ((["h"], "h", r"h_t = \tanh(W_{uh} u_t + W_{hh} h_{t-1}) \odot x", "u"),
                                         "a parameter named x: the kernels return the gradient of the input"),
    "names-state-x-beside-input-u": ((["x"], "x", r"x_t = \tanh(W_{ux} u_t + W_{xx} x_{t-1})", "u"),
                                     "a state named x: the kernels return the gradient of the input"),
    # two quantities of the spec that one generated name would stand for (h_{all} and the steps of h)
    "names-parameter-h_all": ((["h"], "h", r"h_t = \tanh(W_{xh} x_t + h_{all} \odot h_{t-1})"),
                              "the generated name 'h_all' would stand for both h_{all}"),
    # two matrices on one vector in one pre-activation (H h_{t-1} + P h_{t-1}): one matrix per vector there
    "two-matrices-one-argument": ((["h"], "h", r"h_t = \tanh(W_{xh} x_t + H h_{t-1} + P h_{t-1})"),
                                  "multiply the same vector into one pre-activation"),
}


@pytest.mark.parametrize("row", REFUSED, ids=list(REFUSED))
def test_cells_the_generator_cannot_compile_are_refused_never_handed_out(row, tmp_path):
    (states, output, equations, *source), fragment = REFUSED[row]
    path = tmp_path / "cell.toml"
    path.write_text(spec_text("cell", states, output, equations).replace('input = "x"', f'input = "{source[0]}"')
                    if source else spec_text("cell", states, output, equations))
    assert derive.derive(derive.load(str(path))).adjoints  # the derivation itself is fine
    with pytest.raises(DeriveError, match=re.escape(fragment)) as err:
        derive.kernel(str(path))
    assert not re.search(r"\w\|\w*\|", str(err.value)), str(err.value)  # no IR symbol name (s||1) in a message
    if row.startswith("names-"):  # a limit a name meets is located in the spec: path:line:column
        assert re.match(rf"{re.escape(str(path))}:\d+:\d+: error: ", str(err.value)), str(err.value)


# ------------------------------------------------------------- hostile free text
BASE_EQ = r"h_t = \tanh(W_{xh} x_t + W_{hh} h_{t-1})"
PAYLOADS = [
    'x"""\nopen("PWN", "w")\n"""',
    "x'''\nopen('PWN', 'w')\n'''",
    '"""; open("PWN", "w"); """',
    "\\\"\\\"\\\"\nopen('PWN','w')\n#",
    "a\rimport os; os.system('touch PWN')\r",
    "a\x0cimport os\x0c",
    "\\N{LATIN SMALL LETTER A} \\u2028 \\",
    "{{ 7 * 7 }} {% raw %}",
    "\u2028open('PWN','w')\u2029",
    "\u202e\u200b\"\"\"",
    '"',
    '""',
    "\\",
]


def _toml_literal(text: str) -> str:
    """A TOML basic string holding ``text`` exactly."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _no_marker(where) -> None:
    assert not list(where.glob("PWN*")) and not os.path.exists("PWN"), "a payload ran"


@pytest.mark.parametrize("field", ["title", "summary", "notes"])
@pytest.mark.parametrize("payload", PAYLOADS, ids=[f"F1-{k}" for k in range(len(PAYLOADS))])
def test_free_text_in_a_spec_is_never_code(field, payload, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cell.toml"
    path.write_text(spec_text("cell", ["h"], "h", BASE_EQ, **{field: _toml_literal(payload)}))
    k = derive.kernel(str(path))
    if field == "title":
        assert k.__doc__.startswith(payload)  # the docstring holds the text, escaped, as text
    out = tmp_path / "out"
    from derive.cli.command import main

    assert main(["kernels", str(path), "--out", str(out)]) == 0
    import importlib.util

    spec = importlib.util.spec_from_file_location("cell_gen", out / "cell.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    _no_marker(tmp_path)


@pytest.mark.parametrize("fname", ['x\nopen("PWN_fn","w").write("1")\n#.toml', "x\ropen('PWN','w')\r#.toml",
                                   "x\u2028open('PWN','w').toml", 'x""".toml'],
                         ids=["F2-newline", "F2-carriage-return", "F2-line-separator", "F2-quotes"])
def test_the_spec_file_name_is_never_code(fname, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / fname
    path.write_text(spec_text("cell", ["h"], "h", BASE_EQ))
    k = derive.kernel(str(path))
    assert k.forward(np.zeros((2, 1, 3)), None, k.init_params(3, 4))[0].shape == (2, 1, 4)
    _no_marker(tmp_path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.lists(st.sampled_from(list(string.printable) + ['"""', "'''", "\u2028", "\x00", "\\N",
                                                                   "\u202e", "{{", "}}", "\\u"]),
                      max_size=20).map("".join),
       fname=st.text(alphabet=st.sampled_from(list(string.ascii_letters + "\n\r\"'\\ ;()#") + ["\u2028"]),
                     min_size=1, max_size=20))
def test_random_hostile_titles_and_file_names_stay_text(title, fname, tmp_path_factory):
    where = tmp_path_factory.mktemp("hostile")
    path = where / (fname.replace("/", "_") + ".toml")
    path.write_text(spec_text("cell", ["h"], "h", BASE_EQ, title=_toml_literal(title)))
    try:
        k = derive.kernel(str(path))
    except DeriveError:
        return  # e.g. a title TOML refuses (a NUL): refused is fine, running is not
    assert k.__doc__.startswith(title if title else "cell")
    _no_marker(where)
