"""Batching: a `BatchTracer` is a tensor with one extra (batch) axis that the function does not see.

A primitive applied to one runs its batching rule: the rule moves the batch axis where the
primitive can take it (usually the front) and adjusts `axis`/`shape`/`index` parameters, so one
NumPy call does the whole batch. A primitive without a rule loops over the batch (slower).

Reading a batched tensor's values (`.item()`, `if x > 0:`, `np.asarray(x)`) has no per-example
meaning inside `vmap` and raises an error naming the line. Its `.data` is a `BatchedArray`: shape
and dtype are the per-example ones, and NumPy ufuncs and reductions on it stay batched, which is
what composite functions need for masks and numerical shifts.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

from .errors import fmt_shape
from .primitive import REGISTRY, shape_of
from .tensor import Tensor, as_tensor_like
from .tracer import Lifted, Trace, Tracer, TransformError, user_frame

#: vmap traces whose function is running, oldest first (grad broadcasts unbatched inputs over them)
ACTIVE: list["BatchTrace"] = []


class BatchTrace(Trace):
    """One `vmap` invocation over a batch of `size`."""

    records = False  # reverse mode differentiates the batched arrays underneath instead

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def process(self, prim, args, params):
        vals, dims = [], []
        for a in args:
            if (type(a) is BatchTracer or type(a) is BatchedArray) and a.trace is self:
                vals.append(a.value)
                dims.append(a.bdim)
            else:
                vals.append(a)
                dims.append(None)
        for key, v in params.items():
            if isinstance(v, Lifted) or isinstance(v, tuple) and any(isinstance(i, Lifted) for i in v):
                raise TransformError(f"vmap: {prim.name}'s parameter {key} is a batched value (e.g. indexing with a "
                                     f"batched index), which is not supported; at {user_frame() or '?'}")
        rule = prim.batch if prim.batch is not None else loop_rule(prim)
        out, dim = rule(vals, dims, **params)
        if dim is None:
            out, dim = broadcast_at(out, 0, self.size), 0
        return BatchTracer(self, out, dim)


def _read_error(what: str, shape) -> TransformError:
    return TransformError(
        f"vmap: {what} of a batched tensor (per-example shape {fmt_shape(shape)}) has no single value; the function "
        f"reads data or branches on it at {user_frame() or '?'}. Use where() instead of if, or keep the read "
        "outside vmap")


class _PerExample:
    """Shape and dtype of one example of a batched `value` whose batch axis is `bdim`."""

    __slots__ = ()

    @property
    def shape(self) -> tuple[int, ...]:
        s = self.value.shape
        return s[:self.bdim] + s[self.bdim + 1:]

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype


class BatchTracer(_PerExample, Tracer):
    """`value` holds the whole batch, with the batch axis at `bdim`."""

    __slots__ = ("value", "bdim")

    def __init__(self, trace: BatchTrace, value: Tensor, bdim: int) -> None:
        self._init(trace)
        self.value = value
        self.bdim = bdim


    @property
    def data(self) -> "BatchedArray":
        return BatchedArray(self.trace, self.value.data, self.bdim)

    def item(self):
        raise _read_error(".item()", self.shape)

    def __bool__(self) -> bool:
        return _uniform_truth(self.value.data, self.shape)

    def __float__(self) -> float:
        raise _read_error("float()", self.shape)

    def __int__(self) -> int:
        raise _read_error("int()", self.shape)

    def __array__(self, dtype=None, copy=None):
        raise _read_error("a NumPy conversion", self.shape)

    def numpy(self):
        raise _read_error(".numpy()", self.shape)

    def tolist(self):
        raise _read_error(".tolist()", self.shape)

    def __repr__(self) -> str:
        return f"BatchTracer(shape={self.shape}, batch axis {self.bdim} of {self.value!r})"


class BatchedArray(_PerExample, Lifted, NDArrayOperatorsMixin):
    """The `.data` of a batched tensor: per-example shape and dtype; NumPy ufuncs and reductions
    on it are batched; anything that needs one value (bool(), np.asarray) raises."""

    __slots__ = ("trace", "value", "bdim")

    def __init__(self, trace: BatchTrace, value, bdim: int) -> None:
        self.trace = trace
        self.value = value
        self.bdim = bdim


    @property
    def ndim(self) -> int:
        return self.value.ndim - 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def itemsize(self) -> int:
        return self.value.itemsize

    @property
    def strides(self) -> tuple[int, ...]:
        """Those of a C-contiguous array of the per-example shape (a layout hint only)."""
        out, step = [], self.itemsize
        for s in reversed(self.shape):
            out.append(step)
            step *= s
        return tuple(reversed(out))

    def _front(self):
        return _transpose_arr(self.value, self.bdim)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if any(isinstance(x, Tensor) for x in inputs):
            return NotImplemented  # the Tensor's reflected operator records the op
        out = kwargs.pop("out", None)
        top = max((x.trace for x in inputs if isinstance(x, BatchedArray)), key=lambda t: t.level)
        if out is not None and out[0] is None:
            out = None
        if method == "__call__":
            n = max(_logical_ndim(x, top) for x in inputs)
            result = ufunc(*[_aligned(x, top, n) for x in inputs], **kwargs)
        elif method == "reduce" and len(inputs) == 1:
            x = inputs[0]
            axis = kwargs.pop("axis", 0)
            axes = tuple(range(x.ndim)) if axis is None else (axis,) if np.ndim(axis) == 0 else tuple(axis)
            result = ufunc.reduce(x._front(), axis=tuple(a % max(x.ndim, 1) + 1 for a in axes), **kwargs)
        else:
            raise TransformError(f"vmap: np.{ufunc.__name__}.{method} on a batched array is not supported "
                                 f"(at {user_frame() or '?'})")
        if out is not None:
            target = out[0]
            if not isinstance(target, BatchedArray) or target.trace is not top:
                raise TransformError(f"vmap: writing a batched result into an unbatched array at {user_frame() or '?'}")
            np.copyto(target._front(), result)
            return target
        return BatchedArray(top, result, 0)

    def reshape(self, *shape):
        shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        front = self._front()
        return BatchedArray(self.trace, front.reshape((front.shape[0],) + tuple(shape)), 0)

    def transpose(self, *axes):
        axes = tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes
        axes = axes or tuple(range(self.ndim))[::-1]
        return BatchedArray(self.trace, self._front().transpose((0,) + tuple(a % self.ndim + 1 for a in axes)), 0)

    def astype(self, dtype, copy: bool = True):
        return BatchedArray(self.trace, self.value.astype(dtype, copy=copy), self.bdim)

    def copy(self):
        return BatchedArray(self.trace, self.value.copy(), self.bdim)

    def __getitem__(self, index):
        index = index if isinstance(index, tuple) else (index,)
        if not all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in index):
            raise TransformError(f"vmap: advanced indexing of a batched array at {user_frame() or '?'}")
        return BatchedArray(self.trace, self._front()[(slice(None),) + index], 0)

    def sum(self, axis=None, dtype=None, out=None, keepdims: bool = False, **_):
        return np.add.reduce(self, axis=axis, keepdims=keepdims, dtype=dtype, out=out)

    def max(self, axis=None, out=None, keepdims: bool = False, **_):
        return np.maximum.reduce(self, axis=axis, keepdims=keepdims, out=out)

    def any(self, axis=None, out=None, keepdims: bool = False, **_):
        return np.logical_or.reduce(self, axis=axis, keepdims=keepdims, out=out)

    def all(self, axis=None, out=None, keepdims: bool = False, **_):
        return np.logical_and.reduce(self, axis=axis, keepdims=keepdims, out=out)

    def clip(self, min=None, max=None, out=None, **_):  # noqa: A002 - NumPy's names
        low = self if min is None else np.maximum(self, min)
        return low if max is None else np.minimum(low, max, out=out)

    def __len__(self) -> int:
        return self.shape[0]

    def __bool__(self) -> bool:
        return _uniform_truth(self.value, self.shape)

    def __array__(self, dtype=None, copy=None):
        raise _read_error("a NumPy conversion (np.asarray)", self.shape)

    def item(self, *args):
        raise _read_error(".item()", self.shape)

    def tolist(self):
        raise _read_error(".tolist()", self.shape)

    def __repr__(self) -> str:
        return f"BatchedArray(shape={self.shape}, dtype={self.dtype})"


def _uniform_truth(values, shape) -> bool:
    """`if batched:` is fine when every example takes the same way (each would have, alone);
    a branch that differs between examples cannot be batched and raises naming the line."""
    if len(shape) == 0:
        flags = np.asarray(values if not isinstance(values, BatchedArray) else _uniform_truth(values.value, ()),
                           dtype=bool)
        if flags.all() or not flags.any():
            return bool(flags.flat[0]) if flags.size else False
    raise _read_error("the truth value", shape)


def _transpose_arr(a, d: int):
    """Move axis d of an array (or a nested BatchedArray) to the front."""
    if d == 0:
        return a
    perm = (d,) + tuple(i for i in range(a.ndim) if i != d)
    return a.transpose(perm)


def _logical_ndim(x, top) -> int:
    if isinstance(x, BatchedArray) and x.trace is top:
        return x.ndim
    return np.ndim(x) if not isinstance(x, BatchedArray) else x.ndim


def _aligned(x, top, n: int):
    """An operand of a batched ufunc: batch axis in front, padded to rank n + 1 for broadcasting."""
    if not (isinstance(x, BatchedArray) and x.trace is top):
        return x
    front = x._front()
    r = x.ndim
    return front.reshape((front.shape[0],) + (1,) * (n - r) + x.shape) if r < n else front


# --- helpers for batching rules (they call primitives, so they batch at lower levels too) -------------
def ndim_of(a: Any) -> int:
    return len(shape_of(a))


def moveaxis(x: Any, src: int, dst: int) -> Any:
    """Move axis src of x to position dst, as a transpose primitive (nothing when they agree)."""
    if src == dst:
        return x
    n = ndim_of(x)
    order = [i for i in range(n) if i != src]
    order.insert(dst, src)
    return REGISTRY["transpose"](x, axes=tuple(order))


def to_front(x: Any, d: int | None) -> Any:
    return x if d is None or d == 0 else moveaxis(x, d, 0)


def broadcast_at(x: Any, pos: int, size: int) -> Any:
    """x with a new axis of `size` at `pos` (a broadcast view)."""
    shape = tuple(shape_of(x))
    expanded = REGISTRY["reshape"](x, shape=shape[:pos] + (1,) + shape[pos:])
    return REGISTRY["broadcast_to"](expanded, shape=shape[:pos] + (size,) + shape[pos:])


def batch_size(args: Sequence, dims: Sequence) -> int:
    return next(shape_of(a)[d] for a, d in zip(args, dims) if d is not None)


def elementwise(name: str) -> Callable:
    """Batching rule of a broadcasting elementwise primitive: batch axes to the front, batched
    operands of lower rank padded with unit axes so NumPy's right-aligned broadcasting holds."""

    def rule(args, dims, **params):
        n = max(ndim_of(a) - (d is not None) for a, d in zip(args, dims))
        moved = []
        for a, d in zip(args, dims):
            if d is None:
                moved.append(a)
                continue
            a = to_front(a, d)
            shape = shape_of(a)
            if len(shape) - 1 < n:
                a = REGISTRY["reshape"](a, shape=shape[:1] + (1,) * (n - len(shape) + 1) + shape[1:])
            moved.append(a)
        return REGISTRY[name](*moved, **params), 0

    return rule


def front_only(name: str, adjust: Callable[[dict, int, int], dict] | None = None) -> Callable:
    """Rule of a one-array primitive that takes a leading batch axis once its parameters say so:
    `adjust(params, logical_ndim, batch_size)` returns them (default: unchanged)."""

    def rule(args, dims, **params):
        (x,), (d,) = args, dims
        x = to_front(x, d)
        shape = shape_of(x)
        if adjust is not None:
            params = adjust(params, len(shape) - 1, shape[0])
        return REGISTRY[name](x, **params), 0

    return rule


def shift_axis(params: dict, ndim: int, size: int) -> dict:
    """A reduction's `axis` (None or a tuple) seen past the batch axis."""
    axis = params["axis"]
    axis = tuple(range(1, ndim + 1)) if axis is None else tuple(a + 1 for a in axis)
    return dict(params, axis=axis)


def lead_index(params: dict, ndim: int, size: int) -> dict:
    """An `index` parameter with the batch axis kept whole in front; a `shape` grows by the batch."""
    out = dict(params, index=(slice(None),) + tuple(params["index"]))
    if "shape" in out:
        out["shape"] = (size,) + tuple(out["shape"])
    return out


def loop_rule(prim) -> Callable:
    """The fallback for a primitive without a batching rule: one call per example, stacked."""

    def rule(args, dims, **params):
        size = batch_size(args, dims)
        outs = []
        for i in range(size):
            pieces = [a if d is None else REGISTRY["slice"](a, index=(slice(None),) * d + (i,))
                      for a, d in zip(args, dims)]
            out = prim(*pieces, **params)
            outs.append(REGISTRY["reshape"](out, shape=(1,) + tuple(shape_of(out))))
        return REGISTRY["concatenate"](*outs, axis=0), 0

    return rule


def _tensor_of(arr) -> Tensor:
    """A comparison's result (a BatchedArray of bools) as a batched tensor, so `if` can read it."""
    if isinstance(arr, BatchedArray):
        return BatchTracer(arr.trace, _tensor_of(arr.value), arr.bdim)
    return Tensor._make(np.asarray(arr))


def _batched_compare(ufunc) -> Callable:
    def compare(self, other):
        return _tensor_of(ufunc(self.data, other.data if isinstance(other, Tensor) else other))

    return compare


for _name, _ufunc in (("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
                      ("eq", np.equal), ("ne", np.not_equal)):
    setattr(BatchTracer, f"__{_name}__", _batched_compare(_ufunc))
    setattr(BatchTracer, _name, _batched_compare(_ufunc))
BatchTracer.__hash__ = Tensor.__hash__


def _tracer_operator(name: str, reflected: bool) -> Callable:
    def op(self, other):
        if not isinstance(other, (Tensor, Lifted, int, float)):
            other = as_tensor_like(other, self)
        return REGISTRY[name](other, self) if reflected else REGISTRY[name](self, other)

    return op


def _bind_tracer_operators() -> None:
    """Tracers' arithmetic takes a batched array (`x - x.data.max()`) as the primitive argument it
    is, where Tensor's operators would convert it with np.asarray."""
    for dunder, name in (("add", "add"), ("sub", "sub"), ("mul", "mul"), ("truediv", "div"), ("pow", "pow"),
                         ("matmul", "matmul")):
        setattr(Tracer, f"__{dunder}__", _tracer_operator(name, False))
        setattr(Tracer, f"__r{dunder}__", _tracer_operator(name, True))


_bind_tracer_operators()
