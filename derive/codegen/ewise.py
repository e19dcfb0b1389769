"""Elementwise IR expressions as in-place NumPy ufunc calls, one operation per line.

``Emitter.emit(expr, out)`` writes the lines that compute ``expr`` into the buffer named
``out``: ``c_t = f_t c_{t-1} + i_t g_t`` becomes

    np.multiply(f_t, c_prev, out=c_t)
    np.multiply(i_t, g_t, out=_h0)
    np.add(c_t, _h0, out=c_t)

Leaves are looked up in ``names`` (an IR symbol, a saved ``tanh(c_t)``, a ``MatVec`` or
``MatVecT`` atom -> the code name of its buffer). The one vector-wide operation, ``mean(u)``, is
its argument computed into the output buffer, then its mean over the last axis (the units) broadcast
back into it: ``np.copyto(out, out.mean(axis=-1, keepdims=True))``. Intermediate results go to scratch
buffers taken from a pool per dimension and given back after use, so a kernel allocates
nothing inside its time loop. Numbers are Python floats, which keep float32 arrays float32.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from derive import activations as acts
from derive.symbolic import ir
from derive.symbolic.printing import text as ir_text
from derive.codegen.npcode import KernelPrinter

#: activations computed in place by one helper call: name -> line template
INPLACE = {
    "sigmoid": "_sigmoid({a}, out={out})",
    "tanh": "np.tanh({a}, out={out})",
    "relu": "np.maximum({a}, 0.0, out={out})",
    "identity": "np.copyto({out}, {a})",
}

#: activations whose derivative reads the saved output y: name -> expression in y
OUTPUT_DERIVATIVE = {
    "sigmoid": lambda y: y * (1 - y),
    "tanh": lambda y: 1 - y**2,
    "relu": lambda y: acts.step(y),  # y > 0 exactly where z > 0
    "identity": lambda y: sp.Integer(1),
}


#: functions of the spec language (and their derivatives) as one ufunc call: SymPy class name -> ufunc
UFUNCS = {"exp": "np.exp", "log": "np.log", "Abs": "np.absolute", "sign": "np.sign", "maximum": "np.maximum",
          "minimum": "np.minimum"}
#: the Heaviside step of max/min's derivative: H(0) = 1/2, the tie rule of torch.maximum
HEAVISIDE = "np.heaviside({a}, 0.5, out={out})"

#: exponents with a ufunc of their own: exponent -> the ufunc
POWERS = {sp.Integer(2): "np.square", sp.Integer(-1): "np.reciprocal", sp.Rational(1, 2): "np.sqrt"}

#: a chain's operation -> the ufunc that inverts its first operand (-x + ..., 1/x * ...)
INVERSE = {"np.add": "np.negative", "np.multiply": "np.reciprocal"}


class CodegenError(Exception):
    """An expression the kernel generator has no rule for; ``pos``: where the spec writes it. Its
    message writes quantities as the spec does (``printing.text``), never IR symbol names."""

    def __init__(self, message: str, pos=None):
        super().__init__(message)
        self.pos = pos


def number(e) -> str:
    value = float(e)
    if not np.isfinite(value):
        text = str(e)
        raise CodegenError(f"the number {text[:20] + '...' if len(text) > 20 else text} is not a finite float64")
    return repr(value)


class Pool:
    """Scratch buffers of one shape, named ``_{prefix}{k}``, reused once released."""

    def __init__(self, prefix: str):
        self.prefix, self.free, self.count = prefix, [], 0

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        self.count += 1
        return f"_{self.prefix}{self.count - 1}"

    def give(self, name: str):
        if name.startswith(f"_{self.prefix}") and name not in self.free:
            self.free.append(name)
            self.free.sort(reverse=True)

    @property
    def names(self) -> list[str]:
        return [f"_{self.prefix}{k}" for k in range(self.count)]


class Emitter:
    def __init__(self, names: dict, pool: Pool, act_module: str = "_act"):
        self.names = names
        self.pool = pool
        self.act_module = act_module
        self.lines: list[str] = []
        self.strided_out: str | None = None  # see emit(strided=True)
        self.first = None  # the operand a sum must start from (see emit)

    def emit(self, expr, out: str, *, strided: bool = False) -> list[str]:
        """Lines that leave ``expr`` in ``out``. ``strided``: ``out`` is a slow (non-contiguous)
        view, so a product or sum is accumulated in scratch and only its last step writes it."""
        self.lines = []
        self.strided_out = out if strided else None
        self.first = None
        dest = out
        if self._leaf(expr) is None and self._reads(expr, out):
            # ``out`` is also an operand: it must not be written before it is read. A sum
            # ``out + rest`` whose rest does not read it accumulates in place (out first);
            # anything else is computed in scratch and copied.
            own = [a for a in expr.args if self._leaf(a) == out] if isinstance(expr, sp.Add) else []
            if len(own) == 1 and not any(self._reads(a, out) for a in expr.args if a is not own[0]):
                self.first = own[0]
            else:
                dest = self.pool.take()
        got = self._value(expr, dest)
        if got != out:
            self.lines.append(f"np.copyto({out}, {got})")
        if dest != out:
            self.pool.give(dest)
        return self.lines

    def _reads(self, expr, name: str) -> bool:
        """Whether computing ``expr`` reads the buffer ``name``."""
        return any(self.names.get(node) == name for node in sp.preorder_traversal(expr))

    # -- operands ------------------------------------------------------------
    def _leaf(self, e):
        if e in self.names:
            return self.names[e]
        if e.is_number:
            return number(e)
        return None

    def _value(self, e, out: str | None) -> str:
        """Code for ``e``: a leaf's name, or the buffer (``out`` or scratch) it was computed in."""
        leaf = self._leaf(e)
        if leaf is not None:
            return leaf
        dest = out or self.pool.take()
        if isinstance(e, sp.Add):
            self._chain(e.args, dest, "np.add", "np.subtract", _split_sign)
        elif isinstance(e, sp.Mul):
            self._mul(e, dest)
        elif isinstance(e, sp.Pow):
            self._pow(e, dest)
        elif isinstance(e, acts.step):
            a = self._value(e.args[0], None)
            self.lines.append(f"np.greater({a}, 0.0, out={dest})")
            self.pool.give(a)
        elif isinstance(e, ir.Mean):
            self._mean(e, dest)
        elif isinstance(e, acts.Activation):
            self._activation(e, dest)
        elif isinstance(e, acts.Prime):
            a = self._value(e.args[0], None)
            self.lines.append(f"np.copyto({dest}, {derivative_call(e.of, self.act_module).format(a=a)})")
            self.pool.give(a)
        elif type(e).__name__ in UFUNCS or isinstance(e, sp.Heaviside):
            self._ufunc(e, dest)
        else:
            self._printed(e, dest)
        return dest

    def _ufunc(self, e, dest):
        """exp, log, |.|, sign, max, min, H: one ufunc writing ``dest``."""
        if isinstance(e, sp.Heaviside):
            if len(e.args) > 1 and e.args[1] != sp.Rational(1, 2):
                raise CodegenError(f"no code rule for {e!r}: the kernels use H(0) = 1/2")
            args, line = e.args[:1], HEAVISIDE
        else:
            args, line = e.args, UFUNCS[type(e).__name__] + "({a}, out={out})"
        values = [self._value(a, None) for a in args]
        self.lines.append(line.format(a=", ".join(values), out=dest))
        for v in values:
            self.pool.give(v)

    def _printed(self, e, dest):
        """Anything else (a kinked derivative's Piecewise, exp, Abs): one NumPy expression."""
        subs = {}
        for atom in e.atoms(sp.Symbol, acts.Activation):
            if atom in self.names:
                subs[atom] = sp.Symbol(self.names[atom])
            elif isinstance(atom, sp.Symbol) and ir.is_ir(atom):
                raise CodegenError(f"no value for {ir_text(atom)} in generated code (in {ir_text(e)})")
        body = e.xreplace(subs)
        if body.atoms(acts.Activation):
            raise CodegenError(f"no code rule for {ir_text(e)}")
        self.lines.append(f"np.copyto({dest}, {KernelPrinter().doprint(body)})")

    def _chain(self, args, dest, op, inverse_op, split):
        """``a1 op a2 op ...`` left to right into ``dest``; ``split`` peels an inverse."""
        parts = sorted(args, key=lambda a: (a is not self.first, not a.is_number, split(a)[0], sp.default_sort_key(a)))
        self.first = None  # only the outermost sum reorders
        codes = [split(a) for a in parts]
        final = dest
        if dest == self.strided_out and len(codes) > 1:
            dest = self.pool.take()  # accumulate in contiguous scratch; the last step writes final
        # the first operand may be computed straight into dest
        inverse, core = codes[0]
        if inverse:  # e.g. -x + ...: negate into dest first
            v = self._value(core, dest)
            self.lines.append(f"{INVERSE[op]}({v}, out={dest})")
            acc = dest
        else:
            acc = self._value(core, dest if self._leaf(core) is None else None)
        for k, (inverse, core) in enumerate(codes[1:], start=2):
            v = self._value(core, None)
            target = final if k == len(codes) else dest
            self.lines.append(f"{inverse_op if inverse else op}({acc}, {v}, out={target})")
            acc = target
            self.pool.give(v)
        if acc != final:
            self.lines.append(f"np.copyto({final}, {acc})")
        if dest != final:
            self.pool.give(dest)

    def _mul(self, e, dest):
        coeff, factors = e.as_coeff_mul()
        if coeff == -1 and len(factors) == 1:
            v = self._value(factors[0], dest if self._leaf(factors[0]) is None else None)
            self.lines.append(f"np.negative({v}, out={dest})")
            if v != dest:
                self.pool.give(v)
            return
        args = list(factors) if coeff == 1 else [coeff, *factors]
        self._chain(args, dest, "np.multiply", "np.divide", _split_inverse)

    def _pow(self, e, dest):
        base, exp = e.args
        leaf = self._leaf(base)
        v = leaf if leaf is not None else self._value(base, dest)
        ufunc = next((f for power, f in POWERS.items() if exp == power), None)
        if ufunc is not None:
            self.lines.append(f"{ufunc}({v}, out={dest})")
        else:
            self.lines.append(f"np.power({v}, {number(exp)}, out={dest})")

    def _mean(self, e, dest):
        """mean(u): u into ``dest`` (or read where it is), then its mean over the units broadcast."""
        leaf = self._leaf(e.args[0])
        v = leaf if leaf is not None else self._value(e.args[0], dest)
        self.lines.append(f"np.copyto({dest}, {v}.mean(axis=-1, keepdims=True))  # mean over the units")

    def _activation(self, e, dest):
        name = type(e).__name__
        a = self._value(e.args[0], None)
        if name in INPLACE:
            self.lines.append(INPLACE[name].format(a=a, out=dest))
        else:
            kw = "".join(f", {k}={number(v)}" for k, v in sorted(e.exact_params().items()))
            self.lines.append(f"np.copyto({dest}, {self.act_module}.{name}({a}{kw}))")
        self.pool.give(a)


def _split_sign(a):
    """(negated?, magnitude) of a sum's term: ``-x`` -> (True, x)."""
    if isinstance(a, sp.Mul) and a.args[0].is_number and a.args[0] < 0:
        return True, -a
    return False, a


def _split_inverse(a):
    """(reciprocal?, base) of a product's factor: ``x**-1`` -> (True, x)."""
    if isinstance(a, sp.Pow) and a.exp == -1:
        return True, a.base
    return False, a


def derivative_call(e, act_module: str = "_act") -> str:
    """The generated activation kernel's f' for an activation (an instance or its class) without an
    output form."""
    name = e.__name__ if isinstance(e, type) else type(e).__name__
    kw = "".join(f", {k}={number(v)}" for k, v in sorted(e.exact_params().items()))
    return f"{act_module}.{name}_d({{a}}{kw})"
