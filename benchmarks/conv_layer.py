"""conv2d forward and forward+backward on the training benchmarks' shapes: tapegrad vs PyTorch, float32.

Prints milliseconds (best of N) and torch/tapegrad (>1 means tapegrad is faster). Thread counts are
pinned (default 1) so the ratio compares like with like on a shared machine:
    OPENBLAS_NUM_THREADS=1 python benchmarks/conv_layer.py [--repeat N] [--threads 1]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import autograd as ag  # noqa: E402
import nn.functional as F  # noqa: E402
from _common import best_time, interleaved, try_import_torch  # noqa: E402

SHAPES = [  # (label, input, weight, padding, input needs grad) — the convs of train_step.py and lenet-bn
    ("(a) conv3x3", (32, 1, 28, 28), (8, 1, 3, 3), 1, False),
    ("(b) conv1", (32, 1, 28, 28), (8, 1, 5, 5), 0, False),
    ("(b) conv2", (32, 8, 24, 24), (8, 8, 5, 5), 0, True),
    ("(c) conv", (10, 1, 28, 28), (20, 1, 5, 5), 0, False),
    ("lenet-bn", (128, 32, 28, 28), (32, 32, 3, 3), 1, True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch = try_import_torch(args.threads)
    rng = np.random.default_rng(0)
    print(f"threads: PyTorch {args.threads}, OpenBLAS {os.environ.get('OPENBLAS_NUM_THREADS')}")
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    sgemm = 2 * 1024 ** 3 / best_time(lambda: a @ a, 5) / 1e9
    print(f"numpy float32 sgemm 1024^3: {sgemm:.1f} GFLOP/s")
    print(f"{'shape':>12} {'pass':>8} {'tapegrad ms':>12} {'torch ms':>9} {'torch/tg':>8} {'tg GFLOP/s':>10}")
    for label, xs, ws, pad, x_grad in SHAPES:
        xd, wd = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
        x, w = ag.tensor(xd, requires_grad=x_grad), ag.tensor(wd, requires_grad=True)
        gd = None

        def tg_fwd():
            with ag.no_grad():
                return F.conv2d(x, w, padding=pad)

        def tg_step():
            y = F.conv2d(x, w, padding=pad)
            y.backward(gd)

        gd = rng.standard_normal(tg_fwd().shape).astype(np.float32)
        number = 1 if np.prod(xs) > 1e6 else 5
        fns = {"fwd": tg_fwd, "fwd+bwd": tg_step}
        if torch is not None:
            xt, wt = torch.tensor(xd, requires_grad=x_grad), torch.tensor(wd, requires_grad=True)
            gt = torch.tensor(gd)

            def t_fwd():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, padding=pad)

            def t_step():
                torch.nn.functional.conv2d(xt, wt, padding=pad).backward(gt)

            fns.update({"torch fwd": t_fwd, "torch fwd+bwd": t_step})
        best = interleaved(fns, rounds=args.repeat, number=number)
        flops = 2 * gd.size * ws[1] * ws[2] * ws[3]  # multiply-adds of the forward
        for name in ("fwd", "fwd+bwd"):
            tg, tt = best[name], best.get("torch " + name)
            tt_s = f"{tt * 1e3:9.3f} {tt / tg:8.2f}" if tt else f"{'-':>9} {'-':>8}"
            rate = f"{flops / tg / 1e9:10.1f}" if name == "fwd" else ""
            print(f"{label:>12} {name:>8} {tg * 1e3:12.3f} {tt_s} {rate}", flush=True)


if __name__ == "__main__":
    main()
