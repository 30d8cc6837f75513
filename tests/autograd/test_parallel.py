"""Threads: large matmuls split by rows or columns (autograd.parallel) and a replay's elementwise
runs split along one axis (autograd.split). What each must keep: eager and replay compute the same
bits, a run's results do not depend on the thread count, BLAS's own setting is restored."""
import os

import numpy as np
import pytest

import autograd as ag
from autograd import parallel, split


def _blas_threads():
    from threadpoolctl import threadpool_info

    return [(i["filepath"], i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.mark.parametrize("xs, ys", [
    ((7, 5), (5, 3)),  # more rows: split by rows
    ((3, 5), (5, 9)),  # more columns: split by columns
    ((2, 6, 4), (4, 5)),  # batched left operand
    ((6, 4), (3, 4, 2)),  # batched right operand, broadcast left
    ((1, 8, 4), (2, 4, 8)),  # both batched, broadcast
])
def test_a_split_matmul_is_the_matmul(xs, ys, threads, split_small):
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(xs), rng.standard_normal(ys)
    before = _blas_threads()
    for n in (2, 3):
        threads(n)
        got = parallel.matmul(x, y)
        np.testing.assert_allclose(got, np.matmul(x, y), rtol=1e-12, atol=1e-12)
        out = np.full(got.shape, np.nan)
        assert parallel.matmul(x, y, out=out) is out
        np.testing.assert_array_equal(out, got)
    assert _blas_threads() == before  # BLAS ran on one thread per part, then got its setting back


def _layouts():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 4, 5, 8)).astype(np.float32)
    batch_last = np.ascontiguousarray(x.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    per_channel = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    return {
        "same layout": (np.multiply, (x, x + 1)),
        "batch-last times per-channel": (np.multiply, (batch_last, per_channel)),
        "broadcast view first": (np.multiply, (np.broadcast_to(np.float32(2), x.shape), batch_last)),
        "python scalar": (np.add, (batch_last, 0.5)),
        "scalar first": (np.subtract, (1.0, x)),
        "mask": (np.multiply, (x, batch_last > 0)),
        "comparison": (np.greater, (batch_last, 0)),
        "float64 and float32": (np.multiply, (x.astype(np.float64), per_channel)),
    }


@pytest.mark.parametrize("case", list(_layouts()))
def test_a_split_elementwise_call_equals_the_ufunc_bit_for_bit_with_its_layout_and_dtype(case, threads, split_small):
    fn, args = _layouts()[case]
    want = fn(*args)
    for n in (2, 3):
        threads(n)
        got = parallel.elementwise(fn, fn, list(args))
        assert got.dtype == want.dtype and got.strides == want.strides
        np.testing.assert_array_equal(got, want)


def test_an_elementwise_primitive_needs_an_out_writer():
    from autograd.primitive import temporary_primitive

    with pytest.raises(ValueError, match="elementwise=True needs a forward that takes out="):
        with temporary_primitive("twice", lambda x: 2 * x, lambda g, ans, x: 2 * g, elementwise=True):
            pass


def test_vectors_and_small_matmuls_are_not_split(threads, monkeypatch):
    threads(2)
    calls = []
    monkeypatch.setattr(parallel, "run_split", lambda *a: calls.append(a))
    x = np.ones((4, 4))
    parallel.matmul(x, x)  # below MATMUL_FLOPS
    parallel.matmul(np.ones(4), np.ones((4, 1 << 16)))  # a vector operand
    assert calls == []


def test_a_part_that_fails_on_the_helper_thread_raises_here(threads):
    threads(2)

    def part(lo, hi):
        if lo > 0:
            raise FloatingPointError(f"part {lo}:{hi}")

    with pytest.raises(FloatingPointError, match="part 5:10"):
        parallel.run_split(part, 10)


def test_a_part_that_splits_again_runs_its_split_inline(threads):
    """A part on the helper thread that calls run_split (a user's elementwise primitive calling
    another primitive in its forward, say) must not wait for the helper it runs on."""
    threads(2)
    seen = []

    def inner(lo, hi):
        seen.append((lo, hi))

    parallel.run_split(lambda lo, hi: parallel.run_split(inner, 8), 8)
    assert seen == [(0, 8), (0, 8)]  # each part's inner split ran whole, on the part's own thread
    parallel.run_split(inner, 8)
    assert sorted(seen[2:]) == [(0, 4), (4, 8)]  # outside a part: split again


def test_a_split_made_while_a_trace_records_runs_whole_on_the_recording_thread(threads):
    """NumPy calls on traced arrays (a VJP's, say) are recorded by the thread that makes them: a
    part on a helper thread would be missing from the Program (found as a max-pool VJP whose tie
    counts were half computed on replay)."""
    import threading

    threads(2)
    seen = []

    def fn(x):
        parallel.run_split(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 8)
        return x * 2.0

    compiled = ag.compile(fn)
    compiled(ag.tensor(np.ones(3)))  # the trace
    assert seen == [(0, 8, threading.get_ident())]
    seen.clear()
    parallel.run_split(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 8)  # not tracing: split
    assert sorted(seen)[0][:2] == (0, 4) and len(seen) == 2


def test_set_num_threads_checks_its_argument_and_the_default_reads_the_environment(monkeypatch):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads: expected a positive int"):
            ag.set_num_threads(bad)
    for var in ("TAPEGRAD_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "5")
    assert parallel._default_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert parallel._default_threads() == 4
    monkeypatch.setenv("TAPEGRAD_NUM_THREADS", "3")
    assert parallel._default_threads() == 3
    for var in ("TAPEGRAD_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var)
    assert parallel._default_threads() == len(os.sched_getaffinity(0))


# --- runs in a replay ------------------------------------------------------------------------------
def _batch_norm_relu(x, gamma, beta):
    """Batch norm over (batch, h, w) per channel, then ReLU: reductions, broadcasts, elementwise."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=(0, 2, 3), keepdims=True)
    y = xc * (var + 1e-5) ** -0.5 * gamma.reshape((1, -1, 1, 1)) + beta.reshape((1, -1, 1, 1))
    return ag.relu(y)


def _bn_step(x, gamma, beta):
    loss = (_batch_norm_relu(x, gamma, beta) ** 2).sum()
    return (loss,) + ag.grad(loss, [x, gamma, beta])


def _bn_inputs(layout):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((4, 6, 5, 5)).astype(np.float32)
    if layout == "batch-last":  # (C, H, W, N) in memory, as the conv layers leave it
        data = np.ascontiguousarray(data.transpose(1, 2, 3, 0)).transpose(3, 0, 1, 2)
    return (ag.tensor(data, requires_grad=True), ag.tensor(rng.random(6, dtype=np.float32) + 0.5, requires_grad=True),
            ag.tensor(rng.standard_normal(6).astype(np.float32), requires_grad=True))


@pytest.mark.parametrize("layout", ["batch-first", "batch-last"])
def test_a_batch_norm_step_splits_into_runs_whose_results_do_not_depend_on_the_thread_count(
        layout, threads, split_small):
    want = [t.data for t in _bn_step(*_bn_inputs(layout))]
    compiled = ag.compile(_bn_step)
    compiled(*_bn_inputs(layout))  # the trace
    (replay,) = [c.replay for entries in compiled.cache.values() for c in entries]
    # forward (statistics, normalisation, ReLU; gamma's and beta's reshapes hoisted) and backward:
    # split along the channel axis, whichever axis is outermost in memory, since the statistics
    # sum over the others
    long = [run for run in replay.runs if run.end - run.start > 5]
    assert len(long) == 2 and all(run.axis == 1 and run.n == 6 for run in long), replay.runs
    assert [replay.program.eqns[j].name for j in long[0].hoisted] == ["reshape", "reshape"]
    for n in (1, 2, 3, 4):
        threads(n)
        got = compiled(*_bn_inputs(layout))
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.data, w)
    assert compiled.traces == 1


def test_a_run_ends_before_a_view_that_outlives_it_and_every_part_is_called(threads, split_small, monkeypatch):
    calls = []
    real = parallel.run_split

    def counting(part, n, *arrays):
        calls.append(n)
        real(part, n, *arrays)

    monkeypatch.setattr(parallel, "run_split", counting)

    def fn(x, s):
        y = x * s  # a run: mul, then the broadcast view below ends it (read after the run)
        b = ag.broadcast_to(s, (3, 8, 4))
        return y + 1.0, b

    threads(2)
    rng = np.random.default_rng(2)
    x, s = rng.standard_normal((3, 8, 4)), rng.standard_normal((1, 8, 1))
    compiled = ag.compile(fn)
    compiled(ag.tensor(x), ag.tensor(s))
    got = compiled(ag.tensor(x), ag.tensor(s))
    np.testing.assert_array_equal(got[0].data, x * s + 1.0)
    np.testing.assert_array_equal(got[1].data, np.broadcast_to(s, (3, 8, 4)))
    (replay,) = [c.replay for entries in compiled.cache.values() for c in entries]
    kinds = [[replay.program.eqns[i].name for i in range(r.start, r.end)] for r in replay.runs]
    assert all("broadcast_to" not in k for k in kinds), kinds
    assert calls and all(n == 3 for n in calls)  # split along the outermost axis (3)


@pytest.mark.parametrize("n, chunk, n_threads, want", [
    (10, 4, 1, [(0, 4), (4, 8), (8, 10)]),
    (9, 4, 1, [(0, 4), (4, 9)]),  # a last chunk of one index joins the one before
    (3, 4, 1, [(0, 3)]),
    (7, 2, 1, [(0, 2), (2, 4), (4, 7)]),
    (10, 0, 1, [(0, 10)]),
    (12, 4, 2, [(0, 4), (4, 6), (6, 10), (10, 12)]),  # each thread's share in chunks
])
def test_run_split_works_through_each_share_in_chunks_of_at_least_two(n, chunk, n_threads, want, threads):
    threads(n_threads)
    calls = []
    parallel.run_split(lambda a, b, *arrays: calls.append((a, b, arrays)), n, "x", chunk=chunk)
    assert sorted(calls) == [(a, b, ("x",)) for a, b in want]


def test_the_chunk_holds_chunk_bytes_of_the_largest_split_array(split_small, monkeypatch):
    compiled = ag.compile(_bn_step)
    compiled(*_bn_inputs("batch-last"))
    (replay,) = [c.replay for entries in compiled.cache.values() for c in entries]
    program = replay.program
    for run in replay.runs:
        per_index = max(np.prod(program.avals[v][0]) * program.avals[v][1].itemsize // program.avals[v][0][q]
                        for v, q in run.sliced.items())
        monkeypatch.setattr(parallel, "CHUNK_BYTES", per_index * run.n // 3)
        assert split.chunk_size(run, program) == run.n // 3
        monkeypatch.setattr(parallel, "CHUNK_BYTES", per_index - 1)
        assert split.chunk_size(run, program) == 2  # never fewer than two
        monkeypatch.setattr(parallel, "CHUNK_BYTES", per_index * run.n)
        assert split.chunk_size(run, program) == 0  # the whole is one chunk


@pytest.mark.parametrize("chunk_bytes", [0, 1 << 20])
@pytest.mark.parametrize("layout", ["batch-first", "batch-last"])
def test_runs_in_chunks_give_the_bits_of_whole_runs(layout, chunk_bytes, threads, split_small, monkeypatch):
    want = [t.data for t in _bn_step(*_bn_inputs(layout))]
    monkeypatch.setattr(parallel, "CHUNK_BYTES", chunk_bytes)
    compiled = ag.compile(_bn_step)
    compiled(*_bn_inputs(layout))
    (replay,) = [c.replay for entries in compiled.cache.values() for c in entries]
    assert replay.runs and all(r.chunk == (2 if chunk_bytes == 0 else 0) for r in replay.runs)
    for n in (1, 2):
        threads(n)
        for g, w in zip(compiled(*_bn_inputs(layout)), want):
            np.testing.assert_array_equal(g.data, w)


def test_small_runs_stay_whole():
    def fn(x):
        return ag.relu(x * 2.0 + 1.0)

    compiled = ag.compile(fn)
    compiled(ag.tensor(np.ones((4, 4))))
    (replay,) = [c.replay for entries in compiled.cache.values() for c in entries]
    assert replay.runs == []  # 48 elements: below MIN_ELEMENTS, the thread wake-up would cost more


# --- every primitive -----------------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402

from autograd.primitive import REGISTRY  # noqa: E402
from autograd.tensor import Tensor  # noqa: E402
from autograd.testing.strategies import primitive_args  # noqa: E402


def _forward_and_grads(prim, args, params, fresh=True):
    if fresh:  # a copy per call (fresh=False keeps the arguments' own layouts: strided views stay views)
        args = [Tensor(a.data.copy(), requires_grad=a.requires_grad) if isinstance(a, Tensor) else a for a in args]
    out = prim(*args, **params)
    diff = [a for a in args if isinstance(a, Tensor) and a.requires_grad]
    if out.dtype.kind != "f" or not diff:
        return [out.data]
    weight = np.random.default_rng(0).standard_normal(out.shape).astype(out.dtype)
    grads = ag.grad((out * weight).sum(), diff, allow_unused=True)
    return [out.data] + [g.data for g in grads if g is not None]


@pytest.mark.parametrize("name", [n for n in sorted(REGISTRY) if n != "matmul"])
def test_every_primitive_gives_the_same_bits_split_over_threads(name, threads, split_small):
    """Forward and VJPs with every split taken (elementwise calls, copies, window sums, pooling:
    thresholds at 0) on 2 and 3 threads equal the same calls on one thread. Not matmul: split by
    rows it rounds as BLAS does for another partition (OpenBLAS's own 1- and 2-thread results
    differ too); it is checked against np.matmul above, and eager against replay elsewhere."""
    prim = REGISTRY[name]

    @settings(max_examples=8)
    @given(drawn=primitive_args(prim))
    def check(drawn):
        args, params = drawn
        threads(1)
        want = _forward_and_grads(prim, args, params)
        for n in (2, 3):
            threads(n)
            got = _forward_and_grads(prim, args, params)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                np.testing.assert_array_equal(g, w)
        threads(1)

    check()


def _conv_pieces():
    """The conv layers' data movers at sizes that split: window sums (strided and not), a padding,
    an im2col copy, a 2x2 pooling (forward and VJP)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5, 4, 4, 3, 3)).astype(np.float32)
    img = rng.standard_normal((6, 5, 6, 6)).astype(np.float32)
    big = rng.standard_normal((4, 32, 18, 18)).astype(np.float32)
    big_windows = np.lib.stride_tricks.sliding_window_view(big, (3, 3), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5)
    return {
        "window_sum": ("window_sum", (x,), {"shape": (6, 5, 6, 6), "kernel": (3, 3), "stride": (1, 1), "dilation": (1, 1)}),
        "window_sum strided": ("window_sum", (x,), {"shape": (6, 5, 9, 9), "kernel": (3, 3), "stride": (2, 2),
                                                   "dilation": (1, 1)}),
        "unslice": ("unslice", (img,), {"index": (slice(None), slice(None), slice(1, 7), slice(2, 8)), "shape": (6, 5, 8, 9)}),
        "reshape copy": ("reshape", (big_windows,), {"shape": (4 * 16 * 16, 32 * 9)}),  # > 1 MB: copy_unaliased
        "max pool": ("max", (img.reshape(6, 5, 3, 2, 3, 2),), {"axis": (3, 5), "keepdims": False}),
    }


@pytest.mark.parametrize("case", list(_conv_pieces()))
def test_conv_data_movers_give_the_same_bits_split_over_threads(case, threads, split_small):
    name, arrays, params = _conv_pieces()[case]
    prim = REGISTRY[name]
    args = [Tensor(a, requires_grad=True) for a in arrays]
    threads(1)
    want = _forward_and_grads(prim, args, params, fresh=False)
    for n in (2, 3):
        threads(n)
        for nbytes in (a.nbytes + 4096 for a in arrays):  # freed memory now holds NaNs, not the last result
            np.full(nbytes // 4 + 16, np.nan, np.float32)
        got = _forward_and_grads(prim, args, params, fresh=False)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
