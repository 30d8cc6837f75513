"""vmap: per-example gradients of the digits CNN, composite layers batched through their primitives,
nesting with the other transforms, and clear errors for data-dependent code."""
import numpy as np
import pytest

import autograd as ag
import nn.functional as NF
from autograd import func
from autograd.tracer import TransformError
from tapegrad.models import Digits


def digits_forward(params, x):
    """tapegrad.models.Digits's forward (train mode: batch statistics), with its parameters as arguments."""
    h = NF.conv2d(x, params["conv.weight"], params["conv.bias"], padding=1)
    h = NF.batch_norm(h, None, None, params["bn.weight"], params["bn.bias"], training=True)
    h = NF.max_pool2d(NF.relu(h), 2)
    return NF.linear(ag.flatten(h, 1), params["fc.weight"], params["fc.bias"])


def digits_loss(params, x, target):
    """Cross-entropy of one example (a batch of one) against its target (a label or a one-hot row)."""
    return NF.cross_entropy(digits_forward(params, x[None]), target[None])


@pytest.fixture(scope="module")
def digits():
    model = Digits(seed=0).double()
    params = {name: ag.tensor(p.data) for name, p in model.named_parameters()}
    g = np.random.default_rng(0)
    x = ag.tensor(g.standard_normal((32, 1, 20, 20)))
    labels = g.integers(0, 10, 32)
    return model, params, x, labels


def test_digits_forward_is_the_model(digits):
    model, params, x, _ = digits
    np.testing.assert_allclose(digits_forward(params, x).data, model(x).data, rtol=1e-12, atol=1e-12)


def test_per_example_gradients_of_the_digits_cnn_equal_a_loop(digits):
    _, params, x, labels = digits
    onehot = ag.tensor(np.eye(10)[labels])
    batched = func.vmap(func.grad(digits_loss), in_axes=(None, 0, 0))(params, x, onehot)
    single = func.grad(digits_loss)
    loop = [single(params, x[i], onehot[i]) for i in range(32)]
    for name, p in params.items():
        assert batched[name].shape == (32,) + p.shape
        expected = np.stack([g[name].data for g in loop])
        np.testing.assert_allclose(batched[name].data, expected, rtol=1e-10, atol=1e-12)
        assert np.ptp(expected, axis=0).max() > 0  # the examples really differ
    # and one of them against the engine's own backward
    leaves = {k: ag.tensor(v.data, requires_grad=True) for k, v in params.items()}
    digits_loss(leaves, x[3], onehot[3]).backward()
    for name, leaf in leaves.items():
        np.testing.assert_allclose(batched[name].data[3], leaf.grad.data, rtol=1e-10, atol=1e-12)


def test_per_example_gradients_with_integer_targets_equal_the_one_hot_ones(digits):
    """cross_entropy compares integer labels with the class ids as a recorded primitive, so they batch."""
    _, params, x, labels = digits
    with_labels = func.vmap(func.grad(digits_loss), in_axes=(None, 0, 0))(params, x, ag.tensor(labels))
    with_onehot = func.vmap(func.grad(digits_loss), in_axes=(None, 0, 0))(params, x, ag.tensor(np.eye(10)[labels]))
    for name in params:
        np.testing.assert_allclose(with_labels[name].data, with_onehot[name].data, rtol=1e-10, atol=1e-12)
    single = func.grad(digits_loss)(params, x[5], ag.tensor(labels[5]))
    for name in params:
        np.testing.assert_allclose(with_labels[name].data[5], single[name].data, rtol=1e-10, atol=1e-12)


def _loop(f, *args):
    return np.stack([f(*[a[i] for a in args]).data for i in range(len(args[0]))])


@pytest.mark.parametrize("layer", ["conv2d", "batch_norm", "max_pool2d", "softmax", "cross_entropy_probs", "layer_norm"])
def test_composite_layers_batch_through_their_primitives(layer):
    g = np.random.default_rng(1)
    x = ag.tensor(g.standard_normal((4, 2, 3, 6, 6)))
    w = ag.tensor(g.standard_normal((4, 5, 3, 3, 3)))
    probs = ag.tensor(g.dirichlet(np.ones(6), size=(4, 2)))
    f = {
        "conv2d": lambda x, w: NF.conv2d(x, w, stride=2, padding=1),
        "batch_norm": lambda x, w: NF.batch_norm(x, None, None, training=True) * w.sum(),
        "max_pool2d": lambda x, w: NF.max_pool2d(x, 3, stride=2, padding=1) * w.sum(),
        "softmax": lambda x, w: NF.softmax(x, dim=-1) * w.sum(),
        "cross_entropy_probs": lambda x, w: NF.cross_entropy(x[:, 0, 0], probs_of[0]) * w.sum(),
        "layer_norm": lambda x, w: NF.layer_norm(x, (6, 6)) * w.sum(),
    }[layer]
    probs_of = [None]
    if layer == "cross_entropy_probs":
        out = func.vmap(lambda x, w, p: (probs_of.__setitem__(0, p), f(x, w))[1])(x, w, probs)
        expected = np.stack([NF.cross_entropy(x[i][:, 0, 0], probs[i]).data * w[i].sum().data for i in range(4)])
    else:
        out = func.vmap(f)(x, w)
        expected = _loop(f, x, w)
    np.testing.assert_allclose(out.data, expected, rtol=1e-12, atol=1e-12)


def test_nested_transforms_agree_with_loops():
    g = np.random.default_rng(2)
    xs = ag.tensor(g.standard_normal((3, 4, 5)))
    v = ag.tensor(g.standard_normal(5))

    def f(x):
        return ag.tanh(x) * ag.exp(x).sum()

    inner = func.vmap(func.vmap(f))(xs)
    np.testing.assert_allclose(inner.data, np.stack([np.stack([f(xs[i][j]).data for j in range(4)]) for i in range(3)]))
    # vmap of jvp and jvp of vmap
    jv = func.vmap(lambda x: func.jvp(f, (x,), (v,))[1])(xs[0])
    vj = func.jvp(func.vmap(f), (xs[0],), (ag.broadcast_to(v, (4, 5)),))[1]
    np.testing.assert_allclose(jv.data, vj.data, rtol=1e-12)
    # grad of vmap: the batched sum differentiates like the loop
    gsum = func.grad(lambda x: func.vmap(lambda r: (f(r) ** 2).sum())(x).sum())(xs[0])
    expected = np.stack([func.grad(lambda r: (f(r) ** 2).sum())(xs[0][i]).data for i in range(4)])
    np.testing.assert_allclose(gsum.data, expected, rtol=1e-12)


def test_in_axes_none_and_out_axes():
    x = ag.tensor(np.arange(6.0).reshape(2, 3))
    y = ag.tensor(np.array([1.0, 2.0]))
    out = func.vmap(lambda a, b: a * b, in_axes=(1, None), out_axes=1)(x, y)
    np.testing.assert_allclose(out.data, (x.data.T * y.data).T)
    with pytest.raises(ValueError, match="batch sizes differ"):
        func.vmap(lambda a, b: a + b)(x, ag.tensor(np.ones((3, 3))))


def test_branching_on_batched_data_names_the_line():
    def f(x):
        if x.sum() > 0:
            return x
        return -x

    mixed = ag.tensor(np.array([[1.0, 2.0], [-3.0, -4.0]]))
    with pytest.raises(TransformError, match=r"test_vmap\.py:\d+ in f: if x\.sum\(\) > 0:"):
        func.vmap(f)(mixed)
    same_way = ag.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))  # every example takes the same branch
    np.testing.assert_allclose(func.vmap(f)(same_way).data, same_way.data)


def test_item_and_numpy_reads_name_the_line():
    def f(x):
        return x * x.sum().item()

    with pytest.raises(TransformError, match=r"\.item\(\).*test_vmap\.py:\d+ in f: return x \* x\.sum\(\)\.item\(\)"):
        func.vmap(f)(ag.tensor(np.ones((2, 3))))
    with pytest.raises(TransformError, match="NumPy conversion"):
        func.vmap(lambda x: ag.tensor(np.asarray(x)))(ag.tensor(np.ones((2, 3))))


def test_out_axes_none_for_shared_outputs_only():
    x = ag.tensor(np.ones((2, 3)))
    shared, per = func.vmap(lambda a: (ag.tensor(np.arange(3.0)), a * 2), out_axes=(None, 0))(x)
    np.testing.assert_array_equal(shared.data, np.arange(3.0))
    assert per.shape == (2, 3)
    with pytest.raises(ValueError, match="differs between examples"):
        func.vmap(lambda a: a * 2, out_axes=None)(x)
