"""nn.save / nn.load: nested round trips, atomic writes, clear errors on bad files."""
import errno
import os
from pathlib import Path
from collections import OrderedDict

import numpy as np
import pytest

import autograd as ag
import nn
from nn import serialization
from nn.serialization import CheckpointError


def checkpoint():
    return {
        "model": OrderedDict([("0.weight", np.arange(6, dtype=np.float32).reshape(2, 3)),
                              ("bn.num_batches_tracked", np.array(4, dtype=np.int64))]),
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": np.full((2, 3), 0.5)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "name": None}],
        },
        "epoch": 3,
        "best": float("inf"),
        "done": False,
        "tag": "run-1",
        "scalar": np.float32(1.5),
        "weights": ag.tensor([1.0, 2.0]),
    }


def leftovers(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".tmp"))


def test_round_trip_keeps_nesting_and_types(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save(checkpoint(), path)
    back = nn.load(path)
    assert list(back) == list(checkpoint())
    w = back["model"]["0.weight"]
    assert w.dtype == np.float32 and w.shape == (2, 3) and w.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["model"]["bn.num_batches_tracked"].dtype == np.int64
    assert back["model"]["bn.num_batches_tracked"] == 4
    assert list(back["optimizer"]["state"]) == [0]  # int keys stay ints
    state = back["optimizer"]["state"][0]
    assert state["step"] == 3 and type(state["step"]) is int
    assert state["exp_avg"].dtype == np.float64
    group = back["optimizer"]["param_groups"][0]
    assert group == {"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1], "name": None}
    assert type(group["betas"]) is tuple
    assert back["epoch"] == 3 and back["best"] == float("inf") and back["done"] is False and back["tag"] == "run-1"
    assert type(back["scalar"]) is np.float32 and back["scalar"] == 1.5
    assert isinstance(back["weights"], np.ndarray) and back["weights"].tolist() == [1.0, 2.0]


def test_arrays_readable_with_plain_numpy(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save(checkpoint(), path)
    with np.load(path, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["model/0.weight"], checkpoint()["model"]["0.weight"])
        assert "optimizer/state/0/exp_avg" in z.files


def test_model_state_dict_round_trip(tmp_path):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(np.random.default_rng(0).standard_normal((3, 2)).astype(np.float32))
            self.register_buffer("count", np.array(2, dtype=np.int64))

    src, dst = M(), M()
    dst.w.data[...] = 0
    nn.save(src.state_dict(), tmp_path / "m.npz")
    dst.load_state_dict(nn.load(tmp_path / "m.npz"))
    np.testing.assert_array_equal(dst.w.data, src.w.data)


def test_unsupported_values_rejected(tmp_path):
    with pytest.raises(TypeError, match="cannot store set"):
        nn.save({"a": {1, 2}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be str or int"):
        nn.save({(1, 2): 3}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="object"):
        nn.save({"a": np.array([{}], dtype=object)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="same array name"):
        nn.save({"a/b": np.zeros(1), "a": {"b": np.ones(1)}}, tmp_path / "x.npz")
    assert not os.path.exists(tmp_path / "x.npz") and leftovers(tmp_path) == []


# --- atomic writes ---------------------------------------------------------------------------------
def test_failure_mid_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    nn.save({"epoch": 1, "w": np.ones(3)}, path)
    real_savez = np.savez

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 partial bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(serialization.np, "savez", crash)
    with pytest.raises(OSError) as err:
        nn.save({"epoch": 2, "w": np.zeros(3)}, path)
    assert err.value.errno == errno.ENOSPC and str(path) in str(err.value)
    monkeypatch.setattr(serialization.np, "savez", real_savez)
    assert nn.load(path)["epoch"] == 1
    assert leftovers(tmp_path) == [] and os.listdir(tmp_path) == ["ckpt.npz"]


def test_failing_rename_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    nn.save({"epoch": 1}, path)

    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(serialization.os, "replace", refuse)
    with pytest.raises(PermissionError, match="ckpt.npz"):
        nn.save({"epoch": 2}, path)
    monkeypatch.undo()
    assert nn.load(path) == {"epoch": 1} and leftovers(tmp_path) == []


def test_unwritable_directory_names_path(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    import autograd.fileio

    monkeypatch.setattr(autograd.fileio.tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError) as err:
        nn.save({"epoch": 2}, tmp_path / "ckpt.npz")
    assert "ckpt.npz" in str(err.value) and "Permission denied" in str(err.value)
    assert os.listdir(tmp_path) == []


def _unwritable_directory(tmp_path):
    """A directory the OS really refuses to write into: chmod 555 for a normal user; as root, where
    permissions are ignored, sysfs (which refuses file creation even to root)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    if not os.access(directory, os.W_OK):
        return directory
    return Path("/sys")


def test_read_only_directory_for_real(tmp_path):
    directory = _unwritable_directory(tmp_path)
    before = sorted(os.listdir(directory))
    try:
        with pytest.raises(PermissionError, match="ckpt.npz"):
            nn.save({"epoch": 1}, directory / "ckpt.npz")
        assert sorted(os.listdir(directory)) == before
    finally:
        (tmp_path / "ro").chmod(0o755)


# --- bad files -------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        nn.load(tmp_path / "nothere.npz")


@pytest.mark.parametrize("keep", [0.5, 0.98])
def test_truncated_file(tmp_path, keep):
    path = tmp_path / "ckpt.npz"
    nn.save(checkpoint(), path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="ckpt.npz") as err:
        nn.load(path)
    assert isinstance(err.value, ValueError)
    assert "truncated" in str(err.value)


def test_corrupted_bytes(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[500:520] = b"\xff" * 20  # inside the array payload: the zip CRC check fails
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        nn.load(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("hello, not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.npz.*not an .npz"):
        nn.load(path)


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="foreign.npz.*without a tapegrad manifest"):
        nn.load(path)
