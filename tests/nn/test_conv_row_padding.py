"""The kernel-row split leaves vertical padding (up to the kernel's span) out of its im2col matrix
and crops its shifted sum instead (without vertical padding it sums only the kept rows): every
padding, dilation and group count must still give the direct sum, and the split must be the
composition that ran."""
import numpy as np
import pytest

import autograd as ag
import nn.functional as F
from autograd.testing import check_grads

from .test_conv_speed_paths import reference_conv2d

CASES = [  # (x shape, w shape, padding, dilation, groups); all chosen by the split heuristic
    ((2, 8, 7, 6), (2, 8, 3, 3), (3, 1), (1, 1), 1),  # padding beyond the span: part of it is copied
    ((2, 8, 7, 6), (2, 8, 3, 3), (2, 0), (1, 1), 1),  # padding equal to the span
    ((2, 8, 8, 6), (2, 8, 2, 3), "same", (1, 1), 1),  # uneven: (0, 1) rows
    ((2, 8, 7, 6), (2, 8, 3, 2), (1, 0), (2, 1), 1),  # dilated rows
    ((2, 8, 7, 6), (4, 4, 3, 3), (1, 1), (1, 1), 2),  # groups
]


@pytest.fixture
def split_calls(monkeypatch):
    calls = []
    real = F._conv2d_row_split

    def spy(*args, **kwargs):
        calls.append(args[-2:])
        return real(*args, **kwargs)

    monkeypatch.setattr(F, "_conv2d_row_split", spy)
    return calls


def _padding_pairs(padding, ws, dilation):
    if padding == "same":
        return tuple(((d * (k - 1)) // 2, d * (k - 1) - (d * (k - 1)) // 2) for k, d in zip(ws[2:], dilation))
    return tuple((p, p) for p in padding)


def _reference(x, w, padding, dilation, groups):
    (pt, pb), (pl, pr) = _padding_pairs(padding, w.shape, dilation)
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    return reference_conv2d(xp, w, (1, 1), (0, 0), dilation, groups)


@pytest.mark.parametrize("xs, ws, padding, dilation, groups", CASES)
def test_row_split_with_vertical_padding_matches_the_direct_sum(xs, ws, padding, dilation, groups, split_calls):
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), padding=padding, dilation=dilation, groups=groups)
    assert len(split_calls) == 1
    np.testing.assert_allclose(y.data, _reference(x, w, padding, dilation, groups), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, padding, dilation, groups", CASES)
def test_row_split_with_vertical_padding_gradients(xs, ws, padding, dilation, groups, split_calls):
    rng = np.random.default_rng(7)
    x, w = ag.tensor(rng.standard_normal(xs)), ag.tensor(rng.standard_normal(ws))
    check_grads(lambda a, b: F.conv2d(a, b, padding=padding, dilation=dilation, groups=groups), x, w, order=1)
    assert split_calls


# Without vertical padding the split sums only the output's rows (a dilated window over the flat
# (kernel row, input row) axis) instead of window-summing every row and cropping.
VALID_ROWS = [  # (x shape, w shape, padding, dilation, groups, stride); all chosen by the split heuristic
    ((2, 8, 9, 7), (2, 8, 5, 3), (0, 1), (1, 1), 1, (1, 1)),
    ((2, 8, 10, 6), (2, 8, 3, 2), 0, (2, 1), 1, (1, 1)),  # dilated rows
    ((2, 8, 7, 6), (4, 4, 3, 3), 0, (1, 1), 2, (1, 1)),  # groups
    ((2, 8, 9, 9), (2, 8, 5, 3), 0, (1, 2), 1, (1, 2)),  # strided, dilated columns
]


@pytest.fixture
def summed_rows_calls(monkeypatch):
    calls = []
    real = F._row_products_summed
    monkeypatch.setattr(F, "_row_products_summed", lambda *args: calls.append(args[3:]) or real(*args))
    return calls


@pytest.mark.parametrize("xs, ws, padding, dilation, groups, stride", VALID_ROWS)
def test_row_split_without_vertical_padding_sums_only_the_kept_rows(xs, ws, padding, dilation, groups, stride,
                                                                    summed_rows_calls):
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert len(summed_rows_calls) == 1
    pads = (0, padding[1]) if isinstance(padding, tuple) else (padding, padding)
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[0]), (pads[1], pads[1])))
    np.testing.assert_allclose(y.data, reference_conv2d(xp, w, stride, (0, 0), dilation, groups), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, padding, dilation, groups, stride", VALID_ROWS)
def test_row_split_without_vertical_padding_gradients(xs, ws, padding, dilation, groups, stride, summed_rows_calls):
    rng = np.random.default_rng(9)
    x, w = ag.tensor(rng.standard_normal(xs)), ag.tensor(rng.standard_normal(ws))
    order = 2 if xs == VALID_ROWS[0][0] else 1  # grad of grad through the window sum's VJP, on one case
    check_grads(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding, dilation=dilation, groups=groups), x, w,
                order=order)
    assert summed_rows_calls
