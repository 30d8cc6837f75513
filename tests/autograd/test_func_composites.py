"""The composed functions users call (autograd.functional, nn.functional) go through the transforms:
forward mode against finite differences (check_grads modes=("fwd", "rev")) and vmap against a loop."""
import numpy as np
import pytest

import autograd as ag
import nn.functional as NF
from autograd import func
from autograd.testing import check_grads
from autograd.tracer import TransformError

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


# These build their mask with np.asarray (autograd.functional.where/maximum/minimum convert the
# condition that way), which has no per-example meaning inside vmap: they raise, naming the line.
NOT_BATCHABLE = {"maximum_minimum", "gelu", "leaky_relu", "bce_logits"}


@pytest.mark.parametrize("name", sorted(NOT_BATCHABLE))
def test_composites_that_read_values_with_numpy_raise_clearly_under_vmap(name):
    with pytest.raises(TransformError, match=r"NumPy conversion.*test_func_composites\.py:\d+ in <lambda>"):
        func.vmap(COMPOSITES[name])(ag.tensor(np.stack([X, X])))


@pytest.mark.parametrize("name", sorted(set(COMPOSITES) - NOT_BATCHABLE))
def test_composite_vmap_matches_a_loop(name):
    f = COMPOSITES[name]
    xs = ag.tensor(np.stack([X, -0.5 * X, 2 * X]))
    out = func.vmap(f)(xs)
    np.testing.assert_allclose(out.data, np.stack([f(xs[i]).data for i in range(3)]), rtol=1e-12, atol=1e-12)
