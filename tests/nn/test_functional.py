"""nn.functional: finite-difference gradient checks (float64, order 2 where the layer is smooth)
on small Hypothesis-drawn geometries, and every error a user can trigger, by type and message."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
import nn.functional as F
from autograd.errors import DtypeError, ShapeError
from autograd.testing import check_grads


def randn(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape)


@st.composite
def conv_geometry(draw):
    groups = draw(st.integers(1, 2))
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride, dilation = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1))
    h = draw(st.integers(dilation * (k[0] - 1) + 1, dilation * (k[0] - 1) + 3))
    w = draw(st.integers(dilation * (k[1] - 1) + 1, dilation * (k[1] - 1) + 3))
    return (draw(st.integers(1, 2)), groups, k, stride, padding, dilation, (h, w))


@given(conv_geometry(), st.integers(0, 1000))
def test_conv2d_gradients_order2(geom, seed):
    b, groups, k, stride, padding, dilation, hw = geom
    x, w, bias = randn(seed, b, 2 * groups, *hw), randn(seed + 1, groups, 2, *k), randn(seed + 2, groups)
    check_grads(lambda x, w, bias: F.conv2d(x, w, bias, stride, padding, dilation, groups), x, w, bias, order=2)


def test_conv1d_gradients_order2():
    check_grads(lambda x, w: F.conv1d(x, w, stride=2, padding="valid", dilation=2), randn(0, 2, 3, 9), randn(1, 2, 3, 3))
    check_grads(lambda x, w: F.conv1d(x, w, padding="same"), randn(0, 1, 2, 5), randn(1, 3, 2, 2))


def test_linear_gradients_order2():
    check_grads(F.linear, randn(0, 3, 4), randn(1, 2, 4), randn(2, 2), order=2)


@given(st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.booleans(), st.integers(0, 1000))
def test_avg_pool2d_gradients_order2(k, stride, padding, ceil, seed):
    padding = min(padding, k // 2)
    x = randn(seed, 1, 2, 5, 4)
    check_grads(lambda x: F.avg_pool2d(x, k, stride, padding, ceil, count_include_pad=False), x, order=2)


@given(st.integers(1, 3), st.sampled_from([None, 1, 2]), st.integers(0, 1), st.integers(1, 2), st.integers(0, 1000))
def test_max_pool2d_gradients(k, stride, padding, dilation, seed):
    x = randn(seed, 2, 1, 5, 6)  # continuous values: no ties
    check_grads(lambda x: F.max_pool2d(x, k, stride, min(padding, k // 2), dilation), x, order=1)


def test_max_pool2d_splits_tied_gradient_evenly():
    x = ag.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    np.testing.assert_allclose(x.grad.data, 0.25)  # PyTorch would give one element 1.0


def test_max_pool2d_of_a_window_with_nan_gives_it_a_zero_gradient_not_nan():
    data = np.arange(8.0).reshape(1, 1, 2, 4)
    data[0, 0, 0, 1] = np.nan
    x = ag.tensor(data, requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert np.isnan(y.data[0, 0, 0, 0]) and y.data[0, 0, 0, 1] == 7.0
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[[[0, 0, 0, 0], [0, 0, 0, 1]]]])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradients_order2(training):
    rm, rv = np.zeros(3), np.ones(3)
    check_grads(lambda x, w, b: F.batch_norm(x, rm.copy(), rv.copy(), w, b, training),
                randn(0, 4, 3, 2), randn(1, 3), randn(2, 3), order=2)


def test_layer_norm_softmax_and_activations_gradients():
    x = randn(0, 3, 4)
    check_grads(lambda x, w, b: F.layer_norm(x, 4, w, b), x, randn(1, 4), randn(2, 4), order=2)
    for fn in (lambda x: F.softmax(x, 1), lambda x: F.log_softmax(x, 0), F.sigmoid, F.tanh,
               lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh")):
        check_grads(fn, x * 3, order=2)
    for fn in (F.relu, lambda x: F.leaky_relu(x, 0.1)):
        check_grads(fn, x, order=1)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_gradients_order2(smoothing):
    y = np.array([[0, 2], [1, 1], [2, -100]])
    check_grads(lambda x: F.cross_entropy(x, y, np.array([1.0, 2.0, 0.5]), label_smoothing=smoothing),
                randn(0, 3, 3, 2), order=2)
    check_grads(lambda x, p: F.cross_entropy(x, p), randn(1, 2, 3), np.full((2, 3), 1 / 3), order=2)


def test_other_losses_gradients_order2():
    x, y = randn(0, 3, 2), np.random.default_rng(1).uniform(0, 1, (3, 2))
    check_grads(lambda x: F.mse_loss(x, y), x, order=2)
    check_grads(lambda x: F.binary_cross_entropy_with_logits(x, y, pos_weight=np.array([2.0, 0.5])), x, order=2)
    check_grads(lambda p: F.binary_cross_entropy(p, y), np.random.default_rng(2).uniform(0.1, 0.9, (3, 2)), order=2)
    check_grads(lambda x: F.nll_loss(x, np.array([1, 0, 1]), reduction="sum"), x, order=2)


# --- errors -------------------------------------------------------------------------------------------
X4 = ag.zeros(32, 3, 28, 28)


@pytest.mark.parametrize("call,error,message", [
    (lambda: F.conv2d(X4, ag.zeros(8, 1, 3, 3)), ShapeError,
     "conv2d: input (32, 3, 28, 28) has 3 channels, weight (8, 1, 3, 3) expects 1"),
    (lambda: F.conv2d(ag.zeros(3, 28), ag.zeros(8, 3, 3, 3)), ShapeError, "expected a 4-D input"),
    (lambda: F.conv2d(X4, ag.zeros(8, 3, 3)), ShapeError, "weight must be 4-D"),
    (lambda: F.conv2d(ag.zeros(0, 0, 0), ag.zeros(0, 0, 0, 0)), ShapeError,  # found by the fuzz test
     "conv2d: weight (0, 0, 0, 0) has no output channels or a kernel of size 0"),
    (lambda: F.conv2d(X4, ag.zeros(8, 3, 0, 3)), ShapeError, "weight (8, 3, 0, 3) has no output channels"),
    (lambda: F.conv2d(ag.zeros(1, 3, 4, 4), ag.zeros(8, 3, 5, 5), padding=0), ShapeError, "padded input is only (4, 4)"),
    (lambda: F.conv2d(X4, ag.zeros(8, 1, 3, 3), groups=2), ShapeError, "groups=2 must divide"),
    (lambda: F.conv2d(X4, ag.zeros(8, 3, 3, 3), ag.zeros(4)), ShapeError, "bias (4,) must have shape (8,)"),
    (lambda: F.conv2d(X4, ag.zeros(8, 3, 3, 3), stride=2, padding="same"), ValueError, "not supported for strided"),
    (lambda: F.conv2d(ag.tensor(np.zeros((1, 3, 4, 4), int)), ag.zeros(8, 3, 3, 3)), DtypeError, "floating point"),
    (lambda: F.conv1d(ag.zeros(2, 4, 10), ag.zeros(8, 2, 3)), ShapeError, "has 4 channels, weight (8, 2, 3) expects 2"),
    (lambda: F.linear(ag.zeros(32, 100), ag.zeros(10, 784)), ShapeError, "linear: input (32, 100) has 100 features"),
    (lambda: F.max_pool2d(ag.zeros(2, 8), 2), ShapeError, "max_pool2d: expected a 4-D input"),
    (lambda: F.max_pool2d(ag.zeros(1, 1, 2, 2), 3), ShapeError, "larger than the padded input"),
    (lambda: F.avg_pool2d(ag.zeros(1, 1, 4, 4), 2, padding=2), ValueError, "at most half of the kernel size"),
    (lambda: F.cross_entropy(ag.zeros(4, 10), np.array([1, 2, 12, 0])), ShapeError,
     "cross_entropy: target contains class 12 but input has 10 classes"),
    (lambda: F.cross_entropy(ag.zeros(4, 10), np.array([1, -3, 0, 0])), ShapeError, "contains class -3"),
    (lambda: F.cross_entropy(ag.zeros(4, 10), np.array([1.0, 2.0, 0.0, 0.0])), DtypeError, "integer class indices"),
    (lambda: F.cross_entropy(ag.zeros(32, 10), np.zeros(31, int)), ShapeError,
     "input (32, 10) and target (31,) have different batch sizes"),
    (lambda: F.cross_entropy(ag.zeros(0, 10), np.zeros(0, int)), ShapeError, "empty batch"),
    (lambda: F.cross_entropy(ag.zeros(4, 10), np.zeros(4, int), reduction="avg"), ValueError,
     "reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: F.cross_entropy(ag.zeros(4, 10), np.zeros(4, int), weight=np.ones(3)), ShapeError, "one entry per class"),
    (lambda: F.nll_loss(ag.zeros(4, 3, 2), np.zeros((4, 3), int)), ShapeError, "must have shape (4, 2)"),
    (lambda: F.mse_loss(ag.zeros(4, 1), ag.zeros(4)), ShapeError, "mse_loss: input (4, 1) and target (4,)"),
    (lambda: F.binary_cross_entropy(ag.full((2,), 1.5), ag.zeros(2)), ValueError, "probabilities in [0, 1]"),
    (lambda: F.dropout(X4, 1.5), ValueError, "between 0 and 1, but got 1.5"),
    (lambda: F.batch_norm(ag.zeros(1, 3), None, None, training=True), ShapeError, "more than 1 value per channel"),
    (lambda: F.batch_norm(ag.zeros(2, 3), np.zeros(4), np.ones(4)), ShapeError, "running_mean (4,) must have shape (3,)"),
    (lambda: F.layer_norm(ag.zeros(2, 3), (4,)), ShapeError, "does not end with normalized_shape (4,)"),
    (lambda: F.gelu(X4, approximate="fast"), ValueError, "'none' or 'tanh'"),
    (lambda: F.one_hot(np.array([0, 5]), 3), ShapeError, "labels must be in [0, 3)"),
    (lambda: F.one_hot(np.array([0.5])), DtypeError, "integers"),
])
def test_errors_name_the_layer_and_shapes(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert message in str(info.value)
