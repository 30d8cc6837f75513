"""autograd.func's calling conventions: argnums, has_aux, pytrees of inputs, errors in the user's terms."""
import numpy as np
import pytest

import autograd as ag
from autograd import func
from autograd.errors import ShapeError

X = ag.tensor(np.array([0.5, -1.0, 2.0]))
Y = ag.tensor(np.array([1.5, 0.25, -0.5]))


def f(x, y):
    return (ag.tanh(x) * y).sum()


def test_argnums_and_has_aux():
    gx, gy = func.grad(f, argnums=(0, 1))(X, Y)
    np.testing.assert_allclose(gx.data, (1 - np.tanh(X.data) ** 2) * Y.data)
    np.testing.assert_allclose(gy.data, np.tanh(X.data))
    g, aux = func.grad(lambda x: (f(x, Y), x * 2), has_aux=True)(X)
    np.testing.assert_allclose(aux.data, 2 * X.data)
    (value, aux), g2 = func.value_and_grad(lambda x: (f(x, Y), "label"), has_aux=True)(X)
    assert aux == "label" and value.shape == ()
    np.testing.assert_allclose(g.data, g2.data)
    out, pull, aux = func.vjp(lambda x: (ag.tanh(x), 7), X, has_aux=True)
    assert aux == 7 and len(pull(ag.tensor(np.ones(3)))) == 1


def test_dict_inputs_give_dict_gradients():
    params = {"w": X, "b": {"inner": Y}}
    g = func.grad(lambda p: (p["w"] * p["b"]["inner"]).sum())(params)
    np.testing.assert_allclose(g["w"].data, Y.data)
    np.testing.assert_allclose(g["b"]["inner"].data, X.data)


def test_results_do_not_require_grad_and_inputs_are_untouched():
    x = ag.tensor(X.data.copy())
    g = func.grad(lambda x: (x ** 3).sum())(x)
    assert not g.requires_grad and not x.requires_grad and x.grad is None


def test_grad_of_grad_and_outer_tape():
    d2 = func.grad(lambda x: func.grad(lambda y: (y ** 3).sum())(x).sum())(X)
    np.testing.assert_allclose(d2.data, 6 * X.data)
    leaf = ag.tensor(X.data, requires_grad=True)  # the engine's backward through a transform
    func.grad(lambda x: (x ** 3).sum())(leaf).sum().backward()
    np.testing.assert_allclose(leaf.grad.data, 6 * X.data)


def test_unused_input_has_a_zero_gradient():
    g = func.grad(lambda x, y: (x * 2).sum(), argnums=1)(X, Y)
    np.testing.assert_array_equal(g.data, np.zeros(3))


def test_errors_name_the_problem():
    with pytest.raises(ShapeError, match=r"grad: f must return a scalar.*\(3,\)"):
        func.grad(ag.tanh)(X)
    with pytest.raises(ShapeError, match=r"jvp: primal 0 has shape \(3,\) but its tangent \(2,\)"):
        func.jvp(ag.tanh, (X,), (ag.tensor(np.ones(2)),))
    with pytest.raises(TypeError, match="tuples"):
        func.jvp(ag.tanh, X, X)
    with pytest.raises(TypeError, match="floating-point"):
        func.grad(lambda i: (i * 1.0).sum())(ag.tensor(np.arange(3)))
    with pytest.raises(ValueError, match="argnums"):
        func.grad(f, argnums=2)(X, Y)


def test_jacobians_of_several_arguments_and_shapes():
    def g(x, y):
        return ag.reshape(ag.einsum("i,j->ij", x, y), (9,))

    jr = func.jacrev(g, argnums=(0, 1))(X, Y)
    jf = func.jacfwd(g, argnums=(0, 1))(X, Y)
    assert jr[0].shape == (9, 3) and jf[1].shape == (9, 3)
    for a, b in zip(jr, jf):
        np.testing.assert_allclose(a.data, b.data)
    np.testing.assert_allclose(jr[0].data.reshape(3, 3, 3), np.einsum("ik,j->ijk", np.eye(3), Y.data))


def test_transforms_compose_in_any_order():
    g = np.random.default_rng(0)
    xs = ag.tensor(g.standard_normal((3, 4)))

    def f(x):
        return ag.tanh(x) * ag.exp(x).sum()

    def s(x):
        return (ag.tanh(x) ** 2).sum() * x.sum()

    loop = lambda t: np.stack([t(xs[i]).data for i in range(3)])  # noqa: E731
    np.testing.assert_allclose(func.vmap(func.jacrev(f))(xs).data, loop(func.jacrev(f)), rtol=1e-12)
    np.testing.assert_allclose(func.vmap(func.hessian(s))(xs).data, loop(func.hessian(s)), rtol=1e-12)
    np.testing.assert_allclose(func.jacrev(func.vmap(f))(xs).data, func.jacfwd(func.vmap(f))(xs).data, rtol=1e-12)
    h = func.hessian(s)(xs[0]).data
    np.testing.assert_allclose(func.jacrev(func.jacrev(s))(xs[0]).data, h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(func.jacfwd(func.jacfwd(s))(xs[0]).data, h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(func.jvp(func.grad(s), (xs[0],), (xs[1],))[1].data, h.reshape(4, 4) @ xs[1].data,
                               rtol=1e-12)


def test_transforms_work_under_no_grad():
    def s(x):
        return (ag.tanh(x) ** 2).sum()

    expected = func.hessian(s)(X).data
    with ag.no_grad():
        np.testing.assert_allclose(func.hessian(s)(X).data, expected)
        np.testing.assert_allclose(func.jacrev(func.grad(s))(X).data, expected, rtol=1e-12)
        np.testing.assert_allclose(func.grad(s)(X).data, 2 * np.tanh(X.data) * (1 - np.tanh(X.data) ** 2))


def test_an_outer_graph_survives_an_inner_transform():
    x = ag.tensor(X.data, requires_grad=True)
    y = x * 2.0
    with ag.no_grad():
        func.grad(lambda v: (v ** 2).sum())(y)
    y.sum().backward()  # y's graph was not freed by the transform
    np.testing.assert_allclose(x.grad.data, 2 * np.ones(3))
