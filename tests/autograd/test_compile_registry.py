"""Registry-driven: every primitive replays, random programs over the registry replay like eager,
and a user primitive made with `defprim` replays too."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autograd as ag
from autograd.primitive import REGISTRY, defprim, out_writer, unregister
from autograd.tensor import Tensor
from autograd.testing.strategies import primitive_args

ALL = sorted(REGISTRY)


def _flipped(a):
    """Other values of the same shape, dtype and domain: the same elements in reverse order."""
    data = a.data if isinstance(a, Tensor) else a
    if not isinstance(data, np.ndarray) or data.ndim == 0:
        return a
    new = np.flip(data.reshape(-1)).reshape(data.shape).copy()
    return Tensor(new, requires_grad=a.requires_grad) if isinstance(a, Tensor) else new


def _program_fn(pieces):
    """loss = sum_k sum(prim_k(args_k) * weight_k); returns the loss and every input's gradient."""
    def run(*tensors):
        it = iter(tensors)
        total = None
        for prim, n, params, weight in pieces:
            args = [next(it) for _ in range(n)]
            out = prim(*args, **params)
            if out.dtype.kind != "f":
                continue
            term = (out * weight.astype(out.dtype)).sum()
            total = term if total is None else total + term
        diff = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
        if total is None or not diff:
            return total
        grads = ag.grad(total, diff, allow_unused=True)
        return (total,) + tuple(g for g in grads if g is not None)
    return run


def _fresh(args):
    return [Tensor(a.data.copy(), requires_grad=a.dtype.kind == "f") if isinstance(a, Tensor) else a for a in args]


def _compare(prims_args, simplify=True):
    pieces, first, second = [], [], []
    for k, (prim, (args, params)) in enumerate(prims_args):
        out_shape = prim(*args, **params).shape
        weight = np.random.default_rng(k).standard_normal(out_shape)
        pieces.append((prim, len(args), params, weight))
        first += _fresh(args)
        second += [_flipped(a) for a in _fresh(args)]
    fn = _program_fn(pieces)
    compiled = ag.compile(fn, simplify=simplify)
    for args in (first, second):
        want = fn(*_fresh(args))
        got = compiled(*_fresh(args))
        want = want if isinstance(want, tuple) else (want,)
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            if w is None:
                assert g is None
                continue
            np.testing.assert_array_equal(g.data, w.data)
    assert compiled.traces == 1, "the second call must replay"
    return compiled


@pytest.mark.parametrize("name", ALL)
def test_every_primitive_replays(name):
    """Each primitive's forward and VJP, traced once and replayed on other values, equal eager."""
    prim = REGISTRY[name]

    @settings(max_examples=5)
    @given(drawn=primitive_args(prim))
    def check(drawn):
        compiled = _compare([(prim, drawn)], simplify=False)  # the primitive's own equation stays
        names = {e.name for p in compiled.programs for e in p.eqns}
        assert name in names or any(n.startswith(f"vjp[{name}]") for n in names) or name in ("sum_to", "cast"), names

    check()


@settings(max_examples=15)
@given(st.data())
def test_random_programs_over_the_registry_replay_like_eager(data):
    names = data.draw(st.lists(st.sampled_from(ALL), min_size=1, max_size=4))
    _compare([(REGISTRY[n], data.draw(primitive_args(REGISTRY[n]))) for n in names])


def test_a_defprim_user_primitive_replays():
    cube = defprim("test_compile_cube", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x)
    try:
        x = Tensor(np.linspace(-1, 1, 5), requires_grad=True)
        _compare([(cube, ((x,), {}))])
    finally:
        unregister("test_compile_cube")


def test_the_replay_check_fails_for_a_primitive_without_a_replayable_forward():
    """A forward that depends on Python state outside its arrays cannot be replayed: the check says so."""
    calls = []

    def forward(x):
        calls.append(1)
        return x + len(calls)

    bad = defprim("test_compile_impure", forward, lambda g, ans, x: g)
    try:
        x = Tensor(np.zeros(3), requires_grad=True)
        with pytest.raises(AssertionError):
            _compare([(bad, ((x,), {}))])
    finally:
        unregister("test_compile_impure")


@pytest.mark.parametrize("name", [n for n in ALL if out_writer(REGISTRY[n]) is not None])
def test_out_writers_write_what_the_forward_returns(name):
    """Replay writes these primitives into its own buffers: the same bits as the forward."""
    prim = REGISTRY[name]
    writer = out_writer(prim)

    @settings(max_examples=10)
    @given(drawn=primitive_args(prim))
    def check(drawn):
        args, params = drawn
        arrays = [a.data if isinstance(a, Tensor) else a for a in args]
        want = np.asarray(prim.forward(*arrays, **params))
        buffer = np.empty_like(want)
        got = writer(*arrays, out=buffer, **params)
        assert got is buffer
        np.testing.assert_array_equal(buffer, want)

    check()
