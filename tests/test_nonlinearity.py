"""The "Why nonlinear" page's statements: the collapses (SymPy, with a mutation that must fail), XOR,
and the maxout and GLU layers' gradients and counts against PyTorch's autograd and modules."""

import numpy as np
import pytest
import sympy as sp
import torch
import torch.nn.functional as F

from derive.docs import nonlinear


def test_the_collapses_hold_and_a_wrong_one_does_not():
    assert nonlinear.layers_collapse() and nonlinear.recurrence_collapse(3) and nonlinear.recurrence_collapse(4)
    W, U, x1, x2 = (nonlinear._matrix(n, 2, 2) if n in "WU" else nonlinear._vector(n, 2) for n in ("W", "U", "x1", "x2"))
    h = W * (U * x1) + U * x2
    assert sp.expand(h - (U * W * x1 + U * x2)) != sp.zeros(2, 1)  # the order W U matters: the check can fail


def test_xor_least_squares_and_relu_units():
    fit = nonlinear.xor_linear()
    # independent: the normal equations for the affine fit
    A = np.hstack([nonlinear.XOR_X, np.ones((4, 1))])
    coef = np.linalg.solve(A.T @ A, A.T @ nonlinear.XOR_Y)
    assert np.allclose(coef, [0.0, 0.0, 0.5]) and np.allclose(fit["pred"], 0.5) and fit["mse"] == pytest.approx(0.25)
    assert list(nonlinear.xor_relu(nonlinear.XOR_X)) == [0, 1, 1, 0]


def test_maxout_layer_against_torch():
    rng = np.random.default_rng(3)
    n, k, inputs = 5, 3, 4
    x, dy = rng.normal(size=(2, 3, inputs)), rng.normal(size=(2, 3, n))
    linear = torch.nn.Linear(inputs, n * k).double()
    W, b = linear.weight.detach().numpy(), linear.bias.detach().numpy()
    xt = torch.tensor(x, requires_grad=True)
    y = linear(xt).view(2, 3, n, k).max(-1).values
    (y * torch.tensor(dy)).sum().backward()
    ours, arg = nonlinear.maxout_forward(x, W, b, k)
    grads = nonlinear.maxout_backward(dy, x, W, arg, k)
    assert np.allclose(ours, y.detach().numpy())
    assert np.allclose(grads["x"], xt.grad.numpy()) and np.allclose(grads["W"], linear.weight.grad.numpy())
    assert np.allclose(grads["b"], linear.bias.grad.numpy())
    assert sum(p.numel() for p in torch.nn.Linear(nonlinear.INPUTS, nonlinear.UNITS * nonlinear.PIECES).parameters()) \
        == nonlinear.counts()["maxout"]


def test_glu_layer_against_torch():
    rng = np.random.default_rng(4)
    n, inputs = 5, 4
    x, dy = rng.normal(size=(3, inputs)), rng.normal(size=(3, n))
    linear = torch.nn.Linear(inputs, 2 * n).double()
    W, V = (w.detach().numpy() for w in linear.weight.split(n))
    b, c = (v.detach().numpy() for v in linear.bias.split(n))
    xt = torch.tensor(x, requires_grad=True)
    y = F.glu(linear(xt), dim=-1)
    (y * torch.tensor(dy)).sum().backward()
    ours, cache = nonlinear.glu_forward(x, W, b, V, c)
    grads = nonlinear.glu_backward(dy, x, W, V, cache)
    assert np.allclose(ours, y.detach().numpy()) and np.allclose(grads["x"], xt.grad.numpy())
    assert np.allclose(np.vstack([grads["W"], grads["V"]]), linear.weight.grad.numpy())
    assert np.allclose(np.concatenate([grads["b"], grads["c"]]), linear.bias.grad.numpy())
    assert sum(p.numel() for p in torch.nn.Linear(nonlinear.INPUTS, 2 * nonlinear.UNITS).parameters()) \
        == nonlinear.counts()["glu"]
    assert sum(p.numel() for p in torch.nn.Linear(nonlinear.INPUTS, nonlinear.UNITS).parameters()) == nonlinear.counts()["relu"]


def test_the_build_time_gradient_check_catches_a_wrong_gradient(monkeypatch):
    assert nonlinear.layer_gradients_hold() and nonlinear.glu_local_derivatives()
    right = nonlinear.glu_backward
    monkeypatch.setattr(nonlinear, "glu_backward",
                        lambda dy, x, W, V, cache: {**right(dy, x, W, V, cache), "c": right(dy, x, W, V, cache)["c"] * 1.01})
    assert not nonlinear.layer_gradients_hold()
