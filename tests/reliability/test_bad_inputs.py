"""A table of bad inputs: each must raise the documented exception with a message that names the
operation and the shapes (never a bare NumPy traceback from deep inside)."""
import gzip
import struct

import numpy as np
import pytest

import autograd as ag
import nn
import nn.functional as F
import optim
from autograd.errors import DtypeError, GraphError, ShapeError, TapegradError
from nn.module import StateDictError
from nn.serialization import CheckpointError
from tapegrad.data import IDXFormatError, read_idx


def z(*shape, dtype=np.float32, grad=False):
    return ag.tensor(np.zeros(shape, dtype), requires_grad=grad)


def _backward_twice():
    x = z(2, grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    y.backward()


def _unused_input():
    x, u = z(2, grad=True), z(3, grad=True)
    ag.grad((x * 2).sum(), [x, u])


def _inplace_saved():
    w, x = z(2, grad=True), z(2)
    y = (w * x).sum()
    x += 1
    y.backward()


def _write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def _model():
    return nn.Linear(2, 2, rng=0)


def _two_outputs_one_gradient():
    a, b = z(2, grad=True), z(2, grad=True)
    ag.backward([a.sum(), b.sum()], [None])


def _grad_outputs_short():
    x = z(2, grad=True)
    ag.grad([x.sum(), (x * 2).sum()], [x], grad_outputs=[None])


def _adam_incomplete_state():
    model = _model()
    opt = optim.Adam(model.parameters())
    opt.load_state_dict({"state": {0: {"step": 3}}, "param_groups": opt.state_dict()["param_groups"]})


def _adam_negative_step():
    model = _model()
    opt = optim.Adam(model.parameters())
    state = {"step": -1, "exp_avg": np.zeros((2, 2)), "exp_avg_sq": np.zeros((2, 2))}
    opt.load_state_dict({"state": {0: state}, "param_groups": opt.state_dict()["param_groups"]})


def _sgd_params_listed_twice():
    opt = optim.SGD(_model().parameters(), lr=0.1)
    opt.load_state_dict({"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 0]}]})


def _sgd(**options):
    return optim.SGD(_model().parameters(), lr=0.1, **options)


def _scheduler(make):
    return make(_sgd())


CASES = [
    # --- engine: shapes, dtypes, graph misuse ---
    ("add shapes", lambda: z(2, 3) + z(4), ShapeError, ["add", "(2, 3)", "(4,)"]),
    ("mul shapes", lambda: z(2, 3) * z(3, 2), ShapeError, ["mul", "(2, 3)", "(3, 2)"]),
    ("sub shapes", lambda: z(5) - z(4), ShapeError, ["sub", "(5,)", "(4,)"]),
    ("div shapes", lambda: z(2, 2) / z(3), ShapeError, ["div", "(2, 2)", "(3,)"]),
    ("where shapes", lambda: ag.where(np.ones(3, bool), z(2), z(2)), ShapeError, ["where", "(3,)", "(2,)"]),
    ("matmul inner", lambda: z(2, 3) @ z(4, 5), ShapeError, ["matmul", "(2, 3)", "(4, 5)", "3 vs 4"]),
    ("matmul scalar", lambda: ag.matmul(z(), z(3)), ShapeError, ["matmul", "()", "(3,)"]),
    ("reshape size", lambda: z(2, 3).reshape(4, 2), ShapeError, ["reshape", "(2, 3)", "(4, 2)"]),
    ("broadcast_to", lambda: z(3).broadcast_to(2, 4), ShapeError, ["broadcast_to", "(3,)", "(2, 4)"]),
    ("concatenate", lambda: ag.cat([z(2, 3), z(2, 4)], 0), ShapeError, ["concatenate", "(2, 3)", "(2, 4)"]),
    ("stack", lambda: ag.stack([z(2), z(3)]), ShapeError, ["stack", "(2,)", "(3,)"]),
    ("einsum", lambda: ag.einsum("ij,jk->ik", z(2, 3), z(4, 5)), ShapeError, ["einsum", "'j'", "3", "4"]),
    ("axis range", lambda: z(2, 2).sum(axis=2), ShapeError, ["sum: axis 2", "2 dimensions"]),
    ("index range", lambda: z(2, 3)[5], ShapeError, ["slice", "(2, 3)"]),
    ("max empty", lambda: z(0).max(), ShapeError, ["max", "(0,)"]),
    ("int grad", lambda: ag.tensor([1, 2], requires_grad=True), DtypeError, ["int64", "(2,)"]),
    ("bool grad", lambda: ag.tensor([True]).requires_grad_(), DtypeError, ["bool", "(1,)"]),
    ("non-scalar backward", lambda: (z(3, grad=True) * 2).backward(), GraphError, ["(3,)", "scalar"]),
    ("grad shape", lambda: (z(3, grad=True) * 2).backward(np.ones(2)), GraphError, ["(2,)", "(3,)"]),
    ("backward twice", _backward_twice, GraphError, ["second time", "retain_graph"]),
    ("unused input", _unused_input, GraphError, ["input 1", "(3,)", "allow_unused"]),
    ("no grad output", lambda: z(2).sum().backward(), GraphError, ["does not require grad"]),
    ("in-place saved", _inplace_saved, GraphError, ["'mul'", "modified in place", "(2,)"]),
    ("in-place leaf", lambda: z(2, grad=True).add_(1), GraphError, ["add_", "leaf", "(2,)"]),
    # --- layers ---
    ("conv channels", lambda: F.conv2d(z(32, 3, 28, 28), z(8, 1, 3, 3)), ShapeError,
     ["conv2d", "(32, 3, 28, 28)", "(8, 1, 3, 3)", "3 channels"]),
    ("conv kernel too big", lambda: F.conv2d(z(1, 1, 2, 2), z(8, 1, 3, 3)), ShapeError, ["conv2d", "(3, 3)", "(1, 1, 2, 2)"]),
    ("conv groups", lambda: F.conv2d(z(1, 3, 8, 8), z(4, 3, 3, 3), groups=2), ShapeError, ["conv2d", "groups=2", "(1, 3, 8, 8)"]),
    ("conv rank", lambda: F.conv2d(z(28, 28), z(8, 1, 3, 3)), ShapeError, ["conv2d", "(28, 28)"]),
    ("conv module channels", lambda: nn.Conv2d(1, 8, 3)(z(2, 3, 10, 10)), ShapeError, ["conv2d", "(2, 3, 10, 10)"]),
    ("pool too big", lambda: F.max_pool2d(z(1, 1, 2, 2), 3), ShapeError, ["max_pool2d", "(1, 1, 2, 2)"]),
    ("avg pool too big", lambda: F.avg_pool2d(z(1, 1, 2, 2), 3), ShapeError, ["avg_pool2d", "(1, 1, 2, 2)"]),
    ("linear features", lambda: nn.Linear(4, 3)(z(2, 5)), ShapeError, ["linear", "(2, 5)", "(3, 4)"]),
    ("batch norm channels", lambda: nn.BatchNorm2d(8)(z(2, 3, 10, 10)), ShapeError, ["BatchNorm2d", "(2, 3, 10, 10)", "8"]),
    ("batch norm stats", lambda: F.batch_norm(z(4, 3, 2, 2), np.zeros(4), np.ones(4)), ShapeError, ["batch_norm", "(4,)", "(4, 3, 2, 2)"]),
    ("labels out of range", lambda: F.cross_entropy(z(4, 10), ag.tensor([1, 2, 12, 0])), ShapeError, ["cross_entropy", "12", "10 classes"]),
    ("negative label", lambda: F.cross_entropy(z(2, 10), ag.tensor([-3, 1])), ShapeError, ["cross_entropy", "-3"]),
    ("float labels", lambda: F.cross_entropy(z(4, 10), ag.tensor([1.5, 2, 1, 0])), DtypeError, ["cross_entropy", "integer", "(4,)"]),
    ("label batch", lambda: F.cross_entropy(z(4, 10), ag.tensor([1, 2, 1])), ShapeError, ["cross_entropy", "(4, 10)", "(3,)"]),
    ("empty batch", lambda: F.cross_entropy(z(0, 10), ag.tensor(np.zeros(0, int))), ShapeError, ["cross_entropy", "empty", "(0, 10)"]),
    ("reduction", lambda: F.cross_entropy(z(4, 10), ag.tensor([1, 2, 1, 0]), reduction="avg"), ValueError, ["cross_entropy", "avg"]),
    ("mse shapes", lambda: F.mse_loss(z(4, 3), z(4, 2)), ShapeError, ["mse_loss", "(4, 3)", "(4, 2)"]),
    ("dropout p", lambda: F.dropout(z(3), p=1.5), ValueError, ["dropout", "1.5"]),
    # --- state dicts and checkpoints ---
    ("state shape", lambda: nn.Linear(4, 3).load_state_dict({"weight": np.zeros((3, 5)), "bias": np.zeros(3)}),
     StateDictError, ["weight", "(3, 5)", "(3, 4)"]),
    ("state missing", lambda: nn.Linear(4, 3).load_state_dict({"weight": np.zeros((3, 4))}), StateDictError, ["missing", "bias"]),
    ("state unexpected", lambda: nn.Linear(4, 3).load_state_dict(
        {"weight": np.zeros((3, 4)), "bias": np.zeros(3), "extra": np.zeros(1)}), StateDictError, ["unexpected", "extra"]),
    ("checkpoint missing", lambda: nn.load("/nonexistent/dir/x.npz"), FileNotFoundError, ["/nonexistent/dir/x.npz"]),
    # --- optimizers ---
    ("adam lr", lambda: optim.Adam([z(3, grad=True)], lr=-1), ValueError, ["Adam", "learning rate", "-1"]),
    ("adam beta", lambda: optim.Adam([z(3, grad=True)], betas=(1.5, 0.9)), ValueError, ["Adam", "beta", "1.5"]),
    ("sgd momentum", lambda: optim.SGD([z(3, grad=True)], lr=0.1, momentum=-0.5), ValueError, ["SGD", "momentum", "-0.5"]),
    # --- indexing ---
    ("mask shape", lambda: z(2, 3)[np.ones((2, 2), bool)], ShapeError, ["getitem", "mask (2, 2)", "axes 0-1 (shape (2, 3))", "(2, 3)"]),
    ("mask too long", lambda: z(3)[np.ones(5, bool)], ShapeError, ["getitem", "mask (5,)", "axis 0 (size 3)", "(3,)"]),
    ("mask after ellipsis", lambda: z(2, 3)[..., np.ones(2, bool)], ShapeError, ["getitem", "mask (2,)", "axis 1 (size 3)", "(2, 3)"]),
    # --- arguments taken silently ---
    ("backward fewer gradients", _two_outputs_one_gradient, GraphError, ["backward", "2 outputs but 1 gradients"]),
    ("grad fewer grad_outputs", _grad_outputs_short, GraphError, ["grad", "2 outputs but 1 gradients"]),
    ("backward text gradient", lambda: (z(2, grad=True) * 2).backward("ab"), TypeError, ["backward", "gradient", "str"]),
    ("complex backward", lambda: (z(2, grad=True) * 1j).sum().backward(), GraphError, ["backward", "complex128", "real output"]),
    ("float size", lambda: ag.zeros(2.5), TypeError, ["zeros", "sizes must be ints", "2.5"]),
    ("negative size", lambda: ag.ones(-1, 2), ValueError, ["ones", ">= 0", "(-1, 2)"]),
    ("reshape float size", lambda: z(6).reshape(2, 3.0), TypeError, ["reshape", "sizes must be ints", "3.0"]),
    # --- layer geometry ---
    ("conv stride float", lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=1.5), TypeError, ["conv2d", "stride", "1.5"]),
    ("conv stride zero", lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=0), ValueError, ["conv2d", "stride must be >= 1", "0"]),
    ("conv dilation", lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), dilation=(1, 0)), ValueError, ["conv2d", "dilation", "(1, 0)"]),
    ("conv negative padding", lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding=-1), ValueError, ["conv2d", "padding must be >= 0", "-1"]),
    ("conv padding word", lambda: F.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding="full"), ValueError, ["conv2d", "padding", "'full'"]),
    ("conv groups zero", lambda: F.conv2d(z(1, 2, 5, 5), z(2, 2, 3, 3), groups=0), ValueError, ["conv2d", "groups must be >= 1", "0"]),
    ("conv groups float", lambda: F.conv2d(z(1, 2, 5, 5), z(2, 1, 3, 3), groups=2.0), TypeError, ["conv2d", "groups", "2.0"]),
    ("conv1d stride pair", lambda: F.conv1d(z(1, 1, 5), z(1, 1, 3), stride=(1, 2)), ValueError, ["conv1d", "stride", "1 int", "(1, 2)"]),
    ("Conv2d kernel zero", lambda: nn.Conv2d(1, 1, 0), ValueError, ["Conv2d", "kernel_size must be >= 1", "0"]),
    ("Conv2d stride float", lambda: nn.Conv2d(1, 1, 3, stride=1.5), TypeError, ["Conv2d", "stride", "1.5"]),
    ("Conv2d no channels", lambda: nn.Conv2d(0, 4, 3), ValueError, ["Conv2d", "in_channels must be >= 1", "0"]),
    ("Conv1d groups", lambda: nn.Conv1d(2, 3, 3, groups=2), ValueError, ["Conv1d", "out_channels (3)", "divisible by groups (2)"]),
    ("Linear negative", lambda: nn.Linear(-1, 3), ValueError, ["Linear", "in_features must be >= 0", "-1"]),
    ("Linear float", lambda: nn.Linear(4, 2.5), TypeError, ["Linear", "out_features must be an int", "2.5"]),
    ("MaxPool2d kernel zero", lambda: nn.MaxPool2d(0), ValueError, ["MaxPool2d", "kernel_size must be >= 1", "0"]),
    ("max_pool stride float", lambda: F.max_pool2d(z(1, 1, 4, 4), 2, stride=1.5), TypeError, ["max_pool2d", "stride", "1.5"]),
    ("avg_pool kernel triple", lambda: F.avg_pool2d(z(1, 1, 4, 4), (2, 2, 2)), ValueError, ["avg_pool2d", "kernel_size", "(2, 2, 2)"]),
    ("AvgPool2d divisor", lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, ["AvgPool2d", "divisor_override", "0"]),
    ("BatchNorm2d features", lambda: nn.BatchNorm2d(-1), ValueError, ["BatchNorm2d", "num_features must be >= 1", "-1"]),
    ("BatchNorm1d eps", lambda: nn.BatchNorm1d(3, eps=-1.0), ValueError, ["BatchNorm1d", "eps", "> 0", "-1.0"]),
    ("BatchNorm1d momentum", lambda: nn.BatchNorm1d(3, momentum=1.5), ValueError, ["BatchNorm1d", "momentum", "1.5"]),
    ("LayerNorm shape", lambda: nn.LayerNorm((4, 0)), ValueError, ["LayerNorm", "normalized_shape must be >= 1", "(4, 0)"]),
    ("Dropout p text", lambda: nn.Dropout(p="0.5"), TypeError, ["Dropout", "p must be a number", "'0.5'"]),
    ("dropout p nan", lambda: F.dropout(z(3), p=float("nan")), ValueError, ["dropout", "p", "nan"]),
    ("loss reduction", lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, ["CrossEntropyLoss", "'avg'"]),
    ("label smoothing", lambda: F.cross_entropy(z(2, 3), ag.tensor([0, 1]), label_smoothing=1.5), ValueError,
     ["cross_entropy", "label_smoothing", "1.5"]),
    ("GELU approximate", lambda: nn.GELU("fast"), ValueError, ["GELU", "'fast'"]),
    # --- axes, values and dtypes ---
    ("unsqueeze axis", lambda: z(4, 3).unsqueeze(5), ShapeError, ["unsqueeze", "axis 5", "2 dimensions", "(4, 3)", "-3..2"]),
    ("argmax axis", lambda: z(2, 3).argmax(axis=2), ShapeError, ["argmax: axis 2", "2 dimensions"]),
    ("argmin axes", lambda: z(2, 3).argmin(axis=(0, 1)), TypeError, ["argmin", "single int", "(0, 1)"]),
    ("sum repeated axis", lambda: z(2, 3).sum(axis=(0, 0)), ShapeError, ["sum", "(0, 0)", "twice"]),
    ("mean float axis", lambda: z(2, 3).mean(axis=1.5), TypeError, ["mean", "axis", "1.5"]),
    ("swapaxes axis", lambda: ag.swapaxes(z(2, 3), 0, 3), ShapeError, ["swapaxes: axis 3", "2 dimensions"]),
    ("flatten axis", lambda: ag.flatten(z(2, 3), 5), ShapeError, ["flatten: axis 5", "2 dimensions"]),
    ("flatten order", lambda: ag.flatten(z(2, 3, 4), 2, 1), ShapeError, ["flatten", "start_dim 2", "end_dim 1", "(2, 3, 4)"]),
    ("softmax axis", lambda: ag.softmax(z(2, 3), axis=-3), ShapeError, ["softmax: axis -3", "2 dimensions"]),
    ("concatenate axis", lambda: ag.cat([z(2, 3), z(2, 3)], axis=2), ShapeError, ["concatenate: axis 2", "2 dimensions"]),
    ("stack axis", lambda: ag.stack([z(2), z(2)], axis=3), ShapeError, ["stack: axis 3", "2 dimensions"]),
    ("permute repeated", lambda: z(2, 3).permute(0, 0), ShapeError, ["permute", "(0, 0)", "(2, 3)"]),
    ("expand new -1", lambda: z(3).expand(-1, 3), ShapeError, ["expand", "(3,)", "(-1, 3)"]),
    ("Linear float64 input", lambda: nn.Linear(4, 3)(ag.tensor(np.zeros((2, 4)))), DtypeError,
     ["linear", "float64", "float32", "tensor(x, dtype='float32')", "model.double()"]),
    ("Conv2d float64 input", lambda: nn.Conv2d(1, 2, 3)(ag.tensor(np.zeros((1, 1, 5, 5)))), DtypeError,
     ["conv2d", "(1, 1, 5, 5) is float64", "(2, 1, 3, 3) is float32"]),
    ("BatchNorm2d float64 input", lambda: nn.BatchNorm2d(2)(ag.tensor(np.zeros((2, 2, 3, 3)))), DtypeError,
     ["batch_norm", "float64", "weight (2,) is float32"]),
    ("LayerNorm float64 input", lambda: nn.LayerNorm(3)(ag.tensor(np.zeros((2, 3)))), DtypeError,
     ["layer_norm", "float64", "weight (3,) is float32"]),
    ("Linear integer input", lambda: nn.Linear(4, 3)(ag.tensor(np.zeros((2, 4), int))), DtypeError,
     ["linear", "floating point", "int64", "(2, 4)"]),
    ("dropout integer input", lambda: F.dropout(ag.tensor([1, 2, 3]), 0.3), DtypeError, ["dropout", "int64", "(3,)"]),
    ("linear bias shape", lambda: F.linear(z(2, 4), z(3, 4), z(5)), ShapeError, ["linear", "bias (5,)", "(3,)", "(3, 4)"]),
    # --- optimizers, clipping, schedules ---
    ("params method", lambda: optim.SGD(_model().parameters, lr=0.1), TypeError,
     ["SGD", "method", "Linear.parameters", "call it: model.parameters()"]),
    ("params module", lambda: optim.Adam(_model()), TypeError, ["Adam", "Linear", "module", "model.parameters()"]),
    ("lr text", lambda: optim.SGD(_model().parameters(), lr="0.1"), TypeError, ["SGD", "learning rate", "'0.1'", "str"]),
    ("lr nan", lambda: optim.Adam(_model().parameters(), lr=float("nan")), ValueError, ["Adam", "learning rate", "nan"]),
    ("rmsprop alpha", lambda: optim.RMSprop(_model().parameters(), alpha=1.5), ValueError, ["RMSprop", "alpha", "1.5", "[0, 1]"]),
    ("adamw betas", lambda: optim.AdamW(_model().parameters(), betas=0.9), ValueError, ["AdamW", "betas", "pair", "0.9"]),
    ("weight decay inf", lambda: _sgd(weight_decay=float("inf")), ValueError, ["SGD", "weight_decay", "inf", "finite"]),
    ("sgd dampening", lambda: _sgd(momentum=0.9, dampening=2.0), ValueError, ["SGD", "dampening", "2.0", "[0, 1]"]),
    ("state incomplete", _adam_incomplete_state, ValueError, ["Adam.load_state_dict", "parameter 0", "'exp_avg'", "'exp_avg_sq'"]),
    ("state negative step", _adam_negative_step, ValueError, ["Adam.load_state_dict", "'step'", "parameter 0", "-1"]),
    ("state index twice", _sgd_params_listed_twice, ValueError, ["SGD.load_state_dict", "index 0", "twice"]),
    ("clip norm negative", lambda: optim.clip_grad_norm_(_model().parameters(), -1.0), ValueError,
     ["clip_grad_norm_", "max_norm", ">= 0", "-1.0"]),
    ("clip norm nan", lambda: optim.clip_grad_norm_(_model().parameters(), float("nan")), ValueError, ["clip_grad_norm_", "max_norm", "nan"]),
    ("clip value negative", lambda: optim.clip_grad_value_(_model().parameters(), -0.5), ValueError,
     ["clip_grad_value_", "clip_value", "-0.5"]),
    ("clip params method", lambda: optim.clip_grad_norm_(_model().parameters, 1.0), TypeError,
     ["clip_grad_norm_", "method", "model.parameters()"]),
    ("StepLR gamma text", lambda: _scheduler(lambda o: optim.lr_scheduler.StepLR(o, 2, gamma="0.1")), TypeError,
     ["StepLR", "gamma", "'0.1'"]),
    ("StepLR step float", lambda: _scheduler(lambda o: optim.lr_scheduler.StepLR(o, 2.5)), TypeError,
     ["StepLR", "step_size", "2.5"]),
    ("cosine T_max", lambda: _scheduler(lambda o: optim.lr_scheduler.CosineAnnealingLR(o, 0)), ValueError,
     ["CosineAnnealingLR", "T_max", "0"]),
    ("plateau patience", lambda: _scheduler(lambda o: optim.lr_scheduler.ReduceLROnPlateau(o, patience=-1)), ValueError,
     ["ReduceLROnPlateau", "patience", "-1"]),
    ("LambdaLR number", lambda: _scheduler(lambda o: optim.lr_scheduler.LambdaLR(o, 0.5)), TypeError,
     ["LambdaLR", "lr_lambda", "float"]),
    ("ExponentialLR nan", lambda: _scheduler(lambda o: optim.lr_scheduler.ExponentialLR(o, float("nan"))), ValueError,
     ["ExponentialLR", "gamma", "nan"]),
]


@pytest.mark.parametrize("name,call,exc,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(name, call, exc, fragments):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    assert "\n" not in message.strip() or name in MULTILINE, f"{name}: message is not one line: {message}"
    for fragment in fragments:
        assert fragment in message, f"{name}: {fragment!r} missing from: {message}"


MULTILINE = {"in-place saved"}  # a report with the saving op's and the modifier's lines


def test_the_table_is_large_enough():
    assert len(CASES) + len(FILE_CASES) >= 40 + 35


FILE_CASES = [
    ("truncated checkpoint", lambda p: nn.load(_write(p / "t.npz", b"PK\x03\x04" + b"\0" * 20)), CheckpointError, ["t.npz"]),
    ("foreign file", lambda p: nn.load(_write(p / "f.npz", b"garbage" * 10)), CheckpointError, ["f.npz", "not"]),
    ("foreign npz", lambda p: (np.savez(p / "g.npz", a=np.zeros(3)), nn.load(p / "g.npz")), CheckpointError, ["g.npz", "manifest"]),
    ("idx bad magic", lambda p: read_idx(_write(p / "a-idx", b"PK\x03\x04rest")), IDXFormatError, ["a-idx", "magic"]),
    ("idx truncated", lambda p: read_idx(_write(p / "b-idx", struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 28, 28) + b"\0" * 100)),
     IDXFormatError, ["b-idx", "truncated", "10x28x28"]),
    ("idx bad gzip", lambda p: read_idx(_write(p / "c-idx.gz", b"\x1f\x8b" + b"junk" * 5)), IDXFormatError, ["c-idx.gz"]),
    ("idx empty", lambda p: read_idx(_write(p / "d-idx", b"")), IDXFormatError, ["d-idx"]),
]


@pytest.mark.parametrize("name,call,exc,fragments", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_file_gets_a_clear_error(tmp_path, name, call, exc, fragments):
    with pytest.raises(exc) as info:
        call(tmp_path)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{name}: {fragment!r} missing from: {message}"


def test_errors_hide_numpy_internals():
    """Our errors are raised `from None`: no NumPy exception chained behind them."""
    with pytest.raises(TapegradError) as info:
        z(2, 3) + z(4)
    assert info.value.__cause__ is None and info.value.__suppress_context__
