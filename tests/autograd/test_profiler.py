"""The profiler: per-op forward/backward time, saved bytes, NaN/Inf flags, source lines, hook hygiene."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
from autograd import profiler, viz
from autograd.graph import _Mode
from autograd.introspect import walk


def three_op(x_values=None):
    x = ag.tensor(np.array(x_values if x_values is not None else [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32))
    w = ag.tensor([1.0, -2.0, 3.0], requires_grad=True)
    b = ag.tensor([0.5, 0.5, 0.5], requires_grad=True)
    return x, w, b


def test_counts_forward_and_backward_per_primitive():
    x, w, b = three_op()
    with profiler.profile() as prof:
        y = (x * w + b).relu().sum()
        y.backward()
        with ag.no_grad():
            (x * 2.0).sum()  # unrecorded calls count too
    p = prof.per_prim
    assert {k: (v.count, v.bwd_count) for k, v in p.items()} == {
        "mul": (2, 1), "add": (1, 1), "relu": (1, 1), "sum": (2, 1)}
    assert all(v.fwd_s > 0 for v in p.values()) and all(v.bwd_s > 0 for v in p.values())
    assert p["mul"].saved_bytes == 24 + 12 and p["relu"].saved_bytes == 24
    assert prof.nonfinite_ops() == []


def test_backward_ops_are_not_counted_as_forward():
    x, w, b = three_op()
    with profiler.profile() as prof:
        y = (x * w).sum()
    with prof:
        y.backward()  # VJPs run primitives (broadcast_to, mul, sum_to); they belong to backward time
    assert {k: v.count for k, v in prof.per_prim.items()} == {"mul": 1, "sum": 1}


def test_table_is_sorted_by_time_and_totals():
    x, w, b = three_op()
    with profiler.profile() as prof:
        y = (x * w + b).tanh().sum()
        y.backward()
    table = prof.table()
    rows = table.splitlines()
    assert rows[0].split()[:3] == ["op", "calls", "fwd"]
    body = [r.split() for r in rows[2:-2]]
    totals = [float(r[5]) for r in body]
    assert totals == sorted(totals, reverse=True) and {r[0] for r in body} == {"mul", "add", "tanh", "sum"}
    last = rows[-1].split()
    assert last[0] == "total" and last[1] == "4" and abs(float(last[5]) - sum(totals)) < 0.01
    assert prof.table(sort_by="count", row_limit=2).count("\n") == 5
    with pytest.raises(ValueError, match="sort_by"):
        prof.table(sort_by="nope")


def test_nan_in_output_and_inf_in_gradient_are_flagged():
    x, w, b = three_op([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    with profiler.profile() as prof, np.errstate(all="ignore"):
        h = x * w + b  # has negative entries
        y = h.log().sum()  # log of a negative: NaN out
        y.backward(retain_graph=True)
    recs = {r.op: r for r in walk(y)}
    assert prof.stats(recs["log"].node).nonfinite_out and not prof.stats(recs["mul"].node).nonfinite_out
    assert "log" in prof.nonfinite_ops() and "NaN/Inf" in prof.table()

    z = ag.tensor([0.0, 1.0], requires_grad=True)
    with profiler.profile() as prof2, np.errstate(all="ignore"):
        s = ag.sqrt(z).sum()  # finite output, infinite gradient at 0
        s.backward(retain_graph=True)
    sqrt_node = next(r.node for r in walk(s) if r.op not in ("leaf", "sum"))
    stats = prof2.stats(sqrt_node)
    assert stats.nonfinite_grad and not stats.nonfinite_out


def test_source_line_of_each_recorded_op_is_captured():
    x, w, b = three_op()
    with profiler.profile():
        y = x * w  # the line the drawing's tooltip shows
    assert "test_profiler.py:" in y.grad_fn.source and y.grad_fn.source.endswith("y = x * w  # the line the drawing's tooltip shows")
    assert (x * w).grad_fn.source is None  # outside a profile nothing is captured


def test_observers_nest_and_unsubscribe():
    calls = []
    with ag.observe(on_vjp_start=lambda node, g: calls.append("start"),
                    on_vjp_end=lambda node, results: calls.append("end")):
        x, w, b = three_op()
        with profiler.profile(), viz.record_backward():
            (x * w).sum().backward()
        assert _Mode.observed
        assert calls == ["start", "end", "start", "end"]
    assert not _Mode.observed


def test_overlay_draws_profiled_times():
    x, w, b = three_op()
    with profiler.profile() as prof:
        y = (x * w + b).relu().sum()
        y.backward(retain_graph=True)
    source = viz.draw(y, overlay=prof).source
    assert source.count(" ms | bwd ") == 4 and "saved 36 B" in source and "NaN/Inf in" not in source.split("legend")[0]
