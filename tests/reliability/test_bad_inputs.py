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
]


@pytest.mark.parametrize("name,call,exc,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_error(name, call, exc, fragments):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{name}: {fragment!r} missing from: {message}"


def test_the_table_is_large_enough():
    assert len(CASES) + len(FILE_CASES) >= 40


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
