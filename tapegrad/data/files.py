"""Fingerprints of data files, so a run can notice that its dataset file changed under it.

``describe_file`` returns a small JSON-ready dict (path, size, mtime, sha256) to store with a
run; ``file_changes`` compares such a record with the file as it is now. Content decides: a
copy or ``touch`` changes the mtime but not the data, so an mtime alone is not a change.
"""

from __future__ import annotations

import datetime
import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

from .errors import DataFileError, DatasetNotFoundError
from .idx import PathLike

_CHUNK = 1 << 20


def describe_file(path: PathLike) -> dict[str, Any]:
    """``{"path", "size", "mtime", "sha256"}`` of a file; mtime is ISO 8601 UTC, path absolute."""
    p = Path(path).expanduser().resolve()
    try:
        stat = p.stat()
        if p.is_dir():
            raise DataFileError(f"{os.fspath(path)}: is a folder; describe_file takes one file")
        digest = hashlib.sha256()
        with open(p, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{os.fspath(path)}: no such file") from None
    except OSError as exc:
        raise DataFileError(f"cannot read {os.fspath(path)}: {exc.strerror or exc}") from None
    mtime = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.timezone.utc)
    return {
        "path": str(p),
        "size": stat.st_size,
        "mtime": mtime.isoformat(timespec="seconds"),
        "sha256": digest.hexdigest(),
    }


def file_changes(recorded: Mapping[str, Any]) -> list[str]:
    """How the file of a ``describe_file`` record differs now; ``[]`` when its content is the same.

    Each entry is a sentence naming the file, e.g. ``"/d/x.npz: content changed (size 100 ->
    120 bytes, sha256 1a2b3c4d... -> 5e6f7a8b...; modified 2026-11-29T20:00:00+00:00)"``.
    """
    path = recorded["path"]
    try:
        now = describe_file(path)
    except DatasetNotFoundError:
        return [f"{path}: no longer exists"]
    except DataFileError as exc:
        return [str(exc)]
    if now["sha256"] == recorded.get("sha256") and now["size"] == recorded.get("size"):
        return []
    parts = []
    if now["size"] != recorded.get("size"):
        parts.append(f"size {recorded.get('size')} -> {now['size']} bytes")
    parts.append(f"sha256 {str(recorded.get('sha256'))[:8]}... -> {now['sha256'][:8]}...")
    return [f"{path}: content changed ({', '.join(parts)}; modified {now['mtime']})"]
