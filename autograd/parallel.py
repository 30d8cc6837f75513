"""Threads for what NumPy runs on one core: the thread count, one helper pool, and the large calls
split in parts (matmuls, elementwise primitives, the conv layers' copies, window sums, paddings and
poolings; a replay's runs of equations: autograd/split.py).

Each split call runs on get_num_threads() contiguous shares of one outer axis, one share per
thread, the first on the calling thread; NumPy and BLAS release the GIL while they work. Measured
(LeNet-BN, batch 128, two threads, A/B in fresh processes): eager step 212.5 -> 196 ms median of 4
with the elementwise calls and data movers split, the compiled step 194.5 -> 173 ms.

Why matmuls are split here rather than left to BLAS: OpenBLAS's idle threads spin (busy-wait) for
a while after each threaded call, and in a conv net's step they held the second core while the
elementwise work that followed ran on the first (CPU time 0.43 s per 0.22 s step on two threads).
Above `MATMUL_FLOPS` a matmul runs as one single-threaded BLAS call per thread, each on its own rows
(or columns) of the result. Every matmul goes through `matmul` here, eager and replayed alike, so
the two compute the same bits for the same thread count. Only a matmul's bits depend on the thread
count (BLAS rounds differently for another partition; OpenBLAS's own 1- and 2-thread results
differ too): every other split computes exactly what one call would.
"""
from __future__ import annotations

import math
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np

#: A matmul is split when it does at least this many flops. Measured on two threads (compiled
#: steps, medians of 4-6 alternating runs): Escontrela's 49 MFLOP conv GEMMs ((40, 40) @ (40, 15360))
#: split here made the step 9.8 ms against 7.6 with BLAS threading them (BLAS's spinning threads
#: start at once; ours wake in ~50-90 µs); LeNet-BN with its 58 MFLOP first-conv GEMMs split too
#: ran 173 ms against 220 ms with them left to BLAS (whose spinning threads then held the second
#: core through the batch-norm runs after them).
MATMUL_FLOPS = 50_000_000


def _default_threads() -> int:
    for var in ("TAPEGRAD_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None


def set_num_threads(n: int) -> None:
    """Threads tapegrad splits its own work over: large matmuls, and a replayed Program's runs of
    elementwise equations (like torch.set_num_threads). The default is TAPEGRAD_NUM_THREADS, else
    OMP_NUM_THREADS, else OPENBLAS_NUM_THREADS, else the cores this process may run on. Smaller
    matmuls keep BLAS's own threading (threadpoolctl sets it)."""
    global _threads, _pool
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _threads = n
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def get_num_threads() -> int:
    return _threads


def _reset_after_fork() -> None:
    global _pool
    _pool = None  # the parent's threads do not exist in the child


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def run_split(part: Callable[..., Any], n: int, *arrays: Any, chunk: int = 0) -> None:
    """part(lo, hi, *arrays) on get_num_threads() contiguous shares of range(n), the first on this
    thread. One share per thread, not many small pieces: handing a part to a helper thread and
    waiting for it costs 50-150 µs on this VM (a queue round trip; an empty run_split measured
    130-360 µs as the host's speed moved). chunk > 0: each thread works through its share in chunks of `chunk`
    indices (see CHUNK_BYTES). Each share and chunk has at least two indices:
    NumPy drops an axis of length one and may then reduce a piece in another order than the whole
    (a part's sums would differ in the last bit)."""
    global _pool
    parts = min(_threads, n // 2)
    # a split inside a part runs whole, on its thread; so does one whose NumPy calls a trace records
    # (on traced arrays, in a VJP say: the recording thread must make them all, in order)
    rec = _primitive.REPLAY.recorder
    if parts <= 1 or getattr(_local, "in_part", False) or rec is not None and not rec.suspended:
        _in_chunks(part, 0, n, chunk, arrays)
        return
    if _pool is None:  # one helper per thread beyond this one, for as long as the thread count holds
        _pool = ThreadPoolExecutor(_threads - 1, thread_name_prefix="tapegrad")
    bounds = [n * k // parts for k in range(parts + 1)]
    futures = [_pool.submit(_in_part, part, bounds[k], bounds[k + 1], chunk, arrays) for k in range(1, parts)]
    try:
        _in_part(part, 0, bounds[1], chunk, arrays)
    finally:
        for f in futures:
            f.result()


def _in_chunks(part: Callable[..., Any], lo: int, hi: int, chunk: int, arrays: tuple) -> None:
    """part over [lo, hi) in chunks of `chunk` indices (0: whole); a last chunk of one index joins
    the one before."""
    if chunk <= 0 or hi - lo <= chunk:
        part(lo, hi, *arrays)
        return
    bounds = list(range(lo, hi, chunk)) + [hi]
    if bounds[-1] - bounds[-2] < 2:
        del bounds[-2]
    for a, b in zip(bounds[:-1], bounds[1:]):
        part(a, b, *arrays)


_local = threading.local()

from . import primitive as _primitive  # noqa: E402  (primitive imports this module)


def _in_part(part: Callable[..., Any], lo: int, hi: int, chunk: int, arrays: tuple) -> None:
    _local.in_part = True
    try:
        _in_chunks(part, lo, hi, chunk, arrays)
    finally:
        _local.in_part = False


def axis_order(strides: tuple | None, ndim: int) -> tuple[int, ...]:
    """Axes from outermost to innermost in memory (NumPy's ufuncs keep their inputs' layout, and a
    reduction's order follows the layout). No strides: the logical order."""
    if strides is None:
        return tuple(range(ndim))
    return tuple(sorted(range(ndim), key=lambda a: (-abs(strides[a]), a)))


# --- elementwise calls (eager) ----------------------------------------------------------------------
#: An elementwise call is split when its result has at least this many elements (4 MB of float32:
#: ~1 ms of work against ~90 µs to wake a thread).
ELEMENTWISE_MIN = 1 << 20


def elementwise(fn: Callable[..., np.ndarray], writer: Callable[..., np.ndarray], arrays: list) -> np.ndarray:
    """fn(*arrays) for an elementwise primitive, split over get_num_threads() threads along the
    outermost axis in memory of its result. The caller decides that the call is large enough
    (Primitive.__call__: a first or last argument of ELEMENTWISE_MIN elements, tested inline on its
    hot path). `writer` is fn with out= (the same per-element computation): each part writes its
    share of one result array, allocated with the layout and dtype the ufunc itself would give it
    (other layouts made every later op slower)."""
    ops = [np.asarray(a) for a in arrays]
    try:
        shape = np.broadcast_shapes(*(a.shape for a in ops))
    except ValueError:
        return fn(*arrays)  # NumPy's own error, from the call itself
    with np.errstate(all="ignore"):  # one element per argument: the dtype NumPy resolves (no warning twice)
        dtype = np.asarray(fn(*[a if type(a) is not np.ndarray or not a.ndim else a[(0,) * a.ndim] for a in arrays])).dtype
    it = np.nditer(ops + [None], flags=["refs_ok", "zerosize_ok"], order="K",
                   op_flags=[["readonly"]] * len(ops) + [["writeonly", "allocate"]],
                   op_dtypes=[a.dtype for a in ops] + [dtype])
    out = it.operands[-1]
    nd = len(shape)
    axis = next((a for a in axis_order(out.strides, nd) if shape[a] >= 2 * _threads), None)
    if axis is None:
        return fn(*arrays)
    n = shape[axis]
    cuts = []  # per argument: the axis its share is cut along, or None (read whole)
    for a in arrays:
        q = axis - (nd - np.ndim(a))
        cuts.append(q if type(a) is np.ndarray and q >= 0 and a.shape[q] == n else None)

    def part(lo: int, hi: int) -> None:
        args = [a if q is None else a[(slice(None),) * q + (slice(lo, hi),)] for a, q in zip(arrays, cuts)]
        writer(*args, out=out[(slice(None),) * axis + (slice(lo, hi),)])

    run_split(part, n)
    return out


# --- copies, window sums, pooling: one outer axis split ---------------------------------------------
def outer_axis(shape: tuple[int, ...], size: int, allowed=None, strides: tuple | None = None) -> int | None:
    """The first axis (of `allowed`; the outermost in memory first, given `strides`) long enough for
    two or more indices per thread, when splitting `size` elements over the threads is worth it
    (see ELEMENTWISE_MIN); else None. Shares of an outer axis are contiguous: split along an inner
    one, a 2x2 pooling ran 3x slower on two threads than on one."""
    if _threads <= 1 or size < ELEMENTWISE_MIN:
        return None
    allowed = range(len(shape)) if allowed is None else set(allowed)
    return next((a for a in axis_order(strides, len(shape)) if a in allowed and shape[a] >= 2 * _threads), None)


#: A replay's runs (autograd.split) pass over their arrays many times: each share is worked
#: through in chunks of about this many bytes of the run's largest array, so that what one equation
#: leaves is still in cache for the next instead of making a trip to memory per equation. 1 MB:
#: chunks of 0.2 to 3.2 MB measured in LeNet-BN's batch-norm runs, 0.8 was the fastest at 28x28
#: and at 14x14 alike. Window sums and 2x2 pooling, chunked the same way, measured slower in the
#: layouts the conv layers give them (a 3x3 window sum 3.3 -> 5.3 ms), so they are not.
CHUNK_BYTES = 1 << 20


def chunk_of(n: int, nbytes: int) -> int:
    """Indices per chunk of an axis of length n over an array of nbytes: CHUNK_BYTES' worth, at
    least two; 0 (no chunks) when the whole is no more than two chunks."""
    if nbytes <= 2 * CHUNK_BYTES:
        return 0
    return max(2, CHUNK_BYTES * n // nbytes)


def along(axis: int, lo: int, hi: int) -> tuple:
    """The index of [lo, hi) on `axis`."""
    return (slice(None),) * axis + (slice(lo, hi),)


# --- BLAS -----------------------------------------------------------------------------------------
_blas: list | None = None  # threadpoolctl's controllers of the BLAS libraries loaded (None: not looked yet)


def _blas_controllers() -> list:
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # then BLAS keeps its threads: slower, still correct
            _blas = []
        else:
            _blas = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _blas


def _rows(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> Callable[[int, int], None]:
    def part(lo: int, hi: int) -> None:
        np.matmul(x[..., lo:hi, :], y, out=out[..., lo:hi, :])
    return part


def _columns(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> Callable[[int, int], None]:
    def part(lo: int, hi: int) -> None:
        np.matmul(x, y[..., lo:hi], out=out[..., lo:hi])
    return part


def matmul(x: np.ndarray, y: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """np.matmul, split over get_num_threads() threads by rows (or columns, whichever the result has
    more of) when it is large: never along the inner axis, so each element is one BLAS dot product."""
    if _threads > 1 and x.ndim >= 2 and y.ndim >= 2 and 2 * x.size * y.shape[-1] >= MATMUL_FLOPS:  # cheap first
        m, k, n = x.shape[-2], x.shape[-1], y.shape[-1]
        batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
        if 2 * m * k * n * math.prod(batch) >= MATMUL_FLOPS and max(m, n) >= 2 * _threads:
            if out is None:
                out = np.empty(batch + (m, n), np.result_type(x, y))
            blas = _blas_controllers()
            before = [c.get_num_threads() for c in blas]
            for c in blas:
                c.set_num_threads(1)
            try:
                run_split(_rows(x, y, out) if m >= n else _columns(x, y, out), m if m >= n else n)
            finally:
                for c, t in zip(blas, before):
                    c.set_num_threads(t)
            return out
    return np.matmul(x, y, out=out)
