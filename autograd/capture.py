"""Capture: run a function eagerly once and record every array operation it performs into a Program.

Recording works at two levels, so that a training step written for eager mode is captured whole:

- every primitive application is one equation (the primitive, its input variables, its parameters);
- every NumPy call made *outside* primitives on traced data (a VJP's mask, batch norm's running
  statistics, a loss's target weights, gradient clipping) is one equation too. The data of every
  traced Tensor is a `Traced` array, an ndarray subclass that records the ufuncs, array functions and
  methods applied to it. While recording, NumPy's array constructors (`np.zeros`, `np.asarray`,
  `np.array`, ...) return traced arrays, so a buffer filled in place from traced values is captured.

Python code that reads a traced value back (`bool(t)`, `t.item()`, `float(t)`, `int(t)`) cannot be
captured: in the user's code it raises `TraceError` naming the line; inside tapegrad (a shape check on
labels, a tie test in a VJP) the value becomes a *guard* that replay re-checks. A VJP that reads a
value runs as one opaque equation instead. Optimizer updates are opaque equations by design
(`opaque()`): replay calls the optimizer's own update, reading its hyperparameters at that time.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

from .errors import TapegradError
from .graph import _TOOL_DIRS
from .primitive import REPLAY
from .program import Eqn, Program, Var
from .tensor import Tensor


class TraceError(TapegradError, RuntimeError):
    """A traced function read a traced value back into Python; the recorded Program would be wrong."""


class _NeedsOpaque(Exception):
    """Raised inside a VJP that reads a traced value: the engine then records that VJP whole."""


_NUMPY_DIR = os.path.dirname(np.__file__) + os.sep
_HERE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SHIMS = tuple(_HERE + f for f in ("capture.py", "tensor.py", "program.py", "compiler.py"))


# --- the recorder ---------------------------------------------------------------------------------
class Recorder:
    """The Program under construction, and the switch that suspends recording inside primitives."""

    def __init__(self) -> None:
        self.program = Program()
        self.suspended = 0
        self.vjp_depth = 0
        self.generators: dict[int, Any] = {}
        self.adopt: Callable[[Any], "Traced"] | None = None  # makes an unmet leaf Tensor a state read
        self.grad_first: dict[int, str] = {}  # id -> "untouched" | "used" | "dropped" (watch_grads)

    def new_var(self, plain: np.ndarray, origin: str) -> "Traced":
        var = self.program.new_var(np.shape(plain), getattr(plain, "dtype", np.asarray(plain).dtype), origin,
                                   getattr(plain, "strides", None))
        return _wrap(plain, var)

    def emit(self, eqn: Eqn) -> None:
        self.program.eqns.append(eqn)


def _recorder() -> Recorder | None:
    rec = REPLAY.recorder
    return rec if rec is not None and rec.suspended == 0 else None


# --- traced arrays --------------------------------------------------------------------------------
class Traced(np.ndarray):
    """An ndarray that records what is done to it while a trace is running (and is plain otherwise)."""

    def __array_finalize__(self, obj: Any) -> None:
        self._var = None  # a view NumPy made on its own: not a variable of the program
        self._plain = None

    # NumPy protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        return record_call(name, ufunc if method == "__call__" else getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return record_call(func.__name__, func, args, kwargs)

    # what reads values back into Python
    def __bool__(self) -> bool:
        return _read(self, bool, "bool()")

    def __float__(self) -> float:
        return _read(self, float, "float()")

    def __int__(self) -> int:
        return _read(self, int, "int()")

    def __index__(self) -> int:
        return _read(self, _index, "an index")

    def __complex__(self) -> complex:
        return _read(self, complex, "complex()")

    def item(self, *args):
        return _read(self, lambda a: a.item(*args), ".item()")

    def tolist(self):
        return _read(self, lambda a: a.tolist(), ".tolist()")

    # raw reads of the bytes (files, pickles, buffers handed to other libraries): frozen at trace time
    def tobytes(self, *args, **kwargs):
        return _read(self, lambda a: a.tobytes(*args, **kwargs), ".tobytes()")

    def tofile(self, *args, **kwargs):
        return _read(self, lambda a: a.tofile(*args, **kwargs), ".tofile()")

    def __reduce_ex__(self, protocol):
        return _read(self, lambda a: a.__reduce_ex__(protocol), "pickling")

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"Traced(v{self._var}, shape={self.shape}, dtype={self.dtype})"

    __str__ = __repr__

    @property
    def T(self):
        return record_call(".T", np.transpose, (self,), {})


def _index(a: np.ndarray) -> int:
    return a.__index__()


def _method(name: str) -> Callable:
    def base(self, *args, **kwargs):  # by name, not np.ndarray's descriptor: on replay a 0-d result
        return getattr(self, name)(*args, **kwargs)  # may be a NumPy scalar (np.float64 has .reshape too)

    base.__name__ = base.__qualname__ = f"ndarray.{name}"

    def method(self, *args, **kwargs):
        return record_call(f".{name}", base, (self,) + args, kwargs)

    method.__name__ = name
    return method


for _name in ("reshape", "astype", "copy", "__getitem__", "__setitem__", "transpose", "ravel", "flatten",
              "squeeze", "swapaxes", "fill", "argmax", "argmin", "nonzero", "repeat", "take", "put", "cumsum",
              "diagonal", "sort", "argsort", "view", "__deepcopy__", "__copy__", "round", "clip"):
    setattr(Traced, _name, _method(_name))


def _wrap(plain: np.ndarray, var: int) -> Traced:
    t = np.ndarray.view(plain, Traced)
    t._var = var
    t._plain = plain
    return t


def plain(x: Any) -> Any:
    """The ndarray behind a traced array (x itself otherwise)."""
    if type(x) is Traced:
        return x._plain if x._plain is not None else np.ndarray.view(x, np.ndarray)
    return x


def _unwrap(x: Any) -> tuple[Any, Any, bool]:
    """(plain value, template with Var for traced arrays, whether any traced array was found)."""
    t = type(x)
    if t is Traced:
        if x._var is None or x._plain is None:
            raise TraceError("trace: an array view made inside NumPy escaped the recorder (an unsupported NumPy call "
                             "on traced data); run this function eagerly")
        return x._plain, Var(x._var), True
    if t is tuple or t is list:
        found = False
        ps, ts = [], []
        for item in x:
            p, tt, f = _unwrap(item)
            ps.append(p)
            ts.append(tt)
            found = found or f
        return (t(ps), t(ts), True) if found else (x, x, False)
    if t is slice and any(type(v) is Traced for v in (x.start, x.stop, x.step)):
        raise TraceError("trace: a slice bound read from a traced value; slice with Python ints")
    return x, x, False


def _unwrap_kwargs(kwargs: dict) -> tuple[dict, dict, bool]:
    ps, ts, found = {}, {}, False
    for k, v in kwargs.items():
        ps[k], ts[k], f = _unwrap(v)
        found = found or f
    return ps, ts, found


def _plain_all(x: Any) -> Any:
    t = type(x)
    if t is Traced:
        return plain(x)
    if t is tuple or t is list:
        return t(_plain_all(v) for v in x)
    if t is dict:
        return {k: _plain_all(v) for k, v in x.items()}
    return x


def record_call(name: str, fn: Callable, args: tuple, kwargs: dict, *, force: bool = False,
                kind: str = "numpy", effect: bool = False) -> Any:
    """Call fn on the plain arrays behind `args`; while tracing, record the call as one equation and
    return traced arrays for its results."""
    rec = _recorder()
    if rec is None:
        return fn(*_plain_all(args), **_plain_all(kwargs))
    pargs, targs, f1 = _unwrap(tuple(args))
    pkw, tkw, f2 = _unwrap_kwargs(kwargs)
    rec.suspended += 1
    try:
        result = fn(*pargs, **pkw)
    finally:
        rec.suspended -= 1
    if not (f1 or f2 or force):
        return result  # a constant computed from constants
    outs, wrapped, in_place = _outputs(rec, result, pargs, pkw, args, kwargs, name)
    if not outs and wrapped is not None and result is not None and "out" not in pkw and kind in ("prim", "numpy"):
        return wrapped  # an input returned as is (sum_to to its own shape, astype(copy=False)): no equation
    if not outs and not in_place and not effect and result is not None:
        return result  # a static answer (a shape, a dtype): nothing to replay
    rec.emit(Eqn(kind, name, fn, targs, tkw, outs, effect=effect or in_place or result is None,
                 unpack=isinstance(result, (tuple, list))))
    return wrapped


def _outputs(rec: Recorder, result: Any, pargs, pkw, args, kwargs, name: str):
    """New variables for what fn returned; an argument returned as is (out=) stays its variable."""
    if result is None:
        return (), None, True
    originals = {}
    for p, t in zip(pargs, args):
        if isinstance(p, np.ndarray):
            originals[id(p)] = t
    out = pkw.get("out")
    if out is not None:
        for p, t in zip(out if isinstance(out, tuple) else (out,), kwargs["out"] if isinstance(kwargs["out"], tuple)
                        else (kwargs["out"],)):
            originals[id(p)] = t
    if isinstance(result, np.ndarray):
        if id(result) in originals:
            return (), originals[id(result)], True
        t = rec.new_var(result, name)
        return (t._var,), t, False
    if isinstance(result, np.generic):
        t = rec.new_var(np.asarray(result), name)
        return (t._var,), t, False
    if isinstance(result, (tuple, list)) and result and all(isinstance(r, (np.ndarray, np.generic)) for r in result):
        wrapped = []
        for r in result:
            t = rec.new_var(np.asarray(r) if isinstance(r, np.generic) else r, name)
            wrapped.append(t)
        return tuple(t._var for t in wrapped), type(result)(wrapped), False
    return (), result, False


# --- values read back into Python -------------------------------------------------------------------
def user_line(skip: int = 2) -> tuple[str | None, bool]:
    """(file:line: code, whether it is the user's) of the first frame outside the tracer, the Tensor
    conversion methods and NumPy."""
    import linecache

    frame = sys._getframe(skip)
    while frame is not None:
        filename = os.path.abspath(frame.f_code.co_filename)
        if not filename.startswith(_NUMPY_DIR) and filename not in _SHIMS:
            code = linecache.getline(filename, frame.f_lineno).strip()
            return f"{filename}:{frame.f_lineno} in {frame.f_code.co_name}: {code}", not filename.startswith(_TOOL_DIRS)
        frame = frame.f_back
    return None, True


def _read(x: Traced, convert: Callable, what: str) -> Any:
    rec = _recorder()
    value = convert(plain(x))
    if rec is None or x._var is None:
        return value
    where, is_user = user_line(3)
    if is_user:
        raise TraceError(
            f"trace: {what} reads a traced value (shape {tuple(x.shape)}) back into Python at {where}. A compiled "
            "function records array operations only, so a Python value or branch computed from data would be "
            "frozen at its first value. Fix: move this read out of the compiled function (return the tensor and "
            "read it after the call), keep the computation in tensor operations (e.g. autograd.where instead of "
            "if), or run this function eagerly.")
    if rec.vjp_depth:
        raise _NeedsOpaque()
    rec.emit(Eqn("guard", what, convert, (Var(x._var),), {}, (), effect=True, expect=value, where=where))
    return value


# --- NumPy's constructors while recording -------------------------------------------------------------
def _fresh(name: str, original: Callable) -> Callable:
    """np.zeros and friends: a traced buffer (made fresh at every replay) while recording."""

    def make(*args, **kwargs):
        if _recorder() is None:
            return original(*args, **kwargs)
        return record_call(f"np.{name}", original, args, kwargs, force=True)

    return make


def _asarray(original: Callable) -> Callable:
    def asarray(a, dtype=None, *args, **kwargs):
        if type(a) is Traced and _recorder() is not None and not args and not kwargs:
            if dtype is None or np.dtype(dtype) == a.dtype:
                return a
            return a.astype(dtype)
        if _recorder() is None or not _contains_traced(a):
            return original(a, dtype, *args, **kwargs)
        return record_call("np.asarray", original, (a, dtype) + args, kwargs)

    return asarray


def _array(original: Callable) -> Callable:
    def array(a, *args, **kwargs):
        if _recorder() is None or not _contains_traced(a):
            return original(a, *args, **kwargs)
        return record_call("np.array", original, (a,) + args, kwargs)

    return array


def _contains_traced(a: Any) -> bool:
    if type(a) is Traced:
        return True
    if type(a) in (tuple, list):
        return any(_contains_traced(v) for v in a)
    return False


_CONSTRUCTORS = ("zeros", "ones", "empty", "full", "eye", "identity", "arange", "linspace")
_CONVERTERS = {"asarray": _asarray, "asanyarray": _asarray, "array": _array, "ascontiguousarray": _array}


class _numpy_patched:
    """Swap NumPy's constructors for recording ones during a trace (single-threaded, restored on exit)."""

    def __enter__(self) -> None:
        self.saved = {name: getattr(np, name) for name in _CONSTRUCTORS + tuple(_CONVERTERS)}
        for name in _CONSTRUCTORS:
            setattr(np, name, _fresh(name, self.saved[name]))
        for name, make in _CONVERTERS.items():
            setattr(np, name, make(self.saved[name]))

    def __exit__(self, *exc) -> None:
        for name, fn in self.saved.items():
            setattr(np, name, fn)


# --- random generators -----------------------------------------------------------------------------
class TracedGenerator:
    """A numpy Generator whose draws are equations: replay draws from the same generator, so the
    random stream (dropout masks) advances exactly as in eager mode."""

    def __init__(self, generator: np.random.Generator) -> None:
        self._generator = generator

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._generator, name)
        if not callable(method) or name.startswith("_") or name in ("bit_generator", "spawn"):
            return method

        def draw(*args, **kwargs):
            return record_call(f"rng.{name}", method, args, kwargs, force=True, kind="rng", effect=True)

        return draw


def traced_generator(generator: np.random.Generator) -> Any:
    """as_generator's hook: while recording, a generator whose draws are recorded."""
    rec = _recorder()
    if rec is None:
        return generator
    rec.generators[id(generator)] = generator
    return TracedGenerator(generator)


# --- opaque equations --------------------------------------------------------------------------------
def opaque(name: str, fn: Callable[..., Any], *arrays: Any) -> Any:
    """Run `fn(*arrays)` now and, while tracing, record it as one equation that calls `fn` again at
    replay with that call's arrays. fn may update its arrays in place and read Python state (an
    optimizer's step count and learning rate); it returns an array, a tuple of arrays, or None."""
    return record_call(name, fn, arrays, {}, kind="opaque", effect=True, force=True) if _recorder() else fn(*arrays)


def trace_primitive(prim, args, arrays, params: dict) -> Any:
    """How a primitive runs while recording: its forward on plain arrays, as one equation. A Tensor
    the trace has not met yet (a global, a closure's constant) becomes state read at every replay."""
    rec = REPLAY.recorder
    if rec.suspended:  # inside an opaque equation or another recorded call: plain eager
        return prim.forward(*arrays, **params)
    for i, (a, arr) in enumerate(zip(args, arrays)):
        if type(arr) is np.ndarray and rec.adopt is not None and hasattr(a, "_node") and a._node is None:
            arrays[i] = rec.adopt(a)
    return record_call(prim.name, prim.forward, tuple(arrays), params, kind="prim", force=True)


def is_tracing() -> bool:
    return _recorder() is not None


# --- gradients the step drops before anything reads them ----------------------------------------------
# A step that begins with `optimizer.zero_grad()` computes the same whether or not gradients exist
# when it is called, so the Program traced on the first call (no gradients yet) also serves the
# calls after it. To know that, a trace watches `.grad` of the state tensors that had none: a read
# or write before zero_grad dropped it ("used") keeps the guard on gradient presence; a drop first
# ("dropped") lifts it. The watch is a subclass with a `grad` property, swapped in for the trace only.
_GRAD_SLOT = Tensor.__dict__["grad"]
_WATCHED: dict[type, type] = {}


def _note_grad(t: Tensor, how: str) -> None:
    rec = REPLAY.recorder
    if rec is not None and rec.grad_first.get(id(t)) == "untouched":
        rec.grad_first[id(t)] = how


def _watched_class(cls: type) -> type:
    watched = _WATCHED.get(cls)
    if watched is None:
        def get(self):
            _note_grad(self, "used")
            return _GRAD_SLOT.__get__(self, type(self))

        def set_(self, value):
            _note_grad(self, "used")
            _GRAD_SLOT.__set__(self, value)

        watched = _WATCHED[cls] = type(cls.__name__, (cls,), {"__slots__": (), "grad": property(get, set_),
                                                              "__module__": cls.__module__})
    return watched


def watch_grads(rec: Recorder, tensors: list) -> Callable[[], None]:
    """Watch `.grad` of the tensors without a gradient; returns the function that stops watching."""
    swapped = []
    for t in tensors:
        if _GRAD_SLOT.__get__(t, type(t)) is None and type(t) not in _WATCHED.values():
            rec.grad_first[id(t)] = "untouched"
            t.__class__ = _watched_class(type(t))
            swapped.append(t)

    def stop() -> None:
        for t in swapped:
            t.__class__ = type(t).__mro__[1]

    return stop


def note_grads_dropped(tensors) -> None:
    """zero_grad(set_to_none=True) calls this first, while tracing: these gradients are dropped before
    the step reads them (unless it already did)."""
    rec = _recorder()
    if rec is not None:
        for t in tensors:
            _note_grad(t, "dropped")


# --- VJPs -------------------------------------------------------------------------------------------
def trace_vjp(node, g, create_graph: bool, apply_vjps: Callable):
    """The engine calls this for each node while tracing: the VJP's own operations are recorded,
    unless it reads a traced value back (a tie test, say); then it becomes one opaque equation."""
    from .tensor import Tensor

    rec = REPLAY.recorder
    if rec.suspended:
        return apply_vjps(node, g, create_graph)
    mark = len(rec.program.eqns)
    rec.vjp_depth += 1
    try:
        return apply_vjps(node, g, create_graph)
    except _NeedsOpaque:
        del rec.program.eqns[mark:]
    finally:
        rec.vjp_depth -= 1
    prim, params = node.prim, node.params
    args = node.args
    wanted = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
    tensors = tuple(isinstance(a, Tensor) for a in args)  # not the args: the program must not keep them
    datas = tuple(a.data if isinstance(a, Tensor) else a for a in args)
    ans = node.out if prim.save_output else None

    def vjp(g_arr, ans_arr, *arrays):
        from .graph import no_grad

        ts = tuple(_as_tensor(a, w) if is_tensor else a for a, w, is_tensor in zip(arrays, wanted, tensors))
        with no_grad():
            results = prim.apply_vjps(Tensor._make(g_arr), None if ans_arr is None else Tensor._make(ans_arr),
                                      ts, params, list(wanted))
        return tuple(r.data if r is not None else np.zeros(0) for r in results)

    results = record_call(f"vjp[{prim.name}]", vjp, (g.data, ans) + datas, {}, kind="opaque", force=True)
    return [Tensor._make(r) if w else None for r, w in zip(results, wanted)]


def _as_tensor(a: np.ndarray, requires_grad: bool):
    from .tensor import Tensor

    t = Tensor._make(a)
    t.requires_grad = requires_grad
    return t
