"""Anomaly mode and in-place detection: errors that say which op, which shapes, which line."""
import os
import subprocess
import sys

import numpy as np
import pytest

import autograd as ag
from autograd.errors import GraphError


def test_forward_nan_names_op_shapes_and_line():
    x = ag.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    with pytest.raises(ag.AnomalyError) as info:
        with ag.detect_anomaly():
            ag.log(x * 1.0)  # THE-LOG-LINE  (reported at the end of the block: nothing consumed it)
    msg = str(info.value)
    assert "'log' produced non-finite values in forward" in msg
    assert "1 NaN" in msg and "shape (2,)" in msg
    assert "test_anomaly.py" in msg and "THE-LOG-LINE" in msg


def test_backward_nan_and_the_where_trap_is_explained():
    with ag.detect_anomaly():
        x = ag.tensor(np.array([0.0, 4.0]), requires_grad=True)
        y = ag.where(x > 0, ag.sqrt(x), 0.0).sum()
        with pytest.raises(ag.AnomalyError) as info, np.errstate(divide="ignore", invalid="ignore"):
            y.backward()
    msg = str(info.value)
    assert "'pow' passes to its argument 0 holds non-finite values" in msg
    assert "where trap" in msg and "branch x" in msg and "0 * inf = NaN" in msg


def test_the_safe_where_pattern_passes_anomaly_mode():
    with ag.detect_anomaly():
        x = ag.tensor(np.array([0.0, 4.0]), requires_grad=True)
        safe = ag.where(x > 0, x, 1.0)
        ag.where(x > 0, ag.sqrt(safe), 0.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.25])


def test_anomaly_mode_is_off_outside_and_unsubscribes():
    from autograd.graph import OBSERVERS, _Mode

    with ag.detect_anomaly():
        assert _Mode.observed and OBSERVERS.apply
    assert not _Mode.observed and not OBSERVERS.any()
    with np.errstate(invalid="ignore"):
        assert np.isnan(ag.log(ag.tensor([-1.0], requires_grad=True)).data).all()  # no raise


def test_environment_variable_turns_it_on():
    code = ("import numpy as np, autograd as ag\n"
            "np.seterr(all='ignore')\n"
            "try:\n    ag.log(ag.tensor([-1.0], requires_grad=True)).sum()\n"
            "except ag.AnomalyError as e:\n    print('caught', e)\n")
    env = dict(os.environ, TAPEGRAD_ANOMALY="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "caught anomaly: 'log'" in out.stdout, out.stderr


def test_in_place_edit_names_saver_changer_and_lines():
    with ag.detect_anomaly():
        w = ag.tensor([1.0, 2.0], requires_grad=True)
        x = ag.tensor([3.0, 4.0])
        y = (w * x).sum()  # SAVER-LINE
        x.mul_(2)  # CHANGER-LINE
        with pytest.raises(GraphError) as info:
            y.backward()
    msg = str(info.value)
    assert "saved by 'mul'" in msg and "SAVER-LINE" in msg
    assert "changed by 'mul_'" in msg and "CHANGER-LINE" in msg


def test_optimizer_style_update_inside_a_live_graph_is_caught():
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    with ag.no_grad():
        w.sub_(0.1)
    with pytest.raises(GraphError, match="modified in place"):
        y.backward()


def test_writes_through_data_are_caught_in_anomaly_mode():
    with ag.detect_anomaly():
        w = ag.tensor([1.0, 2.0], requires_grad=True)
        x = ag.tensor([3.0, 4.0])
        y = (w * x).sum()  # DATA-SAVER
        x.data[0] = 100.0  # bypasses the version counter
        with pytest.raises(GraphError) as info:
            y.backward()
    msg = str(info.value)
    assert "argument 1 (shape (2,)) of 'mul' was changed" in msg and "DATA-SAVER" in msg and ".data" in msg


def test_unchanged_data_passes_the_fingerprint_check():
    with ag.detect_anomaly():
        w = ag.tensor([1.0, 2.0], requires_grad=True)
        y = (w * w).sum()
        y.backward()
    np.testing.assert_allclose(w.grad.data, [2.0, 4.0])


def test_forward_nan_is_raised_when_it_flows_into_the_next_op():
    x = ag.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    with ag.detect_anomaly():
        y = ag.log(x)  # MADE-HERE
        with pytest.raises(ag.AnomalyError, match=r"(?s)'log' produced non-finite.*MADE-HERE"):
            y * 2.0


def test_where_trap_below_zero_is_explained_not_stopped_in_forward():
    x = ag.tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with ag.detect_anomaly():
        y = ag.where(x > 0, ag.sqrt(x), 0.0).sum()  # forward is fine: where() discards sqrt(-1)
        with pytest.raises(ag.AnomalyError) as info:
            y.backward()
    msg = str(info.value)
    assert "'pow' passes to its argument 0 holds non-finite values" in msg
    assert "where trap" in msg and "branch x" in msg
    assert "non-finite at 1 position(s) that where() discarded" in msg and "0 * NaN = NaN" in msg
    assert "Fix: make the input safe" in msg


def test_a_nan_that_where_keeps_is_still_an_error():
    x = ag.tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with pytest.raises(ag.AnomalyError, match="'pow' produced non-finite values in forward"):
        with ag.detect_anomaly():
            ag.where(x < 10, ag.sqrt(x), 0.0)  # keeps sqrt(-1)


def test_where_scrubbing_a_nan_passes_forward_and_backward():
    x = ag.tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with ag.detect_anomaly():
        safe = ag.where(x > 0, x, 1.0)
        r = ag.sqrt(safe)
        ag.where(x > 0, r, 0.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0.0, 0.25])


def test_stats_of_an_all_nan_array_say_no_finite_values_once():
    x = ag.tensor(np.array([-1.0, -2.0]), requires_grad=True)
    with pytest.raises(ag.AnomalyError) as info:
        with ag.detect_anomaly():
            ag.log(x)
    msg = str(info.value)
    assert "; no finite values" in msg and "finite no finite" not in msg


def test_messages_name_the_module_the_op_ran_in():
    import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            return (self.lin(x) * 0.0 - 1.0).log()

    model = nn.Sequential(nn.Linear(2, 2), Block())
    with pytest.raises(ag.AnomalyError) as info:
        with ag.detect_anomaly():
            model(ag.tensor(np.array([[1.0, -1.0]], np.float32))).sum()
    assert "'log' in module 1 (Block) produced non-finite" in str(info.value)


def test_anomaly_mode_with_a_module_names_the_parameter_an_optimizer_changed():
    import nn
    import optim

    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with ag.detect_anomaly(module=model):
        loss = model(ag.tensor(np.ones((4, 2), np.float32))).sum()
        loss.backward(retain_graph=True)
        opt.step()  # changes weights the graph saved
        with pytest.raises(GraphError) as info:
            loss.backward()
    msg = str(info.value)
    assert "'2.bias' (shape (1,)) changed by 'SGD.step'" in msg  # the first node backward meets


def test_numpy_warnings_from_primitives_are_silenced_and_can_be_restored():
    code = ("import warnings, autograd as ag\n"
            "warnings.simplefilter('default')\n"
            "from autograd.anomaly import silence_numpy_warnings\n"
            "silence_numpy_warnings()\n"
            "ag.log(ag.tensor([-1.0], requires_grad=True))\n"
            "print('quiet')\n"
            "silence_numpy_warnings(False)\n"
            "ag.sqrt(ag.tensor([-1.0], requires_grad=True))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "quiet" in out.stdout, out.stderr
    assert "invalid value encountered in log" not in out.stderr
    assert "invalid value encountered in power" in out.stderr  # shown again once restored


def test_numpy_warnings_outside_tapegrad_are_untouched():
    with pytest.warns(RuntimeWarning, match="invalid value encountered in log"):
        np.log(np.array([-1.0]))


def test_a_write_through_data_names_the_parameter_and_module():
    import nn

    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    with ag.detect_anomaly(module=model):
        loss = model(ag.tensor(np.ones((4, 2), np.float32))).sum()
        model[2].bias.data[0] += 1.0  # bypasses the version counter
        with pytest.raises(GraphError) as info:
            loss.backward()
    msg = str(info.value)
    assert "argument 1 '2.bias' (shape (1,)) of 'add' in module 2 (Linear) was changed after 'add' saved it" in msg


def test_unconsumed_nans_are_reported_after_a_bounded_number():
    x = ag.tensor([-1.0], requires_grad=True)
    made = []
    with pytest.raises(ag.AnomalyError, match="'log' produced non-finite"):
        with ag.detect_anomaly():
            for _ in range(100):
                made.append(ag.log(x))
    assert len(made) == 64  # the 65th NaN reports the first: a process-wide mode holds no more


def test_nans_a_where_discards_do_not_pile_up():
    x = ag.tensor(np.array([-1.0, 4.0]), requires_grad=True)
    with ag.detect_anomaly():
        outs = [ag.where(x > 0, ag.sqrt(x), 0.0) for _ in range(200)]  # more than the bound: none is pending
    assert all(np.isfinite(o.data).all() for o in outs)
