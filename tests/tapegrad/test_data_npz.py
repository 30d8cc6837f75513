"""A user's own .npz: accepted layouts (one set, Keras-style), notes on what was converted, the
80/20 split, channels-last images, sparse labels, and file fingerprints."""

import os

import numpy as np
import pytest

from tapegrad.data import (
    MAX_CLASSES,
    ArrayDataset,
    DataError,
    DataLayoutError,
    DataValueError,
    DatasetNotFoundError,
    describe_file,
    file_changes,
    load_npz,
    load_npz_split,
)

REMAP = "`_, labels = np.unique(labels, return_inverse=True)`"


def _images(n, shape=(20, 20), channels=None, seed=0):
    size = (n, *shape) if channels is None else (n, *shape, channels)
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8)


def _labels(n, k=10, seed=1):
    return np.random.default_rng(seed).integers(0, k, n)


# --- channels-last (issue 15) -------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channels_last_is_transposed_with_a_note(tmp_path, channels):
    x, y = _images(6, channels=channels), _labels(6)
    np.savez(tmp_path / "rgb.npz", images=x, labels=y)
    ds = load_npz(tmp_path / "rgb.npz")
    assert ds.images.shape == (6, channels, 20, 20) and ds.images.flags.c_contiguous
    np.testing.assert_allclose(ds.images * 255, x.transpose(0, 3, 1, 2), atol=1e-3)
    assert ds.notes == [
        f"images (6, 20, 20, {channels}) look channels-last; transposed to (6, {channels}, 20, 20)"
    ]


@pytest.mark.parametrize("shape", [(4, 1, 28, 28), (4, 3, 20, 20), (4, 1, 4, 4), (4, 3, 4, 4),
                                   (4, 16, 8, 8), (4, 2, 5, 5)])
def test_channels_first_is_kept_without_notes(shape):
    x = np.random.default_rng(0).random(shape)
    ds = ArrayDataset(x, _labels(4))
    assert ds.images.shape == shape and ds.notes == []
    np.testing.assert_allclose(ds.images, x, rtol=1e-6)


@pytest.mark.parametrize("shape", [(5, 3, 3, 3), (5, 4, 20, 3), (5, 1, 28, 1), (5, 3, 20, 3)])
def test_ambiguous_layouts_are_refused_with_the_fix(tmp_path, shape):
    np.savez(tmp_path / "amb.npz", images=np.zeros(shape, np.uint8), labels=np.zeros(5, int))
    with pytest.raises(DataLayoutError) as info:
        load_npz(tmp_path / "amb.npz")
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'amb.npz'}: images {shape} are ambiguous: ")
    assert f"axis 1 ({shape[1]}) and axis 3 ({shape[3]}) could each be the colour channels" in msg
    assert "save them as (N, C, H, W) (np.transpose(x, (0, 3, 1, 2))" in msg
    assert "layout='NCHW' or 'NHWC'" in msg


def test_layout_argument_settles_an_ambiguous_array(tmp_path):
    x = _images(5, shape=(4, 20), channels=3)
    np.savez(tmp_path / "amb.npz", images=x, labels=_labels(5))
    assert load_npz(tmp_path / "amb.npz", layout="NHWC").images.shape == (5, 3, 4, 20)
    ds = ArrayDataset(x, _labels(5), layout="NCHW")
    assert ds.images.shape == (5, 4, 20, 3) and ds.notes == []
    with pytest.raises(ValueError, match="layout must be one of"):
        ArrayDataset(x, _labels(5), layout="CHW")


# --- notes on conversions ------------------------------------------------------------------------


def test_whole_float_and_column_labels_are_converted_with_notes():
    ds = ArrayDataset(_images(4), np.array([[0.0], [2.0], [1.0], [2.0]], np.float32))
    assert ds.labels.dtype == np.int64 and list(ds.labels) == [0, 2, 1, 2]
    assert ds.notes == ["labels (4, 1) flattened to (4,)",
                        "labels stored as float32 are whole numbers; converted to int64"]


def test_in_memory_datasets_have_empty_notes_and_class_counts():
    ds = ArrayDataset(_images(30), np.arange(30) % 7)
    assert ds.notes == [] and ds.files == []
    assert ds.num_classes == 7 and list(ds.classes_present) == list(range(7))
    assert not ds.sparse_labels


# --- sparse labels (threshold: max + 1 > 20 and under half of 0..max present) -------------------


def test_sparse_labels_are_flagged_not_refused():
    labels = np.array([0, 9000, 0, 9000, 0])
    ds = ArrayDataset(_images(5), labels)
    assert ds.num_classes == 9001 and list(ds.classes_present) == [0, 9000] and ds.sparse_labels
    assert ds.notes == [
        "labels are sparse: 2 distinct values in 0..9000, so the model gets 9001 outputs, 8999 of "
        f"them for labels that never occur; remap them to 0..1 with {REMAP}"
    ]


@pytest.mark.parametrize("labels, sparse", [
    (np.array([0, 19] * 10), False),           # max + 1 = 20: at the range threshold, no note
    (np.array([0, 20] * 10), True),            # max + 1 = 21 with 2 present: sparse
    (np.r_[np.arange(19), 39], False),         # 20 of 40 present: exactly half is not sparse
    (np.r_[np.arange(18), 39], True),          # 19 of 40 present: under half
])
def test_sparse_threshold_edges(labels, sparse):
    n = len(labels)
    ds = ArrayDataset(np.zeros((n, 1, 2, 2)), labels)
    expected = ds.num_classes > 20 and len(ds.classes_present) < ds.num_classes / 2
    assert ds.sparse_labels is sparse is expected
    assert any(note.startswith("labels are sparse") for note in ds.notes) is sparse


def test_absurd_label_range_is_refused_with_the_remap_recipe():
    with pytest.raises(DataValueError) as info:
        ArrayDataset(_images(3), np.array([0, MAX_CLASSES, 5]))
    assert str(info.value) == (
        "ArrayDataset: labels go up to 10000, which would build a 10001-class model (more than "
        f"10,000 classes is refused); only 3 distinct labels occur: remap them to 0..2 with {REMAP} "
        "and save again"
    )
    assert ArrayDataset(_images(2), np.array([0, MAX_CLASSES - 1])).num_classes == MAX_CLASSES


def test_huge_float_labels_are_refused_not_overflowed():
    with pytest.raises(DataValueError, match="labels go up to 1e[+]30"):
        ArrayDataset(_images(2), np.array([0.0, 1e30]))


# --- Keras-style files (issue 16) ----------------------------------------------------------------


def _keras_file(path, n_train=40, n_test=10, channels=None, label_column=False):
    xtr, xte = _images(n_train, channels=channels), _images(n_test, channels=channels, seed=5)
    ytr, yte = _labels(n_train).astype(np.uint8), _labels(n_test, seed=6).astype(np.uint8)
    if label_column:
        ytr, yte = ytr[:, None], yte[:, None]
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return xtr, ytr.ravel(), xte, yte.ravel()


def test_keras_file_uses_its_own_split(tmp_path):
    xtr, ytr, xte, yte = _keras_file(tmp_path / "mnist.npz")
    train, test = load_npz_split(tmp_path / "mnist.npz")
    assert (len(train), len(test)) == (40, 10)
    assert train.images.shape == (40, 1, 20, 20) and test.images.shape == (10, 1, 20, 20)
    np.testing.assert_array_equal(train.labels, ytr)
    np.testing.assert_array_equal(test.labels, yte)
    np.testing.assert_allclose(test.images[:, 0] * 255, xte, atol=1e-3)
    assert train.notes == test.notes == ["Keras-style file: its own split, 40 train (x_train) / 10 test (x_test)"]
    assert train.files == [str((tmp_path / "mnist.npz").resolve())]


def test_keras_cifar_style_file_channels_last_and_label_column(tmp_path):
    _keras_file(tmp_path / "cifar.npz", channels=3, label_column=True)
    train, test = load_npz_split(tmp_path / "cifar.npz")
    assert train.images.shape == (40, 3, 20, 20) and test.labels.shape == (10,)
    assert train.notes == [
        "Keras-style file: its own split, 40 train (x_train) / 10 test (x_test)",
        "train: images (40, 20, 20, 3) look channels-last; transposed to (40, 3, 20, 20)",
        "train: labels (40, 1) flattened to (40,)",
        "test: images (10, 20, 20, 3) look channels-last; transposed to (10, 3, 20, 20)",
        "test: labels (10, 1) flattened to (10,)",
    ]


def test_keras_file_sparse_labels_are_judged_on_both_splits_together(tmp_path):
    # 30 classes: the small test split holds only 3 of them, which alone would look sparse
    ytr, yte = np.arange(60) % 30, np.array([0, 1, 2])
    np.savez(tmp_path / "k.npz", x_train=_images(60), y_train=ytr, x_test=_images(3), y_test=yte)
    train, test = load_npz_split(tmp_path / "k.npz")
    assert not any("sparse" in note for note in train.notes + test.notes)
    assert test.num_classes == 3 and len(train.classes_present) == 30
    np.savez(tmp_path / "s.npz", x_train=_images(4), y_train=np.array([0, 500, 0, 500]),
             x_test=_images(2), y_test=np.array([0, 700]))
    train, _ = load_npz_split(tmp_path / "s.npz")
    assert train.notes[-1].startswith("labels are sparse: 3 distinct values in 0..700, so the model gets 701")


def test_keras_file_through_load_npz_needs_a_split(tmp_path):
    _, ytr, _, yte = _keras_file(tmp_path / "k.npz")
    with pytest.raises(DataLayoutError) as info:
        load_npz(tmp_path / "k.npz")
    assert str(info.value) == (
        f"{tmp_path / 'k.npz'}: is a Keras-style file with its own train/test split (x_train, y_train, "
        "x_test, y_test): load both with load_npz_split(path), or one with "
        "load_npz(path, split='train' or 'test')"
    )
    np.testing.assert_array_equal(load_npz(tmp_path / "k.npz", split="test").labels, yte)
    np.testing.assert_array_equal(load_npz(tmp_path / "k.npz", split="train").labels, ytr)


def test_keras_splits_must_share_the_image_size(tmp_path):
    np.savez(tmp_path / "k.npz", x_train=_images(4), y_train=_labels(4),
             x_test=_images(2, shape=(28, 28)), y_test=_labels(2))
    with pytest.raises(DataLayoutError, match=r"x_train images are \(1, 20, 20\) but x_test images are "
                                              r"\(1, 28, 28\)"):
        load_npz_split(tmp_path / "k.npz")


def test_keras_split_error_names_the_split(tmp_path):
    np.savez(tmp_path / "k.npz", x_train=_images(4), y_train=_labels(4), x_test=_images(2),
             y_test=np.array([0, -1]))
    with pytest.raises(DataValueError) as info:
        load_npz_split(tmp_path / "k.npz")
    assert str(info.value).startswith(
        f"{tmp_path / 'k.npz'} (x_test, y_test): labels must be >= 0, found -1 at index 1")


# --- one-set files: the 80/20 split in file order ------------------------------------------------


@pytest.mark.parametrize("keys", [("images", "labels"), ("x", "y")])
def test_one_set_file_is_split_80_20_in_file_order(tmp_path, keys):
    x, y = _images(10), _labels(10)
    np.savez(tmp_path / "d.npz", **{keys[0]: x, keys[1]: y})
    train, test = load_npz_split(tmp_path / "d.npz")
    np.testing.assert_array_equal(train.labels, y[:8])
    np.testing.assert_array_equal(test.labels, y[8:])
    assert train.notes == test.notes == [
        "no test split in the file: first 8 samples train, last 2 test (file order)"]
    assert test.num_classes == int(y[8:].max()) + 1


def test_one_set_file_too_small_to_split(tmp_path):
    np.savez(tmp_path / "one.npz", images=_images(1), labels=_labels(1))
    with pytest.raises(DataLayoutError, match="one.npz: 1 samples are too few to split into train and test"):
        load_npz_split(tmp_path / "one.npz")


def test_extra_arrays_are_ignored_with_a_note(tmp_path):
    np.savez(tmp_path / "d.npz", images=_images(5), labels=_labels(5), class_names=np.array(["a", "b"]))
    ds = load_npz(tmp_path / "d.npz")
    assert ds.notes == ["ignored array(s) ['class_names'] (not part of the layout 'images' + 'labels')"]


def test_two_complete_layouts_are_refused(tmp_path):
    np.savez(tmp_path / "d.npz", images=_images(5), labels=_labels(5), x=_images(5), y=_labels(5))
    with pytest.raises(DataLayoutError, match=r"holds arrays of more than one layout \('images' \+ "
                                              r"'labels'; 'x' \+ 'y'\); keep one"):
        load_npz(tmp_path / "d.npz")


def test_subset_keeps_notes_and_files(tmp_path):
    np.savez(tmp_path / "d.npz", images=_images(6, channels=3), labels=_labels(6))
    ds = load_npz(tmp_path / "d.npz")
    sub = ds.subset(slice(0, 2))
    assert len(sub) == 2 and sub.notes == ds.notes and sub.files == ds.files
    sub.notes.append("x")
    assert "x" not in ds.notes  # a copy, not the same list


# --- describe_file / file_changes ----------------------------------------------------------------


def test_describe_file_and_changes(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=_images(5), labels=_labels(5))
    record = describe_file(path)
    assert set(record) == {"path", "size", "mtime", "sha256"}
    assert record["path"] == str(path.resolve()) and record["size"] == path.stat().st_size
    assert len(record["sha256"]) == 64 and record["mtime"].endswith("+00:00")
    assert file_changes(record) == []
    os.utime(path, (0, 0))  # a touch or a copy: same content, not a change
    assert file_changes(record) == []
    np.savez(path, images=_images(6), labels=_labels(6))
    (change,) = file_changes(record)
    assert change.startswith(f"{path.resolve()}: content changed (size {record['size']} -> "
                             f"{path.stat().st_size} bytes, sha256 {record['sha256'][:8]}... -> ")
    path.unlink()
    assert file_changes(record) == [f"{path.resolve()}: no longer exists"]


def test_describe_file_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="nope.npz: no such file"):
        describe_file(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="is a folder; describe_file takes one file"):
        describe_file(tmp_path)


def test_readme_lists_every_layout_and_threshold():
    from pathlib import Path

    from tapegrad.data import NPZ_LAYOUTS, SPARSE_MIN_RANGE

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Your own data"):readme.index("## Graphs you can read")]
    for layout in NPZ_LAYOUTS:
        assert "| " + ", ".join(f"`{k}`" for k in layout) in section
    assert f"More than {MAX_CLASSES:,}\n  classes" in section or f"More than {MAX_CLASSES:,} classes" in section
    assert f"max + 1 > {SPARSE_MIN_RANGE}" in section
    assert "$TAPEGRAD_MNIST_DIR" in section and "--data-dir" in section


def test_cli_dataset_loading_sees_channels_first_images(tmp_path):
    """Issue 15 end to end: the CLI's loader hands the model (3, 20, 20), not 20 channels of 20x3."""
    from tapegrad.cli import load_datasets

    np.savez(tmp_path / "rgb.npz", images=_images(10, channels=3), labels=_labels(10))
    train, test, classes = load_datasets(str(tmp_path / "rgb.npz"))
    assert train.images.shape == (8, 3, 20, 20) and test.images.shape == (2, 3, 20, 20)
