"""Docs that are generated or runnable stay true."""
import re
from pathlib import Path

import autograd as ag
from autograd.catalog import markdown
from autograd.primitive import unregister

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_primitive_list_is_current():
    assert (DOCS / "primitives.md").read_text() == markdown(), "run: python -m autograd.catalog > docs/primitives.md"


def test_adding_a_primitive_page_runs():
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "adding-a-primitive.md").read_text(), re.S)
    namespace: dict = {}
    try:
        exec(blocks[0], namespace)
        exec(blocks[1], namespace)
        namespace["test_sinh"]()
        x = ag.tensor([0.5], requires_grad=True)
        namespace["sinh"](x).sum().backward()
        assert abs(x.grad.item() - 1.1276259652) < 1e-6
    finally:
        unregister("sinh")
