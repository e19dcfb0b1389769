"""The activation catalogue: stanzas, derived properties, stable kernels, witnesses.

One row per activation. The facts in ROWS come from the literature and reference.md
(not from derive): a property computed from the definition must agree with them.
"""

import math
import warnings

import numpy as np
import pytest
import sympy as sp

import derive
from derive import activations as acts
from derive.witness import activations as witness
from derive.errors import DeriveError
from derive.symbolic.properties import analyse

x = sp.Symbol("x", real=True)
oo = sp.oo
I = sp.Interval

#: name -> range, smoothness, monotonic, saturation (left, right), sign-preserving (f(0) = 0, sign f = sign x),
#: minimum (value, at) or None; all of the mathematical function (softplus without PyTorch's threshold)
ROWS = {
    "sigmoid": (I.open(0, 1), "C^inf", "increasing", ("soft", "soft"), False, None),
    "tanh": (I.open(-1, 1), "C^inf", "increasing", ("soft", "soft"), True, None),
    "relu": (I(0, oo), "C^0", "non-decreasing", ("hard", "none"), False, (0, None)),
    "identity": (sp.S.Reals, "C^inf", "increasing", ("none", "none"), True, None),
    "leaky_relu": (sp.S.Reals, "C^0", "increasing", ("none", "none"), True, None),
    "prelu": (sp.S.Reals, "C^0", "increasing", ("none", "none"), True, None),
    "rrelu": (sp.S.Reals, "C^0", "increasing", ("none", "none"), True, None),
    "elu": (I.open(-1, oo), "C^1", "increasing", ("soft", "none"), True, None),  # alpha = 1: C^1
    "selu": (I.open(-1.6732632423543772 * 1.0507009873554805, oo), "C^0", "increasing", ("soft", "none"), True, None),
    "celu": (I.open(-1, oo), "C^1", "increasing", ("soft", "none"), True, None),
    "maxout": None,
    "glu": None,
    "swish": (I(-0.2784645427610738, oo), "C^inf", "no", ("soft", "none"), True, (-0.2784645427610738, -1.2784645427610738)),
    "silu": (I(-0.2784645427610738, oo), "C^inf", "no", ("soft", "none"), True, (-0.2784645427610738, -1.2784645427610738)),
    "su": (I(-1 / math.e, oo), "C^1", "no", ("soft", "none"), True, (-1 / math.e, -1.0)),  # seed 000; C1 not C2
    "gelu": (I(-0.16997120747990368, oo), "C^inf", "no", ("soft", "none"), True, (-0.16997120747990368, -0.7517915246935645)),
    "gelu_tanh": (I(-0.17004, oo), "C^inf", "no", ("soft", "none"), True, (-0.17004, -0.7525)),
    "mish": (I(-0.30884, oo), "C^inf", "no", ("soft", "none"), True, (-0.30884, -1.19239)),
    "hardtanh": (I(-1, 1), "C^0", "non-decreasing", ("hard", "hard"), True, (-1, None)),
    "softsign": (I.open(-1, 1), "C^1", "increasing", ("soft", "soft"), True, None),
    # log(1 + e^x) itself; PyTorch's threshold switch (a 2e-9 downward jump at x = 20) is reported apart
    "softplus": (I.open(0, oo), "C^inf", "increasing", ("soft", "none"), False, None),
    "hardsigmoid": (I(0, 1), "C^0", "non-decreasing", ("hard", "hard"), False, (0, None)),
    "hardsigmoid_keras2": (I(0, 1), "C^0", "non-decreasing", ("hard", "hard"), False, (0, None)),
    "logsigmoid": (I.open(-oo, 0), "C^inf", "increasing", ("none", "soft"), False, None),
}
GATE_OK = {"sigmoid", "hardsigmoid", "hardsigmoid_keras2"}
ELEMENTWISE = [n for n in ROWS if ROWS[n] is not None]


def test_every_activation_has_a_row():
    assert sorted(ROWS) == sorted(acts.REGISTRY)


def _close_set(a, b, tol=1e-4):
    if a == b:
        return True
    if not (isinstance(a, sp.Interval) and isinstance(b, sp.Interval)):
        return False
    ends = [(a.inf, b.inf), (a.sup, b.sup)]
    same_ends = all((p == q) or (p.is_finite and q.is_finite and abs(float(p) - float(q)) < tol) for p, q in ends)
    return same_ends and a.left_open == b.left_open and a.right_open == b.right_open


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_properties_agree_with_the_literature(name):
    rng, smooth, mono, sat, zc, minimum = ROWS[name]
    p = analyse(name)
    assert _close_set(p.range, rng), (p.range, rng)
    assert p.smoothness == smooth
    assert p.monotonic.split(" ")[0] == mono
    assert p.saturation == sat
    assert p.sign_preserving is zc
    assert p.gate_ok is (name in GATE_OK)
    if minimum is None:
        assert p.minimum is None
    else:
        value, at = minimum
        assert abs(float(p.minimum[0]) - value) < 1e-4
        if at is not None:
            assert abs(float(next(iter(p.minimum[1]))) - at) < 1e-3


def test_seed_claims_about_saturation_and_offset():
    # seed 000: ReLU is hard-saturated on half the initial N(0, 1) inputs; Swish on none
    assert analyse("relu").saturated_mass == pytest.approx(0.5, abs=1e-12)
    assert analyse("swish").saturated_mass == 0
    # ReLU's outputs are offset: E relu(z) = 1/sqrt(2 pi); tanh's are centred; SELU self-normalises
    assert analyse("relu").gaussian_mean == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-10)
    assert abs(analyse("tanh").gaussian_mean) < 1e-12
    assert abs(analyse("selu").gaussian_mean) < 1e-6
    # the seed-000 function: continuous first derivative, jump in the second at 0
    (point, order, _), = analyse("su").kinks
    assert point == 0 and order == 2
    # ELU with alpha != 1 loses C^1; CELU keeps it for every alpha
    assert analyse("elu", alpha=2.0).smoothness == "C^0"
    assert analyse("celu", alpha=2.0).smoothness == "C^1"


#: zero-centred in the sense of the mean output under N(0, 1) inputs: exactly these
ZERO_MEAN = {"tanh", "identity", "selu", "hardtanh", "softsign"}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_centred_means_a_zero_mean_output(name):
    """E7: "zero-centred" is E f(z) = 0 for z ~ N(0, 1), checked here against an independent
    Monte-Carlo-free estimate (NumPy's trapezoid rule on a fine grid of the PyTorch kernel)."""
    from derive.kernels import activations as kernels

    z = np.linspace(-12, 12, 240001)
    density = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    mean = np.trapezoid(getattr(kernels, name)(z) * density, z)
    p = analyse(name)
    assert p.gaussian_mean == pytest.approx(mean, abs=1e-6)
    assert p.zero_centred is (name in ZERO_MEAN)
    assert p.zero_centred is bool(abs(mean) < 1e-6)


def test_leaky_relu_preserves_the_sign_but_is_not_zero_centred():
    """The review's example: Leaky ReLU's mean output is almost ReLU's."""
    leaky, relu = analyse("leaky_relu"), analyse("relu")
    assert leaky.sign_preserving and not leaky.zero_centred
    assert abs(leaky.gaussian_mean - relu.gaussian_mean) < 0.01


def test_softplus_properties_are_the_functions_and_the_threshold_is_reported_apart():
    """E5: log(1 + e^x) is increasing and smooth; PyTorch's switch to x above x = 20 is a
    shortcut of 2.1e-9, measured from the implementation, not a property of the function."""
    p = analyse("softplus")
    assert p.monotonic == "increasing" and p.smoothness == "C^inf" and not p.kinks
    ((point, order, jump),) = p.shortcut
    assert point == 20 and order == 0
    assert float(jump) == pytest.approx(-math.log1p(math.exp(-20)), rel=1e-12)
    assert "down by 2.1e-09 at x = 20" in p.shortcut_text()
    # logsigmoid(x) = -softplus(-x): the two must agree on every shape property
    ls = analyse("logsigmoid")
    assert (ls.monotonic, ls.smoothness) == (p.monotonic, p.smoothness)
    # a threshold moved changes the shortcut, never the function's properties
    q = analyse("softplus", threshold=5.0)
    assert q.monotonic == "increasing" and q.smoothness == "C^inf"
    assert float(q.shortcut[0][2]) == pytest.approx(-math.log1p(math.exp(-5)), rel=1e-12)


def test_an_activation_without_a_shortcut_reports_none():
    assert all(not analyse(n).shortcut for n in ELEMENTWISE if n != "softplus")


def test_vector_activations_reduce_as_the_seeds_say():
    assert analyse("glu").reductions == [("GLU(x, x) = SiLU(x)", True)]
    assert analyse("maxout").reductions == [("maxout(0, x) = ReLU(x)", True)]


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if acts.REGISTRY[n].derivative is not None])
def test_output_form_of_the_derivative_matches_the_definition(name):
    cls = acts.REGISTRY[name]
    mine = sp.diff(cls(x), x)  # via fdiff, written with the output
    truth = sp.diff(cls.expr(x), x)  # SymPy differentiating the explicit formula
    for p in (-3, -0.5, 0.7, 4):
        v = sp.Float(p, 40)
        got = mine.xreplace({x: v}) if mine.free_symbols else mine
        assert abs(sp.Float(got, 40) - truth.subs(x, v).evalf(40)) < sp.Float("1e-35"), (name, p)


def test_derivatives_use_the_output():
    s = acts.sigmoid(x)
    assert sp.diff(s, x) == s * (1 - s)
    t = acts.tanh(x)
    assert sp.diff(t, x) == 1 - t**2
    assert sp.diff(acts.relu(x), x) == acts.step(x)
    assert acts.step(sp.Integer(0)) == 0  # PyTorch's subgradient at the kink


def test_every_command_names_its_activation():
    for cls in acts.REGISTRY.values():
        for command in cls.commands:
            assert acts.by_command(command) is cls


# --- kernels against mpmath -------------------------------------------------------------

@pytest.mark.parametrize("name", ELEMENTWISE)
def test_kernels_within_their_ulp_bound(name):
    for dtype in (np.float64, np.float32):
        for which in ("f", "d"):
            row = witness.measure(name, which, dtype, with_torch=False)
            assert row.ok, row
            # the 4-ULP target where the function is well-conditioned; float32 is rounded once
            assert row.well <= (witness.BOUND if dtype == np.float64 else 1.0), row


def test_the_ulp_measure_catches_the_cancelling_textbook_derivative():
    pts = witness.grid(np.float64, "sigmoid")
    truth = witness.reference("sigmoid", "d", pts)
    with np.errstate(all="ignore"):
        s = 1 / (1 + np.exp(-pts))
        naive = s * (1 - s)  # 0 for x > 37 instead of e^-x
    assert np.nanmax(witness.ulps(naive, truth, np.float64)) > 1e10
    assert np.max(witness.ulps(derive.activation("sigmoid").df(pts), truth, np.float64)) <= 4


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_no_warnings_dtypes_and_special_values(name):
    a = derive.activation(name)
    p = analyse(name)
    for dtype in (np.float32, np.float64):
        fi = np.finfo(dtype)
        xs = np.array([-fi.max, -1e30, -1e4, -40, -1, -fi.smallest_subnormal, 0, fi.smallest_subnormal,
                       1, 40, 1e4, 1e30, fi.max], dtype=dtype)
        # only where the true f and f' are within the dtype's range (selu(max) = 1.05 max is not)
        truth = [witness.reference(name, w, xs) for w in ("f", "d")]
        xs = xs[[all(abs(float(t[i])) <= float(fi.max) for t in truth) for i in range(len(xs))]]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y, d = a.f(xs), a.df(xs)
            special = a.f(np.array([np.nan, -np.inf, np.inf], dtype=dtype))
        assert y.dtype == dtype and d.dtype == dtype
        assert not np.isnan(y).any() and not np.isnan(d).any()
        assert np.isnan(special[0])
        lo, hi = (float(v) if v.is_finite else (math.inf if v == oo else -math.inf) for v in p.limits)
        assert special[1] == pytest.approx(lo, rel=1e-6) and special[2] == pytest.approx(hi, rel=1e-6)


# --- PyTorch --------------------------------------------------------------------------------

#: PyTorch's hardsigmoid backward multiplies by a float32 1/6, also for float64 tensors
TORCH_DERIVATIVE_RTOL = {"hardsigmoid": 1e-7}


@pytest.mark.parametrize("name", sorted(witness.TORCH))
def test_torch_agrees_including_subgradients_at_kinks(name):
    """Values and gradients where both are accurate (|x| <= 3: PyTorch's tails cancel, which
    the ULP table shows), and the exact subgradient PyTorch picks at every kink."""
    torch = pytest.importorskip("torch")
    a = derive.activation(name)
    pts = np.array(sorted({*witness.kinks(name), -3.0, -2.0, -1.0, -0.3, 0.0, 0.4, 1.0, 2.5, 3.0}))
    t = torch.tensor(pts, requires_grad=True)
    fname, kwargs = witness.TORCH[name]
    kw = kwargs(a.params)
    if "weight" in kw:
        kw["weight"] = torch.tensor([kw["weight"]], dtype=torch.float64)
    y = getattr(torch.nn.functional, fname)(t, **kw)
    (g,) = torch.autograd.grad(y.sum(), t)
    np.testing.assert_allclose(a.f(pts), y.detach().numpy(), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(a.df(pts), g.numpy(), rtol=TORCH_DERIVATIVE_RTOL.get(name, 1e-12), atol=1e-300)
    for k in witness.kinks(name):  # the subgradient PyTorch picks, exactly
        i = int(np.nonzero(pts == k)[0][0])
        assert a.df(pts[i:i + 1])[0] == pytest.approx(g.numpy()[i], rel=TORCH_DERIVATIVE_RTOL.get(name, 0)), (name, k)


def test_glu_and_maxout_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    v = rng.standard_normal((3, 8))
    t = torch.tensor(v, requires_grad=True)
    y = torch.nn.functional.glu(t, dim=-1)
    (g,) = torch.autograd.grad(y.sum(), t)
    glu = derive.activation("glu")
    np.testing.assert_allclose(glu.f(v), y.detach().numpy(), rtol=1e-14)
    np.testing.assert_allclose(glu.df(v), g.numpy(), rtol=1e-13)  # d(sum y)/dx = the per-element partials
    m = derive.activation("maxout", k=4)
    t = torch.tensor(v, requires_grad=True)
    y = t.view(3, 2, 4).max(dim=-1).values
    (g,) = torch.autograd.grad(y.sum(), t)
    np.testing.assert_array_equal(m.f(v), y.detach().numpy())
    np.testing.assert_array_equal(m.df(v), g.numpy())


# --- the API --------------------------------------------------------------------------------

def test_parameters_override_pytorch_defaults():
    keras_leaky = derive.activation("leaky_relu", negative_slope=0.3)
    assert keras_leaky.f(np.array([-1.0]))[0] == pytest.approx(-0.3)
    assert derive.activation("leaky_relu").f(np.array([-1.0]))[0] == pytest.approx(-0.01)
    with pytest.raises(DeriveError, match="no parameter"):
        derive.activation("relu", alpha=1.0)
    with pytest.raises(DeriveError, match="unknown activation"):
        derive.activation("relu6")
    with pytest.raises(DeriveError, match="multiple of 2"):
        derive.activation("glu").f(np.ones(3))


@pytest.mark.parametrize("name, param", [("prelu", "a"), ("swish", "beta")])
def test_learned_parameter_gradients_against_finite_differences(name, param):
    pts = np.linspace(-4, 4, 17) + 0.013
    a = derive.activation(name)
    h = 1e-6
    base = a.params[param]
    up = derive.activation(name, **{param: base + h}).f(pts)
    down = derive.activation(name, **{param: base - h}).f(pts)
    np.testing.assert_allclose(a.dparams(pts)[param], (up - down) / (2 * h), rtol=1e-7, atol=1e-9)


def test_derivatives_against_finite_differences_with_other_parameters():
    pts = np.linspace(-6, 6, 41) + 0.0123
    h = 1e-6
    for name, params in [("elu", {"alpha": 0.5}), ("celu", {"alpha": 2.0}), ("softplus", {"beta": 2.0}),
                         ("swish", {"beta": 1.7}), ("hardtanh", {"min_val": -2.0, "max_val": 0.5})]:
        a = derive.activation(name, **params)
        fd = (a.f(pts + h) - a.f(pts - h)) / (2 * h)
        np.testing.assert_allclose(a.df(pts), fd, rtol=1e-6, atol=1e-8, err_msg=name)


def test_rrelu_training_draws_seeded_slopes_and_reuses_them():
    v = -np.ones(1000)
    a = derive.activation("rrelu", training=True, seed=7)
    y = a.f(v)
    slopes = -y
    assert slopes.min() >= 1 / 8 and slopes.max() <= 1 / 3 and slopes.std() > 0.03
    np.testing.assert_array_equal(a.df(v), slopes)  # the same slopes backward
    again = derive.activation("rrelu", training=True, seed=7).f(v)
    np.testing.assert_array_equal(again, y)
    evaluation = derive.activation("rrelu").f(v)
    np.testing.assert_allclose(evaluation, -(1 / 8 + 1 / 3) / 2)


def test_sympy_forms():
    a = derive.activation("elu", alpha=2.0)
    assert a.expr.subs(x, -1) == 2 * (sp.exp(-1) - 1)
    assert sp.simplify(a.derivative.subs(x, -1) - 2 * sp.exp(-1)) == 0
    assert "def elu_d" in a.code


# --- the catalogue inside cells ---------------------------------------------------------------

SPEC = r"""
name = "mixed"
input = "x"
states = ["h", "c"]
output = "h"
gates = ["f"]
equations = '''
f_t = \operatorname{GATE}(W_{xf} x_t + W_{hf} h_{t-1} + b_f)
c_t = f_t \odot c_{t-1} + \operatorname{GELU}(W_{xc} x_t + W_{hc} h_{t-1})
h_t = \operatorname{ELU}(c_t) \odot \operatorname{Mish}(c_t)
'''
"""


def test_kinked_and_smooth_activations_in_a_cell_match_brute_force():
    from derive.witness import derivation as verify

    cell = derive.parse_spec(SPEC.replace("GATE", "hardsigmoid"), "mixed.toml")
    assert cell.warnings == []  # hard sigmoid's range [0, 1] makes it fit for a gate
    report = verify.compare(derive.derive(cell), verify.Sizes(T=3, H=2, I=1), seed=1)
    assert report.worst < 1e-25 and report.jacobian_worst < 1e-25


def test_gate_check_uses_the_computed_range():
    cell = derive.parse_spec(SPEC.replace("GATE", "GELU"), "mixed.toml")
    assert any("gate f uses gelu" in w and "[-0.169971" in w for w in cell.warnings), cell.warnings
