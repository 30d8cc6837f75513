"""The recorded graph: one `Node` per primitive application, plus the grad mode switches.

A node keeps what backward needs and nothing else: the primitive, its arguments (Tensors or
constants), its keyword parameters, the output array when the VJP wants it, and the version of
every input Tensor at record time (so an in-place change before backward is caught).
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _Mode:
    """Process-wide switches read on every op; a class attribute read is the cheapest lookup."""

    grad_enabled: bool = True
    # Hooks installed by anomaly detection / profiling; None on the fast path.
    record_hook: Callable[..., None] | None = None
    backward_hook: Callable[..., None] | None = None
    # The profiler: an object with .forward(prim, seconds, node_or_None, out), timed around forward.
    profile_hook: Any = None
    # The module call stack as a tuple of (qualified name, class name), set by nn.Module.__call__;
    # nodes keep it so drawings can cluster ops by the module that made them.
    scope: tuple[tuple[str, str], ...] = ()


class Node:
    """One recorded primitive application; `Tensor._node` points here for non-leaf tensors."""

    __slots__ = ("prim", "args", "params", "out", "versions", "shape", "dtype", "freed", "source", "extra",
                 "scope", "__weakref__")

    def __init__(self, prim, args: tuple, params: dict, out, versions: int, shape: tuple, dtype) -> None:
        self.prim = prim
        self.shape = shape  # of the output, kept for drawings and error messages after it is gone
        self.dtype = dtype
        self.args = args
        self.params = params
        self.out = out  # output ndarray, kept only when the primitive's VJP reads it
        self.versions = versions  # sum of the input tensors' version counters (they only grow)
        self.freed = False
        self.source = None  # the user's source line, captured only in anomaly/profile modes
        self.extra = None  # room for tools (profile timings); never read by backward
        self.scope = _Mode.scope

    @property
    def name(self) -> str:
        return self.prim.name

    def free(self) -> None:
        """Drop saved values after backward; a second backward through this node then fails clearly."""
        self.args = None
        self.out = None
        self.freed = True

    def __repr__(self) -> str:
        return f"<Node {self.prim.name}{' (freed)' if self.freed else ''}>"


class module_scope:
    """Mark ops recorded inside as made by module `name` (of class `kind`); nests."""

    __slots__ = ("entry", "prev")

    def __init__(self, name: str, kind: str) -> None:
        self.entry = (name, kind)

    def __enter__(self) -> None:
        self.prev = _Mode.scope
        _Mode.scope = self.prev + (self.entry,)

    def __exit__(self, *exc) -> None:
        _Mode.scope = self.prev


class _GradMode:
    """Base for no_grad / enable_grad / set_grad_enabled: context manager and decorator."""

    _target: bool = True

    def __enter__(self) -> None:
        self._prev = _Mode.grad_enabled
        _Mode.grad_enabled = self._target

    def __exit__(self, *exc) -> None:
        _Mode.grad_enabled = self._prev

    def __call__(self, fn: F) -> F:
        target = self._target

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _Mode.grad_enabled
            _Mode.grad_enabled = target
            try:
                return fn(*args, **kwargs)
            finally:
                _Mode.grad_enabled = prev

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Record nothing inside: inference builds no graph and saves no arrays."""

    _target = False


class enable_grad(_GradMode):
    """Record again inside a `no_grad` region."""

    _target = True


class set_grad_enabled(_GradMode):
    """`set_grad_enabled(False)` is `no_grad()`; usable as a call, context manager or decorator."""

    def __init__(self, mode: bool) -> None:
        self._target = bool(mode)
        self._prev = _Mode.grad_enabled
        _Mode.grad_enabled = self._target  # like PyTorch, the plain call takes effect at once

    def __enter__(self) -> None:
        pass  # already switched in __init__; __exit__ restores the mode from before the call

    def __call__(self, fn: F) -> F:
        _Mode.grad_enabled = self._prev  # used as a decorator: the call itself must not switch
        return super().__call__(fn)


def is_grad_enabled() -> bool:
    return _Mode.grad_enabled
