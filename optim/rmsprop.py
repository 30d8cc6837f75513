"""RMSprop (Hinton's), with PyTorch's options: momentum, centered, L2 weight decay, maximize.

PyTorch's update, per parameter with gradient g (negated when `maximize`):
    g <- g + weight_decay * p
    s <- alpha * s + (1 - alpha) * g * g
    centered: a <- alpha * a + (1 - alpha) * g;  d = sqrt(s - a * a) + eps;  else d = sqrt(s) + eps
    momentum: b <- momentum * b + g / d;  p <- p - lr * b;   else p <- p - lr * g / d
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _args as A
from .optimizer import Optimizer, ParamsT, ema_square_


class RMSprop(Optimizer):
    """`RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False, maximize=False)`."""

    _ranges = {"lr": A.LR, "alpha": A.UNIT, "eps": A.NON_NEGATIVE, "weight_decay": A.NON_NEGATIVE,
               "momentum": A.NON_NEGATIVE}
    _state_required = ("step", "square_avg")
    _state_arrays = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize)
        super().__init__(params, defaults)

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        momentum, weight_decay = float(group["momentum"]), float(group["weight_decay"])
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(p)
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(p)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p)
        state["step"] += 1
        if group["maximize"]:
            g = np.negative(g)
        if weight_decay != 0:
            g = g + weight_decay * p
        s = state["square_avg"]
        tmp = ema_square_(s, g, alpha)
        if group["centered"]:
            a = state.setdefault("grad_avg", np.zeros_like(p))
            np.subtract(a, g, out=a)  # a <- alpha * (a - g) + g, the lerp without a temporary
            a *= alpha
            a += g
            np.multiply(a, a, out=tmp)
            np.subtract(s, tmp, out=tmp)
            denom = np.sqrt(tmp, out=tmp)
        else:
            denom = np.sqrt(s, out=tmp)
        denom += eps
        if momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(p))
            buf *= momentum
            buf += np.divide(g, denom, out=denom)
            np.multiply(buf, lr, out=tmp)
        else:
            np.divide(g, denom, out=tmp)
            tmp *= lr
        p -= tmp
