"""IDX reader/writer: round trips for every dtype, and one test per malformed-file diagnosis."""

import gzip
import os

import numpy as np
import pytest

from tapegrad.data import IDXFormatError, read_idx, write_idx

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def _sample(dtype, shape=(3, 4, 5)):
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def _raw_idx(code: int, dims, payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + np.asarray(dims, dtype=">u4").tobytes() + payload


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip_each_dtype_gz_and_raw(tmp_path, dtype, name):
    arr = _sample(dtype)
    path = tmp_path / name
    write_idx(path, arr)
    is_gz = path.read_bytes()[:2] == b"\x1f\x8b"
    assert is_gz == name.endswith(".gz")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    back[0] = 0  # writable: the caller owns the array


def test_big_endian_on_disk(tmp_path):
    path = tmp_path / "x.idx"
    write_idx(path, np.array([1, 258], dtype=np.int16))
    assert path.read_bytes() == bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0, 1, 1, 2])


def test_gzip_detected_by_magic_not_extension(tmp_path):
    arr = _sample(np.uint8, (2, 3))
    gz_named_plain = tmp_path / "looks-raw-idx1-ubyte"
    write_idx(gz_named_plain, arr, gzip=True)
    raw_named_gz = tmp_path / "looks-gz.gz"
    write_idx(raw_named_gz, arr, gzip=False)
    np.testing.assert_array_equal(read_idx(gz_named_plain), arr)
    np.testing.assert_array_equal(read_idx(raw_named_gz), arr)


def test_one_dimensional_and_empty(tmp_path):
    for arr in (np.arange(7, dtype=np.uint8), np.zeros((0, 28, 28), dtype=np.uint8)):
        write_idx(tmp_path / "v.idx", arr)
        back = read_idx(tmp_path / "v.idx")
        assert back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "a.idx"
    write_idx(path, np.arange(5, dtype=np.uint8))
    write_idx(path, np.arange(3, dtype=np.uint8))  # overwrite in place
    assert os.listdir(tmp_path) == ["a.idx"]
    np.testing.assert_array_equal(read_idx(path), np.arange(3))


def test_write_rejects_unsupported_dtype_and_scalars(tmp_path):
    with pytest.raises(TypeError, match="uint64"):
        write_idx(tmp_path / "a.idx", np.arange(3, dtype=np.uint64))
    with pytest.raises(TypeError, match="bool"):
        write_idx(tmp_path / "a.idx", np.array([True]))
    with pytest.raises(ValueError, match="0"):
        write_idx(tmp_path / "a.idx", np.uint8(3))
    assert os.listdir(tmp_path) == []


def test_truncated_payload_names_file_shape_and_sizes(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_raw_idx(0x08, (60000, 28, 28), b"\0" * 1000)))
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "truncated: header says 60000x28x28 = 47040000 bytes of uint8, file has 1000" in msg


@pytest.mark.parametrize("name,code,dims,payload,expected", [
    ("f.idx", 0x0D, (2, 3), 20, r"truncated: header says 2x3 = 24 bytes of float32, file has 20"),
    ("long.idx", 0x08, (2, 2), 6, r"long.idx: trailing data: header says 2x2 = 4 bytes of uint8, file has 6"),
], ids=["truncated multibyte payload", "trailing data"])
def test_payload_length_must_match_the_header(tmp_path, name, code, dims, payload, expected):
    path = tmp_path / name
    path.write_bytes(_raw_idx(code, dims, b"\0" * payload))
    with pytest.raises(IDXFormatError, match=expected):
        read_idx(path)


def test_too_many_dims_for_the_data(tmp_path):
    # header declares 5 dimensions but the file ends after 2 of them
    path = tmp_path / "dims.idx"
    path.write_bytes(bytes([0, 0, 0x08, 5]) + np.asarray([2, 2], dtype=">u4").tobytes())
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    msg = str(info.value)
    assert msg.startswith(str(path))
    assert "truncated header: 5 dimensions need 24 header bytes, file has 12" in msg


def test_zero_dimensions(tmp_path):
    path = tmp_path / "zero.idx"
    path.write_bytes(bytes([0, 0, 0x08, 0]))
    with pytest.raises(IDXFormatError, match="zero.idx: header declares 0 dimensions"):
        read_idx(path)


@pytest.mark.parametrize("content", [b"", b"\0\0\x08"])
def test_truncated_header_before_magic_ends(tmp_path, content):
    path = tmp_path / "short.idx"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError, match=rf"short.idx: truncated header: {len(content)} bytes"):
        read_idx(path)


def test_bad_magic_shows_the_bytes(tmp_path):
    path = tmp_path / "archive.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 30)
    with pytest.raises(IDXFormatError) as info:
        read_idx(path)
    msg = str(info.value)
    assert str(path) in msg and "not an IDX file: magic bytes 50 4b 03 04" in msg


def test_unknown_type_code(tmp_path):
    path = tmp_path / "weird.idx"
    path.write_bytes(_raw_idx(0x07, (1,), b"\0"))
    expected = r"weird.idx: unknown type code 0x07 \(known: 0x08 uint8"
    with pytest.raises(IDXFormatError, match=expected):
        read_idx(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_gzip_stream(tmp_path, damage):
    good = gzip.compress(_raw_idx(0x08, (100,), bytes(range(100))))
    bad = good[: len(good) // 2] if damage == "truncated" else good[:10] + b"\xff" * 40
    path = tmp_path / "broken.gz"
    path.write_bytes(bad)
    with pytest.raises(IDXFormatError, match=r"broken.gz: corrupt gzip stream"):
        read_idx(path)


def test_format_error_is_a_value_error():
    assert issubclass(IDXFormatError, ValueError)
