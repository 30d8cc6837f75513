"""Per-op overhead: forward + backward through a chain of 1,000 ops on small tensors.

Small nets are bound by what each op costs in Python, not by arithmetic. The chain cycles through
mul, add and tanh on 16-element float32 vectors; raw NumPy runs the same chain with a hand-written
backward (the floor), PyTorch eager the same chain with autograd.

    python benchmarks/overhead.py
"""
from __future__ import annotations

import numpy as np

import autograd as ag
from _common import interleaved, try_import_torch

N_OPS = 1000
SIZE = 16


def tapegrad_chain(x, w, b):
    y = x
    for i in range(N_OPS // 3):
        y = (y * w + b).tanh()
    y.sum().backward()


def numpy_chain(x, w, b):
    ys = [x]
    y = x
    for _ in range(N_OPS // 3):
        y = np.tanh(y * w + b)
        ys.append(y)
    g = np.ones_like(x)
    gw = np.zeros_like(w)
    gb = np.zeros_like(b)
    for i in range(N_OPS // 3, 0, -1):
        g = g * (1 - ys[i] * ys[i])
        gb += g
        gw += g * ys[i - 1]
        g = g * w
    return g, gw, gb


def torch_chain(torch, x, w, b):
    y = x
    for _ in range(N_OPS // 3):
        y = torch.tanh(y * w + b)
    y.sum().backward()


def main() -> None:
    rng = np.random.default_rng(0)
    xs, ws, bs = (rng.standard_normal(SIZE).astype(np.float32) * 0.5 for _ in range(3))
    n = (N_OPS // 3) * 3 + 1  # ops per run, counting the final sum
    x, w, b = (ag.tensor(a, requires_grad=True) for a in (xs, ws, bs))
    fns = {"tapegrad": lambda: tapegrad_chain(x, w, b), "numpy": lambda: numpy_chain(xs, ws, bs)}
    torch = try_import_torch()
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xs, ws, bs))
        fns["torch"] = lambda: torch_chain(torch, tx, tw, tb)
    best = interleaved(fns, rounds=15)
    t_tape, t_np = best["tapegrad"], best["numpy"]
    rows = [("tapegrad", t_tape), ("numpy (hand-written backward)", t_np)]
    if torch is not None:
        t_torch = best["torch"]
        rows.append((f"pytorch {torch.__version__} eager", t_torch))
    print(f"forward+backward, chain of {n} ops on float32[{SIZE}], best of 15 interleaved rounds")
    print(f"{'':32s} {'us/op':>8s}")
    for name, t in rows:
        print(f"{name:32s} {t / n * 1e6:8.2f}")
    if torch is not None:
        print(f"ratio tapegrad / pytorch per op: {t_tape / t_torch:.2f}x  (<= 1.0 means tapegrad is faster)")
    print(f"ratio tapegrad / numpy per op:   {t_tape / t_np:.2f}x")


if __name__ == "__main__":
    main()
