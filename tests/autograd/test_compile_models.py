"""Compiled training steps equal eager ones: every reference model, its own recipe (optimizer,
clipping, loss, dropout, batch norm), a learning rate changed mid-run, and a partial last batch."""
import numpy as np
import pytest

import autograd as ag
import optim
from tapegrad.models import LOSSES, MODELS, build_model

STEPS = 50
SHAPES = {"digits": (1, 20, 20)}  # the others run at their reference 28x28


def _optimizer(recipe, params):
    if recipe.optimizer == "sgd":
        return optim.SGD(params, lr=recipe.lr, weight_decay=1e-4 if recipe.l2 else 0.0)
    cls = optim.Adam if recipe.optimizer == "adam" else optim.AdamW
    return cls(params, lr=recipe.lr, betas=recipe.betas, weight_decay=1e-4 if recipe.l2 else 0.0)


def _setup(name):
    recipe = MODELS[name].recipe
    model = build_model(name, SHAPES.get(name, (1, 28, 28)), seed=3)
    opt = _optimizer(recipe, model.parameters())
    loss_fn = LOSSES[recipe.loss]()
    scheduler = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)

    def step(x, y):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        if recipe.clip_value is not None:
            optim.clip_grad_value_(model.parameters(), recipe.clip_value)
        opt.step()
        return loss

    return model, opt, scheduler, step


def _batches(name, n):
    rng = np.random.default_rng(7)
    shape = SHAPES.get(name, (1, 28, 28))
    batch = 4 if name in ("lenet-bn", "escontrela", "nielsen-conv") else 10
    for i in range(n):
        b = batch if i < n - 1 else batch - 1  # the last batch is partial: a new signature
        yield (ag.tensor(rng.standard_normal((b,) + shape).astype(np.float32)),
               ag.tensor(rng.integers(0, 10, b)))


def _state(model, opt):
    arrays = {k: np.array(v) for k, v in model.state_dict().items()}
    for i, p in enumerate(model.parameters()):
        for k, v in opt.state.get(p, {}).items():
            arrays[f"opt.{i}.{k}"] = np.array(v)
    return arrays


@pytest.mark.parametrize("name", list(MODELS))
def test_fifty_compiled_steps_equal_eager(name):
    eager_model, eager_opt, eager_sched, eager_step = _setup(name)
    model, opt, sched, step = _setup(name)
    compiled = ag.compile(step, verify=2)  # and replay against eager from the same state, twice per program
    for i, (x, y) in enumerate(_batches(name, STEPS)):
        want = eager_step(x, y)
        got = compiled(x, y)
        assert np.array_equal(got.data, want.data), (i, got, want)
        if i % 20 == 19:  # a scheduler changes the learning rate between steps
            eager_sched.step()
            sched.step()
    assert compiled.traces == 2  # the first step (its Program serves the steps after), the partial last batch
    want, got = _state(eager_model, eager_opt), _state(model, opt)
    assert want.keys() == got.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=0, err_msg=k)


@pytest.mark.parametrize("n_threads, chunked", [(2, False), (2, True), (1, True)])
@pytest.mark.parametrize("name", list(MODELS))
def test_compiled_steps_split_over_threads_equal_eager(name, n_threads, chunked, threads, split_small, monkeypatch):
    """With every run and matmul split over two threads (autograd.parallel, autograd.split), eager
    and replay still compute the same bits: both split each matmul the same way, and a run's parts
    compute what the whole would. chunked: every part runs its share in chunks of two indices."""
    from autograd import parallel

    if chunked:
        monkeypatch.setattr(parallel, "CHUNK_BYTES", 0)
    threads(n_threads)
    eager_model, eager_opt, _, eager_step = _setup(name)
    model, opt, _, step = _setup(name)
    compiled = ag.compile(step)
    for i, (x, y) in enumerate(_batches(name, 6)):
        want, got = eager_step(x, y), compiled(x, y)
        assert np.array_equal(got.data, want.data), (i, got, want)
    runs = [r for c in compiled.cache[next(iter(compiled.cache))] for r in c.replay.runs]
    assert runs
    if chunked:
        assert any(0 < r.chunk < r.n for r in runs)
    want, got = _state(eager_model, eager_opt), _state(model, opt)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
