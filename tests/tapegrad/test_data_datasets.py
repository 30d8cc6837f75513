"""ArrayDataset, .npz loading, IDX dataset lookup + checksummed download, and the real data sets."""

import hashlib
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tapegrad.data import (
    FASHION_MNIST_SOURCE,
    MNIST,
    MNIST_SOURCE,
    ArrayDataset,
    DatasetNotFoundError,
    FashionMNIST,
    IDXSource,
    digests_of,
    download,
    load_idx_dataset,
    load_npz,
    mnist_split_from_test_set,
    write_idx,
)

REPO_MNIST_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _mnist_dir() -> Path:
    return Path(os.environ.get("TAPEGRAD_MNIST_DIR") or REPO_MNIST_DIR)


def _fake_split(n=12, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


# --- ArrayDataset ------------------------------------------------------------------------------


def test_array_dataset_scales_uint8_and_adds_channel():
    images, labels = _fake_split()
    ds = ArrayDataset(images, labels)
    assert len(ds) == 12
    assert ds.images.shape == (12, 1, 28, 28) and ds.images.dtype == np.float32
    assert ds.labels.dtype == np.int64
    np.testing.assert_allclose(ds.images[:, 0], images / 255.0, rtol=1e-6)
    x, y = ds[np.array([3, 1])]
    assert x.shape == (2, 1, 28, 28) and list(y) == [labels[3], labels[1]]


def test_array_dataset_keeps_float_images():
    ds = ArrayDataset(np.full((2, 1, 4, 4), 0.5, dtype=np.float64), np.array([0, 1]))
    assert ds.images.dtype == np.float32 and ds.images.shape == (2, 1, 4, 4)


@pytest.mark.parametrize(
    "images, labels, error, match",
    [
        (np.zeros((3, 1, 4, 4)), np.zeros(2, np.int64), ValueError, "3 images but 2 labels"),
        (np.zeros((3, 4), np.float32), np.zeros(3, np.int64), ValueError, r"got shape \(3, 4\)"),
        (np.full((1, 1, 2, 2), 2.0), np.zeros(1, np.int64), ValueError, r"must lie in \[0, 1\]"),
        (np.zeros((1, 1, 2, 2), np.int32), np.zeros(1, np.int64), TypeError, "uint8 or floating"),
        (np.zeros((1, 1, 2, 2)), np.full(1, 0.5, np.float32), TypeError, "must be whole numbers"),
        (np.zeros((1, 1, 2, 2)), np.zeros(1, bool), TypeError, "1-D integer array"),
        (np.zeros((1, 1, 2, 2)), np.array([-1]), ValueError, "labels must be >= 0"),
    ],
)
def test_array_dataset_errors(images, labels, error, match):
    with pytest.raises(error, match=match):
        ArrayDataset(images, labels)


# --- load_npz ----------------------------------------------------------------------------------


@pytest.mark.parametrize("keys", [("images", "labels"), ("x", "y")])
def test_load_npz_both_key_conventions(tmp_path, keys):
    images, labels = _fake_split()
    np.savez(tmp_path / "d.npz", **{keys[0]: images, keys[1]: labels})
    ds = load_npz(tmp_path / "d.npz")
    assert ds.images.shape == (12, 1, 28, 28) and ds.images.max() <= 1.0
    np.testing.assert_array_equal(ds.labels, labels)


def test_load_npz_names_missing_keys(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 3, 3), np.uint8), targets=np.zeros(2))
    with pytest.raises(ValueError) as info:
        load_npz(tmp_path / "d.npz")
    msg = str(info.value)
    assert "d.npz" in msg and "missing array(s) ['labels']" in msg and "'images', 'targets'" in msg


def test_load_npz_refuses_pickles(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.array([{"a": 1}], dtype=object), labels=np.zeros(1))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(tmp_path / "d.npz")


# --- local lookup ------------------------------------------------------------------------------


def _write_split(folder: Path, train: bool, gz: bool, n=12, seed=0):
    images, labels = _fake_split(n, seed)
    prefix = "train" if train else "t10k"
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_mnist_from_root_gz_or_raw_without_network(tmp_path, gz, train):
    images, labels = _write_split(tmp_path, train, gz)

    def no_network(url, timeout):
        raise AssertionError(f"should not download {url}")

    ds = MNIST(root=tmp_path, train=train, fetch=no_network)
    np.testing.assert_array_equal(ds.labels, labels)
    np.testing.assert_allclose(ds.images[:, 0] * 255, images, atol=1e-3)


def test_system_dir_is_searched_after_root(tmp_path):
    system, root = tmp_path / "system", tmp_path / "root"
    _, labels = _write_split(system, train=False, gz=False, seed=1)
    source = IDXSource("fake", ("file:///nowhere/",), {}, system_dirs=(str(system),))
    ds = load_idx_dataset(source, root=root, train=False, download_missing=False)
    np.testing.assert_array_equal(ds.labels, labels)
    _, root_labels = _write_split(root, train=False, gz=True, seed=2)  # root wins once present
    ds = load_idx_dataset(source, root=root, train=False, download_missing=False)
    np.testing.assert_array_equal(ds.labels, root_labels)


def test_default_root_is_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    _, labels = _write_split(tmp_path / "tapegrad" / "mnist", train=True, gz=True)
    np.testing.assert_array_equal(MNIST(train=True, download=False).labels, labels)


def test_download_false_says_where_to_put_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=tmp_path / "m", train=False, download=False)
    msg = str(info.value)
    assert str(tmp_path / "m") in msg and "download=False" in msg
    assert "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz" in msg


# --- download ----------------------------------------------------------------------------------


def _local_source(tmp_path, mirror_dirs, checksums, algorithm="md5"):
    mirrors = tuple(Path(d).as_uri() + "/" for d in mirror_dirs)
    return IDXSource("fake", mirrors, {k: (algorithm, v) for k, v in checksums.items()})


@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_download_success_via_file_urls_and_real_urllib(tmp_path, algorithm):
    mirror = tmp_path / "mirror"
    images, labels = _write_split(mirror, train=True, gz=True)
    sums = {p.name: hashlib.new(algorithm, p.read_bytes()).hexdigest() for p in mirror.iterdir()}
    source = _local_source(tmp_path, [tmp_path / "dead-mirror", mirror], sums, algorithm)
    root = tmp_path / "root"
    ds = load_idx_dataset(source, root=root, train=True)  # default fetch: urllib on file:// URLs
    np.testing.assert_array_equal(ds.labels, labels)
    assert sorted(os.listdir(root)) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    # second load finds the downloaded files and does not fetch again
    ds2 = load_idx_dataset(source, root=root, train=True, fetch=lambda url, timeout: 1 / 0)
    np.testing.assert_array_equal(ds2.labels, labels)


def test_checksum_mismatch_keeps_no_file_and_tries_next_mirror(tmp_path):
    good = b"the real bytes"
    served = {"http://bad/f.gz": b"tampered bytes", "http://good/f.gz": good}
    calls = []

    def fetch(url, timeout):
        calls.append((url, timeout))
        return served[url]

    digest = hashlib.md5(good).hexdigest()
    path = download("f.gz", ["http://bad/", "http://good"], tmp_path, ("md5", digest), fetch, 7.0)
    assert path == tmp_path / "f.gz" and path.read_bytes() == good
    assert calls == [("http://bad/f.gz", 7.0), ("http://good/f.gz", 7.0)]

    other = tmp_path / "other"
    with pytest.raises(DatasetNotFoundError) as info:
        download("f.gz", ["http://bad/"], other, ("md5", digest), fetch)
    msg = str(info.value)
    bad_digest = hashlib.md5(served["http://bad/f.gz"]).hexdigest()
    assert f"http://bad/f.gz: checksum mismatch: md5 {bad_digest}, expected {digest}" in msg
    assert not other.exists() or os.listdir(other) == []


def test_checksum_mismatch_through_the_mnist_loader(tmp_path):
    def fetch(url, timeout):
        return b"not mnist"

    with pytest.raises(DatasetNotFoundError, match="checksum mismatch: sha256 [0-9a-f]{64}, expected 8d422c7b[0-9a-f]{56}; md5"):
        MNIST(root=tmp_path, train=False, fetch=fetch)
    assert os.listdir(tmp_path) == []


def test_no_network_message_lists_places_urls_and_destination(tmp_path):
    def offline(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    root = tmp_path / "mnist-root"
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=root, train=True, fetch=offline)
    msg = str(info.value)
    assert "Searched" in msg and str(root) in msg
    for mirror in MNIST_SOURCE.mirrors:
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
            assert f"{mirror}{name}: URLError" in msg
    wanted = "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz"
    assert msg.endswith(f"To fix: put {wanted} (gzipped or not) into {root}, "
                        "or pass --data-dir <folder holding them> (root= in Python).")
    assert not root.exists()  # nothing half-made left behind


def test_fashion_message_mentions_system_dir(tmp_path):
    source = IDXSource("f", FASHION_MNIST_SOURCE.mirrors, FASHION_MNIST_SOURCE.checksums,
                       system_dirs=(str(tmp_path / "usr-share"),))
    with pytest.raises(DatasetNotFoundError) as info:
        load_idx_dataset(source, root=tmp_path / "r", train=False, fetch=lambda u, t: 1 / 0)
    msg = str(info.value)
    assert str(tmp_path / "usr-share") in msg
    assert "fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz" in msg


def test_default_fetch_failure_is_reported(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="URLError"):
        download("x.gz", [(tmp_path / "missing").as_uri()], tmp_path / "d", ("md5", "0" * 32))


def _gz_split_bytes(tmp_path):
    """The four bytes of a fake t10k split as a mirror would serve them, and their sha256s."""
    mirror = tmp_path / "made"
    _write_split(mirror, train=False, gz=True, seed=3)
    served = {p.name: p.read_bytes() for p in mirror.iterdir()}
    return served, {name: hashlib.sha256(data).hexdigest() for name, data in served.items()}


def test_sha256_download_keeps_a_good_file(tmp_path):
    served, sha = _gz_split_bytes(tmp_path)
    name = "t10k-labels-idx1-ubyte.gz"
    fetched = []

    def fetch(url, timeout):
        fetched.append(url)
        return served[url.rsplit("/", 1)[1]]

    path = download(name, ["https://mirror.test/d/"], tmp_path / "dest", {"sha256": sha[name]}, fetch)
    assert path.read_bytes() == served[name] and os.listdir(tmp_path / "dest") == [name]
    assert fetched == [f"https://mirror.test/d/{name}"]


def test_sha256_mismatch_is_rejected_and_leaves_nothing(tmp_path):
    served, sha = _gz_split_bytes(tmp_path)
    name = "t10k-labels-idx1-ubyte.gz"
    tampered = served[name][:-1] + bytes([served[name][-1] ^ 1])
    wrong = hashlib.sha256(tampered).hexdigest()
    # md5 of the tampered bytes is given as "right": every digest must match, sha256 decides here
    checksum = {"md5": hashlib.md5(tampered).hexdigest(), "sha256": sha[name]}
    dest = tmp_path / "dest"
    with pytest.raises(DatasetNotFoundError) as info:
        download(name, ["https://mirror.test/"], dest, checksum, lambda url, timeout: tampered)
    assert str(info.value) == (
        f"could not download {name}:\n  https://mirror.test/{name}: checksum mismatch: "
        f"sha256 {wrong}, expected {sha[name]}"
    )
    assert not dest.exists() or os.listdir(dest) == []


def test_idx_source_with_sha256_through_the_loader(tmp_path):
    served, sha = _gz_split_bytes(tmp_path)
    source = IDXSource("fake", ("https://mirror.test/",), {k: {"sha256": v} for k, v in sha.items()})
    ds = load_idx_dataset(source, root=tmp_path / "root", train=False,
                          fetch=lambda url, timeout: served[url.rsplit("/", 1)[1]])
    assert len(ds) == 12 and ds.notes == []
    assert sorted(ds.files) == sorted(str(tmp_path / "root" / n) for n in served)
    bad = IDXSource("fake", ("https://mirror.test/",), {k: {"sha256": "0" * 64} for k in sha})
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch: sha256"):
        load_idx_dataset(bad, root=tmp_path / "other", train=False,
                         fetch=lambda url, timeout: served[url.rsplit("/", 1)[1]])
    assert not (tmp_path / "other").exists() or os.listdir(tmp_path / "other") == []


def test_digests_of_orders_strongest_first_and_checks_names():
    assert list(digests_of({"md5": "AB", "sha256": "CD"}).items()) == [("sha256", "cd"), ("md5", "ab")]
    assert digests_of(("md5", "Ab")) == {"md5": "ab"}
    with pytest.raises(ValueError, match=r"unknown hash algorithm\(s\) \['crc99'\]"):
        digests_of({"crc99": "00"})
    with pytest.raises(ValueError, match="no checksum given"):
        digests_of({})


def test_published_checksums_are_well_formed():
    for source in (MNIST_SOURCE, FASHION_MNIST_SOURCE):
        assert sorted(source.checksums) == sorted(
            f"{p}-{k}-idx{n}-ubyte.gz"
            for p in ("train", "t10k")
            for k, n in (("images", 3), ("labels", 1))
        )
        for checksum in source.checksums.values():
            digests = digests_of(checksum)
            assert "md5" in digests  # sha256 is added only once checked against the published bytes
            for algorithm, digest in digests.items():
                assert len(digest) == hashlib.new(algorithm).digest_size * 2 and int(digest, 16) >= 0


# --- mnist_split_from_test_set -----------------------------------------------------------------


def test_split_from_test_set_on_fake_files(tmp_path):
    images, labels = _write_split(tmp_path, train=False, gz=True, n=10)
    train, test = mnist_split_from_test_set(tmp_path, n_train=8)
    assert len(train) == 8 and len(test) == 2
    np.testing.assert_array_equal(test.labels, labels[8:])


def test_split_from_test_set_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="t10k-images-idx3-ubyte.gz"):
        mnist_split_from_test_set(tmp_path)


# --- real data (skip with a reason when absent) ------------------------------------------------


def test_real_mnist_test_set_split():
    folder = _mnist_dir()
    if not folder.is_dir():
        pytest.skip(f"real MNIST test set not found at {folder} (set TAPEGRAD_MNIST_DIR)")
    train, test = mnist_split_from_test_set(folder)
    assert len(train) == 8000 and len(test) == 2000
    images = np.concatenate([train.images, test.images])
    labels = np.concatenate([train.labels, test.labels])
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() == 1.0
    assert set(np.unique(labels)) == set(range(10))
    assert np.bincount(labels).min() > 800  # every digit is well represented


def test_real_fashion_mnist(tmp_path):
    if not FASHION_DIR.is_dir():
        pytest.skip(f"{FASHION_DIR} absent (apt-get install dataset-fashion-mnist)")
    # an empty root forces the lookup through to the system folder
    train = FashionMNIST(root=tmp_path, train=True, download=False)
    test = FashionMNIST(root=tmp_path, train=False, download=False)
    assert train.images.shape == (60000, 1, 28, 28) and len(train) == 60000
    assert test.images.shape == (10000, 1, 28, 28) and len(test) == 10000
    np.testing.assert_array_equal(np.bincount(train.labels), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(test.labels), [1000] * 10)


def test_every_published_file_is_verified_by_sha256():
    from tapegrad.data import FASHION_MNIST_SOURCE, MNIST_SOURCE

    for source in (MNIST_SOURCE, FASHION_MNIST_SOURCE):
        assert len(source.checksums) == 4
        for name, digests in source.checksums.items():
            assert len(digests["sha256"]) == 64 and len(digests["md5"]) == 32, name
