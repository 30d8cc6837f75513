"""Train each reference model with its recipe in tapegrad and in PyTorch, side by side.

The PyTorch twin is built from the tapegrad model itself: the same module tree with torch layers,
the same forward code (the tapegrad class's `forward`, bound to the torch module), the same initial
weights (copied through `state_dict`), the same batches in the same order (one seeded
`tapegrad.data.DataLoader` drives both), the same optimizer settings, clipping and schedule.
What differs: dropout masks (each framework's generator) and floating-point summation order.

    python benchmarks/results.py --dataset fashion-mnist --epochs 1 --seeds 0 1 2
    python benchmarks/results.py --dataset mnist-10k                       # recipe epochs
    python benchmarks/results.py --dataset fashion-mnist --models lenet-bn --epochs 10 --seeds 0

tapegrad runs compiled steps (as `tapegrad train` does; `--eager` for per-op mode). `--frameworks
tapegrad` / `--frameworks torch` train one side only, so the two can run in separate processes side
by side (one thread each on a 2-core machine: the same conditions for both). The PyTorch-only
process runs without tapegrad's malloc tuning, as PyTorch's users run it; with both frameworks in
one process PyTorch shares that tuning (its steps then run faster than users' do).

Prints one row per (model, seed) and the means, as Markdown, and appends JSON lines to --log.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np


FRAMEWORKS = ("tapegrad", "torch")


def _add_frameworks(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS,
                        help="train only these (e.g. one per process, started side by side)")


def _torch_alone() -> bool:
    """`--frameworks torch` alone: this process trains PyTorch only, as its users run it."""
    probe = argparse.ArgumentParser(add_help=False)
    _add_frameworks(probe)
    return probe.parse_known_args()[0].frameworks == ["torch"]


# Importing tapegrad tunes glibc's malloc for the whole process (autograd/allocator.py), and PyTorch
# shares it: measured, its one-thread LeNet-BN step took 211-261 ms with tapegrad's settings against
# 297-306 ms without. The PyTorch-only process builds its twin from tapegrad's model code, so it
# imports tapegrad; it turns the tuning off first, as a PyTorch user's process never has it.
if _torch_alone():
    os.environ["TAPEGRAD_KEEP_FREED_MEMORY"] = "0"

import nn  # noqa: E402
import optim  # noqa: E402
from tapegrad.cli import load_datasets  # noqa: E402
from tapegrad.data import DataLoader  # noqa: E402
from tapegrad.models import LOSSES, MODELS, build_model, weight_decay_for  # noqa: E402
from tapegrad.train import EarlyStopping  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import pin_threads  # noqa: E402  (benchmarks/ is not a package)


# --- the PyTorch twin ------------------------------------------------------------------------------
def _torch_layer(torch, m: nn.Module):
    T = torch.nn
    name = type(m).__name__
    if name == "Conv2d":
        return T.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                        bias=m.bias is not None)
    if name == "Linear":
        return T.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if name == "BatchNorm2d":
        return T.BatchNorm2d(m.num_features, eps=m.eps, momentum=m.momentum)
    if name == "MaxPool2d":
        return T.MaxPool2d(m.kernel_size, m.stride, m.padding)
    if name == "Dropout":
        return T.Dropout(m.p)
    if name == "Flatten":
        return T.Flatten(m.start_dim, m.end_dim)
    if name in ("ReLU", "Sigmoid", "Tanh"):
        return getattr(T, name)()
    return None


def torch_twin(torch, model: nn.Module):
    """The same module tree in torch, running the tapegrad class's own forward code."""
    layer = _torch_layer(torch, model)
    if layer is not None:
        return layer
    twin_cls = type(f"Torch{type(model).__name__}", (torch.nn.Module,), {"forward": type(model).forward})
    twin = twin_cls()
    for key, value in vars(model).items():
        if not key.startswith("_") and isinstance(value, (bool, int, float, str)):
            setattr(twin, key, value)
    for name, child in model.named_children():
        setattr(twin, name, torch_twin(torch, child))
    twin.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in model.state_dict().items()})
    return twin


def torch_quadratic(torch):
    def loss(out, target):
        onehot = torch.nn.functional.one_hot(target, out.shape[1]).to(out.dtype)
        return 0.5 * ((out - onehot) ** 2).sum(dim=1).mean()
    return loss


def _loop(step, loader, epochs: int, early: EarlyStopping | None, end_epoch) -> dict[str, float]:
    """The one training loop both frameworks run: per-step times are kept, so a robust epoch time
    (median step time x steps) can be reported on a shared, noisy machine."""
    times, start = [], time.perf_counter()
    for _ in range(epochs):
        for images, labels in loader:
            t0 = time.perf_counter()
            value = step(images, labels)
            times.append(time.perf_counter() - t0)
            if early is not None and early.update(value):
                break
        end_epoch()
        if early is not None and early.stopped:
            break
    return {"seconds": time.perf_counter() - start, "robust_s": float(np.median(times)) * len(times),
            "steps": len(times)}


def train_torch(torch, model, spec, cfg, loader, test) -> dict[str, float]:
    r = spec.recipe
    params = list(model.parameters())
    if r.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    else:
        cls = torch.optim.Adam if r.optimizer == "adam" else torch.optim.AdamW
        opt = cls(params, lr=cfg["lr"], betas=r.betas, weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"]) if r.scheduler == "cosine" else None
    loss_fn = torch.nn.functional.cross_entropy if r.loss == "cross_entropy" else torch_quadratic(torch)

    def step(images, labels):
        loss = loss_fn(model(torch.from_numpy(images)), torch.from_numpy(labels))
        opt.zero_grad()
        loss.backward()
        if r.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, r.clip_value)
        opt.step()
        return loss.item()

    model.train()
    timing = _loop(step, loader, cfg["epochs"], _early(r), lambda: sched.step() if sched else None)
    model.eval()
    with torch.no_grad():
        preds = torch.cat([model(torch.from_numpy(test.images[i:i + 1000])).argmax(1)
                           for i in range(0, len(test), 1000)]).numpy()
    return {"test_acc": float(np.mean(preds == test.labels)), **timing}


def train_tapegrad(model, spec, cfg, loader, test, eager: bool = False) -> dict[str, float]:
    """Compiled steps by default, as `tapegrad train` runs them (eager=True: per-op eager mode)."""
    import autograd as ag
    from tapegrad.train import accuracy

    r = spec.recipe
    params = list(model.parameters())
    opt = optim.SGD(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"]) if r.optimizer == "sgd" else \
        (optim.Adam if r.optimizer == "adam" else optim.AdamW)(
            params, lr=cfg["lr"], betas=r.betas, weight_decay=cfg["weight_decay"])
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"]) if r.scheduler == "cosine" else None
    loss_fn = LOSSES[r.loss]()

    def step(images, labels):
        loss = loss_fn(model(ag.tensor(images)), labels)
        opt.zero_grad()
        loss.backward()
        if r.clip_value is not None:
            optim.clip_grad_value_(params, r.clip_value)
        opt.step()
        return loss

    run = step if eager else ag.compile(step, state=[model, opt])
    model.train()
    timing = _loop(lambda images, labels: run(images, labels).item(), loader, cfg["epochs"], _early(r),
                   lambda: sched.step() if sched else None)
    return {"test_acc": accuracy(model, test.images, test.labels), **timing}


def _early(recipe) -> EarlyStopping | None:
    return EarlyStopping(recipe.early_stop_loss) if recipe.early_stop_loss is not None else None


def run_one(torch, name: str, seed: int, train, test, epochs: int | None, frameworks=FRAMEWORKS,
            eager: bool = False) -> dict[str, Any]:
    spec = MODELS[name]
    shape = tuple(train.images.shape[1:])
    cfg = {"lr": spec.recipe.lr, "epochs": epochs or spec.recipe.epochs,
           "weight_decay": weight_decay_for(spec.recipe, len(train))}
    model = build_model(name, shape, 10, seed)
    twin = torch_twin(torch, model)  # copies the initial weights before tapegrad trains

    def loader():
        return DataLoader(train, batch_size=spec.recipe.batch_size, shuffle=True, seed=seed)

    nan = {"test_acc": float("nan"), "seconds": float("nan"), "robust_s": float("nan"), "steps": 0}
    tg = train_tapegrad(model, spec, cfg, loader(), test, eager) if "tapegrad" in frameworks else nan
    pt = train_torch(torch, twin, spec, cfg, loader(), test) if "torch" in frameworks else nan
    return {"model": name, "seed": seed, "epochs": cfg["epochs"], "n_train": len(train), "n_test": len(test),
            "tapegrad_mode": "eager" if eager else "compiled",
            "tapegrad_acc": tg["test_acc"], "torch_acc": pt["test_acc"],
            "tapegrad_s": tg["seconds"], "torch_s": pt["seconds"],
            "tapegrad_robust_s": tg["robust_s"], "torch_robust_s": pt["robust_s"],
            "steps": max(tg["steps"], pt["steps"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=None, help="default: each recipe's epochs")
    parser.add_argument("--limit-train", type=int, default=None)
    parser.add_argument("--log", default=None, help="append JSON lines here (nothing is written without it)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eager", action="store_true", help="tapegrad per-op eager (default: compiled steps)")
    _add_frameworks(parser)
    args = parser.parse_args()
    import torch

    print("threads:", json.dumps(pin_threads(args.threads, torch)), flush=True)
    train, test, _ = load_datasets(args.dataset, args.data_dir, args.limit_train)
    print("| model | seed | epochs | tapegrad acc | PyTorch acc | diff (points) | tapegrad s | PyTorch s | "
          "time ratio (median step) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.models:
        for seed in args.seeds:
            row = run_one(torch, name, seed, train, test, args.epochs, args.frameworks, args.eager)
            row["dataset"] = args.dataset
            rows.append(row)
            if args.log is not None:
                with open(args.log, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"| {name} | {seed} | {row['epochs']} | {100 * row['tapegrad_acc']:.2f} | {100 * row['torch_acc']:.2f} | "
                  f"{100 * (row['tapegrad_acc'] - row['torch_acc']):+.2f} | {row['tapegrad_s']:.1f} | {row['torch_s']:.1f} | "
                  f"{row['tapegrad_robust_s'] / row['torch_robust_s']:.2f} |", flush=True)
    if len(args.seeds) > 1:
        print("\nmeans over seeds")
        for name in args.models:
            sel = [r for r in rows if r["model"] == name]
            tg, pt = np.mean([r["tapegrad_acc"] for r in sel]), np.mean([r["torch_acc"] for r in sel])
            ts, ps = np.mean([r["tapegrad_s"] for r in sel]), np.mean([r["torch_s"] for r in sel])
            rts = np.mean([r["tapegrad_robust_s"] for r in sel]) / np.mean([r["torch_robust_s"] for r in sel])
            print(f"| {name} | mean of {len(sel)} | {sel[0]['epochs']} | {100 * tg:.2f} | {100 * pt:.2f} | "
                  f"{100 * (tg - pt):+.2f} | {ts:.1f} | {ps:.1f} | {rts:.2f} |", flush=True)


if __name__ == "__main__":
    main()
