"""Anomaly mode: find the first op that makes a NaN or Inf, and the user's line that called it.

`detect_anomaly()` (or TAPEGRAD_ANOMALY=1 in the environment) checks every op's output in forward
and every gradient in backward, and raises at the first non-finite value with the op, its input
shapes, statistics and the source line where it was recorded. It also explains the "where trap":
`where(mask, f(x), g(x))` whose branch not taken has an infinite derivative, so 0 * inf = NaN.
Source lines are captured only in this mode: a frame walk on every op costs more than the op.
"""
from __future__ import annotations

import os
import sys
import zlib
from typing import Any

import numpy as np

from .errors import TapegradError, fmt_shape
from .graph import Node, _Mode
from .tensor import Tensor

_PACKAGES = tuple(
    os.path.dirname(os.path.abspath(p)) + os.sep
    for p in (__file__, os.path.join(os.path.dirname(__file__), "..", "nn", "x"),
              os.path.join(os.path.dirname(__file__), "..", "optim", "x"))
)


class AnomalyError(TapegradError, FloatingPointError):
    """A NaN or Inf appeared; the message says where it was made."""


def user_frame(skip: int = 1) -> str | None:
    """'file:line in function: code' of the innermost frame outside autograd, nn and optim."""
    frame = sys._getframe(skip)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_PACKAGES):
            import linecache

            code = linecache.getline(filename, frame.f_lineno).strip()
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}: {code}"
        frame = frame.f_back
    return None


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
    """Context manager (and decorator) that raises AnomalyError at the first NaN/Inf."""

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = check_nan

    def __enter__(self) -> "detect_anomaly":
        self._prev_record = _Mode.record_hook
        self._prev_backward = _Mode.backward_hook
        self._from_where: dict[Node, tuple[Node, int]] = {}
        _Mode.record_hook = self._record
        _Mode.backward_hook = self._backward
        return self

    def __exit__(self, *exc) -> None:
        _Mode.record_hook = self._prev_record
        _Mode.backward_hook = self._prev_backward

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper

    # forward: runs after each recorded op
    def _record(self, node: Node, out: np.ndarray) -> None:
        node.source = user_frame(2)
        node.extra = _fingerprints(node.args)  # catches writes through .data, which bump no version
        if self._prev_record is not None:
            self._prev_record(node, out)
        if self.check_nan and out.dtype.kind == "f" and not np.isfinite(out).all():
            raise AnomalyError(
                f"anomaly: '{node.prim.name}' produced non-finite values in forward: {_stats(out)}; "
                f"input shapes {_input_shapes(node)}{_where_from(node)}"
            )

    # backward: runs before and after each node's VJPs
    def _backward(self, node: Node, phase: str, value: Any) -> None:
        if self._prev_backward is not None:
            self._prev_backward(node, phase, value)
        if phase == "start" and isinstance(node.extra, _Fingerprints):
            _check_fingerprints(node)
        if phase != "end" or not self.check_nan:
            return
        for i, (arg, g) in enumerate(zip(node.args, value)):
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
    for i, (a, crc) in enumerate(zip(node.args, node.extra)):
        if crc is not None and zlib.crc32(np.ascontiguousarray(a.data).view(np.uint8)) != crc:
            from .errors import GraphError

            raise GraphError(
                f"backward: argument {i} (shape {fmt_shape(a.shape)}) of '{node.prim.name}' was changed after "
                f"'{node.prim.name}' saved it{' at ' + node.source if node.source else ''}, by a write that "
                "bypasses version counting (through .data or NumPy); its gradient would be wrong. Change a "
                "copy, or make the change before the op or after backward()."
            )


def _from_environment() -> None:
    """TAPEGRAD_ANOMALY=1 turns anomaly mode on for the whole process."""
    if os.environ.get("TAPEGRAD_ANOMALY", "").strip() not in ("", "0", "false", "False"):
        detect_anomaly().__enter__()


# --- in-place edits: remember who changed a tensor, so backward can say so ---------------------------
import weakref  # noqa: E402

# keyed by id: Tensor's == is elementwise, so it cannot be a WeakKeyDictionary key; entries leave
# with their tensor through the weakref callback.
_INPLACE_LOG: dict[int, tuple[weakref.ref, str, str | None]] = {}


def note_inplace(t: Tensor, op: str) -> None:
    """Record that `op` changed `t` in place (and from which user line); in-place ops are rare."""
    t._version += 1
    key = id(t)
    _INPLACE_LOG[key] = (weakref.ref(t, lambda _, key=key: _INPLACE_LOG.pop(key, None)), op, user_frame(2))


def inplace_note(t: Tensor) -> tuple[str, str | None] | None:
    entry = _INPLACE_LOG.get(id(t))
    if entry is None or entry[0]() is not t:
        return None
    return entry[1], entry[2]
