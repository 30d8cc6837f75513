"""The seam the transforms (jvp, vmap) use: a `Tracer` is a Tensor standing for a value inside a
transform, and a primitive applied to one is handed to its trace's rule instead of NumPy.

Every transform invocation opens a `Trace` with a fresh, larger level (JAX's idea). A primitive
goes to the newest trace among its arguments; that trace unwraps its own tracers only and treats
older tracers as constants, so nested transforms (jvp of jvp, vmap of grad, jacfwd of jacrev)
never confuse their perturbations or batch axes.
"""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from .errors import TapegradError
from .graph import Node, _Mode, user_frame
from .tensor import Tensor


_levels = itertools.count(1)

#: every tracer's version counter: Primitive.__call__ already sums its arguments' versions, so a sum
#: this large says "a tracer is here" without a per-argument type test on the plain path.
TRACED = 1 << 60


class TransformError(TapegradError):
    """A function does something a transform cannot follow (reading batched values, in-place edits)."""


class Trace:
    """One transform invocation: its level, and how it applies a primitive to its tracers."""

    records = True  # whether reverse mode may record its tracers on the tape (batch traces do not)

    def __init__(self) -> None:
        self.level = next(_levels)

    def process(self, prim, args: tuple, params: dict) -> "Tracer":
        raise NotImplementedError


class Lifted:
    """Base of non-Tensor values a transform must intercept as primitive arguments (the `.data`
    of a batched tensor); `Primitive.__call__` hands them to `apply` like tracers."""

    __slots__ = ()


class Tracer(Tensor):
    """A Tensor owned by a trace. Subclasses give shape/dtype/data; tracers are immutable:
    in-place operators rebind, in-place methods raise.

    A floating-point tracer always says `requires_grad` (it carries derivatives, so composite
    functions must take their differentiable path); whether reverse mode records it is `_taped`."""

    __slots__ = ("trace", "_taped")

    def _init(self, trace: Trace) -> None:
        self.trace = trace
        self.grad = None
        self._node = None
        self._version = TRACED
        self.name = None
        self._taped = False

    @property
    def requires_grad(self) -> bool:
        return self.dtype.kind == "f"

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self._taped = bool(flag)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def detach(self) -> Tensor:
        from .ops.elementwise import mul_p

        return mul_p(self, 1) if self._taped else self

    def clone(self) -> Tensor:
        from .ops.elementwise import mul_p

        return mul_p(self, 1)

    def astype(self, dtype) -> Tensor:
        from .ops.shape import cast_p

        return self if np.dtype(dtype) == self.dtype else cast_p(self, dtype=np.dtype(dtype))

    def float(self) -> Tensor:
        return self.astype("float32")

    def double(self) -> Tensor:
        return self.astype("float64")

    def __iadd__(self, other):
        return self + other

    def __isub__(self, other):
        return self - other

    def __imul__(self, other):
        return self * other

    def __itruediv__(self, other):
        return self / other

    def _no_inplace(self, *args, **kwargs):
        raise TransformError(f"in-place change of a tensor inside a transform ({type(self).__name__}, shape "
                             f"{self.shape}) at {user_frame(2) or '?'}; use the out-of-place operation")

    add_ = sub_ = mul_ = div_ = zero_ = fill_ = copy_ = _no_inplace


def apply(prim, args: tuple, params: dict) -> Any:
    """Run `prim` on arguments some of which are tracers: the newest trace's rule. When reverse
    mode is recording and an argument is on its tape, the result is recorded like any op, so
    the backward pass runs on tracers too (forward-over-reverse)."""
    top = None
    taped = False
    for a in args:
        if isinstance(a, (Tracer, Lifted)):
            if top is None or a.trace.level > top.level:
                top = a.trace
            taped = taped or isinstance(a, Tracer) and a._taped
        elif isinstance(a, Tensor):
            taped = taped or a.requires_grad
    out = top.process(prim, args, params)
    if taped and top.records and _Mode.grad_enabled:
        versions = sum(a._version for a in args if isinstance(a, Tensor))
        out._node = Node(prim, args, params, None, versions, out.shape, out.dtype)
        out._taped = True
    return out


def on_tape(x: Tensor) -> bool:
    """Whether reverse mode records operations on x (a tracer's `requires_grad` says only that it
    carries derivatives)."""
    return x._taped if isinstance(x, Tracer) else x.requires_grad
