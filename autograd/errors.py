"""Exceptions tapegrad raises on purpose; each message names the operation and the shapes."""
from __future__ import annotations


class TapegradError(Exception):
    """Base of every error tapegrad raises on purpose."""


class ShapeError(TapegradError, ValueError):
    """Operands whose shapes do not fit the operation."""


class DtypeError(TapegradError, TypeError):
    """A dtype the operation cannot take (e.g. gradients of integers)."""


class GraphError(TapegradError, RuntimeError):
    """Misuse of the recorded graph: backward twice, non-scalar backward, unused inputs, in-place edits."""


def fmt_shape(shape) -> str:
    """`(32, 3, 28, 28)` with a trailing comma only where Python needs one."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"
