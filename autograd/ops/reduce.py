"""Reductions: sum and max. mean, var, logsumexp and the rest are composed from these."""
from __future__ import annotations

import math

import numpy as np

from .. import parallel
from ..batching import front_only, shift_axis
from ..errors import ShapeError
from ..primitive import defprim, shape_of
from .shape import broadcast_to_p, reshape_p


def normalize_axis(axis, ndim: int, op: str = "reduction") -> tuple[int, ...] | None:
    """None, an int or a sequence -> a sorted tuple of non-negative axes (None means all)."""
    if axis is None:
        return None
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, on every reduction
        return (axis % ndim,)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ShapeError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    return tuple(sorted(int(a) % max(ndim, 1) for a in axes))


def _kept_shape(in_shape, axis):
    """The output shape with reduced axes kept as size 1, for broadcasting a cotangent back."""
    if axis is None:
        return (1,) * len(in_shape)
    return tuple(1 if i in axis else s for i, s in enumerate(in_shape))


def _sum(x, axis, keepdims):
    """Sum over `axis` (a tuple or None)."""
    return np.add.reduce(x, axis=axis, keepdims=keepdims)  # np.sum's Python wrapper costs a microsecond


def _sum_vjp(g, ans, x, axis, keepdims):
    shape = shape_of(x)
    if not keepdims:
        g = reshape_p(g, shape=_kept_shape(shape, axis))
    return broadcast_to_p(g, shape=shape)


#: reductions over at most this many elements per output run as elementwise ufunc calls on slices
SMALL_REDUCTION = 16


def _reduce(ufunc, x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    """ufunc.reduce over `axis`. A reduction over a few elements of strided axes (pooling windows:
    2x2 of a (B, C, Ho, 2, Wo, 2) view) is many times faster as elementwise ufunc calls over the
    k*k slices than as NumPy's reduction loop, whose inner loop would be 2 long."""
    if axis is None or len(axis) == x.ndim:  # a full reduction: one NumPy call is best
        return ufunc.reduce(x, axis=axis, keepdims=keepdims)
    sizes = [x.shape[a] for a in axis]
    n = math.prod(sizes)
    if not 1 < n <= SMALL_REDUCTION or axis[-1] == x.ndim - 1 and len(axis) == 1:
        return ufunc.reduce(x, axis=axis, keepdims=keepdims)
    if parallel.get_num_threads() == 1 or x.size < parallel.ELEMENTWISE_MIN:
        return _reduce_slices(ufunc, x, axis, keepdims, sizes)
    kept = [a for a in range(x.ndim) if a not in axis]
    first = x[tuple((slice(0, 1) if keepdims else 0) if a in axis else slice(None) for a in range(x.ndim))]
    in_first = kept if keepdims else list(range(len(kept)))  # the kept axes' places in the result
    at = parallel.outer_axis(first.shape, x.size, in_first, first.strides)  # large pooling: one share per thread
    if at is None:
        return _reduce_slices(ufunc, x, axis, keepdims, sizes)
    out = np.empty_like(first)  # laid out as the ufunc would lay out its result
    at_x = kept[in_first.index(at)]
    parallel.run_split(lambda lo, hi: _reduce_slices(ufunc, x[parallel.along(at_x, lo, hi)], axis, keepdims, sizes,
                                                     out[parallel.along(at, lo, hi)]), x.shape[at_x])
    return out


def _reduce_slices(ufunc, x, axis, keepdims, sizes, out=None):
    slices = []
    for offset in np.ndindex(*sizes):
        index = [slice(None)] * x.ndim
        for a, o in zip(axis, offset):
            index[a] = slice(o, o + 1) if keepdims else o
        slices.append(x[tuple(index)])
    out = ufunc(slices[0], slices[1], out=out)
    for piece in slices[2:]:
        ufunc(out, piece, out=out)
    return out


def _max(x, axis, keepdims):
    """Largest element over `axis`; the gradient is split evenly between ties."""
    return _reduce(np.maximum, x, axis, keepdims)


def _max_vjp(g, ans, x, axis, keepdims):
    shape = shape_of(x)
    kept = _kept_shape(shape, axis)
    winners = x.data == ans.data.reshape(kept)  # a constant mask: max is piecewise linear
    reduced = math.prod(shape) // max(math.prod(kept), 1)  # elements per maximum
    # winners per maximum, counted on the 1-byte mask (a float copy would be a full-size pass more)
    count = _reduce(np.add, winners.view(np.uint8) if reduced < 256 else winners.astype(np.int32), axis, keepdims=True)
    if not keepdims:
        g = reshape_p(g, shape=kept)
    # ties share the gradient evenly; divided at the reduced size, and without a branch on the data
    # (a compiled step then records this VJP as equations, not as one opaque call). A NaN maximum
    # equals no element: its count of 0 becomes 1, so its window gets a zero gradient, not 0/0.
    return broadcast_to_p(g / np.maximum(count, 1).astype(ans.dtype), shape=shape) * winners


def _reduce_examples(unique):
    def examples(draw, S):
        values = S.separated() if unique else None
        x = draw(S.tensors(shape=S.shapes(min_dims=0, max_dims=2, min_side=1, max_side=3), unique=unique, elements=values))
        axis = draw(S.axes(x.ndim))
        return (x,), {"axis": axis, "keepdims": draw(S.st.booleans())}

    return examples


def _max_jvp(ts, ans, x, axis, keepdims):
    """The tangent at the maxima, split evenly between ties like the VJP (no branch on the data,
    so it also runs on batched values)."""
    from .elementwise import mul_p

    winners = x.data == ans.data.reshape(_kept_shape(shape_of(x), axis))
    share = winners.astype(x.dtype)
    share = share / np.add.reduce(share, axis=axis, keepdims=True)
    return sum_p(mul_p(ts[0], share), axis=axis, keepdims=keepdims)


sum_p = defprim("sum", _sum, _sum_vjp, examples=_reduce_examples(False),
                jvp="linear", batch=front_only("sum", shift_axis))
max_p = defprim("max", _max, _max_vjp, save_output=True, examples=_reduce_examples(True), smooth=False,
                jvp=_max_jvp, batch=front_only("max", shift_axis))
