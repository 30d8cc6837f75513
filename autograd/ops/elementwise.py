"""Elementwise primitives. Every binary VJP reduces its cotangent to the operand's shape with
`sum_to`, so broadcasting is handled here once and nowhere else."""
from __future__ import annotations

import numpy as np

from ..primitive import defprim, shape_of
from ..tensor import Tensor
from .shape import sum_to


def _sigmoid(x):
    """Logistic function, stable for large |x| (via tanh)."""
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


add_p = defprim(
    "add", np.add,
    lambda g, ans, x, y: sum_to(g, shape_of(x)),
    lambda g, ans, x, y: sum_to(g, shape_of(y)),
    domain=("real", "real"), doc="x + y, broadcasting")
sub_p = defprim(
    "sub", np.subtract,
    lambda g, ans, x, y: sum_to(g, shape_of(x)),
    lambda g, ans, x, y: sum_to(-g, shape_of(y)),
    domain=("real", "real"), doc="x - y, broadcasting")
mul_p = defprim(
    "mul", np.multiply,
    lambda g, ans, x, y: sum_to(g * y, shape_of(x)),
    lambda g, ans, x, y: sum_to(g * x, shape_of(y)),
    domain=("real", "real"), doc="x * y, broadcasting")
div_p = defprim(
    "div", np.divide,
    lambda g, ans, x, y: sum_to(g / y, shape_of(x)),
    lambda g, ans, x, y: sum_to(-g * x / (y * y), shape_of(y)),
    domain=("real", "nonzero"), doc="x / y, broadcasting")
pow_p = defprim(
    "pow", np.power,
    lambda g, ans, x, y: sum_to(g * y * x ** (y - 1), shape_of(x)),
    lambda g, ans, x, y: sum_to(g * ans * (log_p(x) if isinstance(x, Tensor) else np.log(x).tolist()), shape_of(y)),
    domain=("positive", "real"), save_output=True, doc="x ** y, broadcasting (x > 0 where y is differentiated)")
neg_p = defprim("neg", np.negative, lambda g, ans, x: -g, doc="-x")
exp_p = defprim("exp", np.exp, lambda g, ans, x: g * ans, save_output=True, doc="e ** x")
log_p = defprim("log", np.log, lambda g, ans, x: g / x, domain=("positive",), doc="natural logarithm")
tanh_p = defprim("tanh", np.tanh, lambda g, ans, x: g * (1 - ans * ans), save_output=True, doc="hyperbolic tangent")
sigmoid_p = defprim("sigmoid", _sigmoid, lambda g, ans, x: g * (ans * (1 - ans)), save_output=True)
def _relu(x):
    """max(x, 0); its gradient mask is a constant, so relu's second derivative is 0."""
    return np.maximum(x, 0)


relu_p = defprim("relu", _relu, lambda g, ans, x: g * (x.data > 0), domain=("nonzero",), smooth=False)
where_p = defprim(
    "where", np.where,
    None,
    lambda g, ans, c, x, y: sum_to(where_p(c, g, 0), shape_of(x)),
    lambda g, ans, c, x, y: sum_to(where_p(c, 0, g), shape_of(y)),
    domain=("bool", "real", "real"), doc="x where the mask holds, else y (both branches are evaluated)")
