"""Datasets for tapegrad: IDX files, synthetic digits, MNIST/Fashion-MNIST, .npz, a DataLoader.

NumPy only (plus autograd.fileio's atomic write): the data code is tested and used without the engine.
Every problem a user's data can cause raises a :class:`DataError` (a ValueError) that says what
to do; what a loader changed on the way in (a transpose, a label conversion) is listed in words
in the dataset's ``notes``.
"""

from .arrays import MAX_CLASSES, SPARSE_MIN_RANGE, ArrayDataset
from .datasets import (
    FASHION_MNIST_SOURCE,
    MNIST,
    MNIST_SOURCE,
    FashionMNIST,
    IDXSource,
    default_root,
    digests_of,
    download,
    fetch_url,
    load_idx_dataset,
    mnist_split_from_test_set,
)
from .errors import (
    DataError,
    DataFileError,
    DataLayoutError,
    DatasetNotFoundError,
    DataTypeError,
    DataValueError,
)
from .files import describe_file, file_changes
from .idx import IDXFormatError, read_idx, write_idx
from .loader import DataLoader
from .npz import NPZ_LAYOUTS, load_npz, load_npz_split
from .synthetic import GLYPHS, synthetic_digits, synthetic_digits_split

__all__ = [
    "ArrayDataset",
    "DataError",
    "DataFileError",
    "DataLayoutError",
    "DataLoader",
    "DataTypeError",
    "DataValueError",
    "DatasetNotFoundError",
    "FASHION_MNIST_SOURCE",
    "FashionMNIST",
    "GLYPHS",
    "IDXFormatError",
    "IDXSource",
    "MAX_CLASSES",
    "MNIST",
    "MNIST_SOURCE",
    "NPZ_LAYOUTS",
    "SPARSE_MIN_RANGE",
    "default_root",
    "describe_file",
    "digests_of",
    "download",
    "fetch_url",
    "file_changes",
    "load_idx_dataset",
    "load_npz",
    "load_npz_split",
    "mnist_split_from_test_set",
    "read_idx",
    "synthetic_digits",
    "synthetic_digits_split",
    "write_idx",
]
