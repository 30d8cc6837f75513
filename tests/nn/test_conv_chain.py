"""A conv fed by another conv: its input is already batch-last, so conv2d uses it as it is (no
layout copy); values and gradients must match the direct sum whichever composition runs."""
import numpy as np
import pytest

import autograd as ag
import nn.functional as F
from autograd.testing import check_grads

from .test_conv_speed_paths import reference_conv2d

SECOND = [  # second conv's (weight shape, stride, dilation, groups): row split and full im2col
    ((6, 4, 3, 3), (1, 1), (1, 1), 1),  # row split
    ((6, 2, 3, 2), (1, 1), (2, 1), 2),  # row split, dilation, groups
    ((4, 4, 3, 3), (2, 1), (1, 1), 1),  # full im2col (vertical stride 2)
]


@pytest.mark.parametrize("ws, stride, dilation, groups", SECOND)
def test_conv_of_a_batch_last_input_matches_the_direct_sum(ws, stride, dilation, groups):
    rng = np.random.default_rng(4)
    x, w1, w2 = rng.standard_normal((3, 2, 9, 8)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(ws)
    h = F.conv2d(ag.tensor(x), ag.tensor(w1), padding=1)
    assert h.data.strides[0] == h.data.itemsize  # the second conv gets a batch-last input
    y = F.conv2d(h, ag.tensor(w2), stride=stride, dilation=dilation, groups=groups)
    expected = reference_conv2d(reference_conv2d(x, w1, (1, 1), (1, 1), (1, 1), 1), w2, stride, (0, 0), dilation, groups)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("ws, stride, dilation, groups", SECOND)
def test_chained_conv_gradients(ws, stride, dilation, groups):
    rng = np.random.default_rng(5)
    x, w1, w2 = (ag.tensor(rng.standard_normal(s)) for s in ((2, 2, 8, 7), (4, 2, 3, 3), ws))

    def chain(a, b, c):
        return F.conv2d(F.conv2d(a, b, padding=1), c, stride=stride, dilation=dilation, groups=groups)

    check_grads(chain, x, w1, w2, order=2)
