"""conv2d forward and forward+backward: tapegrad vs PyTorch (2 threads) vs raw NumPy im2col, float32.

Prints milliseconds (best of N), the ratios torch/tapegrad (>1 means tapegrad is faster), and the
conv forward GFLOP/s next to the machine's float32 sgemm GFLOP/s (1024^3 matmul).
Run: python benchmarks/conv_layer.py [--repeat N]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import autograd as ag  # noqa: E402
import nn.functional as F  # noqa: E402

SHAPES = [  # (input, weight, padding)
    ((32, 8, 24, 24), (8, 8, 5, 5), 0),
    ((32, 1, 28, 28), (8, 1, 3, 3), 1),
    ((10, 1, 28, 28), (20, 1, 5, 5), 0),
]


def best_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def numpy_im2col(x: np.ndarray, w: np.ndarray, pad: int):
    """Reference: window view -> (B, C*k*k, Ho*Wo) copy -> matmul; backward by matmuls + col2im loop."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    b, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    ho, wo = win.shape[2:4]
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(b, c * kh * kw, ho * wo)
    wm = w.reshape(o, -1)
    out = wm @ cols

    def backward(g):
        g = g.reshape(b, o, ho * wo)
        gw = (g @ cols.transpose(0, 2, 1)).sum(0)
        gc = (wm.T @ g).reshape(b, c, kh, kw, ho, wo)
        gx = np.zeros_like(x)
        for i in range(kh):
            for j in range(kw):
                gx[:, :, i:i + ho, j:j + wo] += gc[:, :, i, j]
        return gx, gw

    return out.reshape(b, o, ho, wo), backward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(2)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024)).astype(np.float32)
    sgemm = 2 * 1024 ** 3 / best_ms(lambda: a @ a, 10) / 1e6
    print(f"numpy float32 sgemm 1024^3: {sgemm:.1f} GFLOP/s")
    print(f"{'input':>16} {'weight':>14} {'pass':>8} {'tapegrad':>9} {'numpy':>8} {'torch':>8} "
          f"{'torch/tg':>8} {'np/tg':>6} {'GFLOP/s':>8}")
    for xs, ws, pad in SHAPES:
        xd, wd = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
        x, w = ag.tensor(xd, requires_grad=True), ag.tensor(wd, requires_grad=True)

        def tg_fwd():
            with ag.no_grad():
                return F.conv2d(x, w, padding=pad)

        def tg_step():
            y = F.conv2d(x, w, padding=pad)
            y.backward(np.ones(y.shape, np.float32))

        def np_step():
            y, back = numpy_im2col(xd, wd, pad)
            back(np.ones_like(y))

        times = {"fwd": [best_ms(tg_fwd, args.repeat), best_ms(lambda: numpy_im2col(xd, wd, pad), args.repeat)],
                 "fwd+bwd": [best_ms(tg_step, args.repeat), best_ms(np_step, args.repeat)]}
        if torch is not None:
            xt, wt = torch.tensor(xd, requires_grad=True), torch.tensor(wd, requires_grad=True)

            def t_fwd():
                with torch.no_grad():
                    return torch.nn.functional.conv2d(xt, wt, padding=pad)

            def t_step():
                y = torch.nn.functional.conv2d(xt, wt, padding=pad)
                y.backward(torch.ones_like(y))

            times["fwd"].append(best_ms(t_fwd, args.repeat))
            times["fwd+bwd"].append(best_ms(t_step, args.repeat))
        out = tg_fwd().shape
        flops = 2 * np.prod(out) * np.prod(ws[1:])
        for name, (tg, npy, *tt) in times.items():
            tt_s = f"{tt[0]:8.3f} {tt[0] / tg:8.2f}" if tt else f"{'-':>8} {'-':>8}"
            gf = f"{flops / tg / 1e6:8.1f}" if name == "fwd" else ""
            print(f"{str(xs):>16} {str(ws):>14} {name:>8} {tg:9.3f} {npy:8.3f} {tt_s} {npy / tg:6.2f} {gf}")


if __name__ == "__main__":
    main()
