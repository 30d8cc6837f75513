"""The reference models: output shapes on 20x20 and 28x28 inputs, seeding, a few steps lower the loss."""
import numpy as np
import pytest

import autograd as ag
import nn
import optim
from tapegrad.data import synthetic_digits
from tapegrad.models import MODELS, QuadraticCost, build_model, weight_decay_for

NAMES = list(MODELS)


@pytest.mark.parametrize("shape", [(1, 20, 20), (1, 28, 28)])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape(name, shape):
    model = build_model(name, shape, seed=0)
    x = np.random.default_rng(0).random((3, *shape), dtype=np.float32)
    out = model(ag.tensor(x))
    assert out.shape == (3, 10)
    assert out.dtype == np.float32
    assert np.all(np.isfinite(out.data))


@pytest.mark.parametrize("name", NAMES)
def test_seed_fixes_the_initial_weights(name):
    a, b, c = (build_model(name, (1, 20, 20), seed=s).state_dict() for s in (3, 3, 4))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a if a[k].ndim > 1)


def _optimizer(name, params):
    r = MODELS[name].recipe
    if r.optimizer == "sgd":
        return optim.SGD(params, lr=r.lr)
    return optim.Adam(params, lr=r.lr, betas=r.betas)


@pytest.mark.parametrize("name", NAMES)
def test_a_few_steps_lower_the_loss(name):
    """Ten steps of the recipe's optimizer on one fixed batch lower that batch's loss."""
    images, labels = synthetic_digits(16, seed=1, image_size=12)  # small: shapes are tested above
    model = build_model(name, (1, 12, 12), seed=0)
    loss_fn = {"cross_entropy": nn.CrossEntropyLoss, "quadratic": QuadraticCost}[MODELS[name].recipe.loss]()
    opt = _optimizer(name, list(model.parameters()))
    x = ag.tensor(images)
    losses = []
    for _ in range(10):
        loss = loss_fn(model(x), labels)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < losses[0] - 0.01, losses


def test_quadratic_cost_is_nielsens():
    """C = 1/(2n) sum_x ||y(x) - a(x)||^2 with one-hot y."""
    a = np.random.default_rng(0).random((4, 10)).astype(np.float32)
    y = np.array([0, 3, 9, 3])
    expected = 0.5 * np.mean(np.sum((a - np.eye(10)[y]) ** 2, axis=1))
    assert QuadraticCost()(ag.tensor(a), y).item() == pytest.approx(expected, rel=1e-6)


def test_recipes_match_the_issue_table():
    d = MODELS["digits"].recipe
    assert (d.optimizer, d.lr, d.clip_value, d.l2, d.batch_size, d.input_shape) == ("adam", 0.01, 0.5, 0.01, 32,
                                                                                    (1, 20, 20))
    assert d.early_stop_loss is not None
    assert (MODELS["zhou"].recipe.optimizer, MODELS["zhou"].recipe.lr, MODELS["zhou"].recipe.batch_size) == ("sgd",
                                                                                                            0.005, 1)
    assert MODELS["escontrela"].recipe.betas == (0.95, 0.99)
    assert MODELS["nielsen-mlp"].recipe.loss == "quadratic"
    assert MODELS["lenet-bn"].recipe.scheduler == "cosine"
    assert weight_decay_for(MODELS["mlp-l2"].recipe, 50_000) == pytest.approx(1e-4)
    assert weight_decay_for(MODELS["zhou"].recipe, 50_000) == 0.0


def test_architectures():
    zhou = build_model("zhou", (1, 28, 28))
    assert zhou.conv.bias is None and zhou.conv.padding == (0, 0) and zhou.fc.in_features == 8 * 13 * 13
    lenet = build_model("lenet-bn", (1, 28, 28))
    assert lenet.fc1.in_features == 64 * 7 * 7 and lenet.dropout.p == 0.3
    assert build_model("nielsen-mlp", (1, 28, 28)).fc1.in_features == 784
    assert build_model("nielsen-conv", (1, 28, 28)).fc1.in_features == 20 * 12 * 12


def test_unknown_model():
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        build_model("nope", (1, 20, 20))
