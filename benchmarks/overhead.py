"""Per-op overhead: forward + backward through a chain of 1,000 ops on small tensors.

Small nets are bound by what each op costs in Python, not by arithmetic. The chain cycles through
mul, add and tanh on 16-element float32 vectors (`y = tanh(y * w + b)`, 333 times, then a sum) and
takes the gradients of the sum with respect to x, w and b. Contenders, each in its own fresh process
(see _common.py): raw NumPy with a hand-written backward (the floor), tapegrad eager, tapegrad
compiled (`autograd.compile`: the traced chain replayed) and PyTorch eager. The parent prints each
one's microseconds per op and the per-round ratios PyTorch time / its time (> 1: faster than PyTorch):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/overhead.py          # 1 and 2 threads
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/overhead.py --threads 1 --rounds 9 --clock cpu
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

LINKS = 333  # (mul, add, tanh) links
N_OPS = 3 * LINKS + 1  # counting the final sum
SIZE = 16
FRAMEWORKS = ("numpy", "tapegrad", "compiled", "torch")


def numpy_chain(np, x, w, b):
    ys = [x]
    y = x
    for _ in range(LINKS):
        y = np.tanh(y * w + b)
        ys.append(y)
    g = np.ones_like(x)
    gw = np.zeros_like(w)
    gb = np.zeros_like(b)
    for i in range(LINKS, 0, -1):
        g = g * (1 - ys[i] * ys[i])
        gb += g
        gw += g * ys[i - 1]
        g = g * w
    return g, gw, gb


def chain(tanh, grad, x, w, b):
    """The chain in an autodiff framework: `grad(output, inputs)` returns the input gradients."""
    y = x
    for _ in range(LINKS):
        y = tanh(y * w + b)
    return grad(y.sum(), [x, w, b])


def child(framework: str, threads: int, min_time: float) -> None:
    framework = C.child_setup(threads, framework)
    import numpy as np

    rng = np.random.default_rng(0)
    xs, ws, bs = (rng.standard_normal(SIZE).astype(np.float32) * 0.5 for _ in range(3))
    torch = None
    if framework == "numpy":
        def run():
            return numpy_chain(np, xs, ws, bs)
    elif framework == "torch":
        import torch

        x, w, b = (torch.tensor(a, requires_grad=True) for a in (xs, ws, bs))

        def run():
            return chain(torch.tanh, torch.autograd.grad, x, w, b)
    else:
        import autograd as ag

        x, w, b = (ag.tensor(a, requires_grad=True) for a in (xs, ws, bs))

        def eager(x, w, b):
            return chain(ag.tanh, ag.grad, x, w, b)

        fn = ag.compile(eager) if framework == "compiled" else eager

        def run():
            return fn(x, w, b)
    info = C.pin_threads(threads, torch)
    timing = C.timed({"chain": run}, min_time, warmup=3)
    if framework == "compiled":
        info["compiled_traces"] = fn.traces  # 1 when every timed call replayed
    C.child_report({**timing, "info": info})


def main() -> None:
    args = C.parent_args(__doc__, default_rounds=5, default_threads=(1, 2), frameworks=FRAMEWORKS,
                         default_frameworks=FRAMEWORKS).parse_args()  # ~1.5 min on a quiet machine
    if args.framework:
        if args.case and args.case[0] == "sgemm":
            return C.sgemm_child(args.threads[0])
        return child(args.framework, args.threads[0], args.min_time)
    metric = C.Metric("chain", 1e6 / N_OPS, label="us/op")
    C.run_parent(__file__, args, ["chain"], [metric],
                 lambda case: f"forward+backward, chain of {N_OPS} ops on float32[{SIZE}], microseconds per op")


if __name__ == "__main__":
    main()
