"""Tensor construction, dtype rules, conversion and operators."""
import numpy as np
import pytest

import autograd as ag
from autograd.errors import DtypeError, GraphError, ShapeError


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


# --- issue 15: backward's arguments, and the dtype of .grad ------------------------------------------
def test_backward_pairs_each_output_with_one_gradient():
    a, b = ag.tensor([1.0, 2.0], requires_grad=True), ag.tensor([3.0, 4.0], requires_grad=True)
    with pytest.raises(GraphError, match="2 outputs but 1 gradients"):
        ag.backward([a.sum(), b.sum()], [None])
    assert a.grad is None and b.grad is None  # nothing was accumulated
    ag.backward([a.sum(), (b * 2).sum()], [None, 3.0])
    np.testing.assert_array_equal(a.grad.data, [1, 1])
    np.testing.assert_array_equal(b.grad.data, [6, 6])


def test_a_list_of_numbers_is_the_gradient_of_a_single_output():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    (x * 2).backward([1.0, 10.0])
    np.testing.assert_array_equal(x.grad.data, [2, 20])
    (g,) = ag.grad(x * 3, x, grad_outputs=[1.0, 2.0])
    np.testing.assert_array_equal(g.data, [3, 6])
    (g,) = ag.grad(x * 3, [x], grad_outputs=[ag.tensor([1.0, 1.0])])  # PyTorch's one-item-list form
    np.testing.assert_array_equal(g.data, [3, 3])


def test_grad_has_the_leaf_dtype():
    x = ag.tensor(np.ones(3, np.float32), requires_grad=True)
    (x * ag.tensor(np.full(3, 2.0))).sum().backward()  # a float64 operand
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.data, [2, 2, 2])
    (g,) = ag.grad((x * ag.tensor(np.full(3, 2.0))).sum(), x)
    assert g.dtype == np.float32
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(GraphError, match="complex128.*real output"):
        (w * 1j).sum().backward()
    (w * 1j).backward(np.array([1j, 1j]))  # an explicit complex gradient: the real part, in w's dtype
    assert w.grad.dtype == np.float32
    np.testing.assert_array_equal(w.grad.data, [-1, -1])
