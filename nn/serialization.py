"""Checkpoints as `.npz` files: written atomically, read without pickle.

`save(obj, path)` takes a state dict, possibly nested (`{'model': ..., 'optimizer': ..., 'epoch': 3}`).
Arrays are stored under their '/'-joined key path (so `np.load` alone can read the weights); a JSON
manifest stored as one more array records the nesting, key types and every non-array value
(int, float, bool, str, None, lists, tuples), so `load` returns the same structure.

The file is first written to a temporary file in the same directory, flushed and fsynced, then
renamed over `path` with `os.replace`: a crash or a full disk leaves the previous checkpoint intact.
"""
from __future__ import annotations

import errno
import json
import os
import zipfile
from typing import Any

import numpy as np

from autograd.fileio import atomic_write, read_npz
from autograd.tensor import Tensor

MANIFEST_KEY = "__tapegrad_manifest__"
FORMAT = "tapegrad-checkpoint"
VERSION = 1

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """A file that is not a readable tapegrad checkpoint (truncated, not an npz, no manifest)."""


# --- structure <-> (manifest, arrays) --------------------------------------------------------------
_KEY_TYPES = {str: "str", int: "int"}


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    """A JSON-able description of `obj`; arrays are moved into `arrays` under `path`."""
    if isinstance(obj, Tensor):
        obj = obj.data
    if isinstance(obj, (np.ndarray, np.generic)):
        if obj.dtype.kind not in "biufc":
            raise TypeError(f"save: cannot store {path or 'the object'}: arrays of dtype {obj.dtype} need pickle")
        if path in arrays or path == MANIFEST_KEY:
            raise ValueError(f"save: two entries map to the same array name {path!r}; avoid '/' in keys")
        arrays[path] = np.asarray(obj)
        return {"array": path, "scalar": isinstance(obj, np.generic)}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            kind = _KEY_TYPES.get(type(key))
            if kind is None:
                raise TypeError(f"save: dict keys must be str or int, got {type(key).__name__} at {path or 'top level'}")
            items.append([key, kind, _encode(value, f"{path}/{key}" if path else str(key), arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        values = [_encode(v, f"{path}/{i}" if path else str(i), arrays) for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": values}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"save: cannot store {type(obj).__name__} at {path or 'top level'} "
                    "(arrays, Tensors, dicts, lists, tuples, numbers, strings and None only)")


def _decode(node: dict, arrays: dict[str, np.ndarray]) -> Any:
    if "array" in node:
        arr = arrays[node["array"]]
        return arr[()] if node.get("scalar") else arr
    if "dict" in node:
        return {(int(key) if kind == "int" else key): _decode(value, arrays) for key, kind, value in node["dict"]}
    if "list" in node:
        return [_decode(v, arrays) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays) for v in node["tuple"])
    return node["value"]


# --- save ------------------------------------------------------------------------------------------
def save(obj: Any, path: PathLike) -> None:
    """Write `obj` (a state dict, possibly nested) to `path` as an .npz file, atomically.

    The file name is used as given (no '.npz' is appended). OSErrors (read-only directory, full disk)
    propagate with the path in the message, and no temporary file is left behind.
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, "", arrays)
    manifest = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[MANIFEST_KEY] = np.array(manifest)
    try:
        atomic_write(path, lambda f: np.savez(f, **arrays))
    except OSError as exc:
        raise _with_path(exc, "save: could not write checkpoint", path) from exc


def _with_path(exc: OSError, what: str, path: str) -> OSError:
    """The same kind of OSError, with a message naming the file."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return type(exc)(exc.errno if exc.errno is not None else errno.EIO, f"{what} ({reason})", path)


# --- load ------------------------------------------------------------------------------------------
def load(path: PathLike) -> Any:
    """Read a checkpoint written by `save`, restoring its nesting and value types (arrays as ndarrays)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "load: no checkpoint file", path)
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"load: {path!r} is not a checkpoint: not an .npz (zip) archive, or it is truncated")
    try:
        with read_npz(path) as npz:
            if MANIFEST_KEY not in npz.files:
                raise CheckpointError(
                    f"load: {path!r} is an .npz file without a tapegrad manifest (written by numpy.savez, "
                    "not nn.save?); read it with numpy.load instead"
                )
            arrays = {name: npz[name] for name in npz.files}
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError) as exc:
        raise CheckpointError(f"load: {path!r} is damaged (truncated or corrupt): {exc}") from None
    try:
        manifest = json.loads(str(arrays.pop(MANIFEST_KEY)[()]))
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown format {manifest.get('format')!r}")
        if manifest.get("version", 0) > VERSION:
            raise ValueError(f"written by a newer tapegrad (format version {manifest['version']})")
        return _decode(manifest["tree"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"load: {path!r} has an unreadable manifest: {exc}") from None
