"""Training throughput of the reference models (tapegrad/models.py): one optimizer step (forward,
loss, backward, Adam), tapegrad against PyTorch eager, float32, train mode.

Each framework runs in its own fresh process per model and round (see _common.py): the PyTorch
child never imports tapegrad (whose import tunes malloc) and the tapegrad child never imports
torch. The parent prints per-round ratios tapegrad/PyTorch in samples per second and their median:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py                # 1 and 2 threads
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py --threads 2 --rounds 7 --log /tmp/steps.jsonl
    python benchmarks/train_step.py --framework tapegrad --case escontrela --threads 1 --profile   # one child, by hand

The PyTorch models are the same architectures written in torch.nn (their initial weights differ:
the time of a step does not depend on them). Both see the same random batch every step.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

# name -> (model in tapegrad.models.MODELS, batch, input side, extra cases are opt-in with --case)
CASES = {
    "digits": ("digits", 32, 20),
    "escontrela": ("escontrela", 32, 28),
    "lenet-bn": ("lenet-bn", 128, 28),
}
EXTRA = {
    "nielsen-conv": ("nielsen-conv", 10, 28),
    "mlp-l2": ("mlp-l2", 50, 28),
}


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


def child(framework: str, case: str, threads: int, min_time: float, profile: bool = False) -> None:
    if case == "sgemm":
        return C.sgemm_child(threads)
    C.child_setup(threads)
    import numpy as np

    name, batch, side = {**CASES, **EXTRA}[case]
    rng = np.random.default_rng(0)
    xd = rng.random((batch, 1, side, side), dtype=np.float32)
    yd = rng.integers(0, 10, batch)
    torch = None
    if framework == "tapegrad":
        import autograd as ag
        import nn
        import optim
        from tapegrad.models import build_model

        model = build_model(name, (1, side, side))
        opt = optim.Adam(model.parameters(), lr=1e-3)
        x, y = ag.tensor(xd), ag.tensor(yd)
        loss_fn = nn.functional.cross_entropy
    elif framework == "torch":
        import torch

        torch.manual_seed(0)
        model = torch_model(torch, name, side)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.tensor(xd), torch.tensor(yd)
        loss_fn = torch.nn.functional.cross_entropy
    else:
        raise SystemExit("train_step.py: the numpy child only measures the machine's sgemm (case 'sgemm')")
    model.train()

    def step():
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    info = C.pin_threads(threads, torch)
    timing = C.timed({"step": step}, min_time)
    if profile and framework == "tapegrad":
        from autograd.profiler import profile as prof_ctx

        with prof_ctx() as prof:
            for _ in range(5):
                step()
        print(prof.table(row_limit=12), file=sys.stderr)
    C.child_report({**timing, "batch": batch, "info": info})


def main() -> None:
    parser = C.parent_args(__doc__, default_rounds=3, default_threads=(1, 2))  # ~2 min on a quiet machine
    parser.add_argument("--profile", action="store_true", help="child mode: print tapegrad's per-primitive times")
    args = parser.parse_args()
    if args.framework:
        return child(args.framework, args.case, args.threads[0], args.min_time, args.profile)
    cases = [args.case] if args.case else list(CASES)
    everything = {**CASES, **EXTRA}

    def describe(case: str) -> str:
        name, batch, side = everything[case]
        return f"{case}: batch {batch}, {side}x{side} input (seconds per step; samples/s = batch / time)"

    C.run_parent(__file__, args, cases, ["step"], describe)


if __name__ == "__main__":
    main()
