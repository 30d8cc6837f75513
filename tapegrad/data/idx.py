"""IDX files (the MNIST container format): a strict reader and an atomic writer.

Layout: magic ``00 00 <type code> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the
payload in big-endian C order. Files are often gzipped; we detect that by the gzip magic bytes
(``1f 8b``), never by the file name, because mirrors and distributions rename files freely.
Every defect raises :class:`IDXFormatError` naming the file, so a bad download is diagnosed
at load time rather than surfacing as a reshape error deep inside training.
"""

from __future__ import annotations

import gzip as _gzip
import math
import os
import zlib
from pathlib import Path
from typing import Optional, Union

import numpy as np

from autograd.fileio import atomic_write

from .errors import DataError, DataFileError, DatasetNotFoundError

PathLike = Union[str, "os.PathLike[str]"]

# type code -> big-endian dtype as stored on disk
_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_NAMES = {
    0x08: "uint8", 0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"
}
_CODES = {np.dtype(name): code for code, name in _NAMES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(DataError):
    """A file is not a well-formed IDX file; the message names the file and the defect."""


def _hex(data: bytes) -> str:
    return " ".join(f"{b:02x}" for b in data)


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a native-endian array, validating it fully."""
    name = os.fspath(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise DataFileError(f"{name}: is a folder, not an IDX file") from None
    except OSError as exc:
        raise DataFileError(f"cannot read {name}: {exc.strerror or exc}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = _gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IDXFormatError(f"{name}: corrupt gzip stream: {exc}") from None
    if len(raw) < 4:
        raise IDXFormatError(
            f"{name}: truncated header: {len(raw)} bytes, the IDX magic number alone needs 4"
        )
    magic = raw[:4]
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(
            f"{name}: not an IDX file: magic bytes {_hex(magic)} (expected 00 00 <type> <ndim>)"
        )
    code, ndim = magic[2], magic[3]
    if code not in _DTYPES:
        known = ", ".join(f"0x{c:02X} {n}" for c, n in _NAMES.items())
        raise IDXFormatError(f"{name}: unknown type code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{name}: header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise IDXFormatError(
            f"{name}: truncated header: {ndim} dimensions need {header_len} header bytes, "
            f"file has {len(raw)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = _DTYPES[code]
    expected = math.prod(dims) * dtype.itemsize
    got = len(raw) - header_len
    if got != expected:
        shape = "x".join(str(d) for d in dims)
        what = "truncated" if got < expected else "trailing data"
        raise IDXFormatError(
            f"{name}: {what}: header says {shape} = {expected} bytes of {_NAMES[code]}, "
            f"file has {got}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(dims)
    return data.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` so readers see the old file or the whole new one (creating the folder)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, data)


def write_idx(path: PathLike, array: np.ndarray, gzip: Optional[bool] = None) -> None:
    """Write ``array`` as IDX, atomically; ``gzip=None`` compresses iff the name ends in .gz."""
    arr = np.asarray(array)
    code = _CODES.get(arr.dtype.newbyteorder("=")) if arr.dtype.kind != "b" else None
    if code is None:
        supported = ", ".join(_NAMES.values())
        raise TypeError(
            f"write_idx: dtype {arr.dtype} has no IDX type code (supported: {supported})"
        )
    if not 1 <= arr.ndim <= 255:
        raise ValueError(f"write_idx: IDX stores 1 to 255 dimensions, array has {arr.ndim}")
    if any(d >= 2**32 for d in arr.shape):
        raise ValueError(f"write_idx: dimension sizes must fit in uint32, shape is {arr.shape}")
    header = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(arr, dtype=_DTYPES[code]).tobytes()
    if gzip is None:
        gzip = os.fspath(path).endswith(".gz")
    if gzip:
        data = _gzip.compress(data, mtime=0)  # mtime=0: same array, same bytes
    atomic_write_bytes(path, data)
