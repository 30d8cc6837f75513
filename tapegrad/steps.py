"""The training step and the evaluation forward of a run: compiled by default, eager on request.

`TrainStep` is one optimizer step (zero_grad, forward, loss, backward, clipping, step) written once
as eager code; `autograd.compile` traces it on its first call per signature (the first step, whose
Program also serves the steps after it, and an epoch's partial last batch) and replays it after. Replay
computes what eager mode computes, so a run may switch mode on resume. `Forward` is the eval-mode,
no-grad forward behind test accuracy, `tapegrad eval` and `predict`.

Two ways a compiled step can fail, and what happens:
- tracing raises `autograd.TraceError` (the model reads a tensor value back into Python): the state
  the half-traced step changed is put back, one note says why, and the run goes on eagerly;
- a replayed step's guard fails (a value tapegrad's own code read back changed since the trace; in
  training that is non-finite logits). The step is half done, so it cannot be retried exactly: it is
  run eagerly to see what eager mode says; a non-finite loss is returned (the loop reports the
  divergence), anything else raises.
"""
from __future__ import annotations

import copy
import math
import warnings
from typing import Any, Callable

import numpy as np

import autograd as ag
import nn
import optim
from autograd import TraceError
from tapegrad.generators import rng_states, set_rng_states

Note = Callable[[str], Any]


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


class _Snapshot:
    """Everything a step may change (parameters, buffers, gradients, optimizer state, generators),
    taken before a trace so that a trace that fails half-way can be undone."""

    def __init__(self, model: nn.Module, optimizer: optim.Optimizer | None) -> None:
        self.model, self.optimizer = model, optimizer
        self.tensors = model.state_dict()
        self.grads = {p: None if p.grad is None else p.grad.data.copy() for p in model.parameters()}
        self.rng = rng_states(model)
        self.opt = None if optimizer is None else \
            {p: {k: copy.deepcopy(v) for k, v in s.items()} for p, s in optimizer.state.items()}

    def restore(self) -> None:
        self.model.load_state_dict(self.tensors)
        for p, g in self.grads.items():
            p.grad = None if g is None else ag.tensor(g)
        set_rng_states(self.model, self.rng)
        if self.optimizer is not None:
            self.optimizer.state.clear()
            self.optimizer.state.update(self.opt)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class _Runner:
    """`fn` compiled (or eager), with the fallbacks of the module docstring."""

    what = "step"
    # Replay into buffers it keeps between calls (out=); an evaluation forward on large batches
    # runs rarely, so it frees its arrays instead of holding hundreds of MB between epochs.
    keep_buffers = True

    def __init__(self, fn: Callable, model: nn.Module, optimizer: optim.Optimizer | None, eager: bool,
                 note: Note | None) -> None:
        self.fn, self.model, self.optimizer = fn, model, optimizer
        self.note = note or _warn
        state = [model] if optimizer is None else [model, optimizer]
        self.compiled = None if eager else ag.compile(fn, state=state, plan=self.keep_buffers)

    @property
    def mode(self) -> str:
        """'compiled' or 'eager' (after a failed trace: 'eager')."""
        return "eager" if self.compiled is None else "compiled"

    def _will_trace(self, args: tuple) -> bool:
        c = self.compiled
        entries = c.cache.get(c.signature(args, {}))
        return not entries or not any(e.applies() for e in entries)

    def run(self, *arrays: np.ndarray) -> Any:
        args = tuple(ag.tensor(a) for a in arrays)
        if self.compiled is None:
            return self.fn(*args)
        if not self._will_trace(args):
            try:
                return self.compiled(*args)
            except TraceError as exc:  # a guard failed half-way through a replay
                return self.after_failed_guard(exc, arrays)
        saved = _Snapshot(self.model, self.optimizer)
        try:
            return self.compiled(*args)
        except TraceError as exc:
            saved.restore()
            self.compiled = None
            self.note(f"cannot compile the {self.what} of {type(self.model).__name__} ({_one_line(exc)}); "
                      f"running eager {self.what}s instead")
            return self.fn(*(ag.tensor(a) for a in arrays))

    def after_failed_guard(self, exc: TraceError, arrays: tuple) -> Any:
        raise exc


class TrainStep(_Runner):
    """One optimizer step on a batch: `step(images, labels) -> (loss as float, logits as array)`."""

    what = "training step"

    def __init__(self, model: nn.Module, loss_fn: Callable[[Any, Any], Any], optimizer: optim.Optimizer, *,
                 clip_value: float | None = None, clip_norm: float | None = None, eager: bool = False,
                 note: Note | None = None) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]

        def train_step(x: ag.Tensor, y: ag.Tensor) -> tuple[ag.Tensor, ag.Tensor]:
            optimizer.zero_grad()
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            if clip_value is not None:
                optim.clip_grad_value_(params, clip_value)
            if clip_norm is not None:
                optim.clip_grad_norm_(params, clip_norm)
            optimizer.step()
            return loss, logits

        super().__init__(train_step, model, optimizer, eager, note)

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        loss, logits = self.run(images, labels)
        return float(loss.item()), logits.data

    def after_failed_guard(self, exc: TraceError, arrays: tuple) -> Any:
        loss, logits = self.fn(*(ag.tensor(a) for a in arrays))
        if math.isfinite(float(loss.item())):
            raise RuntimeError(f"the compiled training step no longer applies ({_one_line(exc)}), while eager mode "
                               "trains on this batch; rerun with --eager (eager steps)") from exc
        return loss, logits  # the loss is not finite: the loop reports the divergence as eager mode does


class Forward(_Runner):
    """The model's outputs on a batch in eval mode, without recording a graph: `forward(images) -> array`."""

    what = "evaluation forward"
    keep_buffers = False

    def __init__(self, model: nn.Module, *, eager: bool = False, note: Note | None = None) -> None:
        super().__init__(lambda x: model(x), model, None, eager, note)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        was_training = self.model.training
        self.model.eval()
        try:
            with ag.no_grad():
                return self.run(np.asarray(images, dtype=np.float32)).data
        finally:
            self.model.train(was_training)

    def after_failed_guard(self, exc: TraceError, arrays: tuple) -> Any:
        # an eval-mode forward changes no state: run this batch and the next ones eagerly
        self.compiled = None
        self.note(f"the compiled {self.what} no longer applies ({_one_line(exc)}); running eagerly")
        return self.fn(*(ag.tensor(a) for a in arrays))
