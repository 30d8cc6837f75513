"""Composed functions: values equal NumPy's, gradients pass check_grads (orders 1 and 2)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
from autograd.errors import ShapeError
from autograd.testing import check_grads
from autograd.testing import strategies as S


@given(x=S.arrays(S.shapes(min_dims=1, max_dims=3, max_side=3)), data=st.data())
def test_reductions_match_numpy_and_differentiate(x, data):
    axis = data.draw(S.axes(x.ndim))
    keep = data.draw(st.booleans())
    np.testing.assert_allclose(ag.mean(x, axis, keep).data, np.mean(x, axis=axis, keepdims=keep))
    np.testing.assert_allclose(ag.var(x, axis, keep).data, np.var(x, axis=axis, keepdims=keep), atol=1e-12)
    np.testing.assert_allclose(ag.logsumexp(x, axis, keep).data,
                               np.log(np.sum(np.exp(x), axis=axis, keepdims=keep)), rtol=1e-12, atol=1e-15)
    for f in (ag.mean, ag.var, ag.logsumexp):
        check_grads(lambda t: f(t, axis, keep), x, order=2)


@given(x=S.arrays(S.shapes(min_dims=1, max_dims=3, max_side=3)), data=st.data())
def test_softmax_family(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(ag.softmax(x, axis).data, expected, rtol=1e-12)
    np.testing.assert_allclose(ag.log_softmax(x, axis).data, np.log(expected), rtol=1e-10, atol=1e-12)
    check_grads(lambda t: ag.softmax(t, axis), x, order=2)
    check_grads(lambda t: ag.log_softmax(t, axis), x, order=2)


def test_softmax_is_stable_for_large_inputs():
    x = ag.tensor(np.array([1000.0, 1000.0, -1000.0]))
    np.testing.assert_allclose(ag.softmax(x).data, [0.5, 0.5, 0.0])
    assert np.isfinite(ag.logsumexp(x).data)


@given(x=S.arrays(S.shapes(min_dims=1, max_dims=3, max_side=3), domain="nonzero"))
def test_elementwise_compositions(x):
    np.testing.assert_allclose(ag.abs(x).data, np.abs(x))
    np.testing.assert_allclose(ag.clip(x, -1.0, 1.0).data, np.clip(x, -1, 1))
    np.testing.assert_allclose(ag.maximum(x, 0.5).data, np.maximum(x, 0.5))
    np.testing.assert_allclose(ag.minimum(x, 0.5).data, np.minimum(x, 0.5))
    check_grads(ag.abs, x, order=2)
    check_grads(lambda t: ag.sqrt(ag.abs(t)), x, order=2)
    if x.std() > 0.1:  # std's derivative is infinite at zero spread, in PyTorch too
        check_grads(lambda t: ag.std(t), x, order=2)


def test_clip_gradient_flows_only_inside():
    x = ag.tensor(np.array([-2.0, 0.0, 2.0]), requires_grad=True)
    ag.clip(x, -1, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 0])


@given(x=S.arrays(S.shapes(min_dims=2, max_dims=4, max_side=3)), data=st.data())
def test_shape_functions(x, data):
    perm = tuple(data.draw(st.permutations(range(x.ndim))))
    np.testing.assert_array_equal(ag.permute(x, perm).data, np.transpose(x, perm))
    np.testing.assert_array_equal(ag.transpose(x).data, x.T)
    np.testing.assert_array_equal(ag.swapaxes(x, 0, -1).data, np.swapaxes(x, 0, -1))
    np.testing.assert_array_equal(ag.flatten(x, 1).data, x.reshape(x.shape[0], -1))
    np.testing.assert_array_equal(ag.unsqueeze(x, 1).data, np.expand_dims(x, 1))
    np.testing.assert_array_equal(ag.squeeze(ag.unsqueeze(x, 0), 0).data, x)
    np.testing.assert_array_equal(ag.reshape(x, -1).data, x.reshape(-1))
    np.testing.assert_array_equal(ag.stack([x, x], 1).data, np.stack([x, x], 1))
    np.testing.assert_array_equal(ag.cat([x, x], -1).data, np.concatenate([x, x], -1))
    np.testing.assert_array_equal(ag.pad(x, 1).data, np.pad(x, 1))
    np.testing.assert_array_equal(ag.pad(x, 1, constant_values=-3.0).data, np.pad(x, 1, constant_values=-3.0))
    check_grads(lambda t: ag.stack([t, t * 2], 0), x, order=1)
    check_grads(lambda t: ag.pad(t, ((0, 1),) + ((1, 0),) * (t.ndim - 1)), x, order=1)


@pytest.mark.parametrize("spec,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("...ij,...jk->...ik", [(2, 2, 3), (2, 3, 2)]),
    ("ij,ij", [(2, 3), (2, 3)]), ("i,j", [(2,), (3,)]), ("bhd,bkd->bhk", [(2, 3, 4), (2, 5, 4)]),
])
def test_einsum_matches_numpy(spec, shapes):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s) for s in shapes]
    np.testing.assert_allclose(ag.einsum(spec, *xs).data, np.einsum(spec, *xs), rtol=1e-12)
    check_grads(lambda *ts: ag.einsum(spec, *ts), *xs, order=2)


def test_aliases_accept_torch_keywords():
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(x.sum(dim=1, keepdim=True).data, [[3], [12]])
    np.testing.assert_allclose(x.mean(dim=0).data, [1.5, 2.5, 3.5])
    assert x.argmax(dim=1).tolist() == [2, 2]
    np.testing.assert_allclose(x.var(dim=1, unbiased=True).data, [1.0, 1.0])
    assert x.view(3, 2).shape == (3, 2) and x.expand(2, 2, 3).shape == (2, 2, 3)


def test_reduction_errors():
    with pytest.raises(ShapeError, match="sum: axis 3 is out of range"):
        ag.sum(ag.ones(2, 2), axis=3)
    with pytest.raises(ShapeError, match=r"max: the input of shape \(0,\) is empty"):
        ag.max(ag.zeros(0))
    with pytest.raises(ShapeError, match=r"reshape: cannot reshape \(2, 3\)"):
        ag.ones(2, 3).reshape(4, 2)
