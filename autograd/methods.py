"""Tensor's operators and maths methods, bound in one table.

Operators call the primitives directly (the hot path of every model), converting only the operand
that is not already a Tensor or a Python scalar. In-place operators follow PyTorch: they edit
`.data`, bump the version counter (so backward notices a saved tensor changed), and refuse a leaf
that requires grad while grad mode is on.
"""
from __future__ import annotations

import numpy as np

from . import functional as F
from .graph import mark_modified, user_frame
from .errors import GraphError, fmt_shape
from .graph import _Mode
from .ops import elementwise as E
from .ops import linalg as L
from .tensor import Tensor, as_tensor_like

_FAST = (Tensor, int, float)


def _operand(other, like: Tensor):
    return other if type(other) in _FAST or isinstance(other, Tensor) else as_tensor_like(other, like)


def _binary(prim):
    def forward(self, other):
        if type(other) not in _FAST and not isinstance(other, Tensor):
            other = as_tensor_like(other, self)
        return prim(self, other)

    def reflected(self, other):
        if type(other) not in _FAST and not isinstance(other, Tensor):
            other = as_tensor_like(other, self)
        return prim(other, self)

    return forward, reflected


def _compare(ufunc):
    def compare(self, other):
        other = other.data if isinstance(other, Tensor) else other
        return Tensor._make(np.asarray(ufunc(self.data, other)))

    return compare


def _inplace(ufunc, name: str):
    def inplace(self, other):
        _check_inplace(self, name)
        other_data = other.data if isinstance(other, Tensor) else other
        try:
            ufunc(self.data, other_data, out=self.data, casting="same_kind")
        except ValueError as exc:
            shape = fmt_shape(np.shape(other_data))
            raise GraphError(f"{name}: cannot apply {fmt_shape(self.shape)} in place with {shape}: {exc}") from None
        mark_modified(self, name, where=user_frame(2))
        return self

    return inplace


def _check_inplace(t: Tensor, name: str) -> None:
    if _Mode.grad_enabled and t.requires_grad:
        what = "a leaf tensor that requires grad" if t._node is None else "a tensor that is part of a graph"
        raise GraphError(
            f"{name}: in-place change of {what} (shape {fmt_shape(t.shape)}) would make its gradient wrong; "
            "do it under autograd.no_grad() (as optimizers do) or use the out-of-place operator"
        )


def _inplace_rebinding(prim, ufunc, name: str):
    """`x += y`: in place for plain tensors; for graph tensors, an out-of-place op rebinding x."""
    direct = _inplace(ufunc, name)

    def iop(self, other):
        if _Mode.grad_enabled and self._node is not None:
            return prim(self, _operand(other, self))
        return direct(self, other)

    return iop


def _zero_(self: Tensor) -> Tensor:
    _check_inplace(self, "zero_")
    self.data[...] = 0
    mark_modified(self, "zero_", where=user_frame(2))
    return self


def _fill_(self: Tensor, value: float) -> Tensor:
    _check_inplace(self, "fill_")
    self.data[...] = value
    mark_modified(self, "fill_", where=user_frame(2))
    return self


def _copy_(self: Tensor, src) -> Tensor:
    _check_inplace(self, "copy_")
    src = src.data if isinstance(src, Tensor) else np.asarray(src)
    if np.broadcast_shapes(src.shape, self.shape) != self.shape:
        raise GraphError(f"copy_: source {fmt_shape(src.shape)} does not fit into {fmt_shape(self.shape)}")
    self.data[...] = src
    mark_modified(self, "copy_", where=user_frame(2))
    return self


def _clone(self: Tensor) -> Tensor:
    """A copy that stays in the graph (gradient flows back to self)."""
    return E.mul_p(self, 1) if self.requires_grad and _Mode.grad_enabled else Tensor._make(self.data.copy())


def _astype(self: Tensor, dtype) -> Tensor:
    from .ops.shape import cast_p as cast

    dtype = np.dtype(dtype)
    if dtype == self.dtype:
        return self
    if self.requires_grad and dtype.kind == "f":
        return cast(self, dtype=dtype)
    return Tensor._make(self.data.astype(dtype))


def _bind() -> None:
    T = Tensor
    for name, prim in (("add", E.add_p), ("sub", E.sub_p), ("mul", E.mul_p), ("truediv", E.div_p),
                       ("pow", E.pow_p), ("matmul", L.matmul_p)):
        forward, reflected = _binary(prim)
        setattr(T, f"__{name}__", forward)
        setattr(T, f"__r{name}__", reflected)
    for name, prim, ufunc in (("add", E.add_p, np.add), ("sub", E.sub_p, np.subtract),
                              ("mul", E.mul_p, np.multiply), ("truediv", E.div_p, np.true_divide)):
        setattr(T, f"__i{name}__", _inplace_rebinding(prim, ufunc, f"__i{name}__"))
    for name, ufunc in (("add_", np.add), ("sub_", np.subtract), ("mul_", np.multiply), ("div_", np.true_divide)):
        setattr(T, name, _inplace(ufunc, name))
    for name, ufunc in (("lt", np.less), ("le", np.less_equal), ("gt", np.greater), ("ge", np.greater_equal),
                        ("eq", np.equal), ("ne", np.not_equal)):
        setattr(T, f"__{name}__", _compare(ufunc))
        setattr(T, name, _compare(ufunc))
    T.__neg__ = lambda self: E.neg_p(self)
    T.__pos__ = lambda self: self
    T.__abs__ = F.abs
    T.__getitem__ = F.getitem
    T.__invert__ = lambda self: Tensor._make(~self.data)
    T.__and__ = lambda self, o: Tensor._make(self.data & (o.data if isinstance(o, Tensor) else o))
    T.__or__ = lambda self, o: Tensor._make(self.data | (o.data if isinstance(o, Tensor) else o))
    T.T = property(lambda self: F.transpose(self))
    T.mT = property(lambda self: F.swapaxes(self, -1, -2))
    T.zero_, T.fill_, T.copy_, T.clone, T.astype = _zero_, _fill_, _copy_, _clone, _astype
    T.float = lambda self: _astype(self, np.float32)
    T.double = lambda self: _astype(self, np.float64)
    T.any = lambda self, *a, **k: Tensor._make(np.asarray(self.data.any(*a, **k)))
    T.all = lambda self, *a, **k: Tensor._make(np.asarray(self.data.all(*a, **k)))
    T.isnan = lambda self: Tensor._make(np.isnan(self.data))
    T.isfinite = lambda self: Tensor._make(np.isfinite(self.data))
    for name in ("exp", "log", "sqrt", "abs", "sign", "tanh", "sigmoid", "relu", "clip", "clamp", "maximum",
                 "minimum", "sum", "mean", "var", "std", "max", "min", "argmax", "argmin", "logsumexp",
                 "softmax", "log_softmax", "reshape", "view", "flatten", "transpose", "permute", "swapaxes",
                 "squeeze", "unsqueeze", "expand", "broadcast_to", "sum_to", "pad", "matmul", "dot"):
        setattr(T, name, getattr(F, name))
    T.add, T.sub, T.mul, T.div, T.pow = F.add, F.subtract, F.multiply, F.divide, F.power
    T.neg = F.negative


_bind()
