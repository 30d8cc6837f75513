"""Argument checks for optimizers, gradient clipping and LR schedulers: one place for each rule.

Every hyperparameter goes through `number` (type, finiteness, sign and range) or `integer`; the
parameters through `params`. Messages are one line naming the optimizer (or function) and the
argument, e.g. `SGD: invalid learning rate: '0.1' (lr must be a number, got str)`.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from autograd import Tensor


@dataclass(frozen=True)
class Range:
    """Where a number may lie; NaN never does, and +-inf only where the bounds include them."""

    low: float
    high: float
    low_open: bool
    high_open: bool
    text: str

    def __contains__(self, v: float) -> bool:
        above = self.low < v if self.low_open else self.low <= v
        below = v < self.high if self.high_open else v <= self.high
        return above and below


NON_NEGATIVE = Range(0.0, math.inf, False, True, "a finite number >= 0")
NON_NEGATIVE_OR_INF = Range(0.0, math.inf, False, False, "a number >= 0 (inf allowed)")
POSITIVE = Range(0.0, math.inf, True, True, "a finite number > 0")
UNIT = Range(0.0, 1.0, False, False, "in [0, 1]")
UNIT_HALF_OPEN = Range(0.0, 1.0, False, True, "in [0, 1)")
UNIT_OPEN_LOW = Range(0.0, 1.0, True, False, "in (0, 1]")
# lr=inf is accepted, as in PyTorch: it is the way to force a divergence (tapegrad's own tests do);
# NaN, negative rates and non-numbers are not.
LR = NON_NEGATIVE_OR_INF
ANY_OR_INF = Range(-math.inf, math.inf, False, False, "a number (+-inf allowed)")

# PyTorch's words for the common hyperparameters ("invalid learning rate: -1"); others read
# "<name> must be ...".
_LABELS = {"lr": "learning rate", "eps": "epsilon value", "weight_decay": "weight_decay value",
           "momentum": "momentum value", "dampening": "dampening value", "alpha": "alpha value",
           "betas": "beta parameter"}


def number(who: str, name: str, value: Any, where: Range = NON_NEGATIVE, index: int | None = None) -> float:
    """`value` as a float inside `where`; TypeError for a non-number (str, bool, a method...),
    ValueError for NaN or a value out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        exc, rule, kind = TypeError, "a number", type(value).__name__
    elif value not in where:
        exc, rule, kind = ValueError, where.text, None
    else:
        return float(value)
    shown = name if index is None else f"{name}[{index}]"
    label = _LABELS.get(name)
    if label:  # PyTorch's form: "invalid learning rate: -1.0", then the rule
        at = "" if index is None else f" at index {index}"
        raise exc(f"{who}: invalid {label}{at}: {value!r} ({shown} must be {rule}" + (f", not {kind})" if kind else ")"))
    raise exc(f"{who}: {shown} must be {rule}, got {value!r}" + (f" ({kind})" if kind else ""))


def integer(who: str, name: str, value: Any, minimum: int = 1) -> int:
    """An int (not a bool or a float) at least `minimum`."""
    text = {1: "a positive integer", 0: "a non-negative integer"}.get(minimum, f"an integer >= {minimum}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{who}: {name} must be {text}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{who}: {name} must be {text}, got {value!r}")
    return int(value)


def params(who: str, value: Any, what: str = "params") -> list:
    """The parameters argument as a list; a method (`model.parameters` without the call), a Module,
    a dict or a lone Tensor each get their own message."""
    if isinstance(value, Tensor):
        return [value]
    if inspect.ismethod(value) or inspect.isfunction(value):
        owner = getattr(value, "__self__", None)
        name = f"{type(owner).__name__}.{value.__name__}" if owner is not None else value.__qualname__
        raise TypeError(f"{who}: {what} is the method {name} itself, not its result; call it: model.parameters()")
    if callable(getattr(value, "parameters", None)):
        raise TypeError(f"{who}: {what} is a {type(value).__name__} (a module); pass model.parameters()")
    if isinstance(value, dict):
        raise TypeError(f"{who}: {what} is a dict; pass an iterable of Tensors, or a list of param-group dicts "
                        "[{'params': ...}]")
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"{who}: {what} must be an iterable of Tensors, got {type(value).__name__}; pass "
                        "model.parameters()") from None
