"""A table of broken data files: each must raise one DataError subclass whose whole message says
what is wrong and how to fix it (never NumPy's "pickled data" or a zipfile traceback)."""
import gzip
import os
import zipfile

import numpy as np
import pytest

from tapegrad.data import (
    DataError,
    DataFileError,
    DataLayoutError,
    DataLoader,
    DatasetNotFoundError,
    DataTypeError,
    DataValueError,
    IDXFormatError,
    load_npz,
    load_npz_split,
    mnist_split_from_test_set,
    read_idx,
)

SAVE = "save it with np.savez(path, images=images, labels=labels)"
ACCEPTED = ("Accepted layouts: 'images' + 'labels'; 'x' + 'y'; or Keras-style 'x_train' + 'y_train' "
            "+ 'x_test' + 'y_test'")
RNG = np.random.default_rng(0)
X = RNG.integers(0, 256, (10, 8, 8), dtype=np.uint8)
Y = RNG.integers(0, 10, 10)


def _good(path):
    np.savez(path, images=X, labels=Y)
    return path


def _bytes(path, data: bytes):
    path.write_bytes(data)
    return path


def _truncated(path):
    data = _good(path).read_bytes()
    return _bytes(path, data[: len(data) // 2])


def _bit_flipped(path):
    data = bytearray(_good(path).read_bytes())
    data[200] ^= 0xFF  # inside images.npy's payload: the zip directory is intact, the CRC is not
    return _bytes(path, bytes(data))


def _npy(path):
    with open(path, "wb") as handle:
        np.save(handle, X)
    return path


def _folder(path):
    path.mkdir()
    return path


def _savez(**arrays):
    def make(path):
        np.savez(path, **arrays)
        return path
    return make


# (case id, how to make the file, error class, the exact message with {p} for the path)
CASES = [
    ("folder named x.npz", _folder, DataFileError,
     "{p}: is a folder, not an .npz file; pass the .npz file itself (" + SAVE + ")"),
    ("missing file", lambda p: p, DatasetNotFoundError, "{p}: no such file"),
    ("empty file", lambda p: _bytes(p, b""), DataFileError,
     "{p}: is empty (0 bytes), not an .npz archive"),
    ("text, not zip", lambda p: _bytes(p, b"images,labels\n1,2\n"), DataFileError,
     "{p}: not an .npz file (an .npz is a zip archive, this file starts with b'imag'); " + SAVE),
    ("a pickle", lambda p: _bytes(p, b"\x80\x04\x95\x00"), DataFileError,
     "{p}: not an .npz file (an .npz is a zip archive, this file starts with b'\\x80\\x04\\x95\\x00'); "
     + SAVE),
    ("a .npy renamed", _npy, DataFileError,
     "{p}: is a single .npy array, not an .npz archive of images and labels; " + SAVE),
    ("truncated", _truncated, DataFileError,
     "{p}: damaged .npz archive (BadZipFile: File is not a zip file); it may be truncated by an "
     "interrupted download or copy: copy or save it again"),
    ("bit flipped", _bit_flipped, DataFileError,
     "{p}: damaged .npz archive (BadZipFile: Bad CRC-32 for file 'images.npy'); it may be truncated "
     "by an interrupted download or copy: copy or save it again"),
    ("missing labels", _savez(images=X, targets=Y), DataLayoutError,
     "{p}: missing array(s) ['labels']: found ['images', 'targets']. " + ACCEPTED),
    ("half a Keras file", _savez(x_train=X, y_train=Y), DataLayoutError,
     "{p}: missing array(s) ['x_test', 'y_test']: found ['x_train', 'y_train']. " + ACCEPTED),
    ("no arrays", _savez(), DataLayoutError,
     "{p}: missing array(s) ['images', 'labels']: found no arrays. " + ACCEPTED),
    ("object array", _savez(images=np.array([{"a": 1}], dtype=object), labels=np.zeros(1)),
     DataTypeError,
     "{p}: array 'images' holds Python objects (dtype=object), which are not loaded "
     "(allow_pickle=False: unpickling can run code); save plain numeric arrays"),
    ("fractional labels", _savez(images=X, labels=np.r_[Y[:9], 2.5]), DataTypeError,
     "{p}: labels must be whole numbers (class 0, 1, 2...), got float64 with 2.5 at index 9"),
    ("NaN labels", _savez(images=X, labels=np.r_[np.nan, Y[1:]]), DataValueError,
     "{p}: labels contain NaN or infinity (first at index 0)"),
    ("string labels", _savez(images=X, labels=Y.astype(str)), DataTypeError,
     "{p}: labels must be a 1-D integer array, got shape (10,) dtype <U21"),
    ("one-hot labels", _savez(images=X, labels=np.eye(10)[Y]), DataLayoutError,
     "{p}: labels must be (N,) class numbers, got shape (10, 10); if the rows are one-hot, save "
     "np.argmax(labels, axis=1)"),
    ("NaN images", _savez(images=np.where(np.arange(10)[:, None, None] % 4 == 3, np.nan, X / 255),
                          labels=Y), DataValueError,
     "{p}: images contain NaN or infinite values in 2 sample(s), first at index 3; remove or repair "
     "those samples"),
    ("0-255 floats", _savez(images=X.astype(np.float32), labels=Y), DataValueError,
     f"{{p}}: float images must lie in [0, 1], got range [{float(X.min())}, {float(X.max())}]; "
     "if they are 0-255 pixel values, divide by 255"),
    ("int64 images", _savez(images=X.astype(np.int64), labels=Y), DataTypeError,
     "{p}: images must be uint8 or floating point (uint8 0-255, float in [0, 1]), got int64; if the "
     "values are 0-255 pixels, save x.astype(np.uint8)"),
    ("2-D images", _savez(images=X.reshape(10, 64), labels=Y), DataLayoutError,
     "{p}: images must be (N, H, W), (N, C, H, W) or (N, H, W, C), got shape (10, 64)"),
    ("count mismatch", _savez(images=X, labels=Y[:7]), DataLayoutError,
     "{p}: 10 images but 7 labels; they must match"),
    ("negative label", _savez(images=X, labels=np.r_[Y[:4], -3, Y[5:]]), DataValueError,
     "{p}: labels must be >= 0, found -3 at index 4; class labels are 0..K-1 (remap with "
     "`_, labels = np.unique(labels, return_inverse=True)`)"),
    ("absurd label range", _savez(images=X, labels=np.r_[Y[:9], 123456]), DataValueError,
     "{p}: labels go up to 123456, which would build a 123457-class model (more than 10,000 classes "
     f"is refused); only {len(np.unique(np.r_[Y[:9], 123456]))} distinct labels occur: remap them to "
     f"0..{len(np.unique(np.r_[Y[:9], 123456])) - 1} with "
     "`_, labels = np.unique(labels, return_inverse=True)` and save again"),
    ("ambiguous channels", _savez(images=np.zeros((10, 3, 3, 3), np.uint8), labels=Y), DataLayoutError,
     "{p}: images (10, 3, 3, 3) are ambiguous: axis 1 (3) and axis 3 (3) could each be the colour "
     "channels; save them as (N, C, H, W) (np.transpose(x, (0, 3, 1, 2)) turns (N, H, W, C) into "
     "that), or in Python pass layout='NCHW' or 'NHWC'"),
]


@pytest.mark.parametrize("make, error, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_npz_files_raise_one_clear_data_error(tmp_path, make, error, message):
    path = make(tmp_path / "x.npz")
    for load in (load_npz, load_npz_split):
        with pytest.raises(error) as info:
            load(path)
        assert isinstance(info.value, DataError) and isinstance(info.value, ValueError)
        assert str(info.value) == message.format(p=tmp_path / "x.npz")
        assert "pickled" not in str(info.value)


def test_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    import tapegrad.data.npz as npz_module

    def denied(path, mode="r"):  # chmod 000 does not stop root, so fake the refusal itself
        raise PermissionError(13, "Permission denied", str(path))

    path = _good(tmp_path / "x.npz")
    monkeypatch.setattr(npz_module, "open", denied, raising=False)
    with pytest.raises(DataFileError) as info:
        load_npz(path)
    assert str(info.value) == f"cannot read {path}: Permission denied"


def test_damaged_compressed_member(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels.npy", b"\x93NUMPY garbage that is no npy header")
        archive.writestr("images.npy", b"\x93NUMPY more garbage")
    with pytest.raises(DataFileError) as info:
        load_npz(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: damaged .npz archive (ValueError: ") and "copy or save it again" in msg


def test_idx_file_problems_are_data_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nope.idx: no such file"):
        read_idx(tmp_path / "nope.idx")
    with pytest.raises(DataFileError, match=f"{tmp_path}: is a folder, not an IDX file"):
        read_idx(tmp_path)
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04")[:-3])
    with pytest.raises(IDXFormatError, match="bad.gz: corrupt gzip stream"):
        read_idx(tmp_path / "bad.gz")


def test_missing_mnist_10k_names_the_cli_flag(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        mnist_split_from_test_set(tmp_path)
    assert str(info.value) == (
        f"mnist test set not found in {tmp_path}: need t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz (gzipped or not) there; pass --data-dir <folder holding them> "
        "(root= in Python) or set TAPEGRAD_MNIST_DIR"
    )


def test_short_mnist_test_file_is_a_data_error(tmp_path):
    from tapegrad.data import write_idx

    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", X)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", Y.astype(np.uint8))
    with pytest.raises(DataLayoutError) as info:
        mnist_split_from_test_set(tmp_path)
    assert str(info.value) == (
        f"mnist test set in {tmp_path} holds 10 samples: too few to keep the first 8000 for "
        "training and test on the rest (the full set has 10,000)"
    )
    with pytest.raises(ValueError, match="n_train must be >= 1, got 0"):
        mnist_split_from_test_set(tmp_path, n_train=0)


def test_empty_dataset_in_a_loader_is_a_data_error():
    class Empty:
        def __len__(self):
            return 0

    with pytest.raises(DataError, match="DataLoader: dataset is empty"):
        DataLoader(Empty())


def test_every_error_class_is_a_data_error():
    for cls in (DataFileError, DataLayoutError, DataTypeError, DataValueError, DatasetNotFoundError,
                IDXFormatError):
        assert issubclass(cls, DataError) and issubclass(cls, ValueError)
    assert issubclass(DatasetNotFoundError, FileNotFoundError) and issubclass(DataTypeError, TypeError)
