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


def _row(page: str, name: str) -> list[str]:
    line = next(line for line in page.splitlines() if line.startswith(f"| `{name}` |" if name else "| primitive |"))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_capability_matrix_columns_come_from_the_registry():
    page = markdown()
    header = _row(page, "")
    col = {name: k for k, name in enumerate(header)}
    assert _row(page, "relu")[col["VJP order"]] == "1" and _row(page, "max")[col["VJP order"]] == "1"
    assert _row(page, "tanh")[col["VJP order"]] == "2"
    assert _row(page, "log")[col["test domain"]] == "positive, [0.5, 2]"
    assert "params axis, keepdims" in _row(page, "sum")[col["test domain"]]
    assert "float32" in _row(page, "matmul")[col["float dtypes"]]
    assert "drawn by `examples`" not in page


def test_capability_matrix_reads_jvp_and_batching_rules_when_declared():
    prim = ag.defprim("user_twice", lambda x: 2 * x, lambda g, ans, x: 2 * g)
    try:
        page = markdown()
        header = _row(page, "")
        jvp, batch = header.index("JVP"), header.index("batching")
        assert _row(page, "user_twice")[jvp] == "—" and _row(page, "user_twice")[batch] == "—"
        prim.jvp_fallback = True
        assert _row(markdown(), "user_twice")[jvp] == "fallback"
        prim.jvp = lambda tangent, ans, x: 2 * tangent
        prim.batch = lambda args, dims: (2 * args[0], dims[0])
        row = _row(markdown(), "user_twice")
        assert row[jvp] == "yes" and row[batch] == "yes"
    finally:
        unregister("user_twice")


def test_capability_matrix_lists_only_dtypes_that_keep_their_dtype():
    ag.defprim("user_to64", lambda x: x.astype("float64"), lambda g, ans, x: g)
    try:
        header = _row(markdown(), "")
        assert _row(markdown(), "user_to64")[header.index("float dtypes")] == "float64"
    finally:
        unregister("user_to64")
