"""Tensor construction, dtype rules, conversion and operators."""
import numpy as np
import pytest

import autograd as ag
from autograd.errors import DtypeError, ShapeError


def test_python_floats_default_to_float32_and_float64_arrays_stay():
    assert ag.tensor([1.0, 2.0]).dtype == np.float32
    assert ag.tensor(np.array([1.0])).dtype == np.float64
    assert ag.tensor([1, 2]).dtype == np.int64
    assert ag.tensor([1.0], dtype="float64").dtype == np.float64


def test_integers_never_require_grad():
    with pytest.raises(DtypeError, match="int64"):
        ag.tensor([1, 2], requires_grad=True)
    with pytest.raises(DtypeError):
        ag.tensor([True]).requires_grad_()


def test_no_silent_upcast_from_scalars_or_float64_arrays():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    assert (x * 2.5).dtype == np.float32
    assert (2.5 - x).dtype == np.float32
    assert (x + np.array([1.0, 2.0])).dtype == np.float32
    assert (np.array([1.0, 2.0]) * x).dtype == np.float32
    assert (x ** 2).dtype == np.float32
    assert ag.sqrt(x).dtype == np.float32
    assert ag.softmax(x).dtype == np.float32
    assert ag.mean(x).dtype == np.float32
    y = (x * 2).sum()
    y.backward()
    assert x.grad.dtype == np.float32


def test_properties_and_conversion():
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
    assert x.T.shape == (3, 2)
    assert np.asarray(x) is x.data
    assert x.numpy() is x.data
    assert ag.tensor(3.5).item() == 3.5
    with pytest.raises(ValueError, match="one element"):
        x.item()
    d = (ag.tensor([1.0], requires_grad=True) * 2).detach()
    assert not d.requires_grad and d.is_leaf


def test_repr_is_readable():
    assert repr(ag.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert "requires_grad=True" in repr(ag.tensor([1.0], requires_grad=True))
    assert "grad_fn=<mul>" in repr(ag.tensor([1.0], requires_grad=True) * 2)
    assert "dtype=float64" in repr(ag.tensor(np.array([1.0])))
    assert "dtype=int64" in repr(ag.tensor([1]))


def test_factories():
    assert ag.zeros(2, 3).shape == (2, 3) and ag.ones((2,)).data.sum() == 2
    assert ag.full((2, 2), 7.0).data.max() == 7.0
    assert ag.arange(5).dtype == np.int64 and ag.arange(0.0, 1.0, 0.5).dtype == np.float32
    np.testing.assert_array_equal(ag.randn(3, rng=1).data, ag.randn(3, rng=np.random.default_rng(1)).data)
    assert ag.rand(4, rng=0).dtype == np.float32
    assert ag.zeros_like(ag.ones(2, 2)).shape == (2, 2)
    assert ag.ones_like(np.zeros(3)).data.sum() == 3


def test_operators_match_numpy_and_reflect():
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    x = ag.tensor(a)
    np.testing.assert_allclose((x + 1).data, a + 1)
    np.testing.assert_allclose((1 - x).data, 1 - a)
    np.testing.assert_allclose((2 / x).data, 2 / a)
    np.testing.assert_allclose((2 ** x).data, 2 ** a)
    np.testing.assert_allclose((x @ x).data, a @ a)
    np.testing.assert_allclose((a @ x).data, a @ a)
    np.testing.assert_allclose((-x).data, -a)
    np.testing.assert_array_equal((x > 2).data, a > 2)
    assert (x == x).data.all() and not (x != x).data.any()


def test_reflected_pow_gradient():
    x = ag.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (2.0 ** x).sum().backward()
    np.testing.assert_allclose(x.grad.data, np.log(2) * 2 ** x.data)


def test_indexing_all_kinds_with_gradients():
    a = np.arange(24.0).reshape(2, 3, 4)
    for index in [1, (0, slice(1, 3)), (Ellipsis, None, 2), (slice(None, None, -1),), ([0, 1, 1],),
                  (slice(None), [2, 0]), a > 10, (np.array([0, 1]), np.array([2, 2]))]:
        x = ag.tensor(a, requires_grad=True)
        y = x[index]
        np.testing.assert_array_equal(y.data, a[index])
        y.sum().backward()
        expected = np.zeros_like(a)
        np.add.at(expected, index, 1.0)
        np.testing.assert_array_equal(x.grad.data, expected)


def test_binary_shape_errors_name_the_op_and_shapes():
    with pytest.raises(ShapeError, match=r"add: .*\(2, 3\), \(4,\)"):
        ag.tensor(np.ones((2, 3))) + ag.tensor(np.ones(4))
    with pytest.raises(ShapeError, match=r"matmul: \(2, 3\) @ \(4, 5\): inner dimensions differ \(3 vs 4\)"):
        ag.tensor(np.ones((2, 3))) @ ag.tensor(np.ones((4, 5)))


def test_in_place_operators_bump_versions():
    x = ag.tensor([1.0, 2.0])
    v = x._version
    x += 1
    x *= 2
    x.sub_(1).zero_()
    assert x._version == v + 4
    np.testing.assert_array_equal(x.data, [0, 0])
