"""ArrayDataset: images and labels validated once, in the one layout every model takes.

Whatever a user hands in (a file's arrays, or arrays in Python), the model sees images
(N, C, H, W) float32 in [0, 1] and labels (N,) int64 in 0..num_classes-1. What the conversion
did is written, in words, into ``dataset.notes``; what it cannot do safely raises a DataError
that says how to fix the data.

Thresholds (documented in the README's "Your own data"):

- channels-last: a 4-D image array whose last axis is 1, 3 or 4 while axes 1 and 2 are both
  larger, and whose axis 1 is not itself 1, 3 or 4, is read as (N, H, W, C) and transposed.
  When axes 1 and 3 could both be the channels and the channels-first reading is not the only
  plausible one (channels fewer than both spatial sizes), the array is refused as ambiguous.
- labels: more than ``MAX_CLASSES`` (max label + 1 > 10,000) is refused; labels are *sparse*
  when max label + 1 > ``SPARSE_MIN_RANGE`` (20) and fewer than half of 0..max occur: a note.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .errors import DataLayoutError, DataTypeError, DataValueError

#: Refuse labels whose max + 1 exceeds this: a model with that many outputs is never meant, and
#: it almost always means ids (not class numbers) were saved as labels.
MAX_CLASSES = 10_000
#: Labels are "sparse" (a note, not an error) when max + 1 exceeds this and < half of 0..max occur.
SPARSE_MIN_RANGE = 20
#: Channel counts of real images: grey, RGB, RGBA.
CHANNEL_COUNTS = (1, 3, 4)
LAYOUTS = ("auto", "NCHW", "NHWC")

_REMAP = "_, labels = np.unique(labels, return_inverse=True)"


class ArrayDataset:
    """Images (N, C, H, W) float32 in [0, 1] with labels (N,) int64, validated once up front.

    Accepted images: (N, H, W) (a channel axis is added), (N, C, H, W), and channels-last
    (N, H, W, C) with C in 1, 3, 4 (transposed; ``layout="NCHW"``/``"NHWC"`` overrides the
    guess). uint8 images are scaled by 1/255, float images must lie in [0, 1]. Labels: (N,) or
    (N, 1) integers >= 0, or floats holding whole numbers. ``ds[i]`` and ``ds[index_array]``
    return ``(images, labels)``.

    Attributes beyond the arrays: ``notes`` (what the conversion did, in words; empty when
    nothing), ``num_classes`` (max label + 1), ``classes_present`` (the distinct labels, sorted),
    ``sparse_labels`` (see the module docstring) and ``files`` (paths it was read from, if any).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        layout: str = "auto",
        name: str = "ArrayDataset",
        _label_notes: bool = True,
    ) -> None:
        notes: list[str] = []
        images = _as_float_nchw(np.asarray(images), layout, name, notes)
        labels = _as_labels(np.asarray(labels), name, notes)
        if len(images) != len(labels):
            raise DataLayoutError(
                f"{name}: {len(images)} images but {len(labels)} labels; they must match"
            )
        self.images: np.ndarray = images
        self.labels: np.ndarray = labels
        self.notes: list[str] = notes
        self.files: list[str] = []
        self._count_classes()
        if _label_notes:
            note = sparse_label_note(self.num_classes, len(self.classes_present))
            if note:
                self.notes.append(note)

    def _count_classes(self) -> None:
        self.num_classes: int = int(self.labels.max()) + 1 if self.labels.size else 0
        counts = np.bincount(self.labels, minlength=self.num_classes)
        self.classes_present: np.ndarray = np.flatnonzero(counts)
        self.sparse_labels: bool = is_sparse(self.num_classes, len(self.classes_present))

    def subset(self, index) -> "ArrayDataset":
        """The samples ``index`` selects (a slice or index array), keeping ``notes`` and ``files``.

        No re-validation: the arrays were checked once. ``num_classes`` and ``classes_present``
        are counted on the subset's own labels.
        """
        sub = object.__new__(ArrayDataset)
        sub.images, sub.labels = self.images[index], self.labels[index]
        sub.notes, sub.files = list(self.notes), list(self.files)
        sub._count_classes()
        return sub

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"ArrayDataset(n={len(self)}, image_shape={self.images.shape[1:]})"


def is_sparse(num_classes: int, present: int) -> bool:
    """True when a model sized ``num_classes`` would have most of its outputs for absent labels."""
    return num_classes > SPARSE_MIN_RANGE and present < num_classes / 2


def sparse_label_note(num_classes: int, present: int) -> Optional[str]:
    """The note for sparse labels (``None`` when they are not), shared by every loader."""
    if not is_sparse(num_classes, present):
        return None
    return (
        f"labels are sparse: {present} distinct values in 0..{num_classes - 1}, so the model gets "
        f"{num_classes} outputs, {num_classes - present} of them for labels that never occur; "
        f"remap them to 0..{present - 1} with `{_REMAP}`"
    )


# --- images --------------------------------------------------------------------------------------


def _as_float_nchw(images: np.ndarray, layout: str, name: str, notes: list[str]) -> np.ndarray:
    if layout not in LAYOUTS:
        raise ValueError(f"ArrayDataset: layout must be one of {LAYOUTS}, got {layout!r}")
    if images.ndim == 3:
        images = images[:, None, :, :]
    elif images.ndim == 4:
        if layout == "auto":
            layout = _guess_layout(images.shape, name)
        if layout == "NHWC":
            before = images.shape
            images = images.transpose(0, 3, 1, 2)
            notes.append(f"images {before} look channels-last; transposed to {images.shape}")
    else:
        raise DataLayoutError(
            f"{name}: images must be (N, H, W), (N, C, H, W) or (N, H, W, C), "
            f"got shape {images.shape}"
        )
    if images.dtype == np.uint8:
        images = images.astype(np.float32, order="C")
        images /= np.float32(255.0)
    elif images.dtype.kind == "f":
        images = np.ascontiguousarray(images, dtype=np.float32)
        _check_unit_range(images, name)
    else:
        raise DataTypeError(
            f"{name}: images must be uint8 or floating point (uint8 0-255, float in [0, 1]), "
            f"got {images.dtype}; if the values are 0-255 pixels, save x.astype(np.uint8)"
        )
    return images


def _guess_layout(shape: tuple[int, ...], name: str) -> str:
    """"NCHW" or "NHWC" for a 4-D shape, or a DataLayoutError when both readings are plausible."""
    _, a1, a2, a3 = shape
    first_like, last_like = a1 in CHANNEL_COUNTS, a3 in CHANNEL_COUNTS
    if last_like and not first_like and a1 > a3 and a2 > a3:
        return "NHWC"
    if first_like and last_like and not (a2 > a1 and a3 > a1):
        raise DataLayoutError(
            f"{name}: images {shape} are ambiguous: axis 1 ({a1}) and axis 3 ({a3}) could each "
            f"be the colour channels; save them as (N, C, H, W) (np.transpose(x, (0, 3, 1, 2)) "
            f"turns (N, H, W, C) into that), or in Python pass layout='NCHW' or 'NHWC'"
        )
    return "NCHW"


def _check_unit_range(images: np.ndarray, name: str) -> None:
    if not images.size:
        return
    lo, hi = images.min(), images.max()  # NaN propagates through min/max: one pass finds both
    if not (np.isfinite(lo) and np.isfinite(hi)):
        bad = ~np.isfinite(images.reshape(len(images), -1)).all(axis=1)
        which = np.flatnonzero(bad)
        raise DataValueError(
            f"{name}: images contain NaN or infinite values in {len(which)} sample(s), "
            f"first at index {which[0]}; remove or repair those samples"
        )
    if lo < 0.0 or hi > 1.0:
        hint = "; if they are 0-255 pixel values, divide by 255" if hi <= 255.0 and lo >= 0 else ""
        raise DataValueError(
            f"{name}: float images must lie in [0, 1], got range [{lo}, {hi}]{hint}"
        )


# --- labels --------------------------------------------------------------------------------------


def _as_labels(labels: np.ndarray, name: str, notes: list[str]) -> np.ndarray:
    if labels.ndim == 2 and labels.shape[1] == 1:
        notes.append(f"labels {labels.shape} flattened to ({len(labels)},)")
        labels = labels[:, 0]
    if labels.ndim == 2:
        raise DataLayoutError(
            f"{name}: labels must be (N,) class numbers, got shape {labels.shape}; if the rows "
            f"are one-hot, save np.argmax(labels, axis=1)"
        )
    if labels.ndim != 1:
        raise DataLayoutError(
            f"{name}: labels must be a 1-D integer array, got shape {labels.shape}"
        )
    if labels.dtype.kind == "f":
        _check_whole(labels, name)
    elif labels.dtype.kind not in "iu":
        raise DataTypeError(
            f"{name}: labels must be a 1-D integer array, got shape {labels.shape} "
            f"dtype {labels.dtype}"
        )
    if labels.size:  # range checks on the stored values, before any conversion can overflow
        lo, hi = labels.min(), labels.max()
        show = (lambda v: f"{v:g}") if labels.dtype.kind == "f" else (lambda v: str(int(v)))
        if lo < 0:
            raise DataValueError(
                f"{name}: labels must be >= 0, found {show(lo)} at index {int(np.argmin(labels))}; "
                f"class labels are 0..K-1 (remap with `{_REMAP}`)"
            )
        if hi >= MAX_CLASSES:
            present = len(np.unique(labels))
            raise DataValueError(
                f"{name}: labels go up to {show(hi)}, which would build a {int(hi) + 1}-class model "
                f"(more than {MAX_CLASSES:,} classes is refused); only {present} distinct labels "
                f"occur: remap them to 0..{present - 1} with `{_REMAP}` and save again"
            )
    if labels.dtype.kind == "f":
        notes.append(f"labels stored as {labels.dtype} are whole numbers; converted to int64")
    return labels.astype(np.int64, copy=False)


def _check_whole(labels: np.ndarray, name: str) -> None:
    finite = np.isfinite(labels)
    if not finite.all():
        i = int(np.argmin(finite))
        raise DataValueError(f"{name}: labels contain NaN or infinity (first at index {i})")
    fractional = labels != np.round(labels)
    if fractional.any():
        i = int(np.argmax(fractional))
        raise DataTypeError(
            f"{name}: labels must be whole numbers (class 0, 1, 2...), got {labels.dtype} with "
            f"{labels[i]:g} at index {i}"
        )
