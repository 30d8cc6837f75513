"""Hypothesis profiles: 'default' keeps local runs fast; 'ci' (chosen when CI=true, or by
HYPOTHESIS_PROFILE) draws more examples."""
import os

# Two pytest-xdist workers on two cores: multi-threaded BLAS in each would fight over the cores
# (OpenBLAS threads spin while waiting, and a loaded machine makes that 10-30x slower).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("default", max_examples=20, **_common)
settings.register_profile("ci", max_examples=60, print_blob=True, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") == "true" else "default"))

import pytest  # noqa: E402


@pytest.fixture
def threads():
    """Set tapegrad's thread count for one test (the suite runs with 1: OMP_NUM_THREADS above)."""
    import autograd as ag

    before = ag.get_num_threads()
    yield ag.set_num_threads
    ag.set_num_threads(before)


@pytest.fixture
def split_small(monkeypatch):
    """Split replay runs, matmuls and elementwise calls of any size, so that small test programs take
    the split paths."""
    from autograd import parallel, split

    monkeypatch.setattr(split, "MIN_ELEMENTS", 0)
    monkeypatch.setattr(parallel, "MATMUL_FLOPS", 0)
    monkeypatch.setattr(parallel, "ELEMENTWISE_MIN", 0)
