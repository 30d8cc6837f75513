"""Layers with PyTorch's names, signatures, defaults, initialisation and reprs.

A layer owns its parameters and buffers and calls `nn.functional`: no maths here. Every layer with
random state takes `rng=` (a seed or a numpy Generator); None means the default generator of
`nn.init` (reset by `nn.init.manual_seed`).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from autograd.errors import ShapeError, fmt_shape
from autograd.graph import mark_modified
from autograd.tensor import DEFAULT_FLOAT, Tensor

from . import _args as A
from . import functional as F
from . import init
from .module import Module, Parameter

Rng = np.random.Generator | int | None


def _empty(*shape: int) -> Parameter:
    return Parameter(np.empty(shape, dtype=DEFAULT_FLOAT))


def _add_weight_and_bias(layer: Module, weight_shape: tuple[int, ...], bias: bool, rng: Rng) -> None:
    """Linear's and Conv's parameters: weight of `weight_shape`, bias (out,) or None, then
    `reset_parameters`."""
    layer.weight = _empty(*weight_shape)
    if bias:
        layer.bias = _empty(weight_shape[0])
    else:
        layer.register_parameter("bias", None)
    layer.reset_parameters(rng)


def _reset_weight_and_bias(weight: Parameter, bias: Parameter | None, rng: Rng) -> None:
    """PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)), bias U(-1/sqrt(fan_in), ..)."""
    g = init.get_generator(rng)
    init.kaiming_uniform_(weight, a=math.sqrt(5), rng=g)
    if bias is not None:
        fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        init.uniform_(bias, -bound, bound, rng=g)


# --- affine layers ---------------------------------------------------------------------------------
class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng: Rng = None) -> None:
        super().__init__()
        self.in_features = A.integer(in_features, "in_features", "Linear", minimum=0)
        self.out_features = A.integer(out_features, "out_features", "Linear", minimum=0)
        _add_weight_and_bias(self, (self.out_features, self.in_features), bias, rng)

    def reset_parameters(self, rng: Rng = None) -> None:
        _reset_weight_and_bias(self.weight, self.bias, rng)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class _ConvNd(Module):
    """Shared bookkeeping of Conv1d/Conv2d: weight (out, in/groups, *kernel), optional bias."""

    _dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 dilation: Any = 1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros", *,
                 rng: Rng = None) -> None:
        super().__init__()
        name, n = type(self).__name__, self._dims
        self.in_channels = A.integer(in_channels, "in_channels", name, minimum=1)
        self.out_channels = A.integer(out_channels, "out_channels", name, minimum=1)
        self.groups = A.groups(groups, in_channels, out_channels, name)
        self.kernel_size = A.geometry(kernel_size, n, A.KERNEL, name)
        self.stride = A.geometry(stride, n, A.STRIDE, name)
        self.padding = A.conv_padding(padding, n, name)
        self.dilation = A.geometry(dilation, n, A.DILATION, name)
        if padding_mode != "zeros":
            raise NotImplementedError(f"{name}: padding_mode={padding_mode!r}; only 'zeros' is supported")
        self.padding_mode = padding_mode
        _add_weight_and_bias(self, (out_channels, in_channels // groups) + self.kernel_size, bias, rng)

    def reset_parameters(self, rng: Rng = None) -> None:
        _reset_weight_and_bias(self.weight, self.bias, rng)

    def extra_repr(self) -> str:
        n = self._dims
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation, as in PyTorch) over (N, C, H, W) input."""

    _dims = 2

    def forward(self, input: Tensor) -> Tensor:
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C, L) input."""

    _dims = 1

    def forward(self, input: Tensor) -> Tensor:
        return F.conv1d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


# --- pooling ---------------------------------------------------------------------------------------
class _Pool2d(Module):
    """Shared bookkeeping of the pooling layers: the geometry is checked when the layer is made and
    kept as given (like PyTorch's); a missing stride is the kernel size."""

    def __init__(self, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool) -> None:
        super().__init__()
        name = type(self).__name__
        A.geometry(kernel_size, 2, A.KERNEL, name)
        if stride is not None:
            A.geometry(stride, 2, A.STRIDE, name)
        A.geometry(padding, 2, A.PADDING, name)
        A.geometry(dilation, 2, A.DILATION, name)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode


class MaxPool2d(_Pool2d):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)
        self.dilation = dilation
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Tensor:
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        if divisor_override is not None:
            A.integer(divisor_override, "divisor_override", "AvgPool2d", minimum=1)
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# --- normalisation ---------------------------------------------------------------------------------
class _BatchNorm(Module):
    """Batch norm over the channel axis (dim 1). Training uses batch statistics and updates the
    running ones; eval uses the running statistics."""

    _input_ndims: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = A.integer(num_features, "num_features", name, minimum=1)
        self.eps = A.positive_number(eps, "eps", name)
        self.momentum = momentum if momentum is None else A.probability(momentum, "momentum", name)
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=DEFAULT_FLOAT))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=DEFAULT_FLOAT))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=DEFAULT_FLOAT))
            self.register_buffer("running_var", np.ones(num_features, dtype=DEFAULT_FLOAT))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            init.zeros_(self.num_batches_tracked)

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._input_ndims:
            wanted = " or ".join(f"{n}D" for n in self._input_ndims)
            raise ShapeError(f"{type(self).__name__}: expected {wanted} input, got shape {fmt_shape(input.shape)}")
        if input.shape[1] != self.num_features:
            raise ShapeError(
                f"{type(self).__name__}: input {fmt_shape(input.shape)} has {input.shape[1]} channels, "
                f"the layer expects num_features={self.num_features}"
            )

    def forward(self, input: Tensor) -> Tensor:
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            counter = self.num_batches_tracked
            counter.data += 1
            mark_modified(counter, f"{type(self).__name__}.num_batches_tracked")
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(counter.data)
        use_batch_stats = self.training or self.running_mean is None
        update = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if update else None,
            self.running_var if update else None,
            self.weight,
            self.bias,
            use_batch_stats,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of (N, C) or (N, C, L) input."""

    _input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of (N, C, H, W) input, per channel."""

    _input_ndims = (4,)


class LayerNorm(Module):
    """Normalises over the trailing `normalized_shape` dimensions of each sample."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        self.normalized_shape = A.shape(normalized_shape, "normalized_shape", "LayerNorm")
        self.eps = A.positive_number(eps, "eps", "LayerNorm")
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=DEFAULT_FLOAT))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=DEFAULT_FLOAT))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


# --- regularisation and reshaping ------------------------------------------------------------------
class Dropout(Module):
    """Zeroes each element with probability p in training and scales the rest by 1/(1-p); identity in eval."""

    def __init__(self, p: float = 0.5, inplace: bool = False, *, rng: Rng = None) -> None:
        super().__init__()
        self.p = A.probability(p, "p", "Dropout")
        self.inplace = inplace
        # a seed becomes one Generator now, so successive calls draw different masks
        self.rng = None if rng is None else init.get_generator(rng)

    def forward(self, input: Tensor) -> Tensor:
        return F.dropout(input, self.p, self.training, init.get_generator(self.rng))

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input; a placeholder that keeps a model's structure (and state dict keys)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


# --- activations -----------------------------------------------------------------------------------
class ReLU(Module):
    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace  # accepted for compatibility; tapegrad's ops are out of place

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 1e-2, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.sigmoid(input)


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return F.tanh(input)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)


# --- losses ----------------------------------------------------------------------------------------
class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = A.reduction(reduction, type(self).__name__)


class _WeightedLoss(_Loss):
    """A loss with optional per-class weights, kept as a buffer (so it is in the state dict, as in PyTorch)."""

    def __init__(self, weight: Any = None, reduction: str = "mean") -> None:
        super().__init__(reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy of logits (N, C, ...) against class indices or class probabilities."""

    def __init__(self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, reduction)
        self.ignore_index = A.integer(ignore_index, "ignore_index", "CrossEntropyLoss")
        self.label_smoothing = A.probability(label_smoothing, "label_smoothing", "CrossEntropyLoss")

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight, reduction=self.reduction,
                               label_smoothing=self.label_smoothing, ignore_index=self.ignore_index)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (N, C, ...) against class indices."""

    def __init__(self, weight: Any = None, *, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross-entropy in one numerically stable step."""

    def __init__(self, weight: Any = None, *, reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
