"""The activation catalogue: one stanza per activation.

A stanza is a ``sympy.Function`` subclass holding

* ``definition(x, **params)``: the plain SymPy formula (``exp``, ``log``, ``erf``,
  ``Piecewise``), the single source for properties (``properties.py``), stable kernels
  (``stable.py``) and the 50-digit reference values (``witness.py``);
* ``derivative(x, y, **params)``: optional, f'(x) written with the output ``y = f(x)``
  (sigma' = y(1 - y), tanh' = 1 - y^2) so BPTT formulas reuse forward values; without it
  f' is SymPy's derivative of the definition;
* ``params``: the parameters with PyTorch's defaults, the other frameworks' beside them;
* ``latex`` / ``text`` / ``commands``: how it is printed and the LaTeX spellings the
  grammar accepts in a cell spec.

Piecewise definitions put the kink in the condition exactly where PyTorch puts it
(``x <= 0`` for ReLU, so f'(0) = 0), which makes the subgradient at every kink the one
PyTorch's backward returns.

Kept opaque, ``sigmoid(z)`` stays ``sigmoid(z)`` in every cell expression: unrolled graphs
stay small, printed formulas stay readable. A ``Float`` argument evaluates numerically
from the definition, at the argument's precision.
"""

from __future__ import annotations

import sympy as sp

from derive.stanza import (REGISTRY, Activation, Kind, Param, Prime, all_commands, by_command, elementwise, get,
                           register, set_text, step, _ops, _sigma)

__all__ = ["REGISTRY", "Activation", "Kind", "Param", "Prime", "all_commands", "by_command", "elementwise", "get",
           "register", "set_text", "step"]


# --- the classics ------------------------------------------------------------------------

@register
class sigmoid(Activation):
    latex = r"\sigma"
    text = "sigma"
    commands = (r"\sigma", *_ops("sigmoid", "sigm"))
    summary = "logistic sigmoid 1/(1 + e^-x): the gate activation"
    names = "torch.sigmoid, keras.activations.sigmoid"

    @staticmethod
    def definition(x):
        return _sigma(x)

    @staticmethod
    def derivative(x, y):
        return y * (1 - y)


@register
class tanh(Activation):
    latex = r"\tanh"
    text = "tanh"
    commands = (r"\tanh", *_ops("tanh"))
    summary = "hyperbolic tangent: candidate and output activation"
    names = "torch.tanh, keras.activations.tanh"

    @staticmethod
    def definition(x):
        return sp.tanh(x)

    @staticmethod
    def derivative(x, y):
        return 1 - y**2


@register
class relu(Activation):
    latex = r"\operatorname{ReLU}"
    text = "relu"
    commands = _ops("ReLU", "relu")
    summary = "rectifier max(0, x); derivative 1[x > 0] (0 at 0, as PyTorch)"
    names = "torch.nn.functional.relu, keras.activations.relu"

    @staticmethod
    def definition(x):
        return sp.Piecewise((0, x <= 0), (x, True))

    @staticmethod
    def derivative(x, y):
        return step(x)


@register
class identity(Activation):
    latex = r"\operatorname{id}"
    text = "id"
    commands = _ops("id", "identity")
    summary = "identity x (no activation)"
    names = "torch.nn.Identity, keras.activations.linear"

    @classmethod
    def eval(cls, arg):
        return arg

    @staticmethod
    def definition(x):
        return x

    @staticmethod
    def derivative(x, y):
        return sp.Integer(1)


# --- the ReLU family (seed 000: dying ReLU and the fixes) ----------------------------------

@register
class leaky_relu(Activation):
    latex = r"\operatorname{LeakyReLU}"
    text = "leaky_relu"
    commands = _ops("LeakyReLU", "leaky_relu")
    summary = "x for x > 0, a x otherwise: a fixed small slope keeps negative inputs alive"
    params = (Param("negative_slope", 0.01, r"a",
                    "PyTorch 0.01; keras.activations.leaky_relu 0.2; keras.layers.LeakyReLU 0.3"),)
    names = "torch.nn.functional.leaky_relu, keras.activations.leaky_relu"

    @staticmethod
    def definition(x, negative_slope):
        return sp.Piecewise((negative_slope * x, x <= 0), (x, True))


@register
class prelu(Activation):
    latex = r"\operatorname{PReLU}"
    text = "prelu"
    commands = _ops("PReLU", "prelu")
    summary = "leaky ReLU whose slope a is learned (one per channel or one shared)"
    params = (Param("a", 0.25, r"a", "PyTorch init 0.25 (nn.PReLU); Keras PReLU init zeros", learned=True),)
    names = "torch.nn.functional.prelu, keras.layers.PReLU"

    @staticmethod
    def definition(x, a):
        return sp.Piecewise((a * x, x <= 0), (x, True))


@register
class rrelu(Activation):
    latex = r"\operatorname{RReLU}"
    text = "rrelu"
    commands = _ops("RReLU", "rrelu")
    summary = "randomised leaky ReLU: slope ~ U(lower, upper) in training, (lower + upper)/2 at evaluation"
    params = (Param("lower", 1 / 8, r"l", "PyTorch 1/8"), Param("upper", 1 / 3, r"u", "PyTorch 1/3"))
    relations = (params[0].symbol <= params[1].symbol,)  # PyTorch: lower <= upper
    names = "torch.nn.functional.rrelu (no Keras layer)"
    notes = ("The formula is the evaluation form. In training each negative element gets its own slope "
             "a ~ U(l, u), drawn from a seeded generator (`activation('rrelu', training=True, seed=0)`); "
             "the derivative there is a for x <= 0, and the same drawn slopes must be used forward and backward.")

    @staticmethod
    def definition(x, lower, upper):
        return sp.Piecewise(((lower + upper) / 2 * x, x <= 0), (x, True))


@register
class elu(Activation):
    latex = r"\operatorname{ELU}"
    text = "elu"
    commands = _ops("ELU", "elu")
    summary = "x for x > 0, alpha (e^x - 1) otherwise: negative outputs pull the mean toward 0"
    params = (Param("alpha", 1.0, r"\alpha", "PyTorch 1.0; Keras 1.0"),)
    names = "torch.nn.functional.elu, keras.activations.elu"

    @staticmethod
    def definition(x, alpha):
        return sp.Piecewise((alpha * (sp.exp(x) - 1), x <= 0), (x, True))


@register
class selu(Activation):
    latex = r"\operatorname{SELU}"
    text = "selu"
    commands = _ops("SELU", "selu")
    summary = "scaled ELU, lambda ELU_alpha, with the self-normalising constants"
    params = (Param("alpha", 1.6732632423543772, r"\alpha", "fixed constant; same in PyTorch and Keras"),
              Param("scale", 1.0507009873554805, r"\lambda", "fixed constant; same in PyTorch and Keras"))
    names = "torch.nn.functional.selu, keras.activations.selu"

    @staticmethod
    def definition(x, alpha, scale):
        return sp.Piecewise((scale * alpha * (sp.exp(x) - 1), x <= 0), (scale * x, True))


@register
class celu(Activation):
    latex = r"\operatorname{CELU}"
    text = "celu"
    commands = _ops("CELU", "celu")
    summary = "continuously differentiable ELU: max(0, x) + min(0, alpha (exp(x/alpha) - 1))"
    # PyTorch: "alpha cannot be 0" (x/alpha)
    params = (Param("alpha", 1.0, r"\alpha", "PyTorch 1.0; keras.activations.celu 1.0",
                    domain=sp.S.Reals - sp.FiniteSet(0)),)
    names = "torch.nn.functional.celu, keras.activations.celu"

    @staticmethod
    def definition(x, alpha):
        return sp.Piecewise((alpha * (sp.exp(x / alpha) - 1), x <= 0), (x, True))


@register
class maxout(Activation):
    latex = r"\operatorname{maxout}"
    text = "maxout"
    summary = "max_j z_j over k affine pieces z_j = W_j x + b_j; the gradient goes to the arg max"
    kind = Kind.PIECES
    params = (Param("k", 2, r"k", "number of pieces; Goodfellow et al. used 2 to 5", domain=sp.S.Naturals),)
    names = ("no torch.nn.functional form (x.view(..., n, k).max(-1)); Keras 1 had a MaxoutDense layer, "
             "moved to keras/legacy in Keras 2.0 and later removed")
    display = r"\max_{j=1}^{k} z_j,\qquad z_j = W_j x + b_j"
    notes = ("The kernel takes the k pieces along the last axis, grouped by k consecutive entries "
             "(shape (..., n k) -> (..., n)); the gradient is routed to the first arg max. "
             "ReLU is the special case k = 2 with z_1 = 0 (Goodfellow et al. 2013, Maxout Networks, arXiv:1302.4389).")

    @staticmethod
    def definition(*z, k=None):
        return sp.Max(*z)


@register
class glu(Activation):
    latex = r"\operatorname{GLU}"
    text = "glu"
    summary = "gated linear unit a * sigma(b), the input split into halves a | b"
    kind = Kind.HALVES
    names = "torch.nn.functional.glu (dim=-1), keras.activations.glu"
    display = r"(W_1 x + b_1) \otimes \sigma(W_2 x + b_2)"
    notes = ("The kernel splits the last axis into halves a | b as torch.nn.functional.glu does; "
             "f' returns (d/da, d/db) in the same layout. With a = b = x it is SiLU. GLU is the gate of Dauphin et al. "
             "(2017), Language Modeling with Gated Convolutional Networks, arXiv:1612.08083.")

    @staticmethod
    def definition(a, b):
        return a * _sigma(b)


# --- smooth self-gated activations (seed 000) --------------------------------------------

@register
class swish(Activation):
    latex = r"\operatorname{swish}"
    text = "swish"
    commands = _ops("swish")
    summary = "x sigma(beta x) (Ramachandran et al.); beta = 1 is SiLU; soft-saturates on the left only"
    # beta > 0: the kernels' values at x = +-inf are the limits for beta > 0 (beta = 0 is x/2)
    params = (Param("beta", 1.0, r"\beta", "1.0 everywhere; trainable in the Swish paper", learned=True,
                    domain=sp.Interval.open(0, sp.oo)),)
    names = "keras.activations.swish (beta = 1); torch has SiLU only"
    notes = "Ramachandran, Zoph & Le (2017), Searching for Activation Functions, arXiv:1710.05941."

    @staticmethod
    def definition(x, beta):
        return x * _sigma(beta * x)


@register
class silu(Activation):
    latex = r"\operatorname{SiLU}"
    text = "silu"
    commands = _ops("SiLU", "silu")
    summary = "x sigma(x): swish with beta = 1"
    names = "torch.nn.functional.silu, keras.activations.silu"

    @staticmethod
    def definition(x):
        return x * _sigma(x)


@register
class su(Activation):
    latex = r"\operatorname{su}"
    text = "su"
    commands = _ops("su")
    summary = "Su Jianlin's max(x, x exp(-|x|)): x for x >= 0, x exp(x) below"
    display = r"\max\left(x,\; x e^{-|x|}\right)"
    names = "kexue.fm/archives/4647; in no framework"

    @staticmethod
    def definition(x):
        return sp.Piecewise((x * sp.exp(x), x < 0), (x, True))


@register
class gelu(Activation):
    latex = r"\operatorname{GELU}"
    text = "gelu"
    commands = _ops("GELU", "gelu")
    summary = "x Phi(x), exact (erf) form: the default of torch and Keras 3"
    names = "torch.nn.functional.gelu(approximate='none'); keras.activations.gelu(approximate=False)"
    notes = "Keras 3's keras.activations.gelu defaults to approximate=False; tf.nn.gelu too."
    clamp = 40.0  # exp(-x^2/2) is 0 in float64 beyond |x| = 39

    @staticmethod
    def definition(x):
        return x / 2 * (1 + sp.erf(x / sp.sqrt(2)))


@register
class gelu_tanh(Activation):
    latex = r"\operatorname{GELU}_{\tanh}"
    text = "gelu_tanh"
    commands = _ops("GELU_tanh", "gelu_tanh")
    summary = "GELU's tanh approximation x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3)))"
    names = "torch.nn.functional.gelu(approximate='tanh'); keras.activations.gelu(approximate=True)"
    clamp = 100.0  # beyond |x| = 100 the tanh argument exceeds 3.5e4: saturated in both precisions

    @staticmethod
    def definition(x):
        c = sp.Rational("0.044715")
        return x / 2 * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + c * x**3)))


@register
class mish(Activation):
    latex = r"\operatorname{Mish}"
    text = "mish"
    commands = _ops("Mish", "mish")
    summary = "x tanh(softplus(x)) (Misra 2019)"
    names = "torch.nn.functional.mish, keras.activations.mish"

    @staticmethod
    def definition(x):
        return x * sp.tanh(sp.log(1 + sp.exp(x)))


# --- bounded and smooth-rectifier shapes ---------------------------------------------------

@register
class hardtanh(Activation):
    latex = r"\operatorname{HardTanh}"
    text = "hardtanh"
    commands = _ops("HardTanh", "hardtanh")
    summary = "clip(x, -1, 1); derivative 1 strictly inside, 0 at and beyond the kinks"
    params = (Param("min_val", -1.0, r"m", "PyTorch -1", positive=False),
              Param("max_val", 1.0, r"M", "PyTorch 1", positive=False))
    relations = (params[0].symbol <= params[1].symbol,)  # PyTorch: min_val cannot be greater than max_val
    names = "torch.nn.functional.hardtanh, keras.activations.hard_tanh"

    @staticmethod
    def definition(x, min_val, max_val):
        return sp.Piecewise((min_val, x <= min_val), (x, x < max_val), (max_val, True))


@register
class softsign(Activation):
    latex = r"\operatorname{softsign}"
    text = "softsign"
    commands = _ops("softsign")
    summary = "x / (1 + |x|): tanh-shaped with polynomial tails"
    names = "torch.nn.functional.softsign, keras.activations.softsign"

    @staticmethod
    def definition(x):
        return sp.Piecewise((x / (1 - x), x < 0), (x / (1 + x), True))

    @staticmethod
    def closed_form(x):
        return x / (1 + sp.Abs(x))


@register
class softplus(Activation):
    latex = r"\operatorname{softplus}"
    text = "softplus"
    commands = _ops("softplus")
    summary = "log(1 + exp(beta x))/beta, a smooth ReLU (PyTorch returns x above beta x = threshold)"
    # beta != 0: the formula divides by it (PyTorch returns inf for beta = 0; negative beta is fine)
    params = (Param("beta", 1.0, r"\beta", "PyTorch 1; Keras has no beta", domain=sp.S.Reals - sp.FiniteSet(0)),
              Param("threshold", 20.0, r"\tau", "PyTorch 20; Keras has no threshold (exact form)"))
    names = "torch.nn.functional.softplus, keras.activations.softplus"

    @staticmethod
    def definition(x, beta, threshold):  # what PyTorch computes (and the kernels match)
        return sp.Piecewise((sp.log(1 + sp.exp(beta * x)) / beta, beta * x <= threshold), (x, True))

    @staticmethod
    def mathematical(x, beta, threshold):  # the function itself: increasing and smooth
        return sp.log(1 + sp.exp(beta * x)) / beta


@register
class hardsigmoid(Activation):
    latex = r"\operatorname{hardsigmoid}"
    text = "hardsigmoid"
    commands = _ops("hardsigmoid")
    summary = "relu6(x + 3)/6 (PyTorch, Keras 3): 0 below -3, 1 above 3"
    names = "torch.nn.functional.hardsigmoid, keras.activations.hard_sigmoid (Keras 3)"
    notes = "Not the Keras 2 hard sigmoid: see hardsigmoid_keras2."

    @staticmethod
    def definition(x):
        return sp.Piecewise((0, x <= -3), (x / 6 + sp.Rational(1, 2), x < 3), (1, True))


@register
class hardsigmoid_keras2(Activation):
    latex = r"\operatorname{hardsigmoid}_{\mathrm{K2}}"
    text = "hardsigmoid_keras2"
    commands = _ops("hardsigmoid_keras2")
    summary = "clip(0.2 x + 0.5, 0, 1): Keras 2's hard_sigmoid (old LSTM recurrent_activation default)"
    names = "keras 2.x / tf.keras hard_sigmoid; not PyTorch's"
    notes = "Steeper than PyTorch's (slope 1/5 on (-2.5, 2.5) against 1/6 on (-3, 3))."

    @staticmethod
    def definition(x):
        half = sp.Rational(5, 2)
        return sp.Piecewise((0, x <= -half), (x / 5 + sp.Rational(1, 2), x < half), (1, True))


@register
class logsigmoid(Activation):
    latex = r"\log\sigma"
    text = "logsigmoid"
    commands = _ops("logsigmoid", "LogSigmoid")
    summary = "log sigma(x) = -softplus(-x)"
    names = "torch.nn.functional.logsigmoid, keras.activations.log_sigmoid"

    @staticmethod
    def definition(x):
        return -sp.log(1 + sp.exp(-x))
