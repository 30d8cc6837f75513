"""The composed functions users call (autograd.functional, nn.functional) go through the transforms:
forward mode against finite differences (check_grads modes=("fwd", "rev")) and vmap against a loop."""
import numpy as np
import pytest

import autograd as ag
import nn.functional as NF
from autograd import func
from autograd.testing import check_grads

G = np.random.default_rng(5)
X = G.standard_normal((3, 4)) + 0.1  # away from 0: abs and relu kinks
Y = G.standard_normal((3, 4))

COMPOSITES = {
    "softmax": lambda x: ag.softmax(x, axis=1),
    "log_softmax": lambda x: ag.log_softmax(x, axis=0),
    "logsumexp": lambda x: ag.logsumexp(x, axis=1),
    "var_std": lambda x: ag.var(x, axis=0) + ag.std(x, axis=1).sum(),
    "mean_min": lambda x: ag.mean(x, axis=1) * ag.min(x),
    "abs": lambda x: ag.abs(x) * x,
    "clip": lambda x: ag.clip(x, -0.5, 0.5) * x,
    "maximum_minimum": lambda x: ag.maximum(x, ag.tensor(Y)) + ag.minimum(x, 0.2),
    "sqrt": lambda x: ag.sqrt(x * x + 1.0),
    "stack_pad": lambda x: ag.pad(ag.stack([x, 2 * x], axis=1), 1),
    "getitem": lambda x: x[1:, ::2] * x[[0, 2, 2], 1:3].sum(),
    "clone_astype": lambda x: x.clone().astype("float64") * x.double(),
    "gelu": lambda x: NF.gelu(x),
    "leaky_relu": lambda x: NF.leaky_relu(x, 0.1),
    "mse": lambda x: NF.mse_loss(x, ag.tensor(Y)),
    "bce_logits": lambda x: NF.binary_cross_entropy_with_logits(x, ag.tensor((Y > 0).astype(float))),
    "layer_norm": lambda x: NF.layer_norm(x, 4),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_forward_mode_matches_finite_differences(name):
    check_grads(COMPOSITES[name], X, order=1, modes=("fwd", "rev"))


# Masks (maximum, clip, leaky_relu, gelu, bce's |x|), signs (abs) and softmax's shift are recorded
# primitives (greater, equal, sign, stop_gradient), so every composite batches.
@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_composite_vmap_matches_a_loop(name):
    f = COMPOSITES[name]
    xs = ag.tensor(np.stack([X, -0.5 * X, 2 * X]))
    out = func.vmap(f)(xs)
    np.testing.assert_allclose(out.data, np.stack([f(xs[i]).data for i in range(3)]), rtol=1e-12, atol=1e-12)


def test_integer_label_cross_entropy_batches_and_has_a_forward_mode():
    """The integer-label path compares the labels with the class ids as a recorded `equal`."""
    labels = np.array([[2, 0, 3], [1, 1, 0], [3, 2, 2]])
    weight = ag.tensor([0.5, 1.0, 2.0, 1.5])
    losses = {
        "mean": lambda x, y: NF.cross_entropy(x, y),
        "weighted_sum": lambda x, y: NF.cross_entropy(x, y, weight=weight, reduction="sum"),
        "ignored_smoothed": lambda x, y: NF.cross_entropy(x, y, ignore_index=0, label_smoothing=0.1),
        "none": lambda x, y: NF.nll_loss(ag.log_softmax(x, axis=1), y, reduction="none"),
    }
    xs = ag.tensor(np.stack([X, -0.5 * X, 2 * X]))
    for name, f in losses.items():
        out = func.vmap(f)(xs, ag.tensor(labels))
        loop = np.stack([f(xs[i], ag.tensor(labels[i])).data for i in range(3)])
        np.testing.assert_allclose(out.data, loop, rtol=1e-12, atol=1e-12, err_msg=name)
        per_example = func.vmap(func.grad(lambda x, y: f(x, y).sum()))(xs, ag.tensor(labels))
        for i in range(3):
            x = ag.tensor(xs[i].data, requires_grad=True)
            f(x, ag.tensor(labels[i])).sum().backward()
            np.testing.assert_allclose(per_example.data[i], x.grad.data, rtol=1e-12, atol=1e-12, err_msg=name)
        check_grads(lambda x: f(x, ag.tensor(labels[0])), X, order=1, modes=("fwd", "rev"))
