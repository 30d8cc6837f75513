"""The ONNX graph being built: fresh value names, initializers, and shapes that follow the batch.

Shapes of a trace are plain ints, except the dims that change with the batch size: those are
`BatchDim(slope, intercept)` (a dim of `slope * batch + intercept`), found by comparing two traces
of different batch sizes. `Graph.shape(dims)` turns such a shape into an int64 tensor, computed at
run time from the batch of the first input only when it has to be.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import TapegradError

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class ExportError(TapegradError):
    """A model or a primitive application that cannot be written as ONNX; the message says which and where."""


@dataclass(frozen=True)
class BatchDim:
    """A dim equal to `slope * batch + intercept` (batch: axis 0 of the first input)."""

    slope: int
    intercept: int = 0

    def at(self, batch: int) -> int:
        return self.slope * batch + self.intercept

    def __repr__(self) -> str:
        text = "batch" if self.slope == 1 else f"{self.slope}*batch"
        return text + (f"{self.intercept:+d}" if self.intercept else "")


Dim = int | BatchDim
Dims = tuple[Dim, ...]


def is_static(dims: Sequence[Dim]) -> bool:
    return all(isinstance(d, int) for d in dims)


def onnx_dtype(dtype: Any) -> int:
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Graph:
    """Nodes, initializers and names of one ONNX graph under construction."""

    def __init__(self, opset: int, first_input: str | None) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[TensorProto] = []
        self._used: set[str] = set()
        self._int_consts: dict[tuple, str] = {}
        self._first_input = first_input
        self._batch: str | None = None
        self._outputs: set[str] = set()
        self._node_names: set[str] = set()

    # --- names -------------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        """A value name not used yet, `hint` itself when free."""
        return _unique(hint, self._used)

    def _node_name(self, hint: str) -> str:
        return _unique(hint, self._node_names)

    def claim(self, name: str) -> None:
        if name in self._used:
            raise ExportError(f"onnx export: the name {name!r} is given to two values")
        self._used.add(name)

    # --- nodes and constants ---------------------------------------------------------------------
    def node(self, op_type: str, inputs: Sequence[str], hint: str | None = None, *, name: str | None = None,
             outputs: int = 1, **attrs: Any) -> str:
        """Append one node; returns its (first) output name."""
        outs = [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self._node_name(name or outs[0]), **attrs))
        return outs[0]

    def initializer(self, value: np.ndarray, name: str) -> str:
        """A constant tensor (a parameter, a buffer, a folded constant); `name` comes from `fresh`."""
        self.initializers.append(numpy_helper.from_array(np.array(value, order="C"), name))
        return name

    def const(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        return self.initializer(np.asarray(value, dtype=dtype), self.fresh(hint))

    def constant(self, value: Any, dtype: Any = None, hint: str = "const") -> str:
        """A constant argument: an array, a Python number, or a batch-repeated `Broadcast` (expanded)."""
        dims = getattr(value, "dims", None)
        if dims is None:
            return self.const(value, dtype, hint)
        row = self.const(value.value, dtype, hint)
        return self.node("Expand", [row, self.shape(dims)], hint)

    def ints(self, values: Sequence[int]) -> str:
        """A shared int64 1-D constant (axes, shapes, pads, starts/ends)."""
        key = tuple(int(v) for v in values)
        if key not in self._int_consts:
            arr = np.array(key, dtype=np.int64)
            self._int_consts[key] = self.initializer(arr, self.fresh("ints_" + "_".join(map(str, key))[:40]))
        return self._int_consts[key]

    # --- shapes ----------------------------------------------------------------------------------
    def batch(self) -> str:
        """The batch size at run time as an int64 [1] tensor (computed once)."""
        if self._batch is None:
            if self._first_input is None:
                raise ExportError("onnx export: a shape depends on the batch size, but the model has no input")
            self._batch = self.node("Shape", [self._first_input], "batch", start=0, end=1)
        return self._batch

    def shape(self, dims: Sequence[Dim]) -> str:
        """An int64 shape tensor for `dims`: a constant, or assembled from the batch at run time."""
        if is_static(dims):
            return self.ints(dims)
        pieces, run = [], []
        for d in dims:
            if isinstance(d, int):
                run.append(d)
                continue
            if run:
                pieces.append(self.ints(run))
                run = []
            value = self.batch()
            if d.slope != 1:
                value = self.node("Mul", [value, self.ints([d.slope])], "dim")
            if d.intercept:
                value = self.node("Add", [value, self.ints([d.intercept])], "dim")
            pieces.append(value)
        if run:
            pieces.append(self.ints(run))
        return pieces[0] if len(pieces) == 1 else self.node("Concat", pieces, "shape", axis=0)

    def reshape(self, x: str, dims: Sequence[Dim], hint: str = "reshape", name: str | None = None) -> str:
        """Reshape to `dims`; one dim that follows the batch becomes -1, so the shape stays a constant."""
        varying = [i for i, d in enumerate(dims) if not isinstance(d, int)]
        if 0 in dims:  # a true zero, not "copy this dim": allowzero (which rules out -1)
            return self.node("Reshape", [x, self.shape(dims)], hint, name=name, allowzero=1)
        if len(varying) == 1:
            target = self.ints([-1 if i == varying[0] else d for i, d in enumerate(dims)])
        else:
            target = self.shape(dims)
        return self.node("Reshape", [x, target], hint, name=name)

    def cast(self, x: str, from_dtype: Any, to_dtype: Any) -> str:
        if np.dtype(from_dtype) == np.dtype(to_dtype):
            return x
        return self.node("Cast", [x], "cast", to=onnx_dtype(to_dtype))

    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None, keepdims: bool, hint: str,
               name: str | None = None) -> str:
        """Reduce* over `axes` (None: all); axes are an input for ReduceSum (opset 13) and the rest (18)."""
        keep = int(bool(keepdims))
        if axes is None:
            return self.node(op_type, [x], hint, name=name, keepdims=keep)
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes)], hint, name=name, keepdims=keep)
        return self.node(op_type, [x], hint, name=name, keepdims=keep, axes=list(axes))

    def rename_output(self, value: str, name: str) -> bool:
        """Give the value a node produced the graph output's name; False when no node made it (an
        input or an initializer) or it already is another output."""
        producer = next((n for n in self.nodes if value in n.output), None)
        if producer is None or value in self._outputs:
            return False
        for n in self.nodes:
            for seq in (n.input, n.output):
                for i, v in enumerate(seq):
                    if v == value:
                        seq[i] = name
        self._outputs.add(name)
        return True


def _unique(hint: str, taken: set[str]) -> str:
    """`hint`, or `hint_1`, `hint_2`, ... whichever is free first; claimed in `taken`."""
    name, k = hint, 1
    while name in taken:
        name, k = f"{hint}_{k}", k + 1
    taken.add(name)
    return name
