"""conv2d alone, forward and forward+backward, on the reference models' conv layers, float32.

Each framework runs in its own fresh process per layer and round (see _common.py); the parent
prints per-round ratios torch/tapegrad (> 1: tapegrad faster) and their median, per thread count:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_layer.py                # 1 and 2 threads
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_layer.py --threads 1 --rounds 7 --log /tmp/conv.jsonl
    python benchmarks/conv_layer.py --frameworks tapegrad torch numpy   # numpy: the same GEMMs on ready-made
                                                                          # im2col matrices, the arithmetic floor
    python benchmarks/conv_layer.py --frameworks tapegrad torch numpy-rowsplit   # numpy-rowsplit: the kernel-row
                                      # split written directly in NumPy, every copy and GEMM, no framework
    python benchmarks/conv_layer.py --threads 2 --frameworks tapegrad torch numpy-rowsplit numpy-rowsplit-parts
                                      # numpy-rowsplit-parts: the same, one batch share per thread, each
                                      # running the whole layer (one hand-off per call)
    python benchmarks/conv_layer.py --framework tapegrad --case lenet-bn2 --threads 1   # one child, by hand

fwd+bwd is one forward and the backward of a fixed random cotangent (weight gradient, and the
input gradient where the layer's input needs one, as in training). Each framework gets the
cotangent in its output's memory layout (tapegrad's conv output is batch-last, and so are the
gradients its following layers pass back; PyTorch's is contiguous NCHW).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

if TYPE_CHECKING:  # a child imports NumPy only after pinning its threads
    import numpy as np

# name -> (label, input, weight, padding, input needs grad): the convs of tapegrad/models.py
LAYERS = {
    "digits": ("digits conv3x3 1->8 pad 1", (32, 1, 20, 20), (8, 1, 3, 3), 1, False),
    "escontrela1": ("escontrela conv1 5x5 1->8", (32, 1, 28, 28), (8, 1, 5, 5), 0, False),
    "escontrela2": ("escontrela conv2 5x5 8->8", (32, 8, 24, 24), (8, 8, 5, 5), 0, True),
    "nielsen": ("nielsen-conv 5x5 1->20, batch 10", (10, 1, 28, 28), (20, 1, 5, 5), 0, False),
    "lenet-bn1": ("lenet-bn block1 3x3 1->32 pad 1", (128, 1, 28, 28), (32, 1, 3, 3), 1, False),
    "lenet-bn2": ("lenet-bn block2 3x3 32->32 pad 1", (128, 32, 28, 28), (32, 32, 3, 3), 1, True),
    "lenet-bn3": ("lenet-bn block3 3x3 32->64 pad 1", (128, 32, 14, 14), (64, 32, 3, 3), 1, True),
}


def child(framework: str, case: str, threads: int, min_time: float) -> None:
    if case == "sgemm":
        return C.sgemm_child(threads)
    framework = C.child_setup(threads, framework)
    import numpy as np

    label, xs, ws, pad, x_grad = LAYERS[case]
    rng = np.random.default_rng(0)
    xd, wd = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ws).astype(np.float32)
    out_shape = (xs[0], ws[0], xs[2] + 2 * pad - ws[2] + 1, xs[3] + 2 * pad - ws[3] + 1)
    gd = rng.standard_normal(out_shape).astype(np.float32)
    torch = None
    if framework == "tapegrad":
        import autograd as ag
        import nn.functional as F

        x, w = ag.tensor(xd, requires_grad=x_grad), ag.tensor(wd, requires_grad=True)
        with ag.no_grad():  # the cotangent in the output's memory layout, as the layers after it give it
            g = np.empty_like(F.conv2d(x, w, padding=pad).data)
        g[...] = gd
        g = ag.tensor(g)

        def fwd():
            with ag.no_grad():
                F.conv2d(x, w, padding=pad)

        def step():
            F.conv2d(x, w, padding=pad).backward(g)
    elif framework == "torch":
        import torch

        x, w = torch.tensor(xd, requires_grad=x_grad), torch.tensor(wd, requires_grad=True)
        g = torch.tensor(gd)

        def fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(x, w, padding=pad)

        def step():
            torch.nn.functional.conv2d(x, w, padding=pad).backward(g)
    elif framework == "numpy-rowsplit":
        fwd, step = numpy_row_split(xd, wd, gd.transpose(1, 2, 3, 0).copy(), pad, x_grad)
    elif framework == "numpy-rowsplit-parts":
        fwd, step = numpy_row_split_parts(xd, wd, gd.transpose(1, 2, 3, 0).copy(), pad, x_grad, threads)
    else:  # the GEMMs alone on ready-made im2col matrices: what the arithmetic costs at sgemm speed
        kk = ws[1] * ws[2] * ws[3]
        cols = rng.standard_normal((kk, out_shape[0] * out_shape[2] * out_shape[3])).astype(np.float32)
        wm, gm = wd.reshape(ws[0], kk), gd.transpose(1, 0, 2, 3).reshape(ws[0], -1).copy()

        def fwd():
            wm @ cols

        def step():
            wm @ cols
            gm @ cols.T
            if x_grad:
                wm.T @ gm

    info = C.pin_threads(threads, torch)
    if framework == "numpy-rowsplit-parts":  # the threads are the parts'; each BLAS call runs on one
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
        info["blas_threads_per_call"] = 1
    C.child_report({**C.timed({"fwd": fwd, "fwd+bwd": step}, min_time), "info": info})


def numpy_row_split(x: np.ndarray, w: np.ndarray, g: np.ndarray, pad: int, x_grad: bool) -> tuple[Callable, Callable]:
    """(forward, forward_and_backward): conv2d (stride 1, padding `pad`) as tapegrad's kernel-row
    split (nn.functional._conv2d_row_split) computes it, written directly in NumPy with no
    framework and no allocation (every buffer made once, here): the batch-last copy padded along
    the width, im2col along the width, one GEMM of the stacked kernel rows, the kernel rows'
    shifted sums; backward, the sums' shifted copies of the cotangent, the two gradient GEMMs and
    the col2im along the width. What that composition costs at best, to compare with PyTorch:
    tapegrad pays at least this, plus its per-primitive overhead, fresh arrays per op, and its
    row sums over the whole padded height where this sums only the output's rows. x (B, C, H, W), w (O, C, kh, kw), g the
    output's cotangent batch-last (O, Ho, Wo, B). Each callable returns views of what it computed:
    the output (O, Ho, Wo, B), then dw (O, C, kh, kw) and dx (B, C, H, W) or None."""
    import numpy as np

    (b, c, h, wd), (o, _, kh, kw) = x.shape, w.shape
    ho, wo = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    n = h * wo * b  # GEMM columns: every input row (the sums crop), every output column, batch innermost
    rows = np.ascontiguousarray(w.transpose(2, 0, 1, 3).reshape(kh * o, c * kw))
    xt = np.zeros((c, h, wd + 2 * pad, b), x.dtype)  # the padding columns stay zero
    cols, y = np.empty((c, kw, h, wo, b), x.dtype), np.empty((kh, o, h, wo * b), x.dtype)
    out, gy = np.empty((o, ho, wo * b), x.dtype), np.empty((kh, o, h, wo * b), x.dtype)
    dw, dcols, dxt = np.empty((kh * o, c * kw), x.dtype), np.empty((c, kw, h, wo, b), x.dtype), np.empty_like(xt)
    gr = g.reshape(o, ho, wo * b)
    valid = [(max(0, pad - i), min(ho, h + pad - i)) for i in range(kh)]  # output rows kernel row i reaches

    def forward():
        np.copyto(xt[:, :, pad:pad + wd], x.transpose(1, 2, 3, 0))
        np.copyto(cols, np.lib.stride_tricks.sliding_window_view(xt, kw, axis=2).transpose(0, 4, 1, 2, 3))
        np.matmul(rows, cols.reshape(c * kw, n), out=y.reshape(kh * o, n))  # kernel row i at every input row
        out.fill(0)
        for i, (lo, hi) in enumerate(valid):  # output row r sums kernel row i at input row r + i - pad
            out[:, lo:hi] += y[i, :, lo + i - pad:hi + i - pad]
        return out.reshape(o, ho, wo, b)

    def forward_backward():
        result = forward()
        gy.fill(0)
        for i, (lo, hi) in enumerate(valid):
            gy[i, :, lo + i - pad:hi + i - pad] = gr[:, lo:hi]
        np.matmul(gy.reshape(kh * o, n), cols.reshape(c * kw, n).T, out=dw)
        dw_view = dw.reshape(kh, o, c, kw).transpose(1, 2, 0, 3)
        if not x_grad:
            return result, dw_view, None
        np.matmul(rows.T, gy.reshape(kh * o, n), out=dcols.reshape(c * kw, n))
        dxt.fill(0)
        for j in range(kw):
            dxt[:, :, j:j + wo] += dcols[:, j]
        return result, dw_view, dxt[:, :, pad:pad + wd].transpose(3, 0, 1, 2)

    return forward, forward_backward


def numpy_row_split_parts(x: np.ndarray, w: np.ndarray, g: np.ndarray, pad: int, x_grad: bool,
                          parts: int) -> tuple[Callable, Callable]:
    """numpy_row_split on `parts` contiguous batch shares, one thread each, every share running the
    whole layer (forward, or forward and backward) with its own buffers: one hand-off per call
    instead of one per op. What a small layer could reach on `parts` threads if its whole chain of
    ops ran per batch share (no framework does that here). The shares' weight gradients are summed;
    their outputs and input gradients stay in each share's buffers (a framework would also assemble
    them). Each callable returns one numpy_row_split result per share, plus the summed dw."""
    import numpy as np
    from concurrent.futures import ThreadPoolExecutor

    b = x.shape[0]
    bounds = [b * k // parts for k in range(parts + 1)]
    shares = [numpy_row_split(x[lo:hi], w, np.ascontiguousarray(g[..., lo:hi]), pad, x_grad)
              for lo, hi in zip(bounds[:-1], bounds[1:])]
    pool = ThreadPoolExecutor(parts - 1) if parts > 1 else None

    def run(which: int) -> list:
        futures = [pool.submit(share[which]) for share in shares[1:]] if pool else []
        return [shares[0][which]()] + [f.result() for f in futures]

    def forward():
        return run(0)

    def forward_backward():
        results = run(1)
        dw = results[0][1].copy()
        for r in results[1:]:
            dw += r[1]
        return results, dw

    return forward, forward_backward


def main() -> None:
    args = C.parent_args(__doc__, default_rounds=2, default_threads=(1, 2),
                         frameworks=("tapegrad", "torch", "numpy", "numpy-rowsplit", "numpy-rowsplit-parts"),
                         default_frameworks=("tapegrad", "torch")).parse_args()  # ~2 min
    if args.framework:
        return child(args.framework, args.case[0], args.threads[0], args.min_time)
    cases = args.case or list(LAYERS)
    describe = lambda case: f"{case}: {LAYERS[case][0]}, input {LAYERS[case][1]}, weight {LAYERS[case][2]}"  # noqa: E731
    C.run_parent(__file__, args, cases, ["fwd", "fwd+bwd"], describe)


if __name__ == "__main__":
    main()
