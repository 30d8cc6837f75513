"""The registry: every primitive is declared once here-through, with its forward, VJPs and test domain.

A primitive is: a forward on ndarrays (one NumPy call where possible), a VJP for each differentiable
argument written in Tensor operations (so VJPs are themselves differentiable: grad-of-grad is free),
and what the test generator needs to draw valid inputs. Everything else in tapegrad is composed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from . import parallel
from .errors import DtypeError, ShapeError, TapegradError, fmt_shape
from .graph import OBSERVERS, Node, _Mode
from .tensor import Tensor
from .tracer import TRACED, Lifted
from .tracer import apply as _transform

_new_tensor = object.__new__

#: name -> Primitive, in declaration order. Tests iterate over this.
REGISTRY: dict[str, "Primitive"] = {}

VJP = Callable[..., Any]


# --- replay side table (autograd.capture): how a primitive runs while a trace records -----------------
class REPLAY:
    """While `autograd.trace` records, `recorder` is set and `forward(prim, args, arrays, params)` runs a
    primitive's forward as one recorded equation; `vjp(node, g, create_graph, apply)` runs its VJPs.
    Read only when an observer is subscribed, so untraced code pays nothing."""

    recorder: Any = None
    forward: Callable[..., Any] | None = None
    vjp: Callable[..., Any] | None = None


#: name -> `write(*arrays, out=buffer, **params)`: the forward of a primitive written into a buffer the
#: replay owns (NumPy's `out=`). A primitive whose forward is a ufunc gets one automatically (see
#: `out_writer`); others register here. Replay falls back to the plain forward without one.
OUT_WRITERS: dict[str, Callable[..., Any]] = {}


def out_writer(prim: "Primitive") -> Callable[..., Any] | None:
    """How replay writes `prim`'s forward into a given buffer, or None if it cannot."""
    writer = OUT_WRITERS.get(prim.name)
    if writer is None and isinstance(prim.forward, np.ufunc):
        writer = prim.forward
    return writer


def _register_out_writers() -> None:
    def sigmoid(x, out):
        np.multiply(x, 0.5, out=out)
        np.tanh(out, out=out)
        out += 1.0
        out *= 0.5
        return out

    # not `sum`: NumPy's reduction into a given out= array adds in another order (not bitwise equal)
    OUT_WRITERS.update({
        "relu": lambda x, out: np.maximum(x, 0, out=out),
        "sigmoid": sigmoid,
    })


_register_out_writers()


@dataclass(eq=False)
class Primitive:
    """A differentiable operation: `prim(*args, **params) -> Tensor`.

    vjps: one function per positional argument, `vjp(g, ans, *args, **params) -> Tensor`, or None for
        an argument that is never differentiable; `g` is the output cotangent, `ans` the output
        (a Tensor when `save_output` is set, else None). A single callable instead of a tuple is a
        VJP for variadic primitives: `vjp(g, ans, *args, **params) -> tuple`, one entry per argument.
        Either form is adapted once, at declaration, into `apply_vjps`, the one call the engine makes.
    domain: per positional argument, the values tests draw: 'real', 'positive', 'nonzero', 'unit'
        (open interval -1..1), 'bool' (a mask, not differentiable), or 'const' (not an array).
    examples: for primitives whose arguments are not plain broadcastable arrays: a function
        `examples(draw, strategies) -> (args, params)` used by `autograd.testing`.
    transpose: for a linear primitive, the name of the primitive that is its transpose (and VJP).
    check: optional `check(*arrays, **params)` that raises a clear ShapeError before NumPy does.
    symmetric: a commutative binary primitive whose two VJPs mirror each other (add, mul): for
        op(x, x) backward computes the cotangent once and gives it to both arguments.
    elementwise: each output element depends only on the same (broadcast) element of each argument,
        and the forward can write into out= (a ufunc, or an OUT_WRITERS entry): large calls are
        split over threads (autograd.parallel) and a replay runs chains of them in parts
        (autograd.split).

    Transform rules (autograd.func), in Tensor operations like the VJPs:
    jvp: `jvp(tangents, ans, *args, **params) -> Tensor`, the output tangent; `tangents` has one
        entry per argument, None where it is zero (at least one is not). "linear" says the
        primitive is linear in its one differentiable argument, so its JVP is itself.
    batch: `batch(args, dims, **params) -> (out, out_dim)`: `dims[i]` is the batch axis of
        argument i (None: not batched); the rule calls primitives on the batched arrays.
    jvp_fallback / batch_fallback: declare that the primitive has no such rule on purpose and uses
        the generic one (double VJP; a loop over the batch), which is slower. The coverage test
        fails for a primitive with neither a rule nor a declared fallback.
    """

    name: str
    forward: Callable[..., np.ndarray]
    vjps: Sequence[VJP | None] | VJP
    domain: tuple[str, ...] = ("real",)
    save_output: bool = False
    examples: Callable | None = None
    transpose: str | None = None
    check: Callable | None = None
    smooth: bool = True  # False: second-order finite differences are meaningless (kinks)
    symmetric: bool = False  # batch norm's centered * centered: one full-size multiply less per backward
    elementwise: bool = False  # see the docstring
    doc: str = ""
    # --- transform rules (autograd.func): forward mode and batching --------------------------
    jvp: Callable | str | None = None
    batch: Callable | None = None
    jvp_fallback: bool = False
    batch_fallback: bool = False
    # ------------------------------------------------------------------------------------------
    variadic: bool = field(init=False, default=False)
    arity: int = field(init=False, default=-1)  # positional arguments; -1 for variadic primitives
    # apply_vjps(g, ans, args, params, wanted) -> one cotangent (or None) per argument; wanted[i] says
    # whether argument i needs one. Built once here, so the engine has one calling convention.
    apply_vjps: Callable[..., list] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.variadic = callable(self.vjps) and not isinstance(self.vjps, (tuple, list))
        self.arity = -1 if self.variadic else len(self.vjps)
        self.apply_vjps = _all_at_once(self.vjps) if self.variadic else _per_argument(tuple(self.vjps), self.symmetric)
        if not self.doc:
            self.doc = (self.forward.__doc__ or "").strip().split("\n")[0]
        if self.jvp == "linear":
            self.jvp = _linear_jvp(self)
        if self.elementwise and out_writer(self) is None:
            raise ValueError(f"defprim({self.name!r}): elementwise=True needs a forward that takes out= "
                             "(a NumPy ufunc) or an entry in OUT_WRITERS")

    def __call__(self, *args: Any, **params: Any) -> Tensor:
        # The hot path of every model: written flat, one pass over the args, no helper calls.
        arrays = []
        needs_grad = False
        versions = 0
        for a in args:
            if isinstance(a, Tensor):
                arrays.append(a.data)
                versions += a._version
                if a.requires_grad:
                    needs_grad = True
            else:
                arrays.append(a)
        if versions >= TRACED:  # a transform's tracer is among the arguments (one test for all of them)
            return _transform(self, args, params)
        if len(arrays) != self.arity and self.arity >= 0:
            raise TypeError(f"{self.name}: takes {self.arity} array argument(s), got {len(arrays)}; "
                            "pass parameters (shape, axis, ...) by keyword")
        if self.check is not None:
            self.check(*arrays, **params)
        observed = _Mode.observed
        if observed:
            t0 = time.perf_counter()
        try:
            if observed and REPLAY.recorder is not None:
                out = REPLAY.forward(self, args, arrays, params)
            elif self.elementwise and parallel._threads > 1 and (  # a large first or last argument
                    type(arrays[0]) is np.ndarray and arrays[0].size >= parallel.ELEMENTWISE_MIN
                    or type(arrays[-1]) is np.ndarray and arrays[-1].size >= parallel.ELEMENTWISE_MIN):
                out = parallel.elementwise(self.forward, out_writer(self), arrays)
            else:
                out = self.forward(*arrays, **params)
        except TapegradError:
            if _lifted(args):
                return _transform(self, args, params)
            raise
        except (ValueError, IndexError, TypeError) as exc:
            if _lifted(args):
                return _transform(self, args, params)
            raise _forward_error(self, exc, arrays, params) from None
        if type(out) is not np.ndarray:
            if _lifted(args):  # a batched array (a batched tensor's .data) passed as a constant
                return _transform(self, args, params)
            out = np.asarray(out)
        t = _new_tensor(Tensor)
        t.data = out
        t.grad = None
        t._version = 0
        t.name = None
        if needs_grad and _Mode.grad_enabled:
            node = t._node = Node(self, args, params, out if self.save_output else None, versions, out.shape, out.dtype)
            t.requires_grad = True
        else:
            node = t._node = None
            t.requires_grad = False
        if observed:
            seconds = time.perf_counter() - t0
            for fn in OBSERVERS.apply:
                fn(self, args, params, out, node, seconds)
        return t

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def _linear_jvp(prim: "Primitive") -> Callable:
    """A linear primitive's JVP is the primitive itself, applied to the tangent (one argument)."""
    def jvp(tangents, ans, x, **params):
        return prim(tangents[0], **params)

    jvp.linear = True
    return jvp


def _lifted(args) -> bool:
    """Whether an argument is a transform's non-Tensor value (a BatchedArray). Tested only when the
    forward did not return an ndarray or failed, which such a value always makes it do, so the
    plain path pays nothing for it."""
    return any(isinstance(a, Lifted) for a in args)


def _per_argument(vjps: tuple, symmetric: bool = False) -> Callable[..., list]:
    def apply_vjps(g, ans, args, params, wanted):
        if symmetric and args[0] is args[1] and wanted[0] and wanted[1]:
            r = vjps[0](g, ans, *args, **params)
            return [r, r]
        return [vjp(g, ans, *args, **params) if w and vjp is not None else None for vjp, w in zip(vjps, wanted)]

    return apply_vjps


def _all_at_once(vjp: VJP) -> Callable[..., list]:
    def apply_vjps(g, ans, args, params, wanted):
        return [r if w else None for r, w in zip(vjp(g, ans, *args, **params), wanted)]

    return apply_vjps


def defprim(
    name: str,
    forward: Callable[..., np.ndarray],
    *vjps: VJP | None,
    vjp: VJP | None = None,
    **options: Any,
) -> Primitive:
    """Declare and register a primitive. Re-declaring a name is an error (one place per primitive)."""
    if name in REGISTRY:
        raise ValueError(f"defprim: a primitive named {name!r} is already registered")
    prim = Primitive(name, forward, vjp if vjp is not None else tuple(vjps), **options)
    REGISTRY[name] = prim
    return prim


def unregister(name: str) -> None:
    """Remove a user primitive (tests register temporary ones)."""
    REGISTRY.pop(name, None)


class temporary_primitive:
    """`with temporary_primitive(name, forward, *vjps, **options) as prim:` registers a primitive for
    the block only (a test of a deliberately wrong rule, say) and removes it afterwards."""

    def __init__(self, name: str, forward: Callable[..., np.ndarray], *vjps: VJP | None, **options: Any) -> None:
        self.args = (name, forward, *vjps)
        self.options = options

    def __enter__(self) -> Primitive:
        return defprim(*self.args, **self.options)

    def __exit__(self, *exc: Any) -> None:
        unregister(self.args[0])


def _forward_error(prim: Primitive, exc: Exception, arrays, params) -> TapegradError:
    shapes = ", ".join(fmt_shape(np.shape(a)) for a in arrays if isinstance(a, np.ndarray))
    message = str(exc).split("\n")[0]
    detail = f"{prim.name}: {message} (input shapes {shapes}"
    if params:
        short = ", ".join(f"{k}={v!r}" for k, v in params.items() if len(repr(v)) < 60)
        if short:
            detail += f"; {short}"
    detail += ")"
    if isinstance(exc, TypeError):
        return DtypeError(detail)
    return ShapeError(detail)


def shape_of(a: Any) -> tuple[int, ...]:
    """Shape of a Tensor, an ndarray or a Python scalar."""
    return a.data.shape if isinstance(a, Tensor) else np.shape(a)
