"""Training throughput: samples per second for one optimizer step (forward, backward, step),
tapegrad against PyTorch eager in the same run, float32, 2 threads, 28x28 inputs.

    python benchmarks/train_step.py            # all models
    python benchmarks/train_step.py --profile  # plus where tapegrad's time goes, per primitive

Models (the issue's list): (a) conv3x3(1->8, pad 1)+BN+ReLU+maxpool2+linear, Adam, batch 32;
(b) conv5x5(1->8)+ReLU+conv5x5(8->8)+ReLU+maxpool2+FC128+ReLU+FC10, Adam, batch 32;
(c) conv5x5(1->20)+maxpool2+sigmoid+FC100+sigmoid+FC10, SGD, batch 10;
(d) MLP 784-30-10 sigmoid, SGD, batch 10 and 50.
Both frameworks start from the same weights and see the same batches.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "2")
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import autograd as ag  # noqa: E402
import nn  # noqa: E402
import optim  # noqa: E402
from _common import interleaved, try_import_torch  # noqa: E402


def build(kind: str, framework):
    """The same architecture in tapegrad (framework=nn) or PyTorch (framework=torch.nn)."""
    N = framework
    if kind == "a":
        return N.Sequential(N.Conv2d(1, 8, 3, padding=1), N.BatchNorm2d(8), N.ReLU(), N.MaxPool2d(2),
                            N.Flatten(), N.Linear(8 * 14 * 14, 10))
    if kind == "b":
        return N.Sequential(N.Conv2d(1, 8, 5), N.ReLU(), N.Conv2d(8, 8, 5), N.ReLU(), N.MaxPool2d(2),
                            N.Flatten(), N.Linear(8 * 10 * 10, 128), N.ReLU(), N.Linear(128, 10))
    if kind == "c":
        return N.Sequential(N.Conv2d(1, 20, 5), N.MaxPool2d(2), N.Sigmoid(), N.Flatten(),
                            N.Linear(20 * 12 * 12, 100), N.Sigmoid(), N.Linear(100, 10))
    return N.Sequential(N.Flatten(), N.Linear(784, 30), N.Sigmoid(), N.Linear(30, 10))


CASES = [  # (label, model kind, optimizer, batch)
    ("(a) conv3x3+BN+ReLU+pool+FC, Adam", "a", "adam", 32),
    ("(b) 2x conv5x5+pool+FC128+FC10, Adam", "b", "adam", 32),
    ("(c) conv5x5x20+pool+sigmoid+FC100, SGD", "c", "sgd", 10),
    ("(d) MLP 784-30-10 sigmoid, SGD", "d", "sgd", 10),
    ("(d) MLP 784-30-10 sigmoid, SGD", "d", "sgd", 50),
]


def copy_weights(src_torch, dst_tapegrad) -> None:
    state = {k: v.detach().numpy().copy() for k, v in src_torch.state_dict().items()}
    dst_tapegrad.load_state_dict(state)


def tapegrad_step(model, opt, x, y):
    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_step(torch, model, opt, x, y):
    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def make_optimizer(lib, params, kind):
    return lib.Adam(params, lr=1e-3) if kind == "adam" else lib.SGD(params, lr=0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", action="store_true", help="also print per-primitive times")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2,
                        help="PyTorch threads; set OPENBLAS_NUM_THREADS to the same for NumPy")
    args = parser.parse_args()
    torch = try_import_torch(args.threads)
    print(f"threads: PyTorch {args.threads}, OpenBLAS {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    rng = np.random.default_rng(0)
    print(f"{'model':42s} {'batch':>5s} {'tapegrad/s':>11s} {'pytorch/s':>10s} {'ratio':>6s}")
    for label, kind, opt_kind, batch in CASES:
        xb = rng.random((batch, 1, 28, 28), dtype=np.float32)
        yb = rng.integers(0, 10, batch)
        model = build(kind, nn)
        number = max(1, 200 // batch)
        fns = {}
        if torch is not None:
            torch.manual_seed(0)
            tmodel = build(kind, torch.nn)
            copy_weights(tmodel, model)
            topt = make_optimizer(torch.optim, tmodel.parameters(), opt_kind)
            fns["torch"] = torch_step(torch, tmodel, topt, torch.tensor(xb), torch.tensor(yb))
        opt = make_optimizer(optim, model.parameters(), opt_kind)
        step = fns["tapegrad"] = tapegrad_step(model, opt, ag.tensor(xb), ag.tensor(yb))
        best = interleaved(fns, rounds=args.repeat, number=number)
        t_tape, t_torch = best["tapegrad"], best.get("torch")
        torch_rate = f"{batch / t_torch:10.0f}" if torch is not None else f"{'-':>10s}"
        ratio = f"{t_torch / t_tape:5.2f}x" if torch is not None else "-"
        print(f"{label:42s} {batch:5d} {batch / t_tape:11.0f} {torch_rate} {ratio:>6s}")
        if args.profile:
            from autograd.profiler import profile

            with profile() as prof:
                for _ in range(number):
                    step()
            print(prof.table(row_limit=8))
    print("ratio = tapegrad samples/s / PyTorch samples/s (>= 1.0: tapegrad is faster)")


if __name__ == "__main__":
    main()
