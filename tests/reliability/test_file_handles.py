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
    """The ResourceWarnings naming `path` that loading it (which must fail) leaves behind."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises((CheckpointError, DataFileError)):
            load(path)
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning) and str(path) in str(w.message)]


def _dataset(path):
    np.savez(path, images=np.zeros((10, 8, 8), np.uint8), labels=np.arange(10) % 3)


def _checkpoint(path):
    nn.save({"w": np.arange(1000.0)}, path)


@pytest.mark.parametrize("write, load", [(_dataset, load_npz), (_dataset, load_npz_split), (_checkpoint, nn.load)],
                         ids=["load_npz", "load_npz_split", "nn.load"])
def test_a_truncated_file_is_closed_after_its_error(tmp_path, write, load):
    path = tmp_path / "file.npz"
    write(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the zip magic is there, the central directory is not
    assert _unclosed_handles(load, path) == []
