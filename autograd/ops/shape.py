"""Shape primitives. The linear ones come in transpose pairs, each the other's VJP (JAX's idea):
broadcast_to <-> sum_to, slice <-> pad, take <-> scatter_add, sliding_windows <-> window_sum.
reshape, transpose and cast are their own kind of transpose (inverse reshape/permutation/cast).
"""
from __future__ import annotations

import itertools
import math

import numpy as np

from .. import parallel
from ..batching import batch_size, broadcast_at, front_only, lead_index, moveaxis, ndim_of, to_front
from ..allocator import copy_unaliased
from ..errors import ShapeError, fmt_shape
from ..primitive import defprim, shape_of


def _shift_axes(params: dict, ndim: int, size: int) -> dict:
    """A permutation that keeps the batch axis in front."""
    return dict(params, axes=(0,) + tuple(int(a) % ndim + 1 for a in params["axes"]))


def _grow_shape(params: dict, ndim: int, size: int) -> dict:
    """A `shape` parameter with the batch axis in front."""
    return dict(params, shape=(size,) + tuple(params["shape"]))


# --- reshape / transpose / cast ---------------------------------------------------------------
def _reshape(x, shape):
    """View the same elements in a new shape."""
    try:  # a copy only when no view can; placed by copy_unaliased (4K aliasing)
        return x.reshape(shape, copy=False)
    except ValueError:  # the layout needs a copy
        return copy_unaliased(x).reshape(shape)
    except TypeError:  # NumPy < 2.1: no copy= argument
        return np.reshape(x, shape)


def _reshape_check(x, shape):
    if math.prod(shape) != x.size:
        raise ShapeError(f"reshape: cannot reshape {fmt_shape(x.shape)} ({x.size} elements) into {fmt_shape(shape)}")


def _reshape_examples(draw, S):
    x = draw(S.tensors(shape=S.shapes(min_dims=0, max_dims=3)))
    return (x,), {"shape": tuple(draw(S.st.permutations(list(x.shape)))) + (1,)}


reshape_p = defprim(
    "reshape", _reshape, lambda g, ans, x, shape: reshape_p(g, shape=shape_of(x)),
    check=_reshape_check, examples=_reshape_examples, transpose="reshape",
    jvp="linear", batch=front_only("reshape", _grow_shape),
)


def _transpose(x, axes):
    """Permute the axes (a view)."""
    return np.transpose(x, axes)


def _transpose_examples(draw, S):
    x = draw(S.tensors(shape=S.shapes(min_dims=1, max_dims=4)))
    return (x,), {"axes": tuple(draw(S.st.permutations(range(x.ndim))))}


def _inverse_permutation(axes) -> tuple[int, ...]:
    """The axes that undo transpose(axes): plain Python (np.argsort costs more than the transpose on
    a conv's small arrays), negative axes counted from the end as np.transpose counts them."""
    inverse = [0] * len(axes)
    for i, a in enumerate(axes):
        inverse[a % len(axes)] = i
    return tuple(inverse)


transpose_p = defprim(
    "transpose", _transpose, lambda g, ans, x, axes: transpose_p(g, axes=_inverse_permutation(axes)),
    examples=_transpose_examples, transpose="transpose",
    jvp="linear", batch=front_only("transpose", _shift_axes),
)


def _cast(x, dtype):
    """Change the dtype (between float types: the gradient is cast back)."""
    return x.astype(dtype, copy=False)


def _cast_examples(draw, S):
    return (draw(S.tensors()),), {"dtype": np.float64}


cast_p = defprim("cast", _cast, lambda g, ans, x, dtype: cast_p(g, dtype=x.dtype), examples=_cast_examples,
                 jvp="linear", batch=lambda args, dims, dtype: (cast_p(args[0], dtype=dtype), dims[0]))


# --- broadcast_to <-> sum_to ------------------------------------------------------------------
def _broadcast_to(x, shape):
    """Repeat x along broadcast axes (a read-only view)."""
    return np.broadcast_to(x, shape)


def _sum_to(x, shape):
    """Sum x down to `shape`: the transpose of broadcasting to x's shape."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1)
    out = np.add.reduce(x, axis=axes, keepdims=True) if axes else x
    return out.reshape(shape)


def _broadcast_check(x, shape):
    shape = tuple(shape)
    ok = len(shape) >= x.ndim and all(a == b or a == 1 for a, b in zip(x.shape[::-1], shape[::-1]))
    if not ok:
        raise ShapeError(f"broadcast_to: cannot broadcast {fmt_shape(x.shape)} to {fmt_shape(shape)}")


def _sum_to_check(x, shape):
    shape = tuple(shape)
    ok = len(shape) <= x.ndim and all(a == b or a == 1 for a, b in zip(shape[::-1], x.shape[::-1]))
    if not ok:
        raise ShapeError(f"sum_to: cannot sum {fmt_shape(x.shape)} down to {fmt_shape(shape)}")


def _broadcast_examples(draw, S):
    small, big = draw(S.broadcast_target())
    return (draw(S.tensors(shape=S.st.just(small))),), {"shape": big}


def _sum_to_examples(draw, S):
    small, big = draw(S.broadcast_target())
    return (draw(S.tensors(shape=S.st.just(big))),), {"shape": small}


def _broadcast_batch(args, dims, shape):
    """Pad the per-example shape with unit axes to the target rank, then broadcast behind the batch."""
    x = to_front(args[0], dims[0])
    xs = shape_of(x)
    x = reshape_p(x, shape=xs[:1] + (1,) * (len(shape) - len(xs) + 1) + xs[1:])
    return broadcast_to_p(x, shape=xs[:1] + tuple(shape)), 0


def _sum_to_batch(args, dims, shape):
    """Sum the extra leading per-example axes first (sum_to would sum the batch axis), then the rest."""
    from .reduce import sum_p

    x = to_front(args[0], dims[0])
    lead = ndim_of(x) - 1 - len(shape)
    if lead:
        x = sum_p(x, axis=tuple(range(1, lead + 1)), keepdims=False)
    return sum_to_p(x, shape=shape_of(x)[:1] + tuple(shape)), 0


broadcast_to_p = defprim(
    "broadcast_to", _broadcast_to, lambda g, ans, x, shape: sum_to(g, shape_of(x)),
    check=_broadcast_check, examples=_broadcast_examples, transpose="sum_to",
    jvp="linear", batch=_broadcast_batch,
)
sum_to_p = defprim(
    "sum_to", _sum_to, lambda g, ans, x, shape: broadcast_to_p(g, shape=shape_of(x)),
    check=_sum_to_check, examples=_sum_to_examples, transpose="broadcast_to",
    jvp="linear", batch=_sum_to_batch,
)


def sum_to(x, shape: tuple):
    """Reduce a cotangent to an operand's shape (a tuple); a no-op (no graph node) when they agree."""
    if x.data.shape == shape:
        return x
    return sum_to_p(x, shape=tuple(shape))


# --- slice <-> unslice (basic indexing and its transpose, zero-embedding) --------------------------
def _slice(x, index):
    """Basic indexing x[index]: ints, slices, None and Ellipsis (a view)."""
    return x[index]


def _unslice(x, index, shape):
    """Place x at x_full[index] inside zeros of `shape`: the transpose of `slice` (zero-embedding)."""
    whole = [a for a, i in enumerate(index) if isinstance(i, slice) and i.indices(shape[a]) == (0, shape[a], 1)] \
        if type(index) is tuple and len(index) == len(shape) and all(type(i) is slice for i in index) else []
    axis = parallel.outer_axis(shape, math.prod(shape), whole)
    if axis is None:
        out = np.zeros(shape, dtype=x.dtype)
        out[index] = x
        return out
    out = np.empty(shape, dtype=x.dtype)  # a padding: each thread zeroes and fills its share of an outer axis

    def part(lo, hi):
        share = out[parallel.along(axis, lo, hi)]
        share.fill(0)
        share[index[:axis] + (slice(None),) + index[axis + 1:]] = x[parallel.along(axis, lo, hi)]

    parallel.run_split(part, shape[axis])
    return out


def _gather_examples(indices: str):
    """Examples for a gather (x, index) and its scatter transpose (x, index, shape); `indices` names
    the strategy drawing the index ('basic_indices' or 'advanced_indices')."""

    def gather(draw, S):
        x = draw(S.tensors(shape=S.shapes(min_dims=1, max_dims=3, min_side=1)))
        return (x,), {"index": draw(getattr(S, indices)(x.shape))}

    def scatter(draw, S):
        shape = draw(S.shapes(min_dims=1, max_dims=3, min_side=1))
        index = draw(getattr(S, indices)(shape))
        inner = np.empty(shape)[index].shape
        return (draw(S.tensors(shape=S.st.just(inner))),), {"index": index, "shape": shape}

    return gather, scatter


_slice_examples, _unslice_examples = _gather_examples("basic_indices")


slice_p = defprim(
    "slice", _slice, lambda g, ans, x, index: unslice_p(g, index=index, shape=shape_of(x)),
    examples=_slice_examples, transpose="unslice",
    jvp="linear", batch=front_only("slice", lead_index),
)
unslice_p = defprim(
    "unslice", _unslice, lambda g, ans, x, index, shape: slice_p(g, index=index),
    examples=_unslice_examples, transpose="slice",
    jvp="linear", batch=front_only("unslice", lead_index),
)


# --- take <-> scatter_add (advanced indexing: gather and its transpose) -----------------------
def _take(x, index):
    """Advanced indexing x[index] with integer arrays (a gather; copies)."""
    return x[index]


def _scatter_add(x, index, shape):
    """Add x into zeros of `shape` at `index`, summing duplicates: the transpose of `take`."""
    out = np.zeros(shape, dtype=x.dtype)
    np.add.at(out, index, x)
    return out


_take_examples, _scatter_examples = _gather_examples("advanced_indices")


def _batch_position(index) -> int:
    """Where the batch axis lands in x[(:, *index)] under NumPy's rules: in front, unless the
    advanced (array and int) indices are split apart, which moves their axes first."""
    items = (slice(None),) + tuple(index)
    advanced = [i for i, e in enumerate(items) if not (isinstance(e, slice) or e is None or e is Ellipsis)]
    if not advanced or advanced == list(range(advanced[0], advanced[-1] + 1)):
        return 0
    return len(np.broadcast_shapes(*[np.shape(items[i]) for i in advanced]))


def _take_batch(args, dims, index):
    x = to_front(args[0], dims[0])
    return take_p(x, index=(slice(None),) + tuple(index)), _batch_position(index)


def _scatter_add_batch(args, dims, index, shape):
    x = moveaxis(args[0], dims[0], _batch_position(index))
    size = shape_of(args[0])[dims[0]]
    return scatter_add_p(x, index=(slice(None),) + tuple(index), shape=(size,) + tuple(shape)), 0


take_p = defprim(
    "take", _take, lambda g, ans, x, index: scatter_add_p(g, index=index, shape=shape_of(x)),
    examples=_take_examples, transpose="scatter_add",
    jvp="linear", batch=_take_batch,
)
scatter_add_p = defprim(
    "scatter_add", _scatter_add, lambda g, ans, x, index, shape: take_p(g, index=index),
    examples=_scatter_examples, transpose="take",
    jvp="linear", batch=_scatter_add_batch,
)


# --- concatenate (its VJP slices the cotangent back apart) ------------------------------------
def _concatenate(*xs, axis):
    """Join tensors along an existing axis."""
    return np.concatenate(xs, axis=axis)


def _concatenate_vjp(g, ans, *xs, axis):
    grads, start = [], 0
    ax = axis % g.ndim
    for x in xs:
        n = shape_of(x)[ax]
        index = (slice(None),) * ax + (slice(start, start + n),)
        grads.append(slice_p(g, index=index))
        start += n
    return tuple(grads)


def _concatenate_check(*xs, axis):
    first = np.shape(xs[0])
    for x in xs[1:]:
        s = np.shape(x)
        if len(s) != len(first) or any(a != b for i, (a, b) in enumerate(zip(s, first)) if i != axis % len(first)):
            shapes = ", ".join(fmt_shape(np.shape(x)) for x in xs)
            raise ShapeError(f"concatenate: shapes {shapes} differ outside axis {axis}")


def _concatenate_examples(draw, S):
    base = list(draw(S.shapes(min_dims=1, max_dims=3, min_side=1)))
    axis = draw(S.st.integers(0, len(base) - 1))
    n = draw(S.st.integers(1, 3))
    xs = []
    for _ in range(n):
        base[axis] = draw(S.st.integers(1, 3))
        xs.append(draw(S.tensors(shape=S.st.just(tuple(base)))))
    return tuple(xs), {"axis": axis}


def _concatenate_jvp(ts, ans, *xs, axis):
    """Concatenation is linear: the tangents concatenated, zeros where an operand has none."""
    from ..tensor import Tensor

    parts = [t if t is not None else Tensor._make(np.zeros(shape_of(x), dtype=ans.dtype)) for t, x in zip(ts, xs)]
    return concatenate_p(*parts, axis=axis)


def _concatenate_batch(args, dims, axis):
    size = batch_size(args, dims)
    n = ndim_of(args[0]) - (dims[0] is not None)
    parts = [broadcast_at(a, 0, size) if d is None else to_front(a, d) for a, d in zip(args, dims)]
    return concatenate_p(*parts, axis=axis % n + 1), 0


concatenate_p = defprim(
    "concatenate", _concatenate, vjp=_concatenate_vjp, check=_concatenate_check,
    examples=_concatenate_examples, domain=("real", "..."),
    jvp=_concatenate_jvp, batch=_concatenate_batch,
)


# --- sliding_windows <-> window_sum (the basis of convolution and pooling) -------------------
def window_geometry(in_shape, kernel, stride, dilation):
    """Output sizes of windows over the trailing len(kernel) axes; errors in the user's terms."""
    n = len(kernel)
    if len(in_shape) < n:
        raise ShapeError(f"sliding_windows: input {fmt_shape(in_shape)} has fewer than {n} spatial axes")
    out = []
    for size, k, s, d in zip(in_shape[-n:], kernel, stride, dilation):
        span = d * (k - 1) + 1
        if span > size:
            raise ShapeError(
                f"sliding_windows: kernel {fmt_shape(kernel)} (dilation {fmt_shape(dilation)}) spans {span} "
                f"but the input {fmt_shape(in_shape)} has only {size} along that axis"
            )
        out.append((size - span) // s + 1)
    return tuple(out)


def _sliding_windows(x, kernel, stride, dilation):
    """Strided view of every window: (..., *out_spatial, *kernel), no copy."""
    n = len(kernel)
    out = window_geometry(x.shape, kernel, stride, dilation)
    st = x.strides
    strides = st[:-n] + tuple(a * s for a, s in zip(st[-n:], stride)) + tuple(a * d for a, d in zip(st[-n:], dilation))
    return np.lib.stride_tricks.as_strided(x, x.shape[:-n] + out + tuple(kernel), strides, writeable=False)


def _window_sum(x, shape, kernel, stride, dilation):
    """Add every window back to where it came from: the transpose of sliding_windows.

    A loop over the k*k kernel offsets adding whole strided slices (Chainer's col2im): k*k NumPy
    calls per step, never a Python loop over pixels and never np.add.at. Large ones run on one
    share of a leading (batch or channel) axis per thread, each thread the whole loop.
    """
    res = np.empty(shape, dtype=x.dtype)
    axis = parallel.outer_axis(shape, x.size, range(len(shape) - len(kernel)))
    if axis is None:
        _window_sum_into(res, x, kernel, stride, dilation)
    else:
        parallel.run_split(lambda lo, hi: _window_sum_into(res[parallel.along(axis, lo, hi)],
                                                           x[parallel.along(axis, lo, hi)], kernel, stride, dilation),
                           shape[axis])
    return res


def _window_sum_into(res, x, kernel, stride, dilation):
    n = len(kernel)
    out_sp = x.shape[-2 * n:-n]
    lead = (slice(None),) * (res.ndim - n)
    offsets = iter(np.ndindex(*kernel))
    if all(s == 1 for s in stride) and all(m > 0 for m in out_sp) and all(k > 0 for k in kernel):
        offsets = _write_first_offsets(res, x, n, out_sp, lead, offsets, dilation)
    else:
        res.fill(0)
    for offset in offsets:
        dst = lead + tuple(
            slice(o * d, o * d + s * (m - 1) + 1, s) for o, d, s, m in zip(offset, dilation, stride, out_sp)
        )
        res[dst] += x[(Ellipsis,) + offset]


def _write_first_offsets(res, x, n, out_sp, lead, offsets, dilation):
    """Stride 1: write the first kernel offset's windows, or the first two's with one add where
    they overlap and copies where they do not, then zero only the rest of res; returns the offsets
    left to add. The first offset covers [0, m) on every window axis, the second the same shifted
    by one dilation step along one axis; the overlapping add saves a full-size pass over copying
    the first and adding the second, and adds each element's terms in the same order."""
    x0 = x[(Ellipsis,) + next(offsets)]
    window = [slice(0, m) for m in out_sp]
    second = next(offsets, None)
    a = None if second is None else next(i for i in range(n) if second[i])
    ends = list(out_sp)  # per window axis, where what is written ends; zeros after
    if a is None or dilation[a] >= out_sp[a]:  # no overlap to add: copy the first, add the second later
        res[lead + tuple(window)] = x0
        if second is not None:
            offsets = itertools.chain([second], offsets)
    else:
        x1, d, m, q = x[(Ellipsis,) + second], dilation[a], out_sp[a], x0.ndim - n + a

        def in_res(lo, hi):
            return lead + tuple(window[:a]) + (slice(lo, hi),) + tuple(window[a + 1:])

        def in_x(xv, lo, hi):
            return xv[(slice(None),) * q + (slice(lo, hi),)]

        np.add(in_x(x0, d, m), in_x(x1, 0, m - d), out=res[in_res(d, m)])
        res[in_res(0, d)] = in_x(x0, 0, d)
        res[in_res(m, m + d)] = in_x(x1, m - d, m)
        ends[a] += d
    for i, end in enumerate(ends):
        res[lead + (slice(None),) * i + (slice(end, None),)] = 0
    return offsets


def _windows_examples(draw, S):
    shape, kernel, stride, dilation = draw(S.window_geometries())
    return (draw(S.tensors(shape=S.st.just(shape))),), {"kernel": kernel, "stride": stride, "dilation": dilation}


def _window_sum_examples(draw, S):
    shape, kernel, stride, dilation = draw(S.window_geometries())
    out = window_geometry(shape, kernel, stride, dilation)
    x_shape = shape[: len(shape) - len(kernel)] + out + kernel
    params = {"shape": shape, "kernel": kernel, "stride": stride, "dilation": dilation}
    return (draw(S.tensors(shape=S.st.just(x_shape))),), params


sliding_windows_p = defprim(
    "sliding_windows", _sliding_windows,
    lambda g, ans, x, kernel, stride, dilation: window_sum_p(
        g, shape=shape_of(x), kernel=kernel, stride=stride, dilation=dilation),
    examples=_windows_examples, transpose="window_sum",
    jvp="linear", batch=front_only("sliding_windows"),
)
window_sum_p = defprim(
    "window_sum", _window_sum,
    lambda g, ans, x, shape, kernel, stride, dilation: sliding_windows_p(g, kernel=kernel, stride=stride, dilation=dilation),
    examples=_window_sum_examples, transpose="sliding_windows",
    jvp="linear", batch=front_only("window_sum", _grow_shape),
)
