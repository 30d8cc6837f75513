"""MNIST / Fashion-MNIST from IDX files: found on disk, else downloaded and checksummed.

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
from typing import Callable, Mapping, Optional, Sequence, Union

from .arrays import ArrayDataset
from .errors import DataLayoutError, DatasetNotFoundError  # DatasetNotFoundError used to live here
from .idx import PathLike, atomic_write_bytes, read_idx

Fetch = Callable[[str, float], bytes]
#: One file's published digests: ``{"sha256": hex, "md5": hex}`` (any non-empty subset), or the
#: older ``("md5", hex)`` pair. Every digest given must match.
Checksum = Union[Mapping[str, str], tuple[str, str]]

# ---------------------------------------------------------------------------------------------
# MNIST-style IDX datasets: find locally, else download with checksum verification.


@dataclass(frozen=True)
class IDXSource:
    """Where one IDX dataset lives: mirrors, published checksums, system folders to search."""

    name: str
    mirrors: tuple[str, ...]
    checksums: Mapping[str, Checksum]  # "<file>.gz" -> {"sha256": hex, "md5": hex}
    system_dirs: tuple[str, ...] = ()


# Published digests of the original .gz files: a download must match both. The sha256s are the
# values other projects verify these downloads with (the same digests in several independent
# sources); the md5s are the ones published beside the files. Local copies (Debian's
# dataset-fashion-mnist, shared/data/mnist) are recompressed, so they are checked structurally by
# read_idx instead: their bytes match neither digest.
MNIST_SOURCE = IDXSource(
    name="mnist",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    checksums={
        "train-images-idx3-ubyte.gz": {"sha256": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                                       "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873"},
        "train-labels-idx1-ubyte.gz": {"sha256": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                                       "md5": "d53e105ee54ea40749a09fcbcd1e9432"},
        "t10k-images-idx3-ubyte.gz": {"sha256": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                                       "md5": "9fb629c4189551a2d022fa330f9573f3"},
        "t10k-labels-idx1-ubyte.gz": {"sha256": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                                       "md5": "ec29112dd5afa0611ce80d1b7f02629c"},
    },
)

FASHION_MNIST_SOURCE = IDXSource(
    name="fashion-mnist",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    checksums={
        "train-images-idx3-ubyte.gz": {"sha256": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
                                       "md5": "8d4fb7e6c68d591d4c3dfef9ec88bf0d"},
        "train-labels-idx1-ubyte.gz": {"sha256": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
                                       "md5": "25c81989df183df01b3e8a0aad5dffbe"},
        "t10k-images-idx3-ubyte.gz": {"sha256": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
                                       "md5": "bef4ecab320f06d8554ea6380940ec79"},
        "t10k-labels-idx1-ubyte.gz": {"sha256": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
                                       "md5": "bb300cfdad3c16e7a12a480ee83cd310"},
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


# Strongest first: the order digests are checked and reported in.
_PREFERRED = ("sha512", "sha384", "sha256", "sha1", "md5")


def digests_of(checksum: Checksum) -> dict[str, str]:
    """``{algorithm: lowercase hex}`` of a checksum, strongest first; rejects unknown algorithms."""
    pairs = dict([checksum]) if isinstance(checksum, tuple) else dict(checksum)
    if not pairs:
        raise ValueError("download: no checksum given; a download is kept only when it verifies")
    unknown = sorted(a for a in pairs if a not in hashlib.algorithms_available)
    if unknown:
        raise ValueError(f"download: unknown hash algorithm(s) {unknown}")
    rank = {a: i for i, a in enumerate(_PREFERRED)}
    return {a: pairs[a].lower() for a in sorted(pairs, key=lambda a: rank.get(a, len(rank)))}


def download(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: PathLike,
    checksum: Checksum,
    fetch: Fetch = fetch_url,
    timeout: float = 30.0,
) -> Path:
    """Fetch ``filename`` from the first mirror that serves it with the right checksum(s).

    ``checksum`` is ``{"sha256": hex, ...}`` or an ``(algorithm, hex)`` pair; every digest given
    must match. The file is written atomically into ``dest_dir`` only after that, so a failed or
    tampered download never leaves a file that a later run would trust. Raises
    DatasetNotFoundError listing every URL tried and why it failed.
    """
    expected = digests_of(checksum)
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            data = fetch(url, timeout)
        except Exception as exc:  # network, HTTP, file and timeout errors all mean "try the next"
            failures.append(f"{url}: {type(exc).__name__}: {exc}")
            continue
        wrong = [
            f"{algorithm} {digest}, expected {want}"
            for algorithm, want in expected.items()
            if (digest := hashlib.new(algorithm, data).hexdigest()) != want
        ]
        if wrong:
            failures.append(f"{url}: checksum mismatch: " + "; ".join(wrong))
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
            " or pass --data-dir <folder holding them> (root= in Python)."
        )
    return _idx_dataset(paths[0], paths[1])


def _idx_dataset(images_path: Path, labels_path: Path) -> ArrayDataset:
    name = f"{images_path.parent}/{{{images_path.name}, {labels_path.name}}}"
    ds = ArrayDataset(read_idx(images_path), read_idx(labels_path), name=name)
    ds.files = [str(images_path), str(labels_path)]
    return ds


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
            f"(gzipped or not) there; pass --data-dir <folder holding them> (root= in Python)"
            f" or set TAPEGRAD_MNIST_DIR"
        )
    if n_train < 1:
        raise ValueError(f"mnist_split_from_test_set: n_train must be >= 1, got {n_train}")
    full = _idx_dataset(paths[0], paths[1])
    if n_train >= len(full):
        raise DataLayoutError(
            f"mnist test set in {folder} holds {len(full)} samples: too few to keep the first "
            f"{n_train} for training and test on the rest (the full set has 10,000)"
        )
    return full.subset(slice(None, n_train)), full.subset(slice(n_train, None))
