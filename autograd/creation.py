"""Tensor factories with NumPy/PyTorch names. Random ones take a seed or a numpy Generator."""
from __future__ import annotations

import operator
from typing import Any

import numpy as np

from .errors import fmt_shape
from .primitive import REPLAY
from .tensor import DEFAULT_FLOAT, Tensor

Shape = Any


def shape_arg(shape: tuple, op: str, minimum: int = 0) -> tuple[int, ...]:
    """The sizes of `f(2, 3)` or `f((2, 3))` as a tuple of ints, each at least `minimum`
    (reshape and expand pass -1, which stands for a size they infer). A float size is an error,
    never silently truncated."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    try:
        sizes = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: sizes must be ints, got {shape!r}") from None
    if any(s < minimum for s in sizes):
        raise ValueError(f"{op}: sizes must be >= {minimum}, got {fmt_shape(sizes)}")
    return sizes


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A seed or a Generator -> a Generator (None: fresh entropy)."""
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if REPLAY.recorder is not None:  # tracing: draws become equations (autograd.capture)
        from .capture import traced_generator

        return traced_generator(generator)
    return generator


def zeros(*shape: Shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(shape_arg(shape, "zeros"), dtype=dtype), requires_grad=requires_grad)


def ones(*shape: Shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(shape_arg(shape, "ones"), dtype=dtype), requires_grad=requires_grad)


def full(shape: Shape, fill_value: float, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(shape_arg((shape,), "full"), fill_value, dtype=dtype), requires_grad=requires_grad)


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
    data = as_generator(rng).standard_normal(shape_arg(shape, "randn")).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape: Shape, rng: np.random.Generator | int | None = None, dtype=DEFAULT_FLOAT,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1); pass `rng` (a seed or Generator) for reproducibility."""
    data = as_generator(rng).random(shape_arg(shape, "rand")).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)
