"""Anomaly mode and in-place detection: errors that say which op, which shapes, which line."""
import os
import subprocess
import sys

import numpy as np
import pytest

import autograd as ag
from autograd.errors import GraphError


def test_forward_nan_names_op_shapes_and_line():
    with ag.detect_anomaly():
        x = ag.tensor(np.array([-1.0, 2.0]), requires_grad=True)
        with pytest.raises(ag.AnomalyError) as info, np.errstate(invalid="ignore"):
            ag.log(x * 1.0)  # THE-LOG-LINE
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
            "try:\n    ag.log(ag.tensor([-1.0], requires_grad=True))\n"
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
