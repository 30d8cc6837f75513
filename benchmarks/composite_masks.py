"""Eager cost of the composites whose masks and shifts are recorded primitives (softmax's
stop_gradient shift, cross_entropy's integer labels, maximum's comparison): forward + backward,
median of repeated runs of this process's CPU time (time.process_time: on a shared machine, time spent
waiting for a core is not counted; on a quiet one it equals wall time). A/B two trees by running it in fresh processes:

    cd /tmp && PYTHONPATH=/path/to/tree_a python /path/to/composite_masks.py
    cd /tmp && PYTHONPATH=/path/to/tree_b python /path/to/composite_masks.py

(from outside both trees: `python -c`/`-m` put the current directory ahead of PYTHONPATH; the
first line printed is the autograd that was imported).
"""
from __future__ import annotations

import statistics
import time
import timeit

import numpy as np

import autograd as ag
import nn.functional as NF


def _case_softmax():
    x = ag.tensor(np.random.default_rng(0).standard_normal((32, 10)), requires_grad=True)
    return lambda: ag.softmax(x, axis=1).sum().backward()


def _case_cross_entropy():
    g = np.random.default_rng(0)
    x = ag.tensor(g.standard_normal((32, 10)), requires_grad=True)
    labels = ag.tensor(g.integers(0, 10, 32))
    return lambda: NF.cross_entropy(x, labels).backward()


def _case_maximum():
    g = np.random.default_rng(0)
    x = ag.tensor(g.standard_normal(16), requires_grad=True)
    y = ag.tensor(g.standard_normal(16))
    return lambda: ag.maximum(x, y).sum().backward()


CASES = {"softmax (32, 10) fwd+bwd": _case_softmax, "cross_entropy (32, 10) int labels fwd+bwd": _case_cross_entropy,
         "maximum (16,) fwd+bwd": _case_maximum}


def main(repeat: int = 15, number: int = 2000) -> None:
    print(f"autograd from {ag.__file__}")
    for name, make in CASES.items():
        step = make()
        runs = timeit.repeat(step, repeat=repeat, number=number, timer=time.process_time)
        print(f"{name:45s} {statistics.median(runs) / number * 1e6:7.2f} us (best {min(runs) / number * 1e6:.2f})")


if __name__ == "__main__":
    main()
