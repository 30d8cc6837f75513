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
from _common import best_time, try_import_torch  # noqa: E402

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
    print(f"{'shape':>12} {'pass':>8} {'tapegrad ms':>12} {'torch ms':>9} {'torch/tg':>8}")
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
        times = {"fwd": [best_time(tg_fwd, args.repeat, number)], "fwd+bwd": [best_time(tg_step, args.repeat, number)]}
        if torch is not None:
            xt, wt = torch.tensor(xd, requires_grad=x_grad), torch.tensor(wd, requires_grad=True)
            gt = torch.tensor(gd)

            def t_fwd():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, padding=pad)

            def t_step():
                torch.nn.functional.conv2d(xt, wt, padding=pad).backward(gt)

            times["fwd"].append(best_time(t_fwd, args.repeat, number))
            times["fwd+bwd"].append(best_time(t_step, args.repeat, number))
        for name, (tg, *tt) in times.items():
            tt_s = f"{tt[0] * 1e3:9.3f} {tt[0] / tg:8.2f}" if tt else f"{'-':>9} {'-':>8}"
            print(f"{label:>12} {name:>8} {tg * 1e3:12.3f} {tt_s}", flush=True)


if __name__ == "__main__":
    main()
