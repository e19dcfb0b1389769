"""Scalar activations for the compiled kernels (numba), shared by every generated module.

The generated ``_forward_steps``/``_backward_steps`` (``derive/kernels/compiled/*.py``) import this
module as ``_jm``. A step's statement ``g_t = tanh(a_{g,t})`` writes the pre-activation in its loop
nest and then calls ``_jm.tanh_rows(g_all[_t])`` (``sigmoid_rows`` likewise): one compiled function,
cached on disk once for every cell, instead of the activation's arithmetic copied into each
statement (which made each cell's first compile 2-3x longer). An activation inside a larger
expression (``o_t * tanh(c_t)`` when tanh(c_t) is not kept) calls ``_jm.tanh`` inline.

numba caches a caller with the code of what it calls from here, and re-compiles it only when the
caller's file changes: every generated module therefore names the digest of this file
(``JITMATH``), so editing this file makes ``derive build --check`` report every compiled module
stale, and regenerating them invalidates numba's cache.
"""

import math

import numba
import numpy as np
from llvmlite import ir as llvm_ir
from numba import types
from numba.extending import intrinsic, overload

#: IEEE results for 1/0 and the like (as NumPy), no reassociation: as the generated modules' JIT
JIT = {"cache": True, "error_model": "numpy", "fastmath": False}


@intrinsic
def _pow2_neg_bits(typingctx, k):
    """2^-k as the float whose exponent field is bias - k (an integral float k, 0 <= k < bias, float32 or
    float64): LLVM's fptosi, sub, shl and bitcast, which vectorize (halving k times does not as well)."""
    if k not in (types.float32, types.float64):
        return None
    width, mantissa, bias, real = (32, 23, 127, llvm_ir.FloatType()) if k == types.float32 else \
        (64, 52, 1023, llvm_ir.DoubleType())

    def codegen(context, builder, signature, args):
        n = llvm_ir.IntType(width)
        exponent = builder.sub(llvm_ir.Constant(n, bias), builder.fptosi(args[0], n))
        return builder.bitcast(builder.shl(exponent, llvm_ir.Constant(n, mantissa)), real)
    return k(k), codegen


def pow2_neg(k):
    """2^-k, exact, for an integral float k in [0, 126] (float32) or [0, 1022] (float64), of k's type.
    Plain Python (``NUMBA_DISABLE_JIT=1``, the kernels' self-check) computes it so; compiled it is
    ``_pow2_neg_bits``."""
    return type(k)(2.0 ** -float(k))


@overload(pow2_neg, inline="always", jit_options={"cache": True})
def _pow2_neg_compiled(k):
    def impl(k):
        return _pow2_neg_bits(k)
    return impl


@numba.njit(inline="always", **JIT)
def tanh(x):
    """tanh in arithmetic LLVM vectorizes (the scalar math.tanh is a libm call per element, 10-30x
    slower than NumPy's SIMD tanh): (1 - e) / (1 + e) with e = exp(-2|x|) = p (1 + q), p = 2^-k,
    q = expm1(-r), |r| <= ln2/2 (the series to r^14), written ((1 - p) - p q) / ((1 + p) + p q): one
    rounding in each of numerator and denominator, and -q / (2 + q) near 0 (k = 0) with no branch;
    sign(x) past |x| = 20. Worst error 2.2 ULP in float64 against mpmath (derive's activation witness
    grid and random points, tests/test_backends.py), at 1.7x the throughput of the former form (a
    series below |x| = 0.4, 2^-k by halvings); float32 is computed in float64 and rounded once."""
    a = abs(x)
    z = 2.0 * (a if a < 20.0 else 20.0)
    k = np.floor(z * 1.4426950408889634 + 0.5)
    r = (z - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10
    q = 1.0
    for n in range(14, 1, -1):  # Horner's rule for 1 - r/2! + r^2/3! - ... (LLVM unrolls it)
        q = 1.0 - r * (1.0 / n) * q
    q = -r * q  # expm1(-r)
    p = pow2_neg(k)
    t = ((1.0 - p) - p * q) / ((1.0 + p) + p * q)
    t = t if a == a else a  # nan stays nan
    return math.copysign(t, x)


@numba.njit(inline="always", **JIT)
def sigmoid(z):
    """1 / (1 + exp(-z)) as (1 + tanh(z / 2)) / 2, as the NumPy kernel computes it: nothing overflows."""
    return 0.5 + 0.5 * tanh(0.5 * z)


@numba.njit(inline="always", **JIT)
def tanh32(x):
    """tanh's method in float32 arithmetic, for a float32 step's blocks (``tanh_rows``): 16 lanes wide
    on AVX-512, about 3x the throughput of ``tanh`` over float32. The series x + x^3 p(x^2) to x^17
    below |x| = 0.55, exp(-r) by its series to r^8 (|r| <= ln2/2), 2^-k from its bits (k <= 29: 1.2x the
    throughput of halving k times), sign(x) past |x| = 10. Worst error 1.5 ULP of float32 against mpmath (tests/test_backends.py)."""
    a = abs(x)
    s = a if a < np.float32(0.55) else np.float32(0.55)
    s2 = s * s
    p = np.float32(0.000590027440945586)
    p = p * s2 - np.float32(0.0014558343870513183)
    p = p * s2 + np.float32(0.003592128036572481)
    p = p * s2 - np.float32(0.008863235529902197)
    p = p * s2 + np.float32(0.021869488536155203)
    p = p * s2 - np.float32(0.05396825396825397)
    p = p * s2 + np.float32(0.13333333333333333)
    p = p * s2 - np.float32(0.3333333333333333)
    small = s + s * s2 * p
    z = a if a > np.float32(0.55) else np.float32(0.55)
    z = np.float32(2.0) * (z if z < np.float32(10.0) else np.float32(10.0))
    k = np.floor(z * np.float32(1.4426950408889634) + np.float32(0.5))
    r = (z - k * np.float32(0.693145751953125)) - k * np.float32(1.428606765330187e-06)
    e = np.float32(1.0)
    for n in range(8, 0, -1):  # Horner's rule for exp(-r) = 1 - r + r^2/2! - ... (LLVM unrolls it)
        e = np.float32(1.0) - r * np.float32(1.0 / n) * e
    e *= pow2_neg(k)
    t = small if a < np.float32(0.55) else (np.float32(1.0) - e) / (np.float32(1.0) + e)
    t = t if a == a else a  # nan stays nan
    return math.copysign(t, x)


@numba.njit(inline="always", **JIT)
def sigmoid32(z):
    """``sigmoid`` in float32 arithmetic."""
    return np.float32(0.5) + np.float32(0.5) * tanh32(np.float32(0.5) * z)


@numba.njit(inline="always", **JIT)
def step(z):
    """1[z > 0]: ReLU's derivative, 0 at 0 (PyTorch, JAX)."""
    return 1.0 if z > 0.0 else 0.0


@numba.njit(inline="always", **JIT)
def heaviside(z):
    """The step of max/min's derivative: 1/2 at a tie (torch.maximum)."""
    return 1.0 if z > 0.0 else 0.5 if z == 0.0 else 0.0


@numba.njit(inline="always", **JIT)
def sign(z):
    return 1.0 if z > 0.0 else -1.0 if z < 0.0 else 0.0


@numba.njit(**JIT)
def tanh_rows(a):
    """a[b, j] = tanh(a[b, j]) in place, over a step's (B, n) block: in float32 arithmetic for a float32
    block (``tanh32``), else in float64. The branch is on the item size, which numba knows when it
    compiles (one compile per dtype, cached)."""
    if a.itemsize == 4:
        for _b in range(a.shape[0]):
            for _j in range(a.shape[1]):
                a[_b, _j] = tanh32(a[_b, _j])
    else:
        for _b in range(a.shape[0]):
            for _j in range(a.shape[1]):
                a[_b, _j] = tanh(a[_b, _j])


@numba.njit(**JIT)
def sigmoid_rows(a):
    """a[b, j] = sigmoid(a[b, j]) in place, over a step's (B, n) block: float32 arithmetic for a
    float32 block (``sigmoid32``), as ``tanh_rows``."""
    if a.itemsize == 4:
        for _b in range(a.shape[0]):
            for _j in range(a.shape[1]):
                a[_b, _j] = sigmoid32(a[_b, _j])
    else:
        for _b in range(a.shape[0]):
            for _j in range(a.shape[1]):
                a[_b, _j] = sigmoid(a[_b, _j])
