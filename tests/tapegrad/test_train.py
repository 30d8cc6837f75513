"""The training loop: early stopping, epochs and metrics, checkpoints that resume bit for bit."""
import json

import numpy as np
import pytest

import autograd as ag
import nn
import optim
from tapegrad.data import ArrayDataset, DataLoader, synthetic_digits
from tapegrad.models import build_model
from tapegrad.train import (EarlyStopping, Progress, TrainingDiverged, checkpoint_state, fit, predict,
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
