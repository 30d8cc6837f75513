"""compile(): cache and guards, state in place, learning rates read at replay, dropout, verify."""
import warnings

import numpy as np
import pytest

import autograd as ag
import nn
import optim
from autograd.compiler import Compiled


def _net(seed=0, dropout=0.0):
    layers = [nn.Linear(6, 5, rng=seed), nn.BatchNorm1d(5), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout, rng=seed + 1))
    return nn.Sequential(*layers, nn.Linear(5, 3, rng=seed + 2))


def _step_for(model, opt, after_backward=None, set_to_none=True):
    """A training step; `after_backward(model)` (clipping) runs between backward and the update,
    and its result, if any, is returned beside the loss."""
    def step(x, y):
        opt.zero_grad(set_to_none=set_to_none)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        extra = after_backward(model) if after_backward is not None else None
        opt.step()
        return loss if extra is None else (loss, extra)
    return step


def _data(i, batch=8):
    rng = np.random.default_rng(i)
    return ag.tensor(rng.standard_normal((batch, 6)).astype(np.float32)), ag.tensor(rng.integers(0, 3, batch))


def _params(model):
    return {k: np.array(v) for k, v in model.state_dict().items()}


def test_a_step_replays_after_its_trace_and_state_is_updated_in_place():
    model, model2 = _net(), _net()
    opt, opt2 = optim.SGD(model.parameters(), lr=0.1, momentum=0.9), optim.SGD(model2.parameters(), lr=0.1, momentum=0.9)
    step = ag.compile(_step_for(model, opt))
    eager = _step_for(model2, opt2)
    weight = model[0].weight.data
    for i in range(6):
        np.testing.assert_array_equal(step(*_data(i)).data, eager(*_data(i)).data)
    # one Program: the step drops the gradients (zero_grad) before reading them, so the first call's
    # trace (no gradients yet) also serves the calls after it, which start with gradients
    assert step.traces == 1 and len(step.programs) == 1
    assert model[0].weight.data is weight  # updated in place, as in eager mode
    for k, v in _params(model2).items():
        np.testing.assert_array_equal(_params(model)[k], v, err_msg=k)


def _two_ways(make_step, calls=5):
    """The same step compiled and eager from the same initial state: (compiled, {name: max diff})."""
    model, model2 = _net(), _net()
    opt, opt2 = optim.SGD(model.parameters(), lr=0.1), optim.SGD(model2.parameters(), lr=0.1)
    compiled, eager = ag.compile(make_step(model, opt)), make_step(model2, opt2)
    for i in range(calls):
        np.testing.assert_array_equal(compiled(*_data(i)).data, eager(*_data(i)).data)
    for k, v in _params(model2).items():
        np.testing.assert_array_equal(_params(model)[k], v, err_msg=k)
    return compiled, model


@pytest.mark.parametrize("set_to_none", [False, True])
def test_a_step_that_uses_the_previous_gradients_is_traced_again_once_they_exist(set_to_none):
    """Only a step that drops the gradients before reading them serves calls with and without
    gradients from one Program. Accumulating (no zero_grad), zeroing in place, or reading the previous
    step's gradient first each make the first call's Program (no gradients then) wrong for the next."""
    def accumulating(model, opt):
        def step(x, y):
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()  # adds to the gradients of the previous call
            opt.step()
            return loss
        return step

    def reading_first(model, opt):
        w = model[0].weight

        def step(x, y):
            if w.grad is not None:  # the previous step's gradient, read before zero_grad
                w.data -= 0.05 * w.grad.data
            opt.zero_grad(set_to_none=set_to_none)
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss
        return step

    for make in (accumulating, reading_first):
        compiled, model = _two_ways(make)
        assert compiled.traces == 2, make.__name__
        assert all(type(p) is nn.Parameter for p in model.parameters())  # the trace's watch is gone


def test_a_learning_rate_changed_between_calls_is_read_at_replay():
    model, model2 = _net(), _net()
    opt, opt2 = optim.Adam(model.parameters(), lr=0.01), optim.Adam(model2.parameters(), lr=0.01)
    step, eager = ag.compile(_step_for(model, opt)), _step_for(model2, opt2)
    for i in range(6):
        step(*_data(i))
        eager(*_data(i))
        for o in (opt, opt2):
            o.param_groups[0]["lr"] *= 0.3
    assert step.traces == 1
    for k, v in _params(model2).items():
        np.testing.assert_array_equal(_params(model)[k], v, err_msg=k)


def test_eval_mode_and_grad_mode_and_shapes_retrace():
    model = _net()

    @ag.compile
    def forward(x):
        return model(x)

    x, _ = _data(0)
    forward(x)
    forward(x)
    assert forward.traces == 1
    model.eval()
    forward(x)
    assert forward.traces == 2
    model.train()
    forward(x)
    assert forward.traces == 2
    with ag.no_grad():
        forward(x)
    assert forward.traces == 3
    forward(_data(0, batch=3)[0])
    assert forward.traces == 4
    model.eval()
    np.testing.assert_array_equal(forward(x).data, model(x).data)


def test_dropout_masks_come_from_the_same_generator_stream():
    a, b = _net(dropout=0.5), _net(dropout=0.5)
    step_a = _step_for(a, optim.SGD(a.parameters(), lr=0.1))
    step_b = ag.compile(_step_for(b, optim.SGD(b.parameters(), lr=0.1)))
    for i in range(5):
        np.testing.assert_array_equal(step_b(*_data(i)).data, step_a(*_data(i)).data)
    assert a[3].rng.random() == b[3].rng.random()  # both generators advanced by the same draws


def test_the_cache_is_bounded_and_warns_when_it_thrashes():
    @ag.compile(max_cache=2)
    def f(x):
        return x * 2

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (1, 2, 3, 1):
            f(ag.tensor(np.ones(n)))
    assert len(f.programs) == 2 and f.traces == 4
    assert len(caught) == 2 and "evicted" in str(caught[0].message) and "max_cache" in str(caught[0].message)


def test_verify_passes_for_a_faithful_step_and_catches_a_frozen_python_value():
    model = _net()
    opt = optim.Adam(model.parameters(), lr=0.01)
    step = ag.compile(_step_for(model, opt), verify=3)
    for i in range(5):
        step(*_data(i))
    assert isinstance(step, Compiled) and step.traces == 1

    factor = [2.0]

    @ag.compile(verify=True)
    def scaled(x):
        return x * factor[0]  # a Python float: frozen into the program at trace time

    x = ag.tensor(np.ones(3))
    scaled(x)
    scaled(x)
    factor[0] = 3.0
    with pytest.raises(ag.TraceError, match="replayed differently from eager mode"):
        scaled(x)


def test_gradient_clipping_by_value_and_bn_statistics_replay():
    model, model2 = _net(), _net()
    opt, opt2 = optim.SGD(model.parameters(), lr=0.5), optim.SGD(model2.parameters(), lr=0.5)

    def clip(m):
        optim.clip_grad_value_(m.parameters(), 0.01)

    compiled, eager = ag.compile(_step_for(model, opt, clip)), _step_for(model2, opt2, clip)
    for i in range(5):
        compiled(*_data(i))
        eager(*_data(i))
    for k, v in _params(model2).items():  # running_mean, running_var, num_batches_tracked included
        np.testing.assert_array_equal(_params(model)[k], v, err_msg=k)
    assert int(model[1].num_batches_tracked.data) == 5


def test_results_are_plain_tensors_and_outputs_keep_their_structure():
    @ag.compile
    def f(x):
        return {"double": x * 2, "pair": (x + 1, x - 1)}

    x = ag.tensor(np.arange(3.0))
    f(x)
    out = f(ag.tensor(np.ones(3)))
    assert isinstance(out["double"], ag.Tensor) and np.array_equal(out["double"].data, np.full(3, 2.0))
    assert np.array_equal(out["pair"][1].data, np.zeros(3))


def test_gradients_accumulated_across_calls_replay():
    w = ag.tensor(np.ones(3), requires_grad=True)

    @ag.compile(state=[])
    def accumulate(x):
        (w * x).sum().backward()

    w2 = ag.tensor(np.ones(3), requires_grad=True)
    for i in range(4):
        accumulate(ag.tensor(np.full(3, float(i))))
        (w2 * ag.tensor(np.full(3, float(i)))).sum().backward()
    np.testing.assert_array_equal(w.grad.data, w2.grad.data)


def test_clip_grad_norm_replays_as_one_equation():
    model, model2 = _net(), _net()
    opt, opt2 = optim.SGD(model.parameters(), lr=0.5), optim.SGD(model2.parameters(), lr=0.5)

    def clip(m):
        return optim.clip_grad_norm_(m.parameters(), 0.05)

    compiled, eager = ag.compile(_step_for(model, opt, clip)), _step_for(model2, opt2, clip)
    for i in range(5):
        (_, got), (_, want) = compiled(*_data(i)), eager(*_data(i))
        assert got.data == want.data and got.data > 0.05  # the clip really scales
    assert compiled.traces == 1 and any(e.name == "clip_grad_norm_" for e in compiled.programs[-1].eqns)
    for k, v in _params(model2).items():
        np.testing.assert_array_equal(_params(model)[k], v, err_msg=k)


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="ru_minflt and glibc's mallopt are Linux's")
def test_a_replayed_conv_step_causes_no_page_faults_after_warm_up():
    import resource

    from tapegrad.models import build_model

    model = build_model("digits", (1, 20, 20))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    step = ag.compile(_step_for(model, opt))
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal((32, 1, 20, 20)).astype(np.float32))
    y = ag.tensor(rng.integers(0, 10, 32))
    for _ in range(10):
        step(x, y)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step(x, y)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # fewer than one per step: the interpreter's own arena may fault once; a step whose arrays came
    # from fresh memory faults hundreds of times (404 per step before the mallopt fix)
    assert faults < 10, faults


def test_a_model_the_function_cannot_see_by_name_warns_and_state_names_it():
    holder = {"model": _net()}

    def forward(x):
        return holder["model"](x)

    x, _ = _data(0)
    with pytest.warns(RuntimeWarning, match="pass state=\\[model, optimizer\\]"):
        ag.compile(forward)(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compiled = ag.compile(forward, state=[holder["model"]])
        compiled(x)
        holder["model"].eval()
        compiled(x)
    assert compiled.traces == 2  # eval() is seen through state=


@pytest.mark.parametrize("make_opt", [
    lambda ps: optim.RMSprop(ps, lr=0.01, momentum=0.5),
    lambda ps: optim.AdamW(ps, lr=0.01, amsgrad=True),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
], ids=["rmsprop", "adamw-amsgrad", "sgd-nesterov"])
def test_other_optimizers_and_zeroing_in_place_replay(make_opt):
    model, model2 = _net(), _net()
    opt, opt2 = make_opt(model.parameters()), make_opt(model2.parameters())

    # gradients zeroed in place: fill(0), then accumulated
    compiled = ag.compile(_step_for(model, opt, set_to_none=False))
    eager = _step_for(model2, opt2, set_to_none=False)
    for i in range(5):
        np.testing.assert_array_equal(compiled(*_data(i)).data, eager(*_data(i)).data)
    for k, v in _params(model2).items():
        np.testing.assert_array_equal(_params(model)[k], v, err_msg=k)
    for p, p2 in zip(model.parameters(), model2.parameters()):
        np.testing.assert_array_equal(p.grad.data, p2.grad.data)
