"""Argument checks shared by `nn.functional` and the layers: one place for each rule.

Every check raises at the call the user wrote, with a one-line message naming the operation (a
function like `conv2d` or a layer like `Conv2d`), the argument and the value it got. Numbers that
stand for sizes must be Python or NumPy integers: `stride=1.5` is an error, never a silent 1.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, Sequence

import numpy as np

from autograd.errors import DtypeError, fmt_shape

REDUCTIONS = ("mean", "sum", "none")


def integer(value: Any, name: str, op: str, minimum: int | None = None) -> int:
    """`value` as an int (bools and floats refused), at least `minimum` when given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r} ({type(value).__name__})")
    return positive((int(value),), name, op, minimum)[0]


def ntuple(value: Any, n: int, name: str, op: str, minimum: int | None = None) -> tuple[int, ...]:
    """An int, or a sequence of 1 or n ints, -> a tuple of n ints (each at least `minimum`)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 1:
            value = value[0]
        elif len(value) != n:
            raise ValueError(f"{op}: {name} must be an int or {n} int{'s' if n > 1 else ''}, got {value!r}")
        else:
            return positive(tuple(_int(v, value, name, op) for v in value), name, op, minimum)
    return positive((_int(value, value, name, op),) * n, name, op, minimum)


def shape(value: Any, name: str, op: str, minimum: int | None = 1) -> tuple[int, ...]:
    """An int or a sequence of ints (any length) -> a tuple of ints, each at least `minimum`."""
    values = value if isinstance(value, Sequence) and not isinstance(value, str) else (value,)
    return positive(tuple(_int(v, value, name, op) for v in values), name, op, minimum)


def _int(v: Any, whole: Any, name: str, op: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {whole!r}")
    return int(v)


def positive(values: tuple[int, ...], name: str, op: str, minimum: int | None = 1) -> tuple[int, ...]:
    """Each of `values` at least `minimum` (None: any)."""
    if minimum is not None and any(v < minimum for v in values):
        shown = values[0] if len(set(values)) == 1 else values
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {shown}")
    return values


# The geometry arguments of convolution and pooling, with the least value each may take.
KERNEL, STRIDE, PADDING, DILATION = ("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1)


def geometry(value: Any, n: int, arg: tuple[str, int], op: str) -> tuple[int, ...]:
    """kernel_size / stride / padding / dilation -> n ints, each at least the argument's minimum."""
    name, minimum = arg
    return ntuple(value, n, name, op, minimum)


def conv_padding(padding: Any, n: int, op: str) -> str | tuple[int, ...]:
    """A conv's padding: 'same' / 'valid', or n non-negative ints."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        return padding
    return geometry(padding, n, PADDING, op)


def groups(value: Any, in_channels: int, out_channels: int, op: str) -> int:
    """groups: a positive int dividing both channel counts."""
    value = integer(value, "groups", op, minimum=1)
    if in_channels % value or out_channels % value:
        raise ValueError(f"{op}: in_channels ({in_channels}) and out_channels ({out_channels}) must both be "
                         f"divisible by groups ({value})")
    return value


def reduction(value: Any, op: str) -> str:
    if value not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {value!r}")
    return value


def probability(value: Any, name: str, op: str) -> float:
    """A number in [0, 1] (dropout's p, label_smoothing); NaN and strings refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{op}: {name} must be a number in [0, 1], got {value!r} ({type(value).__name__})")
    if not 0.0 <= value <= 1.0:  # False for NaN too
        raise ValueError(f"{op}: {name} has to be between 0 and 1, but got {value}")
    return float(value)


def positive_number(value: Any, name: str, op: str) -> float:
    """A finite number > 0 (eps)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{op}: {name} must be a number, got {value!r} ({type(value).__name__})")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{op}: {name} must be a finite number > 0, got {value}")
    return float(value)


def floating(x: Any, op: str, what: str = "input") -> None:
    """Refuse integer and bool tensors where the maths needs floats."""
    if x.dtype.kind != "f":
        raise DtypeError(f"{op}: {what} must be floating point, got {x.dtype} with shape {fmt_shape(x.shape)}")


def same_dtype(x: Any, param: Any, op: str, what: str = "weight") -> None:
    """A layer's input must have its parameters' dtype: no silent float64 (or integer) model."""
    if param is None or not hasattr(param, "dtype") or x.dtype == param.dtype:
        return
    fix = (f"tensor(x, dtype='{param.dtype}')" + (", or the model to float64 with model.double()"
                                                  if x.dtype == np.float64 else ""))
    raise DtypeError(f"{op}: input {fmt_shape(x.shape)} is {x.dtype} but {what} {fmt_shape(param.shape)} is "
                     f"{param.dtype}; convert the input with {fix}")
