"""Shared timing helpers for a shared, noisy machine: the contenders are timed in interleaved
rounds (A, B, C, A, B, C, ...), so a burst of load hits them alike, and each keeps its best round."""
from __future__ import annotations

import os
import time
from typing import Callable


def best_time(fn: Callable[[], object], repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """The fastest of `repeat` runs of `number` calls, in seconds per call."""
    return interleaved({"fn": fn}, rounds=repeat, number=number, warmup=warmup)["fn"]


#: time.perf_counter (wall) by default; BENCH_CLOCK=cpu uses the process's CPU time, which a
#: loaded machine's preemptions do not inflate (it counts every thread of the process).
CLOCK = time.process_time if os.environ.get("BENCH_CLOCK") == "cpu" else time.perf_counter


def interleaved(fns: dict[str, Callable[[], object]], rounds: int = 9, number: int = 1,
                warmup: int = 1) -> dict[str, float]:
    """Seconds per call of each function: the best of `rounds` interleaved rounds."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    best = {name: float("inf") for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            start = CLOCK()
            for _ in range(number):
                fn()
            best[name] = min(best[name], (CLOCK() - start) / number)
    return best


def try_import_torch(threads: int = 2):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch
