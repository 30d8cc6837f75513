"""Training throughput of the reference models (tapegrad/models.py): one optimizer step (forward,
cross-entropy, backward, optimizer step), float32, train mode: tapegrad eager, tapegrad compiled
(`autograd.compile(step, state=[model, opt])`, replaying the traced step) and PyTorch eager.

Each framework runs in its own fresh process per case and round (see _common.py): the PyTorch
child never imports tapegrad (whose import tunes malloc) and the tapegrad children never import
torch. The parent prints each framework's median seconds per step and, for each tapegrad variant,
the per-round ratios PyTorch time / its time (> 1: tapegrad faster) and their median:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py                # 1 and 2 threads
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py --threads 2 --rounds 5 --log /tmp/steps.jsonl
    python benchmarks/train_step.py --case mlp-b10 digits --frameworks tapegrad compiled tapegrad-nomallopt torch
    python benchmarks/train_step.py --framework tapegrad --case escontrela --threads 1 --profile   # one child, by hand

Cases: the MLP 784-30-10 (sigmoid hidden layer, logits, cross-entropy; tapegrad's `mlp-l2` without
its L2) with SGD at batch 10 and 50; digits, escontrela and lenet-bn with Adam. The PyTorch models
are the same architectures and optimizers written in torch (their initial weights differ: the time
of a step does not depend on them). Every framework sees the same random batch every step.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

# name -> (model in tapegrad.models.MODELS, batch, input side, optimizer)
CASES = {
    "mlp-b10": ("mlp-l2", 10, 28, "sgd"),
    "mlp-b50": ("mlp-l2", 50, 28, "sgd"),
    "digits": ("digits", 32, 20, "adam"),
    "escontrela": ("escontrela", 32, 28, "adam"),
    "lenet-bn": ("lenet-bn", 128, 28, "adam"),
}
EXTRA = {  # opt-in with --case
    "nielsen-conv": ("nielsen-conv", 10, 28, "sgd"),
}
ALL_CASES = {**CASES, **EXTRA}
LR = {"sgd": 0.1, "adam": 1e-3}
FRAMEWORKS = ("tapegrad", "compiled", "torch")


def torch_model(torch, name: str, side: int):
    """The architectures of tapegrad/models.py in torch.nn."""
    T = torch.nn
    p = side // 2
    if name == "digits":
        return T.Sequential(T.Conv2d(1, 8, 3, padding=1), T.BatchNorm2d(8), T.ReLU(), T.MaxPool2d(2),
                            T.Flatten(), T.Linear(8 * p * p, 10))
    if name == "escontrela":
        q = (side - 8) // 2
        return T.Sequential(T.Conv2d(1, 8, 5), T.ReLU(), T.Conv2d(8, 8, 5), T.ReLU(), T.MaxPool2d(2), T.Flatten(),
                            T.Linear(8 * q * q, 128), T.ReLU(), T.Linear(128, 10))
    if name == "nielsen-conv":
        q = (side - 4) // 2
        return T.Sequential(T.Conv2d(1, 20, 5), T.MaxPool2d(2), T.Sigmoid(), T.Flatten(), T.Linear(20 * q * q, 100),
                            T.Sigmoid(), T.Linear(100, 10))
    if name == "mlp-l2":
        return T.Sequential(T.Flatten(), T.Linear(side * side, 30), T.Sigmoid(), T.Linear(30, 10))
    if name == "lenet-bn":
        def block(i, o):
            return [T.Conv2d(i, o, 3, padding=1, bias=False), T.BatchNorm2d(o), T.ReLU()]
        q = side // 4
        return T.Sequential(*block(1, 32), *block(32, 32), T.MaxPool2d(2), *block(32, 64), T.MaxPool2d(2),
                            T.Flatten(), T.Linear(64 * q * q, 128), T.ReLU(), T.Dropout(0.3), T.Linear(128, 10))
    raise KeyError(name)


def make_step(framework: str, case: str):
    """(step: a no-argument callable doing one training step, the torch module or None, the
    autograd.compile object or None), for the framework's child; imports only that framework."""
    import numpy as np

    name, batch, side, opt_name = ALL_CASES[case]
    rng = np.random.default_rng(0)
    xd = rng.random((batch, 1, side, side), dtype=np.float32)
    yd = rng.integers(0, 10, batch)
    if framework == "torch":
        import torch

        torch.manual_seed(0)
        model = torch_model(torch, name, side)
        kind = torch.optim.SGD if opt_name == "sgd" else torch.optim.Adam
        opt = kind(model.parameters(), lr=LR[opt_name])
        x, y = torch.tensor(xd), torch.tensor(yd)
        loss_fn = torch.nn.functional.cross_entropy
    elif framework in C.TAPEGRAD_FRAMEWORKS:
        torch = None
        import autograd as ag
        import nn
        import optim
        from tapegrad.models import build_model

        model = build_model(name, (1, side, side))
        kind = optim.SGD if opt_name == "sgd" else optim.Adam
        opt = kind(model.parameters(), lr=LR[opt_name])
        x, y = ag.tensor(xd), ag.tensor(yd)
        loss_fn = nn.functional.cross_entropy
    else:
        raise SystemExit(f"train_step.py: no framework {framework!r} (the numpy child only runs case 'sgemm')")
    model.train()

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    compiled = ag.compile(step, state=[model, opt]) if framework == "compiled" else None
    run = compiled or step
    return (lambda: run(x, y)), torch, compiled


def child(framework: str, case: str, threads: int, min_time: float, profile: bool = False) -> None:
    if case == "sgemm":
        return C.sgemm_child(threads)
    framework = C.child_setup(threads, framework)
    step, torch, compiled = make_step(framework, case)
    info = C.pin_threads(threads, torch)
    # compiled: the first call traces, the others replay (the step drops the gradients before reading them)
    timing = C.timed({"step": step}, min_time, warmup=3)
    if compiled is not None:
        info["compiled_traces"] = compiled.traces  # 1 when every timed call replayed
    if profile and framework == "tapegrad":
        from autograd.profiler import profile as prof_ctx

        with prof_ctx() as prof:
            for _ in range(5):
                step()
        print(prof.table(row_limit=12), file=sys.stderr)
    C.child_report({**timing, "batch": ALL_CASES[case][1], "info": info})


def describe(case: str) -> str:
    name, batch, side, opt_name = ALL_CASES[case]
    return f"{case}: {name}, batch {batch}, {side}x{side} input, {opt_name} (time per step; samples/s = batch / time)"


def main() -> None:
    parser = C.parent_args(__doc__, default_rounds=2, default_threads=(1, 2), frameworks=FRAMEWORKS,
                           default_frameworks=FRAMEWORKS, default_min_time=0.3)  # ~3 min on a quiet machine
    parser.add_argument("--profile", action="store_true", help="child mode: print tapegrad's per-primitive times")
    args = parser.parse_args()
    if args.framework:
        return child(args.framework, args.case[0], args.threads[0], args.min_time, args.profile)
    C.run_parent(__file__, args, args.case or list(CASES), ["step"], describe)


if __name__ == "__main__":
    main()
