"""Nothing lost: checkpoints survive a kill mid-write; memory stays flat over long training."""
import gc
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import autograd as ag
import nn
import optim

ROOT = Path(__file__).resolve().parents[2]

WRITER = """
import sys, numpy as np, nn
path = sys.argv[1]
version = 0
print("ready", flush=True)
while True:
    version += 1
    nn.save({"version": version, "weights": np.full(2_000_000, version, dtype=np.float32)}, path)
"""


def test_killing_a_process_mid_save_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "model.npz"
    nn.save({"version": 0, "weights": np.zeros(2_000_000, dtype=np.float32)}, path)
    rng = np.random.default_rng(0)
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT, stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(float(rng.uniform(0.05, 0.4)))  # somewhere inside a write of ~8 MB
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
        state = nn.load(path)  # always a complete checkpoint: the previous one or the new one
        assert np.all(state["weights"] == state["version"])
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "model.npz"]
    # a kill can leave the writer's temp file behind, but never a damaged model.npz
    assert all(name.startswith(".") or name.endswith(".tmp") or "tmp" in name for name in leftovers), leftovers


def _digit_cnn():
    nn.init.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 10 * 10, 10))


def _array_bytes(snapshot) -> int:
    """Bytes of NumPy array data alive (NumPy reports its buffers in their own tracemalloc domain;
    Python's small-object free lists, which only look like growth, are left out)."""
    domain = tracemalloc.DomainFilter(True, np.lib.tracemalloc_domain)
    return sum(stat.size for stat in snapshot.filter_traces([domain]).statistics("filename"))


def _live(kind) -> int:
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), kind))  # type(): no proxy __class__ lookups


def test_memory_stays_flat_over_1000_training_steps():
    """1,000 steps of the digit CNN: no array, tensor or graph node accumulates, and the peak
    stays within one step's working set of the steady state."""
    model = _digit_cnn()
    opt = optim.Adam(model.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.random((32, 1, 20, 20), dtype=np.float32))
    y = rng.integers(0, 10, 32)

    def step():
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    tracemalloc.start()
    try:
        for _ in range(100):
            step()
        arrays_before = _array_bytes(tracemalloc.take_snapshot())
        tensors_before, nodes_before = _live(ag.Tensor), _live(ag.Node)
        tracemalloc.reset_peak()
        for _ in range(900):
            step()
        _, peak = tracemalloc.get_traced_memory()
        arrays_after = _array_bytes(tracemalloc.take_snapshot())
        tensors_after, nodes_after = _live(ag.Tensor), _live(ag.Node)
    finally:
        tracemalloc.stop()
    assert arrays_after - arrays_before < 4096, f"array memory grew by {arrays_after - arrays_before} bytes"
    assert (tensors_after, nodes_after) == (tensors_before, nodes_before)
    one_step = 32 * 8 * 20 * 20 * 4 * 16  # generous: sixteen activation-sized float32 arrays
    assert peak < arrays_before + one_step, f"peak {peak} bytes, steady state {arrays_before}"
