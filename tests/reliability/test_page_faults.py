"""A warmed-up training step reuses the heap: ~0 minor page faults (autograd/allocator.py).

Each model runs in a fresh process, as a user runs it: importing tapegrad sets process-wide malloc
options, and a pytest worker's heap has been grown and shaped by every test before this one.
"""
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
from autograd import allocator

ROOT = Path(__file__).resolve().parents[2]
GLIBC_LINUX = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

STEPS = """
import resource, sys
import numpy as np
import autograd as ag, nn, optim
from tapegrad.models import build_model
name, batch, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = build_model(name, (1, side, side))
opt = optim.Adam(model.parameters(), lr=1e-3)
rng = np.random.default_rng(0)
x = ag.tensor(rng.random((batch, 1, side, side), dtype=np.float32))
y = ag.tensor(rng.integers(0, 10, batch))
def step():
    loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
if sys.argv[4] == "compiled":
    step = ag.compile(step, state=[model, opt])
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(name: str, batch: int, side: int, mode: str = "eager", **env: str) -> float:
    child_env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **env}
    out = subprocess.run([sys.executable, "-c", STEPS, name, str(batch), str(side), mode], env=child_env, cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return float(out.stdout.split()[-1])


def test_thresholds_fit_in_mallopts_c_int():
    for value in (allocator.MMAP_THRESHOLD, allocator.TRIM_THRESHOLD):
        assert 0 < value <= 2**31 - 1


@pytest.mark.skipif(not GLIBC_LINUX, reason="malloc tuning applies to glibc on Linux only")
def test_keep_freed_memory_is_applied():
    assert allocator.keep_freed_memory()


@pytest.mark.skipif(not GLIBC_LINUX, reason="malloc tuning applies to glibc on Linux only")
@pytest.mark.parametrize("name, batch, side", [("escontrela", 32, 28), ("digits", 32, 20)])
def test_warm_training_step_causes_no_page_faults(name, batch, side):
    # as shipped with the int overflow: ~4,100 faults per Escontrela step; a few stragglers are fine
    assert faults_per_step(name, batch, side) < 50


@pytest.mark.skipif(not GLIBC_LINUX, reason="malloc tuning applies to glibc on Linux only")
@pytest.mark.parametrize("name, batch, side", [("escontrela", 32, 28), ("lenet-bn", 32, 28)])
def test_a_replayed_step_causes_no_page_faults(name, batch, side):
    """Replay writes into buffers it keeps and NumPy's temporaries reuse the heap: after warm-up a
    replayed step touches no new page. A straggler page now and then (seen: 1 to 4 faults in 10
    LeNet-BN steps, in steps 9 and 15 of 40, never again after) is not a per-step cost; the bug this
    guards cost thousands per step."""
    assert faults_per_step(name, batch, side, "compiled") < 1


@pytest.mark.skipif(not GLIBC_LINUX, reason="malloc tuning applies to glibc on Linux only")
def test_without_the_setting_the_same_step_faults():
    """The test above can fail: with the tuning turned off, the same step pays page faults."""
    assert faults_per_step("escontrela", 32, 28, TAPEGRAD_KEEP_FREED_MEMORY="0") > 500


def test_a_reshape_that_must_copy_places_its_copy_at_its_source_page_offset():
    """copy_unaliased: a large copy starts at the same offset within a 4 KiB page as its source,
    never 16 bytes past it (where the next heap block would be), and holds the same values."""
    from autograd.allocator import PAGE, UNALIASED_MIN_BYTES
    from autograd.ops.shape import reshape_p

    base = np.arange(2 * 32 * 30 * 512, dtype=np.float32).reshape(2, 32, 30, 512)
    window = base[:, :, 1:29, :].transpose(1, 0, 2, 3)  # no view can merge these axes
    assert window.nbytes >= UNALIASED_MIN_BYTES
    out = reshape_p(ag.tensor(window), shape=(32, 2 * 28 * 512)).data
    np.testing.assert_array_equal(out, np.reshape(window, (32, -1)))
    assert out.flags.c_contiguous and not np.shares_memory(out, base)
    offset = lambda a: a.__array_interface__["data"][0] % PAGE
    assert offset(out) == offset(window)
    view = reshape_p(ag.tensor(base), shape=(64, 30 * 512)).data
    assert np.shares_memory(view, base)  # a reshape that can be a view still is one


@pytest.mark.parametrize("frameworks, tuned", [("torch", False), ("tapegrad", True)])
def test_side_by_side_benchmark_gives_pytorch_no_tapegrad_malloc_tuning(frameworks, tuned):
    """benchmarks/results.py builds PyTorch's twin from tapegrad's model code, so its PyTorch-only
    process imports tapegrad: that process must turn the tuning off (PyTorch's own users' processes
    never have it; with it, PyTorch's LeNet-BN step ran 211-261 ms against 297-306 ms without),
    while the tapegrad process keeps it. Each prints the setting it ran with on its `threads:` line."""
    pytest.importorskip("torch")
    env = {k: v for k, v in os.environ.items() if k != "TAPEGRAD_KEEP_FREED_MEMORY"}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "results.py"), "--dataset", "synthetic-digits",
                          "--models", "digits", "--epochs", "1", "--limit-train", "64", "--threads", "1",
                          "--frameworks", frameworks], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    threads = next(line for line in out.stdout.splitlines() if line.startswith("threads:"))
    assert json.loads(threads.split(":", 1)[1])["keep_freed_memory"] is tuned
