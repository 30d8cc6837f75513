"""`trace(fn, *args) -> Program` and `compile(fn)`: capture a training step once, replay it after.

The first call for a signature runs `fn` eagerly while a `Recorder` writes the Program (see
`autograd.capture`); later calls with the same signature run the Program's generated replay function
on the call's arrays and the current state arrays. State (parameters, gradients, optimizer moments,
batch-norm statistics, random generators) is found from `fn`'s arguments, its closure, the globals
it names and the attributes of a bound method's object: anything with `named_parameters` (a module)
or `param_groups` (an optimizer). Pass `state=[...]` to name it explicitly.

The signature (guards): the shapes, dtypes and requires_grad of the call's arrays, Python arguments
by value, the grad mode, every module's train/eval flag, the identity of the tracked tensors and
whether each has a gradient, the identity of the optimizer parameter groups.
"""
from __future__ import annotations

import copy
import functools
import types
import warnings
import weakref
from collections import OrderedDict
from typing import Any, Callable, Iterable

import numpy as np

from .graph import _Mode, observe
from .primitive import REPLAY
from .program import Eqn, Program, StateSlot, TensorVar, Var, _vars_in
from .tensor import Tensor
from .capture import Recorder, TraceError, Traced, _numpy_patched, plain, trace_primitive, trace_vjp, watch_grads


# --- finding the state ----------------------------------------------------------------------------
def _is_module(obj: Any) -> bool:
    return hasattr(obj, "named_parameters") and hasattr(obj, "named_buffers") and hasattr(obj, "training")


def _is_optimizer(obj: Any) -> bool:
    return hasattr(obj, "param_groups") and hasattr(obj, "state") and hasattr(obj, "step")


def _candidates(fn: Callable, args: tuple, kwargs: dict) -> Iterable[Any]:
    yield from args
    yield from kwargs.values()
    target = fn
    while isinstance(target, functools.partial):
        yield from target.args
        target = target.func
    if isinstance(target, types.MethodType):
        yield target.__self__
        yield from vars(target.__self__).values() if hasattr(target.__self__, "__dict__") else ()
        target = target.__func__
    code = getattr(target, "__code__", None)
    for name, cell in zip(getattr(code, "co_freevars", ()), getattr(target, "__closure__", None) or ()):
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        yield _Named(name, value) if isinstance(value, Tensor) else value
    if code is not None:
        g = getattr(target, "__globals__", {})
        for name in _names(code):
            if name in g:
                yield _Named(name, g[name]) if isinstance(g[name], Tensor) else g[name]


class _Named:
    """A Tensor the function reads by name (a global or a closure's variable): state, labelled so."""

    def __init__(self, name: str, tensor: Tensor) -> None:
        self.name, self.tensor = name, tensor


def _names(code: types.CodeType) -> Iterable[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _names(const)


def find_state(fn: Callable, args: tuple, kwargs: dict, extra: Iterable[Any] = ()) -> tuple[list, list]:
    """(modules, optimizers) that fn can reach, each once, in a stable order; Tensors it reads by
    name count as a module of their own."""
    modules, optimizers, seen = [], [], set()
    for obj in list(extra) + list(_candidates(fn, args, kwargs)):
        items = obj if isinstance(obj, (list, tuple)) and not isinstance(obj, Tensor) else (obj,)
        for item in items:
            if id(item) in seen:
                continue
            if isinstance(item, _Named):
                seen.add(id(item))
                modules.append(_Loose(item))
            elif _is_module(item):
                seen.add(id(item))
                modules.append(item)
            elif _is_optimizer(item):
                seen.add(id(item))
                optimizers.append(item)
    return modules, optimizers


class _Loose:
    """A named Tensor seen as a one-parameter module (no train/eval flag of its own)."""

    training = True

    def __init__(self, named: _Named) -> None:
        self.named = named

    def named_parameters(self):
        return [(self.named.name, self.named.tensor)]

    def named_buffers(self):
        return []

    def modules(self):
        return []


def _tracked(modules: list, optimizers: list) -> list[tuple[Tensor, str]]:
    """Every state tensor with a readable label, each once."""
    out, seen = [], set()

    def add(t: Any, label: str) -> None:
        if isinstance(t, Tensor) and id(t) not in seen:
            seen.add(id(t))
            out.append((t, label))

    for i, m in enumerate(modules):
        prefix = "" if i == 0 or isinstance(m, _Loose) else f"m{i}."
        for name, t in m.named_parameters():
            add(t, prefix + name)
        for name, t in m.named_buffers():
            add(t, prefix + name)
    for i, opt in enumerate(optimizers):
        for j, group in enumerate(opt.param_groups):
            for k, p in enumerate(group["params"]):
                add(p, f"opt{i}.g{j}.p{k}")
    return out


# --- inputs ---------------------------------------------------------------------------------------
def _flatten(value: Any, leaves: list) -> Any:
    """A template of fn's arguments: arrays and Tensors become numbered slots."""
    if isinstance(value, Tensor) or isinstance(value, np.ndarray):
        leaves.append(value)
        return _Slot(len(leaves) - 1)
    if type(value) in (tuple, list):
        return type(value)(_flatten(v, leaves) for v in value)
    if type(value) is dict:
        return {k: _flatten(v, leaves) for k, v in value.items()}
    return value


class _Slot:
    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i


def _key_of(value: Any) -> Any:
    if isinstance(value, Tensor):
        return ("T", value.data.shape, value.data.dtype.str, value.requires_grad)
    if isinstance(value, np.ndarray):
        return ("A", value.shape, value.dtype.str)
    if type(value) in (tuple, list):
        return (type(value).__name__,) + tuple(_key_of(v) for v in value)
    if type(value) is dict:
        return ("D",) + tuple((k, _key_of(v)) for k, v in value.items())
    try:
        hash(value)
        return ("V", type(value).__name__, value)
    except TypeError:
        return ("I", id(value))


# --- capture --------------------------------------------------------------------------------------
class Captured:
    """A traced Program with what replay needs: where its inputs and state come from."""

    def __init__(self, program: Program, template: Any, tracked: list, optimizers: list, generators: list,
                 guard: list) -> None:
        self.program = program
        self.template = template
        self.tracked = tracked
        self.optimizers = optimizers
        self.generators = generators
        # (tensor, grad is None (None: either), shape, dtype) of every tensor the program reads
        self.guard = guard
        self.replay = None
        self.calls = 0

    def applies(self) -> bool:
        """The state guard: every tensor the program reads still has the shape, dtype and gradient
        presence it had when traced (this covers tensors met during the trace, e.g. globals)."""
        for t, no_grad, shape, dtype in self.guard:
            if no_grad is not None and (t.grad is None) is not no_grad or t.data.shape != shape \
                    or t.data.dtype.str != dtype:
                return False
        return True

    def prepare(self, plan: bool = True) -> None:
        self.replay = self.program.prepare(plan)
        p = self.program
        args_template, kwargs_template = self.template
        self._flat_args = not kwargs_template and all(type(a) is _Slot for a in args_template)
        self._reads = [(slot.tensor, slot.slot == "data") for _, slot in p.reads]
        self._writes = [(slot.tensor, slot.slot == "grad") for slot, v in p.writes if v is not None]
        self._cleared = [slot.tensor for slot, v in p.writes if v is None and slot.slot == "grad"]
        self._n_out = len(list(_vars_in(self.program.outputs)))

    def run(self, args: tuple, kwargs: dict) -> Any:
        if self._flat_args:  # the common case: fn(x, y, ...) with Tensors or arrays
            arrays = [x.data if isinstance(x, Tensor) else x for x in args]
        else:
            leaves: list = []
            _flatten((args, kwargs), leaves)
            arrays = [x.data if isinstance(x, Tensor) else x for x in leaves]
        for t, is_data in self._reads:
            arrays.append(t.data if is_data else t.grad.data)
        results = self.replay.run(arrays)
        n = self._n_out
        for (t, is_grad), arr in zip(self._writes, results[n:]):
            if is_grad:
                t.grad = Tensor._make(arr)
            else:
                t.data = arr
        for t in self._cleared:
            t.grad = None
        self.calls += 1
        return _rebuild(self.program.outputs, iter(results[:n]))


def _rebuild(template: Any, values) -> Any:
    t = type(template)
    if t is TensorVar:
        value = next(values)
        return Tensor._make(value if type(value) is np.ndarray else np.asarray(value))
    if t is Var:
        return next(values)
    if t in (tuple, list):
        return t(_rebuild(v, values) for v in template)
    if t is dict:
        return {k: _rebuild(v, values) for k, v in template.items()}
    return template


def _output_template(value: Any) -> Any:
    if isinstance(value, Tensor):
        d = value.data
        if type(d) is Traced and d._var is not None:
            return TensorVar(d._var)
        return Tensor._make(np.array(plain(d), copy=True))  # a constant output
    if type(value) is Traced and value._var is not None:
        return Var(value._var)
    if type(value) in (tuple, list):
        return type(value)(_output_template(v) for v in value)
    if type(value) is dict:
        return {k: _output_template(v) for k, v in value.items()}
    return value


def _unwrap_result(value: Any) -> Any:
    if isinstance(value, Tensor):
        value.data = plain(value.data)
        if value.grad is not None:
            value.grad.data = plain(value.grad.data)
        return value
    if type(value) is Traced:
        return plain(value)
    if type(value) in (tuple, list):
        return type(value)(_unwrap_result(v) for v in value)
    if type(value) is dict:
        return {k: _unwrap_result(v) for k, v in value.items()}
    return value


def capture(fn: Callable, args: tuple, kwargs: dict, state: Iterable[Any] = ()) -> tuple[Captured, Any]:
    """Run fn(*args, **kwargs) eagerly once, recording it; return (Captured, fn's result)."""
    modules, optimizers = find_state(fn, args, kwargs, state)
    tracked = _tracked(modules, optimizers)
    leaves: list = []
    template = _flatten((args, kwargs), leaves)
    rec = Recorder()
    prog = rec.program
    # every tensor whose data the trace swapped for a traced array, weakly: put plain arrays back after
    # (an old gradient the step dropped must not be kept alive by the trace)
    saved: list[weakref.ref] = []
    by_id: dict[int, tuple[Tensor, str]] = {}
    call_leaves = []
    for i, leaf in enumerate(leaves):
        if isinstance(leaf, Tensor):
            if id(leaf) not in by_id:
                t = rec.new_var(leaf.data, f"x{i}")
                prog.inputs.append((t._var, f"x{i}"))
                saved.append(weakref.ref(leaf))
                leaf.data = t
                by_id[id(leaf)] = (leaf, f"x{i}")
            call_leaves.append(leaf)
        else:
            t = rec.new_var(leaf, f"x{i}")
            prog.inputs.append((t._var, f"x{i}"))
            call_leaves.append(t)
    state_tensors = [(t, label) for t, label in tracked if id(t) not in by_id]
    all_tracked = list(by_id.values()) + state_tensors
    for t, label in state_tensors:
        v = rec.new_var(t.data, label)
        prog.reads.append((v._var, StateSlot(t, "data", label)))
        saved.append(weakref.ref(t))
        t.data = v
    initial: dict[tuple[int, str], Any] = {}

    guard: list[tuple[Tensor, bool, tuple, str]] = []

    def track(t: Tensor, label: str) -> None:
        guard.append((t, t.grad is None, t.data.shape, t.data.dtype.str))
        initial[(id(t), "data")] = t.data._var
        if t.grad is not None:
            g = rec.new_var(t.grad.data, label + ".grad")
            prog.reads.append((g._var, StateSlot(t, "grad", label)))
            saved.append(weakref.ref(t.grad))
            t.grad.data = g
            initial[(id(t), "grad")] = g._var
        else:
            initial[(id(t), "grad")] = None

    for t, label in all_tracked:
        track(t, label)

    def adopt(t: Tensor) -> Traced:
        label = t.name or f"s{len(prog.reads)}"
        if t.requires_grad:
            warnings.warn(
                f"compile({getattr(fn, '__name__', 'fn')}): a parameter of shape {t.data.shape} was reached during the "
                "trace but not found from the function's arguments, closure or globals, so its module's train/eval "
                "switch is not part of the signature; pass state=[model, optimizer]", RuntimeWarning, stacklevel=4)
        v = rec.new_var(t.data, label)
        prog.reads.append((v._var, StateSlot(t, "data", label)))
        saved.append(weakref.ref(t))
        t.data = v
        all_tracked.append((t, label))
        tracked_ids.add(id(t))
        track(t, label)
        return v

    rec.adopt = adopt
    tracked_ids = {id(t) for t, _ in all_tracked}

    def on_modified(tensor: Tensor, op: str | None) -> None:
        if id(tensor) in tracked_ids and REPLAY.recorder is rec and rec.suspended == 0:
            label = next((label for t, label in all_tracked if t is tensor), "?")
            rec.emit(Eqn("opaque", f"mark_modified[{label}]", _marker(tensor, op), (), {}, (), effect=True))

    args2, kwargs2 = _rebuild_args(template, call_leaves)
    watcher = observe(on_modified=on_modified)
    previous = (REPLAY.recorder, REPLAY.forward, REPLAY.vjp)
    REPLAY.recorder, REPLAY.forward, REPLAY.vjp = rec, trace_primitive, trace_vjp
    unwatch = watch_grads(rec, [t for t, _ in all_tracked])
    try:
        with watcher, _numpy_patched():
            result = fn(*args2, **kwargs2)
            writes = _collect_writes(all_tracked, initial)
    finally:
        unwatch()
        REPLAY.recorder, REPLAY.forward, REPLAY.vjp = previous
        for t, label in all_tracked:  # put plain arrays back everywhere the trace left traced ones
            t.data = plain(t.data)
            if t.grad is not None:
                t.grad.data = plain(t.grad.data)
        for ref in saved:
            obj = ref()
            if obj is not None and type(obj.data) is Traced:
                obj.data = plain(obj.data)
    prog.writes = writes
    # a gradient the step dropped before reading it: whether one exists at the call does not matter
    guard = [(t, None if rec.grad_first.get(id(t)) == "dropped" else no_grad, shape, dtype)
             for t, no_grad, shape, dtype in guard]
    prog.outputs = _output_template(result)
    result = _unwrap_result(result)
    captured = Captured(prog, template, all_tracked, optimizers, list(rec.generators.values()), guard)
    return captured, result


def _marker(tensor: Tensor, op: str | None) -> Callable[[], None]:
    from .graph import mark_modified

    def mark() -> None:
        mark_modified(tensor, op)

    mark.__name__ = f"mark_modified[{op}]"
    return mark


def _collect_writes(tracked: list, initial: dict) -> list[tuple[StateSlot, int | None]]:
    writes = []
    for t, label in tracked:
        d = t.data
        if type(d) is not Traced or d._var is None:
            raise TraceError(f"trace: the data of {label} was replaced by an array computed outside the trace; "
                             "change it in place (copy_) or run this function eagerly")
        if d._var != initial[(id(t), "data")]:
            writes.append((StateSlot(t, "data", label), d._var))
        g = t.grad
        now = None if g is None else g.data
        if now is not None and (type(now) is not Traced or now._var is None):
            raise TraceError(f"trace: the gradient of {label} was set to an array computed outside the trace")
        var = None if now is None else now._var
        if var != initial[(id(t), "grad")]:
            writes.append((StateSlot(t, "grad", label), var))
    return writes


def _rebuild_args(template: Any, leaves: list) -> tuple[tuple, dict]:
    def build(t: Any) -> Any:
        if type(t) is _Slot:
            return leaves[t.i]
        if type(t) in (tuple, list):
            return type(t)(build(v) for v in t)
        if type(t) is dict:
            return {k: build(v) for k, v in t.items()}
        return t

    args, kwargs = build(template)
    return tuple(args), dict(kwargs)


def trace(fn: Callable, *example_args: Any, state: Iterable[Any] = (), simplify: bool = False, **example_kwargs: Any) -> Program:
    """Run fn once on the example arguments (eagerly, with its side effects: a training step does
    train one step) and return the recorded Program."""
    captured, _ = capture(fn, example_args, example_kwargs, state)
    if simplify:
        captured.program.simplify()
    return captured.program


# --- compile --------------------------------------------------------------------------------------
class Compiled:
    """`fn` with Programs cached by signature; see `compile`."""

    def __init__(self, fn: Callable, *, verify: bool | int = False, max_cache: int = 8, state: Iterable[Any] = (),
                 simplify: bool = True, rtol: float = 1e-6, plan: bool = True) -> None:
        functools.update_wrapper(self, fn)
        self.plan = plan
        self.fn = fn
        self.verify_calls = 3 if verify is True else int(verify)
        self.max_cache = max_cache
        self.state = list(state)
        self.simplify = simplify
        self.rtol = rtol
        self.cache: OrderedDict[Any, list[Captured]] = OrderedDict()
        self.traces = 0
        self.evictions = 0
        self.reports: list[list[str]] = []
        self._found: tuple[list, list] | None = None

    @property
    def programs(self) -> list[Program]:
        return [c.program for entries in self.cache.values() for c in entries]

    def signature(self, args: tuple, kwargs: dict) -> Any:
        """What must be equal for a Program to apply (see the module docstring). The module tree and
        the state tensors are found once; each program also checks its own tensors (`applies`)."""
        if self._found is None:
            modules, optimizers = find_state(self.fn, args, kwargs, self.state)
            self._found = (modules, optimizers, [m for mod in modules for m in mod.modules()])
        modules, optimizers, submodules = self._found
        arg_ids = tuple(id(a) for a in list(args) + list(kwargs.values()) if _is_module(a) or _is_optimizer(a))
        flags = tuple(m.training for m in submodules)
        groups = tuple((id(g), tuple(map(id, g["params"]))) for opt in optimizers for g in opt.param_groups)
        return (_key_of((args, kwargs)), _Mode.grad_enabled, flags, groups, arg_ids)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        key = self.signature(args, kwargs)
        entries = self.cache.get(key)
        entry = None
        if entries is not None:
            entry = next((e for e in entries if e.applies()), None)
        if entry is None:
            return self._trace(key, args, kwargs)
        self.cache.move_to_end(key)
        if entry.calls < self.verify_calls:
            return self._verified(entry, args, kwargs)
        return entry.run(args, kwargs)

    def _trace(self, key: Any, args: tuple, kwargs: dict) -> Any:
        captured, result = capture(self.fn, args, kwargs, self.state)
        self.traces += 1
        if self.simplify:
            self.reports.append(captured.program.simplify())
        captured.prepare(self.plan)
        if sum(len(v) for v in self.cache.values()) >= self.max_cache:
            oldest = next(iter(self.cache))
            self.cache[oldest].pop(0)
            if not self.cache[oldest]:
                del self.cache[oldest]
            self.evictions += 1
            warnings.warn(
                f"compile({getattr(self.fn, '__name__', 'fn')}): {self.evictions} program(s) evicted from a cache of "
                f"{self.max_cache}: calls keep changing signature (input shapes, dtypes, train/eval, parameters), "
                "so every call traces again. Keep shapes fixed (pad the last batch) or raise max_cache=.",
                RuntimeWarning, stacklevel=3)
        self.cache.setdefault(key, []).append(captured)
        return result

    # --- verify: eager and replay side by side from the same state ------------------------------
    def _verified(self, entry: Captured, args: tuple, kwargs: dict) -> Any:
        before = _snapshot(entry)
        eager = self.fn(*args, **kwargs)
        eager_out = _arrays_of(eager)
        after_eager = _snapshot(entry)
        _restore(entry, before)
        replayed = entry.run(args, kwargs)
        after_replay = _snapshot(entry)
        problems = _compare(_arrays_of(replayed), eager_out, "output", self.rtol)
        problems += _compare_state(after_replay, after_eager, self.rtol)
        if problems:
            raise TraceError(f"compile(verify=True): call {entry.calls} replayed differently from eager mode:\n  "
                             + "\n  ".join(problems[:10]))
        return replayed


def _arrays_of(value: Any) -> list:
    if isinstance(value, Tensor):
        return [np.array(value.data)]
    if isinstance(value, np.ndarray):
        return [np.array(value)]
    if type(value) in (tuple, list):
        return [a for v in value for a in _arrays_of(v)]
    if type(value) is dict:
        return [a for v in value.values() for a in _arrays_of(v)]
    return [value]


def _snapshot(entry: Captured) -> dict:
    tensors = [(t, label, t.data.copy(), None if t.grad is None else (t.grad, t.grad.data.copy()))
               for t, label in entry.tracked]
    opts = [(opt, {p: {k: copy.deepcopy(v) for k, v in s.items()} for p, s in opt.state.items()})
            for opt in entry.optimizers]
    gens = [(g, copy.deepcopy(g.bit_generator.state)) for g in entry.generators]
    return {"tensors": tensors, "opts": opts, "gens": gens}


def _restore(entry: Captured, snap: dict) -> None:
    for t, _, data, grad in snap["tensors"]:
        np.copyto(t.data, data)
        if grad is None:
            t.grad = None
        else:
            t.grad = grad[0]
            np.copyto(grad[0].data, grad[1])
    for opt, state in snap["opts"]:
        opt.state.clear()
        opt.state.update({p: {k: copy.deepcopy(v) for k, v in s.items()} for p, s in state.items()})
    for g, state in snap["gens"]:
        g.bit_generator.state = state


def _compare(got: list, want: list, what: str, rtol: float) -> list[str]:
    problems = []
    if len(got) != len(want):
        return [f"{what}: {len(got)} values against {len(want)}"]
    for i, (a, b) in enumerate(zip(got, want)):
        if isinstance(b, np.ndarray) or isinstance(a, np.ndarray):
            a, b = np.asarray(a), np.asarray(b)
            if a.shape != b.shape:
                problems.append(f"{what} {i}: shape {a.shape} against {b.shape}")
            elif not np.allclose(a, b, rtol=rtol, atol=rtol * 1e-3, equal_nan=True):
                err = float(np.max(np.abs(a.astype(np.float64) - b)))
                problems.append(f"{what} {i}: max abs difference {err:.3g}")
        elif a != b:
            problems.append(f"{what} {i}: {a!r} against {b!r}")
    return problems


def _compare_state(got: dict, want: dict, rtol: float) -> list[str]:
    problems = []
    for (t, label, a, ga), (_, _, b, gb) in zip(got["tensors"], want["tensors"]):
        problems += _compare([a], [b], label, rtol)
        if (ga is None) != (gb is None):
            problems.append(f"{label}.grad: {'None' if ga is None else 'set'} against {'None' if gb is None else 'set'}")
        elif ga is not None:
            problems += _compare([ga[1]], [gb[1]], label + ".grad", rtol)
    for (opt, sa), (_, sb) in zip(got["opts"], want["opts"]):
        for p in set(sa) | set(sb):
            for k in set(sa.get(p, {})) | set(sb.get(p, {})):
                problems += _compare([sa.get(p, {}).get(k)], [sb.get(p, {}).get(k)], f"optimizer state {k}", rtol)
    for (g, a), (_, b) in zip(got["gens"], want["gens"]):
        if a != b:
            problems.append("random generator state differs")
    return problems


def compile(fn: Callable | None = None, *, verify: bool | int = False, max_cache: int = 8, state: Iterable[Any] = (),
            simplify: bool = True, rtol: float = 1e-6, plan: bool = True) -> Any:
    """Decorator: trace `fn` on its first call for each signature, replay the Program after.

        @autograd.compile
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

    verify=True (or a number of calls, default 3): for the first calls after each trace, run eagerly
    and replay from the same state and raise TraceError if they differ. simplify: run the passes
    (dead code, common subexpressions, shape folding, constant folding, gradient copies). plan:
    write into buffers the replay owns (out=) where NumPy allows. max_cache: programs kept; more
    signatures evict and warn.
    """
    options = dict(verify=verify, max_cache=max_cache, state=state, simplify=simplify, rtol=rtol, plan=plan)
    if fn is None:
        return lambda f: Compiled(f, **options)
    return Compiled(fn, **options)
