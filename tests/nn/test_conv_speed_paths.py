"""conv2d's two compositions (kernel-row split, full im2col) and the batch-last layout it keeps
through pooling, checked against a direct NumPy reference in float64, every geometry."""
import numpy as np
import pytest

import autograd as ag
import nn.functional as F
from autograd.testing import check_grads


def reference_conv2d(x, w, stride, padding, dilation, groups):
    """Direct sum over kernel offsets, one group at a time (float64)."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    b, _, hp, wp = xp.shape
    o, cg, kh, kw = w.shape
    ho, wo = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((b, o, ho, wo))
    og = o // groups
    for g in range(groups):
        xg, wg = xp[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for i in range(kh):
            for j in range(kw):
                patch = xg[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh, j * dw:j * dw + sw * (wo - 1) + 1:sw]
                out[:, g * og:(g + 1) * og] += np.einsum("bchw,oc->bohw", patch, wg[:, :, i, j])
    return out


GEOMETRIES = [  # (x shape, w shape, stride, padding, dilation, groups): row split and full im2col, all options
    ((2, 4, 9, 9), (6, 4, 3, 3), (1, 1), (1, 1), (1, 1), 1),  # row split (stride 1)
    ((2, 4, 9, 9), (6, 2, 3, 3), (1, 1), (1, 1), (1, 1), 2),  # row split, groups
    ((2, 3, 10, 9), (4, 3, 3, 2), (1, 2), (0, 1), (2, 1), 1),  # row split, dilation, horizontal stride
    ((2, 4, 9, 9), (4, 4, 3, 3), (2, 2), (1, 1), (1, 1), 1),  # full im2col (vertical stride 2)
    ((2, 6, 8, 8), (6, 2, 3, 3), (2, 1), (2, 0), (1, 2), 3),  # full im2col, groups, dilation
    ((3, 1, 7, 7), (5, 1, 5, 5), (1, 1), (0, 0), (1, 1), 1),  # a first conv (one channel)
    ((2, 4, 5, 5), (3, 4, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # 1x1
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", GEOMETRIES)
def test_conv2d_matches_the_direct_sum(xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = F.conv2d(ag.tensor(x), ag.tensor(w), stride=stride, padding=padding, dilation=dilation, groups=groups)
    np.testing.assert_allclose(y.data, reference_conv2d(x, w, stride, padding, dilation, groups), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", GEOMETRIES[:5])
def test_conv2d_gradients_of_both_compositions(xs, ws, stride, padding, dilation, groups):
    rng = np.random.default_rng(1)
    x, w = ag.tensor(rng.standard_normal(xs)), ag.tensor(rng.standard_normal(ws))
    check_grads(lambda a, b: F.conv2d(a, b, stride=stride, padding=padding, dilation=dilation, groups=groups),
                x, w, order=1)


def test_conv_output_and_pooled_gradient_stay_batch_last():
    """conv -> ReLU -> max pool -> flatten: the gradients reaching the pool and the ReLU are in the
    conv's batch-last layout even though flatten hands back a batch-first one."""
    rng = np.random.default_rng(2)
    x = ag.tensor(rng.standard_normal((4, 3, 8, 8)))
    w = ag.tensor(rng.standard_normal((5, 3, 3, 3)), requires_grad=True)
    conv = F.conv2d(x, w, padding=1)
    assert conv.data.strides[0] == conv.data.itemsize  # batch innermost
    h = F.relu(conv)
    loss = ag.sum(ag.flatten(F.max_pool2d(h, 2), 1) * ag.tensor(rng.standard_normal((4, 5 * 4 * 4))))
    (g,) = ag.grad(loss, h)
    assert g.data.strides[0] == g.data.itemsize, g.data.strides


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pooling_after_a_conv_gives_the_same_values_and_gradients(pool):
    rng = np.random.default_rng(3)
    xd, wd = rng.standard_normal((3, 2, 8, 8)), rng.standard_normal((4, 2, 3, 3))
    r = rng.standard_normal((3, 4 * 4 * 4))
    results = []
    for batch_last in (True, False):
        w = ag.tensor(wd, requires_grad=True)
        h = F.conv2d(ag.tensor(xd), w, padding=1)
        if not batch_last:  # the same values, copied batch-first: no layout pin
            h = ag.reshape(ag.reshape(h, (3 * 4, 8 * 8)), (3, 4, 8, 8))  # merging B and C copies
            assert h.data.flags.c_contiguous
        y = pool(h, 2)
        ag.sum(ag.flatten(y, 1) * ag.tensor(r)).backward()
        results.append((y.data.copy(), w.grad.data.copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
