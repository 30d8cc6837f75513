"""nn.testing's strategies draw valid cases, and its round-trip check catches a lossy checkpoint."""
import numpy as np
import pytest
from hypothesis import given

import autograd as ag
import nn
from nn.testing import ModelCase, assert_state_dict_round_trip, batch_norm_cases, models


@given(batch_norm_cases())
def test_batch_norm_output_follows_its_formula_in_both_modes(case):
    layer, x = case.layer, case.input
    mean_before = None if layer.running_mean is None else layer.running_mean.data.copy()
    out = layer(x).data
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    uses_batch = case.training or not case.track_running_stats
    if uses_batch:
        mean, var = x.data.mean(axis=axes), x.data.var(axis=axes)
    else:
        mean, var = mean_before, layer.running_var.data
    expected = (x.data - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + layer.eps)
    if case.affine:
        expected = expected * layer.weight.data.reshape(shape) + layer.bias.data.reshape(shape)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    if case.training and case.track_running_stats:
        factor = 1.0 if case.momentum is None else case.momentum  # cumulative average: first batch counts fully
        np.testing.assert_allclose(layer.running_mean.data, (1 - factor) * mean_before + factor * mean, rtol=1e-10,
                                   atol=1e-12)


@given(batch_norm_cases(dims=2))
def test_batch_norm_cases_respect_dims(case):
    assert isinstance(case.layer, nn.BatchNorm2d) and case.input.ndim == 4


@given(models())
def test_state_dict_round_trip_gives_identical_forward(case):
    assert_state_dict_round_trip(case)


class Scaled(nn.Module):
    """A model whose forward depends on state that state_dict does not hold."""

    def __init__(self, seed: int):
        super().__init__()
        self.lin = nn.Linear(2, 2, rng=np.random.default_rng(0))
        self.scale = float(seed + 1)  # a plain attribute: not saved

    def forward(self, x):
        return self.lin(x) * self.scale


def test_round_trip_check_catches_state_the_checkpoint_misses():
    case = ModelCase(Scaled, ag.tensor(np.ones((1, 2), np.float32)), "Scaled")
    with pytest.raises(AssertionError, match="Scaled: the reloaded model's output differs"):
        assert_state_dict_round_trip(case)
