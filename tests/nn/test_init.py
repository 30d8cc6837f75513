"""nn.init: fans and gains as in PyTorch, the right distributions, reproducible from a seed."""
import math

import numpy as np
import pytest

import autograd as ag
from nn import Parameter, init

SHAPES = [(2, 3), (64, 32), (8, 4, 3, 3), (16, 1, 5), (6, 2, 3, 4, 5)]


def big(shape=(256, 512), dtype=np.float32):
    return Parameter(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for fan computation")
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init._calculate_fan_in_and_fan_out(ag.zeros(shape)) == expected


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(ag.zeros(5))


@pytest.mark.parametrize("name,param", [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                                        ("leaky_relu", math.sqrt(5)), ("selu", None)])
def test_gain_matches_torch(name, param):
    torch = pytest.importorskip("torch", reason="PyTorch is the oracle for gains")
    assert init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param), rel=1e-12)


def test_unknown_gain():
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def _check_uniform(t, bound):
    x = t.data.astype(np.float64)
    assert np.abs(x).max() <= bound * (1 + 1e-6)
    assert np.abs(x).max() > 0.99 * bound  # 131k draws: the extremes reach the bound
    assert abs(x.mean()) < 0.02 * bound
    assert x.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)


def _check_normal(t, std):
    x = t.data.astype(np.float64)
    assert abs(x.mean()) < 0.02 * std
    assert x.std() == pytest.approx(std, rel=0.02)
    assert np.mean(np.abs(x) < std) == pytest.approx(0.6827, abs=0.01)


def test_uniform_and_normal():
    t = init.uniform_(big(), -2.0, 3.0, rng=0)
    assert t.data.min() >= -2 and t.data.max() < 3 and t.data.mean() == pytest.approx(0.5, abs=0.02)
    _check_normal(init.normal_(big(), 0.0, 0.3, rng=1), 0.3)


def test_kaiming_uniform_default_layer_init_bound():
    t = init.kaiming_uniform_(big(), a=math.sqrt(5), rng=0)
    _check_uniform(t, 1 / math.sqrt(512))  # PyTorch's Linear/Conv default: bound = 1/sqrt(fan_in)


@pytest.mark.parametrize("mode,fan", [("fan_in", 512), ("fan_out", 256)])
def test_kaiming(mode, fan):
    _check_uniform(init.kaiming_uniform_(big(), mode=mode, nonlinearity="relu", rng=0), math.sqrt(6 / fan))
    _check_normal(init.kaiming_normal_(big(), mode=mode, nonlinearity="relu", rng=1), math.sqrt(2 / fan))
    with pytest.raises(ValueError, match="mode"):
        init.kaiming_normal_(big(), mode="fan_avg")


def test_xavier():
    _check_uniform(init.xavier_uniform_(big(), gain=2.0, rng=0), 2.0 * math.sqrt(6 / 768))
    _check_normal(init.xavier_normal_(big(), rng=1), math.sqrt(2 / 768))


def test_constants_in_place_and_version_bumped():
    p = Parameter(np.zeros((3, 2), dtype=np.float32))
    data, version = p.data, p._version
    assert init.constant_(p, 2.5) is p
    assert p.data is data and np.all(p.data == 2.5) and p._version > version
    init.ones_(p)
    assert np.all(p.data == 1)
    init.zeros_(p)
    assert np.all(p.data == 0) and p.dtype == np.float32 and p.requires_grad


def test_dtype_kept():
    assert init.normal_(big(dtype=np.float64), rng=0).dtype == np.float64
    assert init.normal_(big(dtype=np.float32), rng=0).dtype == np.float32


def test_reproducible_from_seed_and_generator():
    a = init.kaiming_uniform_(big((8, 8)), rng=123).data.copy()
    b = init.kaiming_uniform_(big((8, 8)), rng=123).data.copy()
    np.testing.assert_array_equal(a, b)
    g = np.random.default_rng(123)
    first = init.kaiming_uniform_(big((8, 8)), rng=g).data.copy()
    second = init.kaiming_uniform_(big((8, 8)), rng=g).data.copy()
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)  # a Generator advances


def test_manual_seed_resets_default_generator():
    init.manual_seed(7)
    a = init.normal_(big((4, 4))).data.copy()
    b = init.normal_(big((4, 4))).data.copy()
    init.manual_seed(7)
    np.testing.assert_array_equal(init.normal_(big((4, 4))).data, a)
    assert not np.array_equal(a, b)
