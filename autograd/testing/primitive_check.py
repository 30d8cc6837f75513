"""`check_primitive`: everything the suite checks for one primitive, callable on a user's primitive.

For drawn arguments: first- and (when smooth) second-order gradients against finite differences;
inputs never mutated by forward or backward; gradients never aliasing inputs, outputs or each other;
float64 in, float64 out; and for a linear primitive, that its VJP is its declared transpose with
<A x, y> == <x, A^T y>.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given

from ..engine import grad
from ..primitive import REGISTRY, Primitive
from ..tensor import Tensor
from .gradcheck import check_grads
from .strategies import has_test_data, primitive_args


def _differentiable(prim: Primitive, args) -> list[int]:
    return [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.dtype.kind == "f"]


def non_differentiable(prim: Primitive) -> bool:
    """A primitive that declares no VJP at all (a comparison, sign, stop_gradient): no derivative flows
    through it, whatever finite differences of its forward say."""
    return not prim.variadic and all(v is None for v in prim.vjps)


def check_primitive_once(prim: Primitive, args: tuple, params: dict, order: int | None = None) -> None:
    """All checks for one drawn set of arguments."""
    diff = _differentiable(prim, args)
    before = [np.array(a.data if isinstance(a, Tensor) else a, copy=True) for a in args]
    xs = [Tensor(a.data, requires_grad=True) if i in diff else a for i, a in enumerate(args)]
    out = prim(*xs, **params)
    assert out.dtype == np.float64 or prim.name == "cast" or out.dtype == bool and non_differentiable(prim), (
        f"{prim.name}: float64 inputs gave {out.dtype}")
    v = Tensor(np.random.default_rng(1).standard_normal(out.shape))
    gs = grad((out * v).sum(), [xs[i] for i in diff], retain_graph=True, allow_unused=True)
    for a, b in zip(args, before):
        now = a.data if isinstance(a, Tensor) else a
        assert np.array_equal(np.asarray(now), b, equal_nan=True), f"{prim.name}: an input was mutated"
    arrays = [out.data] + [x.data for x in xs if isinstance(x, Tensor)]
    for k, g in enumerate(gs):
        if g is None:
            continue
        assert g.shape == xs[diff[k]].shape, f"{prim.name}: gradient {g.shape} for input {xs[diff[k]].shape}"
        others = arrays + [h.data for j, h in enumerate(gs) if h is not None and j != k]
        assert not any(np.shares_memory(g.data, o) for o in others), f"{prim.name}: gradient {k} aliases another array"
    if prim.transpose is not None:
        _check_transpose(prim, xs, params, out, diff)
    if non_differentiable(prim):  # declared derivative-free: backward must give nothing, not a zero
        assert all(g is None for g in gs), f"{prim.name}: declares no VJP but backward gave a gradient"
        return
    if order is None:
        order = 2 if prim.smooth else 1
    check_grads(lambda *ys: prim(*ys, **params), *args, order=order, argnums=diff)


def _check_transpose(prim: Primitive, xs, params, out, diff) -> None:
    """<A x, y> == <x, A^T y>, with A^T computed by the VJP, which must be the declared transpose."""
    (i,) = diff
    y = Tensor(np.random.default_rng(2).standard_normal(out.shape), requires_grad=True)
    x = xs[i]
    probe = prim(*xs, **params)
    (aty,) = grad(probe, [x], grad_outputs=y, create_graph=True)
    if aty._node is not None:
        assert aty._node.prim.name in (prim.transpose, "sum_to", "broadcast_to", prim.name), (
            f"{prim.name}: its VJP is '{aty._node.prim.name}', declared transpose '{prim.transpose}'")
    lhs = float(np.sum(out.data * y.data))
    rhs = float(np.sum(x.data * aty.data))
    assert np.isclose(lhs, rhs, rtol=1e-12, atol=1e-12), f"{prim.name}: <Ax, y> = {lhs!r} but <x, A^T y> = {rhs!r}"


def check_primitive(name: str | Primitive, max_examples: int | None = None) -> None:
    """Run every check on Hypothesis-drawn arguments of a registered primitive."""
    prim = REGISTRY[name] if isinstance(name, str) else name
    if not has_test_data(prim):
        raise AssertionError(
            f"{prim.name}: no test data: declare `domain` for each argument or an `examples` strategy")
    from hypothesis import settings

    run = given(drawn=primitive_args(prim))(lambda drawn: check_primitive_once(prim, *drawn))
    if max_examples is not None:
        run = settings(max_examples=max_examples)(run)
    run()
