"""Anomaly mode: find the first op that makes a NaN or Inf, and the user's line that called it.

`detect_anomaly()` (or TAPEGRAD_ANOMALY=1 in the environment) checks every op's output in forward
and every gradient in backward, and raises at the first non-finite value with the op, its input
shapes, statistics and the source line where it was recorded. It also explains the "where trap":
`where(mask, f(x), g(x))` whose branch not taken has an infinite derivative, so 0 * inf = NaN.
Source lines are captured only in this mode: a frame walk on every op costs more than the op.
"""
from __future__ import annotations

import functools
import os
import zlib
from typing import Any

import numpy as np

from .errors import TapegradError, fmt_shape
from .graph import Node, mark_modified, last_modification, observe, set_modification_source, user_frame
from .tensor import Tensor


class AnomalyError(TapegradError, FloatingPointError):
    """A NaN or Inf appeared; the message says where it was made."""


def _stats(a: np.ndarray) -> str:
    finite = a[np.isfinite(a)]
    span = f"min {finite.min():.4g}, max {finite.max():.4g}" if finite.size else "no finite values"
    return (f"shape {fmt_shape(a.shape)}, {int(np.isnan(a).sum())} NaN, {int(np.isinf(a).sum())} Inf "
            f"of {a.size}; finite {span}")


def _input_shapes(node: Node) -> str:
    shapes = [fmt_shape(a.shape) for a in (node.args or ()) if isinstance(a, Tensor)]
    return ", ".join(shapes) or "none"


def _where_from(node: Node) -> str:
    return f"\n  recorded at {node.source}" if node.source else ""


class detect_anomaly:
    """Context manager (and decorator) that raises AnomalyError at the first NaN/Inf.

    It subscribes to the engine's events (`autograd.graph.observe`): every recorded op's output,
    every node's gradients, every in-place change (whose user line it keeps for error messages).
    """

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan
        self._from_where: dict[Node, tuple[Node, int]] = {}
        self._observer = observe(on_apply=self._record, on_vjp_start=self._vjp_start, on_vjp_end=self._vjp_end,
                                 on_modified=self._modified)

    def __enter__(self) -> "detect_anomaly":
        self._from_where = {}
        self._observer.subscribe()
        return self

    def __exit__(self, *exc) -> None:
        self._observer.unsubscribe()

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper

    # forward: runs after each op
    def _record(self, prim, args, params, out: np.ndarray, node: Node | None, seconds: float) -> None:
        if node is None:
            return
        if node.source is None:
            node.source = user_frame(3)
        node.fingerprints = _fingerprints(node.args)  # catches writes through .data, which bump no version
        if self.check_nan and out.dtype.kind == "f" and not np.isfinite(out).all():
            raise AnomalyError(
                f"anomaly: '{node.prim.name}' produced non-finite values in forward: {_stats(out)}; "
                f"input shapes {_input_shapes(node)}{_where_from(node)}"
            )

    def _modified(self, tensor: Tensor, op: str | None) -> None:
        note = last_modification(tensor)
        if note is not None and note[1] is None:
            set_modification_source(tensor, user_frame(3))

    # backward: runs before and after each node's VJPs
    def _vjp_start(self, node: Node, g: Any) -> None:
        if node.fingerprints is not None:
            _check_fingerprints(node)

    def _vjp_end(self, node: Node, results: Any) -> None:
        if not self.check_nan:
            return
        for i, (arg, g) in enumerate(zip(node.args, results)):
            if g is None:
                continue
            if node.prim.name == "where" and isinstance(arg, Tensor) and arg._node is not None:
                self._from_where[arg._node] = (node, i)
            data = g.data
            if data.dtype.kind == "f" and not np.isfinite(data).all():
                raise AnomalyError(self._backward_message(node, i, data))

    def _backward_message(self, node: Node, i: int, grad: np.ndarray) -> str:
        msg = (f"anomaly: the gradient that '{node.prim.name}' passes to its argument {i} holds non-finite "
               f"values: {_stats(grad)}; input shapes {_input_shapes(node)}{_where_from(node)}")
        if node in self._from_where:
            where_node, branch = self._from_where[node]
            side = "x (taken where the mask is True)" if branch == 1 else "y (taken where the mask is False)"
            msg += (
                f"\n  where trap: this '{node.prim.name}' feeds branch {side} of a 'where'"
                f"{' recorded at ' + where_node.source if where_node.source else ''}. where() sends a zero "
                "gradient to the positions it did not take, but this op's derivative is infinite there, "
                "and 0 * inf = NaN. Make the input safe before the op, e.g. "
                "where(mask, f(where(mask, x, safe_value)), g(x))."
            )
        return msg


class _Fingerprints(tuple):
    """crc32 of each saved input array at record time (None for non-arrays)."""


def _fingerprints(args) -> _Fingerprints:
    return _Fingerprints(zlib.crc32(np.ascontiguousarray(a.data).view(np.uint8)) if isinstance(a, Tensor) else None
                         for a in args)


def _check_fingerprints(node: Node) -> None:
    if sum(a._version for a in node.args if isinstance(a, Tensor)) != node.versions:
        return  # a counted in-place change: the engine's own error names who changed it
    for i, (a, crc) in enumerate(zip(node.args, node.fingerprints)):
        if crc is not None and zlib.crc32(np.ascontiguousarray(a.data).view(np.uint8)) != crc:
            from .errors import GraphError

            raise GraphError(
                f"backward: argument {i} (shape {fmt_shape(a.shape)}) of '{node.prim.name}' was changed after "
                f"'{node.prim.name}' saved it{' at ' + node.source if node.source else ''}, by a write that "
                "bypasses version counting (through .data or NumPy); its gradient would be wrong. Change a "
                "copy, or make the change before the op or after backward()."
            )


_ENVIRONMENT_ANOMALY: detect_anomaly | None = None


def from_environment() -> detect_anomaly | None:
    """TAPEGRAD_ANOMALY=1 subscribes anomaly mode for the whole process (no context is left open)."""
    global _ENVIRONMENT_ANOMALY
    if os.environ.get("TAPEGRAD_ANOMALY", "").strip() in ("", "0", "false", "False"):
        return None
    if _ENVIRONMENT_ANOMALY is None:
        _ENVIRONMENT_ANOMALY = detect_anomaly()
        _ENVIRONMENT_ANOMALY._observer.subscribe()
    return _ENVIRONMENT_ANOMALY


# Deprecated names, kept for one release: in-place changes go through autograd.graph.mark_modified.
def note_inplace(t: Tensor, op: str) -> None:
    mark_modified(t, op, where=user_frame(2))


inplace_note = last_modification
