"""Replay on more than one core: runs of elementwise equations, split along one axis.

NumPy's ufuncs run on one core; only BLAS used the second. In a conv net's step, half of the time
is elementwise work (batch norm's arithmetic, ReLU, their VJPs, per-channel sums). A run of
consecutive equations that each map a slice of their inputs along one axis to the same slice of
their output (elementwise ops, broadcasts of per-channel values, sums over the other axes) runs as
independent parts: each thread runs the whole run on its share of that axis, so the parts never
touch each other's memory and the threads meet once per run, not once per op. Measured (LeNet-BN,
batch 128, compiled step on two threads, A/B in fresh processes, with autograd.parallel's matmul
split): 202.6 -> 174.9 ms median of 5.

Each part runs its share in chunks of ~parallel.CHUNK_BYTES of its largest array, so that a run's
intermediates stay in cache from one equation to the next instead of making a trip to memory per
equation. Measured (the same step, A/B in fresh processes, 4 rounds): one thread 248 -> 235 ms,
two threads 157 -> 149 ms. Chunks of one channel (100-400 KB) measured slower on two threads
(215 ms against 175): each NumPy call hands the GIL over, and small chunks mean many calls.

`find_runs(program)` picks the runs when a Program is prepared; `Replay` generates one function per
run and calls it through `parallel.run_split`, which uses `get_num_threads()` parts at call time.
Each part computes what the whole would for its elements (the same ufunc per element, the same
reduction order per kept element: tests/autograd/test_parallel.py), so a run's results do not
depend on the thread count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import parallel
from .parallel import axis_order
from .program import Eqn, Program, Var

#: A run is split only when it touches at least this many elements in all (waking a thread costs
#: ~90 µs here; a float32 ufunc runs ~1 ns per element).
MIN_ELEMENTS = 1 << 20

#: NumPy calls recorded outside primitives that are elementwise too (the running statistics' updates,
#: the relu VJP's mask).
ELEMENTWISE_UFUNCS = frozenset({np.add, np.subtract, np.multiply, np.divide, np.true_divide, np.negative,
                                np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal,
                                np.maximum, np.minimum, np.logical_and, np.logical_or, np.logical_not, np.exp,
                                np.log, np.tanh, np.sqrt, np.power, np.absolute, np.sign})


# --- finding the runs ------------------------------------------------------------------------------
@dataclass
class Run:
    """Equations start..end-1, split along `axis` of `shape` (size n). `sliced[v]` is the axis of
    variable v that is split (absent: v is read whole by every part)."""

    start: int
    end: int
    shape: tuple[int, ...]
    axis: int
    sliced: dict[int, int] = field(default_factory=dict)
    elements: int = 0
    chunk: int = 0  # indices of the split axis per chunk (chunk_size); 0: not chunked
    hoisted: list[int] = field(default_factory=list)  # equations run before it, not in its parts

    @property
    def n(self) -> int:
        return self.shape[self.axis]


def _split_axis(run: Run, shape: tuple[int, ...]) -> int | None | bool:
    """Where `shape` (broadcast against the run's shape, aligned right) is split: its axis, None if
    it is read whole (size 1 or absent there), False if it does not broadcast to the run's shape."""
    lead = len(run.shape) - len(shape)
    if lead < 0 or any(s not in (1, r) for s, r in zip(shape, run.shape[lead:])):
        return False
    q = run.axis - lead
    return q if q >= 0 and shape[q] == run.n else None


def _kind(e: Eqn) -> str | None:
    """'map' (elementwise with out=), 'reduce' (sum keeping dims), 'view' (broadcast_to) or None."""
    if e.effect or len(e.outs) != 1 or e.unpack:
        return None
    if e.kind == "prim":
        from .primitive import REGISTRY

        prim = REGISTRY.get(e.name)
        if prim is None or prim.forward is not e.fn:
            return None
        if prim.elementwise and not e.kwargs:
            return "map"
        if e.name == "sum" and e.kwargs.get("keepdims") is True and isinstance(e.kwargs.get("axis"), tuple):
            return "reduce"
        if e.name == "sum_to":
            return "reduce"
        if e.name == "broadcast_to":
            return "view"
        return None
    if e.kind == "numpy" and not e.kwargs and e.fn in ELEMENTWISE_UFUNCS:
        return "map"
    return None


def _fits(run: Run, e: Eqn, kind: str, program: Program) -> dict[int, int | None] | None:
    """{var: split axis or None} for e's arguments and output if e can join the run, else None."""
    shapes = program.avals
    out = e.outs[0]
    where: dict[int, int | None] = {}
    for a in e.args:
        if type(a) is Var:
            q = _split_axis(run, shapes[a.id][0])
            if q is False or (q is None and a.id in run.sliced):
                return None
            where[a.id] = q
        elif isinstance(a, np.ndarray) and a.ndim:
            return None  # an array constant: kept simple, never split
    q = _split_axis(run, shapes[out][0])
    if q is None or q is False:
        return None  # every part would write the whole of it
    if kind == "reduce":
        (src,) = [a for a in e.args if type(a) is Var]
        x_shape, o_shape = shapes[src.id][0], shapes[out][0]
        if where[src.id] is None or len(x_shape) != len(o_shape):
            return None  # sum_to dropping leading axes moves the split axis
        if e.name == "sum" and where[src.id] in {a % len(x_shape) for a in e.kwargs["axis"]}:
            return None
    where[out] = q
    return where


def find_runs(program: Program, min_elements: int | None = None) -> list[Run]:
    """The runs worth splitting, in order: maximal sequences of consecutive splittable equations
    over one shape and axis, whose results read after the run can be written in place (no view
    leaves a run). At each start the axis is the one that carries the run furthest (batch norm's
    channel axis, not the batch axis its statistics sum over), the outermost in memory on a tie."""
    min_elements = MIN_ELEMENTS if min_elements is None else min_elements
    eqns = program.eqns
    last_read: dict[int, int] = {}
    for i, e in enumerate(eqns):
        for v in e.reads():
            last_read[v] = i
    leaving = set(program.output_vars())
    runs: list[Run] = []
    i = 0
    while i < len(eqns):
        e = eqns[i]
        kind = _kind(e)
        if kind is None or kind == "view":
            i += 1
            continue
        big = max([a.id for a in e.args if type(a) is Var] + [e.outs[0]], key=lambda v: _size(program, v))
        shape, _, _, strides = program.avals[big]
        tries = [_grow(program, i, tuple(shape), axis, last_read, leaving)
                 for axis in axis_order(strides, len(shape)) if shape[axis] > 1]
        best = max(tries, key=lambda r: (r.end, r.elements), default=None)  # max keeps the first of equals
        if best is None or best.end == i:
            i += 1
            continue
        if best.elements >= min_elements:
            best.chunk = chunk_size(best, program)
            runs.append(best)
        i = best.end
    return runs


#: Pure reshapes and transposes of values made before a run: computed just before it (they are
#: views, or copies of what the run does not write), so that they do not cut the run in two.
_HOISTABLE = frozenset({"reshape", "transpose"})


def _grow(program: Program, start: int, shape: tuple[int, ...], axis: int, last_read: dict[int, int],
          leaving: set[int]) -> Run:
    run = Run(start, start, shape, axis)
    made: set[int] = set()
    for i in range(start, len(program.eqns)):
        e = program.eqns[i]
        kind = _kind(e)
        if kind is None:
            if e.kind == "prim" and e.name in _HOISTABLE and not e.effect and not made.intersection(e.reads()):
                run.hoisted.append(i)
                continue
            break
        where = _fits(run, e, kind, program)
        if where is None:
            break
        for v, q in where.items():
            if q is not None:
                run.sliced[v] = q
        made.update(e.outs)
        run.end = i + 1
        run.elements += max(_size(program, v) for v in where)
    _trim_views(run, program.eqns, last_read, leaving)
    run.hoisted = [j for j in run.hoisted if j < run.end]
    return run


def chunk_size(run: Run, program: Program) -> int:
    """Indices of the split axis per chunk (parallel.chunk_of over the run's largest split array)."""
    return parallel.chunk_of(run.n, max(_size(program, v) * program.avals[v][1].itemsize for v in run.sliced))


def _size(program: Program, v: int) -> int:
    return int(np.prod(program.avals[v][0], dtype=np.int64))


def _trim_views(run: Run, eqns: list[Eqn], last_read: dict[int, int], leaving: set[int]) -> None:
    """End the run before the first view (broadcast_to) that is read after it or leaves the program,
    and drop trailing views and hoisted equations (the run is only what comes before them)."""
    for i in range(run.start, run.end):
        e = eqns[i]
        if _kind(e) == "view" and (last_read.get(e.outs[0], -1) >= run.end or e.outs[0] in leaving):
            run.end = i
            break
    while run.end > run.start and (run.end - 1 in run.hoisted or _kind(eqns[run.end - 1]) == "view"):
        run.end -= 1


def holds(runs: list[Run], program: Program) -> dict[int, int]:
    """{var: equation index} keeping every value a run reads or writes alive (unshared by the buffer
    planner) until the run's last equation: its parts run at once, each at its own equation."""
    held: dict[int, int] = {}
    for run in runs:
        for e in program.eqns[run.start:run.end]:
            for v in list(e.reads()) + list(e.outs):
                held[v] = max(held.get(v, -1), run.end - 1)
    return held
