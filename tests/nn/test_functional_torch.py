"""nn.functional against PyTorch (float64): the same forward values and the same gradients for
every input, weight and bias, over Hypothesis-drawn geometries."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import autograd as ag
import nn.functional as F

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for these tests")
TF = torch.nn.functional
TOL = 1e-6
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def compare(ours, theirs, *arrays, seed=0, **kwargs):
    """Run both with float64 copies of `arrays` (None passes through) and compare the output and
    the gradient of <output, v> for a random v with respect to every array."""
    xs = [None if a is None else ag.tensor(a, requires_grad=True) for a in arrays]
    ts = [None if a is None else torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = ours(*xs, **kwargs), theirs(*ts, **kwargs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=TOL, atol=TOL)
    v = np.random.default_rng(seed).standard_normal(out.shape)
    (out * v).sum().backward()
    (ref * torch.tensor(v)).sum().backward()
    for x, t in zip(xs, ts):
        if x is not None:
            assert x.grad is not None
            np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=TOL, atol=TOL)
    return out


def randn(rng, *shape):
    return rng.standard_normal(shape)


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = draw(st.sampled_from([1, 2, 3, (1, 2), (3, 1)]))
    dilation = draw(st.sampled_from([1, 2, (1, 2)]))
    padding = draw(st.sampled_from([0, 1, 2, (0, 2), "same", "valid"])) if stride == 1 else draw(st.sampled_from([0, 1, 2, (2, 1)]))
    dil = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    h = draw(st.integers(dil[0] * (kh - 1) + 1, dil[0] * (kh - 1) + 6))
    w = draw(st.integers(dil[1] * (kw - 1) + 1, dil[1] * (kw - 1) + 6))
    return dict(b=draw(st.integers(1, 3)), cin=cin, cout=cout, k=(kh, kw), hw=(h, w), stride=stride,
                padding=padding, dilation=dilation, groups=groups, bias=draw(st.booleans()))


@given(conv_cases(), st.integers(0, 2**31))
def test_conv2d_matches_torch(c, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, c["b"], c["cin"], *c["hw"])
    w = randn(rng, c["cout"], c["cin"] // c["groups"], *c["k"])
    b = randn(rng, c["cout"]) if c["bias"] else None
    compare(F.conv2d, TF.conv2d, x, w, b, stride=c["stride"], padding=c["padding"], dilation=c["dilation"],
            groups=c["groups"])


@given(conv_cases(), st.integers(0, 2**31))
def test_conv1d_matches_torch(c, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, c["b"], c["cin"], c["hw"][1])
    w = randn(rng, c["cout"], c["cin"] // c["groups"], c["k"][1])
    one = lambda v: v[1] if isinstance(v, tuple) else v  # noqa: E731
    compare(F.conv1d, TF.conv1d, x, w, None, stride=one(c["stride"]), padding=one(c["padding"]),
            dilation=one(c["dilation"]), groups=c["groups"])


def test_conv2d_unbatched_matches_torch():
    rng = np.random.default_rng(1)
    compare(F.conv2d, TF.conv2d, randn(rng, 2, 5, 6), randn(rng, 3, 2, 3, 3), randn(rng, 3), padding=1)


@st.composite
def pool_cases(draw, max_pool=True):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.sampled_from([None, 1, 2, (2, 1), 3]))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    dilation = draw(st.sampled_from([1, 2])) if max_pool else 1
    h = draw(st.integers(dilation * (k[0] - 1) + 1, 8))
    w = draw(st.integers(dilation * (k[1] - 1) + 1, 8))
    return dict(shape=(draw(st.integers(1, 2)), 2, h, w), k=k, stride=stride, padding=padding, dilation=dilation,
                ceil_mode=draw(st.booleans()))


@given(pool_cases(), st.integers(0, 2**31))
def test_max_pool2d_matches_torch(c, seed):
    x = randn(np.random.default_rng(seed), *c["shape"])
    args = dict(stride=c["stride"], padding=c["padding"], dilation=c["dilation"], ceil_mode=c["ceil_mode"])
    compare(F.max_pool2d, TF.max_pool2d, x, kernel_size=c["k"], **args)
    _, idx = F.max_pool2d(x, c["k"], return_indices=True, **args)
    _, ref = TF.max_pool2d(torch.tensor(x), c["k"], return_indices=True, **args)
    np.testing.assert_array_equal(idx.data, ref.numpy())


@given(pool_cases(max_pool=False), st.booleans(), st.sampled_from([None, 3]), st.integers(0, 2**31))
def test_avg_pool2d_matches_torch(c, include_pad, divisor, seed):
    x = randn(np.random.default_rng(seed), *c["shape"])
    compare(F.avg_pool2d, TF.avg_pool2d, x, kernel_size=c["k"], stride=c["stride"], padding=c["padding"],
            ceil_mode=c["ceil_mode"], count_include_pad=include_pad, divisor_override=divisor)


@pytest.mark.parametrize("fn", ["max_pool2d", "avg_pool2d"])
def test_tiled_pooling_fast_path_matches_torch(fn):
    x = randn(np.random.default_rng(2), 3, 4, 8, 7)  # 7 is not divisible by 2: the last column is dropped
    compare(getattr(F, fn), getattr(TF, fn), x, kernel_size=2)


@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from([(), (3,), (2, 3)]), st.booleans(), st.booleans(),
       st.integers(0, 2**31))
def test_batch_norm_matches_torch(n, c, spatial, training, affine, seed):
    rng = np.random.default_rng(seed)
    if training and n * int(np.prod(spatial)) == 1:
        n = 2
    x = randn(rng, n, c, *spatial)
    rm, rv = randn(rng, c), rng.uniform(0.5, 2, c)
    w, b = (randn(rng, c), randn(rng, c)) if affine else (None, None)
    ours_rm, ours_rv, ref_rm, ref_rv = rm.copy(), rv.copy(), torch.tensor(rm), torch.tensor(rv)
    compare(lambda x, w, b: F.batch_norm(x, ours_rm, ours_rv, w, b, training, 0.3, 1e-3),
            lambda x, w, b: TF.batch_norm(x, ref_rm, ref_rv, w, b, training, 0.3, 1e-3), x, w, b)
    np.testing.assert_allclose(ours_rm, ref_rm.numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours_rv, ref_rv.numpy(), rtol=TOL, atol=TOL)


def test_batch_norm_updates_tensor_running_stats_in_place():
    x = randn(np.random.default_rng(3), 4, 2, 3)
    rm, rv = ag.zeros(2, dtype=np.float64), ag.ones(2, dtype=np.float64)
    F.batch_norm(ag.tensor(x), rm, rv, training=True)
    ref_rm, ref_rv = torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)
    TF.batch_norm(torch.tensor(x), ref_rm, ref_rv, training=True)
    np.testing.assert_allclose(rm.data, ref_rm.numpy(), rtol=TOL)
    np.testing.assert_allclose(rv.data, ref_rv.numpy(), rtol=TOL)
    assert rm._version == 1


@given(st.sampled_from([((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((5,), 5)]), st.booleans(), st.integers(0, 2**31))
def test_layer_norm_matches_torch(shapes, affine, seed):
    rng = np.random.default_rng(seed)
    shape, norm = shapes
    nshape = (norm,) if isinstance(norm, int) else norm
    w, b = (randn(rng, *nshape), randn(rng, *nshape)) if affine else (None, None)
    compare(lambda x, w, b: F.layer_norm(x, norm, w, b), lambda x, w, b: TF.layer_norm(x, nshape, w, b),
            randn(rng, *shape), w, b)


ACTIVATIONS = [
    ("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("sigmoid", {}), ("tanh", {}),
    ("gelu", {"approximate": "none"}), ("gelu", {"approximate": "tanh"}), ("softmax", {"dim": 1}),
    ("log_softmax", {"dim": -1}), ("softmax", {"dim": 0}),
]


@pytest.mark.parametrize("name,kw", ACTIVATIONS)
def test_activations_match_torch(name, kw):
    x = np.random.default_rng(4).standard_normal((3, 40)) * 4
    x[0, :5] = [0.0, 12.0, -12.0, 30.0, -30.0]  # gelu's far tails and relu's kink
    compare(getattr(F, name), getattr(TF, name), x, **kw)


def test_dropout_scales_kept_elements():
    x = ag.tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.3, rng=0)
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], 1 / 0.7)
    assert abs(kept.mean() - 0.7) < 0.02
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.7)
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0)


def test_one_hot_and_flatten_match_torch():
    labels = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(labels).data, TF.one_hot(torch.tensor(labels)).numpy())
    np.testing.assert_array_equal(F.one_hot(labels, 6).data, TF.one_hot(torch.tensor(labels), 6).numpy())
    x = randn(np.random.default_rng(5), 2, 3, 4, 5)
    compare(F.flatten, torch.flatten, x, start_dim=1)
    compare(F.flatten, torch.flatten, x, start_dim=1, end_dim=2)


def test_linear_matches_torch():
    rng = np.random.default_rng(6)
    compare(F.linear, TF.linear, randn(rng, 4, 5), randn(rng, 3, 5), randn(rng, 3))
    compare(F.linear, TF.linear, randn(rng, 2, 4, 5), randn(rng, 3, 5), None)


@st.composite
def ce_cases(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 5))
    extra = draw(st.sampled_from([(), (3,), (2, 2)]))
    return dict(n=n, c=c, extra=extra, weight=draw(st.booleans()), smoothing=draw(st.sampled_from([0.0, 0.1, 0.7])),
                ignore=draw(st.booleans()), reduction=draw(st.sampled_from(["mean", "sum", "none"])))


@given(ce_cases(), st.integers(0, 2**31))
def test_cross_entropy_class_targets_match_torch(c, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, c["n"], c["c"], *c["extra"])
    y = rng.integers(0, c["c"], (c["n"],) + c["extra"])
    if c["ignore"]:
        y.flat[0] = 1 if c["c"] > 1 and y.size > 1 else y.flat[0]
        y.flat[-1] = 1  # ignore_index=1: some positions are ignored, and never all of them when n > 1
    weight = rng.uniform(0.5, 2, c["c"]) if c["weight"] else None
    kw = dict(reduction=c["reduction"], label_smoothing=c["smoothing"], ignore_index=1 if c["ignore"] else -100)
    if c["ignore"] and np.all(y == 1) and c["reduction"] == "mean":
        y.flat[0] = 0
    compare(lambda x: F.cross_entropy(x, y, weight, **kw),
            lambda x: TF.cross_entropy(x, torch.tensor(y), None if weight is None else torch.tensor(weight), **kw), x)
    if c["smoothing"] == 0.0:
        compare(lambda x: F.nll_loss(F.log_softmax(x, 1), y, weight, c["reduction"], kw["ignore_index"]),
                lambda x: TF.nll_loss(TF.log_softmax(x, 1), torch.tensor(y),
                                      None if weight is None else torch.tensor(weight), reduction=c["reduction"],
                                      ignore_index=kw["ignore_index"]), x)


@given(ce_cases(), st.integers(0, 2**31))
def test_cross_entropy_probability_targets_match_torch(c, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, c["n"], c["c"], *c["extra"])
    p = rng.dirichlet(np.ones(c["c"]), (c["n"],) + c["extra"])
    p = np.moveaxis(p, -1, 1)
    weight = rng.uniform(0.5, 2, c["c"]) if c["weight"] else None
    kw = dict(reduction=c["reduction"], label_smoothing=c["smoothing"])
    compare(lambda x, p: F.cross_entropy(x, p, weight, **kw),
            lambda x, p: TF.cross_entropy(x, p, None if weight is None else torch.tensor(weight), **kw), x, p)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_and_binary_losses_match_torch(reduction):
    rng = np.random.default_rng(7)
    x, y = randn(rng, 4, 3) * 5, rng.uniform(0, 1, (4, 3))
    w, pw = rng.uniform(0.5, 2, (4, 3)), rng.uniform(0.5, 2, 3)
    compare(lambda a, b: F.mse_loss(a, b, reduction), lambda a, b: TF.mse_loss(a, b, reduction=reduction), x, y)
    compare(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction),
            lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction=reduction), x, y)
    compare(lambda a, b: F.binary_cross_entropy_with_logits(a, b, ag.tensor(w), reduction, ag.tensor(pw)),
            lambda a, b: TF.binary_cross_entropy_with_logits(a, b, torch.tensor(w), reduction=reduction,
                                                            pos_weight=torch.tensor(pw)), x, y)
    p = rng.uniform(0.05, 0.95, (4, 3))
    compare(lambda a, b: F.binary_cross_entropy(a, b, ag.tensor(w), reduction),
            lambda a, b: TF.binary_cross_entropy(a, b, torch.tensor(w), reduction=reduction), p, y)
