"""autograd.func: what forward mode and vmap cost, beside PyTorch's torch.func.

1. `jvp-large`, `jvp-small`: jvp of a 30-op elementwise chain (float64) against the plain forward
   pass (the issue's budget: about 3x), with the declared JVP rules and, in tapegrad, with the
   double-VJP fallback (every rule switched off), on a large vector (NumPy-bound) and a small one
   (per-op overhead-bound).
2. `per-example-float32`, `per-example-float64`: per-example gradients of the `digits` CNN
   (tapegrad/models.py; batch 32, train-mode batch norm, cross-entropy against one-hot targets):
   vmap(grad(loss), in_axes=(None, 0, 0)) against a loop of 32 single-example grad calls (the
   issue's target: >= 5x) and one gradient of the whole batch, in tapegrad and torch.func.

Each framework runs in its own fresh process per case and round (see _common.py). The parent prints
milliseconds per call, the per-round ratios PyTorch time / tapegrad time, and the ratios within each
framework (jvp / forward, loop / vmap(grad), vmap(grad) / batch gradient):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/transforms.py           # 1 and 2 threads
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/transforms.py --threads 1 --case per-example-float32
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

CHAIN = 30  # ops in the elementwise chain
BATCH = 32
CASES = {"jvp-large": 100_000, "jvp-small": 16, "per-example-float32": "float32", "per-example-float64": "float64"}
FRAMEWORKS = ("tapegrad", "torch")
METRICS = ["forward", "jvp", "double_vjp", "vmap_grad", "loop_grad", "batch_grad"]


def _chain(x, w, b, tanh):
    y = x
    for _ in range(CHAIN // 3):
        y = tanh(y * w + b)
    return y


def _chain_arrays(np, n: int):
    g = np.random.default_rng(0)
    return [g.standard_normal(n) for _ in range(4)]


def _digits_arrays(np, dtype: str):
    g = np.random.default_rng(0)
    return g.standard_normal((BATCH, 1, 20, 20)).astype(dtype), np.eye(10, dtype=dtype)[g.integers(0, 10, BATCH)]


def tapegrad_fns(np, case: str) -> dict:
    import autograd as ag
    import nn.functional as NF
    from autograd import func
    from autograd.forward import double_vjp_only
    from tapegrad.models import Digits

    if case.startswith("jvp"):
        x, v, w, b = (ag.tensor(a) for a in _chain_arrays(np, CASES[case]))
        f = lambda x: _chain(x, w, b, ag.tanh)  # noqa: E731
        jvp = lambda: func.jvp(f, (x,), (v,))  # noqa: E731

        def fallback():
            with double_vjp_only(["add", "mul", "tanh"]):
                return jvp()
        return {"forward": lambda: f(x), "jvp": jvp, "double_vjp": fallback}

    def batch_loss(params, x, target):  # also the whole batch at once: one gradient, not 32
        h = NF.conv2d(x, params["conv.weight"], params["conv.bias"], padding=1)
        h = NF.batch_norm(h, None, None, params["bn.weight"], params["bn.bias"], training=True)
        h = NF.max_pool2d(NF.relu(h), 2)
        logits = NF.linear(ag.flatten(h, 1), params["fc.weight"], params["fc.bias"])
        return NF.cross_entropy(logits, target)

    def loss(params, x, target):  # one example, as a batch of one
        return batch_loss(params, x[None], target[None])

    per_example = func.vmap(func.grad(loss), in_axes=(None, 0, 0))
    single = func.grad(loss)
    dtype = CASES[case]
    model = Digits(seed=0).float() if dtype == "float32" else Digits(seed=0).double()
    params = {name: ag.tensor(p.data) for name, p in model.named_parameters()}
    xs, targets = (ag.tensor(a) for a in _digits_arrays(np, dtype))
    return {"vmap_grad": lambda: per_example(params, xs, targets),
            "loop_grad": lambda: [single(params, xs[i], targets[i]) for i in range(BATCH)],
            "batch_grad": lambda: func.grad(batch_loss)(params, xs, targets)}


def torch_fns(np, torch, case: str) -> dict:
    import torch.nn.functional as TF
    from torch.func import grad, jvp, vmap

    if case.startswith("jvp"):
        x, v, w, b = (torch.tensor(a) for a in _chain_arrays(np, CASES[case]))
        f = lambda x: _chain(x, w, b, torch.tanh)  # noqa: E731
        return {"forward": lambda: f(x), "jvp": lambda: jvp(f, (x,), (v,))}

    def batch_loss(params, x, target):
        h = TF.conv2d(x, params["conv.weight"], params["conv.bias"], padding=1)
        h = TF.batch_norm(h, None, None, params["bn.weight"], params["bn.bias"], training=True)
        h = TF.max_pool2d(TF.relu(h), 2)
        logits = TF.linear(h.flatten(1), params["fc.weight"], params["fc.bias"])
        return TF.cross_entropy(logits, target)

    def loss(params, x, target):
        return batch_loss(params, x[None], target[None])

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    single = grad(loss)
    kind = getattr(torch, CASES[case])
    g = torch.Generator().manual_seed(0)
    params = {"conv.weight": torch.randn(8, 1, 3, 3, generator=g, dtype=kind) / 3,
              "conv.bias": torch.zeros(8, dtype=kind), "bn.weight": torch.ones(8, dtype=kind),
              "bn.bias": torch.zeros(8, dtype=kind), "fc.weight": torch.randn(10, 800, generator=g, dtype=kind) / 28,
              "fc.bias": torch.zeros(10, dtype=kind)}
    xs, targets = (torch.tensor(a) for a in _digits_arrays(np, CASES[case]))
    return {"vmap_grad": lambda: per_example(params, xs, targets),
            "loop_grad": lambda: [single(params, xs[i], targets[i]) for i in range(BATCH)],
            "batch_grad": lambda: grad(batch_loss)(params, xs, targets)}


def child(framework: str, case: str, threads: int, min_time: float) -> None:
    if case == "sgemm":
        return C.sgemm_child(threads)
    framework = C.child_setup(threads, framework)
    import numpy as np

    torch = None
    if framework == "torch":
        import torch

        fns = torch_fns(np, torch, case)
    else:
        fns = tapegrad_fns(np, case)
    info = C.pin_threads(threads, torch)
    C.child_report({**C.timed(fns, min_time), "info": info})


def within(case: str, med: C.Medians) -> list[str]:
    """The ratios inside each framework: what a transform costs against its plain counterpart."""
    lines = []
    for fw, m in med.items():
        if case.startswith("jvp"):
            line = f"{fw}: jvp / forward {m['jvp'] / m['forward']:.2f}x"
            if "double_vjp" in m:
                line += f", double-VJP / forward {m['double_vjp'] / m['forward']:.2f}x"
        else:
            line = (f"{fw}: loop / vmap(grad) {m['loop_grad'] / m['vmap_grad']:.1f}x, "
                    f"vmap(grad) / one batch gradient {m['vmap_grad'] / m['batch_grad']:.2f}x")
        lines.append(line)
    return lines


def describe(case: str) -> str:
    if case.startswith("jvp"):
        return f"{case}: jvp of a {CHAIN}-op elementwise chain on float64[{CASES[case]}]"
    return f"{case}: per-example gradients, digits CNN, batch {BATCH}, {CASES[case]}"


def main() -> None:
    args = C.parent_args(__doc__, default_rounds=3, default_threads=(1, 2), frameworks=FRAMEWORKS,
                         default_frameworks=FRAMEWORKS).parse_args()  # ~2.5 min on a quiet machine
    if args.framework:
        return child(args.framework, args.case[0], args.threads[0], args.min_time)
    C.run_parent(__file__, args, args.case or list(CASES), METRICS, describe, within)


if __name__ == "__main__":
    main()
