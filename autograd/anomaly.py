"""Anomaly mode: find the first op that makes a NaN or Inf, and the user's line that called it.

`detect_anomaly()` (or TAPEGRAD_ANOMALY=1 in the environment) checks every op's output in forward
and every gradient in backward, and raises at the first non-finite value with the op, its input
shapes, statistics and the source line where it was recorded. It also explains the "where trap":
`where(mask, f(x), g(x))` whose branch not taken has an infinite or NaN derivative, so 0 * inf = NaN.
Source lines are captured only in this mode: a frame walk on every op costs more than the op.

A non-finite forward value is reported when it flows on: into any op except a `where` that
discards it, at the start of backward, or at the end of the `detect_anomaly` block. A NaN that only
a `where` throws away (`where(x > 0, sqrt(x), 0)` at x < 0) is therefore not an error in forward;
backward then explains the trap when its zero gradient times the NaN derivative makes a NaN.

NumPy's floating-point RuntimeWarnings from inside primitives are silenced (PyTorch's choice): they
would point into tapegrad's files, not at the user's line; anomaly mode finds the op and the line.
"""
from __future__ import annotations

import functools
import os
import warnings
import weakref
import zlib
from typing import Any

import numpy as np

from .errors import TapegradError, fmt_shape
from .graph import Node, module_of, mark_modified, last_modification, observe, set_modification_source, user_frame
from .tensor import Tensor


class AnomalyError(TapegradError, FloatingPointError):
    """A NaN or Inf appeared; the message says where it was made."""


#: NumPy's "invalid value encountered in log" and friends, raised inside a primitive's forward or
#: VJP, would be attributed to tapegrad's own files. Like PyTorch, tapegrad makes NaN/Inf silently;
#: `detect_anomaly()` names the op and the user's line. Only warnings from these modules are ignored.
SILENCED_MODULES = r"(autograd|nn)\."


def silence_numpy_warnings(enabled: bool = True) -> None:
    """Ignore (True, the default at import) or show again (False) NumPy's floating-point
    RuntimeWarnings raised inside tapegrad's primitives. A warnings filter costs nothing per op."""
    warnings.filterwarnings("ignore" if enabled else "default", category=RuntimeWarning, module=SILENCED_MODULES)


silence_numpy_warnings()


def _stats(a: np.ndarray) -> str:
    finite = a[np.isfinite(a)]
    span = f"finite min {finite.min():.4g}, max {finite.max():.4g}" if finite.size else "no finite values"
    return (f"shape {fmt_shape(a.shape)}, {int(np.isnan(a).sum())} NaN, {int(np.isinf(a).sum())} Inf "
            f"of {a.size}; {span}")


def _input_shapes(node: Node) -> str:
    shapes = [fmt_shape(a.shape) for a in (node.args or ()) if isinstance(a, Tensor)]
    return ", ".join(shapes) or "none"


def _where_from(node: Node) -> str:
    return f"\n  recorded at {node.source}" if node.source else ""


def name_parameters(module: Any) -> None:
    """Give each parameter of `module` without a name its qualified name (`block2.bn.weight`), so
    in-place errors ("changed by 'SGD.step'") and drawings say which parameter. Names already set stay."""
    for qual, p in module.named_parameters():
        if getattr(p, "name", None) is None:
            p.name = qual


#: non-finite forward values waiting for a consumer; beyond this many the oldest is reported
_MAX_PENDING = 64


class detect_anomaly:
    """Context manager (and decorator) that raises AnomalyError at the first NaN/Inf.

    It subscribes to the engine's events (`autograd.graph.observe`): every recorded op's output,
    every node's gradients, every in-place change (whose user line it keeps for error messages).
    module: a model whose parameters get their qualified names (`name_parameters`), so an in-place
    error says which parameter `SGD.step` changed.
    """

    def __init__(self, check_nan: bool = True, module: Any = None) -> None:
        self.check_nan = check_nan
        self.module = module
        self._from_where: dict[Node, tuple[Node, int]] = {}
        # forward non-finite outputs not yet reported: node -> message (strong refs: a NaN made and
        # dropped inside the block is still reported at its end); a where() that discards it removes it
        self._pending: dict[Node, str] = {}
        # non-finite outputs that only a where() discarded: node -> (where node, branch, positions)
        self._trapped: "weakref.WeakKeyDictionary[Node, tuple[Node, int, int]]" = weakref.WeakKeyDictionary()
        self._observer = observe(on_apply=self._record, on_vjp_start=self._vjp_start, on_vjp_end=self._vjp_end,
                                 on_modified=self._modified)

    def __enter__(self) -> "detect_anomaly":
        self._from_where, self._pending = {}, {}
        if self.module is not None:
            name_parameters(self.module)
        self._observer.subscribe()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self._observer.unsubscribe()
        if exc_type is None:
            self._raise_pending()
        self._pending = {}

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan, self.module):
                return fn(*args, **kwargs)

        return wrapper

    # forward: runs after each op
    def _record(self, prim, args, params, out: np.ndarray, node: Node | None, seconds: float) -> None:
        if node is None:
            return
        if node.source is None:
            node.source = user_frame(3)
        node.fingerprints = _fingerprints(node.args)  # catches writes through .data, which bump no version
        if not self.check_nan:
            return
        if self._pending:
            self._consume_pending(node, out)
        if out.dtype.kind == "f" and not np.isfinite(out).all():
            if len(self._pending) >= _MAX_PENDING:  # process-wide mode has no block end: report the oldest
                self._raise_pending(next(iter(self._pending)))
            self._pending[node] = (
                f"anomaly: '{node.prim.name}'{module_of(node)} produced non-finite values in forward: {_stats(out)}; "
                f"input shapes {_input_shapes(node)}{_where_from(node)}"
            )

    def _consume_pending(self, node: Node, out: np.ndarray) -> None:
        """A pending non-finite value flows into `node`: an error, unless `node` is a where() that
        discards every non-finite position (then backward may meet the where trap; remember it)."""
        for i, a in enumerate(node.args):
            src = a._node if isinstance(a, Tensor) else None
            if src is None or src not in self._pending:
                continue
            hidden = _discarded_by_where(node, i, out)
            if hidden is None:
                self._raise_pending(src)
            self._trapped[src] = (node, i, hidden)  # kept weakly, for backward's explanation
            del self._pending[src]

    def _raise_pending(self, only: Node | None = None) -> None:
        message = self._pending[only] if only is not None else next(iter(self._pending.values()), None)
        if message is not None:
            self._pending.clear()
            raise AnomalyError(message)

    def _modified(self, tensor: Tensor, op: str | None) -> None:
        note = last_modification(tensor)
        if note is not None and note[1] is None:
            set_modification_source(tensor, user_frame(3))

    # backward: runs before and after each node's VJPs
    def _vjp_start(self, node: Node, g: Any) -> None:
        if self._pending:
            self._raise_pending()
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
        msg = (f"anomaly: the gradient that '{node.prim.name}'{module_of(node)} passes to its argument {i} holds "
               f"non-finite values: {_stats(grad)}; input shapes {_input_shapes(node)}{_where_from(node)}")
        trapped = self._trapped.get(node)
        if node in self._from_where or trapped is not None:
            where_node, branch = (trapped[0], trapped[1]) if trapped is not None else self._from_where[node]
            side = "x (taken where the mask is True)" if branch == 1 else "y (taken where the mask is False)"
            value = (f"Its forward value was already non-finite at {trapped[2]} position(s) that where() discarded "
                     "(e.g. sqrt or log of a negative number), so its derivative there is NaN too; where() sends "
                     "those positions a zero gradient, and 0 * NaN = NaN."
                     if trapped is not None else
                     "where() sends a zero gradient to the positions it did not take, but this op's derivative is "
                     "infinite there, and 0 * inf = NaN.")
            msg += (
                f"\n  where trap: this '{node.prim.name}' feeds branch {side} of a 'where'"
                f"{' recorded at ' + where_node.source if where_node.source else ''}. {value} Fix: make the input "
                "safe before the op, e.g. safe = where(mask, x, 1.0); where(mask, f(safe), g(x))."
            )
        return msg


def _discarded_by_where(node: Node, i: int, out: np.ndarray) -> int | None:
    """How many non-finite positions of branch argument i a where() discards, or None when it keeps
    at least one of them (or `node` is not a where, or i is its mask)."""
    if node.prim.name != "where" or i == 0:
        return None
    mask = node.args[0].data if isinstance(node.args[0], Tensor) else np.asarray(node.args[0])
    bad = np.broadcast_to(~np.isfinite(node.args[i].data), out.shape)
    taken = np.broadcast_to(mask if i == 1 else ~mask.astype(bool), out.shape)
    if (bad & taken).any():
        return None
    return int(bad.sum())


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
                f"backward: argument {i}{' ' + repr(a.name) if a.name else ''} (shape {fmt_shape(a.shape)}) of "
                f"'{node.prim.name}'{module_of(node)} was changed after "
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
