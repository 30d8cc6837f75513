"""Deep graphs: traversal is iterative, so depth is limited by memory, not by Python's stack."""
import sys

import numpy as np

import autograd as ag


def test_hundred_thousand_op_chain_forward_and_backward():
    x = ag.tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for i in range(100_000):
        y = y * 1.0 if i % 2 else y + 0.0
    assert sys.getrecursionlimit() < 100_000
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_deep_chain_second_order():
    x = ag.tensor(np.array(0.5), requires_grad=True)
    y = x
    for _ in range(2_000):
        y = y * 1.0
    (g,) = ag.grad(y ** 3, x, create_graph=True)
    (h,) = ag.grad(g, x)
    assert abs(h.item() - 6 * 0.5) < 1e-12
