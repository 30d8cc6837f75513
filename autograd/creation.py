"""Tensor factories with NumPy/PyTorch names. Random ones take a seed or a numpy Generator."""
from __future__ import annotations

from typing import Any

import numpy as np

from .primitive import REPLAY
from .tensor import DEFAULT_FLOAT, Tensor

Shape = Any


def _shape(shape: tuple) -> tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(int(s) for s in shape[0])
    return tuple(int(s) for s in shape)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A seed or a Generator -> a Generator (None: fresh entropy)."""
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if REPLAY.recorder is not None:  # tracing: draws become equations (autograd.tracer)
        from .tracer import traced_generator

        return traced_generator(generator)
    return generator


def zeros(*shape: Shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape: Shape, fill_value: float, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(_shape((shape,)), fill_value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(x: Any, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(np.asarray(x), dtype=dtype), requires_grad=requires_grad)


def ones_like(x: Any, dtype=None, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(np.asarray(x), dtype=dtype), requires_grad=requires_grad)


def arange(start: float, stop: float | None = None, step: float = 1, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like numpy.arange; float results are float32 unless dtype says otherwise."""
    data = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is not None:
        data = data.astype(dtype)
    elif data.dtype == np.float64:
        data = data.astype(DEFAULT_FLOAT)
    return Tensor(data, requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.eye(n, m, dtype=dtype), requires_grad=requires_grad)


def randn(*shape: Shape, rng: np.random.Generator | int | None = None, dtype=DEFAULT_FLOAT,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples; pass `rng` (a seed or Generator) for reproducibility."""
    data = as_generator(rng).standard_normal(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape: Shape, rng: np.random.Generator | int | None = None, dtype=DEFAULT_FLOAT,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1); pass `rng` (a seed or Generator) for reproducibility."""
    data = as_generator(rng).random(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)
