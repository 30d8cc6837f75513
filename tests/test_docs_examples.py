"""The code shown in README and docs runs and does what the text says.

Examples that render a picture need Graphviz's `dot` program. Without it, every `.render()` writes
the DOT text only (what `.source` holds), the rest of the example is still checked, and the test
then skips with the reason, as the README promises.
"""
import re
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from autograd import viz

ROOT = Path(__file__).resolve().parents[1]
NO_DOT = "Graphviz's 'dot' program is not on PATH: the example ran, its rendering was not checked"


def _blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


@pytest.fixture
def dot_available(monkeypatch) -> bool:
    """True when `dot` renders; otherwise render() only saves the DOT text (call `_skip_without_dot` last)."""
    if shutil.which("dot"):
        return True

    def save_source(self, filename=None, directory=None, *args, **kwargs):
        return self.save(filename, directory)

    monkeypatch.setattr(viz.Graph, "render", save_source)
    return False


def _skip_without_dot(dot_available: bool) -> None:
    if not dot_available:
        pytest.skip(NO_DOT)


def test_nn_and_optim_worked_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(_blocks(ROOT / "docs" / "nn-and-optim.md")[0], ns)
    losses = ns["losses"]
    assert losses[-1] < 0.5 * losses[0]
    assert ns["accuracy"] > 0.5
    assert (tmp_path / "checkpoint.npz").stat().st_size > 0


def test_readme_example(tmp_path, monkeypatch, dot_available):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(_blocks(ROOT / "README.md")[0], ns)
    assert ns["loss"].item() < 0.5
    assert "digraph" in (tmp_path / "mlp").read_text()
    _skip_without_dot(dot_available)
    assert (tmp_path / "mlp.svg").read_text().lstrip().startswith(("<?xml", "<svg"))


def test_tutorial_blocks_run_in_order(capsys):
    ns: dict = {}
    for block in _blocks(ROOT / "docs" / "tutorial.md"):
        exec(block, ns)
    np.testing.assert_allclose(ns["h"].data, 6 * ns["x"].data)  # grad of grad of x**3
    assert ns["hv"].shape == (3,)


def test_visualization_page_blocks_run_in_order(tmp_path, monkeypatch, capsys, dot_available):
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    for block in _blocks(ROOT / "docs" / "visualization.md"):
        exec(block, ns)
    assert ns["logits"].shape == (4, 10)
    assert "op " in capsys.readouterr().out  # the profile table was printed
    assert "digraph" in (tmp_path / "graph-3op").read_text()
    _skip_without_dot(dot_available)
    assert (tmp_path / "graph-3op.png").read_bytes()[:4] == b"\x89PNG"


def test_draw_graphs_example_makes_every_picture_of_the_docs(tmp_path, monkeypatch, capsys, dot_available):
    monkeypatch.setattr(sys, "argv", ["draw_graphs.py", str(tmp_path)])
    runpy.run_path(str(ROOT / "examples" / "draw_graphs.py"), run_name="__main__")
    pictures = set(re.findall(r"\(img/([\w-]+)\.png\)", (ROOT / "docs" / "visualization.md").read_text()))
    made = {p.stem for p in tmp_path.iterdir()}
    assert pictures and pictures <= made, f"pictures the docs show but the example does not make: {pictures - made}"
    _skip_without_dot(dot_available)
    assert all((tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG" for name in pictures)


def test_testing_page_blocks_run_and_their_property_tests_pass():
    ns: dict = {}
    for block in _blocks(ROOT / "docs" / "testing.md"):
        exec(block, ns)
    tests = sorted(name for name in ns if name.startswith("test_"))
    assert tests == ["test_adam_first_step_is_lr_sign", "test_batch_norm_normalises_each_channel_in_train_mode",
                     "test_checkpoints_restore_the_same_model", "test_zero_gradient_keeps_parameters_still"]
    for name in tests:
        ns[name]()  # Hypothesis runs each property
