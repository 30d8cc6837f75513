"""Masks, signs and stability shifts are recorded primitives (greater, equal, sign, stop_gradient):
they appear in the graph, carry no derivative, and replay with the data they were computed from."""
import numpy as np

import autograd as ag
import nn.functional as NF
from autograd import func
from autograd.introspect import walk

G = np.random.default_rng(3)


def test_comparisons_are_recorded_bool_masks_without_a_derivative():
    x, y = ag.tensor(G.standard_normal((2, 3)), requires_grad=True), ag.tensor(G.standard_normal(3))
    for mask, expected in ((ag.greater(x, y), x.data > y.data), (ag.less(x, y), x.data < y.data),
                           (ag.equal(x, x.data[0]), x.data == x.data[0])):
        assert mask.dtype == bool and not mask.requires_grad
        np.testing.assert_array_equal(mask.data, expected)
    out = ag.where(ag.greater(x, 0.0), x, 0.1 * x)
    assert {"greater", "where"} <= {r.op for r in walk(out)}
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.where(x.data > 0, 1.0, 0.1))


def test_stop_gradient_passes_the_value_and_no_derivative():
    x = ag.tensor(G.standard_normal(4), requires_grad=True)
    s = ag.stop_gradient(x)
    np.testing.assert_array_equal(s.data, x.data)
    assert not np.shares_memory(s.data, x.data)
    (x * s).sum().backward()
    np.testing.assert_array_equal(x.grad.data, x.data)  # d/dx of x * const(x)
    _, tangent = func.jvp(lambda t: ag.stop_gradient(t) * t, (ag.tensor(x.data),), (ag.tensor(np.ones(4)),))
    np.testing.assert_array_equal(tangent.data, x.data)


def test_softmax_records_its_shift_and_keeps_torch_gradients():
    x = ag.tensor(G.standard_normal((3, 5)) * 30, requires_grad=True)
    ops = [r.op for r in walk(ag.softmax(x, axis=1))]
    assert "max" in ops and "stop_gradient" in ops
    import torch

    tx = torch.tensor(x.data, requires_grad=True)
    w = G.standard_normal((3, 5))
    (torch.log_softmax(tx, 1) * torch.tensor(w)).sum().backward()
    (ag.log_softmax(x, axis=1) * w).sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_softmax_of_a_row_of_minus_infinity_is_still_guarded():
    x = ag.tensor(np.array([[-np.inf, -np.inf], [0.0, 1.0]]), requires_grad=True)
    out = ag.logsumexp(x, axis=1)
    assert out.data[0] == -np.inf and np.isfinite(out.data[1])


def test_compiled_masks_follow_the_data_of_each_call():
    """The masks are equations of the program, so a replay on other values picks other branches."""
    def f(x, labels):
        return ag.maximum(x, 0.1).sum() + ag.clip(x, -0.5, 0.5).sum() + NF.cross_entropy(x, labels)

    compiled = ag.compile(f)
    for i in range(4):
        g = np.random.default_rng(i)
        x, labels = ag.tensor(g.standard_normal((6, 4))), ag.tensor(g.integers(0, 4, 6))
        np.testing.assert_allclose(compiled(x, labels).data, f(x, labels).data, rtol=1e-12, atol=1e-12)
    assert compiled.traces == 1


def test_a_mask_made_once_is_reused_across_backward_passes():
    x = ag.tensor(np.array([-1.0, 2.0, 3.0]), requires_grad=True)
    mask = ag.greater(x, ag.tensor(0.5))  # recorded (x requires grad), but has no derivative
    for _ in range(2):  # the second backward must not walk into the mask's (freed) node
        x.grad = None
        ag.where(mask, x * 2, x).sum().backward()
        np.testing.assert_array_equal(x.grad.data, [1.0, 2.0, 2.0])
