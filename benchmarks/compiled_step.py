"""Compiled training steps (autograd.compile) against eager tapegrad and PyTorch eager.

Each framework runs in its own fresh process (no shared allocator or thread state); the parent
prints seconds per step and the speed ratios. float32, OMP/OpenBLAS threads as the environment says.

    python benchmarks/compiled_step.py             # MLP batch 10 / 50, digits, the op chain
    python benchmarks/compiled_step.py --lenet     # plus LeNet-BN batch 128 (slow)
    python benchmarks/compiled_step.py --memory    # peak RSS and minor faults per step, LeNet-BN

Cases: MLP 784-30-10 sigmoid + cross-entropy, SGD (batch 10 and 50); `digits` (conv3x3x8 pad 1 + BN +
ReLU + maxpool 2 + FC, Adam, clip by value 0.5, batch 32, 20x20); LeNet-BN (3 conv+BN+ReLU blocks, two
pools, FC128 + dropout, FC10, Adam, batch 128, 28x28); and overhead.py's idea on a replayed chain: 200
tiny elementwise ops forward and backward, reported as time per op.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

CHAIN = 200  # ops in the chain case
os.environ.setdefault("OMP_NUM_THREADS", "2")  # as benchmarks/train_step.py


def _data(batch: int, shape: tuple, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch,) + shape).astype(np.float32), rng.integers(0, 10, batch)


def _case(name: str):
    """(model name, batch, input shape, optimizer, clip value)."""
    return {
        "mlp10": ("mlp-l2", 10, (1, 28, 28), "sgd", None),
        "mlp50": ("mlp-l2", 50, (1, 28, 28), "sgd", None),
        "digits": ("digits", 32, (1, 20, 20), "adam", 0.5),
        "lenet": ("lenet-bn", 128, (1, 28, 28), "adam", None),
    }[name]


def tapegrad_step(case: str, compiled: bool):
    import autograd as ag
    import nn
    import optim
    from tapegrad.models import build_model

    model_name, batch, shape, opt_name, clip = _case(case)
    model = build_model(model_name, shape)
    opt = optim.Adam(model.parameters(), lr=1e-3) if opt_name == "adam" else optim.SGD(model.parameters(), lr=0.1)
    x, y = _data(batch, shape)
    x, y = ag.tensor(x), ag.tensor(y)

    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if clip is not None:
            optim.clip_grad_value_(model.parameters(), clip)
        opt.step()
        return loss

    run = ag.compile(step) if compiled else step
    return lambda: run(x, y)


def torch_step(case: str):
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    T = torch.nn
    model_name, batch, shape, opt_name, clip = _case(case)
    if model_name == "mlp-l2":
        model = T.Sequential(T.Flatten(), T.Linear(784, 30), T.Sigmoid(), T.Linear(30, 10))
    elif model_name == "digits":
        model = T.Sequential(T.Conv2d(1, 8, 3, padding=1), T.BatchNorm2d(8), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                             T.Linear(8 * 10 * 10, 10))
    else:
        def block(i, o):
            return [T.Conv2d(i, o, 3, padding=1, bias=False), T.BatchNorm2d(o), T.ReLU()]
        model = T.Sequential(*block(1, 32), *block(32, 32), T.MaxPool2d(2), *block(32, 64), T.MaxPool2d(2),
                             T.Flatten(), T.Linear(64 * 7 * 7, 128), T.ReLU(), T.Dropout(0.3), T.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3) if opt_name == "adam" else torch.optim.SGD(model.parameters(), lr=0.1)
    xs, ys = _data(batch, shape)
    x, y = torch.from_numpy(xs), torch.from_numpy(ys)

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_value_(model.parameters(), clip)
        opt.step()
        return loss

    return step


def chain_step(framework: str):
    """overhead.py's chain: CHAIN tiny ops (add/mul/tanh), forward and backward, on 16 floats."""
    import numpy as np

    x0 = np.linspace(-1, 1, 16).astype(np.float32)
    if framework == "torch":
        import torch

        x = torch.tensor(x0, requires_grad=True)

        def step():
            y = x
            for i in range(CHAIN // 2):
                y = torch.tanh(y * 0.9 + 0.1) if i % 2 else y * 1.01 + 0.01
            y.sum().backward()
            x.grad = None
        return step
    import autograd as ag

    x = ag.tensor(x0, requires_grad=True)

    def run(x):
        y = x
        for i in range(CHAIN // 2):
            y = ag.tanh(y * 0.9 + 0.1) if i % 2 else y * 1.01 + 0.01
        (g,) = ag.grad(y.sum(), [x])
        return g

    fn = ag.compile(run) if framework == "compiled" else run
    return lambda: fn(x)


def worker(framework: str, case: str, rounds: int) -> dict:
    from _common import interleaved

    if case == "chain":
        fn = chain_step(framework)
    elif framework == "torch":
        fn = torch_step(case)
    else:
        fn = tapegrad_step(case, framework == "compiled")
    for _ in range(3):  # trace, then the signature with gradients present
        fn()
    number = {"mlp10": 200, "mlp50": 100, "digits": 20, "lenet": 2, "chain": 20}[case]
    seconds = interleaved({"step": fn}, rounds=rounds, number=number)["step"]
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(5):
        fn()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "minflt_per_step": (ru1.ru_minflt - ru0.ru_minflt) / 5,
            "maxrss_mb": ru1.ru_maxrss / 1024}


def run_fresh(framework: str, case: str, rounds: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", framework, case, str(rounds)], capture_output=True,
                         text=True, check=True, env=dict(os.environ))
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "CASE", "ROUNDS"))
    parser.add_argument("--lenet", action="store_true", help="also LeNet-BN batch 128 (slow)")
    parser.add_argument("--memory", action="store_true", help="peak RSS and minor faults, LeNet-BN batch 128")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if args.worker:
        framework, case, rounds = args.worker
        print(json.dumps(worker(framework, case, int(rounds))))
        return
    cases = ["mlp10", "mlp50", "digits", "chain"] + (["lenet"] if args.lenet or args.memory else [])
    if args.memory:
        cases = ["lenet"]
    print(f"{'case':8s} {'eager ms':>9s} {'compiled ms':>12s} {'torch ms':>9s} {'compiled/eager':>15s} "
          f"{'torch/compiled':>15s}  (speed ratios: >1 means compiled is faster)")
    for case in cases:
        r = {fw: run_fresh(fw, case, args.rounds) for fw in ("eager", "compiled", "torch")}
        e, c, t = (r[fw]["seconds"] for fw in ("eager", "compiled", "torch"))
        scale, unit = (1e3 / CHAIN, "ms/op") if case == "chain" else (1e3, "")
        print(f"{case:8s} {e * scale:9.4f} {c * scale:12.4f} {t * scale:9.4f} {e / c:15.2f} {t / c:15.2f} {unit}")
        if args.memory or case == "lenet":
            for fw in ("eager", "compiled", "torch"):
                print(f"         {fw:9s} peak RSS {r[fw]['maxrss_mb']:.0f} MB, minor faults per step "
                      f"{r[fw]['minflt_per_step']:.0f}")


if __name__ == "__main__":
    main()
