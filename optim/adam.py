"""Adam (L2 weight decay added to the gradient) and AdamW (decoupled weight decay).

PyTorch's update, per parameter with gradient g (negated when `maximize`), at step t:
    AdamW: p <- p * (1 - lr * weight_decay)        Adam: g <- g + weight_decay * p
    m <- beta1 * m + (1 - beta1) * g
    v <- beta2 * v + (1 - beta2) * g * g           (amsgrad: v_max <- max(v_max, v), used below)
    p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from . import _args as A
from .optimizer import Optimizer, ParamsT, ema_square_


class Adam(Optimizer):
    """`Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, maximize=False)`."""

    _decoupled = False  # AdamW flips this: weight decay shrinks p instead of adding to the gradient
    _ranges = {"lr": A.LR, "betas": A.UNIT_HALF_OPEN, "eps": A.NON_NEGATIVE, "weight_decay": A.NON_NEGATIVE}
    _state_required = ("step", "exp_avg", "exp_avg_sq")
    _state_arrays = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        betas = tuple(betas) if isinstance(betas, (list, tuple)) else betas  # anything else: _validate says so
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
        super().__init__(params, defaults)

    def _validate(self, options: Mapping[str, Any]) -> None:
        betas = options["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{type(self).__name__}: betas must be a pair (beta1, beta2), got {betas!r}")
        super()._validate(options | {"betas": tuple(betas)})

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] += 1
        step = state["step"]
        if group["maximize"]:
            g = np.negative(g)
        if weight_decay != 0:
            if self._decoupled:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # m <- beta1 * m + (1 - beta1) * g, written as beta1 * (m - g) + g to need no temporary
        np.subtract(m, g, out=m)
        m *= beta1
        m += g
        tmp = ema_square_(v, g, beta2)
        if group["amsgrad"]:
            # a checkpoint from a run without amsgrad has no max yet: start it at zero, like PyTorch
            v_max = state.setdefault("max_exp_avg_sq", np.zeros_like(p))
            np.maximum(v_max, v, out=v_max)
            v = v_max
        step_size = lr / (1 - beta1**step)
        denom = np.sqrt(v, out=tmp)
        denom /= math.sqrt(1 - beta2**step)
        denom += eps
        update = np.divide(m, denom, out=tmp)
        update *= step_size
        p -= update


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): `AdamW(..., weight_decay=1e-2)`."""

    _decoupled = True

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize)
