"""The code shown in README and docs runs and does what the text says."""
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_nn_and_optim_worked_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(_blocks(ROOT / "docs" / "nn-and-optim.md")[0], ns)
    losses = ns["losses"]
    assert losses[-1] < 0.5 * losses[0]
    assert ns["accuracy"] > 0.5
    assert (tmp_path / "checkpoint.npz").stat().st_size > 0


def test_readme_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(_blocks(ROOT / "README.md")[0], ns)
    assert ns["loss"].item() < 0.5
    assert "digraph" in (tmp_path / "mlp").read_text()


def test_tutorial_blocks_run_in_order(capsys):
    ns: dict = {}
    for block in _blocks(ROOT / "docs" / "tutorial.md"):
        exec(block, ns)
    np.testing.assert_allclose(ns["h"].data, 6 * ns["x"].data)  # grad of grad of x**3
    assert ns["hv"].shape == (3,)
