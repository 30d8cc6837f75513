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


# --- issue 15: one rule per argument, compared with NumPy and PyTorch ---------------------------------
def test_transpose_two_ints_swap_at_every_rank_like_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for transpose's two-int form")
    for shape in [(2, 3), (2, 3, 4), (2, 3, 4, 5)]:
        a = np.arange(float(np.prod(shape))).reshape(shape)
        for i, j in [(0, 1), (1, 0), (0, -1), (-2, -1)]:
            expected = torch.tensor(a).transpose(i, j).numpy()
            np.testing.assert_array_equal(ag.transpose(ag.tensor(a), i, j).data, expected)
            np.testing.assert_array_equal(ag.tensor(a).transpose(i, j).data, expected)
    a = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(ag.transpose(ag.tensor(a), (2, 0, 1)).data, np.transpose(a, (2, 0, 1)))
    np.testing.assert_array_equal(ag.tensor(a).transpose(2, 0, 1).data, a.transpose(2, 0, 1))
    np.testing.assert_array_equal(ag.tensor(a).transpose().data, a.T)
    np.testing.assert_array_equal(ag.tensor(a).T.data, a.T)


@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")  # NumPy and PyTorch warn about ddof
def test_var_and_std_with_too_few_samples_are_nan_or_inf_like_numpy_and_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for the corrected variance")
    one = np.array([1.5])
    with np.errstate(all="ignore"):
        assert np.isnan(ag.std(ag.tensor(one), unbiased=True).item())
        assert np.isnan(ag.var(ag.tensor(one), ddof=1).item()) and np.isnan(np.var(one, ddof=1))
        two = np.array([1.0, 2.0])
        assert ag.var(ag.tensor(two), correction=3).item() == torch.var(torch.tensor(two), correction=3).item() == np.inf
    np.testing.assert_allclose(ag.std(ag.tensor(two), unbiased=True).item(), np.std(two, ddof=1))  # unchanged
    assert np.isnan(ag.mean(ag.zeros(0)).item()) and np.isnan(torch.zeros(0).mean().item())


def test_unsqueeze_accepts_exactly_numpys_range():
    x = ag.zeros(4, 3)
    for axis in range(-3, 3):
        assert ag.unsqueeze(x, axis).shape == np.expand_dims(x.data, axis).shape
    for axis in (3, 5, -4):
        with pytest.raises(ShapeError, match=f"unsqueeze: axis {axis} is out of range"):
            ag.unsqueeze(x, axis)


def test_every_axis_argument_goes_through_one_normaliser():
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    assert x.argmax(axis=-1).tolist() == [2, 2] and x.argmin(axis=np.int64(0)).tolist() == [0, 0, 0]
    np.testing.assert_allclose(x.sum(axis=(0, -1)).item(), 15.0)
    np.testing.assert_allclose(x.max(axis=np.int64(1)).data, [2, 5])
    assert ag.flatten(ag.zeros(2, 3, 4), -2).shape == (2, 12)
    for call in (lambda: x.argmax(axis=2), lambda: x.max(axis=-3), lambda: x.logsumexp(axis=2),
                 lambda: x.squeeze(axis=4), lambda: ag.cat([x, x], axis=-3)):
        with pytest.raises(ShapeError, match="is out of range for a tensor with 2 dimensions"):
            call()


def test_boolean_masks_select_like_numpy_or_raise():
    a = np.arange(6.0).reshape(2, 3)
    x = ag.tensor(a, requires_grad=True)
    for mask in [a > 2, np.array([True, False]), (Ellipsis, np.array([True, False, True])),
                 (slice(None), np.array([False, True, True]))]:
        np.testing.assert_array_equal(x[mask].data, a[mask])
    x[a > 2].sum().backward()
    np.testing.assert_array_equal(x.grad.data, (a > 2).astype(float))
    for mask in [np.ones((2, 2), bool), np.ones(5, bool), (Ellipsis, np.ones(2, bool))]:
        with pytest.raises(IndexError):
            a[mask]
        with pytest.raises(ShapeError, match="getitem: boolean mask"):
            x[mask]


def test_float_sizes_are_refused_not_truncated():
    with pytest.raises(TypeError, match="reshape: sizes must be ints"):
        ag.zeros(6).reshape(2, 3.5)
    with pytest.raises(TypeError, match="ones: sizes must be ints"):
        ag.ones((2, 1.5))
    assert ag.zeros(np.int64(2), 3).shape == (2, 3) and ag.zeros(6).reshape((np.int32(3), -1)).shape == (3, 2)
