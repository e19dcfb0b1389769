"""The model pages (issue 19): a built-in model's equations across its layers, counts, use, and the
gradient that reaches layer 1, measured with the model's kernels against depth, with and without
residual connections."""

from __future__ import annotations

from importlib import resources

import numpy as np

from derive.checker.claims import check
from derive.runtime.model import model
from derive.summary import model as model_summary
from derive.summary import seq2seq as seq2seq_summary
from derive.symbolic import seq2seq as seq2seq_spec
from derive.symbolic import model as model_spec

#: the depth measurement: I = H (so a residual adds at every layer), one sequence, the gradient of a
#: unit random direction at the last step's output, measured at the last step's input
DEPTHS = (1, 2, 4, 8, 16)
DEPTH_CELLS = ("rnn_tanh", "gru", "lstm")
HIDDEN, STEPS, SEED = 32, 10, 0
EXAMPLE = {"I": 10, "H": 20}


def layer1_gradient(cell: str, layers: int, residual: bool) -> float:
    """||d y_T / d x^(1)_T u||_2 for a unit random u, at PyTorch's initialisation (seeded)."""
    m = model({"cell": cell, "layers": layers, "residual": residual})
    p = m.init_params(HIDDEN, HIDDEN, seed=SEED)
    rng = np.random.default_rng(SEED + 1)
    x = rng.standard_normal((STEPS, 1, HIDDEN))
    y, _, cache = m.forward(x, None, p)
    dy = np.zeros_like(y)
    u = rng.standard_normal(y.shape[-1])
    dy[-1, 0] = u / np.linalg.norm(u)
    return float(np.linalg.norm(m.backward(dy, None, cache, p)["x"][-1]))


def depth_table() -> list[dict]:
    """Per cell, the measured norm at each depth, plain and residual (3 significant figures)."""
    rows = []
    for cell in DEPTH_CELLS:
        for residual in (False, True):
            rows.append({"cell": cell, "residual": residual,
                         "norms": [float(f"{layer1_gradient(cell, n, residual):.3g}") for n in DEPTHS]})
    return rows


#: the worked decode: a seeded untrained model, one source sentence of token ids
DECODE = {"hidden": 16, "seed": 0, "src": [3, 7, 4, 9, 5], "max_len": 6, "beam": 3, "bos": 1, "eos": 2}


def seq2seq_data(name: str) -> dict:
    spec = seq2seq_spec.load_model(name)
    data = seq2seq_summary.collect(spec)
    data["toml"] = spec_text(name)
    m = model(name)
    p = m.init_params(DECODE["hidden"], seed=DECODE["seed"])
    src = np.array(DECODE["src"])[:, None]
    kw = {k: DECODE[k] for k in ("max_len", "bos", "eos")}
    trace: list = []
    (beam,) = m.decode(src, p, beam=DECODE["beam"], trace=trace, **kw)
    (greedy,) = m.decode(src, p, beam=1, **kw)
    rows = []
    for n, step in enumerate(trace[0], 1):
        rows.append({"n": n, "alive": [(" ".join(map(str, t)), f"{lp:.3f}") for t, lp in step["alive"]],
                     "finished": [(" ".join(map(str, t)), f"{lp:.3f}") for t, lp, _ in step["finished"]]})
    data["decode"] = {**DECODE, "steps": rows,
                      "beam_best": (" ".join(map(str, beam.tokens)), f"{beam.logp:.3f}"),
                      "greedy": (" ".join(map(str, greedy.tokens)), f"{greedy.logp:.3f}")}
    parts = m.count(EXAMPLE["H"], convention="single")
    data["example"] = {**EXAMPLE, "parts": parts, "total": sum(parts.values()),
                       "torch": sum(m.count(EXAMPLE["H"], convention="pytorch").values())}
    data["checks"] = checks(name)
    return data


def is_seq2seq(name: str) -> bool:
    return isinstance(seq2seq_spec.load_model(name), seq2seq_spec.Seq2SeqSpec)


def model_data(name: str) -> dict:
    spec = model_spec.load(name)
    data = model_summary.collect(spec)
    data["toml"] = spec_text(name)
    data["example"] = {**EXAMPLE,
                       "single": spec.count(EXAMPLE["I"], EXAMPLE["H"], convention="single"),
                       "torch": spec.count(EXAMPLE["I"], EXAMPLE["H"], convention="pytorch"),
                       "inputs": spec.layer_inputs(EXAMPLE["I"], EXAMPLE["H"])}
    data["checks"] = checks(name)
    return data


#: claims a model page checks at build time, in the model's notation (``checker.model``): a right one and,
#: where it teaches something, the slip people make (the checker's verdict and hint are printed as given)
CHECKS = {
    "deep_residual_lstm": [
        r"\delta x^{(l)}_t = W_{xi}^{(l)T} \delta z^{(l)}_{i,t} + W_{xf}^{(l)T} \delta z^{(l)}_{f,t} + "
        r"W_{xg}^{(l)T} \delta z^{(l)}_{g,t} + W_{xo}^{(l)T} \delta z^{(l)}_{o,t} + \delta x^{(l+1)}_t",
        r"\delta x^{(l)}_t = W_{xi}^{(l)T} \delta z^{(l)}_{i,t} + W_{xf}^{(l)T} \delta z^{(l)}_{f,t} + "
        r"W_{xg}^{(l)T} \delta z^{(l)}_{g,t} + W_{xo}^{(l)T} \delta z^{(l)}_{o,t}",
    ],
    "deep_bigru": [
        r"\delta \overleftarrow{h}^{(l)}_t = \delta \overleftarrow{y}^{(l)}_t + W_{hr}^{(l)T} "
        r"\delta \overleftarrow{z}^{(l)}_{r,t-1} + W_{hz}^{(l)T} \delta \overleftarrow{z}^{(l)}_{z,t-1} + "
        r"W_{hn}^{(l)T} (\delta \overleftarrow{z}^{(l)}_{n,t-1} \odot \overleftarrow{r}^{(l)}_{t-1}) + "
        r"\delta \overleftarrow{h}^{(l)}_{t-1} \odot \overleftarrow{z}^{(l)}_{t-1}",
    ],
    "seq2seq_bahdanau": [  # a decoder step (``checker.seq2seq``): the softmax's gradient, a slip, a path, the bridge
        r"\delta e_{t,s} = \alpha_{t,s} \left(\delta \alpha_{t,s} - \sum_k \alpha_{t,k} \delta \alpha_{t,k}\right)",
        r"\delta e_{t,s} = \alpha_{t,s} (1 - \alpha_{t,s}) \delta \alpha_{t,s}",
        r"\delta s_{t-1} \mathrel{+}= W_a^\top \sum_s \delta z_{t,s}",
        r"\delta u = W_b^\top \left(\delta s_0 \odot (1 - s_0^2)\right)",
    ],
    "seq2seq_luong": [
        r"\delta o_t = \frac{p_t - \mathbf{1}_{y_t}}{T B}",
        r"\delta [c_t; s_t] = W_c^\top \left(W_o^\top \delta o_t \odot (1 - \tilde{h}_t^2)\right)",
        r"\delta s_t \mathrel{+}= \sum_s \delta e_{t,s} W_a a_s",
    ],
}


def checks(name: str) -> list[dict]:
    """The page's example claims with the verdict, the reading and the hint ``derive check`` gives."""
    out = []
    for claim in CHECKS.get(name, []):
        r = check(name, claim)
        stack = not is_seq2seq(name)
        reading = r.reading[:r.reading.rindex(": ")] if stack else r.reading  # a stack's: without the claim on the cell
        out.append({"claim": claim, "verdict": str(r.verdict), "reading": reading, "derived": r.derived,
                    "hint": r.hint})
    return out


def spec_text(name: str) -> str:
    return (resources.files("derive.models") / f"{name}.toml").read_text(encoding="utf-8")
