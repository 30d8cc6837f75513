"""The functions users call (NumPy names, PyTorch aliases). Thin wrappers over primitives and
compositions of them: nothing here has a VJP of its own."""
from __future__ import annotations

import builtins
import math
from typing import Any, Sequence

import numpy as np

from .creation import shape_arg
from .errors import ShapeError, fmt_shape
from .ops import elementwise as E
from .ops import linalg as L
from .ops import reduce as R
from .ops import shape as S
from .ops.reduce import normalize_axis
from .primitive import shape_of
from .tensor import Tensor, as_tensor_like, tensor

ArrayLike = Any


def _t(x: ArrayLike) -> Tensor:
    return x if isinstance(x, Tensor) else tensor(x)


def _floating(x: ArrayLike) -> Tensor:
    """Integer and bool inputs of float functions become float32 (PyTorch's rule, not NumPy's float64)."""
    x = _t(x)
    if x.data.dtype.kind in "biu":
        return Tensor._make(x.data.astype(np.float32))
    return x


def _pair(x: ArrayLike, y: ArrayLike) -> tuple[Any, Any]:
    """Bring a binary op's operands to tensors/weak scalars without upcasting float32."""
    if isinstance(x, Tensor):
        return x, as_tensor_like(y, x)
    if isinstance(y, Tensor):
        return as_tensor_like(x, y), y
    return tensor(x), y


def _axis_arg(axis, dim):
    return dim if axis is None and dim is not None else axis


def _axes(axis, ndim: int, op: str, dim=None) -> tuple[int, ...] | None:
    """The one reading of every axis argument (axis=, or PyTorch's dim=): None (all axes), an int
    or a sequence of ints -> sorted non-negative axes. Out of range, repeated or non-int axes
    raise here, naming the operation, whatever the function."""
    axis = _axis_arg(axis, dim)
    if axis is None or type(axis) is int and -ndim <= axis < ndim:  # the common cases
        return normalize_axis(axis, ndim, op)
    items = axis if isinstance(axis, (tuple, list)) else (axis,)
    if any(isinstance(a, (bool, np.bool_)) or not isinstance(a, (int, np.integer)) for a in items):
        raise TypeError(f"{op}: axis must be an int or a tuple of ints, got {axis!r}")
    axes = normalize_axis(tuple(int(a) for a in items), ndim, op)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: axis {axis!r} names an axis twice (tensor with {ndim} dimensions)")
    return axes


def _axis(axis, ndim: int, op: str) -> int:
    """One axis (not a tuple) as a non-negative int."""
    if isinstance(axis, (tuple, list)):
        raise TypeError(f"{op}: axis must be a single int, got {axis!r}")
    return _axes(axis, ndim, op)[0]


def _keep_arg(keepdims, keepdim):
    return keepdim if keepdim is not None else keepdims


# --- arithmetic ---------------------------------------------------------------------------------
def add(x: ArrayLike, y: ArrayLike) -> Tensor:
    return E.add_p(*_pair(x, y))


def subtract(x: ArrayLike, y: ArrayLike) -> Tensor:
    return E.sub_p(*_pair(x, y))


def multiply(x: ArrayLike, y: ArrayLike) -> Tensor:
    return E.mul_p(*_pair(x, y))


def divide(x: ArrayLike, y: ArrayLike) -> Tensor:
    return E.div_p(*_pair(x, y))


def power(x: ArrayLike, y: ArrayLike) -> Tensor:
    return E.pow_p(*_pair(x, y))


def negative(x: ArrayLike) -> Tensor:
    return E.neg_p(_t(x))


def exp(x: ArrayLike) -> Tensor:
    return E.exp_p(_floating(x))


def log(x: ArrayLike) -> Tensor:
    return E.log_p(_floating(x))


def sqrt(x: ArrayLike) -> Tensor:
    return E.pow_p(_floating(x), 0.5)


def tanh(x: ArrayLike) -> Tensor:
    return E.tanh_p(_floating(x))


def sigmoid(x: ArrayLike) -> Tensor:
    return E.sigmoid_p(_floating(x))


def relu(x: ArrayLike) -> Tensor:
    return E.relu_p(_t(x))


def _underived(t: Tensor) -> Tensor:
    """A recorded value no derivative flows through (a mask, a sign, a stopped shift): its op stays in
    the graph (export, vmap and compile see it) but backward never computes a cotangent for it."""
    t.requires_grad = False
    return t


def stop_gradient(x: ArrayLike) -> Tensor:
    """x as a value with no derivative (JAX's name; PyTorch's detach, but recorded in the graph)."""
    return _underived(E.stop_gradient_p(_t(x)))


def greater(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x > y as a recorded bool mask (no derivative)."""
    return _underived(E.greater_p(*_pair(x, y)))


def less(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x < y as a recorded bool mask: greater(y, x)."""
    x, y = _pair(x, y)
    return _underived(E.greater_p(y, x))


def equal(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x == y as a recorded bool mask (no derivative)."""
    return _underived(E.equal_p(*_pair(x, y)))


def sign(x: ArrayLike) -> Tensor:
    """-1, 0 or 1, recorded; its derivative is zero almost everywhere, so it has none."""
    x = _t(x)
    if x.dtype == bool:
        return Tensor._make(x.data.copy())
    return _underived(E.sign_p(x))


def abs(x: ArrayLike) -> Tensor:  # noqa: A001 - NumPy's name
    """|x| = x * sign(x); like PyTorch, its derivative at 0 is 0 (the sign there)."""
    x = _t(x)
    if not x.requires_grad:
        return Tensor._make(np.abs(x.data))
    return E.mul_p(x, _underived(E.sign_p(x)))


def where(condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Tensor:
    """Pick x where condition holds, else y. Beware: both branches are evaluated (see docs/debugging).
    A bool Tensor condition (greater, equal, ...) stays a recorded argument."""
    if isinstance(condition, Tensor) and condition.dtype == bool:
        cond = condition
    else:
        cond = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
        if cond.dtype != bool:
            cond = cond.astype(bool)
    x, y = _pair(x, y)
    return E.where_p(cond, x, y)


def maximum(x: ArrayLike, y: ArrayLike) -> Tensor:
    """The larger of x and y; at ties the gradient goes to x (PyTorch splits it)."""
    x, y = _pair(x, y)
    return E.where_p(_underived(E.greater_p(y, x)), y, x)


def minimum(x: ArrayLike, y: ArrayLike) -> Tensor:
    """The smaller of x and y; at ties the gradient goes to x."""
    x, y = _pair(x, y)
    return E.where_p(_underived(E.greater_p(x, y)), y, x)


def clip(x: ArrayLike, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Clamp into [min, max] (NumPy's order: max wins when min > max); the gradient flows where x is
    inside, bounds included (PyTorch's clamp)."""
    x = _t(x)
    out = x
    if min is not None:
        lo = np.array(min, dtype=x.dtype)
        out = E.where_p(_underived(E.greater_p(lo, out)), lo, out)
    if max is not None:
        hi = np.array(max, dtype=x.dtype)
        out = E.where_p(_underived(E.greater_p(out, hi)), hi, out)
    return out if out is not x else E.mul_p(x, 1)  # a new tensor either way, like the masked path


clamp = clip


# --- reductions ---------------------------------------------------------------------------------
def sum(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    x = _t(x)
    return R.sum_p(x, axis=_axes(axis, x.ndim, "sum", dim), keepdims=_keep_arg(keepdims, keepdim))


def _count(x: Tensor, axis) -> int:
    if axis is None:
        return x.size
    return math.prod(x.shape[a] for a in axis)


def mean(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    x = _floating(x)
    axes = _axes(axis, x.ndim, "mean", dim)
    n = _count(x, axes)  # NaN for an empty input, like NumPy and PyTorch
    return R.sum_p(x, axis=axes, keepdims=_keep_arg(keepdims, keepdim)) * (1.0 / n if n else math.nan)


def var(x: ArrayLike, axis=None, keepdims: bool = False, ddof: int = 0, *, dim=None, keepdim=None,
        correction: int | None = None, unbiased: bool | None = None) -> Tensor:
    """Variance with NumPy's default ddof=0; `correction=`/`unbiased=` accepted as in PyTorch."""
    x = _floating(x)
    if correction is not None:
        ddof = correction
    elif unbiased is not None:
        ddof = int(unbiased)
    axes = _axes(axis, x.ndim, "var", dim)
    centered = x - mean(x, axes, keepdims=True)
    # n - ddof <= 0 (one sample, unbiased) divides by zero: NaN (or inf), as in NumPy and PyTorch
    divisor = _count(x, axes) - ddof
    scale = 1.0 / divisor if divisor > 0 else math.inf
    with np.errstate(invalid="ignore"):
        return R.sum_p(centered * centered, axis=axes, keepdims=_keep_arg(keepdims, keepdim)) * scale


def std(x: ArrayLike, axis=None, keepdims: bool = False, ddof: int = 0, **kw) -> Tensor:
    return sqrt(var(x, axis, keepdims, ddof, **kw))


def max(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    x = _t(x)
    _nonempty(x, "max")
    return R.max_p(x, axis=_axes(axis, x.ndim, "max", dim), keepdims=_keep_arg(keepdims, keepdim))


def min(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:  # noqa: A001
    return -max(-_t(x), axis, keepdims, dim=dim, keepdim=keepdim)


def _nonempty(x: Tensor, op: str) -> None:
    if x.size == 0:
        raise ShapeError(f"{op}: the input of shape {fmt_shape(x.shape)} is empty")


def argmax(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    return _arg_reduce(np.argmax, "argmax", x, _axis_arg(axis, dim), _keep_arg(keepdims, keepdim))


def argmin(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    return _arg_reduce(np.argmin, "argmin", x, _axis_arg(axis, dim), _keep_arg(keepdims, keepdim))


def _arg_reduce(fn, op: str, x: ArrayLike, axis, keepdims: bool) -> Tensor:
    x = _t(x)
    _nonempty(x, op)
    axis = None if axis is None else _axis(axis, x.ndim, op)
    return Tensor._make(np.asarray(fn(x.data, axis=axis, keepdims=keepdims)))


def _stable_shift(x: Tensor, axes) -> Tensor | np.ndarray:
    """max over axes, recorded but gradient-free (stop_gradient): shifting by it changes no gradient,
    and vmap, jvp, compile and ONNX export see it as the ops it is."""
    if x.size == 0:
        return np.zeros(np.sum(x.data, axis=axes, keepdims=True).shape, dtype=x.dtype)
    m = _underived(E.stop_gradient_p(R.max_p(x, axis=axes, keepdims=True)))
    if not np.isfinite(m.data).all():  # a row of -inf (or inf/nan) must not turn into nan by x - m
        with np.errstate(invalid="ignore"):  # inf - inf is the nan this test is for
            finite = _underived(E.equal_p(m - m, 0))  # m - m == 0 exactly where m is finite
        m = E.where_p(finite, m, np.zeros((), x.dtype))
    return m


def logsumexp(x: ArrayLike, axis=None, keepdims: bool = False, *, dim=None, keepdim=None) -> Tensor:
    x = _floating(x)
    _nonempty(x, "logsumexp")
    axes = _axes(axis, x.ndim, "logsumexp", dim)
    keep = _keep_arg(keepdims, keepdim)
    m = _stable_shift(x, axes)
    out = log(R.sum_p(exp(x - m), axis=axes, keepdims=True)) + m
    return out if keep else reshape(out, np.sum(x.data, axis=axes).shape if axes is not None else ())


def softmax(x: ArrayLike, axis: int = -1, *, dim=None) -> Tensor:
    x = _floating(x)
    axes = _axes(axis, x.ndim, "softmax", dim)
    e = exp(x - _stable_shift(x, axes))
    return e / R.sum_p(e, axis=axes, keepdims=True)


def log_softmax(x: ArrayLike, axis: int = -1, *, dim=None) -> Tensor:
    """(x - m) - log(sum(exp(x - m))), with m = stop_gradient(max(x)): seven primitives."""
    x = _floating(x)
    axes = _axes(axis, x.ndim, "log_softmax", dim)
    shifted = x - _stable_shift(x, axes)
    return shifted - log(R.sum_p(exp(shifted), axis=axes, keepdims=True))


# --- shapes ---------------------------------------------------------------------------------------
def reshape(x: ArrayLike, *shape) -> Tensor:
    x = _t(x)
    shape = shape_arg(shape, "reshape", minimum=-1)
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if shape.count(-1) > 1 or known == 0 or x.size % known:
            raise ShapeError(f"reshape: cannot reshape {fmt_shape(x.shape)} ({x.size} elements) into {fmt_shape(shape)}")
        shape = tuple(x.size // known if s == -1 else s for s in shape)
    if shape == x.shape:
        return x
    return S.reshape_p(x, shape=shape)


view = reshape


def flatten(x: ArrayLike, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    x = _t(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s, e = _axis(start_dim, x.ndim, "flatten"), _axis(end_dim, x.ndim, "flatten")
    if s > e:
        raise ShapeError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for {fmt_shape(x.shape)}")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s:e + 1]),) + x.shape[e + 1:])


def transpose(x: ArrayLike, *axes) -> Tensor:
    """One rule at every rank:
    - `transpose(x, a, b)`, two ints: swap axes a and b (PyTorch's transpose; (2, 3) -> (3, 2));
    - `transpose(x, (2, 0, 1))`, one tuple or list: that permutation (NumPy's transpose, `permute`);
    - `transpose(x)`: reverse the axes (NumPy's default and `.T`).
    Any other number of separate ints is a permutation, like NumPy's `x.transpose(2, 0, 1)`."""
    x = _t(x)
    if len(axes) == 2 and not isinstance(axes[0], (tuple, list)):
        return swapaxes(x, *axes)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    if not axes:
        axes = tuple(range(x.ndim))[::-1]
    return permute(x, axes)


def permute(x: ArrayLike, *axes) -> Tensor:
    x = _t(x)
    if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
        axes = tuple(axes[0])
    axes = tuple(_axis(a, x.ndim, "permute") for a in axes)
    if sorted(axes) != list(range(x.ndim)):
        raise ShapeError(f"permute: {axes} is not a permutation of the {x.ndim} axes of {fmt_shape(x.shape)}")
    if axes == tuple(range(x.ndim)):
        return x
    return S.transpose_p(x, axes=axes)


def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Tensor:
    x = _t(x)
    axes = list(range(x.ndim))
    a, b = _axis(axis1, x.ndim, "swapaxes"), _axis(axis2, x.ndim, "swapaxes")
    axes[a], axes[b] = axes[b], axes[a]
    return permute(x, axes)


def squeeze(x: ArrayLike, axis=None, *, dim=None) -> Tensor:
    x = _t(x)
    axis = _axis_arg(axis, dim)
    axes = _axes(axis, x.ndim, "squeeze") if axis is not None else tuple(i for i, s in enumerate(x.shape) if s == 1)
    axes = tuple(a for a in axes if x.shape[a] == 1)  # PyTorch: squeezing a non-1 axis is a no-op
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def unsqueeze(x: ArrayLike, axis: int) -> Tensor:
    """A new axis of size 1 at `axis`, in [-ndim - 1, ndim] (PyTorch's and NumPy's range)."""
    x = _t(x)
    if type(axis) is int and not -x.ndim - 1 <= axis <= x.ndim:
        raise ShapeError(f"unsqueeze: axis {axis} is out of range for a tensor with {x.ndim} dimensions "
                         f"{fmt_shape(x.shape)}; a new axis goes at {-x.ndim - 1}..{x.ndim}")
    a = _axis(axis, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


expand_dims = unsqueeze


def broadcast_to(x: ArrayLike, *shape) -> Tensor:
    x = _t(x)
    shape = shape_arg(shape, "broadcast_to")
    if shape == x.shape:
        return x
    return S.broadcast_to_p(x, shape=shape)


def expand(x: ArrayLike, *shape) -> Tensor:
    """PyTorch's expand: -1 keeps a size."""
    x = _t(x)
    shape = shape_arg(shape, "expand", minimum=-1)
    lead = len(shape) - x.ndim
    if lead < 0 or -1 in shape[:lead]:
        raise ShapeError(f"expand: cannot expand {fmt_shape(x.shape)} to {fmt_shape(shape)} (-1 keeps an existing size, "
                         "and the new leading sizes must be given)")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(x, shape)


def sum_to(x: ArrayLike, *shape) -> Tensor:
    return S.sum_to(_t(x), shape_arg(shape, "sum_to"))


def concatenate(tensors: Sequence[ArrayLike], axis: int = 0, *, dim=None) -> Tensor:
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ShapeError("concatenate: needs at least one tensor")
    return S.concatenate_p(*ts, axis=_axis(_axis_arg(axis, dim), ts[0].ndim, "concatenate"))


cat = concatenate


def stack(tensors: Sequence[ArrayLike], axis: int = 0, *, dim=None) -> Tensor:
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ShapeError("stack: needs at least one tensor")
    shapes = {t.shape for t in ts}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all tensors must have the same shape, got {', '.join(fmt_shape(t.shape) for t in ts)}")
    axis = _axis(_axis_arg(axis, dim), ts[0].ndim + 1, "stack")
    return concatenate([unsqueeze(t, axis) for t in ts], axis)


def pad(x: ArrayLike, pad_width, mode: str = "constant", constant_values: float = 0) -> Tensor:
    """NumPy's pad (constant mode): `pad_width` is an int, a (before, after) pair, or one per axis."""
    x = _t(x)
    if mode != "constant":
        raise NotImplementedError(f"pad: mode {mode!r} is not supported (only 'constant')")
    widths = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2)) if x.ndim else np.zeros((0, 2), int)
    if (widths < 0).any():
        raise ShapeError(f"pad: negative widths {widths.tolist()} for input {fmt_shape(x.shape)}")
    shape = tuple(int(s + a + b) for s, (a, b) in zip(x.shape, widths))
    index = tuple(slice(int(a), int(a) + s) for s, (a, _) in zip(x.shape, widths))
    out = S.unslice_p(x, index=index, shape=shape)
    if constant_values != 0:
        fill = np.full(shape, constant_values, dtype=x.dtype)
        fill[index] = 0
        out = out + fill
    return out


def _is_basic(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


def _normalize_index(index, shape: tuple[int, ...]):
    """Tensor indices become arrays; boolean masks become integer index arrays, after checking
    that each mask has the shape of the axes it covers (NumPy's rule: a (2, 2) mask on (2, 3)
    axes, or a mask longer than its axis, is an error, not a selection of other elements)."""
    items = index if isinstance(index, tuple) else (index,)
    items = [i.data if isinstance(i, Tensor) else np.asarray(i) if isinstance(i, list) else i for i in items]
    if not any(isinstance(i, np.ndarray) and i.dtype == bool and i.ndim for i in items):
        return tuple(items)
    used = builtins.sum(i.ndim if isinstance(i, np.ndarray) and i.dtype == bool else i is not None and i is not Ellipsis
                        for i in items)
    out, axis = [], 0
    for i in items:
        if i is Ellipsis:
            axis += len(shape) - used
        elif isinstance(i, np.ndarray) and i.dtype == bool and i.ndim:
            covered = shape[axis:axis + i.ndim]
            if i.shape != covered:
                axes = f"axis {axis} (size {covered[0]})" if i.ndim == 1 and covered else \
                    f"axes {axis}-{axis + i.ndim - 1} (shape {fmt_shape(covered)})"
                raise ShapeError(f"getitem: boolean mask {fmt_shape(i.shape)} does not match {axes} of the tensor "
                                 f"{fmt_shape(shape)}")
            out.extend(np.nonzero(i))
            axis += i.ndim
            continue
        elif i is not None:
            axis += 1
        out.append(i)
    return tuple(out)


def getitem(x: ArrayLike, index) -> Tensor:
    """x[index]: basic indexing is a `slice` (a view), integer arrays and masks a `take` (a gather)."""
    x = _t(x)
    index = _normalize_index(index, x.shape)
    if _is_basic(index):
        return S.slice_p(x, index=index)
    return S.take_p(x, index=index)


# --- contractions -----------------------------------------------------------------------------------
def matmul(x: ArrayLike, y: ArrayLike) -> Tensor:
    return L.matmul_p(*_pair(x, y))


def dot(x: ArrayLike, y: ArrayLike) -> Tensor:
    return matmul(x, y)


def einsum(subscripts: str, *operands: ArrayLike) -> Tensor:
    """NumPy's einsum over two or more operands; '...' and implicit output are expanded first."""
    ts = [_t(o) for o in operands]
    spec = _explicit_subscripts(subscripts.replace(" ", ""), [t.ndim for t in ts])
    return L.einsum_p(*ts, subscripts=spec)


def _explicit_subscripts(spec: str, ndims: list[int]) -> str:
    ins, arrow, out = spec.partition("->")
    terms = ins.split(",")
    if len(terms) != len(ndims):
        raise ShapeError(f"einsum: {spec!r} names {len(terms)} operands, got {len(ndims)}")
    used = set(spec) - set(",->.")
    spare = [c for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in used]
    n_ell = 0
    for term, nd in zip(terms, ndims):
        if "..." in term:
            n_ell = builtins.max(n_ell, nd - (len(term) - 3))
    ell = "".join(spare[:n_ell])
    new_terms = []
    for term, nd in zip(terms, ndims):
        if "..." in term:
            k = nd - (len(term) - 3)
            term = term.replace("...", ell[n_ell - k:] if k else "")
        new_terms.append(term)
    if not arrow:
        letters = "".join(new_terms)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    else:
        out = out.replace("...", ell)
    return ",".join(new_terms) + "->" + out

