"""Hypothesis strategies for optimizer configurations, with the invariants every user can assert.

Public: a user testing a training step, a custom optimizer or a schedule draws valid configurations
here instead of hand-picking three. Each invariant is a small function that raises AssertionError:

- `assert_zero_gradient_keeps_still`: a zero gradient leaves the parameters unchanged for every
  optimizer without weight decay (SGD with any momentum, Adam, AdamW, RMSprop);
- `assert_adam_first_step_is_lr_sign`: Adam's first step moves each entry by lr * sign(g)
  (bias correction makes m / sqrt(v) = g / |g|), up to eps / |g|.

Needs only autograd (optim never imports nn): parameters are plain Tensors.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from autograd import Tensor
from autograd.testing import strategies as S

from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["learning_rates", "sgd_configs", "adam_configs", "rmsprop_configs", "optimizer_configs", "parameters",
           "gradients_for", "assert_zero_gradient_keeps_still", "assert_adam_first_step_is_lr_sign"]


def learning_rates() -> st.SearchStrategy[float]:
    """Learning rates from 1e-4 to 1, drawn on a log scale."""
    return st.integers(-8, 0).map(lambda k: 10.0 ** (k / 2))


def _weight_decay(weight_decay: bool | None) -> st.SearchStrategy[float]:
    """None: either; False: 0 only; True: positive only."""
    positive = st.sampled_from([1e-4, 1e-2, 0.1])
    return {None: st.one_of(st.just(0.0), positive), False: st.just(0.0), True: positive}[weight_decay]


@st.composite
def sgd_configs(draw, weight_decay: bool | None = None) -> tuple[type[Optimizer], dict[str, Any]]:
    """(SGD, kwargs): plain, momentum, dampened or Nesterov, maximize or not."""
    momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
    nesterov = momentum > 0 and draw(st.booleans())
    dampening = 0.0 if nesterov else draw(st.sampled_from([0.0, 0.1]))
    return SGD, dict(lr=draw(learning_rates()), momentum=momentum, dampening=dampening, nesterov=nesterov,
                     weight_decay=draw(_weight_decay(weight_decay)), maximize=draw(st.booleans()))


@st.composite
def adam_configs(draw, weight_decay: bool | None = None, decoupled: bool | None = None):
    """(Adam or AdamW, kwargs) with valid betas, eps, amsgrad and maximize."""
    cls = {None: draw(st.sampled_from([Adam, AdamW])), False: Adam, True: AdamW}[decoupled]
    betas = (draw(st.sampled_from([0.0, 0.5, 0.9])), draw(st.sampled_from([0.9, 0.99, 0.999])))
    return cls, dict(lr=draw(learning_rates()), betas=betas, eps=draw(st.sampled_from([1e-8, 1e-6])),
                     weight_decay=draw(_weight_decay(weight_decay)), amsgrad=draw(st.booleans()),
                     maximize=draw(st.booleans()))


@st.composite
def rmsprop_configs(draw, weight_decay: bool | None = None):
    """(RMSprop, kwargs), centered or not, with or without momentum."""
    return RMSprop, dict(lr=draw(learning_rates()), alpha=draw(st.sampled_from([0.9, 0.99])),
                         eps=draw(st.sampled_from([1e-8, 1e-6])), momentum=draw(st.sampled_from([0.0, 0.9])),
                         centered=draw(st.booleans()), weight_decay=draw(_weight_decay(weight_decay)),
                         maximize=draw(st.booleans()))


def optimizer_configs(weight_decay: bool | None = None) -> st.SearchStrategy[tuple[type[Optimizer], dict]]:
    """(optimizer class, kwargs) for any built-in optimizer; weight_decay=False draws none."""
    return st.one_of(sgd_configs(weight_decay), adam_configs(weight_decay), rmsprop_configs(weight_decay))


def parameters(max_tensors: int = 3, dtype=np.float64) -> st.SearchStrategy[list[Tensor]]:
    """A list of leaf Tensors that require grad (float64 by default, so invariants hold exactly)."""
    one = S.arrays(S.shapes(max_dims=2, max_side=4), dtype=dtype).map(lambda a: Tensor(a, requires_grad=True))
    return st.lists(one, min_size=1, max_size=max_tensors)


@st.composite
def gradients_for(draw, params: list[Tensor], min_magnitude: float = 1e-3):
    """One gradient array per parameter, every entry at least `min_magnitude` away from zero."""
    return [draw(S.arrays(st.just(p.shape), dtype=p.dtype, elements=st.floats(min_magnitude, 2.0).flatmap(
        lambda m: st.sampled_from([m, -m])))) for p in params]


def _step(cls: type[Optimizer], kwargs: dict, params: list[Tensor], grads: list[np.ndarray]) -> list[np.ndarray]:
    before = [p.data.copy() for p in params]
    for p, g in zip(params, grads):
        p.grad = Tensor(np.asarray(g, dtype=p.dtype))
    cls(params, **kwargs).step()
    return before


def assert_zero_gradient_keeps_still(cls: type[Optimizer], kwargs: dict, params: list[Tensor], steps: int = 3) -> None:
    """Zero gradients for `steps` steps leave every parameter exactly as it was (no weight decay)."""
    if kwargs.get("weight_decay", 0):
        raise ValueError(f"{cls.__name__}: with weight decay a zero gradient still moves the parameters")
    before = [p.data.copy() for p in params]
    opt = cls(params, **kwargs)
    for _ in range(steps):
        for p in params:
            p.grad = Tensor(np.zeros_like(p.data))
        opt.step()
    for k, (p, b) in enumerate(zip(params, before)):
        assert np.array_equal(p.data, b), f"{cls.__name__}({kwargs}): parameter {k} moved under a zero gradient"


def assert_adam_first_step_is_lr_sign(cls: type[Optimizer], kwargs: dict, params: list[Tensor],
                                      grads: list[np.ndarray]) -> None:
    """Adam's (or AdamW's, with no weight decay) first step is -lr * sign(g) (+ for maximize), to eps/|g|."""
    if kwargs.get("weight_decay", 0):
        raise ValueError(f"{cls.__name__}: the lr * sign(g) first step holds without weight decay")
    before = _step(cls, kwargs, params, grads)
    lr, eps, sign = kwargs.get("lr", 1e-3), kwargs.get("eps", 1e-8), (1 if kwargs.get("maximize") else -1)
    for k, (p, b, g) in enumerate(zip(params, before, grads)):
        expected = sign * lr * np.sign(g)
        # eps/|g| is the method's own deviation; the rest is rounding: the first step is ~14 operations
        # rounded once each (the moments, the inexact 1 - beta1 and 1 - beta2, both bias corrections,
        # sqrt, + eps, the division, * lr, the update), at most half an ulp each: 7 ulps of the step.
        # 4 ulps was too few: g = 1.27555051 with lr = 1 ends 4.4 ulps from the exact step.
        tolerance = lr * eps / np.abs(g) + 8 * np.finfo(p.dtype).eps * (np.abs(b) + lr)
        moved = p.data - b
        assert np.all(np.abs(moved - expected) <= tolerance), (
            f"{cls.__name__}({kwargs}): parameter {k}'s first step is {moved}, expected lr * sign(g) = {expected}")
