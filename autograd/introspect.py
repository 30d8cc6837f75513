"""The recorded graph as plain data: one public walk that drawing, profiling and error tools read.

`walk(*outputs)` returns the leaves and op nodes reachable from the outputs in topological order,
**inputs first** (every record comes after the records of its inputs), as small frozen dataclasses.
Ids are positions in that order, so the same program gives the same ids on every run (never `id()`).

    >>> import autograd as ag
    >>> from autograd.introspect import walk
    >>> x = ag.tensor([1.0, 2.0], requires_grad=True)
    >>> [r.op for r in walk((x * 2).sum())]
    ['leaf', 'mul', 'sum']
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from .errors import GraphError, fmt_shape
from .graph import Node, _Mode, observe
from .tensor import Tensor

Scope = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Saved:
    """One array an op keeps for its backward: an input (by the id of its producer) or its output."""

    what: str  # "arg0", "arg1", ... or "out"
    ref: int  # id of the record whose tensor this is (the op itself for "out")
    shape: tuple[int, ...]
    dtype: str
    nbytes: int


@dataclass(frozen=True)
class Origin:
    """How a leaf was made from the user's tensor by ops that recorded nothing (the input needed no
    grad), e.g. conv's im2col of an image: known for forwards run inside `record_inputs()`."""

    ops: tuple[str, ...]  # the unrecorded primitives, first to last
    shape: tuple[int, ...]  # of the user's tensor
    dtype: str
    scope: Scope  # the module call the unrecorded ops ran in
    tensor: Any = field(default=None, compare=False, repr=False, hash=False)  # the user's tensor, if alive


@dataclass(frozen=True)
class LeafInfo:
    """A tensor made by no op: a parameter, an input, a constant Tensor or a gradient seed."""

    id: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    requires_grad: bool
    is_param: bool  # named by `params`/`module` (or by the tensor's own name and requires grad)
    nbytes: int
    is_grad: bool = False  # a cotangent fed to a VJP (seen inside `record_backward()`)
    op: str = "leaf"
    tensor: Any = field(default=None, compare=False, repr=False, hash=False)
    origin: Origin | None = None  # made from a user's tensor by unrecorded ops (see `record_inputs`)


@dataclass(frozen=True)
class NodeInfo:
    """One recorded primitive application."""

    id: int
    op: str  # the primitive's name
    params: tuple[tuple[str, str], ...]  # short reprs of keyword params and constant arguments
    inputs: tuple[int | None, ...]  # per positional argument: id of its record, None for a constant
    input_shapes: tuple[tuple[int, ...], ...]
    input_dtypes: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    saved: tuple[Saved, ...]
    saved_bytes: int  # this op's saved arrays, each counted once
    scope: Scope
    source: str | None
    grad_of: int | None = None  # for an op recorded during backward: id of the forward op it differentiates
    node: Any = field(default=None, compare=False, repr=False, hash=False)


Record = LeafInfo | NodeInfo

# Gradient ops recorded inside `record_backward()`: backward node -> the forward node whose VJP made it.
_GRAD_OF: "weakref.WeakKeyDictionary[Node, Node]" = weakref.WeakKeyDictionary()
# Cotangents that are leaves (the seed, and gradients computed from no grad-requiring tensor), seen by
# `record_backward()`; keyed by id() because Tensor.__eq__ is elementwise (no WeakSet).
_SEEDS: "weakref.WeakValueDictionary[int, Tensor]" = weakref.WeakValueDictionary()


def walk(
    *outputs: Tensor,
    params: Mapping[str, Tensor] | None = None,
    module: Any = None,
    follow_grad_of: bool = False,
) -> list[Record]:
    """Leaves and op nodes reachable from `outputs`, inputs first, with deterministic ids.

    params: {name: tensor} (e.g. `dict(model.named_parameters())`) to name parameter leaves;
    module: anything with `named_parameters()`, used the same way. Other leaves are named by their
    `name` slot, else `x0, x1, ...` in walk order. follow_grad_of: for graphs recorded inside
    `record_backward()`, also walk the forward ops that the gradient ops came from.
    Raises GraphError on a graph already freed by backward.
    """
    names = _param_names(params, module)
    order = _order(outputs, follow_grad_of)
    ids: dict[int, int] = {}  # id(node or leaf tensor) -> record id; objects stay alive during the walk
    records: list[Record] = []
    unnamed = grads = 0
    for kind, obj in order:
        rid = len(records)
        ids[id(obj)] = rid
        if kind == "leaf":
            name = names.get(id(obj)) or obj.name
            is_param = id(obj) in names or (obj.name is not None and obj.requires_grad)
            is_grad = _SEEDS.get(id(obj)) is obj
            if name is None and is_grad:
                name, grads = f"g{grads}", grads + 1
            elif name is None:
                name, unnamed = f"x{unnamed}", unnamed + 1
            records.append(LeafInfo(rid, name, tuple(obj.shape), str(obj.dtype), bool(obj.requires_grad),
                                    is_param, int(obj.data.nbytes), is_grad, tensor=obj, origin=origin_of(obj)))
        else:
            records.append(_node_info(rid, obj, ids))
    if follow_grad_of:
        records = [
            _with_grad_of(r, ids) if isinstance(r, NodeInfo) and r.node in _GRAD_OF else r for r in records
        ]
    return records


def output_ids(records: list[Record], outputs: Iterable[Tensor]) -> list[int]:
    """Record ids of the given output tensors (leaf outputs included)."""
    by_obj = {id(r.node if isinstance(r, NodeInfo) else r.tensor): r.id for r in records}
    return [by_obj[id(t._node if t._node is not None else t)] for t in outputs]


def total_saved_bytes(records: Iterable[Record]) -> int:
    """Bytes the graph keeps for backward, each array counted once however many ops keep it."""
    seen: dict[tuple[int, str], int] = {}
    for r in records:
        if isinstance(r, NodeInfo):
            for s in r.saved:
                seen[(s.ref, "out" if s.what == "out" else "t")] = s.nbytes
    # an op's saved output and a consumer's saved input are the same array
    return sum(n for (ref, kind), n in seen.items() if kind == "out" or (ref, "out") not in seen)


# --- the walk ------------------------------------------------------------------------------------
def _order(outputs: tuple[Tensor, ...], follow_grad_of: bool) -> list[tuple[str, Any]]:
    """Iterative post-order DFS (no recursion): arguments left to right, so inputs come first."""
    order: list[tuple[str, Any]] = []
    seen: set[int] = set()
    roots: list[Any] = []
    for t in outputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"walk: outputs must be Tensors, got {type(t).__name__}")
        roots.append(t._node if t._node is not None else t)
    stack: list[tuple[Any, bool]] = [(r, False) for r in reversed(roots)]
    while stack:
        obj, expanded = stack.pop()
        if expanded:
            order.append(("node", obj))
            continue
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, Tensor):  # a leaf
            order.append(("leaf", obj))
            continue
        if obj.freed:
            raise GraphError(
                f"walk: the graph through '{obj.prim.name}' (output {fmt_shape(obj.shape)}) was freed by backward(); "
                "draw or inspect it before calling backward(), or call backward(retain_graph=True)"
            )
        stack.append((obj, True))
        children = [a._node if a._node is not None else a for a in obj.args if isinstance(a, Tensor)]
        if follow_grad_of and obj in _GRAD_OF:
            children.append(_GRAD_OF[obj])  # visited first-come, so the forward op precedes its gradient
            children.insert(0, children.pop())
        for c in reversed(children):
            if id(c) not in seen:
                stack.append((c, False))
    return order


def saved_arrays(node: Node) -> list[tuple[str, np.ndarray, Tensor | None]]:
    """What a node keeps for backward: its Tensor arguments and its output, each array once."""
    found: dict[int, tuple[str, np.ndarray, Tensor | None]] = {}
    for i, a in enumerate(node.args):
        if isinstance(a, Tensor):
            found.setdefault(id(a.data), (f"arg{i}", a.data, a))
    if node.out is not None:
        found.setdefault(id(node.out), ("out", node.out, None))
    return list(found.values())


def node_saved_bytes(node: Node) -> int:
    """Bytes a node keeps alive for backward (the profiler's and the drawing's measure)."""
    return sum(int(arr.nbytes) for _, arr, _ in saved_arrays(node))


def _node_info(rid: int, node: Node, ids: dict[int, int]) -> NodeInfo:
    inputs, shapes, dtypes, consts = [], [], [], []
    for i, a in enumerate(node.args):
        if isinstance(a, Tensor):
            inputs.append(ids[id(a._node if a._node is not None else a)])
            shapes.append(tuple(a.shape))
            dtypes.append(str(a.dtype))
        else:
            inputs.append(None)
            shapes.append(tuple(np.shape(a)))
            dtypes.append(str(a.dtype) if isinstance(a, np.ndarray) else type(a).__name__)
            consts.append((f"arg{i}", short_repr(a)))
    saved = [
        Saved(what, rid if t is None else ids[id(t._node if t._node is not None else t)], tuple(arr.shape),
              str(arr.dtype), int(arr.nbytes))
        for what, arr, t in saved_arrays(node)
    ]
    params = tuple((k, short_repr(v)) for k, v in node.params.items()) + tuple(consts)
    return NodeInfo(
        rid, node.prim.name, params, tuple(inputs), tuple(shapes), tuple(dtypes), tuple(node.shape),
        str(node.dtype), tuple(saved), sum(s.nbytes for s in saved), tuple(node.scope), node.source, node=node,
    )


def _with_grad_of(r: NodeInfo, ids: dict[int, int]) -> NodeInfo:
    from dataclasses import replace

    return replace(r, grad_of=ids.get(id(_GRAD_OF[r.node])))


def _param_names(params: Mapping[str, Tensor] | None, module: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    if module is not None:
        if not hasattr(module, "named_parameters"):
            raise TypeError(f"module= must have named_parameters(), got {type(module).__name__}")
        for name, p in module.named_parameters():
            names.setdefault(id(p), name)
    for name, p in (params or {}).items():
        names[id(p)] = name
    return names


def short_repr(v: Any, limit: int = 32) -> str:
    """A parameter as a person reads it on a graph: shapes as (2, 3), index tuples summarised."""
    if isinstance(v, Tensor):
        v = v.data
    if isinstance(v, np.ndarray):
        if v.ndim <= 1 and v.size <= 4:
            return repr(v.tolist())
        return f"{v.dtype}{list(v.shape)}"
    if isinstance(v, (bool, np.bool_)) or v is None:
        return repr(v)
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}"
    if isinstance(v, slice):
        parts = ["" if p is None else str(p) for p in (v.start, v.stop, v.step)]
        return ":".join(parts[:2] if v.step is None else parts)
    if v is Ellipsis:
        return "..."
    if isinstance(v, (np.dtype, type)):
        return np.dtype(v).name if v is not object else "object"
    if isinstance(v, (tuple, list)):
        text = "(" + ", ".join(short_repr(e, limit) for e in v) + ("," if len(v) == 1 else "") + ")"
    elif isinstance(v, str):
        text = repr(v)
    else:
        text = type(v).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- linking gradient ops to forward ops ---------------------------------------------------------
class record_backward:
    """Tag the ops that a `create_graph=True` backward records with the forward op they differentiate.

        with record_backward():
            (gw,) = ag.grad(loss, [w], create_graph=True)
        walk(gw, follow_grad_of=True)   # gradient ops carry grad_of = the forward op's id

    An observer (`autograd.graph.observe`) of the `vjp_start`/`vjp_end` events around each node's
    VJPs and of the `apply` event of each op those VJPs record.
    """

    def __init__(self) -> None:
        self._current: list[Node] = []
        self._observer = observe(on_apply=self._apply, on_vjp_start=self._vjp_start, on_vjp_end=self._vjp_end)

    def _vjp_start(self, node: Node, g: Any) -> None:
        if isinstance(g, Tensor) and g._node is None:
            _SEEDS[id(g)] = g
        self._current.append(node)

    def _vjp_end(self, node: Node, results: Any) -> None:
        if self._current:
            self._current.pop()

    def _apply(self, prim: Any, args: tuple, params: dict, out: Any, node: Node | None, seconds: float) -> None:
        if node is not None and self._current:
            _GRAD_OF[node] = self._current[-1]

    def __enter__(self) -> "record_backward":
        self._observer.subscribe()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._observer.unsubscribe()


# --- the user's tensor behind an unrecorded input -------------------------------------------------
# out array id -> [weakref to the array, Origin]; entries leave with their array. Keyed by id()
# because ndarray == is elementwise; the weakref proves the id was not reused.
_MADE_FROM: dict[int, list] = {}


def origin_of(t: Tensor) -> Origin | None:
    """The user's tensor and the unrecorded ops that made `t` (seen inside `record_inputs()`), or None."""
    entry = _MADE_FROM.get(id(t.data))
    if entry is None or entry[0]() is not t.data:
        return None
    return entry[1]


class record_inputs:
    """Remember how unrecorded ops turn a user's tensor into what a recorded op receives, so drawings
    show the tensor the user passed, not its unfolding:

        with viz.record_inputs():
            logits = model(images)        # conv's im2col of `images` records no node
        viz.draw(logits, module=model)    # draws images (4, 1, 20, 20) -> [unrecorded ops] -> conv

    An observer of `apply` events; only ops that record no node are looked at, and chains are
    flattened as they run, so intermediate arrays need not stay alive.
    """

    def __init__(self) -> None:
        self._observer = observe(on_apply=self._apply)

    def _apply(self, prim: Any, args: tuple, params: dict, out: Any, node: Node | None, seconds: float) -> None:
        if node is not None or not isinstance(out, np.ndarray):
            return
        tensors = [a for a in args if isinstance(a, Tensor)]
        if not tensors:
            return
        parent = next((t for t in tensors if origin_of(t) is not None), None)
        if parent is not None:
            before = origin_of(parent)
            origin = Origin(before.ops + (prim.name,), before.shape, before.dtype, before.scope, before.tensor)
        else:
            parent = max(tensors, key=lambda t: t.data.size)
            origin = Origin((prim.name,), tuple(parent.shape), str(parent.dtype), _Mode.scope, parent)
        key = id(out)
        try:
            ref = weakref.ref(out, lambda _, key=key: _MADE_FROM.pop(key, None))
        except TypeError:  # an array type without weak references: not tracked
            return
        _MADE_FROM[key] = [ref, origin]

    def __enter__(self) -> "record_inputs":
        self._observer.subscribe()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._observer.unsubscribe()
