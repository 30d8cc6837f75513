"""autograd.func: what forward mode and vmap cost, beside PyTorch's torch.func.

1. jvp of an elementwise chain against the plain forward pass (the issue's budget: about 3x), with
   the declared JVP rules and with the double-VJP fallback (every rule switched off), on a large
   vector (NumPy-bound) and a small one (per-op overhead-bound).
2. Per-example gradients of the `digits` CNN (tapegrad/models.py; batch 32, train-mode batch norm,
   cross-entropy against one-hot targets), in float32 (the model's own dtype) and float64:
   vmap(grad(loss), in_axes=(None, 0, 0)) against a loop of 32 single-example grad calls (the
   issue's target: >= 5x), and torch.func's vmap(grad) and loop on the same network.

Each framework runs in its own fresh process; timings are the best of interleaved rounds.

    python benchmarks/transforms.py            # both, then the ratios
    python benchmarks/transforms.py tapegrad   # one side only (prints JSON)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from _common import interleaved

CHAIN = 30  # ops in the elementwise chain
BATCH = 32


def _chain(x, w, b, tanh):
    y = x
    for _ in range(CHAIN // 3):
        y = tanh(y * w + b)
    return y


def _data(n: int, seed: int = 0):
    g = np.random.default_rng(seed)
    return [g.standard_normal(n) for _ in range(4)]


DTYPES = ("float32", "float64")


def _digits_arrays(dtype: str):
    g = np.random.default_rng(0)
    return g.standard_normal((BATCH, 1, 20, 20)).astype(dtype), np.eye(10, dtype=dtype)[g.integers(0, 10, BATCH)]


def run_tapegrad() -> dict:
    import autograd as ag
    import nn.functional as NF
    from autograd import func
    from autograd.forward import double_vjp_only
    from tapegrad.models import Digits

    out = {}
    for label, n in (("large", 100_000), ("small", 16)):
        x, v, w, b = (ag.tensor(a) for a in _data(n))
        f = lambda x: _chain(x, w, b, ag.tanh)  # noqa: E731
        jvp = lambda: func.jvp(f, (x,), (v,))  # noqa: E731

        def fallback():
            with double_vjp_only(["add", "mul", "tanh"]):
                return jvp()

        t = interleaved({"forward": lambda: f(x), "jvp": jvp, "double_vjp": fallback}, rounds=7, number=3)
        out[f"chain_{label}"] = {k: s * 1e3 for k, s in t.items()}

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
    for dtype in DTYPES:
        model = Digits(seed=0).float() if dtype == "float32" else Digits(seed=0).double()
        params = {name: ag.tensor(p.data) for name, p in model.named_parameters()}
        xs, targets = (ag.tensor(a) for a in _digits_arrays(dtype))
        t = interleaved({"vmap_grad": lambda: per_example(params, xs, targets),
                         "loop_grad": lambda: [single(params, xs[i], targets[i]) for i in range(BATCH)],
                         "batch_grad": lambda: func.grad(batch_loss)(params, xs, targets)},
                        rounds=9, number=1)
        out[f"per_example_{dtype}"] = {k: s * 1e3 for k, s in t.items()}
    return out


def run_torch() -> dict:
    import torch
    import torch.nn.functional as TF
    from torch.func import grad, jvp, vmap

    torch.set_num_threads(1)
    out = {}
    for label, n in (("large", 100_000), ("small", 16)):
        x, v, w, b = (torch.tensor(a) for a in _data(n))
        f = lambda x: _chain(x, w, b, torch.tanh)  # noqa: E731
        t = interleaved({"forward": lambda: f(x), "jvp": lambda: jvp(f, (x,), (v,))}, rounds=7, number=3)
        out[f"chain_{label}"] = {k: s * 1e3 for k, s in t.items()}

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
    for dtype in DTYPES:
        kind = getattr(torch, dtype)
        g = torch.Generator().manual_seed(0)
        params = {"conv.weight": torch.randn(8, 1, 3, 3, generator=g, dtype=kind) / 3,
                  "conv.bias": torch.zeros(8, dtype=kind), "bn.weight": torch.ones(8, dtype=kind),
                  "bn.bias": torch.zeros(8, dtype=kind), "fc.weight": torch.randn(10, 800, generator=g, dtype=kind) / 28,
                  "fc.bias": torch.zeros(10, dtype=kind)}
        xs, targets = (torch.tensor(a) for a in _digits_arrays(dtype))
        t = interleaved({"vmap_grad": lambda: per_example(params, xs, targets),
                         "loop_grad": lambda: [single(params, xs[i], targets[i]) for i in range(BATCH)],
                         "batch_grad": lambda: grad(batch_loss)(params, xs, targets)},
                        rounds=9, number=1)
        out[f"per_example_{dtype}"] = {k: s * 1e3 for k, s in t.items()}
    return out


def _child(side: str) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, os.path.abspath(__file__), side], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1:
        print(json.dumps(run_tapegrad() if sys.argv[1] == "tapegrad" else run_torch()))
        return
    ours, theirs = _child("tapegrad"), _child("torch")
    print(f"jvp of a {CHAIN}-op elementwise chain (float64), ms; ratio = jvp / plain forward")
    for label in ("large", "small"):
        o, t = ours[f"chain_{label}"], theirs[f"chain_{label}"]
        print(f"  {label:5}  tapegrad forward {o['forward']:.3f}  jvp {o['jvp']:.3f} ({o['jvp'] / o['forward']:.2f}x)  "
              f"double-VJP {o['double_vjp']:.3f} ({o['double_vjp'] / o['forward']:.2f}x)  |  torch forward "
              f"{t['forward']:.3f}  jvp {t['jvp']:.3f} ({t['jvp'] / t['forward']:.2f}x)")
    for dtype in DTYPES:
        o, t = ours[f"per_example_{dtype}"], theirs[f"per_example_{dtype}"]
        print(f"per-example gradients, digits CNN, batch {BATCH} ({dtype}), ms; ratio = loop / vmap(grad)")
        print(f"  tapegrad vmap(grad) {o['vmap_grad']:.1f}  loop {o['loop_grad']:.1f}  ({o['loop_grad'] / o['vmap_grad']:.1f}x)")
        print(f"  torch    vmap(grad) {t['vmap_grad']:.1f}  loop {t['loop_grad']:.1f}  ({t['loop_grad'] / t['vmap_grad']:.1f}x)")
        print(f"  tapegrad vmap(grad) / torch vmap(grad): {o['vmap_grad'] / t['vmap_grad']:.2f}")
        print(f"  vmap(grad) / one minibatch gradient: tapegrad {o['vmap_grad'] / o['batch_grad']:.2f}, "
              f"torch {t['vmap_grad'] / t['batch_grad']:.2f}")


if __name__ == "__main__":
    main()
