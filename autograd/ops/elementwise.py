"""Elementwise primitives. Every binary VJP reduces its cotangent to the operand's shape with
`sum_to`, so broadcasting is handled here once and nowhere else."""
from __future__ import annotations

import numpy as np

from ..batching import elementwise as batch_elementwise
from ..primitive import defprim, shape_of
from ..tensor import Tensor
from .shape import sum_to


def _plus(a, b):
    """Sum of two tangent terms, either of which may be zero (None)."""
    return b if a is None else a if b is None else add_p(a, b)


def _times(t, factor):
    """A tangent times a factor, or zero (None) for a zero tangent."""
    return None if t is None else mul_p(t, factor)


def _factor(fn, ans):
    """A JVP's derivative factor fn(ans), written once with operators: on the array when `ans` carries
    no derivative of its own (plain, off any tape: one NumPy expression instead of primitives),
    else on the Tensor, so the tangent stays differentiable (jvp of jvp, grad of jvp)."""
    return fn(ans.data) if type(ans) is Tensor and not ans.requires_grad else fn(ans)


def _sigmoid(x):
    """Logistic function, stable for large |x| (via tanh)."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def _pow_jvp(ts, ans, x, y):
    tx, ty = ts
    dx = None if tx is None else mul_p(tx, mul_p(y, pow_p(x, sub_p(y, 1) if isinstance(y, Tensor) else y - 1)))
    dy = None if ty is None else mul_p(ty, mul_p(ans, log_p(x) if isinstance(x, Tensor) else np.log(x).tolist()))
    return _plus(dx, dy)


add_p = defprim(
    "add", np.add,
    lambda g, ans, x, y: sum_to(g, shape_of(x)),
    lambda g, ans, x, y: sum_to(g, shape_of(y)),
    domain=("real", "real"), jvp=lambda ts, ans, x, y: _plus(*ts), batch=batch_elementwise("add"), elementwise=True,
    symmetric=True, doc="x + y, broadcasting")
sub_p = defprim(
    "sub", np.subtract,
    lambda g, ans, x, y: sum_to(g, shape_of(x)),
    lambda g, ans, x, y: -sum_to(g, shape_of(y)),  # negate the reduced cotangent: a broadcast y's is small
    domain=("real", "real"), jvp=lambda ts, ans, x, y: _plus(ts[0], _times(ts[1], -1)), batch=batch_elementwise("sub"), elementwise=True,
    doc="x - y, broadcasting")
mul_p = defprim(
    "mul", np.multiply,
    lambda g, ans, x, y: sum_to(g * y, shape_of(x)),
    lambda g, ans, x, y: sum_to(g * x, shape_of(y)),
    domain=("real", "real"), batch=batch_elementwise("mul"), elementwise=True,
    jvp=lambda ts, ans, x, y: _plus(_times(ts[0], y), _times(ts[1], x)),
    symmetric=True, doc="x * y, broadcasting")
div_p = defprim(
    "div", np.divide,
    lambda g, ans, x, y: sum_to(g / y, shape_of(x)),
    lambda g, ans, x, y: sum_to(-g * x / (y * y), shape_of(y)),
    domain=("real", "nonzero"), batch=batch_elementwise("div"), elementwise=True,
    jvp=lambda ts, ans, x, y: div_p(_plus(ts[0], _times(ts[1], neg_p(ans))), y),  # (tx - ty * x / y) / y
    doc="x / y, broadcasting")
pow_p = defprim(
    "pow", np.power,
    lambda g, ans, x, y: sum_to(g * y * x ** (y - 1), shape_of(x)),
    lambda g, ans, x, y: sum_to(g * ans * (log_p(x) if isinstance(x, Tensor) else np.log(x).tolist()), shape_of(y)),
    domain=("positive", "real"), save_output=True, jvp=_pow_jvp, batch=batch_elementwise("pow"), elementwise=True,
    doc="x ** y, broadcasting (x > 0 where y is differentiated)")
neg_p = defprim("neg", np.negative, lambda g, ans, x: -g, doc="-x", jvp="linear", batch=batch_elementwise("neg"), elementwise=True)
exp_p = defprim("exp", np.exp, lambda g, ans, x: g * ans, save_output=True, doc="e ** x",
                jvp=lambda ts, ans, x: mul_p(ts[0], ans), batch=batch_elementwise("exp"), elementwise=True)
log_p = defprim("log", np.log, lambda g, ans, x: g / x, domain=("positive",), doc="natural logarithm",
                jvp=lambda ts, ans, x: div_p(ts[0], x), batch=batch_elementwise("log"), elementwise=True)
tanh_p = defprim("tanh", np.tanh, lambda g, ans, x: g * (1 - ans * ans), save_output=True, doc="hyperbolic tangent",
                 jvp=lambda ts, ans, x: mul_p(ts[0], _factor(lambda a: 1 - a * a, ans)), batch=batch_elementwise("tanh"), elementwise=True)
sigmoid_p = defprim("sigmoid", _sigmoid, lambda g, ans, x: g * (ans * (1 - ans)), save_output=True,
                    jvp=lambda ts, ans, x: mul_p(ts[0], _factor(lambda a: a * (1 - a), ans)),
                    batch=batch_elementwise("sigmoid"), elementwise=True)
def _relu(x):
    """max(x, 0); its gradient mask is a constant, so relu's second derivative is 0."""
    return np.maximum(x, 0)


relu_p = defprim("relu", _relu, lambda g, ans, x: g * (x.data > 0), domain=("nonzero",), smooth=False,
                 jvp=lambda ts, ans, x: mul_p(ts[0], x.data > 0), batch=batch_elementwise("relu"), elementwise=True)
where_p = defprim(
    "where", np.where,
    None,
    lambda g, ans, c, x, y: sum_to(where_p(c, g, 0), shape_of(x)),
    lambda g, ans, c, x, y: sum_to(where_p(c, 0, g), shape_of(y)),
    jvp=lambda ts, ans, c, x, y: where_p(c, 0 if ts[1] is None else ts[1], 0 if ts[2] is None else ts[2]),
    batch=batch_elementwise("where"),
    domain=("bool", "real", "real"), doc="x where the mask holds, else y (both branches are evaluated)")


# --- values without a derivative: masks, signs and shifts become recorded ops, not NumPy constants ---
def _zero_jvp(ts, ans, *args):
    """The tangent of a piecewise-constant output (or of stop_gradient): zero, shaped like the
    first nonzero input tangent (the trace broadcasts it to the output)."""
    return mul_p(next(t for t in ts if t is not None), 0.0)


def _identity(x):
    """x itself (a copy): the value passes, the derivative does not."""
    return np.positive(x)


greater_p = defprim("greater", np.greater, None, None, domain=("real", "real"), smooth=False,
                    jvp=_zero_jvp, batch=batch_elementwise("greater"), elementwise=True,
                    doc="x > y as a bool mask, broadcasting; no derivative (less(x, y) is greater(y, x))")
equal_p = defprim("equal", np.equal, None, None, domain=("real", "real"), smooth=False,
                  jvp=_zero_jvp, batch=batch_elementwise("equal"), elementwise=True,
                  doc="x == y as a bool mask, broadcasting; no derivative (integer labels against class ids)")
sign_p = defprim("sign", np.sign, None, smooth=False, jvp=_zero_jvp, batch=batch_elementwise("sign"), elementwise=True,
                 doc="-1, 0 or 1; its derivative is zero almost everywhere, so it has none")
stop_gradient_p = defprim("stop_gradient", _identity, None, jvp=_zero_jvp, batch=batch_elementwise("stop_gradient"),
                          doc="x, with no derivative flowing through (softmax's stability shift)")
