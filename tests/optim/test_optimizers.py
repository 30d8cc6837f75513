"""Optimizers against torch.optim: same parameters, same gradient sequence, same values step by step."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
import optim
from autograd.errors import GraphError, ShapeError

SHAPES = [(3, 4), (5,), ()]
N_STEPS = 20

# (our class name, options): each row runs against torch.optim's class of the same name
CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, weight_decay=0.1, maximize=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.5, weight_decay=0.1, maximize=True)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.0, maximize=True)),
    ("RMSprop", dict()),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1, maximize=True)),
]
CONFIG_IDS = [f"{name}-{opts}" for name, opts in CONFIGS]


@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="PyTorch is the oracle for optimizer updates")


def _arrays(seed: int, dtype=np.float64) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def _gradients(seed: int, n: int, dtype=np.float64) -> list[list[np.ndarray | None]]:
    """n steps of gradients; the last parameter has none on every third step (it must be skipped)."""
    rng = np.random.default_rng(seed + 1)
    steps = []
    for t in range(n):
        grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        if t % 3 == 1:
            grads[-1] = None
        steps.append(grads)
    return steps


def _set_grads(ours, theirs, grads, torch) -> None:
    for p, q, g in zip(ours, theirs, grads):
        p.grad = None if g is None else ag.tensor(g.copy())
        q.grad = None if g is None else torch.tensor(g.copy())


def _assert_same(ours, theirs, atol: float, where: str) -> None:
    for i, (p, q) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=atol, atol=atol, err_msg=f"param {i}, {where}")


def _pair(torch, name, opts, seed=0, dtype=np.float64):
    arrays = _arrays(seed, dtype)
    ours = [ag.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, theirs, getattr(optim, name)(ours, **opts), getattr(torch.optim, name)(theirs, **opts)


@pytest.mark.parametrize("name,opts", CONFIGS, ids=CONFIG_IDS)
def test_matches_torch_float64(torch, name, opts):
    ours, theirs, opt, topt = _pair(torch, name, opts)
    for t, grads in enumerate(_gradients(0, N_STEPS)):
        _set_grads(ours, theirs, grads, torch)
        opt.step()
        topt.step()
        _assert_same(ours, theirs, 1e-6, f"step {t}")


@pytest.mark.parametrize("name,opts", CONFIGS, ids=CONFIG_IDS)
def test_float32_params_stay_float32(torch, name, opts):
    ours, theirs, opt, topt = _pair(torch, name, opts, dtype=np.float32)
    buffers = [p.data for p in ours]
    for grads in _gradients(0, N_STEPS, np.float32):
        _set_grads(ours, theirs, grads, torch)
        opt.step()
        topt.step()
    for p, buf in zip(ours, buffers):
        assert p.data.dtype == np.float32
        assert p.data is buf  # updated in place: references held elsewhere stay valid
    for state in opt.state.values():
        for name_, v in state.items():
            if isinstance(v, np.ndarray):
                assert v.dtype == np.float32, name_
    _assert_same(ours, theirs, 1e-5, "float32 after 20 steps")


def test_float32_param_with_float64_grad_stays_float32():
    p = ag.tensor(np.ones(4, np.float32), requires_grad=True)
    p.grad = ag.tensor(np.full(4, 0.5))  # float64 gradient
    opt = optim.Adam([p], lr=0.1)
    opt.step()
    assert p.data.dtype == np.float32
    assert opt.state[p]["exp_avg"].dtype == np.float32


@pytest.mark.parametrize("name,opts", CONFIGS, ids=CONFIG_IDS)
def test_state_dict_round_trip_mid_training(name, opts):
    """Save after 7 steps, load into a fresh optimizer over the same params, continue: same as uninterrupted."""
    gradients = _gradients(3, N_STEPS)
    straight = [ag.tensor(a.copy(), requires_grad=True) for a in _arrays(3)]
    resumed = [ag.tensor(a.copy(), requires_grad=True) for a in _arrays(3)]
    cls = getattr(optim, name)
    opt_a, opt_b = cls(straight, **opts), cls(resumed, **opts)
    for t, grads in enumerate(gradients):
        if t == 7:
            saved = opt_b.state_dict()
            opt_b = cls(resumed, lr=123.0)  # different options: load_state_dict must restore them
            opt_b.load_state_dict(saved)
        for params, opt in ((straight, opt_a), (resumed, opt_b)):
            for p, g in zip(params, grads):
                p.grad = None if g is None else ag.tensor(g.copy())
            opt.step()
    for p, q in zip(straight, resumed):
        np.testing.assert_array_equal(p.data, q.data)


def test_state_dict_layout_matches_torch(torch):
    ours, theirs, opt, topt = _pair(torch, "Adam", dict(lr=0.01, amsgrad=True))
    opt.add_param_group({"params": [ag.tensor(np.zeros(2), requires_grad=True)], "lr": 0.5})
    topt.add_param_group({"params": [torch.zeros(2, dtype=torch.float64, requires_grad=True)], "lr": 0.5})
    _set_grads(ours, theirs, _gradients(0, 1)[0], torch)
    opt.step()
    topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [g["params"] for g in tsd["param_groups"]]
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for k, entry in tsd["state"].items():
        assert set(sd["state"][k]) == set(entry)
        np.testing.assert_allclose(sd["state"][k]["exp_avg"], entry["exp_avg"].numpy(), atol=1e-12)
    for g, tg in zip(sd["param_groups"], tsd["param_groups"]):
        for key in ("lr", "eps", "weight_decay", "amsgrad", "maximize"):
            assert g[key] == tg[key]


def test_state_dict_copies_arrays():
    p = ag.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = ag.tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["momentum_buffer"][:] = 100.0
    sd["param_groups"][0]["lr"] = 7.0
    assert np.all(opt.state[p]["momentum_buffer"] == 1.0)
    assert opt.param_groups[0]["lr"] == 0.1
    opt.load_state_dict(sd)
    sd["state"][0]["momentum_buffer"][:] = -1.0  # loading copied too
    assert np.all(opt.state[p]["momentum_buffer"] == 100.0)
    assert opt.param_groups[0]["lr"] == 7.0


def test_load_state_dict_checks_groups_counts_and_shapes():
    a = ag.tensor(np.ones(3), requires_grad=True)
    b = ag.tensor(np.ones((2, 2)), requires_grad=True)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9)
    a.grad, b.grad = ag.tensor(np.ones(3)), ag.tensor(np.ones((2, 2)))
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="2 parameter groups, this optimizer has 1"):
        optim.SGD([a, b]).load_state_dict({"state": {}, "param_groups": sd["param_groups"] * 2})
    with pytest.raises(ValueError, match="group 0 has 2 parameters in the loaded state dict but 1"):
        optim.SGD([a]).load_state_dict(sd)
    swapped = optim.SGD([b, a], momentum=0.9)
    with pytest.raises(ShapeError, match=r"'momentum_buffer' of parameter 0 has shape \(3,\), the parameter has shape \(2, 2\)"):
        swapped.load_state_dict(sd)
    with pytest.raises(KeyError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"params": []})


def test_param_groups_with_different_lrs(torch):
    arrays = _arrays(5)
    ours = [ag.tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    opt = optim.SGD([{"params": ours[:2], "lr": 0.5}, {"params": ours[2:], "momentum": 0.9}], lr=0.01)
    topt = torch.optim.SGD([{"params": theirs[:2], "lr": 0.5}, {"params": theirs[2:], "momentum": 0.9}], lr=0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.5, 0.01]
    assert [g["momentum"] for g in opt.param_groups] == [0, 0.9]
    for t, grads in enumerate(_gradients(5, N_STEPS)):
        _set_grads(ours, theirs, grads, torch)
        opt.step()
        topt.step()
        _assert_same(ours, theirs, 1e-6, f"step {t}")


def test_add_param_group_takes_defaults_and_refuses_duplicates():
    a, b = (ag.tensor(np.ones(2), requires_grad=True) for _ in range(2))
    opt = optim.Adam([a], lr=0.1, betas=(0.5, 0.6))
    opt.add_param_group({"params": b, "eps": 1e-3})
    assert opt.param_groups[1]["params"] == [b]
    assert opt.param_groups[1]["betas"] == (0.5, 0.6) and opt.param_groups[1]["eps"] == 1e-3
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="Adam: invalid beta parameter at index 1: 2.0"):
        opt.add_param_group({"params": [ag.tensor(np.ones(1), requires_grad=True)], "betas": (0.9, 2.0)})


def test_step_skips_params_without_grad_and_bumps_versions():
    a, b = ag.tensor(np.ones(2), requires_grad=True), ag.tensor(np.ones(2), requires_grad=True)
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = ag.tensor(np.ones(2))
    opt.step()
    assert a._version == 1 and b._version == 0
    assert b not in opt.state and np.all(b.data == 1.0)
    assert not np.all(a.data == 1.0)


def test_update_inside_live_graph_is_caught_by_backward():
    w = ag.tensor(np.array([1.0, 2.0]), requires_grad=True)
    loss = (w * w).sum()
    w.grad = ag.tensor(np.ones(2))
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(GraphError, match="modified in place"):
        loss.backward()


def test_step_records_no_graph_and_keeps_grad():
    w = ag.tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward()
    g = w.grad.data.copy()
    optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=0.1, maximize=True).step()
    assert w.is_leaf and w.grad_fn is None
    np.testing.assert_array_equal(w.grad.data, g)  # the optimizer never writes to the gradient


def test_zero_grad():
    w = ag.tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    w.grad = ag.tensor(np.ones(3))
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and np.all(grad.data == 0)
    opt.zero_grad()
    assert w.grad is None


def test_closure_is_evaluated_with_grad_enabled():
    w = ag.tensor(np.array([3.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    with ag.no_grad():
        loss = opt.step(closure)
    assert loss.item() == 9.0
    np.testing.assert_allclose(w.data, [3.0 - 0.25 * 6.0])


def test_gradient_shape_mismatch_is_a_clear_error():
    w = ag.tensor(np.ones(3), requires_grad=True)
    w.grad = ag.tensor(np.ones(4))
    with pytest.raises(ShapeError, match=r"SGD.step: gradient shape \(4,\) does not match parameter shape \(3,\)"):
        optim.SGD([w]).step()


@pytest.mark.parametrize(
    "cls,opts,message",
    [
        (optim.SGD, dict(lr=-0.1), "SGD: invalid learning rate: -0.1"),
        (optim.SGD, dict(momentum=-1), "SGD: invalid momentum value: -1"),
        (optim.SGD, dict(weight_decay=-1e-3), "SGD: invalid weight_decay value: -0.001"),
        (optim.SGD, dict(nesterov=True), "SGD: Nesterov momentum requires a momentum and zero dampening"),
        (optim.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "requires a momentum and zero dampening"),
        (optim.Adam, dict(betas=(1.5, 0.9)), "Adam: invalid beta parameter at index 0: 1.5"),
        (optim.Adam, dict(betas=(0.9, 1.0)), "Adam: invalid beta parameter at index 1: 1.0"),
        (optim.Adam, dict(eps=-1.0), "Adam: invalid epsilon value: -1.0"),
        (optim.Adam, dict(lr=-1.0), "Adam: invalid learning rate: -1.0"),
        (optim.AdamW, dict(weight_decay=-0.5), "AdamW: invalid weight_decay value: -0.5"),
        (optim.AdamW, dict(betas=(-0.1, 0.9)), "AdamW: invalid beta parameter at index 0: -0.1"),
        (optim.RMSprop, dict(alpha=-0.5), "RMSprop: invalid alpha value: -0.5"),
        (optim.RMSprop, dict(momentum=-0.5), "RMSprop: invalid momentum value: -0.5"),
        (optim.RMSprop, dict(eps=-1e-8), "RMSprop: invalid epsilon value: -1e-08"),
    ],
)
def test_bad_hyperparameters_are_named(cls, opts, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        cls([ag.tensor(np.ones(2), requires_grad=True)], **opts)


def test_bad_params_are_named():
    w = ag.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(ValueError, match="SGD got an empty parameter list"):
        optim.SGD([])
    with pytest.raises(TypeError, match="iterable of Tensors or of dicts, but got a Tensor"):
        optim.SGD(w)
    with pytest.raises(TypeError, match="param 1 of the group is ndarray"):
        optim.SGD([w, np.ones(2)])
    with pytest.raises(ValueError, match="can't optimize a non-leaf Tensor"):
        optim.SGD([w * 2])
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}])


# --- issue 15: checkpoints and arguments checked up front ------------------------------------------------
def _trained(cls, **options):
    w = ag.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    opt = cls([w], **options)
    w.grad = ag.tensor(np.full((2, 2), 0.5, np.float32))
    opt.step()
    return w, opt


@pytest.mark.parametrize("cls,options,drop", [
    (optim.Adam, dict(lr=0.01), "exp_avg_sq"), (optim.AdamW, dict(amsgrad=True), "exp_avg"),
    (optim.RMSprop, dict(momentum=0.9), "square_avg"), (optim.Adam, dict(), "step"),
])
def test_incomplete_state_fails_at_load_and_loads_nothing(cls, options, drop):
    w, opt = _trained(cls, **options)
    sd = opt.state_dict()
    before = {k: np.array(v, copy=True) for k, v in opt.state[w].items()}
    broken = {"state": {0: {k: v for k, v in sd["state"][0].items() if k != drop}},
              "param_groups": [dict(sd["param_groups"][0], lr=0.5)]}
    with pytest.raises(ValueError, match=f"state of parameter 0 lacks '{drop}'"):
        opt.load_state_dict(broken)
    assert opt.param_groups[0]["lr"] == sd["param_groups"][0]["lr"]  # no partial load: options unchanged
    for k, v in before.items():
        np.testing.assert_array_equal(opt.state[w][k], v)
    opt.load_state_dict(sd)  # the complete one still loads, and steps
    opt.step()


def test_state_arrays_must_have_the_parameter_shape_and_a_valid_step():
    w, opt = _trained(optim.Adam)
    sd = opt.state_dict()
    for name, bad, error, message in [
        ("exp_avg", np.zeros(()), ShapeError, r"'exp_avg' of parameter 0 has shape \(\), the parameter has shape \(2, 2\)"),
        ("exp_avg_sq", np.array(["a"] * 4).reshape(2, 2), ValueError, "'exp_avg_sq' of parameter 0 must be a numeric array"),
        ("step", 1.5, ValueError, "'step' of parameter 0 must be a whole number >= 0, got 1.5"),
    ]:
        state = dict(sd["state"][0], **{name: bad})
        with pytest.raises(error, match=message):
            opt.load_state_dict({"state": {0: state}, "param_groups": sd["param_groups"]})
    opt.load_state_dict({"state": {"0": sd["state"][0]}, "param_groups": sd["param_groups"]})  # a key saved as text
    assert opt.state[w]["step"] == 1


@pytest.mark.parametrize("value,error", [("0.1", TypeError), (None, TypeError), (True, TypeError),
                                         (float("nan"), ValueError), (-0.1, ValueError)])
@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.AdamW, optim.RMSprop])
def test_every_optimizer_checks_lr_in_one_place(cls, value, error):
    w = ag.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(error, match=rf"^{cls.__name__}: invalid learning rate: .*\(lr must be"):
        cls([w], lr=value)
    with pytest.raises(error, match=rf"^{cls.__name__}: invalid learning rate"):
        cls([{"params": [w], "lr": value}], lr=0.1)  # a param group's own options too
    assert cls([w], lr=np.float32(0.01)).param_groups[0]["lr"] == np.float32(0.01)


class Net:  # what optim sees of a model: a `parameters()` method
    def parameters(self):
        return iter([ag.tensor(np.ones(2), requires_grad=True)])


def test_params_given_the_wrong_way_are_named():
    model_like = Net()
    with pytest.raises(TypeError, match=r"SGD: params is the method Net.parameters itself, not its result; call it"):
        optim.SGD(model_like.parameters, lr=0.1)
    with pytest.raises(TypeError, match=r"SGD: params is a Net \(a module\); pass model.parameters\(\)"):
        optim.SGD(model_like, lr=0.1)
    with pytest.raises(TypeError, match="SGD: params is a dict"):
        optim.SGD({"params": []}, lr=0.1)
    assert len(optim.SGD(model_like.parameters(), lr=0.1).param_groups[0]["params"]) == 1
