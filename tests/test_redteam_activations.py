"""Red-team findings 16, 22 and 25 (activations API): input kinds, refused inputs, parameter domains.

Every activation of the registry takes scalars, NumPy scalars, 0-d and n-d arrays alike; complex,
object and string input is refused; parameters outside their domain are refused when the
activation is made, compared with what PyTorch does where it has the same function.
"""

import math

import numpy as np
import pytest

import derive
from derive.errors import DeriveError
from derive.kernels import activations as kernels

NAMES = list(derive.ACTIVATIONS)
VECTOR = {"glu", "maxout"}  # their input is split along the last axis: no scalar form
PTS = np.array([-2.5, -0.3, 0.0, 0.7, 3.0, 25.0])


def _results(a, x) -> dict:
    """f, df and every learned parameter's gradient at x, by name."""
    return {"f": a.f(x), "df": a.df(x), **{f"d{k}": v for k, v in a.dparams(x).items()}}


# --- F22: one result per input kind ------------------------------------------------------------

#: (id, make the input from one float, dtype of the result)
SCALAR_FORMS = [
    ("python-float", float, np.float64),
    ("numpy-float64", np.float64, np.float64),
    ("numpy-float32", np.float32, np.float32),
    ("0-d-array", np.array, np.float64),
]


@pytest.mark.parametrize("form, make, dtype", [pytest.param(*row, id=f"F22-{row[0]}") for row in SCALAR_FORMS])
@pytest.mark.parametrize("name", sorted(set(NAMES) - VECTOR))
def test_scalar_input_gives_the_array_path_value_as_a_numpy_scalar(name, form, make, dtype):
    a = derive.activation(name)
    array = _results(a, PTS.astype(dtype))
    for i, v in enumerate(PTS):
        for key, y in _results(a, make(v)).items():
            assert np.ndim(y) == 0 and isinstance(y, np.generic) and y.dtype == dtype, (key, v, type(y))
            assert y == array[key][i] or (np.isnan(y) and np.isnan(array[key][i])), (key, v)


@pytest.mark.parametrize("name", NAMES)
def test_arrays_of_any_shape_match_row_by_row(name):
    """F22: a 2-d input gives, row by row, the 1-d results (and a list the array's)."""
    a = derive.activation(name)
    x2 = np.stack([PTS, PTS[::-1] / 3])
    whole = _results(a, x2)
    for r in range(2):
        for key, y in _results(a, x2[r]).items():
            np.testing.assert_array_equal(whole[key][r], y, err_msg=key)
    for key, y in _results(a, list(PTS)).items():
        np.testing.assert_array_equal(y, _results(a, PTS)[key], err_msg=key)


@pytest.mark.parametrize("name", NAMES)
def test_integer_and_bool_input_is_computed_as_float64(name):
    """F22: integers (and bools) are converted to float64, not refused and not kept integer."""
    a = derive.activation(name)
    ints = np.array([-2, 0, 1, 3])
    for key, y in _results(a, ints).items():
        assert y.dtype == np.float64, key
        np.testing.assert_array_equal(y, _results(a, ints.astype(np.float64))[key], err_msg=key)
    for key, y in _results(a, np.array([True, False])).items():
        np.testing.assert_array_equal(y, _results(a, np.array([1.0, 0.0]))[key], err_msg=key)


@pytest.mark.parametrize("name", sorted(VECTOR))
def test_vector_activations_refuse_scalars_with_a_message(name):
    a = derive.activation(name)
    for x in (0.5, np.float64(0.5), np.array(0.5)):
        for method in (a.f, a.df):
            with pytest.raises(DeriveError, match="needs a last axis"):
                method(x)


# --- F16: complex, object and string input is refused --------------------------------------------

BAD_INPUTS = [
    ("complex-scalar", 1 + 1j, "complex128"),
    ("complex-array", np.array([1 + 1j, 2.0, -1j, 0.5]), "complex128"),
    ("complex64", np.array([1, 2, 3, 4], dtype=np.complex64), "complex64"),
    ("object", np.array([1.0, None, 2.0, 3.0], dtype=object), "object"),
    ("string", "0.5", "<U3"),
]


@pytest.mark.parametrize("what, x, dtype", [pytest.param(*row, id=f"F16-{row[0]}") for row in BAD_INPUTS])
@pytest.mark.parametrize("name", NAMES)
def test_non_real_input_is_refused_by_every_method(name, what, x, dtype):
    a = derive.activation(name)
    for method in (a.f, a.df, a.dparams):
        with pytest.raises(DeriveError, match=f"{name} takes real float input; got {dtype}"):
            method(x)


def test_the_kernel_module_refuses_complex_too():
    """F16: derive.kernels.activations.tanh(1+1j) used to return tanh(1) with a ComplexWarning."""
    for fn in (kernels.tanh, kernels.tanh_d, kernels.swish_dbeta, kernels.glu):
        with pytest.raises(DeriveError, match="real float input; got complex128"):
            fn(np.array([1 + 1j, 1.0]))


# --- F25 / F22: parameters are checked when the activation is made --------------------------------

def _torch_view(k):
    return lambda torch, F: torch.zeros(4).view(-1, k)


#: (id, activation, params, message fragment, PyTorch's call on the same values or None when PyTorch
#: accepts them (its result is then inf or nan) or has no such function)
BAD_PARAMS = [
    ("F25-hardtanh-min-above-max", "hardtanh", {"min_val": 1.0, "max_val": -1.0}, "min_val <= max_val",
     lambda torch, F: F.hardtanh(torch.zeros(3), 1.0, -1.0)),
    ("F25-celu-alpha-0", "celu", {"alpha": 0.0}, r"alpha must be in \(-oo, 0\) U \(0, oo\)",
     lambda torch, F: F.celu(torch.zeros(3), alpha=0.0)),
    ("F25-swish-beta-inf", "swish", {"beta": math.inf}, "beta must be finite", None),  # torch: no swish(beta)
    ("F25-swish-beta-negative", "swish", {"beta": -1.0}, r"beta must be in \(0, oo\)", None),
    ("F25-maxout-k-0", "maxout", {"k": 0}, r"k must be in \{1, 2, 3, ...\}; got 0", _torch_view(0)),
    ("F25-maxout-k-2.5", "maxout", {"k": 2.5}, r"k must be in \{1, 2, 3, ...\}; got 2.5", _torch_view(2.5)),
    ("F25-maxout-k-bool", "maxout", {"k": True}, "k must be a real number; got True", None),
    ("F22-softplus-beta-0", "softplus", {"beta": 0.0}, r"beta must be in \(-oo, 0\) U \(0, oo\)",
     None),  # torch returns inf everywhere
    ("F22-swish-beta-nan", "swish", {"beta": math.nan}, "beta must be finite", None),
    ("F25-rrelu-lower-above-upper", "rrelu", {"lower": 0.5, "upper": 0.1}, "lower <= upper",
     lambda torch, F: F.rrelu(torch.zeros(3), 0.5, 0.1)),
    ("F25-leaky-slope-nan", "leaky_relu", {"negative_slope": math.nan}, "must be finite", None),  # torch: nan out
    ("F25-elu-alpha-inf", "elu", {"alpha": -math.inf}, "must be finite", None),  # torch: -inf out
    ("F25-elu-alpha-huge-int", "elu", {"alpha": 10**400}, "must be finite", None),
    ("F25-elu-alpha-string", "elu", {"alpha": "1"}, "alpha must be a real number; got '1'",
     lambda torch, F: F.elu(torch.zeros(3), alpha="1")),
    ("F25-elu-alpha-complex", "elu", {"alpha": 1j}, "alpha must be a real number; got 1j", None),
    ("F25-relu-unknown-parameter", "relu", {"alpha": 1.0}, r"relu has no parameter 'alpha' \(parameters: none\)",
     lambda torch, F: F.relu(torch.zeros(3), alpha=1.0)),
]


@pytest.mark.parametrize("name, params, fragment, torch_call",
                         [pytest.param(*row[1:], id=row[0]) for row in BAD_PARAMS])
def test_bad_parameters_are_refused_when_the_activation_is_made(name, params, fragment, torch_call):
    with pytest.raises(DeriveError, match=fragment):
        derive.activation(name, **params)
    if torch_call is not None:
        torch = pytest.importorskip("torch")
        with pytest.raises((RuntimeError, ValueError, TypeError)):
            torch_call(torch, torch.nn.functional)


#: (id, name argument, message fragment): a DeriveError naming close matches, never a list of all 24
BAD_NAMES = [
    ("F25-activation-None", None, "an activation name is a string, got None; `derive list`"),
    ("F25-activation-int", 3, "an activation name is a string, got 3"),
    ("F25-activation-typo", "sigmod", "unknown activation 'sigmod'; did you mean sigmoid"),
    ("F25-activation-unknown", "xyzzy", "unknown activation 'xyzzy'; `derive list` shows the 24 known ones"),
]


@pytest.mark.parametrize("given, fragment", [pytest.param(*row[1:], id=row[0]) for row in BAD_NAMES])
def test_bad_activation_names(given, fragment):
    with pytest.raises(DeriveError, match=fragment) as err:
        derive.activation(given)
    assert "hardsigmoid_keras2" not in str(err.value)  # not the whole registry on one line


#: (id, activation, params, PyTorch's function and arguments): values PyTorch accepts are accepted,
#: and f agrees with PyTorch there
GOOD_PARAMS = [
    ("F25-hardtanh-min-equals-max", "hardtanh", {"min_val": 0.5, "max_val": 0.5}, ("hardtanh", (0.5, 0.5))),
    ("F25-celu-alpha-negative", "celu", {"alpha": -1.0}, ("celu", (-1.0,))),
    ("F25-softplus-beta-negative", "softplus", {"beta": -2.0}, ("softplus", (-2.0,))),
    ("F25-elu-alpha-negative", "elu", {"alpha": -1.0}, ("elu", (-1.0,))),
    ("F25-leaky-slope-negative", "leaky_relu", {"negative_slope": -0.5}, ("leaky_relu", (-0.5,))),
    ("F25-rrelu-lower-equals-upper", "rrelu", {"lower": 0.2, "upper": 0.2}, ("rrelu", (0.2, 0.2))),
    ("F25-elu-alpha-int", "elu", {"alpha": 2}, ("elu", (2.0,))),
]


@pytest.mark.parametrize("name, params, torch_fn", [pytest.param(*row[1:], id=row[0]) for row in GOOD_PARAMS])
def test_parameters_pytorch_accepts_are_accepted_and_agree(name, params, torch_fn):
    torch = pytest.importorskip("torch")
    fname, args = torch_fn
    want = getattr(torch.nn.functional, fname)(torch.tensor(PTS), *args).numpy()
    np.testing.assert_allclose(derive.activation(name, **params).f(PTS), want, rtol=1e-13)


@pytest.mark.parametrize("k, width", [pytest.param(2.0, 2, id="F25-maxout-k-integral-float"),
                                      pytest.param(np.int64(3), 3, id="F25-maxout-k-numpy-int")])
def test_maxout_k_takes_integral_values_exactly(k, width):
    m = derive.activation("maxout", k=k)
    assert m.params["k"] == width and isinstance(m.params["k"], int)
    assert m.f(np.arange(2.0 * width)).shape == (2,)


def test_selu_limit_at_minus_infinity_follows_its_parameters():
    """F25: the kernel's f(-inf) was selu's default limit -1.7581 whatever alpha and scale were."""
    a = derive.activation("selu", alpha=2.0, scale=1.5)
    assert a.f(-np.inf) == pytest.approx(-3.0, rel=1e-15)
    assert a.f(-1e300) == pytest.approx(-3.0, rel=1e-15)


# --- properties at other parameter values -------------------------------------------------------

def test_properties_at_other_values_or_a_message(monkeypatch):
    """F22: properties at valid non-default values are derived; where SymPy gives up, a DeriveError.
    Softplus's threshold is PyTorch's shortcut, not the function's (site review E5): its properties are
    the mathematical softplus's at any threshold."""
    rng = derive.activation("softplus", beta=-1.0).properties.range  # log(1 + e^-x)/(-1) < 0
    assert rng.sup == 0 and rng.inf == -math.inf and rng.right_open
    assert derive.activation("softplus", threshold=1e300).properties.range == \
        derive.activation("softplus").properties.range
    from derive.runtime import activations as runtime_acts

    def gives_up(*args, **kwargs):
        raise NotImplementedError("SymPy could not decide the range")
    monkeypatch.setattr(runtime_acts, "analyse", gives_up)
    with pytest.raises(DeriveError, match=r"cannot derive the properties of activation\('softplus'.*could not decide"):
        derive.activation("softplus", beta=2.0).properties


# --- rrelu in training: slopes fit x -------------------------------------------------------------

@pytest.mark.parametrize("call, fragment", [
    pytest.param(lambda a: (a.f(np.ones(3)), a.df(np.ones((2, 3)))), "drew slopes for shape", id="F25-rrelu-df-shape"),
    pytest.param(lambda a: a.f(np.ones(3), slopes=np.ones(4)), "do not fit x", id="F25-rrelu-slopes-shape"),
    pytest.param(lambda a: a.f(np.ones(3), slopes=np.ones(3) * 1j), "slopes takes real float", id="F16-rrelu-slopes"),
    pytest.param(lambda a: derive.activation("rrelu", training=True, seed="x"), "seed must be", id="F25-rrelu-seed"),
])
def test_rrelu_training_inputs(call, fragment):
    a = derive.activation("rrelu", training=True, seed=0)
    with pytest.raises(DeriveError, match=fragment):
        call(a)
