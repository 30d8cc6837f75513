"""The translation table: registry name -> a function writing that primitive's application as ONNX nodes.

One entry per primitive of `autograd.primitive.REGISTRY` (a coverage test fails when a primitive has
none). An entry reads a `Site` — the primitive's arguments, keyword parameters, ONNX input names,
shapes and dtype — and returns the ONNX name of the output. Nothing here knows about `walk` records
or modules, so a later Program equation can feed the same table.

Register a user primitive's translation with `@translates("name")`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from onnx import helper

from .graph import INT64_MAX, INT64_MIN, Dims, ExportError, Graph, is_static, onnx_dtype


@dataclass
class Site:
    """One primitive application as the table sees it."""

    op: str
    args: tuple  # the traced arguments: Tensors, or constants (arrays, Python numbers)
    params: dict[str, Any]
    inputs: tuple[str | None, ...]  # ONNX value of each Tensor argument; None for a constant
    in_dims: tuple[Dims, ...]
    in_dtypes: tuple[np.dtype, ...]
    dims: Dims  # of the output
    dtype: np.dtype
    graph: Graph
    hint: str  # name stem for this application's nodes and values
    where: str = ""  # " (recorded at file:line ...)" for error messages
    _made: dict = field(default_factory=dict, repr=False)

    def operand(self, i: int, dtype: Any = None) -> str:
        """Argument i as an ONNX value, cast to `dtype` when given (constants are made in that dtype)."""
        key = (i, None if dtype is None else np.dtype(dtype))
        if key not in self._made:
            if self.inputs[i] is None:
                self._made[key] = self.graph.constant(self.args[i], dtype, hint=f"{self.hint}_c{i}")
            elif dtype is None:
                self._made[key] = self.inputs[i]
            else:
                self._made[key] = self.graph.cast(self.inputs[i], self.in_dtypes[i], dtype)
        return self._made[key]

    def node(self, op_type: str, inputs: list[str], **attrs: Any) -> str:
        return self.graph.node(op_type, inputs, self.hint, **attrs)

    def fail(self, why: str) -> ExportError:
        return ExportError(f"onnx export: {self.op}: {why}{self.where}")

    def static(self, dims: Dims, what: str) -> tuple[int, ...]:
        if not is_static(dims):
            raise self.fail(f"{what} {tuple(dims)} changes with the batch size, which this translation does not "
                            "support; export with dynamic_batch=False")
        return tuple(dims)


Translation = Callable[[Site], str]

#: registry name -> translation
TRANSLATIONS: dict[str, Translation] = {}


def translates(*names: str) -> Callable[[Translation], Translation]:
    """Register `fn` as the ONNX translation of the primitives `names`."""
    def register(fn: Translation) -> Translation:
        for name in names:
            TRANSLATIONS[name] = fn
        return fn

    return register


# --- elementwise ---------------------------------------------------------------------------------
def _elementwise(onnx_op: str) -> Translation:
    def translate(s: Site) -> str:
        # NumPy computes in the result dtype: cast every operand to it, so ONNX computes the same
        return s.node(onnx_op, [s.operand(i, s.dtype) for i in range(len(s.args))])

    translate.__name__ = f"elementwise_{onnx_op}"
    return translate


for _name, _op in (("add", "Add"), ("sub", "Sub"), ("mul", "Mul"), ("div", "Div"), ("pow", "Pow"),
                   ("neg", "Neg"), ("exp", "Exp"), ("log", "Log"), ("tanh", "Tanh"), ("sigmoid", "Sigmoid"),
                   ("relu", "Relu")):
    TRANSLATIONS[_name] = _elementwise(_op)


@translates("where")
def _where(s: Site) -> str:
    return s.node("Where", [s.operand(0, np.bool_), s.operand(1, s.dtype), s.operand(2, s.dtype)])


@translates("greater", "equal")
def _compare(s: Site) -> str:
    # NumPy compares in the tensors' common dtype (a Python number adapts to it): cast both to it
    tensors = [d for d, name in zip(s.in_dtypes, s.inputs) if name is not None] or list(s.in_dtypes)
    common = np.result_type(*tensors)
    return s.node({"greater": "Greater", "equal": "Equal"}[s.op], [s.operand(0, common), s.operand(1, common)])


@translates("sign")
def _sign(s: Site) -> str:
    return s.node("Sign", [s.operand(0)])


@translates("stop_gradient")
def _stop_gradient(s: Site) -> str:
    return s.node("Identity", [s.operand(0)])


@translates("cast")
def _cast(s: Site) -> str:
    return s.node("Cast", [s.operand(0)], to=onnx_dtype(s.dtype))


# --- contractions ----------------------------------------------------------------------------------
@translates("matmul")
def _matmul(s: Site) -> str:
    return s.node("MatMul", [s.operand(0, s.dtype), s.operand(1, s.dtype)])


@translates("einsum")
def _einsum(s: Site) -> str:
    return s.node("Einsum", [s.operand(i, s.dtype) for i in range(len(s.args))], equation=s.params["subscripts"])


# --- reductions ------------------------------------------------------------------------------------
def _axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    return tuple(sorted(int(a) % max(ndim, 1) for a in axes))


def _reduction(onnx_op: str) -> Translation:
    def translate(s: Site) -> str:
        ndim = len(s.in_dims[0])
        axes = _axes(s.params.get("axis"), ndim)
        if ndim == 0 or axes == ():  # nothing to reduce
            return s.node("Identity", [s.operand(0)])
        if axes is not None and len(axes) == ndim:
            axes = None
        return s.graph.reduce(onnx_op, s.operand(0), axes, s.params.get("keepdims", False), s.hint)

    return translate


TRANSLATIONS["sum"] = _reduction("ReduceSum")
TRANSLATIONS["max"] = _reduction("ReduceMax")


# --- reshape / transpose / broadcast ----------------------------------------------------------------
@translates("reshape")
def _reshape(s: Site) -> str:
    return s.graph.reshape(s.operand(0), s.dims, s.hint)


@translates("transpose")
def _transpose(s: Site) -> str:
    ndim = len(s.in_dims[0])
    axes = s.params.get("axes")
    perm = list(reversed(range(ndim))) if axes is None else [int(a) % ndim for a in axes]
    return s.node("Transpose", [s.operand(0)], perm=perm)


@translates("broadcast_to")
def _broadcast_to(s: Site) -> str:
    x = s.in_dims[0]
    lead = len(s.dims) - len(x)
    # Expand broadcasts: a dim the input already has is written 1, so it never needs the batch
    target = [1 if i >= lead and x[i - lead] == d else d for i, d in enumerate(s.dims)]
    return s.node("Expand", [s.operand(0), s.graph.shape(target)])


@translates("sum_to")
def _sum_to(s: Site) -> str:
    x = s.in_dims[0]
    lead = len(x) - len(s.dims)
    axes = list(range(lead)) + [i + lead for i, d in enumerate(s.dims) if d == 1 and x[i + lead] != 1]
    if not axes:
        return s.node("Identity", [s.operand(0)])
    out = s.graph.reduce("ReduceSum", s.operand(0), axes, True, s.hint)
    return s.graph.reshape(out, s.dims, s.hint) if lead else out


@translates("concatenate")
def _concatenate(s: Site) -> str:
    axis = int(s.params["axis"]) % len(s.dims)
    return s.node("Concat", [s.operand(i, s.dtype) for i in range(len(s.args))], axis=axis)


# --- basic indexing: slice <-> unslice -------------------------------------------------------------
def index_items(index: Any, ndim: int) -> list:
    """Basic index -> one item per input axis (slice or int) plus None items; Ellipsis expanded."""
    items = list(index) if isinstance(index, tuple) else [index]
    for item in items:
        if not (item is None or item is Ellipsis or isinstance(item, (slice, int, np.integer))):
            raise TypeError(type(item).__name__)
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at:at + 1] = [slice(None)] * (ndim - used)
    return items + [slice(None)] * (ndim - sum(1 for i in items if i is not None))


def _full(item: Any) -> bool:
    return isinstance(item, slice) and item.start is None and item.stop is None and item.step in (None, 1)


@translates("slice")
def _slice(s: Site) -> str:
    items = index_items(s.params["index"], len(s.in_dims[0]))
    starts, ends, axes, steps, squeeze, new_axes = [], [], [], [], [], []
    axis = out = 0
    for item in items:
        if item is None:
            new_axes.append(out)
            out += 1
            continue
        if isinstance(item, slice):
            if not _full(item):
                step = 1 if item.step is None else int(item.step)
                starts.append((0 if step > 0 else -1) if item.start is None else int(item.start))
                ends.append((INT64_MAX if step > 0 else INT64_MIN) if item.stop is None else int(item.stop))
                axes.append(axis)
                steps.append(step)
            out += 1
        else:
            i = int(item)
            starts.append(i)
            ends.append(i + 1 if i != -1 else INT64_MAX)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    g, x = s.graph, s.operand(0)
    if axes:
        x = s.node("Slice", [x, g.ints(starts), g.ints(ends), g.ints(axes), g.ints(steps)])
    if squeeze:
        x = s.node("Squeeze", [x, g.ints(squeeze)])
    if new_axes:
        x = s.node("Unsqueeze", [x, g.ints(new_axes)])
    return x if x != s.operand(0) else s.node("Identity", [x])


def _zeros(s: Site) -> str:
    value = helper.make_tensor("value", onnx_dtype(s.dtype), [1], [0])
    return s.node("ConstantOfShape", [s.graph.shape(s.dims)], value=value)


@translates("unslice")
def _unslice(s: Site) -> str:
    """Zero-embedding x into out[index]: undo the Nones and ints, then pad each sliced axis (a strided
    slice first interleaves zeros, a reversed one is flipped)."""
    g, full = s.graph, s.dims
    items = index_items(s.params["index"], len(full))
    x, cur = s.operand(0), list(s.in_dims[0])
    nones = [k for k, item in enumerate([i for i in items if not isinstance(i, (int, np.integer))]) if item is None]
    if nones:
        x = s.node("Squeeze", [x, g.ints(nones)])
        cur = [d for k, d in enumerate(cur) if k not in nones]
    items = [i for i in items if i is not None]
    ints = [k for k, item in enumerate(items) if not isinstance(item, slice)]
    if ints:
        x = s.node("Unsqueeze", [x, g.ints(ints)])
        for k in ints:
            cur.insert(k, 1)
    before, after = [0] * len(full), [0] * len(full)
    for axis, (item, dim) in enumerate(zip(items, full)):
        if _full(item):
            continue
        if not isinstance(dim, int):
            raise s.fail(f"index {s.params['index']!r} cuts the batch axis {axis}, which cannot follow the batch size")
        if not isinstance(item, slice):
            first, span = int(item) % dim, 1
        else:
            start, stop, step = item.indices(dim)
            m = len(range(start, stop, step))
            if m == 0:
                return _zeros(s)
            if step < 0:
                x = s.node("Slice", [x, g.ints([-1]), g.ints([INT64_MIN]), g.ints([axis]), g.ints([-1])])
                start, step = start + (m - 1) * step, -step
            if step > 1 and m > 1:  # interleave step-1 zeros after each element
                x = s.node("Unsqueeze", [x, g.ints([axis + 1])])
                pads = [0] * (len(cur) + 1) * 2
                pads[len(cur) + 1 + axis + 1] = step - 1
                x = s.node("Pad", [x, g.ints(pads)])
                cur[axis] = m * step
                x = g.reshape(x, cur, s.hint)
                x = s.node("Slice", [x, g.ints([0]), g.ints([(m - 1) * step + 1]), g.ints([axis]), g.ints([1])])
                cur[axis] = (m - 1) * step + 1
            first, span = start, (m - 1) * step + 1
        before[axis], after[axis] = first, dim - first - span  # cur[axis] stays: one Pad at the end
    if any(before) or any(after):
        x = s.node("Pad", [x, g.ints(before + after)])
    return x if x != s.operand(0) else s.node("Identity", [x])


# --- advanced indexing: take <-> scatter_add ---------------------------------------------------------
def _flat_index(s: Site, index: Any, dims: Dims) -> tuple[np.ndarray, int]:
    """Integer-array index over the k leading axes -> (flat int64 index into their product, k)."""
    arrays = list(index) if isinstance(index, tuple) else [index]
    if not arrays or not all(isinstance(a, (np.ndarray, list)) and np.asarray(a).dtype.kind in "iu" for a in arrays):
        raise s.fail(f"only integer-array indices over the leading axes are exported, got {index!r}")
    lead = s.static(dims[:len(arrays)], "the indexed axes")
    arrays = [np.asarray(a) % d for a, d in zip(arrays, lead)]
    return np.ravel_multi_index(tuple(np.broadcast_arrays(*arrays)), lead).astype(np.int64), len(arrays)


@translates("take")
def _take(s: Site) -> str:
    flat, k = _flat_index(s, s.params["index"], s.in_dims[0])
    x = s.operand(0)
    if k > 1:
        x = s.graph.reshape(x, (int(np.prod(s.in_dims[0][:k])),) + tuple(s.in_dims[0][k:]), s.hint)
    return s.node("Gather", [x, s.graph.const(flat, hint=f"{s.hint}_index")], axis=0)


@translates("scatter_add")
def _scatter_add(s: Site) -> str:
    flat, k = _flat_index(s, s.params["index"], s.dims)
    rest = tuple(s.dims[k:])
    if flat.size == 0:
        return _zeros(s)
    g = s.graph
    rows = int(np.prod(s.dims[:k]))
    value = helper.make_tensor("value", onnx_dtype(s.dtype), [1], [0])
    zeros = s.node("ConstantOfShape", [g.shape((rows,) + rest)], value=value)
    updates = g.reshape(s.operand(0), (flat.size,) + rest, s.hint)
    out = s.node("ScatterND", [zeros, g.const(flat.reshape(-1, 1), hint=f"{s.hint}_index"), updates], reduction="add")
    return g.reshape(out, s.dims, s.hint)


# --- windows: sliding_windows <-> window_sum -----------------------------------------------------------
def _trivial(k: int, stride: int, dilation: int) -> bool:
    return k == 1 and stride == 1 and dilation == 1


@translates("sliding_windows")
def _sliding_windows(s: Site) -> str:
    """Per windowed axis, one Gather with the (out, k) index o*stride + k*dilation; then one Transpose
    moves the kernel axes last. A 1-wide unit-stride axis needs no gather, so it may be the batch."""
    kernel, stride, dilation = s.params["kernel"], s.params["stride"], s.params["dilation"]
    n, x_dims = len(kernel), s.in_dims[0]
    lead = len(x_dims) - n
    outs = s.dims[lead:lead + n]
    g, x = s.graph, s.operand(0)
    for j in reversed(range(n)):  # back to front, so the axes still to do keep their numbers
        axis = lead + j
        if _trivial(kernel[j], stride[j], dilation[j]):
            x = s.node("Unsqueeze", [x, g.ints([axis + 1])])
            continue
        (out,) = s.static((outs[j],), f"windowed axis {axis}")
        index = np.arange(out)[:, None] * stride[j] + np.arange(kernel[j])[None, :] * dilation[j]
        x = s.node("Gather", [x, g.const(index.astype(np.int64), hint=f"{s.hint}_windows")], axis=axis)
    perm = list(range(lead)) + [lead + 2 * j for j in range(n)] + [lead + 2 * j + 1 for j in range(n)]
    return s.node("Transpose", [x], perm=perm)


@translates("window_sum")
def _window_sum(s: Site) -> str:
    """The transpose of sliding_windows: per windowed axis, its (out, k) pair is contracted with the 0/1
    matrix M[(o, k), p] = [p == o*stride + k*dilation] (a MatMul); a trivial axis only drops its k."""
    kernel, stride, dilation = s.params["kernel"], s.params["stride"], s.params["dilation"]
    n, full = len(kernel), s.dims
    lead = len(full) - n
    x_dims = s.in_dims[0]
    g, x = s.graph, s.operand(0)
    labels = [("lead", i) for i in range(lead)] + [("o", j) for j in range(n)] + [("k", j) for j in range(n)]
    dims = {label: d for label, d in zip(labels, x_dims)}
    trivial = [j for j in range(n) if _trivial(kernel[j], stride[j], dilation[j])]
    if trivial:
        x = s.node("Squeeze", [x, g.ints([labels.index(("k", j)) for j in trivial])])
        labels = [lb for lb in labels if not (lb[0] == "k" and lb[1] in trivial)]
        labels = [("p", lb[1]) if lb[0] == "o" and lb[1] in trivial else lb for lb in labels]
    for j in range(n):
        if j in trivial:
            continue
        (out, size) = s.static((dims[("o", j)], full[lead + j]), f"windowed axis {lead + j}")
        k = kernel[j]
        rest = [lb for lb in labels if lb not in (("o", j), ("k", j))]
        order = rest + [("o", j), ("k", j)]
        perm = [labels.index(lb) for lb in order]
        if perm != list(range(len(perm))):
            x = s.node("Transpose", [x], perm=perm)
        x = s.node("Reshape", [x, g.ints([0] * len(rest) + [out * k])])
        m = np.zeros((out * k, size), dtype=s.dtype)
        o, kk = np.divmod(np.arange(out * k), k)
        m[np.arange(out * k), o * stride[j] + kk * dilation[j]] = 1
        x = s.node("MatMul", [x, g.const(m, hint=f"{s.hint}_scatter")])
        labels = rest + [("p", j)]
    order = [("lead", i) for i in range(lead)] + [("p", j) for j in range(n)]
    perm = [labels.index(lb) for lb in order]
    if perm != list(range(len(perm))):
        x = s.node("Transpose", [x], perm=perm)
    return x if x != s.operand(0) else s.node("Identity", [x])
