"""Stochastic gradient descent with optional momentum, dampening, Nesterov and L2 weight decay.

PyTorch's update, per parameter with gradient g (negated when `maximize`):
    g <- g + weight_decay * p
    b <- g at the first step, else momentum * b + (1 - dampening) * g
    g <- g + momentum * b (nesterov) or b
    p <- p - lr * g
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from . import _args as A
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """`SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, maximize=False)`."""


    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

    _ranges = {"lr": A.LR, "momentum": A.NON_NEGATIVE, "dampening": A.UNIT, "weight_decay": A.NON_NEGATIVE}
    _state_arrays = ("momentum_buffer",)

    def _validate(self, options: Mapping[str, Any]) -> None:
        super()._validate(options)
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                f"SGD: Nesterov momentum requires a momentum and zero dampening, got momentum="
                f"{options['momentum']}, dampening={options['dampening']}"
            )

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        # float(): a NumPy float64 hyperparameter would otherwise upcast float32 temporaries
        lr, momentum, weight_decay = float(group["lr"]), float(group["momentum"]), float(group["weight_decay"])
        if group["maximize"]:
            g = np.negative(g)
        if weight_decay != 0:
            g = g + weight_decay * p  # a new array: the stored gradient is never modified
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, copy=True)  # 0-d safe
            else:
                buf *= momentum
                if group["dampening"] == 0:
                    buf += g
                else:
                    buf += (1 - group["dampening"]) * g
            g = g + momentum * buf if group["nesterov"] else buf
        p -= lr * g
