"""LR schedules against torch.optim.lr_scheduler: the same rates, step for step, over 30 epochs."""
from __future__ import annotations

import math

import numpy as np
import pytest

import autograd as ag
import optim
from optim import lr_scheduler as S

LRS = (0.1, 0.03)  # two param groups with different rates
N_EPOCHS = 30


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for learning-rate schedules")


def _ours(momentum: float = 0.0) -> optim.SGD:
    groups = [{"params": [ag.tensor(np.ones(2), requires_grad=True)], "lr": lr} for lr in LRS]
    return optim.SGD(groups, lr=1.0, momentum=momentum)


def _theirs(torch):
    groups = [{"params": [torch.ones(2, requires_grad=True)], "lr": lr} for lr in LRS]
    return torch.optim.SGD(groups, lr=1.0)


def _lrs(opt) -> list[float]:
    return [g["lr"] for g in opt.param_groups]


def _assert_close(ours: list[float], theirs: list[float], where: str) -> None:
    assert len(ours) == len(theirs), where
    for a, b in zip(ours, theirs):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), f"{where}: {ours} != {theirs}"


# each row: a function (module, optimizer) -> scheduler, run identically on torch's module and ours
SCHEDULES = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=7, gamma=0.5),
    "StepLR-default-gamma": lambda m, o: m.StepLR(o, step_size=3),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[5, 12, 12, 20], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=30),
    "CosineAnnealingLR-restarts": lambda m, o: m.CosineAnnealingLR(o, T_max=8, eta_min=0.01),
    "LinearLR-default": lambda m, o: m.LinearLR(o),
    "LinearLR-decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=12),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lambda e: 0.95**e / (1 + e % 4)),
    "LambdaLR-per-group": lambda m, o: m.LambdaLR(o, [lambda e: 1.0 / (e + 1), lambda e: 0.9**e]),
    "SequentialLR-warmup-cosine": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=25)], milestones=[5]
    ),
    "SequentialLR-three": lambda m, o: m.SequentialLR(
        o,
        [m.LinearLR(o, start_factor=0.25, total_iters=4), m.ExponentialLR(o, gamma=0.8), m.StepLR(o, 3, 0.5)],
        milestones=[6, 15],
    ),
}


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(torch, name):
    opt, topt = _ours(), _theirs(torch)
    sched, tsched = SCHEDULES[name](S, opt), SCHEDULES[name](torch.optim.lr_scheduler, topt)
    _assert_close(sched.get_last_lr(), tsched.get_last_lr(), "after construction")
    _assert_close(_lrs(opt), _lrs(topt), "after construction")
    for epoch in range(1, N_EPOCHS + 1):
        topt.step()
        sched.step()
        tsched.step()
        _assert_close(sched.get_last_lr(), tsched.get_last_lr(), f"epoch {epoch}")
        _assert_close(_lrs(opt), _lrs(topt), f"epoch {epoch}")
        assert sched.last_epoch == tsched.last_epoch


def test_chained_schedulers_match_torch(torch):
    """Two schedulers on one optimizer compose multiplicatively (the chainable form)."""
    opt, topt = _ours(), _theirs(torch)
    ours = [S.ExponentialLR(opt, gamma=0.9), S.MultiStepLR(opt, milestones=[4, 9], gamma=0.5)]
    theirs = [torch.optim.lr_scheduler.ExponentialLR(topt, gamma=0.9),
              torch.optim.lr_scheduler.MultiStepLR(topt, milestones=[4, 9], gamma=0.5)]
    for epoch in range(N_EPOCHS):
        topt.step()
        for s in ours + theirs:
            s.step()
        _assert_close(_lrs(opt), _lrs(topt), f"epoch {epoch}")


def test_schedule_writes_the_lr_the_optimizer_uses():
    w = ag.tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = S.StepLR(opt, step_size=1, gamma=0.5)
    for expected_step in (1.0, 0.5, 0.25):
        w.grad = ag.tensor(np.ones(1))
        before = w.data.copy()
        opt.step()
        assert before - w.data == pytest.approx(expected_step)
        sched.step()


@pytest.mark.parametrize(
    "options,metrics",
    [
        (dict(patience=2), [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.8] * 3),
        (dict(mode="max", factor=0.5, patience=1, threshold=0.05, threshold_mode="abs"),
         [0.1, 0.2, 0.22, 0.23, 0.3, 0.31, 0.31, 0.5, 0.5, 0.5] * 3),
        (dict(factor=0.5, patience=0, cooldown=3, min_lr=[0.01, 0.02]), list(np.linspace(1.0, 1.3, 30))),
        (dict(factor=0.2, patience=1, min_lr=0.001, eps=1e-3), [5.0 - 0.0002 * i for i in range(30)]),
        (dict(), [1.0] * 30),
    ],
)
def test_reduce_lr_on_plateau_matches_torch(torch, options, metrics):
    opt, topt = _ours(), _theirs(torch)
    sched = S.ReduceLROnPlateau(opt, **options)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **options)
    changed = False
    for epoch, metric in enumerate(metrics):
        topt.step()
        sched.step(metric)
        tsched.step(metric)
        _assert_close(_lrs(opt), _lrs(topt), f"epoch {epoch}, metric {metric}")
        _assert_close(sched.get_last_lr(), tsched.get_last_lr(), f"epoch {epoch}")
        assert sched.num_bad_epochs == tsched.num_bad_epochs
        changed |= _lrs(opt) != list(LRS)
    assert changed  # each case exercises at least one reduction


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR-restarts", "SequentialLR-warmup-cosine",
                                  "LambdaLR"])
def test_scheduler_state_dict_round_trip(name):
    """Save after 10 epochs, load into a fresh scheduler on a fresh optimizer: continues identically."""
    opt_a = _ours()
    sched_a = SCHEDULES[name](S, opt_a)
    for _ in range(10):
        sched_a.step()
    opt_b = _ours()
    sched_b = SCHEDULES[name](S, opt_b)
    opt_b.load_state_dict(opt_a.state_dict())
    sched_b.load_state_dict(sched_a.state_dict())
    assert "optimizer" not in sched_a.state_dict()
    for epoch in range(10, N_EPOCHS):
        sched_a.step()
        sched_b.step()
        _assert_close(_lrs(opt_b), _lrs(opt_a), f"epoch {epoch}")


def test_plateau_state_dict_round_trip():
    opt_a, opt_b = _ours(), _ours()
    a = S.ReduceLROnPlateau(opt_a, patience=1, cooldown=1)
    metrics = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.4, 0.4, 0.4]
    for m in metrics[:5]:
        a.step(m)
    b = S.ReduceLROnPlateau(opt_b, mode="max")
    opt_b.load_state_dict(opt_a.state_dict())
    b.load_state_dict(a.state_dict())
    assert b.mode == "min" and b.best == a.best
    for m in metrics[5:]:
        a.step(m)
        b.step(m)
        assert _lrs(opt_a) == _lrs(opt_b)


def test_resume_with_last_epoch_matches_torch(torch):
    """Constructing with last_epoch >= 0 (resuming) jumps with the closed form, as torch does."""
    opt, topt = _ours(), _theirs(torch)
    for group in opt.param_groups + topt.param_groups:
        group["initial_lr"] = group["lr"]
    sched = S.CosineAnnealingLR(opt, T_max=20, last_epoch=6)
    tsched = torch.optim.lr_scheduler.CosineAnnealingLR(topt, T_max=20, last_epoch=6)
    for epoch in range(15):
        _assert_close(_lrs(opt), _lrs(topt), f"epoch {epoch}")
        topt.step()
        sched.step()
        tsched.step()


def test_bad_arguments_are_named():
    opt = _ours()
    with pytest.raises(KeyError, match=r"'initial_lr' is not specified in param_groups\[0\]"):
        S.StepLR(opt, step_size=3, last_epoch=4)
    with pytest.raises(ValueError, match="LinearLR: start_factor must be in"):
        S.LinearLR(opt, start_factor=0.0)
    with pytest.raises(ValueError, match="LinearLR: end_factor must be in"):
        S.LinearLR(opt, end_factor=1.5)
    with pytest.raises(ValueError, match="StepLR: step_size must be a positive integer, got 0"):
        S.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="LambdaLR: expected 2 lr_lambdas"):
        S.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(ValueError, match=r"ReduceLROnPlateau: factor must be in \[0, 1\), got 1.0"):
        S.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode 'up' is unknown"):
        S.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ValueError, match="threshold mode 'pct' is unknown"):
        S.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ValueError, match="expected 2 min_lrs"):
        S.ReduceLROnPlateau(opt, min_lr=[0.1])
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.ExponentialLR(object(), gamma=0.5)
    with pytest.raises(ValueError, match="one milestone fewer than schedulers"):
        S.SequentialLR(opt, [S.ExponentialLR(opt, 0.9)], milestones=[3])
    with pytest.raises(ValueError, match="same optimizer"):
        S.SequentialLR(opt, [S.ExponentialLR(opt, 0.9), S.ExponentialLR(_ours(), 0.9)], milestones=[3])
    with pytest.raises(ValueError, match="does not support ReduceLROnPlateau"):
        S.SequentialLR(opt, [S.ExponentialLR(opt, 0.9), S.ReduceLROnPlateau(opt)], milestones=[3])


@pytest.mark.parametrize("make,error,message", [
    (lambda o: S.StepLR(o, 2, gamma="0.1"), TypeError, r"StepLR: gamma must be a number, got '0.1' \(str\)"),
    (lambda o: S.StepLR(o, 2.0), TypeError, r"StepLR: step_size must be a positive integer, got 2.0 \(float\)"),
    (lambda o: S.MultiStepLR(o, [2, 1.5]), TypeError, "MultiStepLR: each milestone must be a non-negative integer"),
    (lambda o: S.ExponentialLR(o, float("nan")), ValueError, "ExponentialLR: gamma must be a finite number > 0, got nan"),
    (lambda o: S.CosineAnnealingLR(o, 10, eta_min=-1.0), ValueError, "CosineAnnealingLR: eta_min must be a finite number >= 0"),
    (lambda o: S.LinearLR(o, total_iters=0), ValueError, "LinearLR: total_iters must be a positive integer, got 0"),
    (lambda o: S.LambdaLR(o, 0.5), TypeError, "LambdaLR: lr_lambda must be a function of the epoch, got float"),
    (lambda o: S.StepLR(o, 2, last_epoch=-2), ValueError, "StepLR: last_epoch must be an integer >= -1, got -2"),
    (lambda o: S.ReduceLROnPlateau(o, cooldown=1.5), TypeError, "ReduceLROnPlateau: cooldown must be a non-negative"),
    (lambda o: S.ReduceLROnPlateau(o, min_lr=[-1.0]), ValueError, r"ReduceLROnPlateau: min_lr\[0\] must be a finite number >= 0"),
    (lambda o: S.ReduceLROnPlateau(o, threshold=float("inf")), ValueError, "ReduceLROnPlateau: threshold must be a finite"),
])
def test_every_numeric_schedule_argument_is_checked(make, error, message):
    opt = optim.SGD([ag.tensor(np.ones(2), requires_grad=True)], lr=0.1)
    with pytest.raises(error, match=message):
        make(opt)
    assert opt.param_groups[0]["lr"] == 0.1
