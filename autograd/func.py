"""Function transforms with torch.func / JAX names: grad, value_and_grad, vjp, jvp, jacrev, jacfwd,
hessian, hvp, vmap. They compose (jacfwd(jacrev(f)), vmap(grad(f)), grad(grad(f))).

- Reverse mode (grad, vjp) is the engine's tape: the inputs become fresh leaves, f runs, and
  backward applies the registry's VJPs. Inside vmap, reverse mode differentiates the batched
  arrays underneath (each example's computation is independent), and an input vmap does not batch
  is broadcast first, so its gradient is per example. Inside jvp, the tape records the forward-mode
  tracers themselves, so the backward pass carries tangents (forward-over-reverse).
- Forward mode (jvp) and batching (vmap) are traces (autograd.forward, autograd.batching) that
  run each primitive's JVP or batching rule from the registry.

Functions take and return Tensors, or tuples/lists/dicts of them (outputs of jvp and vmap).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from . import batching as B
from .batching import BatchTrace, BatchTracer
from .engine import grad as _engine_grad
from .errors import ShapeError, fmt_shape
from .forward import JVPTrace, JVPTracer
from .graph import _Mode, enable_grad
from .primitive import REGISTRY
from .tensor import Tensor
from .tracer import Tracer, on_tape

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "hvp", "vmap"]

ArgNums = int | Sequence[int]


class _Depth:
    """How many reverse-mode transforms are running (an inner one must keep its graph for the outer)."""

    reverse = 0


# --- small pytrees: a Tensor, or tuples/lists/dicts of them ------------------------------------------
def _tree_map(fn: Callable, tree: Any) -> Any:
    if isinstance(tree, (tuple, list)):
        return type(tree)(_tree_map(fn, t) for t in tree)
    if isinstance(tree, dict):
        return {k: _tree_map(fn, v) for k, v in tree.items()}
    return fn(tree)


def _leaves(tree: Any) -> list:
    out: list = []
    _tree_map(out.append, tree)
    return out


def _as_tensor(x: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    arr = np.asarray(x)
    return Tensor(arr.astype(np.float32) if arr.dtype == np.float64 and not isinstance(x, np.ndarray) else arr)


# --- moving between a logical value and the batched arrays underneath ----------------------------------
def _lower(x: Any, traces: Sequence[BatchTrace], shift: int = 0) -> Any:
    """x (per-example view) -> the array below `traces` (newest first), each trace's batch axis at
    position `shift`; x is broadcast over traces that do not batch it. A tracer of a newer batch
    level (jacrev's batched cotangents) stays outside."""
    if traces and isinstance(x, BatchTracer) and x.trace.level > traces[0].level:
        inner = _lower(B.to_front(x.value, x.bdim), traces, shift + 1)
        return BatchTracer(x.trace, inner, 0)
    for trace in traces:
        if isinstance(x, BatchTracer) and x.trace is trace:
            x = B.moveaxis(x.value, x.bdim, shift)
        else:
            x = B.broadcast_at(x, shift, trace.size)
    return x


def _raise(g: Any, traces: Sequence[BatchTrace], shift: int = 0) -> Any:
    """The inverse of `_lower`: wrap an array from below `traces` back into batch tracers."""
    if traces and isinstance(g, BatchTracer) and g.trace.level > traces[0].level:
        return BatchTracer(g.trace, _raise(B.to_front(g.value, g.bdim), traces, shift + 1), 0)
    for trace in reversed(traces):
        g = BatchTracer(trace, g, shift)
    return g


def _batch_traces(x: Any, ceiling: float) -> tuple[list[BatchTrace], Any]:
    """The batch levels reverse mode must see through for input x (newest first), and x's base."""
    own = []
    base = x
    while isinstance(base, BatchTracer):
        own.append(base.trace)
        base = base.value
    floor = base.trace.level if isinstance(base, Tracer) else 0
    traces = set(own) | {t for t in B.ACTIVE if floor < t.level < ceiling}
    return sorted(traces, key=lambda t: -t.level), base


def _leaf(x: Tensor) -> Tensor:
    """A fresh variable to differentiate with respect to, standing for x."""
    if x.dtype.kind != "f":
        raise TypeError(f"grad: can only differentiate with respect to floating-point inputs, got {x.dtype} "
                        f"with shape {fmt_shape(x.shape)}")
    if on_tape(x):  # on an outer tape: an identity op keeps the link
        return REGISTRY["mul"](x, 1)
    if isinstance(x, JVPTracer):
        leaf = JVPTracer(x.trace, x.primal, x.tangent)
        leaf._taped = True
        return leaf
    return Tensor(x.data, requires_grad=True)


def _strip(x: Any) -> Any:
    """Cut a result from this transform's private tape (its leaves are gone when it returns)."""
    if isinstance(x, BatchTracer):
        return BatchTracer(x.trace, _strip(x.value), x.bdim)
    if isinstance(x, JVPTracer):
        return JVPTracer(x.trace, x.primal, x.tangent) if x._node is not None else x
    if isinstance(x, Tensor) and x._node is not None:
        return Tensor._make(x.data)
    return x


# --- reverse mode ---------------------------------------------------------------------------------------
def _argnums(argnums: ArgNums, n: int, who: str) -> tuple[int, ...]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -n <= i < n:
            raise ValueError(f"{who}: argnums {argnums} is out of range for {n} positional argument(s)")
    return tuple(i % n for i in nums)


def _linearize(f: Callable, args: tuple, nums: tuple[int, ...], has_aux: bool, ceiling: float, who: str):
    """Run f with fresh leaves for the tensors in args[nums] (Tensors or tuples/lists/dicts of them);
    return what a pullback needs."""
    args = list(args)
    leaves, traces_of = [], []
    outer = False

    def fresh(x):
        nonlocal outer
        x = _as_tensor(x)
        traces, _ = _batch_traces(x, ceiling)
        phys = _lower(x, traces)
        outer = outer or on_tape(phys)
        leaf = _leaf(phys)
        leaves.append(leaf)
        traces_of.append(traces)
        return _raise(leaf, traces)

    trees = []
    for i in nums:
        trees.append(args[i])
        args[i] = _tree_map(fresh, args[i])
    _Depth.reverse += 1
    try:
        with enable_grad():
            result = f(*args)
    finally:
        _Depth.reverse -= 1
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"{who}: has_aux=True needs f to return (output, aux)")
        out, aux = result
    else:
        out, aux = result, None
    if not isinstance(out, Tensor):
        raise TypeError(f"{who}: f must return a Tensor, got {type(out).__name__}")
    keep = outer or _Depth.reverse > 0 or any(isinstance(leaf, Tracer) for leaf in leaves)
    return out, aux, leaves, traces_of, keep, trees


def _unflatten(trees: list, flat: list) -> list:
    """The gradients in the shape of the inputs they belong to."""
    it = iter(flat)
    return [_tree_map(lambda _: next(it), tree) for tree in trees]


def _pullback(out: Tensor, ct: Any, leaves, traces_of, keep: bool, retain: bool) -> list:
    out_traces, _ = _batch_traces(out, 0)
    phys_out = _lower(out, out_traces)
    seed = _lower(ct, out_traces)
    if isinstance(seed, Tensor) and seed.shape != phys_out.shape:
        raise ShapeError(f"vjp: cotangent shape {fmt_shape(ct.shape)} does not match the output's "
                         f"{fmt_shape(out.shape)}")
    # a recorded backward pass when an outer tape needs it, or when tracers are on this tape (the
    # engine's plain path adds raw arrays); _strip cuts what no outer tape needs
    create = keep and _Mode.grad_enabled or isinstance(seed, Tracer) or isinstance(phys_out, Tracer)
    if phys_out.requires_grad:
        _Depth.reverse += 1
        try:
            grads = _engine_grad(phys_out, leaves, grad_outputs=seed, retain_graph=retain or create or keep,
                                 create_graph=create, allow_unused=True)
        finally:
            _Depth.reverse -= 1
    else:
        grads = [None] * len(leaves)
    results = []
    for g, leaf, traces in zip(grads, leaves, traces_of):
        if g is None:
            g = Tensor._make(np.zeros(leaf.shape, dtype=leaf.dtype))
        if create and not keep:
            g = _strip(g)
        results.append(_raise(g, traces))
    return results


def _grad_below(f: Callable, x: Tensor, ceiling: float) -> Tensor:
    """grad of a scalar f at x, seeing only batch levels older than `ceiling` (the JVP fallback)."""
    out, _, leaves, traces_of, keep, _ = _linearize(f, (x,), (0,), False, ceiling, "grad")
    return _pullback(out, _ones_like(out), leaves, traces_of, keep, retain=False)[0]


def _ones_like(out: Tensor) -> Tensor:
    return Tensor._make(np.ones(out.shape, dtype=out.dtype))


def _check_scalar(out: Tensor, who: str) -> None:
    if out.shape != ():
        raise ShapeError(f"{who}: f must return a scalar (shape ()), got shape {fmt_shape(out.shape)}; "
                         "use vjp or jacrev for non-scalar outputs")


def value_and_grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """f -> a function returning (f(*args), df/dargs[argnums]); ((value, aux), grad) with has_aux (JAX)."""

    @functools.wraps(f)
    def wrapped(*args):
        nums = _argnums(argnums, len(args), "grad")
        out, aux, leaves, traces_of, keep, trees = _linearize(f, args, nums, has_aux, np.inf, "grad")
        _check_scalar(out, "grad")
        grads = _unflatten(trees, _pullback(out, _ones_like(out), leaves, traces_of, keep, retain=False))
        g = grads[0] if isinstance(argnums, int) else tuple(grads)
        value = _strip(out) if not keep else out
        return ((value, aux), g) if has_aux else (value, g)

    return wrapped


def grad(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """f -> df/dargs[argnums] (a tuple for a tuple of argnums); (grad, aux) with has_aux, as torch.func."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapped(*args):
        value, g = vg(*args)
        return (g, value[1]) if has_aux else g

    return wrapped


def vjp(f: Callable, *primals: Any, has_aux: bool = False):
    """(f(*primals), vjp_fn) where vjp_fn(cotangent) is a tuple with one cotangent per primal;
    (out, vjp_fn, aux) with has_aux. vjp_fn may be called many times (and under vmap)."""
    nums = tuple(range(len(primals)))
    out, aux, leaves, traces_of, keep, trees = _linearize(f, primals, nums, has_aux, np.inf, "vjp")

    def vjp_fn(cotangent: Any) -> tuple:
        return tuple(_unflatten(trees, _pullback(out, _as_tensor(cotangent), leaves, traces_of, keep, retain=True)))

    value = _strip(out) if not keep else out
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


# --- forward mode ---------------------------------------------------------------------------------------
def jvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any], has_aux: bool = False):
    """(f(*primals), J tangents) by forward mode: each primitive's JVP rule, one pass."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument of f)")
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    trace = JVPTrace()
    ins = []
    for i, (p, t) in enumerate(zip(primals, tangents)):
        p, t = _as_tensor(p), _as_tensor(t)
        if p.shape != t.shape:
            raise ShapeError(f"jvp: primal {i} has shape {fmt_shape(p.shape)} but its tangent {fmt_shape(t.shape)}")
        if t.dtype != p.dtype and p.dtype.kind == "f":
            t = REGISTRY["cast"](t, dtype=p.dtype)
        ins.append(JVPTracer(trace, p, t))
    result = f(*ins)
    out, aux = result if has_aux else (result, None)

    def primal(y):
        return y.primal if isinstance(y, JVPTracer) and y.trace is trace else y

    def tangent(y):
        if isinstance(y, JVPTracer) and y.trace is trace:
            return y.tangent
        y = _as_tensor(y)
        return Tensor._make(np.zeros(y.shape, dtype=y.dtype))

    outs = (_tree_map(primal, out), _tree_map(tangent, out))
    return outs + (aux,) if has_aux else outs


# --- batching -------------------------------------------------------------------------------------------
def vmap(f: Callable, in_axes: Any = 0, out_axes: Any = 0) -> Callable:
    """f over examples -> f over a batch: in_axes says which axis of each argument is the batch
    (None: shared by every example; one axis applies to every tensor of a tuple/list/dict argument);
    out_axes where the batch goes in the outputs (None: an output that is the same for every example)."""

    @functools.wraps(f)
    def batched(*args):
        axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(axes)} entries for {len(args)} argument(s)")
        size = None
        for a, ax in zip(args, axes):
            for leaf in _leaves(a) if ax is not None else ():
                shape = _as_tensor(leaf).shape
                if not -len(shape) <= ax < len(shape):
                    raise ShapeError(f"vmap: in_axes {ax} is out of range for an argument of shape {fmt_shape(shape)}")
                n = shape[ax]
                if size is not None and n != size:
                    raise ShapeError(f"vmap: batch sizes differ across arguments ({size} vs {n}, "
                                     f"shape {fmt_shape(shape)})")
                size = n
        if size is None:
            raise ValueError("vmap: at least one argument must be batched (in_axes not all None)")
        trace = BatchTrace(size)

        def wrap(ax):
            def one(x):
                x = _as_tensor(x)
                return BatchTracer(trace, x, ax % x.ndim)
            return one

        ins = [a if ax is None else _tree_map(wrap(ax), a) for a, ax in zip(args, axes)]
        B.ACTIVE.append(trace)
        try:
            out = f(*ins)
        finally:
            B.ACTIVE.remove(trace)
        return _unbatch(out, out_axes, trace)

    return batched


def _unbatch(out: Any, out_axes: Any, trace: BatchTrace) -> Any:
    if isinstance(out_axes, (tuple, list)) and isinstance(out, (tuple, list)):
        return type(out)(_unbatch(o, ax, trace) for o, ax in zip(out, out_axes))

    def one(y):
        y = _as_tensor(y)
        batched = isinstance(y, BatchTracer) and y.trace is trace
        if out_axes is None:  # the output is the same for every example
            if batched:
                raise ValueError(f"vmap: out_axes=None for an output that differs between examples "
                                 f"(per-example shape {fmt_shape(y.shape)})")
            return y
        value, d = (y.value, y.bdim) if batched else (B.broadcast_at(y, 0, trace.size), 0)
        return B.moveaxis(value, d, out_axes % len(value.shape))

    return _tree_map(one, out)


# --- Jacobians and Hessians -----------------------------------------------------------------------------
def _basis(shape: tuple, dtype) -> Tensor:
    n = int(np.prod(shape))
    return Tensor(np.eye(n, dtype=dtype).reshape((n,) + tuple(shape)))


def jacrev(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """Jacobian by reverse mode: one batched backward pass over the rows (vmap of vjp).
    Shape: output shape + input shape."""

    @functools.wraps(f)
    def jac(*args):
        nums = _argnums(argnums, len(args), "jacrev")
        args = list(args)

        def g(*xs):
            for i, x in zip(nums, xs):
                args[i] = x
            return f(*args)

        res = vjp(g, *[args[i] for i in nums], has_aux=has_aux)
        out, pull = res[0], res[1]
        rows = vmap(pull)(_basis(out.shape, out.dtype))
        jacs = tuple(REGISTRY["reshape"](r, shape=tuple(out.shape) + tuple(r.shape[1:])) for r in rows)
        j = jacs[0] if isinstance(argnums, int) else jacs
        return (j, res[2]) if has_aux else j

    return jac


def jacfwd(f: Callable, argnums: ArgNums = 0, has_aux: bool = False) -> Callable:
    """Jacobian by forward mode: one batched JVP over the input basis (vmap of jvp).
    Shape: output shape + input shape."""

    @functools.wraps(f)
    def jac(*args):
        nums = _argnums(argnums, len(args), "jacfwd")
        args = [_as_tensor(a) for a in args]
        jacs, aux = [], None
        for i in nums:
            x = args[i]

            def push(v, i=i, x=x):
                def g(xi):
                    return f(*(args[:i] + [xi] + args[i + 1:]))

                res = jvp(g, (x,), (v,), has_aux=has_aux)
                return (res[1], res[2]) if has_aux else res[1]

            cols = vmap(push, out_axes=-1)(_basis(x.shape, x.dtype))
            if has_aux:
                cols, aux = cols[0], _first(cols[1])
            out_shape = tuple(cols.shape[:-1])
            jacs.append(REGISTRY["reshape"](cols, shape=out_shape + tuple(x.shape)))
        j = jacs[0] if isinstance(argnums, int) else tuple(jacs)
        return (j, aux) if has_aux else j

    return jac


def _first(batched_aux: Any) -> Any:
    return _tree_map(lambda a: REGISTRY["slice"](a, index=(0,)), batched_aux)


def hessian(f: Callable, argnums: ArgNums = 0) -> Callable:
    """Second derivatives, forward-over-reverse: jacfwd(jacrev(f))."""
    return jacfwd(jacrev(f, argnums), argnums)


def hvp(f: Callable, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Tensor, Any]:
    """(f(*primals), H v): forward mode over the gradient (one JVP of one backward pass), never the
    full Hessian. Like torch.autograd.functional.hvp; v is one tangent per primal."""
    (value, _), (_, hv) = jvp(value_and_grad(f, argnums=tuple(range(len(primals)))), tuple(primals), tuple(tangents))
    return value, hv[0] if len(primals) == 1 else hv
