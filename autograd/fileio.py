"""One atomic file write for every file tapegrad saves (checkpoints, reports, datasets), and one way
to open the .npz files it reads.

Readers see the old file or the whole new one, never a partial file: the data goes to a temporary
file in the same folder, is flushed and fsynced, gets the mode a plain open() would give, and is
renamed over the target; the rename itself is made durable with an fsync of the folder. On any
failure the temporary file is removed and the previous file is intact.

Standard library and NumPy only: the data package uses it without importing the engine.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from typing import BinaryIO, Callable, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def atomic_write(path: PathLike, data: Union[bytes, Callable[[BinaryIO], None]]) -> None:
    """Write `data` (bytes, or a function writing to a binary file) to `path` atomically."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            if callable(data):
                data(handle)
            else:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a saved file gets the usual mode
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(directory)
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: str) -> None:
    """Make the rename itself durable; best effort (not every platform can open a folder)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def read_npz(path: PathLike) -> Iterator["numpy.lib.npyio.NpzFile"]:
    """np.load(path) of an .npz, without pickles, whose file is closed on every error. The file is
    opened here, not by np.load: np.load leaves its own handle open when the zip directory is
    unreadable (a truncated download), and the caller's error would leak it."""
    import numpy as np

    with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
        yield archive
