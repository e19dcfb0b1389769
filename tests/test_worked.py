"""The worked BPTT example of the RNN basics page (H = 2, T = 3): every number against PyTorch's autograd
of the equations written out here, and the build's own check refusing a wrong gradient."""

import numpy as np
import pytest
import torch

from derive.docs import worked
from derive.errors import DeriveError


def torch_reference():
    cell = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in worked.CELL.items()}
    head = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in worked.HEAD.items()}
    h, hs, loss = torch.zeros(worked.HIDDEN, dtype=torch.float64), [], 0.0
    for x, k in zip(torch.tensor(worked.X, dtype=torch.float64), worked.TARGETS):
        h = torch.tanh(cell["W_xh"] @ x + cell["W_hh"] @ h + cell["b_h"])
        h.retain_grad()
        hs.append(h)
        loss = loss + torch.nn.functional.cross_entropy((head["W_o"] @ h + head["b_o"])[None], torch.tensor([k]))
    loss.backward()
    return loss, hs, {**{k: v.grad.numpy() for k, v in cell.items()}, **{k: v.grad.numpy() for k, v in head.items()}}


def test_every_number_against_torch():
    r = worked.compute()
    loss, hs, grads = torch_reference()
    assert r["loss"] == pytest.approx(loss.item(), rel=1e-12)
    assert np.allclose(r["h"], np.stack([h.detach().numpy() for h in hs]), atol=1e-14)
    assert np.allclose(r["dh"], np.stack([h.grad.numpy() for h in hs]), atol=1e-12)  # the total adjoint of h_t
    for name, g in grads.items():
        assert np.allclose(r["grads"][name], g, atol=1e-12), name


def test_the_page_prints_the_numbers():
    c = worked.context()
    assert len(c["forward"]) == len(c["backward"]) == worked.STEPS and [r["t"] for r in c["backward"]] == [3, 2, 1]
    assert c["loss"] == f"{torch_reference()[0].item():.4f}"


def test_a_wrong_gradient_stops_the_build():
    r = worked.compute()
    cell, head = worked._arrays(worked.CELL), worked._arrays(worked.HEAD)
    assert worked._finite_difference_check(cell, head, r["grads"]) < worked.FD_TOLERANCE
    wrong = {**r["grads"], "W_hh": r["grads"]["W_hh"] * (1 + 1e-5)}
    with pytest.raises(DeriveError, match="central differences"):
        worked._finite_difference_check(cell, head, wrong)
