"""`Tensor`: one ndarray plus what autodiff needs (requires_grad, grad, the node that made it).

This module holds data and dtype rules only. Its maths methods and operators are attached in one
table by `autograd.methods`, so this file imports no op module and never forms an import circle.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import DtypeError, GraphError
from .graph import Node, mark_modified

DEFAULT_FLOAT = np.float32


def _as_array(data: Any, dtype=None) -> np.ndarray:
    """Python data -> ndarray; Python floats become float32, ndarrays keep their dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        return np.asarray(data, dtype=dtype)
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    arr = np.asarray(data)
    if arr.dtype == np.float64:
        arr = arr.astype(DEFAULT_FLOAT)
    return arr


def is_float_dtype(dtype) -> bool:
    return np.issubdtype(dtype, np.floating)


class Tensor:
    """An n-dimensional array that records the primitives applied to it when it requires grad."""

    __slots__ = ("data", "requires_grad", "grad", "_node", "_version", "name", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data: Any, dtype=None, requires_grad: bool = False, name: str | None = None) -> None:
        self.data = _as_array(data, dtype)
        self.grad: Tensor | None = None
        self._node: Node | None = None
        self._version = 0
        self.name = name
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, node: Node | None = None) -> "Tensor":
        """Fast constructor used by primitives: no conversion, no checks."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t._node = node
        t._version = 0
        t.name = None
        t.requires_grad = node is not None
        return t

    # --- properties ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        """The node that made this tensor (PyTorch's name); None for leaves."""
        return self._node

    # --- conversion ---------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float | int | bool:
        if self.data.size != 1:
            raise ValueError(f"item: only a tensor with one element can be converted, this one has shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        if dtype is not None and dtype != self.data.dtype:
            return self.data.astype(dtype)
        return self.data

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or .all()")
        return bool(self.data)

    __hash__ = object.__hash__  # identity: tensors are dict keys in the engine and in viz

    # --- autograd state -----------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and not is_float_dtype(self.data.dtype):
            raise DtypeError(
                f"requires_grad: only floating-point tensors can require gradients, this one is {self.data.dtype} "
                f"with shape {self.shape}; convert it first, e.g. tensor(x, dtype='float32')"
            )
        if not requires_grad and self._node is not None:
            raise GraphError("requires_grad_(False): this tensor was computed from others; use .detach() instead")
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> "Tensor":
        """A tensor sharing this one's data, cut from the graph."""
        return Tensor._make(self.data)

    def zero_grad_(self) -> None:
        self.grad = None

    def backward(self, grad: Any = None, retain_graph: bool = False, create_graph: bool = False) -> None:
        from .engine import backward  # the engine imports Tensor; import here to keep one direction

        backward(self, grad, retain_graph=retain_graph, create_graph=create_graph)

    def _bump_version(self) -> None:
        """Deprecated: call autograd.graph.mark_modified(tensor, op) instead."""
        mark_modified(self)

    # --- display ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4, threshold=50)
        extras = []
        if self.data.dtype != DEFAULT_FLOAT and self.data.dtype.kind == "f" or self.data.dtype.kind not in "f":
            extras.append(f"dtype={self.data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn=<{self._node.prim.name}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"


def tensor(data: Any, dtype=None, requires_grad: bool = False, name: str | None = None) -> Tensor:
    """Make a leaf tensor. Python floats become float32; ndarrays keep their dtype."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def as_tensor_like(value: Any, like: Tensor) -> Any:
    """Operand conversion for binary ops: Python scalars stay weak (NumPy keeps `like`'s dtype),
    NumPy scalars become Python scalars, and arrays or lists adopt `like`'s float dtype, so float32
    never silently becomes float64."""
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if isinstance(value, (Tensor, int, float, bool)):
        return value
    arr = np.asarray(value)
    if is_float_dtype(like.data.dtype) and arr.dtype.kind in "iuf":
        arr = arr.astype(like.data.dtype, copy=False)
    return arr
