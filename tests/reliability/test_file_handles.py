"""A damaged file must not stay open after its clear error: a leaked handle keeps the file locked on
Windows (the user cannot replace it) and is closed only when the garbage collector finds it."""
import gc
import warnings

import numpy as np
import pytest

import nn
from nn.serialization import CheckpointError
from tapegrad.data import DataFileError, load_npz, load_npz_split


def _unclosed_handles(load, path) -> list[str]:
    """The ResourceWarnings naming `path` that loading it (and failing) leaves behind."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            load(path)
        except (CheckpointError, DataFileError):
            pass
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and str(path) in str(w.message)]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the zip magic is there, the central directory is not
    return path


@pytest.mark.parametrize("load", [load_npz, load_npz_split])
def test_a_truncated_dataset_file_is_closed_after_its_error(tmp_path, load):
    path = tmp_path / "data.npz"
    np.savez(path, images=np.zeros((10, 8, 8), np.uint8), labels=np.arange(10) % 3)
    assert _unclosed_handles(load, _truncate(path)) == []


def test_a_damaged_checkpoint_is_closed_after_its_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[500:520] = b"\xff" * 20  # inside the array payload: the zip CRC check fails
    path.write_bytes(bytes(data))
    assert _unclosed_handles(nn.load, path) == []
