"""optim.testing's configurations are valid, and its invariants hold for the built-in optimizers
(and fail for an optimizer that breaks them)."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from autograd import Tensor
from optim import SGD
from optim.testing import (adam_configs, assert_adam_first_step_is_lr_sign, assert_zero_gradient_keeps_still,
                           gradients_for, optimizer_configs, parameters, sgd_configs)


@given(optimizer_configs(weight_decay=False), parameters())
def test_a_zero_gradient_leaves_every_optimizer_without_weight_decay_still(config, params):
    cls, kwargs = config
    assert_zero_gradient_keeps_still(cls, kwargs, params)


@given(adam_configs(weight_decay=False), st.data())
def test_adams_first_step_is_lr_times_sign_of_the_gradient(config, data):
    params = data.draw(parameters())
    cls, kwargs = config
    assert_adam_first_step_is_lr_sign(cls, kwargs, params, data.draw(gradients_for(params)))


@given(sgd_configs(weight_decay=True), parameters())
def test_weight_decay_configs_are_refused_by_the_zero_gradient_invariant(config, params):
    with pytest.raises(ValueError, match="weight decay"):
        assert_zero_gradient_keeps_still(*config, params)


class Drifting(SGD):
    """Moves parameters even under a zero gradient: the invariant must catch it."""

    def _update(self, p, g, state, group):
        p += 1e-3


def test_the_zero_gradient_invariant_catches_a_drifting_optimizer():
    with pytest.raises(AssertionError, match="parameter 0 moved under a zero gradient"):
        assert_zero_gradient_keeps_still(Drifting, dict(lr=0.1), [Tensor(np.ones(3), requires_grad=True)])


def test_the_adam_invariant_catches_plain_sgd():
    p = [Tensor(np.zeros(2), requires_grad=True)]
    with pytest.raises(AssertionError, match="first step"):
        assert_adam_first_step_is_lr_sign(SGD, dict(lr=0.1), p, [np.array([0.5, -3.0])])
