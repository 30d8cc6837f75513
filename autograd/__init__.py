"""tapegrad's engine: eager Tensors that record primitives, reverse-mode differentiation of them.

    >>> import autograd as ag
    >>> x = ag.tensor([1.0, 2.0], requires_grad=True)
    >>> (x ** 3).sum().backward()
    >>> x.grad
    tensor([ 3., 12.])
"""
from __future__ import annotations

from . import allocator, anomaly
from . import ops  # noqa: F401  (registers the primitives)
from . import methods  # noqa: F401  (binds Tensor operators)
from .anomaly import AnomalyError, detect_anomaly
from .creation import arange, as_generator, eye, full, ones, ones_like, rand, randn, zeros, zeros_like
from .engine import backward, grad, toposort
from .errors import DtypeError, GraphError, ShapeError, TapegradError
from .functional import (
    abs, add, argmax, argmin, broadcast_to, cat, clamp, clip, concatenate, divide, dot, einsum, exp,
    equal, expand, expand_dims, flatten, getitem, greater, less, log, log_softmax, logsumexp, matmul, max, maximum, mean, min,
    minimum, multiply, negative, pad, permute, power, relu, reshape, sigmoid, sign, softmax, sqrt,
    squeeze, stack, std, stop_gradient, subtract, sum, sum_to, swapaxes, tanh, transpose, unsqueeze, var, view, where,
)
from . import func, introspect, profiler, viz  # noqa: F401
from .introspect import walk
from .profiler import profile
from .graph import Node, enable_grad, is_grad_enabled, mark_modified, no_grad, observe, set_grad_enabled
from .primitive import REGISTRY, Primitive, defprim
from .tensor import Tensor, tensor
from .program import Program
from .capture import TraceError
from .compiler import compile, trace
from .parallel import get_num_threads, set_num_threads

anomaly.from_environment()
allocator.keep_freed_memory()

__all__ = [name for name in dir() if not name.startswith("_")]
