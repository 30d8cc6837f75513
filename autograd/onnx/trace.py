"""Two traces of the forward, read with `walk`, compared: what follows the batch, what must not move.

The forward runs with the inputs (and the model's parameters) requiring grad, so every primitive
application is recorded, and `autograd.introspect.walk` reads the graph. An observer notes the
user's source line of each op, for error messages. A second trace, on inputs with another batch size
(or, for a fixed batch, other values) must record the same program: where it does not, Python control
flow read the tensors' values; a constant that differs between the traces was computed from the
inputs outside the graph. Shapes that differ become `BatchDim`s.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..graph import enable_grad, observe, user_frame
from ..introspect import LeafInfo, NodeInfo, Record, output_ids, short_repr, walk
from ..tensor import Tensor
from .graph import BatchDim, Dims, ExportError
from .table import index_items


@dataclass
class Trace:
    records: list[Record]
    outputs: list[int]  # record ids of the outputs
    inputs: list[Tensor]  # the traced input tensors (their leaves are the graph inputs)
    batch: int
    keep: Any = None  # output tensors, kept alive with their graph

    def input_index(self, r: Record) -> int | None:
        if isinstance(r, LeafInfo):
            for i, x in enumerate(self.inputs):
                if r.tensor is x:
                    return i
        return None


def _note_source(prim: Any, args: tuple, params: dict, out: Any, node: Any, seconds: float) -> None:
    if node is not None and node.source is None:
        node.source = user_frame(2)


def run(fn: Callable[..., Any], arrays: Sequence[np.ndarray], module: Any) -> Trace:
    """Call fn on the arrays (requiring grad) and read the recorded graph."""
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    with enable_grad(), observe(on_apply=_note_source):
        out = fn(*xs)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for k, o in enumerate(outs):
        if not isinstance(o, Tensor):
            raise ExportError(f"onnx export: output {k} of the model is a {type(o).__name__}, not a Tensor")
    records = walk(*outs, module=module)
    return Trace(records, output_ids(records, outs), xs, int(np.shape(arrays[0])[0]) if np.ndim(arrays[0]) else 0, outs)


def second_inputs(arrays: Sequence[np.ndarray], dynamic: bool) -> list[np.ndarray]:
    """Inputs for the second trace: the batch rolled by one (and one row longer for a dynamic batch);
    when that changes nothing (a single or repeated row), the last axis reversed as well."""
    out = []
    for a in arrays:
        b = np.roll(a, 1, axis=0) if a.ndim else a
        if np.array_equal(a, b) and a.ndim > 1:
            b = np.ascontiguousarray(b[..., ::-1])
        out.append(np.concatenate([b, a[:1]]) if dynamic else b)
    return out


def where(r: Record) -> str:
    return f" (recorded at {r.source})" if isinstance(r, NodeInfo) and r.source else ""


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and _same(a.data, b.data)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, slice) and isinstance(b, slice):
        return _same((a.start, a.stop, a.step), (b.start, b.stop, b.step))
    try:
        return bool(a == b)
    except Exception:
        return a is b


@dataclass(frozen=True)
class Broadcast:
    """A constant that repeats along the batch axis (a padding fill, zeros of the batch's shape): its
    one-row value, expanded to `dims` at run time."""

    value: np.ndarray
    dims: Dims


@dataclass
class Comparison:
    """What two traces say about the first: dims of every record, constants that follow the batch, and
    the records that cannot be translated one by one (a module pattern may still cover them)."""

    dims: dict[int, Dims]
    broadcasts: dict[tuple[int, int | None], Broadcast]  # (record id, argument or None for a leaf)
    problems: dict[int, str]


def compare(a: Trace, b: Trace, *, dynamic: bool) -> Comparison:
    """Check that b recorded the same program as a; describe a's records for translation."""
    cause = "the batch size" if dynamic else "the input values"
    hint = (" Python control flow that reads tensor values (if/while on a tensor, .item(), .numpy()) "
            "cannot be exported")
    for i in range(max(len(a.records), len(b.records))):
        ra = a.records[i] if i < len(a.records) else None
        rb = b.records[i] if i < len(b.records) else None
        if ra is None or rb is None or ra.op != rb.op or getattr(ra, "inputs", None) != getattr(rb, "inputs", None):
            first = ra if ra is not None else rb
            raise ExportError(
                f"onnx export: the recorded program changes with {cause}: step {i} is "
                f"'{ra.op if ra else 'the end'}' in one trace and '{rb.op if rb else 'the end'}' in the other"
                f"{where(first)}.{hint}")
    users = _first_users(a.records)
    out = Comparison({}, {}, {})
    for ra, rb in zip(a.records, b.records):
        out.dims[ra.id] = _dims(ra, rb, a.batch, b.batch, users)
        if isinstance(ra, LeafInfo):
            if a.input_index(ra) is None and not ra.is_param and not _same(ra.tensor, rb.tensor):
                wide = _broadcast(ra.tensor.data, rb.tensor.data, a.batch, b.batch)
                if wide is not None:
                    out.broadcasts[(ra.id, None)] = wide
                    continue
                user = users.get(ra.id)
                out.problems[ra.id] = (
                    f"onnx export: '{user.op if user else '?'}' reads a constant tensor of shape {ra.shape} that "
                    f"changes with {cause}: it was computed from the input outside the graph"
                    f"{where(user) if user else ''}.{hint}")
            continue
        pa, pb = params_of(ra), params_of(rb)
        for k, va in pa.items():
            vb = pb.get(k)
            if k != "shape" and not _same(va, vb):
                out.problems.setdefault(ra.id, (
                    f"onnx export: '{ra.op}': its parameter {k}={short_repr(va)} changes with {cause} "
                    f"({short_repr(vb)} in the other trace){where(ra)}.{hint}"))
        for k, (va, vb) in enumerate(zip(ra.node.args, rb.node.args)):
            if isinstance(va, Tensor) or _same(va, vb):
                continue
            wide = _broadcast(va, vb, a.batch, b.batch)
            if wide is not None:
                out.broadcasts[(ra.id, k)] = wide
                continue
            out.problems.setdefault(ra.id, (
                f"onnx export: '{ra.op}': its argument {k} is a constant ({short_repr(va)}) that changes with "
                f"{cause}: it was computed from the input outside the graph{where(ra)}.{hint}"))
    return out


def _broadcast(a: Any, b: Any, batch_a: int, batch_b: int) -> Broadcast | None:
    """The one-row value of a constant that only repeats along the axes whose size follows the batch."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != b.ndim or a.dtype != b.dtype or a.shape == b.shape or batch_a == batch_b:
        return None
    axes = tuple(i for i, (x, y) in enumerate(zip(a.shape, b.shape)) if x != y)
    first = a[tuple(slice(0, 1) if i in axes else slice(None) for i in range(a.ndim))]
    other = b[tuple(slice(0, 1) if i in axes else slice(None) for i in range(b.ndim))]
    if not (_same(first, other) and np.array_equal(np.broadcast_to(first, a.shape), a, equal_nan=True)
            and np.array_equal(np.broadcast_to(other, b.shape), b, equal_nan=True)):
        return None
    dims = []
    for x, y in zip(a.shape, b.shape):
        slope, rest = divmod(y - x, batch_b - batch_a)
        if x != y and rest:
            return None
        dims.append(int(x) if x == y else BatchDim(int(slope), int(x - slope * batch_a)))
    return Broadcast(first, tuple(dims))


def params_of(r: NodeInfo) -> dict[str, Any]:
    """The node's keyword parameters, with index slices that cover a whole axis written `:` (pad
    writes 0:n on the axes it leaves alone, and n may be the batch size)."""
    params = dict(r.node.params)
    if r.op in ("slice", "unslice") and isinstance(params.get("index"), (tuple, slice, int, type(None))):
        shape = r.input_shapes[0] if r.op == "slice" else r.shape
        try:
            items = index_items(params["index"], len(shape))
        except TypeError:
            return params
        dims = iter(shape)
        canonical = []
        for item in items:
            n = None if item is None else next(dims)
            whole = isinstance(item, slice) and item.indices(n) == (0, n, 1)
            canonical.append(slice(None) if whole else item)
        params["index"] = tuple(canonical)
    return params


def _first_users(records: list[Record]) -> dict[int, NodeInfo]:
    users: dict[int, NodeInfo] = {}
    for r in records:
        if isinstance(r, NodeInfo):
            for i in r.inputs:
                if i is not None:
                    users.setdefault(i, r)
    return users


def _dims(ra: Record, rb: Record, batch_a: int, batch_b: int, users: dict[int, NodeInfo]) -> Dims:
    if len(ra.shape) != len(rb.shape):
        raise ExportError(f"onnx export: '{ra.op}' gives {len(ra.shape)}-D and {len(rb.shape)}-D results in two "
                          f"traces{where(ra if isinstance(ra, NodeInfo) else users.get(ra.id, ra))}")
    out: list[int | BatchDim] = []
    for da, db in zip(ra.shape, rb.shape):
        if da == db:
            out.append(int(da))
            continue
        slope, rest = divmod(db - da, batch_b - batch_a) if batch_b != batch_a else (0, 1)
        if rest:
            raise ExportError(f"onnx export: '{ra.op}': shape {ra.shape} is not linear in the batch size "
                              f"({rb.shape} at batch {batch_b}){where(ra)}")
        out.append(BatchDim(int(slope), int(da - slope * batch_a)))
    return tuple(out)
