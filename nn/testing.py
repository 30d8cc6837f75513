"""Hypothesis strategies for what users of nn test most: batch-norm layers with their inputs, and
state_dict round trips (save -> load into a fresh model -> identical forward).

Public, like `autograd.testing`:

    from hypothesis import given
    from nn.testing import batch_norm_cases

    @given(batch_norm_cases())
    def test_eval_mode_uses_running_stats(case):
        ...
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np
from hypothesis import strategies as st

import autograd as ag
from autograd import Tensor
from autograd.testing import strategies as S

from .layers import BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, ReLU, Tanh
from .module import Module, Sequential
from .serialization import load, save

__all__ = ["BatchNormCase", "batch_norm_cases", "ModelCase", "models", "assert_state_dict_round_trip"]


@dataclass
class BatchNormCase:
    """A batch-norm layer in train or eval mode and a float input it accepts."""

    layer: Module
    input: Tensor
    training: bool
    momentum: float | None
    affine: bool
    track_running_stats: bool


@st.composite
def batch_norm_cases(draw, dims: int | None = None, dtype=np.float64) -> BatchNormCase:  # float32 or float64
    """BatchNorm1d/2d with drawn momentum (None: cumulative average), eps, affine, track_running_stats,
    train/eval mode, and an input of the right rank with at least two values per channel (train-mode
    variance needs them). dims: 2 for BatchNorm2d, 1 for BatchNorm1d, None for either. Affine
    parameters and running statistics are drawn too, so eval mode is not the identity."""
    dims = draw(st.sampled_from([1, 2])) if dims is None else dims
    channels = draw(st.integers(1, 4))
    momentum = draw(st.sampled_from([None, 0.0, 0.1, 0.5, 1.0]))
    affine, track = draw(st.booleans()), draw(st.booleans())
    layer = (BatchNorm2d if dims == 2 else BatchNorm1d)(channels, eps=draw(st.sampled_from([1e-5, 1e-3])),
                                                         momentum=momentum, affine=affine, track_running_stats=track)
    if np.dtype(dtype) == np.float64:
        layer.double()
    with ag.no_grad():
        if affine:
            layer.weight.data[...] = draw(S.arrays(st.just((channels,)), domain="nonzero"))
            layer.bias.data[...] = draw(S.arrays(st.just((channels,))))
        if track:
            layer.running_mean.data[...] = draw(S.arrays(st.just((channels,))))
            layer.running_var.data[...] = draw(S.arrays(st.just((channels,)), domain="positive"))
    training = draw(st.booleans())
    layer.train(training)
    batch = draw(st.integers(2, 4))
    spatial = tuple(draw(st.integers(1, 3)) for _ in range(dims)) if dims == 2 else (
        () if draw(st.booleans()) else (draw(st.integers(1, 3)),))
    x = draw(S.arrays(st.just((batch, channels) + spatial), dtype=dtype, elements=S.separated(0.25, 2.0)))
    if np.ptp(x.reshape(batch, channels, -1).transpose(1, 0, 2).reshape(channels, -1), axis=1).min() == 0:
        x = x + np.arange(x.size, dtype=dtype).reshape(x.shape) * 0.01  # no constant channel: var > 0
    return BatchNormCase(layer, Tensor(x, requires_grad=True), training, momentum, affine, track)


@dataclass
class ModelCase:
    """`build(seed)` makes the same architecture with seed-dependent weights; `input` fits it."""

    build: Callable[[int], Module]
    input: Tensor
    description: str


@st.composite
def models(draw) -> ModelCase:
    """Small models: an MLP (Linear/Tanh/ReLU) or a CNN (Conv2d, BatchNorm2d, ReLU, Flatten, Linear)."""
    batch = draw(st.integers(1, 3))
    if draw(st.booleans()):
        sizes = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
        act = draw(st.sampled_from([Tanh, ReLU]))

        def build(seed: int) -> Module:
            rng = np.random.default_rng(seed)
            layers: list[Module] = []
            for a, b in zip(sizes, sizes[1:]):
                layers += [Linear(a, b, rng=rng), act()]
            return Sequential(*layers[:-1])

        shape, text = (batch, sizes[0]), f"MLP {sizes} with {act.__name__}"
    else:
        cin, cout, k, size = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(
            st.integers(3, 5))

        def build(seed: int) -> Module:
            rng = np.random.default_rng(seed)
            conv = Conv2d(cin, cout, k, padding=k // 2)
            with ag.no_grad():  # seed-dependent weights (Conv2d draws its own otherwise)
                conv.weight.data[...] = rng.standard_normal(conv.weight.shape)
            out = size - k + 1 + 2 * (k // 2)
            return Sequential(conv, BatchNorm2d(cout), ReLU(), Flatten(), Linear(cout * out * out, 2, rng=rng))

        shape, text = (batch, cin, size, size), f"CNN conv {cin}->{cout} k{k} on {size}x{size}"
    x = draw(S.arrays(st.just(shape), dtype=np.float32))
    return ModelCase(build, Tensor(x), text)


def assert_state_dict_round_trip(case: ModelCase, train_steps: int = 1) -> None:
    """Save a model's state_dict (after `train_steps` train-mode forwards, so batch-norm statistics
    move), load it into a model built with another seed, and assert both give identical outputs."""
    trained = case.build(0)
    for _ in range(train_steps):
        trained(case.input)
    trained.eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        save(trained.state_dict(), path)
        fresh = case.build(1)
        fresh.load_state_dict(load(path))
    fresh.eval()
    with ag.no_grad():
        want, got = trained(case.input).data, fresh(case.input).data
    assert np.array_equal(want, got), (
        f"{case.description}: the reloaded model's output differs by up to {np.abs(want - got).max():.3g}")
