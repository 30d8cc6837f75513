"""Layers against PyTorch: names, shapes, reprs, default init, forward/backward with loaded weights,
batch-norm running statistics, dropout, losses."""
import math

import numpy as np
import pytest

import autograd as ag
import nn
from autograd.errors import DtypeError, ShapeError

torch = pytest.importorskip("torch", reason="PyTorch is the oracle for nn layers")
tnn = torch.nn


def build(lib, **kw):
    """A small conv net with batch norm, the same in both libraries (`kw`: tapegrad-only rng)."""
    return lib.Sequential(
        lib.Conv2d(2, 4, 3, padding=1, **kw),
        lib.BatchNorm2d(4),
        lib.ReLU(),
        lib.MaxPool2d(2),
        lib.Conv2d(4, 6, 3, stride=2, padding=1, bias=False, **kw),
        lib.BatchNorm2d(6, momentum=None),
        lib.LeakyReLU(0.1),
        lib.AvgPool2d(2),
        lib.Flatten(),
        lib.Linear(6, 5, **kw),
        lib.LayerNorm(5),
        lib.GELU(),
        lib.Linear(5, 3, **kw),
    )


def build_1d(lib):
    return lib.Sequential(
        lib.Conv1d(3, 4, 3, padding=2, dilation=2),
        lib.BatchNorm1d(4),
        lib.Tanh(),
        lib.Flatten(),
        lib.Linear(4 * 7, 6),
        lib.BatchNorm1d(6),
        lib.Sigmoid(),
        lib.Linear(6, 3),
        lib.LogSoftmax(dim=1),
    )


def load_from_torch(ours, theirs):
    ours.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def grads(model):
    return {n: p.grad.data for n, p in model.named_parameters()}


def torch_grads(model):
    return {n: p.grad.double().numpy() for n, p in model.named_parameters()}


# --- structure -------------------------------------------------------------------------------------
def test_state_dict_keys_and_shapes_match_torch():
    ours, theirs = build(nn), build(tnn)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (name, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert a.shape == tuple(b.shape), name
        assert a.dtype == (np.int64 if name.endswith("num_batches_tracked") else np.float32), name
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]


def test_repr_matches_torch():
    def net(lib):
        return lib.Sequential(
            build(lib),
            lib.Conv2d(4, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=2, groups=2, bias=False),
            lib.Conv1d(1, 2, 3),
            lib.BatchNorm1d(3, affine=False, track_running_stats=False),
            lib.LayerNorm([2, 3], elementwise_affine=False),
            lib.MaxPool2d(3, stride=1, padding=1),
            lib.Dropout(0.25),
            lib.Identity(),
            lib.ReLU(inplace=True),
            lib.Softmax(dim=-1),
            lib.GELU(approximate="tanh"),
            lib.ModuleList([lib.Tanh(), lib.Tanh(), lib.Sigmoid()]),
            lib.ModuleDict({"ce": lib.CrossEntropyLoss(), "mse": lib.MSELoss(), "nll": lib.NLLLoss(),
                            "bce": lib.BCEWithLogitsLoss()}),
        )

    assert repr(net(nn)) == repr(net(tnn))


def test_loss_weight_is_a_buffer_like_torch():
    w = np.array([1.0, 2.0, 0.5], dtype=np.float32)
    assert list(nn.CrossEntropyLoss(weight=w).state_dict()) == list(tnn.CrossEntropyLoss(torch.tensor(w)).state_dict())
    assert list(nn.CrossEntropyLoss().state_dict()) == []


def test_conv_groups_checked():
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)


# --- default initialisation ------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda **k: nn.Linear(300, 200, **k), lambda **k: nn.Conv2d(20, 200, 3, **k)])
def test_default_init_bounds_like_torch(make):
    layer = make(rng=0)
    fan_in = int(np.prod(layer.weight.shape[1:]))
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) reduces to this
    w, b = layer.weight.data, layer.bias.data
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    assert np.abs(b).max() <= bound and b.std() == pytest.approx(bound / math.sqrt(3), rel=0.2)
    torch_layer = tnn.Linear(300, 200) if isinstance(layer, nn.Linear) else tnn.Conv2d(20, 200, 3)
    assert w.std() == pytest.approx(torch_layer.weight.detach().numpy().std(), rel=0.03)


def test_init_reproducible():
    a, b = nn.Linear(4, 3, rng=5), nn.Linear(4, 3, rng=5)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    assert not np.array_equal(nn.Linear(4, 3, rng=6).weight.data, a.weight.data)
    nn.init.manual_seed(11)
    first = build(nn).state_dict()
    nn.init.manual_seed(11)
    for k, v in build(nn).state_dict().items():
        np.testing.assert_array_equal(v, first[k])


# --- same numbers as torch -------------------------------------------------------------------------
@pytest.mark.parametrize("builder,shape", [(build, (3, 2, 8, 8)), (build_1d, (5, 3, 7))])
def test_forward_backward_match_torch_float64(builder, shape):
    torch.manual_seed(0)
    theirs = builder(tnn).double()
    ours = builder(nn)
    load_from_torch(ours, theirs)
    x = np.random.default_rng(0).standard_normal(shape)
    target = np.array([0, 2, 1, 1, 0][: shape[0]])
    for step in range(2):  # train: batch statistics, running stats updated
        out_t = theirs(torch.tensor(x))
        out = ours(ag.tensor(x))
        np.testing.assert_allclose(out.data, out_t.detach().numpy(), atol=1e-6, rtol=1e-6)
    loss_t = tnn.functional.cross_entropy(out_t, torch.tensor(target))
    loss = nn.functional.cross_entropy(out, target)
    np.testing.assert_allclose(loss.item(), loss_t.item(), rtol=1e-9)
    loss_t.backward()
    loss.backward()
    expected = torch_grads(theirs)
    for name, g in grads(ours).items():
        np.testing.assert_allclose(g, expected[name], atol=1e-6, rtol=1e-6, err_msg=name)
    for k, v in ours.state_dict().items():  # running statistics after two training steps
        np.testing.assert_allclose(v, theirs.state_dict()[k].numpy(), atol=1e-6, rtol=1e-6, err_msg=k)
    theirs.eval()
    ours.eval()
    with torch.no_grad(), ag.no_grad():
        np.testing.assert_allclose(ours(ag.tensor(x)).data, theirs(torch.tensor(x)).numpy(), atol=1e-6, rtol=1e-6)


def test_float32_forward_stays_float32():
    ours = build(nn)
    out = ours(ag.tensor(np.random.default_rng(0).standard_normal((2, 2, 8, 8)).astype(np.float32)))
    assert out.dtype == np.float32 and out.shape == (2, 3)


# --- batch norm ------------------------------------------------------------------------------------
@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_batchnorm_running_stats_match_torch(momentum):
    ours, theirs = nn.BatchNorm2d(3, momentum=momentum), tnn.BatchNorm2d(3, momentum=momentum)
    rng = np.random.default_rng(1)
    for _ in range(3):
        x = rng.standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
        np.testing.assert_allclose(ours(ag.tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-5)
    assert int(ours.num_batches_tracked.data) == 3
    for k in ("running_mean", "running_var"):
        np.testing.assert_allclose(getattr(ours, k).data, getattr(theirs, k).numpy(), rtol=1e-5, atol=1e-6)


def test_batchnorm_eval_uses_running_stats_and_leaves_them():
    bn = nn.BatchNorm1d(2)
    bn.running_mean.data[...] = [1.0, -1.0]
    bn.running_var.data[...] = [4.0, 0.25]
    bn.eval()
    x = np.array([[3.0, 0.0], [1.0, -1.5]], dtype=np.float32)
    y = bn(ag.tensor(x)).data
    np.testing.assert_allclose(y, (x - [1.0, -1.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5), rtol=1e-5)
    assert bn.running_mean.data.tolist() == [1.0, -1.0] and int(bn.num_batches_tracked.data) == 0
    bn.train()
    y = bn(ag.tensor(x)).data
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-6)  # train: batch statistics
    assert int(bn.num_batches_tracked.data) == 1


def test_batchnorm_without_running_stats():
    bn = nn.BatchNorm2d(2, affine=False, track_running_stats=False).eval()
    assert list(bn.state_dict()) == [] and list(bn.parameters()) == []
    x = np.random.default_rng(0).standard_normal((3, 2, 2, 2)).astype(np.float32) + 5
    np.testing.assert_allclose(bn(ag.tensor(x)).data.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_batchnorm_checks_input():
    with pytest.raises(ShapeError, match=r"BatchNorm2d: expected 4D input, got shape \(3, 2\)"):
        nn.BatchNorm2d(2)(ag.ones(3, 2))
    with pytest.raises(ShapeError, match="has 3 channels"):
        nn.BatchNorm1d(2)(ag.ones(4, 3))


# --- dropout ---------------------------------------------------------------------------------------
def test_dropout_train_and_eval():
    x = ag.ones(200, 500)
    drop = nn.Dropout(0.3, rng=0)
    y = drop(x).data
    kept = y != 0
    assert kept.mean() == pytest.approx(0.7, abs=0.01)
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert not np.array_equal(drop(x).data, y)  # a fresh mask each call
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)
    np.testing.assert_array_equal(nn.Dropout(0.3, rng=0)(x).data, y)  # reproducible by seed
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


# --- losses ----------------------------------------------------------------------------------------
def test_losses_match_torch():
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((6, 4))
    target = np.array([0, 3, 1, 1, 2, 3])
    w = np.array([1.0, 2.0, 0.5, 1.5])
    cases = [
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), target),
        (nn.CrossEntropyLoss(weight=w, label_smoothing=0.1), tnn.CrossEntropyLoss(torch.tensor(w), label_smoothing=0.1),
         target),
        (nn.CrossEntropyLoss(ignore_index=1, reduction="sum"), tnn.CrossEntropyLoss(ignore_index=1, reduction="sum"),
         target),
        (nn.NLLLoss(weight=w), tnn.NLLLoss(torch.tensor(w)), target),
        (nn.MSELoss(reduction="none"), tnn.MSELoss(reduction="none"), rng.standard_normal((6, 4))),
        (nn.BCEWithLogitsLoss(), tnn.BCEWithLogitsLoss(), rng.random((6, 4))),
    ]
    for ours, theirs, tgt in cases:
        x = ag.tensor(logits, requires_grad=True)
        xt = torch.tensor(logits, requires_grad=True)
        out, out_t = ours(x, tgt), theirs(xt, torch.tensor(tgt))
        np.testing.assert_allclose(out.data, out_t.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=repr(ours))
        out.sum().backward()
        out_t.sum().backward()
        np.testing.assert_allclose(x.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=repr(ours))


def test_softmax_layers():
    x = np.random.default_rng(0).standard_normal((2, 5))
    np.testing.assert_allclose(nn.Softmax(dim=1)(ag.tensor(x)).data, torch.softmax(torch.tensor(x), 1).numpy())
    np.testing.assert_allclose(nn.LogSoftmax(dim=0)(ag.tensor(x)).data, torch.log_softmax(torch.tensor(x), 0).numpy())


# --- graph scopes ----------------------------------------------------------------------------------
def test_layer_ops_carry_module_scope():
    net = build(nn)
    out = net(ag.ones(1, 2, 8, 8))
    scopes = {node.scope[-1] for node in ag.toposort([out.grad_fn]) if node.scope}
    assert ("0", "Conv2d") in scopes and ("1", "BatchNorm2d") in scopes and ("12", "Linear") in scopes
    assert all(node.scope[0] == ("", "Sequential") for node in ag.toposort([out.grad_fn]))


# --- issue 16: no silent float64 -----------------------------------------------------------------------
def _mlp():
    return nn.Sequential(nn.Linear(4, 8, rng=0), nn.Tanh(), nn.Linear(8, 3, rng=1))


def test_float64_input_into_a_float32_model_is_an_error_like_torch():
    x = np.random.default_rng(0).standard_normal((5, 4))  # float64, as NumPy makes it
    with pytest.raises(RuntimeError):
        tnn.Linear(4, 8)(torch.tensor(x))
    with pytest.raises(DtypeError, match=r"linear: input \(5, 4\) is float64 but weight \(8, 4\) is float32"):
        _mlp()(ag.tensor(x))
    model = _mlp()
    nn.functional.cross_entropy(model(ag.tensor(x, dtype="float32")), np.array([0, 1, 2, 0, 1])).backward()
    assert all(p.dtype == p.grad.dtype == np.float32 for p in model.parameters())
    model = _mlp().double()
    nn.functional.cross_entropy(model(ag.tensor(x)), np.array([0, 1, 2, 0, 1])).backward()
    assert all(p.dtype == p.grad.dtype == np.float64 for p in model.parameters())


@pytest.mark.parametrize("layer,shape", [(lambda: nn.Conv2d(1, 2, 3), (1, 1, 5, 5)), (lambda: nn.BatchNorm1d(3), (4, 3)),
                                         (lambda: nn.LayerNorm(3), (4, 3)), (lambda: nn.Conv1d(1, 2, 3), (1, 1, 5))])
def test_layers_with_parameters_refuse_another_dtype(layer, shape):
    with pytest.raises(DtypeError, match="is float64 but weight .* is float32; convert the input with "
                                         r"tensor\(x, dtype='float32'\), or the model to float64 with model.double\(\)"):
        layer()(ag.tensor(np.zeros(shape)))
    assert layer()(ag.tensor(np.zeros(shape), dtype="float32")).dtype == np.float32


# --- issue 14/15: geometry checked in one place, for layers and functions alike -----------------------
@pytest.mark.parametrize("kwargs,error", [
    (dict(stride=1.5), TypeError), (dict(stride=0), ValueError), (dict(stride=(1, 2, 3)), ValueError),
    (dict(padding=-1), ValueError), (dict(padding="full"), ValueError), (dict(dilation=(1, 0)), ValueError),
    (dict(groups=0), ValueError), (dict(groups=1.0), TypeError),
])
def test_conv_layer_and_function_give_the_same_geometry_errors(kwargs, error):
    with pytest.raises(error) as layer_error:
        nn.Conv2d(2, 2, 3, **kwargs)
    with pytest.raises(error) as function_error:
        nn.functional.conv2d(ag.zeros(1, 2, 6, 6), ag.zeros(2, 2, 3, 3), **kwargs)
    assert str(layer_error.value).startswith("Conv2d: ") and str(function_error.value).startswith("conv2d: ")
    assert str(layer_error.value)[len("Conv2d: "):] == str(function_error.value)[len("conv2d: "):]


def test_valid_geometry_is_unchanged():
    conv = nn.Conv2d(2, 4, (3, 1), stride=np.int64(2), padding=(1, 0), dilation=1, groups=2)
    assert conv.kernel_size == (3, 1) and conv.stride == (2, 2) and conv.padding == (1, 0)
    assert conv(ag.zeros(1, 2, 6, 6)).shape == (1, 4, 3, 3)
    assert nn.Conv1d(1, 1, 3, padding="same")(ag.zeros(1, 1, 5)).shape == (1, 1, 5)
    assert nn.MaxPool2d((2, 2), stride=[2])(ag.zeros(1, 1, 4, 4)).shape == (1, 1, 2, 2)


# --- issue 15: cross_entropy with every target ignored ---------------------------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_cross_entropy_with_every_target_ignored_matches_torch(reduction, smoothing):
    logits = np.random.default_rng(0).standard_normal((3, 4))
    target = np.array([-100, -100, -100])
    t = torch.tensor(logits, requires_grad=True)
    expected = tnn.functional.cross_entropy(t, torch.tensor(target), reduction=reduction, label_smoothing=smoothing)
    expected.sum().backward()
    x = ag.tensor(logits, requires_grad=True)
    loss = nn.functional.cross_entropy(x, target, reduction=reduction, label_smoothing=smoothing)
    loss.sum().backward()
    np.testing.assert_array_equal(loss.data, expected.detach().numpy())  # NaN for 'mean', zeros otherwise
    np.testing.assert_array_equal(x.grad.data, t.grad.numpy())
