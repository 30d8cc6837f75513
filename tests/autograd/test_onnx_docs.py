"""The code blocks of docs/export.md run and do what the text says."""
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import autograd as ag  # noqa: E402
from autograd.onnx import TRANSLATIONS, export  # noqa: E402
from autograd.primitive import defprim, unregister  # noqa: E402

DOC = Path(__file__).resolve().parents[2] / "docs" / "export.md"


def blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_export_then_serve_in_five_lines(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    export_block, serve_block = blocks()[:2]
    assert len([line for line in serve_block.splitlines() if line.strip()]) == 5
    ns: dict = {}
    exec(export_block, ns)
    exec(serve_block, ns)
    model = ns["model"].eval()
    with ag.no_grad():
        want = model(ag.tensor(ns["images"])).data
    assert ns["logits"].shape == (5, 10)
    np.testing.assert_allclose(ns["logits"], want, rtol=0, atol=1e-5)


def test_extension_example_translates_a_user_primitive():
    cube = defprim("cube", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x)
    try:
        exec(blocks()[2], {})
        import onnxruntime as ort

        x = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
        model = export(lambda t: cube(t) * 0.5, x, None)
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {"input": x})
        np.testing.assert_allclose(got, x ** 3 * 0.5, rtol=1e-6)
    finally:
        unregister("cube")
        TRANSLATIONS.pop("cube", None)
