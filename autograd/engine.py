"""Reverse mode: `backward()` and `grad()`.

One iterative topological sort (no recursion, so a 100,000-op chain is fine), then each node's VJPs
applied once, outputs first, with cotangents accumulated per node. VJPs run in no-grad mode unless
`create_graph`, in which case they are recorded like any other op and can be differentiated again.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .errors import GraphError, fmt_shape
from .graph import OBSERVERS, Node, _Mode, last_modification
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
            if isinstance(a, Tensor) and a._node is not None and a._node not in seen:
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
        return Tensor._make(np.ones_like(output.data))
    g = grad if isinstance(grad, Tensor) else Tensor._make(_as_array(grad, output.dtype))
    if g.shape != output.shape:
        raise GraphError(f"{who}: gradient shape {fmt_shape(g.shape)} does not match output shape {fmt_shape(output.shape)}")
    if g.dtype != output.dtype:
        g = Tensor._make(g.data.astype(output.dtype))
    return g


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
                        prev = node_grads.get(parent)
                        node_grads[parent] = r if prev is None else _sum(prev, r)
                    else:
                        _accumulate(leaf_grads, a, r)
            if not retain_graph:
                node.free()
    finally:
        _Mode.grad_enabled = prev_mode
    return leaf_grads


def _accumulate(table: dict[int, tuple[Tensor, Tensor]], t: Tensor, g: Tensor) -> None:
    prev = table.get(id(t))
    table[id(t)] = (t, g if prev is None else _sum(prev[1], g))


def _sum(a: Tensor, b: Tensor) -> Tensor:
    """Add two cotangents: a recorded add under create_graph, else straight NumPy (no node to make)."""
    if _Mode.grad_enabled:
        return a + b
    return Tensor._make(a.data + b.data)


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
    lines.append(f"  saved by '{name}' at {node.source}" if node.source else
                 f"  saved by '{name}' (run under autograd.detect_anomaly() to see the line that called it)")
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


def _owned(g: Tensor, create_graph: bool) -> Tensor:
    """A gradient the caller may keep and modify: never an alias of another tensor's array."""
    if create_graph:
        return g
    return Tensor._make(np.array(g.data, copy=True))


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Any = None,
    retain_graph: bool = False,
    create_graph: bool = False,
) -> None:
    """Accumulate d(tensors)/d(leaf) into every reached leaf's `.grad` (PyTorch semantics)."""
    outs = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    grads = grad_tensors if isinstance(grad_tensors, (list, tuple)) else [grad_tensors] * len(outs)
    seeds = [(o, _seed(o, g, "backward")) for o, g in zip(outs, grads)]
    results = _run(seeds, retain_graph or create_graph, create_graph, None)
    for leaf, g in results.values():
        if leaf.grad is None:
            leaf.grad = _owned(g, create_graph)
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
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    gouts = grad_outputs if isinstance(grad_outputs, (list, tuple)) else [grad_outputs] * len(outs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise GraphError(f"grad: input {i} does not require grad, so no gradient can be computed for it")
    seeds = [(o, _seed(o, g, "grad")) for o, g in zip(outs, gouts)]
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
        answer.append(None if g is None else _owned(g, create_graph))
    return tuple(answer)
