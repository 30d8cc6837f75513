"""The training loop: early stopping, epochs and metrics, checkpoints that resume bit for bit."""
import json

import numpy as np
import pytest

import autograd as ag
import nn
import optim
from tapegrad.data import ArrayDataset, DataLoader, synthetic_digits
from tapegrad.models import build_model
from tapegrad.train import (EarlyStopping, Progress, ProgressLog, TrainingDiverged, checkpoint_state, fit, predict,
                            restore_checkpoint, rng_states)


def test_early_stopping_uses_a_bias_corrected_moving_average():
    es = EarlyStopping(0.5, momentum=0.9, min_steps=3)
    assert not es.update(0.1) and es.average == pytest.approx(0.1)  # corrected: not 0.01
    assert not es.update(0.1)  # below the threshold but fewer than min_steps steps
    assert es.update(0.1) and es.stopped
    high = EarlyStopping(0.5, min_steps=1)
    assert not any(high.update(1.0) for _ in range(50))
    restored = EarlyStopping(9.9)
    restored.load_state_dict(json.loads(json.dumps(es.state_dict())))
    assert restored.state_dict() == es.state_dict()


class StopAfter:
    """An interrupt flag that reads True from the n-th check on (as if Ctrl-C came then)."""

    def __init__(self, n):
        self.n = n

    @property
    def requested(self):
        self.n -= 1
        return self.n < 0


def _setup(seed=0, n=48, size=8):
    """lenet-bn on tiny 8x8 images: BatchNorm, dropout, Adam and a cosine schedule in one model."""
    images, labels = synthetic_digits(n, seed=5, image_size=size)
    test = synthetic_digits(16, seed=6, image_size=size)
    model = build_model("lenet-bn", (1, size, size), seed=seed)
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3)
    loader = DataLoader(ArrayDataset(images, labels), batch_size=16, shuffle=True, seed=seed)
    early = EarlyStopping(1e-9)
    return model, opt, sched, loader, test, early


def _run(progress=None, interrupt=None, parts=None, epochs=3):
    model, opt, sched, loader, test, early = parts or _setup()
    result = fit(model, nn.CrossEntropyLoss(), opt, loader, test, epochs, clip_norm=5.0, scheduler=sched,
                 early_stop=early, progress=progress, interrupt=interrupt)
    return result, (model, opt, sched, loader, test, early)


def test_fit_reports_one_row_per_epoch_and_calls_on_epoch():
    rows = []
    model, opt, sched, loader, test, early = _setup()
    result = fit(model, nn.CrossEntropyLoss(), opt, loader, test, 2, scheduler=sched,
                 on_epoch=lambda row, state: rows.append((row, state.epoch)))
    assert [e for _, e in rows] == [1, 2]
    assert [r["epoch"] for r in result.progress.history] == [1.0, 2.0]
    for row in result.progress.history:
        assert set(row) == {"epoch", "loss", "train_acc", "test_acc", "samples_per_s", "seconds"}
        assert 0 <= row["train_acc"] <= 1 and 0 <= row["test_acc"] <= 1 and row["loss"] > 0
    assert sched.last_epoch == 2 and not result.interrupted
    assert model.training  # evaluation switched to eval mode and back


@pytest.mark.parametrize("stop_after", [1, 4, 6])  # mid-epoch 1, mid-epoch 2, at the end of epoch 2
def test_interrupt_checkpoint_resume_equals_uninterrupted(tmp_path, stop_after):
    full, parts_full = _run()
    part, parts = _run(interrupt=StopAfter(stop_after))
    assert part.interrupted
    path = tmp_path / "ckpt.npz"
    nn.save(checkpoint_state(*parts[:4], parts[5], part.progress), path)

    fresh = _setup(seed=0)
    progress = restore_checkpoint(nn.load(path), *fresh[:4], fresh[5])
    assert (progress.epoch, progress.step) == (part.progress.epoch, part.progress.step)
    resumed, parts_resumed = _run(progress=progress, parts=fresh)

    keys = ("loss", "train_acc", "test_acc")
    assert [[r[k] for k in keys] for r in resumed.progress.history] == \
        [[r[k] for k in keys] for r in full.progress.history]
    a, b = parts_full[0].state_dict(), parts_resumed[0].state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert rng_states(parts_full[0]) == rng_states(parts_resumed[0])


def test_checkpoint_holds_every_state(tmp_path):
    result, parts = _run(interrupt=StopAfter(2))
    nn.save(checkpoint_state(*parts[:4], parts[5], result.progress), tmp_path / "c.npz")
    ckpt = nn.load(tmp_path / "c.npz")
    assert {"model", "optimizer", "scheduler", "epoch", "step", "rng", "loader", "early_stop", "progress"} <= set(ckpt)
    assert (ckpt["epoch"], ckpt["step"]) == (0, 3)
    assert ckpt["loader"] == {"seed": 0, "epoch": 0}
    assert "module:dropout" in ckpt["rng"] and ckpt["rng"]["module:dropout"]["bit_generator"] == "PCG64"


def test_progress_round_trips_through_a_checkpoint(tmp_path):
    p = Progress(epoch=2, step=5, loss_sum=1 / 3, correct=7, seen=9, train_seconds=0.1, seconds=0.2,
                 history=[{"epoch": 1.0, "loss": 0.1 + 0.2}])
    nn.save({"p": p.state_dict()}, tmp_path / "p.npz")
    assert Progress.from_state_dict(nn.load(tmp_path / "p.npz")["p"]) == p


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_reported():
    images, labels = synthetic_digits(32, seed=0)
    model = build_model("mlp-l2", (1, 20, 20))
    opt = optim.SGD(model.parameters(), lr=float("inf"))
    loader = DataLoader(ArrayDataset(images, labels), batch_size=16)
    with pytest.raises(TrainingDiverged, match="loss became .* try a lower --lr"):
        fit(model, nn.CrossEntropyLoss(), opt, loader, None, 5)


def test_predict_batches_and_restores_the_mode():
    images, _ = synthetic_digits(2500, seed=0)
    model = build_model("digits", (1, 20, 20))
    preds = predict(model, images, batch_size=1000)
    assert preds.shape == (2500,) and model.training
    model.eval()
    with ag.no_grad():
        expected = model(ag.tensor(images[:10])).data.argmax(1)
    assert np.array_equal(preds[:10], expected)


def test_progress_bar_runs(capsys):
    model, opt, sched, loader, test, early = _setup()
    fit(model, nn.CrossEntropyLoss(), opt, loader, test, 1, show_progress=True)
    assert "epoch 1/1" in capsys.readouterr().err


def test_on_step_sees_every_step_and_can_stop_the_run():
    model, opt, sched, loader, test, early = _setup()
    seen = []

    def on_step(state, loss):
        seen.append((state.epoch, state.step, loss))
        return len(seen) == 4  # stop after the first step of epoch 2 (3 steps per epoch)

    result = fit(model, nn.CrossEntropyLoss(), opt, loader, test, 3, on_step=on_step)
    assert result.interrupted and (result.progress.epoch, result.progress.step) == (1, 1)
    assert [(e, s) for e, s, _ in seen] == [(0, 1), (0, 2), (0, 3), (1, 1)]
    assert all(np.isfinite(loss) and loss > 0 for _, _, loss in seen)


class FakeClock:
    def __init__(self, step_seconds):
        self.now, self.step_seconds = 0.0, step_seconds

    def __call__(self):
        self.now += self.step_seconds
        return self.now


def _log_steps(log, steps, epoch=0, start=0):
    state = Progress(epoch=epoch)
    for k in range(start, steps):
        state.step, state.seen, state.loss_sum = k + 1, 32 * (k + 1), 0.5 * 32 * (k + 1)
        state.train_seconds = state.seconds = 0.01 * (k + 1)
        log(state, 0.5)


def test_progress_log_prints_every_tenth_of_an_epoch_with_rate_and_eta():
    lines = []
    log = ProgressLog(100, epochs=2, write=lines.append, clock=FakeClock(0.01))
    _log_steps(log, 100)
    assert len(lines) == 9  # 10%, 20%, ..., 90%: the epoch's own line reports 100%
    assert lines[0] == "epoch 1/2   10% (10/100 batches)  loss 0.5000  3200 samples/s  ETA 1 s"
    assert lines[-1].startswith("epoch 1/2   90% (90/100 batches)") and lines[-1].endswith("ETA 0 s")
    lines.clear()
    _log_steps(log, 100, epoch=1, start=55)  # a resumed epoch counts from where it starts
    assert [line.split()[2] for line in lines] == ["60%", "70%", "80%", "90%"]


def test_progress_log_prints_every_30_seconds_on_slow_epochs():
    lines = []
    log = ProgressLog(1000, epochs=1, write=lines.append, clock=FakeClock(31.0))
    _log_steps(log, 5)
    assert len(lines) == 5 and all("samples/s  ETA" in line for line in lines)
    assert lines[0].startswith("epoch 1/1    0% (1/1000 batches)")
