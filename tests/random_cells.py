"""Random valid cell specs, and the whole pipeline run on each (issue 17, item 4).

``random_spec(rng, name)`` writes a spec as a user could: one to three states, gates with
recurrent, input, peephole and bias terms, candidates whose matrix product reads a gated
state (``W (r_t \\odot h_{t-1})``), updates of four shapes (an activation of a sum, a convex
mix, two gated terms, a gate times an activation of a state at t), numeric constants, any
elementwise activation of the catalogue, an output that is a state or a vector of its own.

``run(spec_text, workdir)`` takes it through ``derive.kernel`` (parse, derive, generate,
self-check) and then checks the kernel's gradients with central finite differences written
here (float64, a random direction for x, every initial state and every parameter). The
outcome is ``("passed", "")``, ``("limit", message)`` for a located DeriveError, or
``("wrong", what)``; anything else propagates (a crash is a bug).

``python tests/random_cells.py N [SEED]`` runs N cells and prints the figures (tried, passed,
refused by kind, wrong).
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

import derive
from derive import activations as acts

STATE_NAMES = ["h", "c", "m"]
GATE_NAMES = ["r", "z", "f", "i", "o", "u"]
GATE_ACTS = [r"\sigma", r"\operatorname{hardsigmoid}"]
FRACTION = r"\frac{1}{3}"
SQUARE = 'sizes = { x = "H" }\n'
BETA = "constants = { beta = 0.5 }\n"


def _activations() -> list[str]:
    """Every elementwise activation a spec can name, by its first LaTeX spelling."""
    return [acts.get(n).commands[0] for n in acts.elementwise()]


#: functions of the spec language beside the activations
FUNCTIONS = [r"\abs", r"\exp"]


def random_spec(rng: random.Random, name: str) -> str:
    states = rng.sample(STATE_NAMES, rng.randint(1, 3))
    gates = rng.sample(GATE_NAMES, rng.randint(0, 3))
    act = _activations() + FUNCTIONS
    square_input = rng.random() < 0.15  # sizes = { x = "H" }: x_t may join an H-vector unweighted
    beta = rng.random() < 0.2  # a named constant
    lines = []

    def recurrent_terms(target: str) -> list[str]:
        terms = [rf"W_{{x{target}}} x_t"]
        for s in states:
            roll = rng.random()
            if roll < 0.5:
                terms.append(rf"W_{{{s}{target}}} {s}_{{t-1}}")
            elif roll < 0.6:
                terms.append(rf"p_{{{s}{target}}} \odot {s}_{{t-1}}")
            elif roll < 0.7 and gates_done:
                g = rng.choice(gates_done)
                terms.append(rf"W_{{{s}{target}}} ({g}_t \odot {s}_{{t-1}})")
        if rng.random() < 0.7:
            terms.append(f"b_{target}")
        if rng.random() < 0.1:
            terms.append(f"{rng.choice(['0.5', '2', '0.25', FRACTION])} {states[0]}_{{t-1}}")
        if beta and rng.random() < 0.3:
            terms.append(rf"\beta {rng.choice(states)}_{{t-1}}")
        if square_input and rng.random() < 0.3:
            terms.append("x_t")
        rng.shuffle(terms)
        return terms

    gates_done: list[str] = []
    for g in gates:
        lines.append(rf"{g}_t = {rng.choice(GATE_ACTS)}({' + '.join(recurrent_terms(g))})")
        gates_done.append(g)
    for k, s in enumerate(states):
        cand = "nqg"[k]
        shape = rng.randint(0, 4) if gates else rng.choice([0, 0, 4])
        if shape == 4:  # an elementwise maximum or minimum of a candidate and the old state
            lines.append(rf"{cand}_t = {rng.choice(act)}({' + '.join(recurrent_terms(cand))})")
            lines.append(rf"{s}_t = \{rng.choice(['max', 'min'])}({cand}_t, {s}_{{t-1}})")
        elif shape == 0:
            lines.append(rf"{s}_t = {rng.choice(act)}({' + '.join(recurrent_terms(s))})")
        elif shape == 1:
            g = rng.choice(gates)
            lines.append(rf"{cand}_t = {rng.choice(act)}({' + '.join(recurrent_terms(cand))})")
            lines.append(rf"{s}_t = {g}_t \odot {s}_{{t-1}} + (1 - {g}_t) \odot {cand}_t")
        elif shape == 2:
            g1, g2 = rng.choice(gates), rng.choice(gates)
            lines.append(rf"{cand}_t = {rng.choice(act)}({' + '.join(recurrent_terms(cand))})")
            lines.append(rf"{s}_t = {g1}_t \odot {s}_{{t-1}} + {g2}_t \odot {cand}_t")
        else:
            g = rng.choice(gates)
            if k > 0:
                lines.append(rf"{s}_t = {g}_t \odot {rng.choice(act)}({states[k - 1]}_t)")
            else:
                lines.append(rf"{s}_t = {g}_t \odot {rng.choice(act)}({' + '.join(recurrent_terms(s))})")
    output = rng.choice(states)
    if rng.random() < 0.25:
        output = "y"
        lines.append(rf"y_t = {rng.choice(act)}(W_{{{states[-1]}y}} {states[-1]}_t + b_y)")
    quoted = ", ".join(f'"{s}"' for s in states)
    gate_list = ", ".join(f'"{g}"' for g in gates)
    body = "\n".join(lines)
    extra = (SQUARE if square_input else "") + (BETA if beta else "")
    return (f'name = "{name}"\ninput = "x"\nstates = [{quoted}]\noutput = "{output}"\ngates = [{gate_list}]\n'
            f"{extra}equations = '''\n{body}\n'''\n")


def _loss(k, x, s0, params, w, v):
    y, sT, _ = k.forward(x, s0, params)
    return float((w * y).sum() + sum((v[s] * sT[s]).sum() for s in k.STATES))


def _gradients_agree(k, seed: int, square: bool) -> str:
    """'' when the kernel's gradients match central differences of its forward, else what differs."""
    rng = np.random.default_rng(seed)
    I, H, T, B = 4 if square else 3, 4, 3, 2
    params = k.init_params(I, H, seed=seed)
    params = {n: 0.8 * a for n, a in params.items()}
    x = rng.standard_normal((T, B, I))
    s0 = {s: 0.5 * rng.standard_normal((B, H)) for s in k.STATES}
    y, sT, cache = k.forward(x, s0, params)
    w = rng.standard_normal(y.shape)
    v = {s: rng.standard_normal(sT[s].shape) for s in k.STATES}
    grads = k.backward(w, v, cache, params)
    args = {"x": x, **{f"state {s}": s0[s] for s in s0}, **params}
    for key, value in args.items():
        u = rng.standard_normal(value.shape)
        eps = 1e-6

        def at(sign):
            xx, ss, pp = x, dict(s0), dict(params)
            if key == "x":
                xx = x + sign * eps * u
            elif key.startswith("state "):
                ss[key[6:]] = s0[key[6:]] + sign * eps * u
            else:
                pp[key] = params[key] + sign * eps * u
            return _loss(k, xx, ss, pp, w, v)

        fd = (at(1) - at(-1)) / (2 * eps)
        gkey = key[6:] if key.startswith("state ") else key
        got = float((grads[gkey] * u).sum())
        if abs(fd - got) > 1e-5 * max(1.0, abs(fd)):
            return f"gradient of {key}: kernel {got:.8g}, finite differences {fd:.8g}"
    return ""


def run(spec_text: str, workdir: Path, name: str, seed: int = 0) -> tuple[str, str]:
    path = workdir / f"{name}.toml"
    path.write_text(spec_text, encoding="utf-8")
    try:
        k = derive.kernel(str(path))
    except derive.DeriveError as e:
        return "limit", str(e)
    problem = _gradients_agree(k, seed, SQUARE in spec_text)
    return ("wrong", problem) if problem else ("passed", "")


def kind(message: str) -> str:
    """A refusal's kind: its message without the file position, numbers and names."""
    text = re.sub(r"^\S+:\d+:\d+: error: |^\S+\.toml: (error: )?", "", message)
    text = re.sub(r"\b[A-Za-z]_\{?[A-Za-z0-9]+\}?(_t|_\{t-1\})?\b|\d+(\.\d+)?", "_", text)
    return text[:90]


def main(n: int, seed: int) -> int:
    rng = random.Random(seed)
    outcomes, kinds, wrong = Counter(), Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            spec = random_spec(rng, f"rand{i}")
            outcome, message = run(spec, Path(tmp), f"rand{i}", seed=i)
            outcomes[outcome] += 1
            if outcome == "limit":
                kinds[kind(message)] += 1
            elif outcome == "wrong":
                wrong.append((spec, message))
    print(f"tried {n}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    for k, v in kinds.most_common():
        print(f"  refused {v:5d}  {k}")
    for spec, message in wrong:
        print(f"WRONG: {message}\n{spec}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100, int(sys.argv[2]) if len(sys.argv) > 2 else 0))
