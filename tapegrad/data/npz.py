"""A user's own data as an .npz file: every accepted layout, and one clear error for the rest.

Accepted layouts (the arrays' names inside the file; other arrays are ignored, with a note):

- ``images`` + ``labels``                       one set; the CLI splits it 80/20 in file order
- ``x`` + ``y``                                 the same, with short names
- ``x_train`` + ``y_train`` + ``x_test`` + ``y_test``   Keras-style: the file's own split is used

Images and labels are then converted by ArrayDataset (channels-last images transposed, float
labels holding whole numbers converted...), which writes what it did into ``dataset.notes``.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from autograd.fileio import read_npz

from .arrays import ArrayDataset, sparse_label_note
from .errors import DataError, DataFileError, DataLayoutError, DatasetNotFoundError, DataTypeError
from .idx import PathLike

SINGLE_LAYOUTS = (("images", "labels"), ("x", "y"))
KERAS_LAYOUT = ("x_train", "y_train", "x_test", "y_test")
NPZ_LAYOUTS = SINGLE_LAYOUTS + (KERAS_LAYOUT,)
ACCEPTED = (
    "'images' + 'labels'; 'x' + 'y'; or Keras-style 'x_train' + 'y_train' + 'x_test' + 'y_test'"
)
_SAVE_HINT = "save it with np.savez(path, images=images, labels=labels)"

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members / an empty zip
_NPY_MAGIC = b"\x93NUMPY"


def load_npz(path: PathLike, split: Optional[str] = None, *, layout: str = "auto") -> ArrayDataset:
    """One ArrayDataset from an .npz: the whole set, or ``split="train"``/``"test"`` of Keras's.

    ``layout`` ("auto", "NCHW", "NHWC") settles images that are ambiguous between channels-first
    and channels-last. Every problem with the file raises a DataError naming it.
    """
    name = os.fspath(path)
    arrays, keys, extra = _read(path)
    if keys == KERAS_LAYOUT:
        if split not in ("train", "test"):
            raise DataLayoutError(
                f"{name}: is a Keras-style file with its own train/test split (x_train, y_train, "
                f"x_test, y_test): load both with load_npz_split(path), or one with "
                f"load_npz(path, split='train' or 'test')"
            )
        x, y = f"x_{split}", f"y_{split}"
        ds = _dataset(arrays[x], arrays[y], f"{name} ({x}, {y})", layout, name)
    else:
        if split is not None:
            raise DataLayoutError(
                f"{name}: holds one set ({keys[0]}, {keys[1]}), no {split!r} split; "
                f"load_npz_split(path) splits it 80/20 in file order"
            )
        ds = _dataset(arrays[keys[0]], arrays[keys[1]], name, layout, name)
    ds.notes[:0] = extra
    return ds


def load_npz_split(
    path: PathLike, test_fraction: float = 0.2, *, layout: str = "auto"
) -> tuple[ArrayDataset, ArrayDataset]:
    """(train, test) from an .npz: a Keras-style file's own split, else the last ``test_fraction``.

    A one-set file is split in file order (first 80% train by default), as the CLI always did.
    Both datasets carry the same ``notes``: what was done to the file as a whole.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"load_npz_split: test_fraction must be in (0, 1), got {test_fraction}")
    name = os.fspath(path)
    arrays, keys, extra = _read(path)
    if keys == KERAS_LAYOUT:
        train = _dataset(arrays["x_train"], arrays["y_train"], f"{name} (x_train, y_train)",
                         layout, name, label_notes=False)
        test = _dataset(arrays["x_test"], arrays["y_test"], f"{name} (x_test, y_test)",
                        layout, name, label_notes=False)
        if train.images.shape[1:] != test.images.shape[1:]:
            raise DataLayoutError(
                f"{name}: x_train images are {train.images.shape[1:]} but x_test images are "
                f"{test.images.shape[1:]} (as (C, H, W)); both splits need the same image size"
            )
        notes = extra + [f"Keras-style file: its own split, {len(train)} train (x_train) / "
                         f"{len(test)} test (x_test)"]
        notes += [f"train: {n}" for n in train.notes] + [f"test: {n}" for n in test.notes]
        present = np.union1d(train.classes_present, test.classes_present)
        note = sparse_label_note(max(train.num_classes, test.num_classes), len(present))
        notes += [note] if note else []
    else:
        full = _dataset(arrays[keys[0]], arrays[keys[1]], name, layout, name)
        cut = int(round((1.0 - test_fraction) * len(full)))
        if not 0 < cut < len(full):
            raise DataLayoutError(
                f"{name}: {len(full)} samples are too few to split into train and test"
            )
        train, test = full.subset(slice(None, cut)), full.subset(slice(cut, None))
        notes = extra + full.notes + [
            f"no test split in the file: first {cut} samples train, last {len(full) - cut} test "
            f"(file order)"
        ]
    for ds in (train, test):
        ds.notes = list(notes)
    return train, test


def _dataset(images, labels, name: str, layout: str, path: str,
             label_notes: bool = True) -> ArrayDataset:
    ds = ArrayDataset(images, labels, layout=layout, name=name, _label_notes=label_notes)
    ds.files = [str(Path(path).resolve())]
    return ds


# --- reading the file ----------------------------------------------------------------------------


def _read(path: PathLike) -> tuple[dict[str, np.ndarray], tuple[str, ...], list[str]]:
    """(arrays of the layout found, that layout's keys, notes about ignored arrays)."""
    name = os.fspath(path)
    _check_is_npz(Path(path), name)
    try:
        with read_npz(path) as archive:
            found = sorted(archive.files)
            keys = _pick_layout(found, name)
            arrays = {key: _member(archive, key, name) for key in keys}
    except DataError:
        raise
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, ValueError, KeyError) as exc:
        raise DataFileError(
            f"{name}: damaged .npz archive ({type(exc).__name__}: {exc}); it may be truncated by "
            f"an interrupted download or copy: copy or save it again"
        ) from None
    ignored = sorted(set(found) - set(keys))
    extra = [f"ignored array(s) {ignored} (not part of the layout {_fmt(keys)})"] if ignored else []
    return arrays, keys, extra


def _check_is_npz(path: Path, name: str) -> None:
    """Refuse what np.load would misreport (a folder, an empty file, a .npy, a pickle)."""
    if path.is_dir():
        raise DataFileError(
            f"{name}: is a folder, not an .npz file; pass the .npz file itself ({_SAVE_HINT})"
        )
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(_NPY_MAGIC))
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{name}: no such file") from None
    except OSError as exc:
        raise DataFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    if not head:
        raise DataFileError(f"{name}: is empty (0 bytes), not an .npz archive")
    if head.startswith(_NPY_MAGIC):
        raise DataFileError(
            f"{name}: is a single .npy array, not an .npz archive of images and labels; "
            f"{_SAVE_HINT}"
        )
    if not head.startswith(_ZIP_MAGIC):
        raise DataFileError(
            f"{name}: not an .npz file (an .npz is a zip archive, this file starts with "
            f"{head[:4]!r}); {_SAVE_HINT}"
        )


def _pick_layout(found: list[str], name: str) -> tuple[str, ...]:
    keys = set(found)
    complete = [layout for layout in NPZ_LAYOUTS if set(layout) <= keys]
    if len(complete) > 1:
        raise DataLayoutError(
            f"{name}: holds arrays of more than one layout ({'; '.join(map(_fmt, complete))}); "
            f"keep one. Found {found}"
        )
    if complete:
        return complete[0]
    closest = max(NPZ_LAYOUTS, key=lambda layout: len(keys & set(layout)))  # ties: the first
    missing = [key for key in closest if key not in keys]
    what = f"found {found}" if found else "found no arrays"
    raise DataLayoutError(
        f"{name}: missing array(s) {missing}: {what}. Accepted layouts: {ACCEPTED}"
    )


def _member(archive, key: str, name: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" not in str(exc):
            raise
        raise DataTypeError(
            f"{name}: array {key!r} holds Python objects (dtype=object), which are not loaded "
            f"(allow_pickle=False: unpickling can run code); save plain numeric arrays"
        ) from None


def _fmt(keys: tuple[str, ...]) -> str:
    return " + ".join(f"'{k}'" for k in keys)
