"""The recorded graph: one `Node` per primitive application, the grad mode switches, the observers
that tools subscribe to, and `mark_modified`, the one way to say a tensor changed in place.

A node keeps what backward needs and nothing else: the primitive, its arguments (Tensors or
constants), its keyword parameters, the output array when the VJP wants it, and the version of
every input Tensor at record time (so an in-place change before backward is caught).

Tools (anomaly mode, the profiler, backward recording, tracing) never take over a slot of the
engine: they subscribe to events with `observe(...)`, in any number and any nesting order. With no
observer installed the engine reads one flag per op and does nothing else.
"""
from __future__ import annotations

import functools
import os
import sys
import weakref
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _Mode:
    """Process-wide switches read on every op; a class attribute read is the cheapest lookup."""

    grad_enabled: bool = True
    # True while any observer is subscribed: the one flag the hot path reads (see `observe`).
    observed: bool = False
    # The module call stack as a tuple of (qualified name, class name), set by nn.Module.__call__;
    # nodes keep it so drawings can cluster ops by the module that made them.
    scope: tuple[tuple[str, str], ...] = ()


class Node:
    """One recorded primitive application; `Tensor._node` points here for non-leaf tensors."""

    __slots__ = ("prim", "args", "params", "out", "versions", "shape", "dtype", "freed", "source",
                 "fingerprints", "scope", "__weakref__")

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
        self.fingerprints = None  # anomaly mode's checksums of the saved inputs; never read by backward
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


def module_of(node: Node) -> str:
    """' in module block2.bn (BatchNorm2d)' for an op recorded inside a module call, else ''."""
    named = [(qual, kind) for qual, kind in node.scope if qual]
    if not named:
        return f" in the root module ({node.scope[-1][1]})" if node.scope else ""
    qual, kind = named[-1]
    return f" in module {qual} ({kind})"


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


# --- observers ----------------------------------------------------------------------------------
class _Observers:
    """One subscriber list per event; the engine calls each subscriber in subscription order.

    apply(prim, args, params, out, node, seconds): after every primitive's forward, recorded or not
        (`node` is None when nothing was recorded; `seconds` is the forward's wall time).
    vjp_start(node, g) / vjp_end(node, results): around each node's VJPs in backward.
    modified(tensor, op): after `mark_modified` bumped a tensor's version.
    """

    EVENTS = ("apply", "vjp_start", "vjp_end", "modified")

    def __init__(self) -> None:
        self.apply: list[Callable[..., None]] = []
        self.vjp_start: list[Callable[..., None]] = []
        self.vjp_end: list[Callable[..., None]] = []
        self.modified: list[Callable[..., None]] = []

    def any(self) -> bool:
        return bool(self.apply or self.vjp_start or self.vjp_end or self.modified)


OBSERVERS = _Observers()


class observe:
    """Subscribe callbacks to engine events for the duration of a `with` block (or until `unsubscribe`).

        with observe(on_apply=lambda prim, args, params, out, node, seconds: print(prim.name)):
            model(x)

    Observers nest in any order and each sees every event; leaving a block removes exactly the
    callbacks it added. `subscribe()`/`unsubscribe()` do the same without a block, for process-wide
    tools such as TAPEGRAD_ANOMALY=1.
    """

    def __init__(
        self,
        *,
        on_apply: Callable[..., None] | None = None,
        on_vjp_start: Callable[..., None] | None = None,
        on_vjp_end: Callable[..., None] | None = None,
        on_modified: Callable[..., None] | None = None,
    ) -> None:
        self._callbacks = [(event, fn) for event, fn in zip(
            _Observers.EVENTS, (on_apply, on_vjp_start, on_vjp_end, on_modified)) if fn is not None]
        self.active = False

    def subscribe(self) -> "observe":
        if not self.active:
            for event, fn in self._callbacks:
                getattr(OBSERVERS, event).append(fn)
            self.active = True
            _Mode.observed = True
        return self

    def unsubscribe(self) -> None:
        if self.active:
            for event, fn in self._callbacks:
                subscribers = getattr(OBSERVERS, event)
                for i in range(len(subscribers) - 1, -1, -1):  # the latest identical entry: ours
                    if subscribers[i] is fn:
                        del subscribers[i]
                        break
            self.active = False
            _Mode.observed = OBSERVERS.any()

    def __enter__(self) -> "observe":
        return self.subscribe()

    def __exit__(self, *exc: Any) -> None:
        self.unsubscribe()


# --- in-place changes -----------------------------------------------------------------------------
# Who changed a tensor last, keyed by id (Tensor's == is elementwise, so no WeakKeyDictionary);
# entries leave with their tensor through the weakref callback.
_MODIFIED_BY: dict[int, list] = {}

_TOOL_DIRS = tuple(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", d)) + os.sep
                   for d in ("autograd", "nn", "optim"))
_SKIPPED = _TOOL_DIRS + (os.path.dirname(os.path.abspath(__import__("numpy").__file__)) + os.sep,)


def user_frame(skip: int = 1) -> str | None:
    """'file:line in function: code' of the innermost frame outside autograd, nn, optim and NumPy."""
    frame = sys._getframe(skip)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_SKIPPED):
            import linecache

            code = linecache.getline(filename, frame.f_lineno).strip()
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}: {code}"
        frame = frame.f_back
    return None


def mark_modified(tensor: Any, op: str | None = None, *, where: str | None = None) -> None:
    """Say that `tensor`'s data was changed in place by `op`: the one way to keep version counters
    right. Backward then refuses to use a value saved before the change, and names `op`.

    `where` is the user's line, when the caller knows it cheaply; Tensor's in-place methods pass it,
    optimizers (every parameter, every step) do not, and anomaly mode fills it in.
    """
    tensor._version += 1
    if op is not None:
        key = id(tensor)
        entry = _MODIFIED_BY.get(key)
        if entry is None or entry[0]() is not tensor:
            _MODIFIED_BY[key] = [weakref.ref(tensor, lambda _, key=key: _MODIFIED_BY.pop(key, None)), op, where]
        else:
            entry[1], entry[2] = op, where
    if _Mode.observed:
        for fn in OBSERVERS.modified:
            fn(tensor, op)


def last_modification(tensor: Any) -> tuple[str, str | None] | None:
    """(op, user line or None) of the latest `mark_modified(tensor, op)`, or None."""
    entry = _MODIFIED_BY.get(id(tensor))
    if entry is None or entry[0]() is not tensor:
        return None
    return entry[1], entry[2]


def set_modification_source(tensor: Any, where: str) -> None:
    """Attach the user's line to the latest modification (anomaly mode calls this)."""
    entry = _MODIFIED_BY.get(id(tensor))
    if entry is not None and entry[0]() is tensor:
        entry[2] = where
