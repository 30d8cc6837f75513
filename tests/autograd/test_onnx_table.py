"""The primitive -> ONNX table: every registered primitive has an entry, and random programs over
the primitives give onnxruntime's outputs equal to tapegrad's."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import autograd as ag  # noqa: E402
from autograd.onnx import TRANSLATIONS, ExportError, export, translates  # noqa: E402
from autograd.primitive import REGISTRY, defprim, unregister  # noqa: E402
from autograd.tensor import Tensor  # noqa: E402
from autograd.testing.strategies import primitive_args  # noqa: E402

EXPORTABLE = sorted(TRANSLATIONS)
# elementwise steps appended to a drawn application: total functions, so any input is valid
FOLLOW_UPS = {
    "tanh": lambda y, c: ag.tanh(y),
    "sigmoid": lambda y, c: ag.sigmoid(y),
    "neg": lambda y, c: -y,
    "relu": lambda y, c: ag.relu(y),
    "add": lambda y, c: y + c,
    "mul": lambda y, c: y * c,
}


def run_onnx(model, arrays):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    return sess.run(None, dict(zip(names, arrays)))


def test_every_primitive_has_a_translation():
    missing = sorted(set(REGISTRY) - set(TRANSLATIONS))
    assert not missing, f"primitives without an ONNX translation in autograd/onnx/table.py: {missing}"


@st.composite
def programs(draw, name):
    """One drawn application of primitive `name`, then up to two elementwise steps; the float Tensor
    arguments are the program's inputs, everything else is a constant of the program."""
    args, params = draw(primitive_args(name))
    steps = draw(st.lists(st.tuples(st.sampled_from(sorted(FOLLOW_UPS)), st.floats(-2, 2)), max_size=2))
    return args, params, steps


@pytest.mark.parametrize("name", EXPORTABLE)
@settings(max_examples=6)
@given(data=st.data())
def test_random_programs_match_onnxruntime(name, data):
    args, params, steps = data.draw(programs(name))
    slots = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.dtype.kind == "f"]
    if not slots:
        pytest.fail(f"{name}: drawn arguments have no float tensor to feed")

    def program(*xs):
        full = list(args)
        for i, x in zip(slots, xs):
            full[i] = x
        y = REGISTRY[name](*full, **params)
        outs = [y]
        if y.dtype == bool and steps:  # a mask: the float follow-ups read it as 0/1
            y = y.astype(np.float64)
        for step, c in steps:
            y = FOLLOW_UPS[step](y, c)
            outs.append(y)
        return tuple(outs)

    inputs = [np.asarray(args[i].data) for i in slots]
    want = [o.data for o in program(*[Tensor(a) for a in inputs])]
    model = export(program, inputs, None, dynamic_batch=False)
    got = run_onnx(model, inputs)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, w, rtol=1e-7, atol=1e-9)


def test_a_primitive_without_translation_names_itself_and_the_line():
    cube = defprim("cube_for_onnx_test", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x)
    try:
        with pytest.raises(ExportError) as info:
            export(lambda x: cube(x) + 1.0, np.ones((2, 3), np.float32), None)
        message = str(info.value)
        assert "'cube_for_onnx_test' has no ONNX translation" in message
        assert "test_onnx_table.py" in message and "cube(x) + 1.0" in message
    finally:
        unregister("cube_for_onnx_test")


def test_a_user_translation_is_used():
    cube = defprim("cube_for_onnx_test2", lambda x: x ** 3, lambda g, ans, x: g * 3 * x * x)
    try:
        translates("cube_for_onnx_test2")(lambda s: s.node("Mul", [s.node("Mul", [s.operand(0)] * 2), s.operand(0)]))
        x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
        (got,) = run_onnx(export(lambda t: cube(t), x, None), [x])
        np.testing.assert_allclose(got, x ** 3, rtol=1e-6)
    finally:
        unregister("cube_for_onnx_test2")
        TRANSLATIONS.pop("cube_for_onnx_test2", None)
