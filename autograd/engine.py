"""Reverse mode: `backward()` and `grad()`.

One iterative topological sort (no recursion, so a 100,000-op chain is fine), then each node's VJPs
applied once, outputs first, with cotangents accumulated per node. VJPs run in no-grad mode unless
`create_graph`, in which case they are recorded like any other op and can be differentiated again.
"""
from __future__ import annotations

import sys
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import GraphError, fmt_shape
from .graph import OBSERVERS, Node, _Mode, last_modification, module_of
from .primitive import REPLAY
from .tensor import Tensor, _as_array


def toposort(roots: Iterable[Node]) -> list[Node]:
    """Nodes reachable from `roots` through inputs that require grad, outputs first."""
    order: list[Node] = []
    seen: set[Node] = set()
    stack: list[tuple[Node, bool]] = [(n, False) for n in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        if node.freed:
            raise GraphError(
                f"backward: trying to backward through the graph a second time (through '{node.prim.name}'); "
                "its saved values were freed by the first backward. Pass retain_graph=True to the first "
                "backward() if you need to call it twice."
            )
        stack.append((node, True))
        for a in node.args:
            if isinstance(a, Tensor) and a.requires_grad and a._node is not None and a._node not in seen:
                stack.append((a._node, False))
    order.reverse()
    return order


def _seed(output: Tensor, grad: Any, who: str) -> Tensor:
    if not isinstance(output, Tensor):
        raise TypeError(f"{who}: outputs must be Tensors, got {type(output).__name__}")
    if not output.requires_grad:
        raise GraphError(
            f"{who}: the output (shape {fmt_shape(output.shape)}) does not require grad: no input that requires "
            "grad reached it (or it was computed under no_grad)"
        )
    if grad is None:
        if output.data.size != 1:
            raise GraphError(
                f"{who}: the output has shape {fmt_shape(output.shape)}; a gradient can be implied only for "
                "a scalar output. Pass a gradient of the same shape (grad=/grad_outputs=), or reduce it first "
                "(e.g. .sum())"
            )
        if output.dtype.kind == "c":
            raise GraphError(
                f"{who}: the output is {output.dtype}; a gradient can be implied only for a real output (as in "
                "PyTorch): differentiate a real function of it, or pass the gradient explicitly"
            )
        return Tensor._make(np.ones_like(output.data))
    if isinstance(grad, Tensor):
        g = grad
    else:
        try:
            g = Tensor._make(_as_array(grad, output.dtype))
        except (TypeError, ValueError):
            raise TypeError(f"{who}: a gradient must be a Tensor, an array or (nested lists of) numbers, got "
                            f"{type(grad).__name__} {grad!r:.60}") from None
    if g.shape != output.shape:
        raise GraphError(f"{who}: gradient shape {fmt_shape(g.shape)} does not match output shape {fmt_shape(output.shape)}")
    if g.dtype != output.dtype:
        g = Tensor._make(g.data.astype(output.dtype))
    return g


def _seeds(outputs: Any, grads: Any, who: str) -> list[tuple[Tensor, Tensor]]:
    """Pair each output with its seed gradient. One Tensor output: `grads` is its gradient (a Tensor,
    an array, numbers, or PyTorch's one-item list [g]). A sequence of outputs: None, or one gradient
    (or None) per output, never silently fewer or more."""
    if isinstance(outputs, Tensor):
        outs = [outputs]
        if isinstance(grads, (list, tuple)) and len(grads) == 1 and (grads[0] is None or isinstance(grads[0], (Tensor, np.ndarray))):
            grads = grads[0]
        gs = [grads]
    else:
        if not isinstance(outputs, (list, tuple)):
            raise TypeError(f"{who}: outputs must be a Tensor or a sequence of Tensors, got {type(outputs).__name__}")
        outs = list(outputs)
        if not outs:
            raise GraphError(f"{who}: no outputs given")
        if grads is None:
            gs = [None] * len(outs)
        elif isinstance(grads, (list, tuple)):
            gs = list(grads)
        elif len(outs) == 1:
            gs = [grads]
        else:
            raise GraphError(f"{who}: {len(outs)} outputs need a sequence of {len(outs)} gradients (or None), got one "
                             f"{type(grads).__name__}")
        if len(gs) != len(outs):
            raise GraphError(f"{who}: {len(outs)} outputs but {len(gs)} gradients; pass one gradient (or None) per "
                             "output")
    return [(o, _seed(o, g, who)) for o, g in zip(outs, gs)]


def _like_leaf(g: Tensor, leaf: Tensor) -> Tensor:
    """A gradient in its leaf's dtype (PyTorch's rule): a float32 parameter never gets a float64 or
    complex `.grad`; a complex cotangent of a real leaf gives its real part."""
    if g.dtype == leaf.dtype:
        return g
    if g.dtype.kind == "c" and leaf.dtype.kind != "c":
        return Tensor._make(g.data.real.astype(leaf.dtype))
    return g.astype(leaf.dtype)


def _run(
    seeds: list[tuple[Tensor, Tensor]],
    retain_graph: bool,
    create_graph: bool,
    wanted: Sequence[Tensor] | None,
) -> dict[int, tuple[Tensor, Tensor]]:
    """Propagate cotangents from `seeds`; return {id(t): (t, grad)} for reached leaves (and `wanted`)."""
    node_grads: dict[Node, Tensor] = {}
    leaf_grads: dict[int, tuple[Tensor, Tensor]] = {}
    for out, g in seeds:
        if out._node is None:
            _accumulate(leaf_grads, out, g)
        else:
            node_grads[out._node] = node_grads[out._node] + g if out._node in node_grads else g
    wanted_nodes = {t._node: t for t in wanted or () if t._node is not None}
    order = toposort({out._node for out, _ in seeds if out._node is not None})
    prev_mode = _Mode.grad_enabled
    _Mode.grad_enabled = create_graph
    observed = _Mode.observed
    try:
        for node in order:
            g = node_grads.pop(node, None)
            if g is not None:
                if node in wanted_nodes:
                    _accumulate(leaf_grads, wanted_nodes[node], g)
                args = node.args
                if observed:
                    for fn in OBSERVERS.vjp_start:
                        fn(node, g)
                if observed and REPLAY.recorder is not None:
                    results = REPLAY.vjp(node, g, create_graph, _apply_vjps)
                else:
                    results = _apply_vjps(node, g, create_graph)
                if observed:
                    for fn in OBSERVERS.vjp_end:
                        fn(node, results)
                for a, r in zip(args, results):
                    if r is None or not a.requires_grad:  # r is None for every non-Tensor argument
                        continue
                    parent = a._node
                    if parent is not None:
                        prev = node_grads.pop(parent, None)  # popped: the table's reference would block _sum
                        node_grads[parent] = r if prev is None else _sum(prev, r)
                    else:
                        _accumulate(leaf_grads, a, r)
            if not retain_graph:
                node.free()
    finally:
        _Mode.grad_enabled = prev_mode
    return leaf_grads


def _accumulate(table: dict[int, tuple[Tensor, Tensor]], t: Tensor, g: Tensor) -> None:
    prev = table.pop(id(t), None)
    table[id(t)] = (t, g if prev is None else _sum(prev[1], g))


#: sys.getrefcount, inside _private, of a cotangent tensor only the engine holds (its caller's
#: reference, _sum's parameter, _private's, getrefcount's argument) and of its array (the tensor's
#: slot, _sum's local, _private's parameter, getrefcount's argument). More: someone else sees it.
#: tests/autograd/test_engine_accumulate.py checks both ways: in place where private, never else.
_PRIVATE_REFS = 4
#: Below this many elements a fresh array is cheap and the checks are not (~1 µs).
IN_PLACE_MIN = 1 << 14


def _sum(a: Tensor, b: Tensor) -> Tensor:
    """Add two cotangents: a recorded add under create_graph, else straight NumPy (no node to make).

    Without create_graph, into the first one's array when nothing else can see it (no other tensor,
    view, saved output, observer or caller holds it: reference counts say so), like NumPy's own elision
    of temporaries: a fresh full-size result costs an allocation and a write to cold memory
    (LeNet-BN's ten accumulations per step, nine of them batch norm's; measured in
    docs/benchmarks.md). The bits are the same either way."""
    if _Mode.grad_enabled:
        return a + b
    x, y = a.data, b.data
    if _private(a, x) and _fits(x, y):
        np.add(x, y, out=x)
        return a
    return Tensor._make(x + y)


def _private(t: Tensor, x: np.ndarray) -> bool:
    """x (t's array) is a plain writeable array of its own, large enough to be worth it, that only the
    engine's t refers to. Anything but a plain ndarray (a trace's or a transform's array) is not."""
    return (type(x) is np.ndarray and x.size >= IN_PLACE_MIN and x.flags.owndata and x.flags.writeable
            and sys.getrefcount(x) <= _PRIVATE_REFS and sys.getrefcount(t) <= _PRIVATE_REFS)


def _fits(x: np.ndarray, y: np.ndarray) -> bool:
    """x + y can be written into x: the same shape after broadcasting and x's dtype."""
    return (x.shape == y.shape or np.broadcast_shapes(x.shape, y.shape) == x.shape) and np.result_type(x, y) == x.dtype


def _apply_vjps(node: Node, g: Tensor, create_graph: bool) -> Sequence[Tensor | None]:
    """Each differentiable argument's VJP (None for the others), after checking no saved input
    was modified in place since the op was recorded."""
    prim, args, params = node.prim, node.args, node.params
    ans = None
    if prim.save_output:
        if create_graph:  # recompute the output as a recorded tensor so its use in the VJP is differentiated
            ans = prim(*args, **params)
        else:
            ans = Tensor._make(node.out)
    versions = 0
    wanted = []
    for a in args:
        if isinstance(a, Tensor):
            versions += a._version
            wanted.append(a.requires_grad)
        else:
            wanted.append(False)
    results = prim.apply_vjps(g, ans, args, params, wanted)
    if versions != node.versions:  # checked after: a VJP only reads, and its result is dropped
        _raise_modified(node)
    return results


def _raise_modified(node: Node) -> None:
    name = node.prim.name
    lines = [f"backward: a tensor saved by '{name}' was modified in place before backward used it; "
             "its gradient would be wrong."]
    where = module_of(node)
    lines.append(f"  saved by '{name}'{where} at {node.source}" if node.source else
                 f"  saved by '{name}'{where} (run under autograd.detect_anomaly() to see the line that called it)")
    for i, a in enumerate(node.args):
        note = last_modification(a) if isinstance(a, Tensor) else None
        if note is not None:
            who = f" '{a.name}'" if getattr(a, "name", None) else ""
            at = f" at {note[1]}" if note[1] else " (run under autograd.detect_anomaly() to see the line)"
            lines.append(f"  argument {i}{who} (shape {fmt_shape(a.shape)}) changed by '{note[0]}'{at}")
    if len(lines) == 2:
        lines.append("  changed outside tapegrad's operators (through .data or NumPy)")
    lines.append("  Fix: use the out-of-place operation (x = x + 1), .clone() before changing it, or call "
                 "backward() before the optimizer step.")
    raise GraphError("\n".join(lines))


def _owned(g: Tensor, leaf: Tensor, create_graph: bool) -> Tensor:
    """A gradient the caller may keep and modify: never an alias of another tensor's array, and
    laid out as its leaf (PyTorch's layout contract for .grad). A weight's gradient often comes out
    of its VJP transposed (linear's x.T @ g); an optimizer's in-place arithmetic between the
    parameter, its moments and a transposed gradient ran 5x slower (Adam on LeNet-BN's 3136x128
    weight: 4.0 ms against 0.74 ms)."""
    if create_graph:
        return g
    d, a = leaf.data.flags, g.data.flags
    order = "C" if d.c_contiguous and not a.c_contiguous else "F" if d.f_contiguous and not a.f_contiguous else None
    # no order= when the layouts already match: the compiled step's copy-elision pass drops that copy
    return Tensor._make(np.array(g.data, copy=True, **({"order": order} if order else {})))


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensors)/d(leaf) into every reached leaf's `.grad` (PyTorch semantics); each
    `.grad` has its leaf's dtype."""
    seeds = _seeds(tensors, grad_tensors, "backward")
    results = _run(seeds, retain_graph or create_graph, create_graph, None)
    for leaf, g in results.values():
        g = _like_leaf(g, leaf)
        if leaf.grad is None:
            leaf.grad = _owned(g, leaf, create_graph)
        elif create_graph:
            leaf.grad = leaf.grad + g
        else:
            leaf.grad = Tensor._make(leaf.grad.data + g.data)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as new tensors; leaves' `.grad` is left untouched (like torch.autograd.grad)."""
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise GraphError(f"grad: input {i} does not require grad, so no gradient can be computed for it")
    seeds = _seeds(outputs, grad_outputs, "grad")
    retain = create_graph if retain_graph is None else retain_graph
    results = _run(seeds, retain, create_graph, ins)
    answer = []
    for i, t in enumerate(ins):
        g = results[id(t)][1] if id(t) in results else None
        if g is None and not allow_unused:
            raise GraphError(
                f"grad: input {i} (shape {fmt_shape(t.shape)}) is not part of the graph of the outputs; "
                "pass allow_unused=True to get None for it"
            )
        answer.append(None if g is None else _owned(_like_leaf(g, t), t, create_graph))
    return tuple(answer)
