"""Shared timing helpers: best-of-N wall time, so a noisy shared machine inflates nothing."""
from __future__ import annotations

import time
from typing import Callable


def best_time(fn: Callable[[], object], repeat: int = 7, number: int = 1, warmup: int = 1) -> float:
    """The fastest of `repeat` runs of `number` calls, in seconds per call."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def try_import_torch(threads: int = 2):
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch
