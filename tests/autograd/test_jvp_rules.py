"""Every registered primitive's transform rules, checked the same way (generated from the registry)."""
import numpy as np
import pytest

import autograd as ag
from autograd import func
from autograd.batching import to_front
from autograd.primitive import REGISTRY, defprim, unregister, temporary_primitive
from autograd.testing import check_transforms, missing_rules

ALL = sorted(REGISTRY)


@pytest.mark.parametrize("name", ALL)
def test_every_primitive_declares_jvp_and_batching_rules(name):
    assert missing_rules(REGISTRY[name]) == []


@pytest.mark.parametrize("name", ALL)
def test_jvp_matches_finite_differences_and_transposes_to_the_vjp_and_vmap_matches_a_loop(name):
    check_transforms(name)


def test_a_primitive_without_rules_fails_coverage():
    cube = defprim("user_cube_norules", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x)
    try:
        assert missing_rules(cube) == ["jvp", "batch"]
        with pytest.raises(AssertionError, match="no jvp and no batch rule"):
            check_transforms("user_cube_norules", max_examples=2)
    finally:
        unregister("user_cube_norules")


def test_declared_fallbacks_are_covered_and_correct():
    """The double-VJP JVP and the looping batch rule, on a user primitive that declares them."""
    cube = defprim("user_cube_fallback", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x,
                   jvp_fallback=True, batch_fallback=True)
    try:
        assert missing_rules(cube) == []
        check_transforms("user_cube_fallback", max_examples=10)
        x = ag.tensor(np.array([1.0, 2.0]))
        _, t = func.jvp(cube, (x,), (ag.tensor(np.array([1.0, 1.0])),))
        np.testing.assert_allclose(t.data, [3.0, 12.0])
    finally:
        unregister("user_cube_fallback")


def test_a_wrong_jvp_rule_is_caught():
    with temporary_primitive("user_bad_square", np.square, lambda g, ans, x: g * 2 * x,
                             jvp=lambda ts, ans, x: ts[0] * x, batch=lambda args, dims: (bad(args[0]), dims[0])) as bad:
        with pytest.raises(AssertionError, match="finite differences"):
            check_transforms("user_bad_square", max_examples=5)


def test_a_wrong_batching_rule_is_caught():
    with temporary_primitive(
            "user_bad_batch_sum", lambda x: np.sum(x, axis=0), lambda g, ans, x: ag.broadcast_to(g, x.shape),
            jvp=lambda ts, ans, x: bad(ts[0]), batch=lambda args, dims: (bad(to_front(*args, *dims)), 0),
            examples=lambda draw, S: ((draw(S.tensors(shape=S.shapes(min_dims=2, max_dims=2, min_side=2))),), {})) as bad:
        with pytest.raises(AssertionError, match="vmap"):
            check_transforms("user_bad_batch_sum", max_examples=10)


def test_double_vjp_fallback_agrees_with_the_rules():
    from autograd.forward import double_vjp_only

    rng = np.random.default_rng(0)
    x, v = ag.tensor(rng.standard_normal((3, 4))), ag.tensor(rng.standard_normal((3, 4)))
    w = ag.tensor(rng.standard_normal((4, 2)))

    def f(x):
        return ag.softmax(ag.tanh(x) @ w * x.sum(axis=1, keepdims=True), axis=0).max(axis=1)

    _, fast = func.jvp(f, (x,), (v,))
    # the fallback is built from the VJPs: primitives that declare none (stop_gradient, the masks) keep
    # their zero JVP rule
    with double_vjp_only([n for n, p in REGISTRY.items() if p.variadic or any(v is not None for v in p.vjps)]):
        _, slow = func.jvp(f, (x,), (v,))
    np.testing.assert_allclose(fast.data, slow.data, rtol=1e-12, atol=1e-12)


def test_check_grads_forward_mode_passes_on_a_composite_and_catches_a_wrong_jvp():
    from autograd.testing import GradientCheckError, check_grads

    x = np.random.default_rng(0).standard_normal((3, 4))
    check_grads(lambda x: ag.logsumexp(ag.tanh(x) * x, axis=1), x, modes=("fwd", "rev"))
    check_grads(lambda x: ag.softmax(x, axis=0) @ x.T, x, order=2, modes=("fwd",))
    bad = defprim("user_bad_jvp_only", np.square, lambda g, ans, x: g * 2 * x, jvp=lambda ts, ans, x: ts[0] * 3 * x,
                  batch_fallback=True)
    try:
        check_grads(bad, x, modes=("rev",))  # the VJP is right
        with pytest.raises(GradientCheckError, match="forward mode, order 1"):
            check_grads(bad, x, modes=("fwd",))
    finally:
        unregister("user_bad_jvp_only")
    with pytest.raises(ValueError, match="modes"):
        check_grads(ag.tanh, x, modes=("forward",))
