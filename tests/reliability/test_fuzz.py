"""Hypothesis fuzzing of the public API: random shapes, dtypes and values in; out comes a result or
a documented tapegrad error (never a raw NumPy exception), and no input is ever mutated."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import autograd as ag
import nn.functional as F
from autograd.errors import TapegradError

DTYPES = st.sampled_from([np.float32, np.float64, np.int64, np.bool_])


@st.composite
def any_array(draw, max_dims=4):
    dtype = draw(DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=4))
    if dtype == np.bool_:
        return draw(hnp.arrays(dtype, shape))
    elements = st.integers(-3, 3) if dtype == np.int64 else st.floats(-3, 3, width=32)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _t(a, grad):
    return ag.tensor(a, requires_grad=grad and a.dtype.kind == "f")


BINARY = [ag.add, ag.subtract, ag.multiply, ag.divide, ag.matmul, ag.maximum, ag.minimum, ag.power,
          lambda x, y: ag.where(x > 0, x, y), lambda x, y: ag.cat([x, y], 0), lambda x, y: ag.stack([x, y]),
          lambda x, y: ag.einsum("ij,jk->ik", x, y), F.linear, F.mse_loss, F.conv2d,
          lambda x, y: F.cross_entropy(x, y), lambda x, y: x.reshape(y.shape)]
UNARY = [ag.exp, ag.log, ag.sqrt, ag.tanh, ag.sigmoid, ag.relu, ag.abs, ag.softmax, ag.log_softmax,
         ag.logsumexp, ag.mean, ag.var, ag.max, ag.argmax, lambda x: x.sum(axis=1), lambda x: x.T,
         lambda x: x[0], lambda x: x[..., None, 1:], lambda x: x.flatten(1), lambda x: ag.pad(x, 1),
         lambda x: x.permute(1, 0), lambda x: F.max_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2),
         lambda x: F.batch_norm(x, None, None, training=True), lambda x: F.layer_norm(x, x.shape[-1:]),
         lambda x: F.dropout(x, 0.5, rng=0)]


def _call_and_check(fn, arrays, grad):
    copies = [a.copy() for a in arrays]
    tensors = [_t(a, grad) for a in arrays]
    try:
        out = fn(*tensors)
        if grad and isinstance(out, ag.Tensor) and out.requires_grad:
            out.sum().backward()
    except TapegradError:
        pass  # documented: ShapeError, DtypeError, GraphError (with op and shapes, see test_bad_inputs)
    except (ValueError, TypeError, IndexError, ZeroDivisionError) as exc:
        # allowed only when raised by tapegrad itself with a message naming the operation
        assert "numpy" not in type(exc).__module__, f"raw NumPy error escaped: {exc!r}"
        assert exc.__traceback__ is not None
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame.f_code.co_filename)
            tb = tb.tb_next
        assert "site-packages/numpy" not in frames[-1], f"{type(exc).__name__} from inside NumPy: {exc}"
    for before, after in zip(copies, arrays):
        np.testing.assert_array_equal(before, after)


FUZZ = settings(max_examples=10 * settings().max_examples)  # cheap examples: draw many


@FUZZ
@given(fn=st.sampled_from(UNARY), a=any_array(), grad=st.booleans())
def test_unary_public_api(fn, a, grad):
    with np.errstate(all="ignore"):
        _call_and_check(fn, [a], grad)


@FUZZ
@given(fn=st.sampled_from(BINARY), a=any_array(), b=any_array(), grad=st.booleans())
def test_binary_public_api(fn, a, b, grad):
    with np.errstate(all="ignore"):
        _call_and_check(fn, [a, b], grad)
