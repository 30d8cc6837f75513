"""Keep freed memory for reuse: glibc's malloc hands large arrays back to the OS at once
(mmap/munmap, or a heap trim), so every training step would pay page faults on its fresh
activations and im2col buffers. PyTorch's caching allocator does the same for its own tensors.
What it buys is measured in docs/benchmarks.md.

Applied at import on Linux with glibc; TAPEGRAD_KEEP_FREED_MEMORY=0 turns it off (the process's
resident memory then shrinks after each step, at the cost of those page faults).

mallopt's value is a C int: a threshold of 2**31 or more does not fit (ctypes would silently keep
the low 32 bits: 4 << 30 became 0, "trim on every free"), so the values are declared as c_int and
checked here.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import numpy as np

from . import parallel

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
INT_MAX = 2**31 - 1
MMAP_THRESHOLD = 1 << 30  # blocks below 1 GiB come from the heap and are reused there
TRIM_THRESHOLD = 1 << 30  # and the heap is not trimmed back while less than 1 GiB of it is free


def keep_freed_memory() -> bool:
    """Ask glibc to reuse freed large blocks; True if both settings were applied."""
    if not sys.platform.startswith("linux") or os.environ.get("TAPEGRAD_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    applied = True
    for param, value in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        if not 0 <= value <= INT_MAX:
            raise ValueError(f"allocator: mallopt({param}, {value}): the value must fit in a C int")
        applied = bool(mallopt(param, value)) and applied  # one refused setting does not skip the other
    return applied


PAGE = 4096
UNALIASED_MIN_BYTES = 1 << 20  # below this the placement is not worth a second allocation


def copy_unaliased(x: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of `x`, placed at the same offset within a 4 KiB page as x's data.

    Why: glibc puts a heap block 16 bytes past the end of the previous one, so a fresh copy of an
    array whose size is a multiple of 4 KiB often starts 16 bytes (mod 4 KiB) past its source. A
    strided copy then stores just ahead of the addresses it loads next, and the CPU stalls each
    load on the earlier store ("4K aliasing"): the im2col-style copy of a (3, 32, 28, 3584) window
    view measured 14 ms there against 4 ms at the same page offset (docs/benchmarks.md)."""
    if x.nbytes < UNALIASED_MIN_BYTES:
        return np.array(x, order="C", copy=True)
    buf = np.empty(x.nbytes + PAGE, np.uint8)
    shift = (x.__array_interface__["data"][0] - buf.__array_interface__["data"][0]) % PAGE
    out = buf[shift:shift + x.nbytes].view(x.dtype).reshape(x.shape)
    axis = parallel.outer_axis(x.shape, x.size)
    if axis is None:
        np.copyto(out, x)
    else:  # each thread copies its share of an outer axis
        parallel.run_split(lambda lo, hi: np.copyto(out[parallel.along(axis, lo, hi)], x[parallel.along(axis, lo, hi)]),
                           x.shape[axis])
    return out
