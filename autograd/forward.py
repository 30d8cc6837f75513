"""Forward mode: a `JVPTracer` carries a primal and its tangent through a function.

Each primitive applied to one runs on the primals as usual, and its JVP rule (declared next to its
VJPs, in Tensor operations) gives the output tangent. A primitive without a rule falls back to the
double-VJP trick: its VJP is linear in the cotangent u, and the VJP of u -> VJP(u) along the
tangent is J t. That costs a recorded backward pass per op, so it is slower (benchmarks/transforms.py).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np

from .primitive import REGISTRY
from .tensor import Tensor
from .tracer import TRACED, Trace, Tracer


_new = object.__new__


class JVPTrace(Trace):
    """One `jvp` invocation."""

    def process(self, prim, args, params):
        primals = list(args)
        tangents = [None] * len(args)
        for i, a in enumerate(args):
            if type(a) is JVPTracer and a.trace is self:
                primals[i] = a.primal
                tangents[i] = a.tangent
        ans = prim(*primals, **params)
        rule = prim.jvp if prim.jvp is not None else double_vjp(prim)
        t = rule(tangents, ans, *primals, **params)
        if len(args) > 1 and t.shape != ans.shape:  # the tangent of an operand that was broadcast
            t = REGISTRY["broadcast_to"](t, shape=ans.shape)
        out = _new(JVPTracer)  # JVPTracer(self, ans, t) without the call overhead (the hot path)
        out.trace, out.primal, out.tangent = self, ans, t
        out.grad = out._node = out.name = None
        out._version = TRACED
        out._taped = False
        return out


class JVPTracer(Tracer):
    """(primal, tangent) at one forward-mode level; reads of its values see the primal."""

    __slots__ = ("primal", "tangent")

    def __init__(self, trace: JVPTrace, primal: Tensor, tangent: Tensor) -> None:
        self._init(trace)
        self.primal = primal
        self.tangent = tangent

    @property
    def requires_grad(self) -> bool:
        return True  # only floating-point values get tangents

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        self._taped = bool(flag)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.primal.shape

    @property
    def dtype(self) -> np.dtype:
        return self.primal.dtype

    @property
    def data(self):
        return self.primal.data

    def __repr__(self) -> str:
        return f"JVPTracer(primal={self.primal!r}, tangent={self.tangent!r})"


def double_vjp(prim):
    """The fallback JVP of a primitive without a rule: J t = d/du <VJP(u), t> (the VJP is linear in u)."""

    def rule(tangents, ans, *primals, **params):
        from .func import _grad_below

        wanted = [t is not None for t in tangents]
        saved = ans if prim.save_output else None

        def pairing(u):
            total = 0.0
            for g, t in zip(prim.apply_vjps(u, saved, primals, params, wanted), tangents):
                if g is not None and t is not None:
                    total = total + REGISTRY["sum"](g * t, axis=None, keepdims=False)
            return total

        zero = Tensor(np.zeros(ans.shape, dtype=ans.dtype))
        return _grad_below(pairing, zero, ceiling=_current_level(tangents))

    return rule


def _current_level(tangents) -> float:
    """Batch levels newer than the tangents' own are not this rule's business."""
    levels = [t.trace.level for t in tangents if isinstance(t, Tracer)]
    return max(levels) + 1 if levels else 1


@contextlib.contextmanager
def double_vjp_only(names=None) -> Iterator[None]:
    """Run forward mode with the double-VJP fallback instead of the declared JVP rules (for the
    benchmark that prices the fallback, and for tests that check the two agree)."""
    prims = [REGISTRY[n] for n in (names or REGISTRY)]
    saved = [p.jvp for p in prims]
    for p in prims:
        p.jvp = None
    try:
        yield
    finally:
        for p, rule in zip(prims, saved):
            p.jvp = rule
