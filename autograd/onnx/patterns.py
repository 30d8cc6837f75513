"""Module patterns: a call of a known layer becomes its one ONNX operator (Conv, Gemm, MaxPool, ...).

Keyed by module class name, read from the module scope the graph records. A pattern looks only at the
module object (its parameters, buffers, stride, padding, ...) and at the call's input and output
shapes, never at the primitives the layer happens to be made of today, so it survives a rewrite of
`nn.functional`. A pattern that does not fit (an unbatched input, ceil mode, an output shape that
disagrees with what the ONNX operator would give) returns None, and the call's primitives are
translated one by one instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .graph import Dims, Graph


@dataclass
class Call:
    """One call of a module, as a pattern sees it."""

    module: Any
    path: str  # qualified name, e.g. "block1.conv"
    x: str  # ONNX value of the call's input
    x_dims: Dims
    x_dtype: np.dtype
    y_dims: Dims
    graph: Graph
    param: Callable[[Any], str]  # a Parameter of the module -> its initializer (named by module path)
    buffer: Callable[[str, np.ndarray], str]  # (qualified name, array) -> its initializer

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        return self.graph.node(op_type, inputs, self.path or op_type.lower(), name=self.path or None, **attrs)

    def same_dtype(self, *tensors: Any) -> bool:
        return all(t is None or np.dtype(t.dtype) == self.x_dtype for t in tensors)


Pattern = Callable[[Call], "str | None"]

#: module class name -> pattern
PATTERNS: dict[str, Pattern] = {}


def pattern(*kinds: str) -> Callable[[Pattern], Pattern]:
    def register(fn: Pattern) -> Pattern:
        for kind in kinds:
            PATTERNS[kind] = fn
        return fn

    return register


def _ntuple(v: Any, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(e) for e in v) if len(v) == n else (int(v[0]),) * n
    return (int(v),) * n


def _pair(v: Any) -> tuple[int, int]:
    return _ntuple(v, 2)  # type: ignore[return-value]


def _windows_out(size: int, k: int, s: int, d: int, before: int, after: int) -> int:
    return (size + before + after - d * (k - 1) - 1) // s + 1


def _fits(c: Call, channels: int, kernel, stride, dilation, pads) -> bool:
    """The call's output has the shape the ONNX window operator gives: (N, channels, *spatial); pads are
    ONNX's [begins..., ends...]."""
    n = len(kernel)
    if len(c.x_dims) != n + 2 or len(c.y_dims) != n + 2 or not all(isinstance(d, int) for d in c.x_dims[1:]):
        return False
    want = tuple(_windows_out(c.x_dims[2 + i], kernel[i], stride[i], dilation[i], pads[i], pads[i + n])
                 for i in range(n))
    return tuple(c.y_dims[1:]) == (channels,) + want and c.y_dims[0] == c.x_dims[0]


def _conv_pads(padding: Any, kernel, dilation) -> list[int] | None:
    """ONNX pads [begins..., ends...]; 'same' puts the odd pixel at the end, like PyTorch."""
    n = len(kernel)
    if padding == "valid":
        return [0] * (2 * n)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    if isinstance(padding, str):
        return None
    p = _ntuple(padding, n)
    return list(p) + list(p)


@pattern("Conv1d", "Conv2d")
def conv(c: Call) -> str | None:
    m = c.module
    n = len(m.weight.shape) - 2
    kernel, stride, dilation = (_ntuple(getattr(m, a), n) for a in ("kernel_size", "stride", "dilation"))
    pads = _conv_pads(m.padding, kernel, dilation)
    if getattr(m, "padding_mode", "zeros") != "zeros" or pads is None or not c.same_dtype(m.weight, m.bias):
        return None
    if not _fits(c, m.out_channels, kernel, stride, dilation, pads):
        return None
    inputs = [c.x, c.param(m.weight)] + ([c.param(m.bias)] if m.bias is not None else [])
    return c.node("Conv", inputs, kernel_shape=list(kernel), strides=list(stride), dilations=list(dilation),
                  pads=pads, group=int(m.groups))


@pattern("Linear")
def linear(c: Call) -> str | None:
    m = c.module
    if len(c.x_dims) != 2 or not c.same_dtype(m.weight, m.bias) or c.y_dims[1:] != (m.out_features,):
        return None
    inputs = [c.x, c.param(m.weight)] + ([c.param(m.bias)] if m.bias is not None else [])
    return c.node("Gemm", inputs, transB=1)


@pattern("BatchNorm1d", "BatchNorm2d")
def batch_norm(c: Call) -> str | None:
    """Eval-mode batch norm with running statistics: BatchNormalization in inference mode."""
    m = c.module
    if m.training or m.running_mean is None or len(c.x_dims) < 2 or tuple(c.y_dims) != tuple(c.x_dims):
        return None
    if not c.same_dtype(m.weight, m.bias):
        return None
    dtype, n = c.x_dtype, m.num_features

    def stat(name: str, default: float) -> str:
        t = getattr(m, name, None)
        key = f"{c.path}.{name}" if c.path else name
        if t is None:
            return c.buffer(key, np.full(n, default, dtype=dtype))
        if name in ("weight", "bias"):
            return c.param(t)
        return c.buffer(key, np.asarray(getattr(t, "data", t), dtype=dtype))

    inputs = [c.x, stat("weight", 1.0), stat("bias", 0.0), stat("running_mean", 0.0), stat("running_var", 1.0)]
    return c.node("BatchNormalization", inputs, epsilon=float(m.eps))


@pattern("MaxPool2d")
def max_pool2d(c: Call) -> str | None:
    m = c.module
    kernel, stride = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
    padding, dilation = _pair(m.padding), _pair(m.dilation)
    pads = [padding[0], padding[1], padding[0], padding[1]]
    if m.return_indices or m.ceil_mode or not _fits(c, c.x_dims[1] if len(c.x_dims) == 4 else -1, kernel, stride,
                                                      dilation, pads):
        return None
    return c.node("MaxPool", [c.x], kernel_shape=list(kernel), strides=list(stride), pads=pads,
                  dilations=list(dilation))


@pattern("AvgPool2d")
def avg_pool2d(c: Call) -> str | None:
    m = c.module
    kernel, stride = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
    padding = _pair(m.padding)
    pads = [padding[0], padding[1], padding[0], padding[1]]
    if m.ceil_mode or m.divisor_override is not None or not _fits(
            c, c.x_dims[1] if len(c.x_dims) == 4 else -1, kernel, stride, (1, 1), pads):
        return None
    return c.node("AveragePool", [c.x], kernel_shape=list(kernel), strides=list(stride), pads=pads,
                  count_include_pad=int(bool(m.count_include_pad)))


@pattern("Flatten")
def flatten(c: Call) -> str | None:
    m, rank = c.module, len(c.x_dims)
    if rank < 2 or m.start_dim % rank != 1 or m.end_dim % rank != rank - 1 or len(c.y_dims) != 2:
        return None
    return c.node("Flatten", [c.x], axis=1)


@pattern("LeakyReLU")
def leaky_relu(c: Call) -> str | None:
    if tuple(c.y_dims) != tuple(c.x_dims):
        return None
    return c.node("LeakyRelu", [c.x], alpha=float(c.module.negative_slope))


@pattern("Softmax", "LogSoftmax")
def softmax(c: Call) -> str | None:
    """Softmax over one axis; its stable shift (a max read from the data) is not in the graph, so the
    primitives alone could not be exported."""
    rank, dim = len(c.x_dims), c.module.dim
    if tuple(c.y_dims) != tuple(c.x_dims) or rank == 0:
        return None
    axis = (0 if rank in (1, 3) else 1) if dim is None else dim % rank  # PyTorch's implicit dim
    return c.node(type(c.module).__name__, [c.x], axis=axis)


@pattern("GELU")
def gelu(c: Call) -> str | None:
    """Exact GELU, x * (1 + erf(x / sqrt 2)) / 2: its erf is composed with a mask read from the data,
    which the primitives cannot export. The tanh form exports primitive by primitive."""
    if c.module.approximate != "none" or tuple(c.y_dims) != tuple(c.x_dims) or c.x_dtype.kind != "f":
        return None
    g, dtype = c.graph, c.x_dtype
    scaled = g.node("Mul", [c.x, g.const(1 / np.sqrt(2.0), dtype, "gelu_scale")], c.path or "gelu")
    erf = g.node("Erf", [scaled], c.path or "gelu")
    half = g.node("Mul", [c.x, g.node("Add", [erf, g.const(1.0, dtype, "one")], c.path or "gelu")], c.path or "gelu")
    return c.node("Mul", [half, g.const(0.5, dtype, "half")])
