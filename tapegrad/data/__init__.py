"""Datasets for tapegrad: IDX files, synthetic digits, MNIST/Fashion-MNIST, and a DataLoader.

Pure NumPy: nothing here imports the autograd engine, so data code can be tested and used alone.
"""

from .datasets import (
    FASHION_MNIST_SOURCE,
    MNIST,
    MNIST_SOURCE,
    ArrayDataset,
    DatasetNotFoundError,
    FashionMNIST,
    IDXSource,
    default_root,
    download,
    fetch_url,
    load_idx_dataset,
    load_npz,
    mnist_split_from_test_set,
)
from .idx import IDXFormatError, read_idx, write_idx
from .loader import DataLoader
from .synthetic import GLYPHS, synthetic_digits, synthetic_digits_split

__all__ = [
    "ArrayDataset",
    "DataLoader",
    "DatasetNotFoundError",
    "FASHION_MNIST_SOURCE",
    "FashionMNIST",
    "GLYPHS",
    "IDXFormatError",
    "IDXSource",
    "MNIST",
    "MNIST_SOURCE",
    "default_root",
    "download",
    "fetch_url",
    "load_idx_dataset",
    "load_npz",
    "mnist_split_from_test_set",
    "read_idx",
    "synthetic_digits",
    "synthetic_digits_split",
    "write_idx",
]
