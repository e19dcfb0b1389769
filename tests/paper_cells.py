"""Recurrent cells of the literature as independent PyTorch references.

Each cell here is written from the paper's equations (as restated with their sources in
``reference-cells.md``, the shared reference of issue 17), never from derive's output or
generated code. A ``Cell`` gives:

* ``step(p, x_t, s, t=..., x_prev=...) -> (y_t, new_states)``: one step on torch tensors
  (float64, batch first: x_t is (B, I), a state (B, H)); ``p`` maps the *spec's* parameter
  keys (``W_{xf}`` -> ``"W_xf"``) to tensors, so one dict feeds both the spec's kernel and
  this reference. ``W a`` is ``a @ W.T``. ``t`` is the step index from 0 (Clockwork),
  ``x_prev`` the input at t-1, zero before the first step (QRNN window 2).
* ``states``: name -> size ("H" or "P"); ``output``: the name of y_t and its size.
* ``params``: key -> shape as derive writes it (``"H x I"``, ``"H"``, ``"4H"``).
* ``count(I, H, P)``: the parameter count of one layer and direction as the paper /
  reference implementation gives it, with ``count_text`` and ``count_source`` saying whose.

``unroll(cell, p, x, s0)`` runs a sequence x (T, B, I) and returns (y (T, B, out), final states).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

sigmoid = torch.sigmoid
tanh = torch.tanh


def lin(W, a):
    """W a for a batch of row vectors a (B, n): a @ W.T."""
    return a @ W.T


def ident(a):
    return a


#: the epsilon added to every variance of the LN-LSTM: PyTorch's nn.LayerNorm default. Ba et al. print
#: none, which leaves the cell 0/0 at h_0 = 0 (W_h h_0 is then constant); derive's spec adds the same
LN_EPS = 1e-5


def layer_norm(z, gain, bias, eps=0.0):
    """LN(z; alpha, beta) = alpha (z - mu) / sigma + beta over the last axis, sigma the
    population standard deviation sqrt(var + eps) (Ba et al. 2016 print eps = 0)."""
    mu = z.mean(-1, keepdim=True)
    sd = (((z - mu) ** 2).mean(-1, keepdim=True) + eps).sqrt()
    return gain * (z - mu) / sd + bias


@dataclass(frozen=True)
class Cell:
    name: str
    step: Callable
    states: dict
    output: tuple  # (name, size)
    params: dict
    count: Callable
    count_text: str
    count_source: str
    same_size: bool = False  # the cell needs I = H
    window: int = 1  # 2: the step reads x_{t-1}
    positive: tuple = ()  # states whose initial value must be > 0 (a divisor)
    notes: str = ""
    extra: dict = field(default_factory=dict)


def size(expr: str, I: int, H: int, P: int | None = None) -> tuple:
    """``"H x I"`` -> (H, I); ``"4H"`` -> (4H,)."""
    dims = {"I": I, "H": H, "P": P}
    out = []
    for part in expr.split(" x "):
        part = part.strip()
        k = int(part[:-1]) if len(part) > 1 else 1
        out.append(k * dims[part[-1]])
    return tuple(out)


def random_params(cell: Cell, I: int, H: int, P: int | None = None, *, gen: torch.Generator, scale=0.5):
    return {k: scale * torch.randn(size(s, I, H, P), generator=gen, dtype=torch.float64)
            for k, s in cell.params.items()}


def unroll(cell: Cell, p: dict, x, s0: dict):
    """(y (T, B, out), final states) of the cell run over x (T, B, I) from s0."""
    s = dict(s0)
    ys = []
    prev = torch.zeros_like(x[0])
    for t in range(x.shape[0]):
        y, s = cell.step(p, x[t], s, t=t, x_prev=prev)
        prev = x[t]
        ys.append(y)
    return torch.stack(ys), s


# ---------------------------------------------------------------- Greff et al. (2017)

def _greff_params(i=True, f=True, o=True, peep=True, fgr=False):
    gates = ["z"] + [g for g, on in (("i", i), ("f", f), ("o", o)) if on]
    out = {}
    for g in gates:
        out[f"W_{g}"] = "H x I"
        out[f"R_{g}"] = "H x H"
        out[f"b_{g}"] = "H"
        if peep and g != "z":
            out[f"p_{g}"] = "H"
    if fgr:
        out.update({f"R_{a}{b}": "H x H" for a in "ifo" for b in "ifo"})
    return out


def greff(*, i=True, f=True, o=True, g=tanh, h=tanh, peep=True, cifg=False, fgr=False):
    """Greff's vanilla LSTM (V) and its one-change variants: a missing gate is the constant 1,
    CIFG sets f = 1 - i, FGR adds R_{ab} a^{t-1} from every previous gate a into gate b."""
    def step(p, x, s, **_):
        c_prev, y_prev = s["c"], s["y"]

        def bar(gate, cell=None):
            a = lin(p[f"W_{gate}"], x) + lin(p[f"R_{gate}"], y_prev) + p[f"b_{gate}"]
            if peep and cell is not None:
                a = a + p[f"p_{gate}"] * cell
            if fgr and gate != "z":
                for src in "ifo":
                    a = a + lin(p[f"R_{src}{gate}"], s[src])
            return a

        z = g(bar("z"))
        ig = sigmoid(bar("i", c_prev)) if i else 1.0
        fg = 1.0 - ig if cifg else (sigmoid(bar("f", c_prev)) if f else 1.0)
        c = z * ig + c_prev * fg
        og = sigmoid(bar("o", c)) if o else 1.0  # the output peephole reads the new c^t
        y = h(c) * og
        new = {"c": c, "y": y}
        if fgr:
            new.update(i=ig, f=fg, o=og)
        return y, new
    return step


def _greff_cell(name, count, text, *, states=("c", "y"), **kw):
    spec_kw = {k: kw[k] for k in ("i", "f", "o", "peep", "fgr") if k in kw}
    if kw.get("cifg"):
        spec_kw["f"] = False
    return Cell(name, greff(**kw), {s: "H" for s in states}, ("y", "H"), _greff_params(**spec_kw), count, text,
                "Greff et al. (2017), single bias; TFA PeepholeLSTMCell for V")


# ---------------------------------------------------------------- the other cells

def mut1(p, x, s, **_):
    h = s["h"]
    z = sigmoid(lin(p["W_xz"], x) + p["b_z"])
    r = sigmoid(lin(p["W_xr"], x) + lin(p["W_hr"], h) + p["b_r"])
    h = tanh(lin(p["W_hh"], r * h) + tanh(x) + p["b_h"]) * z + h * (1 - z)
    return h, {"h": h}


def mut2(p, x, s, **_):
    h = s["h"]
    z = sigmoid(lin(p["W_xz"], x) + lin(p["W_hz"], h) + p["b_z"])
    r = sigmoid(x + lin(p["W_hr"], h) + p["b_r"])
    h = tanh(lin(p["W_hh"], r * h) + lin(p["W_xh"], x) + p["b_h"]) * z + h * (1 - z)
    return h, {"h": h}


def mut3(p, x, s, **_):
    h = s["h"]
    z = sigmoid(lin(p["W_xz"], x) + lin(p["W_hz"], tanh(h)) + p["b_z"])
    r = sigmoid(lin(p["W_xr"], x) + lin(p["W_hr"], h) + p["b_r"])
    h = tanh(lin(p["W_hh"], r * h) + lin(p["W_xh"], x) + p["b_h"]) * z + h * (1 - z)
    return h, {"h": h}


def mgu(p, x, s, **_):
    h = s["h"]
    f = sigmoid(lin(p["W_xf"], x) + lin(p["W_hf"], h) + p["b_f"])
    cand = tanh(lin(p["W_xh"], x) + lin(p["W_hh"], f * h) + p["b_h"])
    h = (1 - f) * h + f * cand
    return h, {"h": h}


def sru(highway):
    """SRU 2018 (official defaults): g = identity, only c carried; x'_t = sqrt(3) x_t when
    I = H (highway="scale"), else a 4th projection W_{hw} x_t (highway="proj")."""
    def step(p, x, s, **_):
        c = s["c"]
        xt = lin(p["W"], x)
        f = sigmoid(lin(p["W_f"], x) + p["v_f"] * c + p["b_f"])
        r = sigmoid(lin(p["W_r"], x) + p["v_r"] * c + p["b_r"])
        c = f * c + (1 - f) * xt
        skip = math.sqrt(3.0) * x if highway == "scale" else lin(p["W_hw"], x)
        h = r * c + (1 - r) * skip
        return h, {"c": c}
    return step


def qrnn(pooling, window):
    """QRNN in the paper's convention (f multiplies the carried state): z, f, o (, i) from a
    masked convolution of width 1 or 2 over x (W^1 x_{t-1} + W^2 x_t + b)."""
    def conv(p, g, x, x_prev):
        if window == 1:
            return lin(p[f"W_{g}"], x) + p[f"b_{g}"]
        return lin(p[f"W_{g}1"], x_prev) + lin(p[f"W_{g}2"], x) + p[f"b_{g}"]

    def step(p, x, s, x_prev=None, **_):
        z = tanh(conv(p, "z", x, x_prev))
        f = sigmoid(conv(p, "f", x, x_prev))
        if pooling == "f":
            h = f * s["h"] + (1 - f) * z
            return h, {"h": h}
        o = sigmoid(conv(p, "o", x, x_prev))
        if pooling == "fo":
            c = f * s["c"] + (1 - f) * z
        else:
            c = f * s["c"] + sigmoid(conv(p, "i", x, x_prev)) * z
        return o * c, {"c": c}
    return step


def _qrnn_params(pooling, window):
    gates = {"f": "zf", "fo": "zfo", "ifo": "zfoi"}[pooling]
    out = {}
    for g in gates:
        if window == 1:
            out[f"W_{g}"] = "H x I"
        else:
            out[f"W_{g}1"] = "H x I"
            out[f"W_{g}2"] = "H x I"
        out[f"b_{g}"] = "H"
    return out


def indrnn(p, x, s, **_):
    h = torch.relu(lin(p["W"], x) + p["u"] * s["h"] + p["b"])
    return h, {"h": h}


#: Clockwork: g = 4 modules with periods 2^{i-1}
CLOCK_PERIODS = (1, 2, 4, 8)


def clockwork(periods=CLOCK_PERIODS):
    """Koutnik et al. (2014): module i (k = H/g units) runs at steps t (from 0) with
    t mod T_i = 0, the others copy h_{t-1}; W_H is masked block-upper-triangular (module i
    reads modules j >= i, the ones with period >= T_i)."""
    g = len(periods)

    def masks(H, t, dtype):
        k = H // g
        module = torch.arange(H) // k
        period = torch.tensor(periods)[module]
        m = (t % period == 0).to(dtype)
        tri = (module[None, :] >= module[:, None]).to(dtype)  # row: receiving unit, column: sending unit
        return m, tri

    def step(p, x, s, t=0, **_):
        h = s["h"]
        H = h.shape[-1]
        assert H % g == 0, f"the clockwork cell needs H divisible by {g}"
        m, tri = masks(H, t, h.dtype)
        new = tanh(lin(p["W_I"], x) + lin(p["W_H"] * tri, h) + p["b"])
        h = m * new + (1 - m) * h
        return h, {"h": h}
    return step


def mingru(p, x, s, **_):
    z = sigmoid(lin(p["W_z"], x) + p["b_z"])
    cand = lin(p["W_h"], x) + p["b_h"]
    h = (1 - z) * s["h"] + z * cand
    return h, {"h": h}


def minlstm(p, x, s, **_):
    f = sigmoid(lin(p["W_f"], x) + p["b_f"])
    i = sigmoid(lin(p["W_i"], x) + p["b_i"])
    cand = lin(p["W_h"], x) + p["b_h"]
    h = f / (f + i) * s["h"] + i / (f + i) * cand
    return h, {"h": h}


def slstm(p, x, s, **_):
    """Beck et al. (2024), stabilised: m_t = max(log f_t + m_{t-1}, i~_t), i' = exp(i~ - m),
    f' = exp(log f + m_{t-1} - m); torch.maximum's gradient at a tie is split 1/2, 1/2."""
    h, c, n, m = s["h"], s["c"], s["n"], s["m"]

    def pre(g):
        return lin(p[f"W_{g}"], x) + lin(p[f"R_{g}"], h) + p[f"b_{g}"]
    z = tanh(pre("z"))
    i_tilde = pre("i")
    log_f = torch.nn.functional.logsigmoid(pre("f"))  # log sigma(f~)
    o = sigmoid(pre("o"))
    m_new = torch.maximum(log_f + m, i_tilde)
    i = torch.exp(i_tilde - m_new)
    f = torch.exp(log_f + m - m_new)
    c = f * c + i * z
    n = f * n + i
    h = o * (c / n)
    return h, {"h": h, "c": c, "n": n, "m": m_new}


def slstm_unstabilised(p, x, s, **_):
    """The same cell without m: i = exp(i~), f = sigma(f~); states h, c, n."""
    h, c, n = s["h"], s["c"], s["n"]

    def pre(g):
        return lin(p[f"W_{g}"], x) + lin(p[f"R_{g}"], h) + p[f"b_{g}"]
    z, i, f, o = tanh(pre("z")), torch.exp(pre("i")), sigmoid(pre("f")), sigmoid(pre("o"))
    c = f * c + i * z
    n = f * n + i
    h = o * c / n
    return h, {"h": h, "c": c, "n": n}


def gru_ds(variant=0):
    """Dey & Salem (2017): the GRU of Chung et al. (r before U_h, h = (1-z) h + z h~) and
    its gate variants 1 (no x in the gates), 2 (no x, no bias), 3 (sigma of a bias)."""
    def gate(p, g, x, h):
        if variant == 0:
            return sigmoid(lin(p[f"W_{g}"], x) + lin(p[f"U_{g}"], h) + p[f"b_{g}"])
        if variant == 1:
            return sigmoid(lin(p[f"U_{g}"], h) + p[f"b_{g}"])
        if variant == 2:
            return sigmoid(lin(p[f"U_{g}"], h))
        return sigmoid(p[f"b_{g}"]).expand_as(h)

    def step(p, x, s, **_):
        h = s["h"]
        z, r = gate(p, "z", x, h), gate(p, "r", x, h)
        cand = tanh(lin(p["W_h"], x) + lin(p["U_h"], r * h) + p["b_h"])
        h = (1 - z) * h + z * cand
        return h, {"h": h}
    return step


def _gru_params(variant):
    gate = {0: {"W_{g}": "H x I", "U_{g}": "H x H", "b_{g}": "H"}, 1: {"U_{g}": "H x H", "b_{g}": "H"},
            2: {"U_{g}": "H x H"}, 3: {"b_{g}": "H"}}[variant]
    out = {k.format(g=g): v for g in "zr" for k, v in gate.items()}
    out.update({"W_h": "H x I", "U_h": "H x H", "b_h": "H"})
    return out


def ugrnn(p, x, s, **_):
    h = s["h"]
    c = tanh(lin(p["W_cx"], x) + lin(p["W_ch"], h) + p["b_c"])
    g = sigmoid(lin(p["W_gx"], x) + lin(p["W_gh"], h) + p["b_g"])
    h = g * h + (1 - g) * c
    return h, {"h": h}


def plusrnn(p, x, s, **_):
    h = s["h"]
    y_in = torch.relu(lin(p["W_yx"], x) + lin(p["W_yh"], h) + p["b_y"])
    h_in = tanh(lin(p["W_hx"], x) + lin(p["W_hh"], h) + p["b_h"])
    g_y = sigmoid(lin(p["W_gyx"], x) + lin(p["W_gyh"], h) + p["b_gy"])
    g_h = sigmoid(lin(p["W_ghx"], x) + lin(p["W_ghh"], h) + p["b_gh"])
    y = g_y * x + (1 - g_y) * y_in
    h = g_h * h + (1 - g_h) * h_in
    return y, {"h": h}


def janet(beta=1.0):
    """van der Westhuizen & Lasenby (2018); the official code carries (c, h) with h = c."""
    def step(p, x, s, **_):
        c, h = s["c"], s["h"]
        st = lin(p["U_f"], h) + lin(p["W_f"], x) + p["b_f"]
        cand = tanh(lin(p["U_c"], h) + lin(p["W_c"], x) + p["b_c"])
        c = sigmoid(st) * c + (1 - sigmoid(st - beta)) * cand
        return c, {"c": c, "h": c}
    return step


def ln_lstm(p, x, s, **_):
    """Ba et al. (2016): LN over the whole 4H stacks, blocks (f, i, o, g), LN(c) at the
    output, the raw c carried."""
    c, h = s["c"], s["h"]
    a = layer_norm(lin(p["W_h"], h), p["alpha_1"], p["beta_1"], LN_EPS) + \
        layer_norm(lin(p["W_x"], x), p["alpha_2"], p["beta_2"], LN_EPS) + p["b"]
    f, i, o, g = a.chunk(4, dim=-1)
    c = sigmoid(f) * c + sigmoid(i) * tanh(g)
    h = sigmoid(o) * tanh(layer_norm(c, p["alpha_3"], p["beta_3"], LN_EPS))
    return h, {"c": c, "h": h}


def lstmp(p, x, s, **_):
    """Sak et al. (2014): peepholes (diagonal W_{ic}, W_{fc}, W_{oc}), projection r = W_{rm} m."""
    c, r = s["c"], s["r"]
    i = sigmoid(lin(p["W_ix"], x) + lin(p["W_ir"], r) + p["W_ic"] * c + p["b_i"])
    f = sigmoid(lin(p["W_fx"], x) + lin(p["W_fr"], r) + p["W_fc"] * c + p["b_f"])
    c = f * c + i * tanh(lin(p["W_cx"], x) + lin(p["W_cr"], r) + p["b_c"])
    o = sigmoid(lin(p["W_ox"], x) + lin(p["W_or"], r) + p["W_oc"] * c + p["b_o"])
    m = o * tanh(c)
    r = lin(p["W_rm"], m)
    return r, {"c": c, "r": r}


# ---------------------------------------------------------------- the table

H1 = {"h": "H"}
_G3 = "3IH+3H^2+5H"


def _clock_count(I, H, P=None):
    g = len(CLOCK_PERIODS)
    k = H // g
    return I * H + k * k * g * (g + 1) // 2 + H


CELLS: dict[str, Cell] = {c.name: c for c in [
    _greff_cell("greff_v", lambda I, H, P=None: 4*I*H + 4*H*H + 7*H, "4IH+4H^2+7H"),
    _greff_cell("greff_nig", lambda I, H, P=None: 3*I*H + 3*H*H + 5*H, _G3, i=False),
    _greff_cell("greff_nfg", lambda I, H, P=None: 3*I*H + 3*H*H + 5*H, _G3, f=False),
    _greff_cell("greff_nog", lambda I, H, P=None: 3*I*H + 3*H*H + 5*H, _G3, o=False),
    _greff_cell("greff_niaf", lambda I, H, P=None: 4*I*H + 4*H*H + 7*H, "4IH+4H^2+7H", g=ident),
    _greff_cell("greff_noaf", lambda I, H, P=None: 4*I*H + 4*H*H + 7*H, "4IH+4H^2+7H", h=ident),
    _greff_cell("greff_np", lambda I, H, P=None: 4*I*H + 4*H*H + 4*H, "4IH+4H^2+4H", peep=False),
    _greff_cell("greff_cifg", lambda I, H, P=None: 3*I*H + 3*H*H + 5*H, _G3, cifg=True),
    _greff_cell("greff_fgr", lambda I, H, P=None: 4*I*H + 13*H*H + 7*H, "4IH+13H^2+7H", fgr=True,
                states=("c", "y", "i", "f", "o")),
    Cell("mut1", mut1, H1, ("h", "H"),
         {"W_xz": "H x I", "b_z": "H", "W_xr": "H x I", "W_hr": "H x H", "b_r": "H", "W_hh": "H x H", "b_h": "H"},
         lambda I, H, P=None: 2*I*H + 2*H*H + 3*H, "2IH+2H^2+3H", "Jozefowicz et al. (2015), paper form, I = H",
         same_size=True),
    Cell("mut2", mut2, H1, ("h", "H"),
         {"W_xz": "H x I", "W_hz": "H x H", "b_z": "H", "W_hr": "H x H", "b_r": "H", "W_hh": "H x H",
          "W_xh": "H x I", "b_h": "H"},
         lambda I, H, P=None: 2*I*H + 3*H*H + 3*H, "2IH+3H^2+3H", "Jozefowicz et al. (2015), paper form, I = H",
         same_size=True),
    Cell("mut3", mut3, H1, ("h", "H"),
         {"W_xz": "H x I", "W_hz": "H x H", "b_z": "H", "W_xr": "H x I", "W_hr": "H x H", "b_r": "H",
          "W_hh": "H x H", "W_xh": "H x I", "b_h": "H"},
         lambda I, H, P=None: 3*I*H + 3*H*H + 3*H, "3IH+3H^2+3H", "Jozefowicz et al. (2015), paper form"),
    Cell("mgu", mgu, H1, ("h", "H"),
         {"W_xf": "H x I", "W_hf": "H x H", "b_f": "H", "W_xh": "H x I", "W_hh": "H x H", "b_h": "H"},
         lambda I, H, P=None: 2*I*H + 2*H*H + 2*H, "2IH+2H^2+2H", "Zhou et al. (2016), paper, single bias"),
    Cell("sru", sru("scale"), {"c": "H"}, ("h", "H"),
         {"W": "H x I", "W_f": "H x I", "v_f": "H", "b_f": "H", "W_r": "H x I", "v_r": "H", "b_r": "H"},
         lambda I, H, P=None: 3*H*H + 4*H, "3H^2+4H", "asappresearch/sru SRUCell, I = H (k = 3)", same_size=True),
    Cell("sru_proj", sru("proj"), {"c": "H"}, ("h", "H"),
         {"W": "H x I", "W_f": "H x I", "v_f": "H", "b_f": "H", "W_r": "H x I", "v_r": "H", "b_r": "H",
          "W_hw": "H x I"},
         lambda I, H, P=None: 4*I*H + 4*H, "4IH+4H", "asappresearch/sru SRUCell, I != H (k = 4)"),
    *[Cell(f"qrnn_{pool}_w{k}", qrnn(pool, k), {"h": "H"} if pool == "f" else {"c": "H"}, ("h", "H"),
           _qrnn_params(pool, k), (lambda n, k: lambda I, H, P=None: n * k * I * H + n * H)(len(pool) + 1, k),
           f"{len(pool) + 1}kIH+{len(pool) + 1}H, k={k}",
           "salesforce/pytorch-qrnn QRNNLayer (one Linear with bias; ifo adds the i block)", window=k)
      for pool in ("f", "fo", "ifo") for k in (1, 2)],
    Cell("indrnn", indrnn, H1, ("h", "H"), {"W": "H x I", "u": "H", "b": "H"},
         lambda I, H, P=None: I*H + 2*H, "IH+2H", "batzner/indrnn IndRNNCell"),
    Cell("clockwork", clockwork(), H1, ("h", "H"), {"W_I": "H x I", "W_H": "H x H", "b": "H"},
         _clock_count, "IH+k^2 g(g+1)/2+H",
         "Koutnik et al. (2014): IH + k^2 g(g+1)/2 (block-triangular W_H), plus the bias b of the symbolic form "
         "(brainstorm stores a full R: IH+H^2+H)"),
    Cell("mingru", mingru, H1, ("h", "H"), {"W_z": "H x I", "b_z": "H", "W_h": "H x I", "b_h": "H"},
         lambda I, H, P=None: 2*I*H + 2*H, "2IH+2H", "Feng et al. (2024) with biased Linear (lucidrains: 2IH)"),
    Cell("minlstm", minlstm, H1, ("h", "H"),
         {"W_f": "H x I", "b_f": "H", "W_i": "H x I", "b_i": "H", "W_h": "H x I", "b_h": "H"},
         lambda I, H, P=None: 3*I*H + 3*H, "3IH+3H", "Feng et al. (2024) with biased Linear (lucidrains: 3IH)"),
    Cell("slstm", slstm, {"h": "H", "c": "H", "n": "H", "m": "H"}, ("h", "H"),
         {f"{w}_{g}": s for g in "zifo" for w, s in (("W", "H x I"), ("R", "H x H"), ("b", "H"))},
         lambda I, H, P=None: 4*I*H + 4*H*H + 4*H, "4IH+4H^2+4H",
         "Beck et al. (2024), generic full-matrix form (official cell, N_H heads: 4H^2/N_H+4H)", positive=("n",)),
    *[Cell(name, gru_ds(v), H1, ("h", "H"), _gru_params(v), count, text, "Dey & Salem (2017), single bias")
      for name, v, count, text in [
          ("gru_ds", 0, lambda I, H, P=None: 3*I*H + 3*H*H + 3*H, "3IH+3H^2+3H"),
          ("gru1", 1, lambda I, H, P=None: I*H + 3*H*H + 3*H, "IH+3H^2+3H"),
          ("gru2", 2, lambda I, H, P=None: I*H + 3*H*H + H, "IH+3H^2+H"),
          ("gru3", 3, lambda I, H, P=None: I*H + H*H + 3*H, "IH+H^2+3H")]],
    Cell("ugrnn", ugrnn, H1, ("h", "H"),
         {"W_cx": "H x I", "W_ch": "H x H", "b_c": "H", "W_gx": "H x I", "W_gh": "H x H", "b_g": "H"},
         lambda I, H, P=None: 2*I*H + 2*H*H + 2*H, "2IH+2H^2+2H", "TF contrib UGRNNCell (single bias)"),
    Cell("plusrnn", plusrnn, H1, ("y", "H"),
         {f"{w}_{g}{a}" if w == "W" else f"b_{g}": s
          for g in ("y", "h", "gy", "gh") for w, a, s in (("W", "x", "H x I"), ("W", "h", "H x H"), ("b", "", "H"))},
         lambda I, H, P=None: 8*H*H + 4*H, "8H^2+4H", "TF contrib IntersectionRNNCell, I = H", same_size=True),
    Cell("janet", janet(1.0), {"c": "H", "h": "H"}, ("h", "H"),
         {"U_f": "H x H", "W_f": "H x I", "b_f": "H", "U_c": "H x H", "W_c": "H x I", "b_c": "H"},
         lambda I, H, P=None: 2*I*H + 2*H*H + 2*H, "2IH+2H^2+2H", "JosvanderWesthuizen/janet (official TF)"),
    Cell("janet_one", janet(1.0), {"c": "H", "h": "H"}, ("h", "H"),
         {"U_f": "H x H", "W_f": "H x I", "b_f": "H", "U_c": "H x H", "W_c": "H x I", "b_c": "H"},
         lambda I, H, P=None: 2*I*H + 2*H*H + 2*H, "2IH+2H^2+2H", "JosvanderWesthuizen/janet (official TF)"),
    Cell("ln_lstm", ln_lstm, {"c": "H", "h": "H"}, ("h", "H"),
         {"W_h": "4H x H", "W_x": "4H x I", "b": "4H", "alpha_1": "4H", "beta_1": "4H", "alpha_2": "4H",
          "beta_2": "4H", "alpha_3": "H", "beta_3": "H"},
         lambda I, H, P=None: 4*I*H + 4*H*H + 22*H, "4IH+4H^2+22H", "Ba et al. (2016) / TFA LayerNormLSTMCell"),
    Cell("lstmp", lstmp, {"c": "H", "r": "P"}, ("r", "P"),
         {"W_ix": "H x I", "W_ir": "H x P", "W_ic": "H", "b_i": "H", "W_fx": "H x I", "W_fr": "H x P", "W_fc": "H",
          "b_f": "H", "W_cx": "H x I", "W_cr": "H x P", "b_c": "H", "W_ox": "H x I", "W_or": "H x P", "W_oc": "H",
          "b_o": "H", "W_rm": "P x H"},
         lambda I, H, P=None: 4*I*H + 4*H*P + 7*H + P*H, "4IH+4HP+7H+PH",
         "Sak et al. (2014) without the output layer (TF1 LSTMCell(use_peepholes, num_proj): 4H(I+P)+7H+HP)"),
]}
