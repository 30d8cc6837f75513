"""Layers as functions, with PyTorch's names, signatures and defaults.

Every function is a composition of autograd primitives: none has a backward of its own, so all of
them support grad-of-grad. Shapes are checked first, so errors name the layer and the shapes.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

import autograd as ag
from autograd.creation import as_generator
from autograd.graph import mark_modified
from autograd.errors import DtypeError, ShapeError, fmt_shape
from autograd.ops import shape as S
from autograd.tensor import Tensor

from . import _args as A
from . import _conv as G

ArrayLike = Any


def _t(x: ArrayLike) -> Tensor:
    return x if isinstance(x, Tensor) else ag.tensor(x)


# --- linear and convolution -------------------------------------------------------------------------
def linear(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> Tensor:
    """input @ weight.T + bias, with weight (out_features, in_features) like PyTorch."""
    x, w = _t(input), _t(weight)
    if w.ndim != 2:
        raise ShapeError(f"linear: weight must be 2-D (out_features, in_features), got {fmt_shape(w.shape)}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ShapeError(f"linear: input {fmt_shape(x.shape)} has {x.shape[-1] if x.ndim else 0} features, "
                         f"weight {fmt_shape(w.shape)} expects {w.shape[1]}")
    A.floating(x, "linear")
    A.same_dtype(x, w, "linear")
    if bias is not None:
        bias = _t(bias)
        if bias.shape != (w.shape[0],):
            raise ShapeError(f"linear: bias {fmt_shape(bias.shape)} must have shape ({w.shape[0]},), one per output "
                             f"feature of weight {fmt_shape(w.shape)}")
        A.same_dtype(x, bias, "linear", "bias")
    out = x @ S.transpose_p(w, axes=(1, 0))
    return out if bias is None else out + bias


def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation: windows of the padded input contracted with the weight.

    The input is laid out batch-last, (C, H, W, B) (the padding copy does it; a previous conv's
    output already is), so window rows (Wo, B) are contiguous runs for the im2col copy and
    window_sum's adds, and the output is a (B, O, Ho, Wo) view of the (O, Ho, Wo, B) product: the
    layers after it (batch norm, ReLU, pooling, the next conv) keep that layout, forward and
    backward, instead of mixing it with batch-first arrays (elementwise ops on mixed layouts run
    several times slower). Two compositions of primitives, chosen by shape in `_conv2d_core`:
    with vertical stride 1 and smaller matrices, the kernel-row split (`_conv2d_row_split`):
    im2col along the width only, one GEMM with the kh weight rows stacked, and window_sum adding
    the kh shifted row products; else full im2col (groups, C/g*kh*kw, Ho*Wo*B), one GEMM per group.
    Backward is each composition's VJPs (matmul, window_sum <-> sliding_windows, reshapes).
    What each choice and each rejected alternative (batch-first im2col, einsum over the window
    view, implicit GEMM as a sum of kh*kw shifted products, one channel-major im2col for every
    geometry) measured is in docs/benchmarks.md.
    """
    return _conv(_t(input), _t(weight), bias, stride, padding, dilation, groups, 2, "conv2d")


def conv1d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None, stride: Any = 1,
           padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """1-D cross-correlation: conv2d on a unit height axis."""
    return _conv(_t(input), _t(weight), bias, stride, padding, dilation, groups, 1, "conv1d")


def _conv(x: Tensor, w: Tensor, bias, stride, padding, dilation, groups: int, n: int, op: str) -> Tensor:
    G.check_spatial_input(x.shape, n, op)
    A.floating(x, op)
    A.same_dtype(x, w, op)
    A.same_dtype(x, bias, op, "bias")
    if w.ndim != n + 2:
        raise ShapeError(f"{op}: weight must be {n + 2}-D (out_channels, in_channels/groups, kernel...), "
                         f"got {fmt_shape(w.shape)}")
    if 0 in w.shape[:1] + w.shape[2:]:
        raise ShapeError(f"{op}: weight {fmt_shape(w.shape)} has no output channels or a kernel of size 0")
    unbatched = x.ndim == n + 1
    if unbatched:
        x = ag.unsqueeze(x, 0)
    kernel, stride = w.shape[2:], A.geometry(stride, n, A.STRIDE, op)
    dilation = A.geometry(dilation, n, A.DILATION, op)
    A.conv_padding(padding, n, op)
    groups = A.integer(groups, "groups", op, minimum=1)
    channels, out_channels = x.shape[1], w.shape[0]
    if channels % groups or out_channels % groups:
        raise ShapeError(f"{op}: groups={groups} must divide both the input channels ({channels}, input "
                         f"{fmt_shape(x.shape)}) and the output channels ({out_channels}, weight {fmt_shape(w.shape)})")
    if channels != w.shape[1] * groups:
        raise ShapeError(f"{op}: input {fmt_shape(x.shape)} has {channels} channels, weight {fmt_shape(w.shape)} "
                         f"expects {w.shape[1] * groups}" + (f" ({groups} groups)" if groups > 1 else ""))
    if bias is not None and tuple(_t(bias).shape) != (out_channels,):
        raise ShapeError(f"{op}: bias {fmt_shape(_t(bias).shape)} must have shape ({out_channels},), "
                         f"one per output channel of weight {fmt_shape(w.shape)}")
    pads = G.conv_padding(padding, kernel, stride, dilation, op)
    out_sp = G.conv_output(x.shape, kernel, pads, stride, dilation, op)
    if n == 1:  # a unit height axis makes it a 2-D problem
        x, w = ag.unsqueeze(x, 2), ag.unsqueeze(w, 2)
        kernel, stride, dilation, pads = (1,) + kernel, (1,) + stride, (1,) + dilation, ((0, 0),) + pads
    out = _conv2d_core(x, w, kernel, stride, dilation, pads, groups)
    if n == 1:  # drop the unit height axis
        out = S.reshape_p(out, shape=(x.shape[0], out_channels) + out_sp)
    if bias is not None:
        out = out + S.reshape_p(_t(bias), shape=(out_channels,) + (1,) * n)
    return S.reshape_p(out, shape=out.shape[1:]) if unbatched else out


def _conv2d_core(x: Tensor, w: Tensor, kernel, stride, dilation, pads, groups: int) -> Tensor:
    """(B, C, H, W) input -> (B, O, Ho, Wo), batch-last inside (see conv2d)."""
    hp = x.shape[2] + sum(pads[0])
    kh, span = kernel[0], dilation[0] * (kernel[0] - 1)
    ho = (hp - span - 1) // stride[0] + 1
    full = w.shape[1] * kernel[0] * kernel[1] * ho  # im2col rows x height, against the split's cols + products
    split = w.shape[1] * kernel[1] * hp + kh * (w.shape[0] // groups) * hp
    if kh > 1 and stride[0] == 1 and split < full:
        # vertical padding up to the kernel's span is left to the split's crop: no GEMM columns of zeros
        (top, bottom), rows = pads[0], (max(0, pads[0][0] - span), max(0, pads[0][1] - span))
        xt = _batch_last_input(x, (rows, pads[1]))
        return _conv2d_row_split(xt, w, kernel, stride, dilation, groups, top - rows[0], ho)
    return _conv2d_batch_last(_batch_last_input(x, pads), w, kernel, stride, dilation, groups)


def _is_batch_last(a: np.ndarray) -> bool:
    """The batch axis is the innermost (e.g. a conv's output, after elementwise ops)."""
    return a.shape[0] > 1 and a.strides[0] == a.itemsize and a.strides[1] > a.strides[0]


def _batch_last_gradient(y: Tensor) -> Tensor:
    """y itself (views only), but its gradient comes back batch-last like y: a cotangent from a
    batch-first consumer (flatten, linear) is copied once here, at the small pooled size, so the
    VJPs upstream (pooling, ReLU, batch norm over a conv's output) all see one layout."""
    b, c, h, w = y.shape
    yt = S.reshape_p(S.transpose_p(y, axes=(1, 2, 3, 0)), shape=(c, h * w * b))  # merging b forces the copy
    return S.transpose_p(S.reshape_p(yt, shape=(c, h, w, b)), axes=(3, 0, 1, 2))


def _batch_last_input(x: Tensor, pads) -> Tensor:
    """(B, C, H, W) -> padded (C, H', W', B), contiguous."""
    b, c, h, wd = x.shape
    xt = S.transpose_p(x, axes=(1, 2, 3, 0))
    if any(p or q for p, q in pads):  # the padding copy also lays the input out batch-last
        shape = (c, h + sum(pads[0]), wd + sum(pads[1]), b)
        return S.unslice_p(xt, index=(slice(None), slice(pads[0][0], pads[0][0] + h), slice(pads[1][0], pads[1][0] + wd),
                                slice(None)), shape=shape)
    if xt.data.flags.c_contiguous:  # already batch-last (a previous conv's output): nothing to do
        return xt
    return S.reshape_p(S.reshape_p(xt, shape=(c, h * wd * b)), shape=(c, h, wd, b))  # merging b forces the copy


def _conv2d_batch_last(xt: Tensor, w: Tensor, kernel, stride, dilation, groups: int) -> Tensor:
    """im2col (groups, C/g*kh*kw, Ho*Wo*B) of the batch-last input: see conv2d. Output: a
    (B, O, Ho, Wo) view of the (O, Ho, Wo, B) product."""
    b = xt.shape[3]
    o, cg = w.shape[:2]
    kk = cg * kernel[0] * kernel[1]
    if kernel == (1, 1) and stride == (1, 1):
        ho, wo = xt.shape[1:3]
        cols = S.reshape_p(xt, shape=(groups, kk, ho * wo * b))
    else:
        win = S.sliding_windows_p(xt, kernel=kernel + (1,), stride=stride + (1,), dilation=dilation + (1,))
        ho, wo = win.shape[1:3]  # win: C Ho Wo B kh kw 1
        cols = S.reshape_p(S.transpose_p(win, axes=(0, 4, 5, 6, 1, 2, 3)), shape=(groups, kk, ho * wo * b))
    out = S.reshape_p(w, shape=(groups, o // groups, kk)) @ cols
    return S.transpose_p(S.reshape_p(out, shape=(o, ho, wo, b)), axes=(3, 0, 1, 2))


def _conv2d_row_split(xt: Tensor, w: Tensor, kernel, stride, dilation, groups: int, top: int, ho: int) -> Tensor:
    """Vertical stride 1: im2col along the kernel width only, (groups, C/g*kw, H'*Wo*B); one GEMM
    with the weight's kh rows stacked, (groups, kh*O/g, C/g*kw), gives every kernel row's product
    at every input row; window_sum over (kh, 1) then adds row i's product shifted by i*dh.
    Its matrices are ~kh times smaller than full im2col's (C/g*kh*kw, Ho*Wo*B), so forward and
    backward (whose VJPs are a sliding view, two GEMMs and a kw-offset window_sum) move less.
    The weight's kh axis is flipped so that the offsets window_sum adds are the right ones.
    `top` rows of vertical padding (at most the kernel's span) are not in xt: the sum's rows
    beyond the input stand for them, and the crop starts `top` rows earlier."""
    hp, b = xt.shape[1], xt.shape[3]
    o, cg = w.shape[:2]
    og, (kh, kw), dh = o // groups, kernel, dilation[0]
    win = S.sliding_windows_p(xt, kernel=(1, kw, 1), stride=(1, stride[1], 1), dilation=(1, dilation[1], 1))
    wo = win.shape[2]  # win: C H' Wo B 1 kw 1
    cols = S.reshape_p(S.transpose_p(win, axes=(0, 4, 5, 6, 1, 2, 3)), shape=(groups, cg * kw, hp * wo * b))
    wf = S.reshape_p(S.slice_p(w, index=(slice(None), slice(None), slice(None, None, -1))), shape=(groups, og, cg, kh, kw))
    rows = S.reshape_p(S.transpose_p(wf, axes=(0, 3, 1, 2, 4)), shape=(groups, kh * og, cg * kw))
    y = S.reshape_p(rows @ cols, shape=(groups, kh, og, hp, wo * b, 1))
    y = S.transpose_p(y, axes=(0, 2, 3, 4, 1, 5))  # (groups, og, hp, wo*b, kh, 1): window axes last
    start = (kh - 1) * dh - top
    out = S.window_sum_p(y, shape=(groups, og, hp + (kh - 1) * dh, wo * b), kernel=(kh, 1), stride=(1, 1),
                         dilation=(dh, 1))
    out = S.slice_p(out, index=(slice(None), slice(None), slice(start, start + ho)))
    return S.transpose_p(S.reshape_p(out, shape=(o, ho, wo, b)), axes=(3, 0, 1, 2))


# --- pooling ------------------------------------------------------------------------------------------
def _pool_args(x: Tensor, kernel_size, stride, padding, dilation, op: str):
    G.check_spatial_input(x.shape, 2, op)
    kernel = A.geometry(kernel_size, 2, A.KERNEL, op)
    stride = kernel if stride is None or (isinstance(stride, Sequence) and not stride) else A.geometry(stride, 2, A.STRIDE, op)
    padding, dilation = A.geometry(padding, 2, A.PADDING, op), A.geometry(dilation, 2, A.DILATION, op)
    return kernel, stride, padding, dilation


def _tiles(x: Tensor, kernel, out) -> Tensor | None:
    """Non-overlapping windows as a reshape (B, C, Ho, kh, Wo, kw): much cheaper than a window view."""
    h, w = out[0] * kernel[0], out[1] * kernel[1]
    if (h, w) != x.shape[-2:]:
        x = S.slice_p(x, index=(Ellipsis, slice(0, h), slice(0, w)))
    return S.reshape_p(x, shape=x.shape[:-2] + (out[0], kernel[0], out[1], kernel[1]))


def _pool_windows(x: Tensor, kernel, stride, pads, dilation, fill: float) -> Tensor:
    if any(a or b for a, b in pads):
        x = ag.pad(x, ((0, 0),) * (x.ndim - 2) + pads, constant_values=fill)
    return S.sliding_windows_p(x, kernel=kernel, stride=stride, dilation=dilation)


def max_pool2d(input: ArrayLike, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False, return_indices: bool = False):
    """Max over each window; padding counts as -inf.

    Ties: the gradient is split evenly between equal maxima (the `max` primitive's rule), where
    PyTorch routes all of it to one element. For continuous random inputs ties do not occur.
    return_indices gives flat indices into each input plane, like PyTorch (first maximum).
    """
    x = _t(input)
    kernel, stride, padding, dilation = _pool_args(x, kernel_size, stride, padding, dilation, "max_pool2d")
    out, pads = G.pool_geometry(x.shape, kernel, stride, padding, dilation, ceil_mode, "max_pool2d")
    if stride == kernel and padding == (0, 0) and dilation == (1, 1) and not any(b for _, b in pads):
        y = ag.max(_tiles(x, kernel, out), axis=(-3, -1))
    else:
        y = ag.max(_pool_windows(x, kernel, stride, pads, dilation, -np.inf), axis=(-2, -1))
    if y.ndim == 4 and _is_batch_last(y.data):  # a conv's layout: keep it in backward too
        y = _batch_last_gradient(y)
    if not return_indices:
        return y
    return y, _argmax_indices(x.data, kernel, stride, pads, dilation)


def _argmax_indices(x: np.ndarray, kernel, stride, pads, dilation) -> Tensor:
    """Flat (h * W + w) index of each window's first maximum, as PyTorch's return_indices."""
    h, w = x.shape[-2:]
    xp = np.pad(x, ((0, 0),) * (x.ndim - 2) + pads, constant_values=-np.inf)
    win = S._sliding_windows(xp, kernel, stride, dilation)
    arg = win.reshape(win.shape[:-2] + (-1,)).argmax(-1)
    ki, kj = np.divmod(arg, kernel[1])
    rows = np.arange(win.shape[-4])[:, None] * stride[0] + ki * dilation[0] - pads[0][0]
    cols = np.arange(win.shape[-3])[None, :] * stride[1] + kj * dilation[1] - pads[1][0]
    return ag.tensor((rows * w + cols).astype(np.int64))


def avg_pool2d(input: ArrayLike, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: int | None = None) -> Tensor:
    """Mean over each window; the divisor follows PyTorch (padding counted unless told otherwise,
    the ceil-mode overhang never)."""
    if divisor_override is not None:
        A.integer(divisor_override, "divisor_override", "avg_pool2d", minimum=1)
    x = _t(input)
    kernel, stride, padding, _ = _pool_args(x, kernel_size, stride, padding, 1, "avg_pool2d")
    out, pads = G.pool_geometry(x.shape, kernel, stride, padding, (1, 1), ceil_mode, "avg_pool2d")
    if stride == kernel and padding == (0, 0) and not any(b for _, b in pads):
        total = ag.sum(_tiles(x, kernel, out), axis=(-3, -1))
        counts = float(kernel[0] * kernel[1])
    else:
        total = ag.sum(_pool_windows(x, kernel, stride, pads, (1, 1), 0.0), axis=(-2, -1))
        counts = G.divisor_counts(x.shape[-2:], pads, kernel, stride, out, count_include_pad)
        if np.all(counts == counts.flat[0]):
            counts = float(counts.flat[0])
    if divisor_override is not None:
        counts = float(divisor_override)
    scale = 1.0 / counts if isinstance(counts, float) else (1.0 / counts).astype(x.dtype)
    y = total * scale
    return _batch_last_gradient(y) if y.ndim == 4 and _is_batch_last(y.data) else y


# --- normalisation ------------------------------------------------------------------------------------
def batch_norm(input: ArrayLike, running_mean: Any, running_var: Any, weight: ArrayLike | None = None,
               bias: ArrayLike | None = None, training: bool = False, momentum: float = 0.1,
               eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over every axis but the channel axis 1.

    training: batch statistics, and the running ones (arrays or Tensors, may be None) are updated
    in place with `momentum` and the unbiased batch variance, like PyTorch. Otherwise the running
    statistics normalise.
    """
    x = _t(input)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected at least 2-D input (batch, channels, ...), got {fmt_shape(x.shape)}")
    A.floating(x, "batch_norm")
    A.same_dtype(x, weight, "batch_norm")
    A.same_dtype(x, bias, "batch_norm", "bias")
    c = x.shape[1]
    stat_shape = (1, c) + (1,) * (x.ndim - 2)
    for name, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and np.shape(t.data if isinstance(t, Tensor) else t) != (c,):
            raise ShapeError(f"batch_norm: {name} {fmt_shape(np.shape(getattr(t, 'data', t)))} must have shape "
                             f"({c},), one per channel of input {fmt_shape(x.shape)}")
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        n = x.size // c
        if n <= 1:
            raise ShapeError(f"batch_norm: expected more than 1 value per channel when training, got input {fmt_shape(x.shape)}")
        mean = ag.mean(x, axis=axes, keepdims=True)
        centered = x - mean
        var = ag.mean(centered * centered, axis=axes, keepdims=True)
        scale = (var + eps) ** -0.5  # per channel: folding gamma in here saves a full-size multiply
        _update_running(running_mean, mean.data.reshape(c), momentum)
        _update_running(running_var, var.data.reshape(c) * (n / (n - 1)), momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when training=False")
        rm = np.asarray(getattr(running_mean, "data", running_mean), dtype=x.dtype).reshape(stat_shape)
        rv = np.asarray(getattr(running_var, "data", running_var), dtype=x.dtype).reshape(stat_shape)
        centered = x - rm
        scale = Tensor._make((1.0 / np.sqrt(rv + eps)).astype(x.dtype))
    if weight is not None:
        scale = scale * S.reshape_p(_t(weight), shape=stat_shape)
    y = centered * scale
    if bias is not None:
        y = y + S.reshape_p(_t(bias), shape=stat_shape)
    return y


def _update_running(stat: Any, batch_value: np.ndarray, momentum: float) -> None:
    if stat is None:
        return
    arr = stat.data if isinstance(stat, Tensor) else stat
    arr *= 1.0 - momentum
    arr += (momentum * batch_value).astype(arr.dtype, copy=False)
    if isinstance(stat, Tensor):
        mark_modified(stat, "batch_norm running statistics")


def layer_norm(input: ArrayLike, normalized_shape: int | Sequence[int], weight: ArrayLike | None = None,
               bias: ArrayLike | None = None, eps: float = 1e-5) -> Tensor:
    """Normalise over the trailing `normalized_shape` axes, then scale and shift elementwise."""
    x = _t(input)
    shape = A.shape(normalized_shape, "normalized_shape", "layer_norm")
    A.floating(x, "layer_norm")
    A.same_dtype(x, weight, "layer_norm")
    A.same_dtype(x, bias, "layer_norm", "bias")
    if x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ShapeError(f"layer_norm: input {fmt_shape(x.shape)} does not end with normalized_shape {fmt_shape(shape)}")
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    centered = x - ag.mean(x, axis=axes, keepdims=True)
    y = centered * (ag.mean(centered * centered, axis=axes, keepdims=True) + eps) ** -0.5
    if weight is not None:
        y = y * weight
    return y if bias is None else y + bias


# --- activations and elementwise --------------------------------------------------------------------
def dropout(input: ArrayLike, p: float = 0.5, training: bool = True, rng: np.random.Generator | int | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p)."""
    p = A.probability(p, "p", "dropout")
    x = _t(input)
    if not training or p == 0.0:
        return x
    A.floating(x, "dropout")
    if p == 1.0:
        return x * 0.0
    keep = as_generator(rng).random(x.shape) >= p
    return x * (keep * (1.0 / (1.0 - p))).astype(x.dtype)


def relu(input: ArrayLike) -> Tensor:
    return ag.relu(input)


def leaky_relu(input: ArrayLike, negative_slope: float = 0.01) -> Tensor:
    x = _t(input)
    return ag.where(ag.greater(x, 0), x, x * negative_slope)


def sigmoid(input: ArrayLike) -> Tensor:
    return ag.sigmoid(input)


def tanh(input: ArrayLike) -> Tensor:
    return ag.tanh(input)


def gelu(input: ArrayLike, approximate: str = "none") -> Tensor:
    """x * Phi(x). 'none' uses an erf composed of exp and a Chebyshev series (error ~1e-15 in
    float64, so forward and gradient match PyTorch's exact GELU); 'tanh' is PyTorch's tanh form."""
    x = _t(input)
    if approximate == "tanh":
        inner = (x + 0.044715 * (x * x * x)) * math.sqrt(2.0 / math.pi)
        return 0.5 * x * (1.0 + ag.tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return x * (0.5 * _erfc(x * (-1.0 / math.sqrt(2.0))))


_ERFC_UMAX, _ERFC_DEG = 10.0, 20
_erfc_coef: np.ndarray | None = None


def _erfc_coefficients() -> np.ndarray:
    """Chebyshev fit of P(t) = log(erfc(u) / t) + u^2, t = 1 / (1 + u/2) on u in [0, 10] (NR's form)."""
    global _erfc_coef
    if _erfc_coef is None:
        tmin = 1.0 / (1.0 + _ERFC_UMAX / 2)
        s = np.cos(np.pi * (np.arange(200) + 0.5) / 200)
        t = tmin + (s + 1) / 2 * (1 - tmin)
        u = 2 * (1 / t - 1)
        f = np.array([math.log(math.erfc(v) / tv) + v * v for v, tv in zip(u, t)])
        _erfc_coef = np.polynomial.chebyshev.chebfit(s, f, _ERFC_DEG)
    return _erfc_coef


def _erfc(z: Tensor) -> Tensor:
    """erfc composed of differentiable ops: erfc(u) = t*exp(-u^2 + P(t)) for u = |z|, reflected for z < 0."""
    coef = _erfc_coefficients()
    tmin = 1.0 / (1.0 + _ERFC_UMAX / 2)
    neg = ag.less(z, 0)
    u = ag.clip(ag.where(neg, -z, z), None, _ERFC_UMAX)  # erfc(10) ~ 2e-45: beyond it, a constant
    t = 1.0 / (1.0 + 0.5 * u)
    s = (t - tmin) * (2.0 / (1.0 - tmin)) - 1.0
    b1, b2 = 0.0, 0.0  # Clenshaw's recurrence for sum c_k T_k(s)
    for c in coef[:0:-1]:
        b1, b2 = s * b1 * 2.0 - b2 + float(c), b1
    poly = s * b1 - b2 + float(coef[0])
    e = t * ag.exp(poly - u * u)
    return ag.where(neg, 2.0 - e, e)


def softmax(input: ArrayLike, dim: int | None = None) -> Tensor:
    x = _t(input)
    return ag.softmax(x, _softmax_dim(x, dim))


def log_softmax(input: ArrayLike, dim: int | None = None) -> Tensor:
    x = _t(input)
    return ag.log_softmax(x, _softmax_dim(x, dim))


def _softmax_dim(x: Tensor, dim: int | None) -> int:
    """PyTorch's legacy implicit dim: 0 for 0-, 1- and 3-D input, else 1."""
    return dim if dim is not None else (0 if x.ndim in (0, 1, 3) else 1)


def one_hot(labels: ArrayLike, num_classes: int = -1) -> Tensor:
    """(..., num_classes) int64 indicators of integer labels; -1 infers max(labels) + 1."""
    y = np.asarray(labels.data if isinstance(labels, Tensor) else labels)
    if y.dtype.kind not in "iu":
        raise DtypeError(f"one_hot: labels must be integers, got {y.dtype} with shape {fmt_shape(y.shape)}")
    if num_classes == -1:
        num_classes = int(y.max()) + 1 if y.size else 0
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ShapeError(f"one_hot: labels must be in [0, {num_classes}), got values in [{y.min()}, {y.max()}]")
    return ag.tensor((y[..., None] == np.arange(num_classes)).astype(np.int64))


def flatten(input: ArrayLike, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    return ag.flatten(input, start_dim, end_dim)



# --- losses ---------------------------------------------------------------------------------------------
def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    A.reduction(reduction, op)
    if reduction == "none":
        return loss
    return ag.sum(loss) if reduction == "sum" else ag.mean(loss)


def _class_targets(x: Tensor, target: Any, ignore_index: int, op: str) -> Tensor:
    """Check integer class targets against input (N, C, d1...) / (C,): batch, extra dims, range.
    Returns them as a Tensor (inside vmap, a batched one: the checks run on the whole batch)."""
    y = target.data if isinstance(target, Tensor) else np.asarray(target)
    if y.dtype.kind not in "iu":
        raise DtypeError(f"{op}: target must hold integer class indices (or class probabilities of the input's "
                         f"shape {fmt_shape(x.shape)}), got {y.dtype} with shape {fmt_shape(y.shape)}")
    expected = x.shape[:1] + x.shape[2:] if x.ndim >= 2 else ()
    if y.shape != expected:
        if x.ndim >= 2 and (y.ndim == 0 or y.shape[0] != x.shape[0]):
            raise ShapeError(f"{op}: input {fmt_shape(x.shape)} and target {fmt_shape(y.shape)} have different "
                             "batch sizes")
        raise ShapeError(f"{op}: target {fmt_shape(y.shape)} must have shape {fmt_shape(expected)} for input "
                         f"{fmt_shape(x.shape)} (the input without its class axis 1)")
    n_classes = x.shape[1] if x.ndim >= 2 else x.shape[0]
    bad = (y != ignore_index) & ((y < 0) | (y >= n_classes))
    if bad.any():
        raise ShapeError(f"{op}: target contains class {np.asarray(y)[np.asarray(bad)].flat[0]} but input has "
                         f"{n_classes} classes")
    return target if isinstance(target, Tensor) else ag.tensor(y)


def _check_logits(x: Tensor, op: str) -> None:
    A.floating(x, op)
    if x.ndim == 0:
        raise ShapeError(f"{op}: input must have a class axis, got a scalar")
    if x.size == 0:
        raise ShapeError(f"{op}: empty batch (input {fmt_shape(x.shape)})")


def _class_weight(weight: Any, n_classes: int, x: Tensor, op: str) -> np.ndarray:
    w = np.ones(n_classes) if weight is None else np.asarray(getattr(weight, "data", weight), dtype=np.float64)
    if w.shape != (n_classes,):
        raise ShapeError(f"{op}: weight {fmt_shape(w.shape)} must have one entry per class ({n_classes},) "
                         f"of input {fmt_shape(x.shape)}")
    return w


def _target_weights(logp: Tensor, y: Tensor, weight: Any, ignore_index: int, op: str) -> Tensor:
    """A dense (no-derivative) tensor holding weight[y] at each target's class and 0 elsewhere, from a
    recorded comparison of the labels with the class ids: the gather of the target log-probabilities
    becomes one multiply and one sum, and vmap, jvp and compile follow the labels. Ignored targets
    match no class (the checked labels are class ids or ignore_index, so renaming that class id to -1
    drops exactly them)."""
    class_axis = 1 if logp.ndim >= 2 else 0
    n_classes = logp.shape[class_axis]
    classes = np.arange(n_classes)
    if 0 <= ignore_index < n_classes:
        classes[ignore_index] = -1
    tail = (1,) * (logp.ndim - class_axis - 1)
    labels = ag.reshape(y, y.shape[:class_axis] + (1,) + y.shape[class_axis:])
    mask = ag.equal(labels, classes.reshape((n_classes,) + tail))
    if weight is None:
        return mask.astype(logp.dtype)
    w = _class_weight(weight, n_classes, logp, op).reshape((n_classes,) + tail).astype(logp.dtype)
    return ag.where(mask, w, np.zeros((), logp.dtype))


def nll_loss(input: ArrayLike, target: Any, weight: Any = None, reduction: str = "mean",
             ignore_index: int = -100) -> Tensor:
    """-weight[t] * input[t] per element; 'mean' divides by the summed weights of non-ignored targets."""
    x = _t(input)
    _check_logits(x, "nll_loss")
    A.reduction(reduction, "nll_loss")
    return _nll(x, _class_targets(x, target, ignore_index, "nll_loss"), weight, reduction, ignore_index, "nll_loss")


def _nll(logp: Tensor, y: Tensor, weight: Any, reduction: str, ignore_index: int, op: str) -> Tensor:
    dense = _target_weights(logp, y, weight, ignore_index, op)
    if reduction == "none":
        return -ag.sum(logp * dense, axis=1 if logp.ndim >= 2 else 0)
    if reduction == "sum":
        return ag.sum(logp * -dense)
    total = ag.sum(dense)  # the summed weights of the non-ignored targets
    if not total.data:  # every target ignored: NaN, zero gradient (PyTorch)
        return ag.sum(logp * dense) + math.nan
    return ag.sum(logp * (dense * (-1.0 / total)))  # one multiply, one sum


def cross_entropy(input: ArrayLike, target: Any, weight: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0, ignore_index: int = -100) -> Tensor:
    """log_softmax over the class axis 1, then nll_loss; or, for float targets of the input's shape,
    -sum(weight * target * log_softmax). Label smoothing and the weighted mean follow PyTorch."""
    x = _t(input)
    op = "cross_entropy"
    _check_logits(x, op)
    A.reduction(reduction, op)
    A.probability(label_smoothing, "label_smoothing", op)
    class_axis = 1 if x.ndim >= 2 else 0
    n_classes = x.shape[class_axis]
    logp = ag.log_softmax(x, class_axis)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind == "f" and t.shape == x.shape:  # class probabilities
        w = _class_weight(weight, n_classes, x, op).reshape((-1,) + (1,) * (x.ndim - class_axis - 1))
        probs = target * (1 - label_smoothing) + label_smoothing / n_classes  # differentiable in target
        loss = -ag.sum(logp * probs * w.astype(x.dtype), axis=class_axis)
        return _reduce(loss, reduction, op)
    y = _class_targets(x, target, ignore_index, op)
    nll = _nll(logp, y, weight, reduction, ignore_index, op)
    if label_smoothing == 0.0:
        return nll
    w = _class_weight(weight, n_classes, x, op)
    kept = _target_weights(logp, y, None, ignore_index, op)
    keep = ag.sum(kept, axis=class_axis)  # 1 for a counted target, 0 for an ignored one
    smooth = -ag.sum(logp * w.reshape((-1,) + (1,) * (x.ndim - class_axis - 1)).astype(x.dtype), axis=class_axis)
    smooth = smooth * keep
    if reduction == "mean":
        denom = ag.sum(_target_weights(logp, y, weight, ignore_index, op)) if weight is not None else ag.sum(keep)
        smooth = ag.sum(smooth) * (1.0 / denom) if denom.data else ag.sum(smooth) + math.nan
    elif reduction == "sum":
        smooth = ag.sum(smooth)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def _check_same_shape(x: Tensor, y: Any, op: str) -> None:
    if np.shape(getattr(y, "data", y)) != x.shape:
        raise ShapeError(f"{op}: input {fmt_shape(x.shape)} and target {fmt_shape(np.shape(getattr(y, 'data', y)))} "
                         "must have the same shape")


def mse_loss(input: ArrayLike, target: ArrayLike, reduction: str = "mean") -> Tensor:
    """Mean squared error. Unlike PyTorch (which warns and broadcasts), different shapes are an error."""
    x = _t(input)
    _check_same_shape(x, target, "mse_loss")
    d = x - target
    return _reduce(d * d, reduction, "mse_loss")


def binary_cross_entropy_with_logits(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                                     reduction: str = "mean", pos_weight: ArrayLike | None = None) -> Tensor:
    """Sigmoid + binary cross-entropy in the stable form (1 - y) x + (1 + (pw - 1) y) softplus(-x)."""
    x = _t(input)
    op = "binary_cross_entropy_with_logits"
    _check_same_shape(x, target, op)
    A.reduction(reduction, op)
    a = ag.where(ag.less(x, 0), -x, x)  # |x| with gradient sign(x) and 1 at 0, so softplus'(0) is exact
    softplus_neg = ag.relu(-x) + ag.log(1.0 + ag.exp(-a))
    log_weight = 1.0 if pos_weight is None else (pos_weight - 1.0) * target + 1.0
    loss = (1.0 - target) * x + log_weight * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)


def binary_cross_entropy(input: ArrayLike, target: ArrayLike, weight: ArrayLike | None = None,
                         reduction: str = "mean") -> Tensor:
    """-(y log p + (1 - y) log(1 - p)) with the logs clamped at -100 like PyTorch."""
    x = _t(input)
    op = "binary_cross_entropy"
    _check_same_shape(x, target, op)
    A.reduction(reduction, op)
    if x.size and (x.data.min() < 0 or x.data.max() > 1):
        raise ValueError(f"{op}: input values must be probabilities in [0, 1] (use binary_cross_entropy_with_logits "
                         "for logits)")
    log_p = ag.clip(ag.log(x), -100.0, None)
    log_q = ag.clip(ag.log(1.0 - x), -100.0, None)
    loss = -(target * log_p + (1.0 - target) * log_q)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, op)
