"""A Program: a recorded function as a value. Inputs, equations, outputs, and the state it reads and
writes; it prints like a jaxpr, passes rewrite it, and `prepare()` turns it into straight-line Python
that replays the same NumPy calls over local variables (no Tensor, no Node, no dict per op).

An equation is (kind, name, fn, argument template, keyword template, output variables). Templates hold
`Var`s where the call takes a variable and constants elsewhere, so one equation can be any call:
a primitive's forward (kind 'prim'), a NumPy call made outside primitives ('numpy'), a random draw
('rng'), an opaque update such as an optimizer's ('opaque'), or a guard that re-checks a value the
traced code read back into Python ('guard').
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .parallel import axis_order

if TYPE_CHECKING:
    from .split import Run


class Var:
    """A variable of a program (an array at replay), by number."""

    __slots__ = ("id",)

    def __init__(self, id: int) -> None:
        self.id = id

    def __eq__(self, other: Any) -> bool:
        return type(other) is Var and other.id == self.id

    def __hash__(self) -> int:
        return hash(("Var", self.id))

    def __repr__(self) -> str:
        return f"v{self.id}"


@dataclass(eq=False)
class Eqn:
    kind: str  # 'prim' | 'numpy' | 'rng' | 'opaque' | 'guard'
    name: str
    fn: Callable
    args: tuple
    kwargs: dict
    outs: tuple[int, ...]
    effect: bool = False  # writes in place, draws random numbers, or checks: never removed or merged
    expect: Any = None  # a guard's value
    where: str | None = None  # a guard's source line
    unpack: bool = False  # fn returns a tuple (of one or more arrays), not an array

    def reads(self) -> Iterator[int]:
        yield from _vars_in(self.args)
        yield from _vars_in(tuple(self.kwargs.values()))


class TensorVar(Var):
    """An output variable that the compiled function returns as a Tensor."""

    __slots__ = ()


def _vars_in(template: Any) -> Iterator[int]:
    t = type(template)
    if t is Var or t is TensorVar:
        yield template.id
    elif t is tuple or t is list:
        for item in template:
            yield from _vars_in(item)
    elif t is dict:
        for item in template.values():
            yield from _vars_in(item)


def _substitute(template: Any, mapping: dict[int, int]) -> Any:
    t = type(template)
    if t is Var or t is TensorVar:
        return t(mapping.get(template.id, template.id))
    if t is tuple or t is list:
        return t(_substitute(x, mapping) for x in template)
    if t is dict:
        return {k: _substitute(v, mapping) for k, v in template.items()}
    return template


@dataclass
class StateSlot:
    """A Tensor attribute the program reads at the start or writes at the end: ('data' | 'grad')."""

    tensor: Any
    slot: str
    label: str


@dataclass(eq=False)
class Program:
    avals: list[tuple[tuple[int, ...], np.dtype, str]] = field(default_factory=list)
    eqns: list[Eqn] = field(default_factory=list)
    inputs: list[tuple[int, str]] = field(default_factory=list)  # (var, label) of the call's arrays
    reads: list[tuple[int, StateSlot]] = field(default_factory=list)  # state read at the start
    writes: list[tuple[StateSlot, int | None]] = field(default_factory=list)  # slot <- var (None: cleared)
    outputs: Any = None  # the function's result, with Vars for arrays
    report: list[str] = field(default_factory=list)  # what the passes removed (simplify)

    def new_var(self, shape, dtype, origin: str, strides: tuple | None = None) -> int:
        self.avals.append((tuple(shape), np.dtype(dtype), origin, strides))
        return len(self.avals) - 1

    # --- reading --------------------------------------------------------------------------------
    def output_vars(self) -> list[int]:
        return list(_vars_in(self.outputs)) + [v for _, v in self.writes if v is not None]

    def names(self) -> dict[int, str]:
        names = {v: label for v, label in self.inputs}
        names.update({v: slot.label + (".grad" if slot.slot == "grad" else "") for v, slot in self.reads})
        return names

    def __str__(self) -> str:
        return format_program(self)

    def __len__(self) -> int:
        return len(self.eqns)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.eqns:
            counts[e.name] = counts.get(e.name, 0) + 1
        return counts

    # --- running --------------------------------------------------------------------------------
    def prepare(self, plan: bool = True) -> "Replay":
        return Replay(self, plan=plan)

    # --- passes ---------------------------------------------------------------------------------
    def simplify(self) -> list[str]:
        """Run every pass until nothing changes; return what each removed."""
        report: list[str] = []
        for _ in range(4):
            before = len(report)
            for p in (fold_constants, fold_shapes, cse, elide_copies, dce):
                report.extend(p(self))
            if len(report) == before:
                break
        self.report.extend(report)
        return report


# --- printing -------------------------------------------------------------------------------------
_SHORT = {"float32": "f32", "float64": "f64", "int64": "i64", "int32": "i32", "bool": "bool", "uint8": "u8",
          "float16": "f16", "int8": "i8"}


def _aval(shape, dtype) -> str:
    return f"{_SHORT.get(np.dtype(dtype).name, np.dtype(dtype).name)}[{','.join(str(s) for s in shape)}]"


def _show(value: Any, names: dict[int, str]) -> str:
    t = type(value)
    if t is Var or t is TensorVar:
        return names.get(value.id, f"v{value.id}")
    if t is tuple or t is list:
        inner = ", ".join(_show(v, names) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})" if t is tuple else f"[{inner}]"
    if isinstance(value, np.ndarray):
        return f"const:{_aval(value.shape, value.dtype)}" if value.size > 4 else np.array2string(value, separator=",")
    if isinstance(value, slice):
        return f"{'' if value.start is None else value.start}:{'' if value.stop is None else value.stop}" + (
            f":{value.step}" if value.step is not None else "")
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is Ellipsis:
        return "..."
    if isinstance(value, type) or isinstance(value, np.dtype):
        return np.dtype(value).name
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def format_program(program: Program) -> str:
    """The jaxpr-like listing: one line per equation, `out:type = name[params] args`."""
    names = program.names()
    av = program.avals

    def typed(v: int) -> str:
        return f"{names.get(v, f'v{v}')}:{_aval(av[v][0], av[v][1])}"

    lines = ["{ lambda " + " ".join(typed(v) for v, _ in program.inputs) + " ;"]
    if program.reads:
        lines.append("  state " + " ".join(typed(v) for v, _ in program.reads) + " ;")
    lines.append("  let")
    for e in program.eqns:
        is_var = [any(True for _ in _vars_in(a)) for a in e.args]
        arrays = [a for a, v in zip(e.args, is_var) if v]
        consts = [a for a, v in zip(e.args, is_var) if not v] if e.kind != "numpy" else []
        params = [f"{k}={_show(v, names)}" for k, v in e.kwargs.items()]
        if e.kind == "numpy" or e.kind == "rng":
            arg_text = " ".join(_show(a, names) for a in e.args)
        else:
            arg_text = " ".join(_show(a, names) for a in arrays)
            params = [_show(c, names) for c in consts] + params
        head = ", ".join(typed(v) for v in e.outs) or "_"
        label = e.name + (f"[{', '.join(params)}]" if params else "")
        if e.kind == "guard":
            head, label = "_", f"guard[{e.name} == {e.expect!r}]"
        if e.effect and e.kind != "guard":
            label += " !"
        lines.append(f"    {head} = {label} {arg_text}".rstrip())
    outs = _show(program.outputs, names)
    lines.append(f"  in {outs}")
    if program.writes:
        lines.append("  writes " + ", ".join(f"{slot.label}{'.grad' if slot.slot == 'grad' else ''} <- "
                                              f"{'None' if v is None else names.get(v, f'v{v}')}"
                                              for slot, v in program.writes))
    lines.append("}")
    return "\n".join(lines)


# --- replay ---------------------------------------------------------------------------------------
class Replay:
    """The program as one generated Python function of straight-line NumPy calls over local
    variables; a variable is deleted after its last use, so arrays are freed as early as in eager."""

    def __init__(self, program: Program, plan: bool = True, split: bool = True) -> None:
        from .split import find_runs, holds

        self.program = program
        self.namespace: dict[str, Any] = {}
        self._const_names: dict[int, str] = {}
        self.runs = find_runs(program) if split else []  # equations run in parts on several threads
        hold = holds(self.runs, program)
        self.offsets: dict[int, int] = plan_buffers(program, hold) if plan else {}  # var -> arena offset
        self.arena_bytes = max((o + self._nbytes(v) for v, o in self.offsets.items()), default=0)
        self.run_sources: list[str] = []  # the split runs' functions (see _run_call)
        self.source = self._generate()
        code = compile(self.source, "<tapegrad replay>", "exec")
        exec(code, self.namespace)
        self.run = self._first_run if self.offsets else self.namespace["replay"]

    def _nbytes(self, v: int) -> int:
        shape, dtype = self.program.avals[v][:2]
        return int(np.prod(shape, dtype=np.int64)) * dtype.itemsize

    def _first_run(self, inputs: list) -> tuple:
        """Allocate the arena when the program first replays (a program traced but never replayed,
        such as the first step's, costs no memory), then run."""
        self.namespace["_buffers"] = self._allocate()
        self.run = self.namespace["replay"]
        return self.run(inputs)

    def _const(self, value: Any) -> str:
        key = id(value)
        name = self._const_names.get(key)
        if name is None:
            name = self._const_names[key] = f"c{len(self._const_names)}"
            self.namespace[name] = value
        return name

    def _expr(self, value: Any) -> str:
        t = type(value)
        if t is Var:
            return f"v{value.id}"
        if t is tuple:
            return "(" + "".join(self._expr(v) + ", " for v in value) + ")"
        if t is list:
            return "[" + ", ".join(self._expr(v) for v in value) + "]"
        if value is None or t is bool or t is int:
            return repr(value)
        if t is float and math.isfinite(value):
            return repr(value)
        return self._const(value)

    def _is_view(self, e: Eqn) -> bool:
        """Whether a reshape gave a view when traced (else replay calls the primitive, whose copy is
        placed to avoid 4K aliasing: allocator.copy_unaliased)."""
        (src,) = e.args
        if type(src) is not Var:
            return False
        shape, dtype, _, strides = self.program.avals[src.id]
        if strides is None:
            return False
        probe = np.lib.stride_tricks.as_strided(np.empty(1, dtype), shape=shape, strides=strides)  # never read
        try:
            probe.reshape(e.kwargs["shape"], copy=False)
        except (ValueError, TypeError):
            return False
        return True

    def _allocate(self) -> list[np.ndarray]:
        """One view of the arena per planned variable, laid out as the traced result was."""
        arena = np.empty(self.arena_bytes, np.uint8)
        views = []
        for v in self._planned:
            raw_shape, dtype, back = _layout(self.program.avals[v])
            views.append(np.ndarray(raw_shape, dtype, buffer=arena, offset=self.offsets[v]).transpose(back))
        return views

    def _generate(self) -> str:
        p = self.program
        last_use: dict[int, int] = {}
        for i, e in enumerate(p.eqns):
            for v in e.reads():
                last_use[v] = i
        keep = set(p.output_vars())
        self._last_use, self._keep = last_use, keep
        ins = [v for v, _ in p.inputs] + [v for v, _ in p.reads]
        body = ["def replay(inputs):"]
        self._planned = sorted(self.offsets)
        if self._planned:
            body.append("    " + "".join(f"b{v}, " for v in self._planned) + "= _buffers")
        body.append("    " + "".join(f"v{v}, " for v in ins) + "= inputs" if ins else "    pass")
        dead_at: dict[int, list[int]] = {}
        for v, i in last_use.items():
            if v not in keep:
                dead_at.setdefault(i, []).append(v)

        def dead_after(span: range, local: set[int] = frozenset()) -> list[str]:
            dead = [v for j in span for v in dead_at.get(j, ()) if v not in p.eqns[j].outs]
            dead += [o for j in span for o in p.eqns[j].outs if o not in last_use and o not in keep]
            dead = [v for v in dict.fromkeys(dead) if v not in local]
            return ["    del " + ", ".join(f"v{v}" for v in dead)] if dead else []

        runs = {run.start: run for run in self.runs}
        skip_to = 0
        for i, e in enumerate(p.eqns):
            if i < skip_to:
                continue
            run = runs.get(i)
            if run is None:
                body.append("    " + self._line(e))
                body.extend(dead_after(range(i, i + 1)))
                continue
            body.extend("    " + self._line(p.eqns[j]) for j in run.hoisted)  # views of values made before
            body.extend(self._run_call(run))
            skip_to = run.end
            local = {o for j in range(run.start, run.end) if j not in run.hoisted for o in p.eqns[j].outs
                     if last_use.get(o, -1) < run.end and o not in keep}  # made and used inside the run only
            body.extend(dead_after(range(run.start, run.end), local))
        outs = p.output_vars()
        body.append("    return (" + "".join(f"v{v}, " for v in outs) + ")")
        return "\n".join(body) + "\n"

    def _line(self, e: Eqn) -> str:
        """One equation as one line of Python."""
        fn = self._const(e.fn) if e.kind != "guard" else self._const(_guard(e))
        extra = []
        if e.outs and e.outs[0] in self.offsets:
            fn = self._const(_writer(e))
            extra = [f"out=b{e.outs[0]}"]
        inline = _INLINE.get(e.name) if e.kind == "prim" and not extra else None
        if inline is not None and _is_registered_forward(e) and (e.name != "reshape" or self._is_view(e)):
            call = inline.format(*[self._expr(a) for a in e.args], **{k: self._expr(v) for k, v in e.kwargs.items()})
        else:
            call = f"{fn}({', '.join([self._expr(a) for a in e.args] + [f'{k}={self._expr(v)}' for k, v in e.kwargs.items()] + extra)})"
        if len(e.outs) == 1 and not e.unpack:
            return f"v{e.outs[0]} = {call}"
        if e.outs:
            return "".join(f"v{o}, " for o in e.outs) + f"= {call}"
        return call

    def _run_call(self, run: Run) -> list[str]:
        """The lines calling a run's parts (split.run_split) and, into the namespace, the function
        that runs equations run.start..run.end-1 on one share [lo, hi) of the split axis."""
        from .parallel import run_split
        from .split import _kind

        p = self.program
        eqns = [p.eqns[j] for j in range(run.start, run.end) if j not in run.hoisted]
        made = [e.outs[0] for e in eqns]
        outer = list(dict.fromkeys(v for e in eqns for v in e.reads() if v not in made))
        # arrays read after the run: each part writes its share of them; the others live in a part only
        full = [o for o in made if self._last_use.get(o, -1) >= run.end or o in self._keep]
        lines = []
        for o in full:
            lines.append(f"    v{o} = b{o}" if o in self.offsets else f"    v{o} = {self._const(_empty(p.avals[o]))}()")
        name = f"run{run.start}"
        params = ", ".join(f"v{v}" for v in outer + full)
        src = [f"def {name}(lo, hi, {params}):"]

        def part(v: int) -> str:
            return f"v{v}[{':, ' * run.sliced[v]}lo:hi]"

        for v in outer:
            if v in run.sliced:
                src.append(f"    v{v} = {part(v)}")
        for e in eqns:
            o = e.outs[0]
            args = [self._expr(a) for a in e.args]
            kind = _kind(e)
            if kind == "map":
                if o in full:
                    fn = self._const(_writer(e) if e.kind == "prim" else e.fn)
                    src.append(f"    v{o} = {fn}({', '.join(args)}, out={part(o)})")
                else:
                    src.append(f"    v{o} = {self._const(e.fn)}({', '.join(args)})")
                continue
            kwargs = dict(e.kwargs)
            shape = kwargs.pop("shape", None)
            kw = [f"{key}={self._expr(val)}" for key, val in kwargs.items()]
            if shape is not None:  # sum_to and broadcast_to: the part's own share of the shape
                q = run.sliced[o]
                dims = [repr(d) if a != q else "hi - lo" for a, d in enumerate(shape)]
                kw.append("shape=(" + "".join(d + ", " for d in dims) + ")")
            call = f"{self._const(e.fn)}({', '.join(args + kw)})"
            if o in full:
                src.append(f"    {part(o)} = {call}")
                src.append(f"    v{o} = {part(o)}")
            else:
                src.append(f"    v{o} = {call}")
        exec(compile("\n".join(src) + "\n", f"<tapegrad replay {name}>", "exec"), self.namespace)
        self.run_sources.append("\n".join(src))
        chunk = f", chunk={run.chunk}" if run.chunk else ""
        return lines + [f"    {self._const(run_split)}({name}, {run.n}, {params}{chunk})"]


def _layout(aval: tuple) -> tuple[tuple[int, ...], np.dtype, tuple[int, ...]]:
    """(shape in memory order, dtype, axes back to the logical order) of a traced value: a buffer
    must be laid out as the traced result was (parallel.axis_order)."""
    shape, dtype, _, strides = aval
    order = axis_order(strides, len(shape))
    return tuple(shape[a] for a in order), dtype, tuple(np.argsort(order))


def _empty(aval: tuple) -> Callable[[], np.ndarray]:
    """A fresh array laid out as the traced value was."""
    raw_shape, dtype, back = _layout(aval)
    return lambda: np.empty(raw_shape, dtype).transpose(back)


#: Primitives whose forward is one ndarray method: replay calls the method itself (the same NumPy
#: call without the Python wrappers around it).
_INLINE = {"reshape": "{0}.reshape({shape})", "transpose": "{0}.transpose({axes})", "slice": "{0}[{index}]"}


def _is_registered_forward(e: Eqn) -> bool:
    from .primitive import REGISTRY

    prim = REGISTRY.get(e.name)
    return prim is not None and prim.forward is e.fn


def _writer(e: Eqn) -> Callable | None:
    """The out= form of an equation's call, if it has one."""
    if e.kind != "prim":
        return None
    from .primitive import REGISTRY, out_writer

    prim = REGISTRY.get(e.name)
    return None if prim is None or prim.forward is not e.fn else out_writer(prim)


def _may_alias(e: Eqn) -> bool:
    """Whether an equation's result may share memory with an argument (a view, einsum's transposes,
    a function returning its input): anything but a call known to make a fresh array."""
    if _writer(e) is not None or e.kind == "prim" and e.name in _FRESH:
        return False
    if e.kind == "numpy" and "out" not in e.kwargs:
        if isinstance(e.fn, np.ufunc) or isinstance(getattr(e.fn, "__self__", None), np.ufunc):
            return False  # a ufunc or its reduce/accumulate: a new array
        if e.name == "np.array" and e.kwargs.get("copy", True) is True:
            return False
    return True


_FRESH = {"matmul", "where", "concatenate", "take", "unslice", "window_sum", "scatter_add", "max", "sum"}


def plan_buffers(program: Program, hold: dict[int, int] | None = None) -> dict[int, int]:
    """Buffer planning: {variable: byte offset in one arena the replay owns}. Each equation that can
    write into a buffer (`out=`) gets a place there, packed first-fit among the values still in use,
    so the arena is about the largest set of planned values alive at once. A value is in use until
    the last read of it and of every view made from it. Values that leave the replay (outputs, state writes,
    arguments of opaque equations, and whatever they are views of) always get fresh arrays. `hold`
    ({variable: equation index}) keeps a value in use until at least that equation (split runs)."""
    eqns = program.eqns
    producer = {o: e for e in eqns for o in e.outs}
    escaping = set(program.output_vars())
    escaping.update(v for e in eqns if e.kind in ("opaque", "rng") for v in e.reads())
    stack = list(escaping)
    while stack:
        v = stack.pop()
        e = producer.get(v)
        if e is not None and _may_alias(e):
            for r in e.reads():
                if r not in escaping:
                    escaping.add(r)
                    stack.append(r)
    last: dict[int, int] = {}
    base_of: dict[int, set[int]] = {}  # view var -> the vars whose memory it may share
    for i, e in enumerate(eqns):
        for v in e.reads():
            last[v] = i
        if _may_alias(e):
            bases = set()
            for r in e.reads():
                bases |= base_of.get(r, {r})
            for o in e.outs:
                base_of[o] = bases
    end: dict[int, int] = {}  # a value's memory is in use until its own and its views' last reads
    for v, i in list(last.items()) + list((hold or {}).items()):
        for b in base_of.get(v, {v}):
            end[b] = max(end.get(b, -1), i)
    live: list[tuple[int, int, int]] = []  # (offset, nbytes, last equation) of placed values
    placed: dict[int, int] = {}
    for i, e in enumerate(eqns):
        if len(e.outs) == 1 and not e.unpack and "out" not in e.kwargs and _writer(e) is not None:
            v = e.outs[0]
            if v not in escaping and v in end:
                live = [block for block in live if block[2] >= i]  # values dead before this one is made
                nbytes = max(int(np.prod(program.avals[v][0], dtype=np.int64)) * program.avals[v][1].itemsize, 1)
                placed[v] = _first_fit(live, nbytes)
                live.append((placed[v], nbytes, end[v]))
    return placed


_ALIGN = 64


def _first_fit(live: list[tuple[int, int, int]], nbytes: int) -> int:
    """The lowest aligned offset where nbytes fit between the blocks still in use."""
    offset = 0
    for start, size, _ in sorted(live):
        if offset + nbytes <= start:
            break
        offset = max(offset, -(-(start + size) // _ALIGN) * _ALIGN)
    return offset


def _guard(e: Eqn) -> Callable:
    convert, expect, what, where = e.fn, e.expect, e.name, e.where

    def guard(value):
        got = convert(value)
        if got != expect and not (isinstance(got, float) and math.isnan(got) and math.isnan(expect)):
            from .capture import TraceError

            raise TraceError(
                f"replay: a value read back by {what} at {where} was {expect!r} when the step was traced and is "
                f"{got!r} now, so the recorded program does not apply. Run this step eagerly "
                "(compile(..., ) falls back only before state changes), or keep that value out of the step.")

    return guard


# --- passes ---------------------------------------------------------------------------------------
# Each pass edits the program in place and returns one line per kind of thing it removed.
def _summary(what: str, removed: list[str]) -> list[str]:
    if not removed:
        return []
    counts: dict[str, int] = {}
    for name in removed:
        counts[name] = counts.get(name, 0) + 1
    return [f"{what}: removed {len(removed)} equation(s) (" + ", ".join(f"{n} x{c}" for n, c in sorted(counts.items())) + ")"]


def _forwarding_pass(program: Program, what: str,
                     forward: Callable[[Eqn], "tuple[str, int | None] | None"]) -> list[str]:
    """Visit the equations in order, their inputs renamed first; when `forward(e)` returns
    (name, var), e goes and later readers (and the program's outputs) read var instead; (name,
    None) counts a rewrite of e in place."""
    mapping: dict[int, int] = {}
    kept, removed = [], []
    for e in program.eqns:
        if mapping:
            e.args = _substitute(e.args, mapping)
            e.kwargs = {k: _substitute(v, mapping) for k, v in e.kwargs.items()}
        hit = forward(e)
        if hit is not None:
            removed.append(hit[0])
        if hit is None or hit[1] is None:
            kept.append(e)
            continue
        mapping[e.outs[0]] = hit[1]
    program.eqns = kept
    _rename_outputs(program, mapping)
    return _summary(what, removed)


def dce(program: Program) -> list[str]:
    """Dead-code elimination: drop equations whose results nothing reads and that change nothing."""
    needed = set(program.output_vars())
    kept, removed = [], []
    for e in reversed(program.eqns):
        if e.effect or any(o in needed for o in e.outs):
            kept.append(e)
            needed.update(e.reads())
        else:
            removed.append(e.name)
    program.eqns = kept[::-1]
    return _summary("dead code", removed)


_VIEWS = {"reshape", "transpose", "slice", "broadcast_to", "sliding_windows", "cast", "sum_to", ".reshape", ".T",
          ".transpose", ".view", ".__getitem__", ".ravel", ".squeeze", ".swapaxes", ".diagonal", "np.asarray",
          "np.asanyarray", ".astype", "broadcast_to", "transpose", "reshape", "squeeze", "expand_dims", "moveaxis"}
_MUTATORS = {".__setitem__", ".fill", ".put", "copyto", "put_along_axis", "place", "putmask", ".sort"}


def _written(e: Eqn) -> Iterator[int]:
    """The variables an equation may write into."""
    if "out" in e.kwargs:
        yield from _vars_in(e.kwargs["out"])
    elif e.kind == "opaque":
        yield from e.reads()
    elif e.name in _MUTATORS or e.name.endswith(".at"):
        yield from _vars_in(e.args[:1])


def _mutated_roots(program: Program) -> set[int]:
    """Variables written in place, with the variables they are views of (a view shares its base's
    memory): passes leave their equations alone."""
    producer = {o: e for e in program.eqns for o in e.outs}
    stack = [v for e in program.eqns for v in _written(e)]
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        if v in seen:
            continue
        seen.add(v)
        e = producer.get(v)
        if e is not None and e.name in _VIEWS:
            stack.extend(e.reads())
    return seen


def _key(e: Eqn) -> Any:
    try:
        key = (id(e.fn), _freeze(e.args), _freeze(tuple(sorted(e.kwargs.items()))))
        hash(key)
        return key
    except TypeError:
        return None


def _freeze(x: Any) -> Any:
    t = type(x)
    if t is tuple or t is list:
        return ("T",) + tuple(_freeze(v) for v in x)
    if isinstance(x, np.ndarray):
        return ("A", id(x))
    if isinstance(x, slice):
        return ("S", x.start, x.stop, x.step)
    return x


def cse(program: Program) -> list[str]:
    """Common subexpressions: a pure equation identical to an earlier one (same call, same
    arguments) reuses its result. Never across an in-place write, which could change the inputs."""
    seen: dict[Any, Eqn] = {}
    mapping: dict[int, int] = {}
    protected = _mutated_roots(program)
    kept, removed = [], []
    for e in program.eqns:
        if mapping:
            e.args = _substitute(e.args, mapping)
            e.kwargs = {k: _substitute(v, mapping) for k, v in e.kwargs.items()}
        if e.effect:
            if e.kind != "guard":  # a guard only reads; anything else may write: forget what was seen
                seen.clear()
            kept.append(e)
            continue
        key = _key(e) if e.kind in ("prim", "numpy") and not protected.intersection(e.outs) else None
        first = seen.get(key) if key is not None else None
        if first is not None and len(first.outs) == len(e.outs):
            mapping.update(zip(e.outs, first.outs))
            removed.append(e.name)
            continue
        if key is not None:
            seen[key] = e
        kept.append(e)
    program.eqns = kept
    _rename_outputs(program, mapping)
    return _summary("common subexpressions", removed)


def elide_copies(program: Program) -> list[str]:
    """np.array(x, copy=True) -> x when no one else can see x's memory: x is made fresh inside the
    program (or is a view of such an array), nothing else reads it or its base, nothing writes
    into them, and the copy would have x's layout. (Backward copies every gradient it hands to a
    leaf, so the caller owns it; in a replay the gradient's own array is already owned.)"""
    producer = {o: e for e in program.eqns for o in e.outs}
    readers: dict[int, int] = {}
    for e in program.eqns:
        for v in e.reads():
            readers[v] = readers.get(v, 0) + 1
    leaving = set(program.output_vars()) | {v for v, _ in program.inputs} | {v for v, _ in program.reads}
    protected = _mutated_roots(program)

    def forward(e: Eqn) -> tuple[str, int] | None:
        if (e.kind == "numpy" and e.name == "np.array" and e.kwargs == {"copy": True} and len(e.args) == 1
                and type(e.args[0]) is Var and len(e.outs) == 1):
            src, out = e.args[0].id, e.outs[0]
            same_layout = all(program.avals[src][i] == program.avals[out][i] for i in (0, 1, 3))
            if same_layout and _private(program, src, producer, readers, leaving, protected):
                return "np.array (copy)", src
        return None

    return _forwarding_pass(program, "copies", forward)


def _private(program: Program, v: int, producer: dict, readers: dict, leaving: set, protected: set) -> bool:
    """v is read once (by the copy), and so is each view between it and the fresh array it comes from."""
    while True:
        if v in leaving or v in protected or readers.get(v, 0) != 1:
            return False
        e = producer.get(v)
        if e is None:
            return False
        if not _may_alias(e) or _reduces(program, e):
            return True
        if not (e.kind == "prim" and e.name in ("transpose", "reshape") and type(e.args[0]) is Var):
            return False
        v = e.args[0].id


def _reduces(program: Program, e: Eqn) -> bool:
    """A sum_to that changes the shape: a fresh array (sum_to to the same shape returns its input)."""
    return (e.kind == "prim" and e.name == "sum_to" and type(e.args[0]) is Var
            and program.avals[e.args[0].id][0] != program.avals[e.outs[0]][0])


def _rename_outputs(program: Program, mapping: dict[int, int]) -> None:
    if not mapping:
        return
    program.outputs = _substitute(program.outputs, mapping)
    program.writes = [(slot, None if v is None else mapping.get(v, v)) for slot, v in program.writes]


def fold_shapes(program: Program) -> list[str]:
    """reshape(reshape(x)) -> reshape(x); a reshape to x's own shape and transpose(transpose(x)) with
    the identity permutation -> x; transpose(transpose(x, a), b) -> transpose(x, a[b]).
    The chain's first link is then dead when nothing else read it: dce reports it."""
    producer = {o: e for e in program.eqns for o in e.outs}
    protected = _mutated_roots(program)

    def forward(e: Eqn) -> tuple[str, int | None] | None:
        if not (e.kind == "prim" and e.name in ("reshape", "transpose") and not protected.intersection(e.outs)):
            return None
        (src,) = e.args
        src_eqn = producer.get(src.id)
        chained = src_eqn is not None and src_eqn.kind == "prim" and src_eqn.name == e.name and src.id not in protected
        if e.name == "reshape":
            if program.avals[src.id][0] == tuple(e.kwargs["shape"]) and program.avals[src.id][1] == program.avals[e.outs[0]][1]:
                return "reshape (identity)", src.id
            if chained:
                e.args = src_eqn.args
                return "reshape (chain)", None
            return None
        axes = tuple(e.kwargs["axes"])
        if axes == tuple(range(len(axes))):
            return "transpose (identity)", src.id
        if not chained:
            return None
        combined = tuple(tuple(src_eqn.kwargs["axes"])[a] for a in axes)
        e.args = src_eqn.args
        e.kwargs = dict(e.kwargs, axes=combined)
        identity = combined == tuple(range(len(combined)))
        return "transpose (chain)", src_eqn.args[0].id if identity else None

    return _forwarding_pass(program, "shape folding", forward)


#: NumPy calls whose result depends on their argument's shape and dtype only (known at trace time)
_SHAPE_ONLY = {"ones_like": np.ones, "zeros_like": np.zeros}


def fold_constants(program: Program) -> list[str]:
    """Evaluate now the pure equations whose inputs are all constants (or whose result depends only on
    shapes, like the ones backward starts from); their results become constants. Then a multiply by a
    constant of ones is its other operand (exactly: 1.0 * y == y)."""
    protected = _mutated_roots(program)
    leaving = set(program.output_vars())  # a result the caller receives stays a variable
    mapping_values: dict[int, Any] = {}
    kept, removed = [], []
    for e in program.eqns:
        if mapping_values:
            e.args = _bind(e.args, mapping_values)
            e.kwargs = {k: _bind(v, mapping_values) for k, v in e.kwargs.items()}
        if (e.kind == "numpy" and e.name in _SHAPE_ONLY and not e.effect and not e.kwargs and len(e.outs) == 1
                and not protected.intersection(e.outs) and e.outs[0] not in leaving):
            shape, dtype = program.avals[e.outs[0]][:2]
            value = _SHAPE_ONLY[e.name](shape, dtype)
            value.flags.writeable = False
            mapping_values[e.outs[0]] = value
            removed.append(e.name)
            continue
        if (e.kind in ("prim", "numpy") and not e.effect and not any(True for _ in e.reads())
                and not protected.intersection(e.outs) and e.outs and not leaving.intersection(e.outs)):
            result = e.fn(*e.args, **e.kwargs)
            results = result if len(e.outs) > 1 else (result,)
            for o, r in zip(e.outs, results):
                if isinstance(r, np.ndarray):
                    r.flags.writeable = False
                mapping_values[o] = r
            removed.append(e.name)
            continue
        kept.append(e)
    program.eqns = kept
    return _summary("constant folding", removed) + _drop_unit_factors(program, protected)


def _is_ones(value: Any) -> bool:
    return isinstance(value, (np.ndarray, float, int)) and not isinstance(value, bool) and np.size(value) <= (1 << 16) \
        and bool(np.all(np.asarray(value) == 1))


def _drop_unit_factors(program: Program, protected: set[int]) -> list[str]:
    """mul(ones, y) and mul(y, ones) -> y, when the result has y's shape and dtype (the ones do not
    broadcast y up or change its type)."""
    def forward(e: Eqn) -> tuple[str, int] | None:
        if e.kind == "prim" and e.name == "mul" and not e.kwargs and len(e.outs) == 1 and not protected.intersection(e.outs):
            a, b = e.args
            other = b if _is_ones(a) else a if _is_ones(b) else None
            if type(other) is Var and program.avals[other.id][:2] == program.avals[e.outs[0]][:2]:
                return "mul (by ones)", other.id
        return None

    return _forwarding_pass(program, "unit factors", forward)


def _bind(template: Any, values: dict[int, Any]) -> Any:
    t = type(template)
    if t is Var:
        return values.get(template.id, template)
    if t is tuple or t is list:
        return t(_bind(x, values) for x in template)
    return template


# --- drawing ----------------------------------------------------------------------------------------
def to_dot(program: Program, graph_class: Any = None, rankdir: str = "TB") -> Any:
    """A graphviz.Digraph of the program: one box per equation, edges labelled with shape and dtype
    (what `autograd.viz.draw(program)` returns). Colours: primitives grey, NumPy calls white, opaque
    updates orange, random draws khaki, guards pink, inputs blue, outputs green."""
    import graphviz

    names = program.names()
    dot = (graph_class or graphviz.Digraph)("program", graph_attr={"rankdir": rankdir},
                                            node_attr={"fontname": "Helvetica", "fontsize": "10"})
    made: dict[int, str] = {}
    for v, label in list(program.inputs) + [(v, s.label) for v, s in program.reads]:
        made[v] = f"in{v}"
        dot.node(made[v], f"{label}\n{_aval(*program.avals[v][:2])}", shape="box", style="filled", fillcolor="lightblue")
    for i, e in enumerate(program.eqns):
        node = f"e{i}"
        color = {"prim": "lightgrey", "numpy": "white", "opaque": "orange", "rng": "khaki", "guard": "pink"}[e.kind]
        dot.node(node, e.name, shape="box", style="filled", fillcolor=color)
        for v in e.reads():
            if v in made:
                dot.edge(made[v], node, label=_aval(*program.avals[v][:2]))
        for o in e.outs:
            made[o] = node
    for v in program.output_vars():
        if v in made:
            dot.node(f"out{v}", names.get(v, f"v{v}"), shape="box", style="filled", fillcolor="darkolivegreen1")
            dot.edge(made[v], f"out{v}")
    return dot
