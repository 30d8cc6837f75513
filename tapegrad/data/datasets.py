"""In-memory datasets: arrays, .npz files, and MNIST / Fashion-MNIST from IDX files.

The MNIST-style loaders look for the files locally first (the given root or the cache, then
system places such as Debian's ``dataset-fashion-mnist`` package) and only then download them,
checking each file against its published checksum before it is kept. Local files are not
checksummed: distributions recompress them, so they are validated structurally by ``read_idx``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from .idx import PathLike, atomic_write_bytes, read_idx

Fetch = Callable[[str, float], bytes]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is neither on disk nor downloadable; the message says where to put its files."""


class ArrayDataset:
    """Images (N, C, H, W) float32 in [0, 1] with labels (N,) int64, validated once up front.

    uint8 images are scaled by 1/255 and (N, H, W) images get a channel axis, so every loader
    hands the model the same layout. ``ds[i]`` and ``ds[index_array]`` return ``(images, labels)``.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim == 3:
            images = images[:, None, :, :]
        if images.ndim != 4:
            raise ValueError(
                f"ArrayDataset: images must be (N, H, W) or (N, C, H, W), got shape {images.shape}"
            )
        if images.dtype == np.uint8:
            images = images.astype(np.float32) / np.float32(255.0)
        elif images.dtype.kind == "f":
            images = images.astype(np.float32, copy=False)
            if images.size and not (images.min() >= 0.0 and images.max() <= 1.0):
                raise ValueError(
                    f"ArrayDataset: float images must lie in [0, 1], got range "
                    f"[{images.min()}, {images.max()}] (NaN counts as out of range)"
                )
        else:
            raise TypeError(
                f"ArrayDataset: images must be uint8 or floating point, got {images.dtype}"
            )
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise TypeError(
                f"ArrayDataset: labels must be a 1-D integer array, got shape {labels.shape} "
                f"dtype {labels.dtype}"
            )
        if len(images) != len(labels):
            raise ValueError(
                f"ArrayDataset: {len(images)} images but {len(labels)} labels; they must match"
            )
        if labels.size and labels.min() < 0:
            raise ValueError(f"ArrayDataset: labels must be >= 0, found {labels.min()}")
        self.images: np.ndarray = images
        self.labels: np.ndarray = labels.astype(np.int64, copy=False)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> tuple[np.ndarray, np.ndarray]:
        return self.images[index], self.labels[index]

    def __repr__(self) -> str:
        return f"ArrayDataset(n={len(self)}, image_shape={self.images.shape[1:]})"


def load_npz(path: PathLike) -> ArrayDataset:
    """Load an ArrayDataset from an .npz with arrays ``images``/``labels`` (or ``x``/``y``)."""
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        for image_key, label_key in (("images", "labels"), ("x", "y")):
            if {image_key, label_key} <= keys:
                return ArrayDataset(archive[image_key], archive[label_key])
    missing = sorted({"images", "labels"} - keys)
    raise ValueError(
        f"{os.fspath(path)}: missing array(s) {missing}: expected 'images' and 'labels' "
        f"(or 'x' and 'y'), found {sorted(keys)}"
    )


# ---------------------------------------------------------------------------------------------
# MNIST-style IDX datasets: find locally, else download with checksum verification.


@dataclass(frozen=True)
class IDXSource:
    """Where one IDX dataset lives: mirrors, published checksums, system folders to search."""

    name: str
    mirrors: tuple[str, ...]
    checksums: Mapping[str, tuple[str, str]]  # "<file>.gz" -> (hash algorithm, hex digest)
    system_dirs: tuple[str, ...] = ()


MNIST_SOURCE = IDXSource(
    name="mnist",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    checksums={
        "train-images-idx3-ubyte.gz": ("md5", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        "train-labels-idx1-ubyte.gz": ("md5", "d53e105ee54ea40749a09fcbcd1e9432"),
        "t10k-images-idx3-ubyte.gz": ("md5", "9fb629c4189551a2d022fa330f9573f3"),
        "t10k-labels-idx1-ubyte.gz": ("md5", "ec29112dd5afa0611ce80d1b7f02629c"),
    },
)

FASHION_MNIST_SOURCE = IDXSource(
    name="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    checksums={
        "train-images-idx3-ubyte.gz": ("md5", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        "train-labels-idx1-ubyte.gz": ("md5", "25c81989df183df01b3e8a0aad5dffbe"),
        "t10k-images-idx3-ubyte.gz": ("md5", "bef4ecab320f06d8554ea6380940ec79"),
        "t10k-labels-idx1-ubyte.gz": ("md5", "bb300cfdad3c16e7a12a480ee83cd310"),
    },
    system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian: dataset-fashion-mnist
)


def fetch_url(url: str, timeout: float = 30.0) -> bytes:
    """Download ``url`` (http, https or file) and return its bytes; the default ``fetch``."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def default_root(name: str) -> Path:
    """The download folder used when no root is given: ``$XDG_CACHE_HOME/tapegrad/<name>``."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "tapegrad" / name


def download(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: PathLike,
    checksum: tuple[str, str],
    fetch: Fetch = fetch_url,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``filename`` from the first mirror that serves it with the right checksum.

    The file is written atomically into ``dest_dir`` only after its checksum matches, so a
    failed or tampered download never leaves a file that a later run would trust. Raises
    DatasetNotFoundError listing every URL tried and why it failed.
    """
    algorithm, expected = checksum
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            data = fetch(url, timeout)
        except Exception as exc:  # network, HTTP, file and timeout errors all mean "try the next"
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
            continue
        digest = hashlib.new(algorithm, data).hexdigest()
        if digest != expected.lower():
            failures.append(f"{url}: checksum mismatch: {algorithm} {digest}, expected {expected}")
            continue
        target = Path(dest_dir) / filename
        atomic_write_bytes(target, data)
        return target
    raise DatasetNotFoundError(f"could not download {filename}:\n  " + "\n  ".join(failures))


def _find(base: str, dirs: Sequence[Path]) -> Optional[Path]:
    """First existing ``base.gz`` or ``base`` in ``dirs`` (both forms occur in the wild)."""
    for folder in dirs:
        for candidate in (folder / f"{base}.gz", folder / base):
            if candidate.is_file():
                return candidate
    return None


def _split_files(train: bool) -> tuple[str, str]:
    prefix = "train" if train else "t10k"
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def load_idx_dataset(
    source: IDXSource,
    root: Optional[PathLike] = None,
    train: bool = True,
    download_missing: bool = True,
    fetch: Fetch = fetch_url,
    timeout: float = 30.0,
) -> ArrayDataset:
    """Load one split: from ``root`` (or the cache), then system dirs, then a download."""
    dest = Path(root).expanduser() if root is not None else default_root(source.name)
    searched = [dest] + [Path(d) for d in source.system_dirs]
    paths, problems = [], []
    for base in _split_files(train):
        found = _find(base, searched)
        if found is None and download_missing:
            try:
                found = download(base + ".gz", source.mirrors, dest, source.checksums[base + ".gz"],
                                 fetch, timeout)
            except DatasetNotFoundError as exc:
                problems.append(str(exc))
        elif found is None:
            problems.append(f"{base}.gz: not found, and download=False")
        paths.append(found)
    if problems:
        places = "\n  ".join(str(p) for p in searched)
        wanted = ", ".join(f"{b}.gz" for b in _split_files(train))
        raise DatasetNotFoundError(
            f"{source.name} ({'train' if train else 'test'} split) not found.\n"
            f"Searched (for NAME.gz or NAME):\n  {places}\n"
            + "\n".join(problems)
            + f"\nTo fix: put {wanted} (gzipped or not) into {dest},"
            " or pass root=<folder holding them>."
        )
    return ArrayDataset(read_idx(paths[0]), read_idx(paths[1]))


def MNIST(
    root: Optional[PathLike] = None, train: bool = True, download: bool = True,
    fetch: Fetch = fetch_url, timeout: float = 30.0,
) -> ArrayDataset:
    """MNIST digits (60k train / 10k test, 28x28), from disk or the canonical mirrors."""
    return load_idx_dataset(MNIST_SOURCE, root, train, download, fetch, timeout)


def FashionMNIST(
    root: Optional[PathLike] = None, train: bool = True, download: bool = True,
    fetch: Fetch = fetch_url, timeout: float = 30.0,
) -> ArrayDataset:
    """Fashion-MNIST (60k/10k, 28x28): root, /usr/share/datasets/fashion-mnist, then download."""
    return load_idx_dataset(FASHION_MNIST_SOURCE, root, train, download, fetch, timeout)


def mnist_split_from_test_set(
    root: PathLike, n_train: int = 8000
) -> tuple[ArrayDataset, ArrayDataset]:
    """Split MNIST's 10k t10k files in ``root`` into (first 8000 = train, last 2000 = test).

    For the real-digit benchmark when only the official test set is at hand; never downloads.
    """
    folder = Path(root).expanduser()
    images_base, labels_base = _split_files(train=False)
    paths = [_find(images_base, [folder]), _find(labels_base, [folder])]
    if None in paths:
        raise DatasetNotFoundError(
            f"mnist test set not found in {folder}: need {images_base}.gz and {labels_base}.gz "
            f"(gzipped or not) there"
        )
    full = ArrayDataset(read_idx(paths[0]), read_idx(paths[1]))
    if not 0 < n_train < len(full):
        raise ValueError(
            f"mnist_split_from_test_set: n_train={n_train} must be in 1..{len(full) - 1}"
        )
    return (
        ArrayDataset(full.images[:n_train], full.labels[:n_train]),
        ArrayDataset(full.images[n_train:], full.labels[n_train:]),
    )
