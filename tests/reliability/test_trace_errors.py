"""Bad inputs to trace/compile: reading a traced value back into Python raises TraceError naming
the user's file and line and saying how to fix it."""
import numpy as np
import pytest

import autograd as ag


def _x():
    return ag.tensor(np.ones(3, np.float32), requires_grad=True)


@pytest.mark.parametrize("read", [
    lambda t: bool(t.sum() > 0),
    lambda t: t.sum().item(),
    lambda t: float(t.sum()),
    lambda t: int(t.sum()),
    lambda t: t.numpy().tolist(),
    lambda t: [v for v in t.data.tolist()],
    lambda t: t.numpy().tobytes(),
    lambda t: __import__("pickle").dumps(t.data),
], ids=["bool", "item", "float", "int", "numpy-tolist", "data-tolist", "numpy-tobytes", "pickle-data"])
def test_reading_a_traced_value_raises_trace_error_with_the_line(read):
    def step(x):
        y = x * 2
        read(y)
        return y

    with pytest.raises(ag.TraceError) as info:
        ag.trace(step, _x())
    message = str(info.value)
    assert __file__ in message and "read(y)" not in message or "test_trace_errors.py" in message
    assert "move this read out of the compiled function" in message and "eagerly" in message


def test_data_dependent_control_flow_names_the_line():
    def step(x):
        loss = (x * x).sum()
        if loss > 1:  # the line the error names
            loss = loss * 0.5
        return loss

    compiled = ag.compile(step)
    with pytest.raises(ag.TraceError, match=r"test_trace_errors\.py:\d+ in step: if loss > 1:  # the line"):
        compiled(_x())


def test_indexing_by_a_tensor_value_raises():
    def step(x, i):
        return x[int(i)]

    with pytest.raises(ag.TraceError, match="int()"):
        ag.trace(step, _x(), ag.tensor(np.array(1)))


def test_after_a_trace_error_the_engine_and_numpy_are_back_to_normal():
    def step(x):
        return float(x.sum())

    with pytest.raises(ag.TraceError):
        ag.trace(step, _x())
    assert np.zeros(2).__class__ is np.ndarray and np.asarray(np.ones(1)).__class__ is np.ndarray
    from autograd.primitive import REPLAY
    assert REPLAY.recorder is None
    x = _x()
    assert type(x.data) is np.ndarray and float(x.sum()) == 3.0


def test_a_guard_that_fails_at_replay_says_the_value_changed():
    """Inside tapegrad a value read back becomes a guard; replay re-checks it. Here a label out of
    range (checked by cross_entropy) arrives after the trace."""
    import nn

    w = ag.tensor(np.ones((3, 4), np.float32), requires_grad=True)

    @ag.compile
    def loss(x, y):
        return nn.functional.cross_entropy(x @ w, y)

    x = ag.tensor(np.ones((2, 3), np.float32))
    loss(x, ag.tensor(np.array([0, 1])))
    with pytest.raises(ag.TraceError, match="when the step was traced"):
        loss(x, ag.tensor(np.array([0, 7])))
