"""docs/transforms.md's code blocks run in order and do what the text says."""
import re
from pathlib import Path

import numpy as np

from autograd import func

ROOT = Path(__file__).resolve().parents[1]


def test_transforms_doc_blocks_run_in_order():
    ns: dict = {}
    for block in re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "transforms.md").read_text(), re.S):
        exec(block, ns)
    # DP-SGD: per-example gradients equal single-example ones, and clipping bounds every norm
    grad_one = func.grad(ns["loss"])
    first = grad_one(_original_params(ns), ns["images"][5], ns["targets"][5])
    for name, g in first.items():
        np.testing.assert_allclose(ns["per_example"][name].data[5], g.data, rtol=1e-10, atol=1e-12)
    assert (ns["clipped_norms"].data <= ns["C"] + 1e-12).all()
    assert (ns["norms"].data > ns["C"]).any()  # some examples were actually clipped
    # HVP: against the Hessian in the doc, and PyTorch when installed
    assert ns["H"].shape == (16, 8, 16, 8)
    if ns["hvp_difference"] is not None:
        assert ns["hvp_difference"] < 1e-10
    # forward-mode sensitivities
    assert ns["d_logits"].shape == (1, 10)
    assert ns["d_filter"].shape == (1, 10) and np.abs(ns["d_filter"].data).max() > 0
    assert ns["J"].shape == (1, 10, 1, 1, 3, 3)


def _original_params(ns):
    """The parameters before the DP-SGD step (the doc then replaces the dict's entries)."""
    import autograd as ag

    return {name: ag.tensor(p.data) for name, p in ns["model"].named_parameters()}
