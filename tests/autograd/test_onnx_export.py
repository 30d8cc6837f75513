"""autograd.onnx.export on the reference models and on plain functions: the file passes the full
ONNX check, onnxruntime gives tapegrad's outputs, and what cannot be exported says where."""
import numpy as np
import pytest
from pathlib import Path
from hypothesis import given, settings, strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import autograd as ag  # noqa: E402
import nn  # noqa: E402
import nn.functional as NF  # noqa: E402
from autograd.onnx import ExportError, export  # noqa: E402
from autograd.testing.strategies import conv_geometries  # noqa: E402
from tapegrad.models import MODELS, build_model  # noqa: E402

PATTERN_OPS = {"Conv", "MaxPool", "BatchNormalization", "Gemm", "Relu"}


def session(path_or_model):
    source = path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def reference_model(name):
    """A model with non-trivial batch-norm statistics (fresh ones are 0 and 1)."""
    model = build_model(name, MODELS[name].recipe.input_shape, seed=3)
    rng = np.random.default_rng(7)
    for key, buf in model.named_buffers():
        if key.endswith("running_mean"):
            buf.data[...] = rng.normal(0, 0.5, buf.shape)
        elif key.endswith("running_var"):
            buf.data[...] = rng.uniform(0.5, 2.0, buf.shape)
    for _, p in model.named_parameters():  # BN's affine parameters are 1 and 0 when fresh
        if p.ndim == 1:
            p.data[...] += rng.normal(0, 0.1, p.shape).astype(p.dtype)
    return model


def forward(model, x):
    with ag.no_grad():
        return model(ag.tensor(x)).data


@pytest.mark.parametrize("patterns", [True, False], ids=["patterns", "primitives"])
@pytest.mark.parametrize("name", list(MODELS))
def test_reference_models_match_onnxruntime(name, patterns, tmp_path):
    model = reference_model(name)
    shape = MODELS[name].recipe.input_shape
    rng = np.random.default_rng(0)
    path = str(tmp_path / f"{name}.onnx")
    export(model, rng.random((2, *shape), dtype=np.float32), path, patterns=patterns)
    written = onnx.load(path)
    onnx.checker.check_model(written, full_check=True)
    ops = {n.op_type for n in written.graph.node}
    assert bool(ops & {"Conv", "Gemm"}) == patterns
    model.eval()
    sess = session(path)
    for batch in (3, 8):
        x = rng.random((batch, *shape), dtype=np.float32)
        (got,) = sess.run(None, {"input": x})
        want = forward(model, x)
        assert got.shape == want.shape == (batch, 10)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_digits_graph_is_the_layers(capsys):
    model = build_model("digits", (1, 20, 20))
    x = np.zeros((2, 1, 20, 20), np.float32)
    with_patterns = export(model, x, None)
    without = export(model, x, None, patterns=False)
    ops = [n.op_type for n in with_patterns.graph.node]
    assert ops == ["Conv", "BatchNormalization", "Relu", "MaxPool", "Flatten", "Gemm"]
    assert len(ops) <= 12 < len(without.graph.node)
    with capsys.disabled():
        print(f"\ndigits ONNX nodes: {len(ops)} with patterns, {len(without.graph.node)} primitive by primitive")
    names = {i.name for i in with_patterns.graph.initializer}
    assert {"conv.weight", "conv.bias", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var",
            "fc.weight", "fc.bias"} <= names
    assert [n.name for n in with_patterns.graph.node][:2] == ["conv", "bn"]


def test_lenet_initializers_are_named_by_module_path():
    model = build_model("lenet-bn", (1, 28, 28))
    exported = export(model, np.zeros((2, 1, 28, 28), np.float32), None)
    names = {i.name for i in exported.graph.initializer}
    assert {"block1.conv.weight", "block2.bn.running_var", "block3.bn.bias", "fc1.weight", "fc2.bias"} <= names
    assert PATTERN_OPS <= {n.op_type for n in exported.graph.node}
    assert "Dropout" not in {n.op_type for n in exported.graph.node}


def test_batch_axis_is_dynamic_unless_asked():
    model = build_model("nielsen-mlp", (1, 28, 28))
    x = np.random.default_rng(0).random((4, 1, 28, 28), dtype=np.float32)
    dynamic = export(model, x, None)
    assert dynamic.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert dynamic.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    fixed = export(model, x, None, dynamic_batch=False)
    assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    (got,) = session(fixed).run(None, {"input": x})
    np.testing.assert_allclose(got, forward(model.eval(), x), rtol=0, atol=1e-6)
    with pytest.raises(Exception):
        session(fixed).run(None, {"input": x[:3]})


def test_a_training_model_is_exported_in_eval_mode_and_left_training():
    model = reference_model("lenet-bn")
    model.train()
    frozen = model.fc2.bias
    frozen.requires_grad = False
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    exported = export(model, x, None)
    assert model.training and model.block1.bn.training and model.dropout.training
    assert frozen.requires_grad is False
    assert "fc2.bias" in {i.name for i in exported.graph.initializer}
    (got,) = session(exported).run(None, {"input": x})
    model.eval()
    np.testing.assert_allclose(got, forward(model, x), rtol=0, atol=1e-5)


def test_batch_one_example_still_gives_a_dynamic_batch():
    model = reference_model("escontrela")
    exported = export(model, np.zeros((1, 1, 28, 28), np.float32), None, patterns=False)
    x = np.random.default_rng(2).random((5, 1, 28, 28), dtype=np.float32)
    (got,) = session(exported).run(None, {"input": x})
    np.testing.assert_allclose(got, forward(model.eval(), x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("opset", [18, onnx.defs.onnx_opset_version()])
def test_other_opsets(opset):
    model = reference_model("digits")
    x = np.random.default_rng(3).random((2, 1, 20, 20), dtype=np.float32)
    for patterns in (True, False):
        exported = export(model, x, None, opset=opset, patterns=patterns)
        assert exported.opset_import[0].version == opset
        onnx.checker.check_model(exported, full_check=True)
        (got,) = session(exported).run(None, {"input": x})
        np.testing.assert_allclose(got, forward(model.eval(), x), rtol=0, atol=1e-5)


def test_an_unknown_opset_is_refused():
    with pytest.raises(ValueError, match="opset 9 is not supported"):
        export(lambda x: x * 2.0, np.ones((2, 2), np.float32), None, opset=9)


def test_functions_with_several_named_inputs_and_outputs():
    w = ag.tensor(np.random.default_rng(4).normal(size=(3, 5)).astype(np.float32), requires_grad=True)
    w.name = "w"

    def f(x, y):
        h = ag.tanh(x @ w) * 2.0
        return h, ag.sigmoid(h + y).sum(axis=-1)

    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(2, 3)).astype(np.float32), rng.normal(size=(2, 5)).astype(np.float32)
    exported = export(f, (x, y), None, input_names=["x", "y"], output_names=["hidden", "probs"])
    assert [o.name for o in exported.graph.output] == ["hidden", "probs"]
    assert "w" in {i.name for i in exported.graph.initializer}
    x6, y6 = rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)
    got = session(exported).run(None, {"x": x6, "y": y6})
    want = f(ag.tensor(x6), ag.tensor(y6))
    for g, t in zip(got, want):
        np.testing.assert_allclose(g, t.data, rtol=0, atol=1e-6)


def test_an_output_that_is_an_input_or_a_constant():
    c = ag.tensor(np.arange(3, dtype=np.float32))
    exported = export(lambda x: (x, c), np.ones((2, 3), np.float32), None)
    got = session(exported).run(None, {"input": np.full((4, 3), 2.0, np.float32)})
    np.testing.assert_array_equal(got[0], np.full((4, 3), 2.0, np.float32))
    np.testing.assert_array_equal(got[1], np.arange(3, dtype=np.float32))


def test_control_flow_on_values_is_reported_with_the_line():
    def branchy(x):
        return ag.tanh(x) if float(x.data[0, 0]) > 0 else ag.sigmoid(x)  # reads a value: not exportable

    x = np.array([[1.0, 2.0], [-1.0, -2.0]], np.float32)
    with pytest.raises(ExportError, match=r"changes with .*'tanh'.*'sigmoid'.*test_onnx_export.py:\d+.*branchy"):
        export(branchy, x, None)


def test_a_mask_computed_outside_the_graph_is_reported():
    def masked(x):
        return x * ag.tensor((x.data > 0).astype(np.float32))  # a constant computed from the input

    x = np.array([[1.0, -2.0], [-1.0, 3.0]], np.float32)
    with pytest.raises(ExportError, match=r"'mul' reads a constant tensor .*computed from the input.*masked"):
        export(masked, x, None, dynamic_batch=False)


COMPOSITES = {
    "softmax": lambda t: ag.softmax(t, axis=-1),
    "log_softmax": lambda t: ag.log_softmax(t, axis=0),
    "logsumexp": lambda t: ag.logsumexp(t, axis=1),
    "maximum_minimum": lambda t: ag.maximum(t, 0.1) + ag.minimum(t, t[:1]),
    "clip_abs": lambda t: ag.clip(t, -0.5, 0.75) * ag.abs(t),
    "leaky_relu": lambda t: NF.leaky_relu(t, 0.2),
    "gelu": lambda t: NF.gelu(t),
    "bce_logits": lambda t: NF.binary_cross_entropy_with_logits(t, ag.tensor(np.eye(2, 4, dtype=np.float32)),
                                                               reduction="none"),
}


@pytest.mark.parametrize("name", sorted(COMPOSITES))
def test_functions_with_masks_and_shifts_export_op_by_op(name):
    """Their masks (greater, equal), signs and softmax's stop_gradient(max) shift are recorded
    primitives, so the functions export without a module pattern; onnxruntime matches tapegrad on
    another batch (a different max, other signs)."""
    g = np.random.default_rng(10)
    x = g.normal(size=(2, 4)).astype(np.float32)
    exported = export(COMPOSITES[name], x, None, dynamic_batch=name != "bce_logits")
    other = g.normal(size=(2, 4) if name == "bce_logits" else (5, 4)).astype(np.float32) * 3
    (got,) = session(exported).run(None, {"input": other})
    np.testing.assert_allclose(got, COMPOSITES[name](ag.tensor(other)).data, rtol=1e-6, atol=1e-6)


def test_softmax_modules_still_export_through_their_patterns():
    x = np.random.default_rng(10).normal(size=(2, 4)).astype(np.float32)
    for layer, ref in ((nn.Softmax(dim=1), ag.softmax), (nn.LogSoftmax(dim=1), ag.log_softmax)):
        exported = export(layer, x, None)
        assert [n.op_type for n in exported.graph.node] in (["Softmax"], ["LogSoftmax"])
        (got,) = session(exported).run(None, {"input": x[::-1].copy()})
        np.testing.assert_allclose(got, ref(ag.tensor(x[::-1].copy()), axis=1).data, rtol=0, atol=1e-6)


def test_non_float_inputs_are_refused():
    with pytest.raises(ExportError, match="example input 0 has dtype int64"):
        export(lambda x: x, np.ones((2, 2), np.int64), None)


def test_a_conv_pattern_that_does_not_fit_falls_back_to_primitives():
    conv = nn.Conv2d(2, 4, 3, stride=2, padding=1, dilation=2, groups=2)
    x = np.random.default_rng(6).random((3, 2, 9, 9), dtype=np.float32)
    exported = export(conv, x, None)
    assert [n.op_type for n in exported.graph.node] == ["Conv"]
    (got,) = session(exported).run(None, {"input": x})
    np.testing.assert_allclose(got, forward(conv, x), rtol=0, atol=1e-5)
    unbatched = export(conv, x[0], None, dynamic_batch=False)  # (C, H, W): no Conv pattern
    assert "Conv" not in {n.op_type for n in unbatched.graph.node}
    (got,) = session(unbatched).run(None, {"input": x[0]})
    np.testing.assert_allclose(got, forward(conv, x[0]), rtol=0, atol=1e-5)


def test_layers_beyond_the_reference_models():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.AvgPool2d(2), nn.MaxPool2d(3, stride=1, padding=1),
                          nn.BatchNorm2d(4), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 4 * 4, 5), nn.LeakyReLU(0.1),
                          nn.LogSoftmax(dim=1))
    x = np.random.default_rng(8).random((2, 3, 8, 8), dtype=np.float32)
    exported = export(model, x, None)
    ops = [n.op_type for n in exported.graph.node]
    assert {"Conv", "AveragePool", "MaxPool", "BatchNormalization", "Flatten", "Gemm"} <= set(ops)
    x5 = np.random.default_rng(9).random((5, 3, 8, 8), dtype=np.float32)
    (got,) = session(exported).run(None, {"input": x5})
    np.testing.assert_allclose(got, forward(model.eval(), x5), rtol=0, atol=1e-5)


def test_padded_pooling_primitive_by_primitive():
    """Max pooling pads with -inf through a constant of the batch's shape: exported as one row, expanded."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same"), nn.AvgPool2d(3, stride=2, padding=1),
                          nn.MaxPool2d(3, stride=1, padding=1), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 5))
    exported = export(model, np.zeros((2, 3, 8, 8), np.float32), None, patterns=False)
    assert "Expand" in {n.op_type for n in exported.graph.node}
    x = np.random.default_rng(11).normal(size=(5, 3, 8, 8)).astype(np.float32)
    (got,) = session(exported).run(None, {"input": x})
    np.testing.assert_allclose(got, forward(model.eval(), x), rtol=0, atol=1e-5)


@settings(max_examples=10)
@given(geometry=conv_geometries(), patterns=st.booleans(), batch=st.integers(1, 4))
def test_conv_geometries_match_onnxruntime(geometry, patterns, batch):
    g = geometry
    conv = nn.Conv2d(g["in_channels"], g["out_channels"], g["kernel"], stride=g["stride"], padding=g["padding"],
                     dilation=g["dilation"], groups=g["groups"], rng=0)
    rng = np.random.default_rng(12)
    x = rng.normal(size=(g["batch"], g["in_channels"], *g["size"])).astype(np.float32)
    exported = export(conv, x, None, patterns=patterns)
    assert ("Conv" in {n.op_type for n in exported.graph.node}) == patterns
    xb = rng.normal(size=(batch, g["in_channels"], *g["size"])).astype(np.float32)
    (got,) = session(exported).run(None, {"input": xb})
    np.testing.assert_allclose(got, forward(conv, xb), rtol=0, atol=1e-5)


@pytest.mark.parametrize("layer, shape, op", [
    (nn.Conv1d(2, 4, 3, stride=2, padding=2, dilation=2, groups=2), (2, 9), "Conv"),
    (nn.Conv1d(2, 3, 4, padding="same"), (2, 9), "Conv"),
    (nn.GELU(), (7,), "Erf"),
    (nn.BatchNorm1d(4), (4,), "BatchNormalization"),
])
def test_more_layer_patterns(layer, shape, op):
    rng = np.random.default_rng(13)
    exported = export(layer, rng.normal(size=(2, *shape)).astype(np.float32), None)
    assert op in {n.op_type for n in exported.graph.node}
    x = 3 * rng.normal(size=(5, *shape)).astype(np.float32)
    (got,) = session(exported).run(None, {"input": x})
    np.testing.assert_allclose(got, forward(layer.eval(), x), rtol=0, atol=1e-5)


# docs/export.md's table of graph sizes: (with patterns, primitive by primitive)
NODE_COUNTS = {"digits": (6, 31), "zhou": (4, 23), "escontrela": (9, 55), "nielsen-mlp": (5, 9),
               "mlp-l2": (4, 8), "nielsen-conv": (7, 30), "lenet-bn": (15, 88)}


@pytest.mark.parametrize("name", sorted(NODE_COUNTS))
def test_graph_sizes_are_the_documented_ones(name):
    model = build_model(name, MODELS[name].recipe.input_shape)
    x = np.zeros((2, *MODELS[name].recipe.input_shape), np.float32)
    sizes = tuple(len(export(model, x, None, patterns=p).graph.node) for p in (True, False))
    assert sizes == NODE_COUNTS[name]
    assert f"| `{name}` | {sizes[0]} | {sizes[1]} |" in (Path(__file__).resolve().parents[2] / "docs" / "export.md").read_text()
