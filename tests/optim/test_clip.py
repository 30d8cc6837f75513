"""Gradient clipping against torch.nn.utils: same clipped gradients, same returned norm."""
from __future__ import annotations

import math

import numpy as np
import pytest

import autograd as ag
import optim
from optim import clip_grad_norm_, clip_grad_value_

SHAPES = [(4, 3), (7,), ()]


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for gradient clipping")


def _pair(torch, seed: int, scale: float = 1.0, dtype=np.float64, none_last: bool = False):
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for i, s in enumerate(SHAPES):
        p = rng.standard_normal(s).astype(dtype)
        g = (scale * rng.standard_normal(s)).astype(dtype)
        a, b = ag.tensor(p.copy(), requires_grad=True), torch.tensor(p.copy(), requires_grad=True)
        if not (none_last and i == len(SHAPES) - 1):
            a.grad, b.grad = ag.tensor(g.copy()), torch.tensor(g.copy())
        ours.append(a)
        theirs.append(b)
    return ours, theirs


def _assert_same_grads(ours, theirs, tol=1e-12):
    for p, q in zip(ours, theirs):
        if q.grad is None:
            assert p.grad is None
        else:
            np.testing.assert_allclose(p.grad.data, q.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("clip_value", [0.1, 0.5, 10.0])
def test_clip_grad_value_matches_torch(torch, clip_value):
    ours, theirs = _pair(torch, 0, none_last=True)
    clip_grad_value_(ours, clip_value)
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _assert_same_grads(ours, theirs)
    assert max(np.abs(p.grad.data).max() for p in ours if p.grad is not None) <= clip_value


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf, 0.5])
@pytest.mark.parametrize("max_norm", [0.3, 1e3])  # clips / leaves alone
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm):
    ours, theirs = _pair(torch, 1, scale=2.0, none_last=True)
    before = [p.grad.data.copy() for p in ours if p.grad is not None]
    total = clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert float(total) == pytest.approx(expected.item(), rel=1e-12)
    _assert_same_grads(ours, theirs)
    if max_norm > 100:
        for p, g in zip(ours, before):
            np.testing.assert_array_equal(p.grad.data, g)


def test_clip_grad_norm_in_place_on_grad_data_and_float32(torch):
    ours, theirs = _pair(torch, 2, scale=3.0, dtype=np.float32)
    arrays = [p.grad.data for p in ours]
    total = clip_grad_norm_(ours, 1.0)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    for p, arr in zip(ours, arrays):
        assert p.grad.data is arr and arr.dtype == np.float32
    assert total.dtype == np.float32
    assert float(total) == pytest.approx(expected.item(), rel=1e-6)
    _assert_same_grads(ours, theirs, tol=1e-6)
    joint = math.sqrt(sum(float((p.grad.data.astype(np.float64) ** 2).sum()) for p in ours))
    assert joint == pytest.approx(1.0, rel=1e-5)


def test_single_tensor_and_no_grads():
    w = ag.tensor(np.zeros(3), requires_grad=True)
    assert float(clip_grad_norm_(w, 1.0)) == 0.0
    w.grad = ag.tensor(np.array([3.0, 4.0, 0.0]))
    assert float(clip_grad_norm_(w, 1.0)) == pytest.approx(5.0)
    np.testing.assert_allclose(w.grad.data, [0.6, 0.8, 0.0], rtol=1e-5)
    clip_grad_value_(w, 0.7)
    np.testing.assert_allclose(w.grad.data, [0.6, 0.7, 0.0], rtol=1e-5)


def test_nonfinite_norm(torch):
    w = ag.tensor(np.zeros(2), requires_grad=True)
    w.grad = ag.tensor(np.array([np.inf, 1.0]))
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([w], 1.0, error_if_nonfinite=True)
    t = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    t.grad = torch.tensor([np.inf, 1.0], dtype=torch.float64)
    total = clip_grad_norm_([w], 1.0)
    expected = torch.nn.utils.clip_grad_norm_([t], 1.0)
    assert math.isinf(float(total)) and math.isinf(expected.item())
    np.testing.assert_array_equal(w.grad.data, t.grad.numpy())  # both scaled by 0: [nan, 0]


@pytest.mark.parametrize("call,message", [
    (lambda ps: optim.clip_grad_norm_(ps, -1.0), r"clip_grad_norm_: max_norm must be a number >= 0 \(inf allowed\), got -1.0"),
    (lambda ps: optim.clip_grad_norm_(ps, float("nan")), "clip_grad_norm_: max_norm must be .* got nan"),
    (lambda ps: optim.clip_grad_norm_(ps, 1.0, norm_type=float("nan")), "clip_grad_norm_: norm_type must be .* got nan"),
    (lambda ps: optim.clip_grad_value_(ps, -0.5), "clip_grad_value_: clip_value must be .* got -0.5"),
    (lambda ps: optim.clip_grad_value_(ps, float("nan")), "clip_grad_value_: clip_value must be .* got nan"),
])
def test_bad_clip_limits_raise_and_leave_gradients_alone(call, message):
    w = ag.tensor(np.array([3.0, 4.0]), requires_grad=True)
    w.grad = ag.tensor(np.array([3.0, 4.0]))
    with pytest.raises(ValueError, match=message):
        call([w])
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])
    optim.clip_grad_norm_([w], float("inf"), norm_type="inf")  # inf stays a valid limit, like torch
    np.testing.assert_array_equal(w.grad.data, [3.0, 4.0])
