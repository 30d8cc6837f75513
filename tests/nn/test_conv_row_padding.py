"""The kernel-row split leaves vertical padding (up to the kernel's span) out of its im2col matrix
and crops its shifted sum instead: every padding, dilation and group count must still give the
direct sum, and the split must be the composition that ran."""
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
