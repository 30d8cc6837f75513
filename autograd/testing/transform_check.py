"""Checks of a primitive's transform rules, for every registered primitive (users' ones included):

- its JVP against central finite differences (float64);
- the transpose identity <w, J v> == <J^T w, v> between its JVP and its VJP, to 1e-10;
- vmap of the primitive against a Python loop over the batch, with random batch axes;
- coverage: a primitive without a JVP or batching rule must declare the fallback it relies on.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from .. import func
from ..engine import grad
from ..primitive import REGISTRY, Primitive
from ..tensor import Tensor
from .primitive_check import non_differentiable
from .strategies import has_test_data, primitive_args

JVP_RTOL, JVP_ATOL, EPS = 1e-5, 1e-6, 1e-6
TRANSPOSE_TOL = 1e-10


def missing_rules(prim: Primitive) -> list[str]:
    """The transform rules a primitive neither declares nor opts out of (jvp_fallback / batch_fallback)."""
    missing = []
    if prim.jvp is None and not prim.jvp_fallback:
        missing.append("jvp")
    if prim.batch is None and not prim.batch_fallback:
        missing.append("batch")
    return missing


def _float_args(args) -> list[int]:
    return [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.dtype.kind == "f"]


def _call(prim: Primitive, args, params, i: int, x) -> Tensor:
    return prim(*args[:i], x, *args[i + 1:], **params)


def check_jvp(prim: Primitive, args: tuple, params: dict, seed: int = 0) -> None:
    """The JVP along a random tangent of each float argument, against finite differences; and
    <w, J v> (forward mode) against <J^T w, v> (reverse mode)."""
    gen = np.random.default_rng(seed)
    for i in _float_args(args):
        x = args[i]
        v = Tensor(gen.standard_normal(x.shape))
        out, jv = func.jvp(lambda xi: _call(prim, args, params, i, xi), (x,), (v,))
        assert jv.shape == out.shape, f"{prim.name}: JVP shape {jv.shape} for output {out.shape}"
        if non_differentiable(prim):  # declared derivative-free (a mask, stop_gradient): the tangent is zero
            assert not np.any(jv.data), f"{prim.name}: declares no derivative but its JVP is nonzero"
            continue
        plus = _call(prim, args, params, i, Tensor(x.data + EPS * v.data)).data
        minus = _call(prim, args, params, i, Tensor(x.data - EPS * v.data)).data
        numeric = (plus - minus) / (2 * EPS)
        assert jv.shape == out.shape, f"{prim.name}: JVP shape {jv.shape} for output {out.shape}"
        if not np.allclose(jv.data, numeric, rtol=JVP_RTOL, atol=JVP_ATOL):
            worst = np.max(np.abs(jv.data - numeric))
            raise AssertionError(f"{prim.name}: JVP for argument {i} differs from finite differences by {worst:.3g}")
        w = gen.standard_normal(out.shape)
        xg = Tensor(x.data, requires_grad=True)
        (jtw,) = grad(_call(prim, args, params, i, xg), [xg], grad_outputs=Tensor(w), allow_unused=True)
        lhs = float(np.sum(w * jv.data))
        rhs = 0.0 if jtw is None else float(np.sum(jtw.data * v.data))
        if abs(lhs - rhs) > TRANSPOSE_TOL * max(1.0, abs(lhs), abs(rhs)):
            raise AssertionError(f"{prim.name}: argument {i}: <w, J v> = {lhs!r} (JVP) but <J^T w, v> = {rhs!r} (VJP)")


def _example_variant(a, gen: np.random.Generator):
    """Another example of the same kind: floats scaled by 0.8..1.2 (signs, and so domains, kept), masks redrawn."""
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    if data.dtype == bool:
        return gen.random(data.shape) < 0.5
    return data * gen.uniform(0.8, 1.2, data.shape) if data.dtype.kind == "f" else data


def check_vmap(prim: Primitive, args: tuple, params: dict, seed: int = 0, size: int = 3) -> None:
    """vmap(prim) over random batch axes (some arguments unbatched) equals a loop over the examples."""
    gen = np.random.default_rng(seed)
    arrays = [i for i, a in enumerate(args) if isinstance(a, (Tensor, np.ndarray))]
    batched = [i for i in arrays if gen.random() < 0.7] or arrays[:1]
    in_axes, stacked, examples = [], [], []
    for i, a in enumerate(args):
        if i not in batched:
            in_axes.append(None)
            stacked.append(a)
            continue
        per = [_example_variant(a, gen) for _ in range(size)]
        axis = int(gen.integers(0, per[0].ndim + 1))
        in_axes.append(axis)
        stacked.append(Tensor(np.stack(per, axis=axis)))
        examples.append((i, per))
    out = func.vmap(lambda *xs: prim(*xs, **params), in_axes=tuple(in_axes))(*stacked)
    if out.shape[:1] != (size,):
        raise AssertionError(f"{prim.name}: vmap over {size} examples gives an output of shape {out.shape}")
    for b in range(size):
        one = list(args)
        for i, per in examples:
            one[i] = Tensor(per[b]) if isinstance(args[i], Tensor) else per[b]
        expected = prim(*one, **params).data
        got = out.data[b]
        assert got.shape == expected.shape, (
            f"{prim.name}: vmap gives {got.shape} per example, the loop {expected.shape}")
        if not np.allclose(got, expected, rtol=1e-12, atol=1e-12):
            raise AssertionError(f"{prim.name}: vmap differs from the loop at example {b} (in_axes {tuple(in_axes)}) "
                                 f"by {np.max(np.abs(got - expected)):.3g}")


def check_transforms(name: str | Primitive, max_examples: int | None = None) -> None:
    """Coverage, then JVP and vmap checks on Hypothesis-drawn arguments of a registered primitive."""
    prim = REGISTRY[name] if isinstance(name, str) else name
    missing = missing_rules(prim)
    if missing:
        raise AssertionError(f"{prim.name}: no {' and no '.join(missing)} rule; declare one, or declare "
                             f"{' and '.join(m + '_fallback=True' for m in missing)} to use the generic (slower) one")
    if not has_test_data(prim):
        raise AssertionError(f"{prim.name}: no test data: declare `domain` for each argument or an `examples` strategy")

    @given(drawn=primitive_args(prim), seed=st.integers(0, 2**31 - 1))
    def run(drawn, seed):
        args, params = drawn
        check_jvp(prim, args, params, seed)
        check_vmap(prim, args, params, seed)

    options = {"report_multiple_bugs": False}  # one clear failure, not an exception group
    if max_examples is not None:
        options["max_examples"] = max_examples
    settings(settings(), **options)(run)()
