"""`tapegrad export RUN_DIR -o model.onnx`, driven through its two functions on a tiny trained run."""
import argparse

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import autograd as ag  # noqa: E402
from tapegrad.cli import UserError, load_run, main  # noqa: E402
from tapegrad.export import add_export_parser, cmd_export  # noqa: E402


def parse(argv):
    parser = argparse.ArgumentParser(prog="tapegrad")
    add_export_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("export") / "run"
    assert main(["train", "--epochs", "1", "--limit-train", "96", "--limit-test", "40", "--no-progress",
                 "--out", str(run)]) == 0
    return run


def test_export_a_trained_run_and_serve_it(tiny_run, tmp_path, capsys):
    out = tmp_path / "digits.onnx"
    assert cmd_export(parse(["export", str(tiny_run), "-o", str(out)])) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "Conv" in printed and "onnxruntime agrees" in printed
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    cfg, model = load_run(tiny_run)
    model.eval()
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    for batch in (1, 9):
        x = np.random.default_rng(batch).random((batch, *cfg["input_shape"]), dtype=np.float32)
        (got,) = session.run(["output"], {"input": x})
        with ag.no_grad():
            want = model(ag.tensor(x)).data
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_static_batch_and_no_patterns(tiny_run, tmp_path, capsys):
    out = tmp_path / "fixed.onnx"
    assert cmd_export(parse(["export", str(tiny_run), "-o", str(out), "--static-batch", "--batch-size", "4",
                             "--no-patterns"])) == 0
    model = onnx.load(str(out))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert "Conv" not in {n.op_type for n in model.graph.node}


def test_a_directory_without_a_run_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a tapegrad run directory"):
        cmd_export(parse(["export", str(tmp_path), "-o", str(tmp_path / "m.onnx")]))


def test_an_unwritable_output_is_a_user_error(tiny_run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write"):
        cmd_export(parse(["export", str(tiny_run), "-o", str(blocker / "m.onnx")]))
