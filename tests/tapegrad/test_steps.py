"""Compiled training steps and evaluation forwards give what eager mode gives; a model that cannot be
compiled falls back to eager steps, exactly, after one note."""
import numpy as np
import pytest

import autograd as ag
import nn
import optim
from tapegrad import steps as steps_module
from tapegrad import train as train_module
from tapegrad.data import ArrayDataset, DataLoader, synthetic_digits
from tapegrad.models import LOSSES, MODELS, build_model, weight_decay_for
from tapegrad.steps import Forward, TrainStep
from tapegrad.train import TrainingDiverged, fit, predict, rng_states


def _parts(name, size=16, n=40, seed=0):
    """A model of MODELS with its recipe's optimizer (L2 weight decay, betas), loss, clipping and
    schedule, on n tiny images in batches that leave a partial last batch."""
    recipe = MODELS[name].recipe
    shape = (1, 28, 28) if name in ("zhou", "nielsen-mlp", "mlp-l2") else (1, size, size)
    images, labels = synthetic_digits(n, seed=5, image_size=shape[-1])
    model = build_model(name, shape, seed=seed)
    wd = weight_decay_for(recipe, n)
    opt = optim.SGD(model.parameters(), lr=recipe.lr, weight_decay=wd) if recipe.optimizer == "sgd" else \
        optim.Adam(model.parameters(), lr=recipe.lr, betas=recipe.betas, weight_decay=wd)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2) if recipe.scheduler == "cosine" else None
    loader = DataLoader(ArrayDataset(images, labels), batch_size=min(recipe.batch_size, 16), shuffle=True, seed=seed)
    test = synthetic_digits(12, seed=6, image_size=shape[-1])
    return model, LOSSES[recipe.loss](), opt, sched, loader, test, recipe


def _spy(monkeypatch):
    """The TrainStep and Forward objects `fit` makes, kept to look at their programs after."""
    made = []
    for cls in (TrainStep, Forward):
        class Spy(cls):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                made.append(self)
        monkeypatch.setattr(train_module, cls.__name__, Spy)
    return made


def _replays(runner):
    return sum(c.calls for entries in runner.compiled.cache.values() for c in entries)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_trains_the_same_compiled_and_eager(name, monkeypatch):
    notes, runs = [], []
    made = _spy(monkeypatch)
    for eager in (False, True):
        model, loss_fn, opt, sched, loader, test, recipe = _parts(name)
        result = fit(model, loss_fn, opt, loader, test, 2, clip_value=recipe.clip_value, clip_norm=recipe.clip_norm,
                     scheduler=sched, eager=eager, note=notes.append)
        runs.append((model, result.progress.history))
    assert notes == []  # every reference model compiles
    step, forward, eager_step, eager_forward = made
    assert (step.mode, forward.mode, eager_step.mode, eager_forward.mode) == ("compiled", "compiled", "eager", "eager")
    # traced: the first step, the steps once gradients exist, a partial last batch; the rest replayed
    batches, partial = -(-40 // loader.batch_size), 40 % loader.batch_size != 0
    assert step.compiled.traces == 1 + partial and _replays(step) == 2 * batches - step.compiled.traces
    assert forward.compiled.traces == 1 and _replays(forward) == 1  # 12 test images per epoch, 2 epochs
    (compiled, rows_c), (eager, rows_e) = runs
    for key in ("loss", "train_acc", "test_acc"):
        np.testing.assert_allclose([r[key] for r in rows_c], [r[key] for r in rows_e], rtol=1e-6, atol=0)
    a, b = compiled.state_dict(), eager.state_dict()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert rng_states(compiled) == rng_states(eager)  # dropout drew as often


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_divergence_found_by_a_replay_guard_is_reported_as_in_eager_mode(monkeypatch):
    """escontrela at lr 1e10 gets non-finite logits on step 3, a replayed step: log_softmax's guard
    fails half-way; the step rerun eagerly gives the non-finite loss, reported at the same step."""
    guards = []
    real = TrainStep.after_failed_guard
    monkeypatch.setattr(TrainStep, "after_failed_guard", lambda self, exc, arrays: guards.append(exc) or
                        real(self, exc, arrays))
    messages = []
    for eager in (False, True):
        images, labels = synthetic_digits(160, seed=0)
        model = build_model("escontrela", (1, 20, 20))
        loader = DataLoader(ArrayDataset(images, labels), batch_size=16)
        with pytest.raises(TrainingDiverged) as info, np.errstate(all="ignore"):
            fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=1e10), loader, None, 5, eager=eager)
        messages.append(str(info.value))
    assert len(guards) == 1 and "functional.py" in str(guards[0])
    assert messages[0] == messages[1] and "epoch 1, step 3;" in messages[0]


def test_a_failed_guard_with_a_finite_eager_loss_raises(monkeypatch):
    images, labels = synthetic_digits(16, seed=0)
    model = build_model("digits", (1, 20, 20))
    step = TrainStep(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()))

    def replay(*args):
        raise ag.TraceError("replay: a value read back by bool() at x.py:1 was True when the step was traced")

    monkeypatch.setattr(step, "_will_trace", lambda args: False)
    step.compiled = replay
    with pytest.raises(RuntimeError, match=r"no longer applies \(replay: a value .*rerun with --eager"):
        step(images, labels)


def _failing_compile(monkeypatch):
    """autograd.compile whose traces run the whole function (changing every state: parameters,
    moments, statistics, generators) and then fail, as a model reading a value back would."""
    real = ag.compile

    def compile(fn, **options):
        def run_then_fail(*args):
            fn(*args)
            raise ag.TraceError("trace: bool() reads a traced value (shape ()) back into Python at model.py:7")
        return real(run_then_fail, **options)

    monkeypatch.setattr(ag, "compile", compile)


def test_a_model_that_cannot_be_traced_runs_eagerly_from_the_state_before_the_trace(monkeypatch):
    eager_model, loss_fn, opt, sched, loader, test, recipe = _parts("lenet-bn")
    fit(eager_model, loss_fn, opt, loader, test, 2, scheduler=sched, eager=True)
    _failing_compile(monkeypatch)
    notes = []
    model, loss_fn, opt, sched, loader, test, recipe = _parts("lenet-bn")
    result = fit(model, loss_fn, opt, loader, test, 2, scheduler=sched, note=notes.append)
    assert notes == [
        "cannot compile the training step of LeNetBN (trace: bool() reads a traced value (shape ()) back into Python "
        "at model.py:7); running eager training steps instead",
        "cannot compile the evaluation forward of LeNetBN (trace: bool() reads a traced value (shape ()) back into "
        "Python at model.py:7); running eager evaluation forwards instead"]
    a, b = model.state_dict(), eager_model.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)  # the failed trace's step was undone, then run once
    assert rng_states(model) == rng_states(eager_model)
    assert len(result.progress.history) == 2


def test_compiled_predictions_equal_eager_ones_and_keep_the_mode():
    images, _ = synthetic_digits(250, seed=0)
    model = build_model("lenet-bn", (1, 20, 20))
    model.train()
    forward = Forward(model)
    preds = predict(model, images, batch_size=100, forward=forward)
    again = predict(model, images, batch_size=100, forward=forward)
    assert forward.compiled.traces == 2 and _replays(forward) == 4  # 100 and 50 images; the second call replays
    assert model.training and np.array_equal(preds, again)
    assert np.array_equal(preds, predict(model, images, batch_size=100, eager=True))
    model.eval()
    with ag.no_grad():
        want = model(ag.tensor(images[:100])).data
    np.testing.assert_allclose(forward(images[:100]), want, rtol=1e-6, atol=1e-6)
