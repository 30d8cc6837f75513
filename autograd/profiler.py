"""Per-op profiling: forward and backward time, bytes saved for backward, NaN/Inf watch.

    with autograd.profiler.profile() as prof:
        loss = model(x)
        loss.backward()
    print(prof.table())                     # per primitive: count, fwd ms, bwd ms, saved bytes
    autograd.viz.draw(loss_before_backward, overlay=prof)   # or draw before backward(retain_graph=True)

The profiler is an observer (`autograd.graph.observe`): forward time comes with each `apply` event,
backward time per node from the `vjp_start`/`vjp_end` events around its VJPs. Inside a profile the
user's source line of every recorded op is captured (`node.source`).
"""
from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .graph import Node, observe, user_frame
from .introspect import node_saved_bytes
from .tensor import Tensor

@dataclass
class OpStats:
    """What one recorded node cost."""

    op: str
    fwd_s: float
    bwd_s: float = 0.0
    saved_bytes: int = 0
    nonfinite_out: bool = False
    nonfinite_grad: bool = False


@dataclass
class PrimStats:
    """Totals per primitive, recorded or not (no_grad calls count too)."""

    count: int = 0
    fwd_s: float = 0.0
    bwd_count: int = 0
    bwd_s: float = 0.0
    saved_bytes: int = 0
    nonfinite: int = 0


class profile:
    """Context manager recording per-op costs; `table()` summarises, `viz.draw(overlay=prof)` draws them.

    record_source: store the user's source line on each recorded node (a frame walk per op).
    check_finite: flag ops whose output or input-gradient holds NaN/Inf (one pass over each array).
    """

    def __init__(self, record_source: bool = True, check_finite: bool = True) -> None:
        self.record_source = record_source
        self.check_finite = check_finite
        self.per_prim: dict[str, PrimStats] = {}
        self._nodes: "weakref.WeakKeyDictionary[Node, OpStats]" = weakref.WeakKeyDictionary()
        self._starts: list[tuple[Node, float]] = []
        self.wall_s = 0.0
        self._observer = observe(on_apply=self._apply, on_vjp_start=self._vjp_start, on_vjp_end=self._vjp_end)

    # --- context ------------------------------------------------------------------------------
    def __enter__(self) -> "profile":
        self._observer.subscribe()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall_s += time.perf_counter() - self._t0
        self._observer.unsubscribe()

    # --- events -------------------------------------------------------------------------------
    def _apply(self, prim: Any, args: tuple, params: dict, out: np.ndarray, node: Node | None,
               seconds: float) -> None:
        if self._starts:  # ops run by a VJP are part of that node's backward time
            return
        ps = self.per_prim.setdefault(prim.name, PrimStats())
        ps.count += 1
        ps.fwd_s += seconds
        bad = self.check_finite and out.dtype.kind in "fc" and not np.isfinite(out).all()
        ps.nonfinite += bad
        if node is not None:
            saved = node_saved_bytes(node)
            ps.saved_bytes += saved
            self._nodes[node] = OpStats(prim.name, seconds, 0.0, saved, bool(bad))
            if self.record_source and node.source is None:
                node.source = user_frame(2)

    def _vjp_start(self, node: Node, g: Any) -> None:
        self._starts.append((node, time.perf_counter()))

    def _vjp_end(self, node: Node, results: Any) -> None:
        if not self._starts:
            return
        _, t0 = self._starts.pop()
        seconds = time.perf_counter() - t0
        ps = self.per_prim.setdefault(node.prim.name, PrimStats())
        ps.bwd_count += 1
        ps.bwd_s += seconds
        stats = self._nodes.get(node)
        if stats is None:
            stats = self._nodes[node] = OpStats(node.prim.name, None, 0.0, 0)
        stats.bwd_s += seconds
        if self.check_finite and any(_nonfinite(r) for r in results or ()):
            stats.nonfinite_grad = True
            ps.nonfinite += 1

    # --- reading ------------------------------------------------------------------------------
    def stats(self, node: Node | None) -> OpStats | None:
        """This node's costs, or None if it ran outside the profile."""
        return None if node is None else self._nodes.get(node)

    def nonfinite_ops(self) -> list[str]:
        """Primitives that produced NaN/Inf in an output or a gradient, in first-seen order."""
        return [name for name, ps in self.per_prim.items() if ps.nonfinite]

    def table(self, sort_by: str = "total", row_limit: int | None = None) -> str:
        """Text summary per primitive, slowest first: calls, forward ms, backward ms, saved bytes."""
        keys = {"total": lambda p: p.fwd_s + p.bwd_s, "fwd": lambda p: p.fwd_s, "bwd": lambda p: p.bwd_s,
                "count": lambda p: p.count, "saved": lambda p: p.saved_bytes}
        if sort_by not in keys:
            raise ValueError(f"table: sort_by must be one of {sorted(keys)}, got {sort_by!r}")
        rows = sorted(self.per_prim.items(), key=lambda kv: (-keys[sort_by](kv[1]), kv[0]))[:row_limit]
        head = f"{'op':<18}{'calls':>7}{'fwd ms':>10}{'bwd calls':>11}{'bwd ms':>10}{'total ms':>10}{'saved':>11}  flags"
        lines = [head, "-" * len(head)]
        tot = PrimStats()
        for name, p in rows:
            lines.append(
                f"{name:<18}{p.count:>7}{p.fwd_s * 1e3:>10.3f}{p.bwd_count:>11}{p.bwd_s * 1e3:>10.3f}"
                f"{(p.fwd_s + p.bwd_s) * 1e3:>10.3f}{_kb(p.saved_bytes):>11}  {'NaN/Inf' if p.nonfinite else ''}"
            )
            tot.count += p.count
            tot.fwd_s += p.fwd_s
            tot.bwd_count += p.bwd_count
            tot.bwd_s += p.bwd_s
            tot.saved_bytes += p.saved_bytes
        lines.append("-" * len(head))
        lines.append(
            f"{'total':<18}{tot.count:>7}{tot.fwd_s * 1e3:>10.3f}{tot.bwd_count:>11}{tot.bwd_s * 1e3:>10.3f}"
            f"{(tot.fwd_s + tot.bwd_s) * 1e3:>10.3f}{_kb(tot.saved_bytes):>11}"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def _nonfinite(r: Any) -> bool:
    if not isinstance(r, Tensor) or r.data.dtype.kind not in "fc":
        return False
    return not np.isfinite(r.data).all()


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"
