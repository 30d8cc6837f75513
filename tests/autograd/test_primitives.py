"""Every registered primitive, checked the same way: the registry is the list of what to test."""
import numpy as np
import pytest

import autograd as ag
from autograd.primitive import REGISTRY, defprim, unregister, temporary_primitive
from autograd.testing import GradientCheckError, check_primitive
from autograd.testing.strategies import has_test_data

ALL = sorted(REGISTRY)


def test_registry_is_small_and_complete():
    # the design's "about 20 primitives": everything else is composed
    assert 20 <= len(REGISTRY) <= 32, sorted(REGISTRY)
    for name in ("add", "mul", "exp", "log", "sum", "max", "matmul", "reshape", "transpose", "broadcast_to",
                 "sum_to", "slice", "unslice", "take", "scatter_add", "sliding_windows", "window_sum", "where"):
        assert name in REGISTRY


@pytest.mark.parametrize("name", ALL)
def test_every_primitive_has_test_data(name):
    assert has_test_data(REGISTRY[name]), f"{name} declares neither a domain for each argument nor examples"


@pytest.mark.parametrize("name", ALL)
def test_primitive_gradients_and_invariants(name):
    """Hypothesis-drawn float64 inputs: order 1 and 2 against finite differences, no mutation,
    no aliasing, and transpose pairs adjoint to 1e-12."""
    check_primitive(name)


TRANSPOSE_PAIRS = [("broadcast_to", "sum_to"), ("slice", "unslice"), ("take", "scatter_add"),
                   ("sliding_windows", "window_sum")]


@pytest.mark.parametrize("a,b", TRANSPOSE_PAIRS)
def test_transpose_pairs_are_declared_both_ways(a, b):
    assert REGISTRY[a].transpose == b and REGISTRY[b].transpose == a


def test_a_primitive_without_test_data_is_reported():
    prim = defprim("user_cube_nodata", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x, domain=("real", "real"))
    try:
        assert not has_test_data(prim)
        with pytest.raises(AssertionError, match="no test data"):
            check_primitive("user_cube_nodata")
    finally:
        unregister("user_cube_nodata")


def test_user_primitive_gets_the_same_checks():
    cube = defprim("user_cube", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x)
    try:
        check_primitive("user_cube", max_examples=10)
        x = ag.tensor([2.0], requires_grad=True)
        cube(x).sum().backward()
        assert x.grad.item() == pytest.approx(12.0)
    finally:
        unregister("user_cube")


def test_a_wrong_vjp_is_caught():
    with temporary_primitive("user_bad_sin", np.sin, lambda g, ans, x: g * ag.sigmoid(x)):  # not cos
        with pytest.raises(GradientCheckError, match="argument 0"):
            check_primitive("user_bad_sin", max_examples=5)


def test_wrong_second_derivative_is_caught():
    # first derivative right (2x), but written with a constant so the second derivative is lost
    with temporary_primitive("user_square_const", np.square, lambda g, ans, x: g * (2 * x.data)):
        with pytest.raises(GradientCheckError, match="order 2"):
            check_primitive("user_square_const", max_examples=5)


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        defprim("add", np.add, None, None)


def _naive_window_sum(x, shape, kernel, stride, dilation):
    res = np.zeros(shape)
    n = len(kernel)
    out = x.shape[-2 * n:-n]
    for offset in np.ndindex(*kernel):
        for pos in np.ndindex(*out):
            at = tuple(p * s + o * d for p, s, o, d in zip(pos, stride, offset, dilation))
            res[(Ellipsis,) + at] += x[(Ellipsis,) + pos + offset]
    return res


@pytest.mark.parametrize("kernel", [(1, 1), (1, 3), (3, 1), (2, 2), (3, 3)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 1), (1, 3), (3, 3)])
@pytest.mark.parametrize("stride", [(1, 1), (2, 1)])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (5, 4)])
@pytest.mark.parametrize("extra", [0, 1])
def test_window_sum_equals_adding_every_window_back(kernel, dilation, stride, size, extra):
    """Every geometry of window_sum's fast paths (the first two offsets written with one add where
    they overlap, copies where they do not; a dilation as long as the output; input rows no
    window covers, extra=1), against a loop."""
    from autograd.ops.shape import _window_sum

    shape = (2,) + tuple((m - 1) * s + (k - 1) * d + 1 + extra for m, s, k, d in zip(size, stride, kernel, dilation))
    x = np.random.default_rng(0).standard_normal((2,) + size + kernel)
    np.testing.assert_allclose(_window_sum(x, shape, kernel, stride, dilation),
                               _naive_window_sum(x, shape, kernel, stride, dilation), rtol=1e-13, atol=1e-13)


def test_window_sum_over_a_kernel_of_size_zero_is_zeros():
    """No window adds anything (found by the fuzz test through conv2d: a StopIteration before)."""
    from autograd.ops.shape import _window_sum

    np.testing.assert_array_equal(_window_sum(np.ones((2, 3, 3, 0, 2)), (2, 3, 4), (0, 2), (1, 1), (1, 1)),
                                  np.zeros((2, 3, 4)))


@pytest.mark.parametrize("axes", [(2, 0, 1), (-1, 0, 1), (1, -1, -3)])
def test_transpose_gradient_undoes_any_permutation_numpy_accepts(axes):
    """The VJP's inverse permutation counts negative axes from the end, as np.transpose does."""
    transpose = REGISTRY["transpose"]
    x = ag.tensor(np.arange(24.0).reshape(2, 3, 4), requires_grad=True)
    y = transpose(x, axes=axes)
    g = np.random.default_rng(0).standard_normal(y.shape)
    y.backward(ag.tensor(g))
    np.testing.assert_array_equal(x.grad.data, np.transpose(g, np.argsort([a % 3 for a in axes])))
