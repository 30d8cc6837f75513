"""Engine invariants: accumulation, freeing, deep chains, grad modes, higher order."""
import gc
import weakref

import numpy as np
import pytest

import autograd as ag
from autograd.errors import GraphError
from autograd.testing import check_grads


def test_backward_accumulates_into_leaves_across_calls():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3 + 2, 3 + 4])


def test_diamond_graph_accumulates_both_paths():
    x = ag.tensor(2.0, requires_grad=True)
    y = x * x  # used twice below
    z = y * 3 + y.exp()
    z.backward()
    assert x.grad.item() == pytest.approx(3 * 2 * 2 + np.exp(4) * 2 * 2, rel=1e-6)


def test_same_tensor_twice_in_one_op():
    x = ag.tensor([3.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad.item() == pytest.approx(6.0)


def test_non_scalar_backward_needs_a_gradient():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(GraphError, match=r"shape \(2,\).*scalar"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 10.0]))
    np.testing.assert_allclose(x.grad.data, [2, 20])


def test_gradient_shape_mismatch_is_clear():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(GraphError, match=r"gradient shape \(3,\) does not match output shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_second_backward_through_freed_graph_is_a_clear_error():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(GraphError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.data, 4 * np.exp([1.0, 2.0]), rtol=1e-6)


def test_graph_is_freed_after_backward():
    x = ag.tensor(np.ones(1000), requires_grad=True)
    hidden = x * 2
    probe = weakref.ref(hidden)
    loss = (hidden.exp()).sum()
    del hidden
    gc.collect()
    assert probe() is not None  # kept alive by the graph
    loss.backward()
    gc.collect()
    assert probe() is None  # the saved intermediate was released by backward
    assert loss._node.freed


def test_no_reference_cycles_keep_graphs_alive():
    gc.collect()
    gc.disable()
    try:
        x = ag.tensor(np.ones(10), requires_grad=True)
        y = (x * 2).exp().sum()
        probe = weakref.ref(y._node)
        del y
        assert probe() is None  # freed by reference counting alone, no gc needed
    finally:
        gc.enable()


def test_no_grad_records_nothing_and_saves_nothing():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with ag.no_grad():
        y = (x * 2).exp()
    assert y._node is None and not y.requires_grad

    @ag.no_grad()
    def f(t):
        return t * 2

    assert f(x)._node is None
    with ag.no_grad():
        with ag.enable_grad():
            assert (x * 2).requires_grad
    assert ag.is_grad_enabled()


def test_set_grad_enabled_as_call_context_and_decorator():
    x = ag.tensor([1.0], requires_grad=True)
    with ag.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert ag.is_grad_enabled()

    @ag.set_grad_enabled(False)
    def g(t):
        return t * 2

    assert ag.is_grad_enabled()
    assert not g(x).requires_grad
    ag.set_grad_enabled(False)
    assert not ag.is_grad_enabled()
    ag.set_grad_enabled(True)
    assert ag.is_grad_enabled()


def test_no_graph_when_no_input_requires_grad():
    a = ag.tensor([1.0, 2.0])
    assert (a * 2 + 1)._node is None


def test_grad_does_not_touch_leaf_grad_and_handles_unused():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    z = ag.tensor([1.0], requires_grad=True)
    (gx,) = ag.grad((x * x).sum(), x)
    np.testing.assert_allclose(gx.data, [2, 4])
    assert x.grad is None
    with pytest.raises(GraphError, match="input 1.*not part of the graph"):
        ag.grad((x * x).sum(), [x, z])
    gx, gz = ag.grad((x * x).sum(), [x, z], allow_unused=True)
    assert gz is None


def test_grad_with_respect_to_an_intermediate():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3
    y = (h * h).sum()
    (gh,) = ag.grad(y, h)
    np.testing.assert_allclose(gh.data, 2 * h.data)


def test_grads_never_alias():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    y = ag.tensor([3.0, 4.0], requires_grad=True)
    seed = ag.tensor([1.0, 1.0])
    (x + y).backward(seed)
    assert not np.shares_memory(x.grad.data, y.grad.data)
    assert not np.shares_memory(x.grad.data, seed.data)
    x.grad.data[0] = 100.0
    assert y.grad.data[0] == 1.0


@pytest.mark.parametrize("order", ["C", "F"])
def test_a_leaf_gets_its_gradient_laid_out_as_itself(order):
    """x @ w.T gives w's gradient as the transpose of x.T @ g; .grad is laid out as w (PyTorch's
    layout contract), so that an optimizer's in-place arithmetic runs over matching layouts."""
    rng = np.random.default_rng(0)
    w = ag.tensor(np.asarray(rng.standard_normal((4, 6)), order=order), requires_grad=True)
    x = ag.tensor(rng.standard_normal((5, 6)))
    (x @ w.T).sum().backward()
    assert w.grad.data.flags[f"{order}_CONTIGUOUS"]
    np.testing.assert_allclose(w.grad.data, np.ones((5, 4)).T @ x.data)
    (dw,) = ag.grad((x @ w.T).sum(), [w])
    assert dw.data.flags[f"{order}_CONTIGUOUS"]


def test_backward_of_a_leaf_itself():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    x.backward(np.array([1.0, 1.0]))
    np.testing.assert_allclose(x.grad.data, [1, 1])


def test_backward_on_tensor_without_grad_is_clear():
    with pytest.raises(GraphError, match="does not require grad"):
        ag.tensor(1.0).backward()


def test_in_place_change_of_a_saved_tensor_is_detected():
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    x = ag.tensor([3.0, 4.0])
    y = (w * x).sum()
    x += 1  # x was saved by mul
    with pytest.raises(GraphError, match=r"'mul'.*modified in place"):
        y.backward()


def test_in_place_on_a_leaf_requiring_grad_is_refused():
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(GraphError, match="in-place"):
        w.add_(1.0)
    with ag.no_grad():
        w.add_(1.0)
    np.testing.assert_allclose(w.data, [2, 3])


def test_grad_of_grad_of_cube_is_6x():
    x = ag.tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    (g,) = ag.grad((x ** 3).sum(), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    (h,) = ag.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 6 * x.data)


def test_backward_create_graph_then_differentiate_grad():
    x = ag.tensor(np.array([1.5]), requires_grad=True)
    (x.exp() * x).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.requires_grad
    (h,) = ag.grad(gx.sum(), x)
    # d/dx (e^x + x e^x) = 2 e^x + x e^x
    assert h.item() == pytest.approx(2 * np.exp(1.5) + 1.5 * np.exp(1.5))


def _mlp_loss(params, x, y):
    w1, b1, w2, b2 = params
    h = (x @ w1 + b1).tanh()
    out = h @ w2 + b2
    return (ag.log_softmax(out, axis=-1) * y).sum() * -1.0


def test_hessian_vector_product_of_an_mlp_matches_finite_differences():
    rng = np.random.default_rng(0)
    shapes = [(4, 5), (5,), (5, 3), (3,)]
    params = [ag.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]
    x = ag.tensor(rng.standard_normal((6, 4)))
    y = ag.tensor(np.eye(3)[rng.integers(0, 3, 6)])
    vs = [rng.standard_normal(s) for s in shapes]

    grads = ag.grad(_mlp_loss(params, x, y), params, create_graph=True)
    gv = sum((g * v).sum() for g, v in zip(grads, vs))
    hvp = ag.grad(gv, params)

    def flat_grad(ps):
        ts = [ag.tensor(p, requires_grad=True) for p in ps]
        return [g.data for g in ag.grad(_mlp_loss(ts, x, y), ts)]

    eps = 1e-5
    plus = flat_grad([p.data + eps * v for p, v in zip(params, vs)])
    minus = flat_grad([p.data - eps * v for p, v in zip(params, vs)])
    for h, a, b in zip(hvp, plus, minus):
        np.testing.assert_allclose(h.data, (a - b) / (2 * eps), rtol=1e-5, atol=1e-7)


def test_check_grads_on_an_mlp_to_second_order():
    rng = np.random.default_rng(1)
    x = ag.tensor(rng.standard_normal((3, 4)))
    y = ag.tensor(np.eye(3)[[0, 2, 1]])
    ps = [rng.standard_normal(s) for s in [(4, 5), (5,), (5, 3), (3,)]]
    check_grads(lambda *p: _mlp_loss(p, x, y), *ps, order=2)


def test_a_product_of_a_tensor_with_itself_computes_its_cotangent_once():
    """mul is symmetric: x * x's backward multiplies g by x once and gives it to both arguments
    (batch norm's variance), and the gradient is still 2 x g, to second order too."""
    x = ag.tensor(np.array([1.5, -2.0, 3.0]), requires_grad=True)
    (gx,) = ag.grad(ag.sum(x * x), [x], create_graph=True)
    np.testing.assert_array_equal(gx.data, 2 * x.data)
    (ggx,) = ag.grad(ag.sum(gx), [x])
    np.testing.assert_array_equal(ggx.data, [2.0, 2.0, 2.0])
    program = ag.trace(lambda t: ag.grad(ag.sum(t * t), [t])[0], x)
    assert [e.name for e in program.eqns].count("mul") == 2  # the forward product and one VJP product
