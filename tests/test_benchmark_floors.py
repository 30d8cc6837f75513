"""The NumPy floors the benchmarks compare against must compute what tapegrad computes: a floor
that skipped part of the work would make a gap look smaller than it is."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import autograd as ag
import nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import conv_layer  # noqa: E402


@pytest.mark.parametrize("case", sorted(conv_layer.LAYERS))
def test_numpy_row_split_computes_the_conv_and_its_gradients(case):
    _, xs, ws, pad, x_grad = conv_layer.LAYERS[case]
    rng = np.random.default_rng(0)
    xs = (3,) + xs[1:]  # a smaller batch, the layer's own geometry
    x, w = ag.tensor(rng.standard_normal(xs), requires_grad=x_grad), ag.tensor(rng.standard_normal(ws), requires_grad=True)
    y = F.conv2d(x, w, padding=pad)
    g = rng.standard_normal(y.shape)
    y.backward(ag.tensor(g))
    forward, forward_backward = conv_layer.numpy_row_split(x.data, w.data, g.transpose(1, 2, 3, 0).copy(), pad, x_grad)
    np.testing.assert_allclose(forward().transpose(3, 0, 1, 2), y.data, rtol=1e-10, atol=1e-10)
    out, dw, dx = forward_backward()
    np.testing.assert_allclose(out.transpose(3, 0, 1, 2), y.data, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, w.grad.data, rtol=1e-10, atol=1e-10)
    if x_grad:
        np.testing.assert_allclose(dx, x.grad.data, rtol=1e-10, atol=1e-10)
    else:
        assert dx is None


def _child(framework: str, threads: int) -> dict:
    """conv_layer.py's child for `framework` on escontrela2, briefly; its RESULT line."""
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "conv_layer.py"), "--framework", framework,
                          "--case", "escontrela2", "--threads", str(threads), "--min-time", "0.01"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(next(ln for ln in out.stdout.splitlines() if ln.startswith("RESULT "))[len("RESULT "):])


def test_the_row_split_floor_runs_as_a_benchmark_child():
    result = _child("numpy-rowsplit", 1)
    assert 0 < result["fwd"] < result["fwd+bwd"]


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_the_per_thread_parts_compute_the_whole_layer(parts):
    _, xs, ws, pad, x_grad = conv_layer.LAYERS["escontrela2"]
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((7,) + xs[1:]), rng.standard_normal(ws)
    g = rng.standard_normal((ws[0], xs[2] - ws[2] + 1, xs[3] - ws[3] + 1, 7))
    out, dw, dx = conv_layer.numpy_row_split(x, w, g, pad, x_grad)[1]()
    forward, forward_backward = conv_layer.numpy_row_split_parts(x, w, g, pad, x_grad, parts)
    results, dw_parts = forward_backward()
    assert len(results) == parts
    np.testing.assert_allclose(np.concatenate([r[0] for r in results], axis=-1), out, rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([r[2] for r in results], axis=0), dx, rtol=1e-12)
    np.testing.assert_allclose(dw_parts, dw, rtol=1e-10)
    np.testing.assert_allclose(np.concatenate(forward(), axis=-1), out, rtol=1e-12)


def test_the_parts_floor_runs_as_a_benchmark_child_on_two_threads():
    result = _child("numpy-rowsplit-parts", 2)
    assert 0 < result["fwd"] < result["fwd+bwd"] and result["info"]["blas_threads_per_call"] == 1
