"""The engine adds a node's cotangents in place only when nothing else can see the array it adds into.

`engine._sum` writes into the first cotangent's array when reference counts show that only the engine
holds it. These tests check both directions: the in-place add happens on a graph with fan-out (else
the optimisation is silently gone), and a cotangent someone else holds (the caller's seed, an
observer, a gradient that is also another node's) is never changed. Gradients are the same bits
with and without it.
"""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
from autograd import engine
from autograd.graph import observe


class _CountingNumpy:
    """engine's `np`, counting the adds written in place (np.add with out=)."""

    def __init__(self) -> None:
        self.in_place = 0

    def __getattr__(self, name):
        return getattr(np, name)

    def add(self, *args, **kwargs):
        self.in_place += "out" in kwargs
        return np.add(*args, **kwargs)


@pytest.fixture(autouse=True)
def small_arrays_too(monkeypatch):
    monkeypatch.setattr(engine, "IN_PLACE_MIN", 1)  # the tests' arrays are small


@pytest.fixture
def counting(monkeypatch):
    spy = _CountingNumpy()
    monkeypatch.setattr(engine, "np", spy)
    return spy


def _batch_norm_like(x):
    """Fan-out as in batch norm: `centered` feeds a square and a scale, x feeds a mean and a sub."""
    centered = x - ag.mean(x, axis=0, keepdims=True)
    var = ag.mean(centered * centered, axis=0, keepdims=True)
    return ag.sum(centered * (var + 1e-5) ** -0.5 * 1.5)


def _grads(fn, data, private_refs):
    old = engine._PRIVATE_REFS
    engine._PRIVATE_REFS = private_refs
    try:
        x = ag.tensor(data, requires_grad=True)
        fn(x).backward()
        return x.grad.data
    finally:
        engine._PRIVATE_REFS = old


def test_fan_out_accumulates_in_place(counting):
    x = ag.tensor(np.random.default_rng(0).standard_normal((8, 3)), requires_grad=True)
    _batch_norm_like(x).backward()
    assert counting.in_place >= 2  # centered's two extra contributions, and x's


def test_same_bits_with_and_without_in_place():
    data = np.random.default_rng(1).standard_normal((16, 5)).astype(np.float32)
    for fn in (_batch_norm_like, lambda x: ag.sum(ag.exp(x) * x + x * x + ag.tanh(x))):
        np.testing.assert_array_equal(_grads(fn, data, engine._PRIVATE_REFS), _grads(fn, data, 0))


def test_callers_seed_is_never_written(counting):
    x = ag.tensor(np.ones((4, 3)), requires_grad=True)
    u = x * 3.0
    out = u + u  # add's VJP passes the seed itself to u twice
    seed = ag.tensor(np.full((4, 3), 2.0))
    out.backward(seed)
    np.testing.assert_array_equal(seed.data, np.full((4, 3), 2.0))
    np.testing.assert_array_equal(x.grad.data, np.full((4, 3), 12.0))


def test_what_an_observer_kept_is_never_written():
    kept = []
    x = ag.tensor(np.random.default_rng(2).standard_normal((6, 4)), requires_grad=True)
    with observe(on_vjp_end=lambda node, results: kept.extend((r, r.data.copy()) for r in results if r is not None)):
        _batch_norm_like(x).backward()
    assert kept
    for r, seen in kept:
        np.testing.assert_array_equal(r.data, seen)


class _Subclass(np.ndarray):
    pass


@ag.no_grad()
def test_sum_writes_only_an_array_nobody_else_holds():  # as in backward without create_graph
    u = ag.tensor(np.ones(4))
    held = ag.tensor(np.zeros(4))  # held as _run holds `prev`: one caller reference
    total = engine._sum(held, u)
    assert total is held and held.data[0] == 1.0

    held = ag.tensor(np.zeros(4))
    other = held  # a second holder of the tensor (another node's entry, a hook, the user)
    total = engine._sum(held, u)
    assert total is not held and other.data[0] == 0.0

    held = ag.tensor(np.zeros(4))
    view = held.data[1:]  # a view keeps its base referenced
    total = engine._sum(held, u)
    assert total is not held and view[0] == 0.0

    held = ag.tensor(np.zeros(4))
    same = ag.Tensor._make(held.data)  # another tensor on the same array
    total = engine._sum(held, u)
    assert total is not held and same.data[0] == 0.0

    held = ag.Tensor._make(np.zeros(4).view(_Subclass))  # a trace's arrays are an ndarray subclass
    total = engine._sum(held, u)
    assert total is not held and held.data[0] == 0.0

    held = ag.tensor(np.zeros(4, np.float32))
    total = engine._sum(held, ag.tensor(np.ones(4)))
    assert total is not held and total.dtype == np.float64  # the sum's dtype, not the first's
    held = ag.tensor(np.zeros(1))
    total = engine._sum(held, u)
    assert total is not held and total.shape == (4,)  # broadcast to a larger shape: a new array


def test_small_arrays_get_a_fresh_sum(monkeypatch, counting):
    monkeypatch.setattr(engine, "IN_PLACE_MIN", 1 << 14)
    x = ag.tensor(np.random.default_rng(3).standard_normal((8, 3)), requires_grad=True)
    _batch_norm_like(x).backward()
    assert counting.in_place == 0


def test_create_graph_records_the_sum():
    x = ag.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    (g,) = ag.grad(_batch_norm_like(x), x, create_graph=True)
    (gg,) = ag.grad(ag.sum(g * g), x)
    assert g.requires_grad and np.all(np.isfinite(gg.data))
