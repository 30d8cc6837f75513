"""check_grads on large inputs names the failing entries; check_grads_property shrinks a user's failure."""
import numpy as np
import pytest

import autograd as ag
from autograd.primitive import defprim, unregister
from autograd.testing import GradientCheckError, check_grads, check_grads_property
from autograd.testing import strategies as S


@pytest.fixture
def wrong_copy():
    """A copy primitive whose VJP is wrong at entries (6, 17) and (12, 2) of a (20, 20) input."""

    def vjp(g, ans, x):
        scale = np.ones(x.shape)
        scale[6, 17], scale[12, 2] = 3.0, 1.5
        return g * ag.tensor(scale)

    prim = defprim("test_wrong_copy", lambda x: x.copy(), vjp)
    yield prim
    unregister("test_wrong_copy")


def test_a_large_input_failure_is_localised_to_its_entries(wrong_copy):
    x = np.random.default_rng(0).standard_normal((20, 20))  # 400 entries: checked along a direction
    with pytest.raises(GradientCheckError) as info:
        check_grads(lambda t: wrong_copy(t) * 2.0, x, order=1)
    msg = str(info.value)
    assert "directional derivative along a random direction" in msg
    assert "bisection found 2 entries that differ" in msg
    lines = msg.splitlines()
    assert lines[-2].startswith("  [6, 17]:") and lines[-1].startswith("  [12, 2]:")  # worst first


def test_a_large_input_with_right_gradients_passes():
    x = np.random.default_rng(1).standard_normal((20, 20))
    check_grads(lambda t: (t.tanh() * t).sum(axis=0), x, order=2)


def test_check_grads_property_shrinks_to_the_smallest_failing_input():
    def vjp(g, ans, x):  # right for rows shorter than 3, wrong from 3 on
        return g * (2.0 if x.shape[-1] >= 3 else 1.0)

    prim = defprim("test_wrong_from_3", lambda x: x.copy(), vjp)
    try:
        with pytest.raises(GradientCheckError) as info:
            check_grads_property(lambda t: prim(t), S.arrays(S.shapes(min_dims=1, max_dims=3, max_side=6)),
                                 order=1, max_examples=50)
    finally:
        unregister("test_wrong_from_3")
    msg = str(info.value)
    assert "smallest failing input found" in msg
    assert "argument 0: shape (3,), float64: [0., 0., 0.]" in msg


def test_check_grads_property_passes_a_right_function():
    check_grads_property(lambda a, b: (a * b).tanh(), S.arrays(S.st.just((2, 3))), S.arrays(S.st.just((3,))),
                         max_examples=10)


def test_check_grads_property_needs_a_strategy():
    with pytest.raises(ValueError, match="one Hypothesis strategy per argument"):
        check_grads_property(lambda t: t)


def test_testing_page_error_text_is_what_check_grads_prints(wrong_copy):
    from pathlib import Path

    with pytest.raises(GradientCheckError) as info:
        check_grads(lambda t: wrong_copy(t) * 2.0, np.random.default_rng(0).standard_normal((20, 20)), order=1)
    page = " ".join((Path(__file__).resolve().parents[2] / "docs" / "testing.md").read_text().split())
    assert " ".join(f"GradientCheckError: {info.value}".split()) in page
