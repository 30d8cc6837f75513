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
from tapegrad.train import fit, predict, rng_states


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
    assert step.compiled.traces == 2 + partial and _replays(step) == 2 * batches - step.compiled.traces
    assert forward.compiled.traces == 1 and _replays(forward) == 1  # 12 test images per epoch, 2 epochs
    (compiled, rows_c), (eager, rows_e) = runs
    for key in ("loss", "train_acc", "test_acc"):
        np.testing.assert_allclose([r[key] for r in rows_c], [r[key] for r in rows_e], rtol=1e-6, atol=0)
    a, b = compiled.state_dict(), eager.state_dict()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert rng_states(compiled) == rng_states(eager)  # dropout drew as often
