"""The kernel generator decides, then prints (issue 16): a frozen plan holds every layout
decision, one namer owns the generated names (and refuses a name for two quantities), and
the forward and backward emitters read the plan only, so they give the same lines in either
order. The modules stay small enough to read."""

import ast
import dataclasses
from pathlib import Path

import pytest
import sympy as sp

import derive
from derive import DeriveError
from derive.codegen import kernel, selfcheck
from derive.codegen.backward import backward_lines
from derive.codegen.forward import forward_lines
from derive.codegen.names import Namer
from derive.codegen.parts import backward_exprs
from derive.codegen.plan import BlockKind, GroupKind, _reads_next_step, make_plan
from derive.symbolic import ir

ROOT = Path(__file__).resolve().parent.parent
CODEGEN = ROOT / "derive" / "codegen"
GOLDEN = sorted((ROOT / "tests" / "golden" / "specs").glob("*.toml"))
#: every cell with a kernel: the built-ins by name, the golden specs by path
CELLS = [*derive.builtin_names(), *(str(p) for p in GOLDEN)]
IDS = [*derive.builtin_names(), *(p.stem for p in GOLDEN)]
MAX_MODULE, MAX_CLASS = 500, 300


@pytest.fixture(scope="module", params=CELLS, ids=IDS)
def derivation(request):
    return derive.derive(derive.load(request.param))


# ------------------------------------------------------------ the plan is frozen
#: (what, assignment that must raise) on a plan
MUTATIONS = {
    "plan attribute": lambda p: setattr(p, "blocks", ()),
    "plan new attribute": lambda p: setattr(p, "extra", 1),
    "block attribute": lambda p: setattr(p.blocks[0], "start", sp.Integer(1)),
    "group attribute": lambda p: setattr(p.groups[0], "atoms", ()),
    "group kind": lambda p: setattr(p.groups[0], "kind", GroupKind.LATE),
    "saved mapping": lambda p: p.saved.__setitem__(sp.Symbol("q"), "q_all"),
    "step names mapping": lambda p: p.step_names.__setitem__(sp.Symbol("q"), "q_t"),
    "levels mapping": lambda p: p.levels.__setitem__(sp.Symbol("q"), 0),
}


@pytest.mark.parametrize("what", MUTATIONS)
def test_the_plan_cannot_be_changed(derivation, what):
    plan = make_plan(derivation)
    with pytest.raises((dataclasses.FrozenInstanceError, TypeError, AttributeError)):
        MUTATIONS[what](plan)


def test_the_plan_holds_tuples_not_lists(derivation):
    plan = make_plan(derivation)
    for value in (plan.groups, plan.blocks, plan.schedule, plan.shared_runs, *(g.atoms for g in plan.groups),
                  *(g.cols for g in plan.groups), *(b.groups for b in plan.blocks), *plan.gate_runs.values()):
        assert isinstance(value, tuple), value


def test_kinds_are_str_enums_equal_to_their_strings(derivation):
    plan = make_plan(derivation)
    assert {g.kind for g in plan.groups} <= {"input", "tap", "recurrent", "late"}
    assert all(isinstance(g.kind, GroupKind) and isinstance(b.kind, BlockKind)
               for g in plan.groups for b in plan.blocks)
    table = kernel.context(derivation, "x.toml")["gemm_table"]
    assert all(type(row["kind"]) is str for row in table.values())  # printed as 'input', not GroupKind.INPUT


def test_the_backward_reads_each_activation_of_a_step_kept_not_recomputed(derivation):
    """An activation the backward reads at step t is computed once, in the forward pass: it is a gate
    (kept as the gate's output) or kept per step in ``saved``. JANET's sigma(s_t - beta) was neither (its
    argument is a pre-activation feeding no gate), so both backends evaluated it again in the backward,
    twice per element in the compiled one, by a scalar sigmoid."""
    plan = make_plan(derivation)
    gated = {b.z for b in plan.blocks if b.gate is not None}
    recomputed = [f for e in backward_exprs(plan.d) for f in e.atoms(derive.activations.Activation)
                  if f.args[0].free_symbols and f.args[0] not in gated and not _reads_next_step(f)
                  and f not in plan.saved]
    assert not recomputed, recomputed


# ------------------------------------------------------- either order, same lines
def test_backward_before_forward_gives_the_same_lines(derivation):
    usual = make_plan(derivation)
    fwd, bwd = forward_lines(usual), backward_lines(usual)
    reverse = make_plan(derivation)
    bwd_first = backward_lines(reverse)
    assert forward_lines(reverse) == fwd
    assert bwd_first == bwd
    assert backward_lines(usual) == bwd and forward_lines(usual) == fwd  # and again, on the same plan
    assert make_plan(derivation) == usual  # emitting changed nothing the plan holds


def test_the_rendered_kernel_is_the_same_with_backward_first(derivation, monkeypatch):
    normal = kernel.render(derivation, "cell.toml")
    plans = []

    def backward_first(d, source):
        plan = make_plan(d)
        plans.append(plan)
        bwd = backward_lines(plan)
        return forward_lines(plan), bwd

    real_context = kernel.context

    def context(d, source):
        out = real_context(d, source)
        fwd, bwd = backward_first(d, source)
        return {**out, "forward": fwd, "backward": bwd}

    monkeypatch.setattr(kernel, "context", context)
    assert kernel.render(derivation, "cell.toml") == normal
    assert plans


# ------------------------------------------------------------------- the namer
LSTM = derive.load("lstm")
H, C, F = (ir.symbol(k, None, 0) for k in ("h", "c", "f"))
#: (name, first quantity, second quantity): two different quantities for one generated name
COLLISIONS = {
    "state and its past": ("h", H, ir.at(H, -1)),
    "two states": ("h_all", H, C),
    "a gate and a product": ("W_hf_h", F, ir.MatVec(ir.symbol("W", "hf"), ir.at(H, -1))),
    "an activation and a vector": ("tanh_c_t", derive.ACTIVATIONS["tanh"](C), C),
}


@pytest.mark.parametrize("row", COLLISIONS)
def test_the_namer_refuses_one_name_for_two_quantities(row):
    name, first, second = COLLISIONS[row]
    namer = Namer(LSTM)
    assert namer.claim(name, first) == name
    assert namer.claim(name, first) == name  # the same quantity again is fine
    assert namer.claim(name, second, "another space") == name  # so is another namespace
    with pytest.raises(DeriveError) as err:
        namer.claim(name, second)
    msg = str(err.value)
    assert f"generated name {name!r} would stand for both" in msg
    for q in (first, second):
        assert derive.symbolic.printing.text(q) in msg
        assert f"(in {namer.equation_of(q)})" in msg
    assert msg.count("(in ") == 2


def test_the_namer_names_the_equations_as_written():
    namer = Namer(LSTM)
    assert namer.equation_of(H) == LSTM.assignment(H).source  # h_t's own equation
    assert namer.equation_of(ir.at(H, -1)) != "no equation"  # the first equation reading h_{t-1}
    assert namer.equation_of(ir.adjoint(C)) == LSTM.assignment(C).source  # an adjoint: its vector's


SPEC = """name = "c"
input = "x"
states = ["h"]
output = "h"
equations = '''
{}
'''
"""
#: specs where two quantities of the spec would take one generated name -> the two quantities
#: (as the spec writes them) and the line:column the error points at (the second one's)
COLLIDING_SPECS = {
    "a parameter h_{all} vs the steps of the state h": (
        "h_t = \\tanh(W_{xh} x_t + h_{all} \\odot h_{t-1})", ("h_{all}", "h_t"), "6:1"),
    "a parameter h_{prev} vs h_{t-1}": (
        "h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1}) \\odot h_{prev}", ("h_{prev}", "h_{t-1}"), "6:1"),
}


@pytest.mark.parametrize("row", COLLIDING_SPECS)
def test_a_spec_whose_names_collide_is_refused_naming_both(row, tmp_path):
    equations, quantities, where = COLLIDING_SPECS[row]
    path = tmp_path / "c.toml"
    path.write_text(SPEC.format(equations))
    d = derive.derive(derive.load(str(path)))
    with pytest.raises(DeriveError, match="would stand for both") as err:
        make_plan(d)
    msg = str(err.value)
    assert all(q in msg for q in quantities), msg
    assert msg.startswith(f"{path}:{where}: error:"), msg  # located in the spec
    assert ",)" not in msg and "|" not in msg, msg  # the spec's text: no tuple, no IR symbol name
    with pytest.raises(DeriveError, match="would stand for both"):
        derive.kernel(str(path))


#: specs where a name of the spec is one derive would give its own quantity: derive's yields
#: -> (a name the kernel source must bind, derive's renamed one)
YIELDING_SPECS = {
    "a vector h_{r} vs the late argument r_t ⊙ h_{t-1}": (
        "r_t = \\sigma(W_{xr} x_t + W_{hr} h_{t-1})\nh_{r,t} = \\tanh(W_{xq} x_t)\n"
        "h_t = \\tanh(W_{xh} x_t + W_{hh} (r_t \\odot h_{t-1})) \\odot h_{r,t}", "h_r_t", "h_r_cat_t"),
    "a state y vs the output gradient dy_t": ("y_t = \\tanh(W_{xy} x_t + W_{yy} y_{t-1})", "dy_t", "_dy_t"),
    "a parameter W beside the fused matrix W_x": ("h_t = \\tanh(W x_t + W_{hh} h_{t-1})", "W", "W_x"),
    "a parameter T vs the number of steps": ("h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1}) \\odot T", "T", "_T"),
    "a parameter a vs the pre-activations": ("h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + a)", "a", "_a"),
    "a matrix B vs the batch size": ("h_t = \\tanh(B x_t + W_{hh} h_{t-1})", "B", "_B"),
    "a matrix H vs the hidden size": ("h_t = \\tanh(W_{xh} x_t + H h_{t-1})", "H", "_H"),
    "a parameter s_{h} vs the slice of a_h": ("h_t = \\tanh(W_{xh} x_t + W_{hh} h_{t-1} + s_{h})", "s_h", "_s_h"),
}


@pytest.mark.parametrize("row", YIELDING_SPECS)
def test_derive_s_own_names_yield_to_the_spec_s(row, tmp_path):
    equations, spec_name, own = YIELDING_SPECS[row]
    text = SPEC.format(equations)
    if "y_t" in equations:
        text = text.replace('states = ["h"]\noutput = "h"', 'states = ["y"]\noutput = "y"')
    path = tmp_path / "c.toml"
    path.write_text(text)
    derive.kernel(str(path))  # generated, audited and self-checked
    source = kernel.render(derive.derive(derive.load(str(path))), "c.toml")
    names = {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
    assert {spec_name, own} <= names, sorted(names)


def test_generator_messages_write_quantities_as_the_spec_does():
    """An error of the kernel generator never shows an IR symbol's name (``s||1``)."""
    assert selfcheck.readable("no value for s||1 in (d:z|f,1|0, W|xf|, h||-1); a|b stays") == \
        "no value for s_{t+1} in (dz_{f,1,t}, W_{xf}, h_{t-1}); a|b stays"


# ---------------------------------------------------------------- small modules
def _sizes():
    for path in sorted(CODEGEN.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        yield path.name, len(path.read_text(encoding="utf-8").splitlines()), [
            (n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def test_codegen_modules_and_classes_are_small():
    too_big = [f"{name}: {lines} lines" for name, lines, _ in _sizes() if lines > MAX_MODULE]
    too_big += [f"{name}: class {cls} {n} lines" for name, _, classes in _sizes() for cls, n in classes
                if n > MAX_CLASS]
    assert too_big == []


def test_the_size_check_measures_classes():
    sizes = {name: classes for name, _, classes in _sizes()}
    assert dict(sizes["plan.py"])["Plan"] > 10
