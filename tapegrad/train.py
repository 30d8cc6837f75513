"""The model-agnostic training loop, evaluation, early stopping, checkpoints and Ctrl-C handling.

`fit` trains any `nn.Module` with any loss and optimizer on a `DataLoader`, and can start from the
middle of an epoch: its whole position is a `Progress` (epochs done, steps done in the current
epoch, the running loss/accuracy sums of that epoch, the per-epoch history). A checkpoint
(`checkpoint_state`) holds that position together with the model, optimizer, scheduler, loader and
RNG states, so `restore_checkpoint` + `fit` continues *exactly* where the saved run was: the same
batches in the same order, the same dropout masks, the same floating-point sums.

What a checkpoint written on Ctrl-C contains: the state after the last *completed* optimizer step
(a step is never cut in half: the SIGINT handler only raises a flag that `fit` reads between steps).
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

import nn
import optim
from tapegrad.data import DataLoader
from tapegrad.generators import rng_states, set_rng_states
from tapegrad.steps import Forward, TrainStep

EVAL_BATCH = 1000


class TrainingDiverged(ArithmeticError):
    """The training loss became NaN or infinite; the message says where and what to try."""


# --- early stopping ------------------------------------------------------------------------------
class EarlyStopping:
    """Stop when the exponential moving average of the per-step training loss falls below `threshold`.

    average <- momentum * average + (1 - momentum) * loss (bias-corrected, as Adam's moments are, so the
    first steps are not pulled towards 0); checked after every step once `min_steps` steps are done.
    """

    def __init__(self, threshold: float, momentum: float = 0.9, min_steps: int = 20) -> None:
        self.threshold = float(threshold)
        self.momentum = float(momentum)
        self.min_steps = int(min_steps)
        self.raw = 0.0  # the uncorrected EMA
        self.steps = 0
        self.stopped = False

    @property
    def average(self) -> float | None:
        return self.raw / (1.0 - self.momentum ** self.steps) if self.steps else None

    def update(self, loss: float) -> bool:
        """Feed one step's loss; True (and `stopped`) once the average is below the threshold."""
        self.raw = self.momentum * self.raw + (1.0 - self.momentum) * float(loss)
        self.steps += 1
        if self.steps >= self.min_steps and self.average < self.threshold:
            self.stopped = True
        return self.stopped

    def state_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "momentum": self.momentum, "min_steps": self.min_steps,
                "raw": self.raw, "steps": self.steps, "stopped": self.stopped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.threshold, self.momentum = float(state["threshold"]), float(state["momentum"])
        self.min_steps, self.raw = int(state["min_steps"]), float(state["raw"])
        self.steps, self.stopped = int(state["steps"]), bool(state["stopped"])


# --- where a run is ------------------------------------------------------------------------------
@dataclass
class Progress:
    """The position of a run: everything `fit` needs to continue it, besides the objects' states."""

    epoch: int = 0  # completed epochs
    step: int = 0  # optimizer steps done in the current (incomplete) epoch
    loss_sum: float = 0.0  # sum over the epoch's samples so far of their loss
    correct: int = 0
    seen: int = 0
    train_seconds: float = 0.0  # time spent in steps this epoch (for samples/s)
    seconds: float = 0.0  # wall time this epoch
    history: list[dict[str, float]] = field(default_factory=list)  # one metrics row per epoch

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "Progress":
        history = [{k: float(v) for k, v in row.items()} for row in state.get("history", [])]
        return cls(int(state["epoch"]), int(state["step"]), float(state["loss_sum"]), int(state["correct"]),
                   int(state["seen"]), float(state["train_seconds"]), float(state["seconds"]), history)

    def _start_epoch(self) -> None:
        self.step, self.loss_sum, self.correct, self.seen = 0, 0.0, 0, 0
        self.train_seconds = self.seconds = 0.0


@dataclass
class FitResult:
    progress: Progress
    interrupted: bool = False
    stopped_early: bool = False
    forward: Forward | None = None  # the run's test-set forward, programs traced: reuse it for more predictions


# --- Ctrl-C --------------------------------------------------------------------------------------
class InterruptFlag:
    """Set by the SIGINT handler; `fit` reads it between steps."""

    requested: bool = False


@contextlib.contextmanager
def catch_sigint() -> Iterator[InterruptFlag]:
    """Turn the first Ctrl-C into a flag (the run stops after its current step and saves); a second
    Ctrl-C raises KeyboardInterrupt at once. Outside the main thread no handler can be installed."""
    flag = InterruptFlag()

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:
            raise KeyboardInterrupt
        flag.requested = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


# --- evaluation ----------------------------------------------------------------------------------
def predict(model: nn.Module, images: np.ndarray, batch_size: int = EVAL_BATCH, *,
            forward: Forward | None = None, eager: bool = False,
            note: Callable[[str], Any] | None = None) -> np.ndarray:
    """Class predictions (argmax of the outputs) in eval mode, without recording a graph. `forward`
    (a `Forward` of this model) keeps its compiled programs from call to call; without it one is
    made for this call (compiled unless `eager`; `note` as in `fit`)."""
    forward = forward if forward is not None else Forward(model, eager=eager, note=note)
    preds = [forward(images[i:i + batch_size]).argmax(axis=1) for i in range(0, len(images), batch_size)]
    return np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, *, forward: Forward | None = None) -> float:
    return float(np.mean(predict(model, images, forward=forward) == labels)) if len(labels) else float("nan")


# --- the loop ------------------------------------------------------------------------------------
def _bar(total: int, initial: int, desc: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="batch", leave=False, dynamic_ncols=True,
                file=sys.stderr)


StepHook = Callable[["Progress", float], Optional[bool]]


def train_epoch(model: nn.Module, loss_fn: Callable[[Any, np.ndarray], Any], optimizer: optim.Optimizer,
                train_loader: DataLoader, state: Progress, *, clip_value: float | None = None,
                clip_norm: float | None = None, early_stop: EarlyStopping | None = None,
                on_step: StepHook | None = None, step: TrainStep | None = None) -> bool:
    """The optimizer steps of epoch `state.epoch`, from step `state.step` on (a resumed epoch skips
    the batches it trained on). After every step `on_step(state, loss)` runs (progress, Ctrl-C);
    it returns True to stop the epoch there. Returns True when it was stopped so, False when the
    epoch ended or early stopping fired (`early_stop.stopped`). `step` is the run's `TrainStep`
    (its compiled programs serve every epoch); without it a compiled one is made for this epoch."""
    if step is None:
        step = TrainStep(model, loss_fn, optimizer, clip_value=clip_value, clip_norm=clip_norm)
    epoch_start = time.perf_counter() - state.seconds
    for index, (images, labels) in enumerate(train_loader):
        if index < state.step:  # resuming mid-epoch: these batches were trained on already
            continue
        t0 = time.perf_counter()
        value, logits = step(images, labels)
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the training loss became {value} at epoch {state.epoch + 1}, step {state.step + 1}; "
                "try a lower --lr or gradient clipping (--clip-value / --clip-norm)"
            )
        n = len(labels)
        state.step += 1
        state.loss_sum += value * n
        state.correct += int(np.sum(logits.argmax(axis=1) == labels))
        state.seen += n
        state.train_seconds += time.perf_counter() - t0
        state.seconds = time.perf_counter() - epoch_start
        if early_stop is not None and early_stop.update(value):
            return False
        if on_step is not None and on_step(state, value):
            return True
    return False


def fit(
    model: nn.Module,
    loss_fn: Callable[[Any, np.ndarray], Any],
    optimizer: optim.Optimizer,
    train_loader: DataLoader,
    test_data: Optional[tuple[np.ndarray, np.ndarray]],
    epochs: int,
    clip_value: float | None = None,
    clip_norm: float | None = None,
    scheduler: Any = None,
    early_stop: EarlyStopping | None = None,
    on_epoch: Callable[[dict[str, float], Progress], None] | None = None,
    *,
    progress: Progress | None = None,
    interrupt: InterruptFlag | None = None,
    show_progress: bool = False,
    on_step: StepHook | None = None,
    eager: bool = False,
    note: Callable[[str], Any] | None = None,
) -> FitResult:
    """Train `model` until `epochs` epochs are done, early stopping fires, or a stop is requested.

    The epoch loop around `train_epoch`: starts from `progress` (a restored checkpoint's) if given;
    the loader must then be at that epoch (`restore_checkpoint` does it). The scheduler steps once
    per epoch; `on_epoch(row, progress)` runs after each epoch's evaluation, with the progress already
    advanced to the next epoch (the moment to write a checkpoint). `on_step(progress, loss)` runs
    after every step and returns True to stop (as Ctrl-C does); `interrupt` is a flag read after
    every step and every epoch, and `show_progress` draws a tqdm bar (both are on_step hooks).
    Steps and the test-set forward are compiled (`tapegrad.steps`) unless `eager`; `note(text)` is
    told when a model cannot be compiled and runs eagerly instead (default: a RuntimeWarning).
    """
    state = progress if progress is not None else Progress()
    step = TrainStep(model, loss_fn, optimizer, clip_value=clip_value, clip_norm=clip_norm, eager=eager, note=note)
    forward = Forward(model, eager=eager, note=note)
    model.train()
    while state.epoch < epochs and not (early_stop is not None and early_stop.stopped):
        bar = _bar(len(train_loader), state.step, f"epoch {state.epoch + 1}/{epochs}", show_progress)
        epoch_start = time.perf_counter() - state.seconds

        def hook(s: Progress, loss: float) -> bool:
            if bar is not None:
                bar.update(1)
                if s.step % 10 == 0:
                    bar.set_postfix(loss=f"{s.loss_sum / s.seen:.4f}", acc=f"{s.correct / s.seen:.3f}",
                                    samples_s=f"{s.seen / max(s.train_seconds, 1e-9):.0f}", refresh=False)
            stop = bool(on_step(s, loss)) if on_step is not None else False
            return (interrupt is not None and interrupt.requested) or stop

        try:
            stopped = train_epoch(model, loss_fn, optimizer, train_loader, state, clip_value=clip_value,
                                  clip_norm=clip_norm, early_stop=early_stop, on_step=hook, step=step)
        finally:
            if bar is not None:
                bar.close()
        if stopped:
            return FitResult(state, interrupted=True, forward=forward)
        if scheduler is not None:
            scheduler.step()
        test_acc = accuracy(model, *test_data, forward=forward) if test_data is not None else float("nan")
        row = {
            "epoch": float(state.epoch + 1),
            "loss": state.loss_sum / max(state.seen, 1),
            "train_acc": state.correct / max(state.seen, 1),
            "test_acc": test_acc,
            "samples_per_s": state.seen / max(state.train_seconds, 1e-9),
            "seconds": time.perf_counter() - epoch_start,
        }
        state.history.append(row)
        state.epoch += 1
        state._start_epoch()
        if on_epoch is not None:
            on_epoch(row, state)
        if interrupt is not None and interrupt.requested:
            return FitResult(state, interrupted=True, stopped_early=bool(early_stop and early_stop.stopped),
                             forward=forward)
    return FitResult(state, stopped_early=bool(early_stop is not None and early_stop.stopped), forward=forward)


class ProgressLog:
    """Progress lines for logs (stdout not a terminal, so no bar): one each time the epoch passes
    another `every` of its steps (10%) or `seconds` (30 s) after the last line, with samples/s and
    the epoch's ETA. Use as `fit(..., on_step=ProgressLog(len(loader), epochs))`."""

    def __init__(self, steps_per_epoch: int, epochs: int, write: Callable[[str], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic, every: float = 0.1, seconds: float = 30.0) -> None:
        self.total, self.epochs = max(int(steps_per_epoch), 1), epochs
        self.write = write or (lambda line: print(line, flush=True))
        self.clock, self.marks, self.seconds = clock, max(1, round(1 / every)), seconds
        self._epoch, self._mark, self._last = -1, 0, clock()

    def __call__(self, state: Progress, loss: float) -> bool:
        now = self.clock()
        if state.epoch != self._epoch:  # a new (or resumed) epoch: count marks from where it starts
            self._epoch, self._mark = state.epoch, (state.step - 1) * self.marks // self.total
        mark = state.step * self.marks // self.total
        if state.step < self.total and (mark > self._mark or now - self._last >= self.seconds):
            self._mark, self._last = mark, now
            self.write(self.line(state))
        return False

    def line(self, state: Progress) -> str:
        rate = state.seen / max(state.train_seconds, 1e-9)
        per_step = state.seconds / max(state.step, 1)
        eta = per_step * (self.total - state.step)
        return (f"epoch {state.epoch + 1}/{self.epochs}  {100 * state.step / self.total:3.0f}% "
                f"({state.step}/{self.total} batches)  loss {state.loss_sum / max(state.seen, 1):.4f}  "
                f"{rate:.0f} samples/s  ETA {_duration(eta)}")


def _duration(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def format_epoch(row: dict[str, float], epochs: int) -> str:
    """The one summary line printed per epoch."""
    return (f"epoch {int(row['epoch'])}/{epochs}  loss {row['loss']:.4f}  train_acc {100 * row['train_acc']:.2f}%  "
            f"test_acc {100 * row['test_acc']:.2f}%  {row['samples_per_s']:.0f} samples/s  {row['seconds']:.1f} s")


# --- checkpoints ---------------------------------------------------------------------------------
def checkpoint_state(model: nn.Module, optimizer: optim.Optimizer, scheduler: Any, loader: DataLoader,
                     early_stop: EarlyStopping | None, progress: Progress) -> dict[str, Any]:
    """The checkpoint as a nested dict for `nn.save`.

    'loader' records the epoch whose batches come next; 'progress' says how many of its batches
    ('step') are done, so a mid-epoch checkpoint (Ctrl-C) resumes at the very next batch.
    """
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": progress.epoch,
        "step": progress.step,
        "rng": rng_states(model),
        "loader": {"seed": loader.seed, "epoch": progress.epoch},
        "early_stop": early_stop.state_dict() if early_stop is not None else None,
        "progress": progress.state_dict(),
    }


def restore_checkpoint(ckpt: dict[str, Any], model: nn.Module, optimizer: optim.Optimizer, scheduler: Any,
                       loader: DataLoader, early_stop: EarlyStopping | None) -> Progress:
    """Load every state of `checkpoint_state` back; returns the Progress to pass to `fit`."""
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scheduler is not None and ckpt.get("scheduler") is not None:
        scheduler.load_state_dict(ckpt["scheduler"])
    loader.load_state_dict(ckpt["loader"])
    if early_stop is not None and ckpt.get("early_stop") is not None:
        early_stop.load_state_dict(ckpt["early_stop"])
    set_rng_states(model, ckpt["rng"])
    return Progress.from_state_dict(ckpt["progress"])
