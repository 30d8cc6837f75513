"""Gradient clipping, in place on each parameter's `.grad.data` (PyTorch's `torch.nn.utils` names)."""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from autograd import Tensor
from autograd.capture import is_tracing, opaque

from . import _args as A

ParamsOrTensor = Tensor | Iterable[Tensor]


def _grads(parameters: ParamsOrTensor, who: str) -> list[np.ndarray]:
    """The writable gradient arrays of the parameters that have one."""
    grads = []
    for i, p in enumerate(A.params(who, parameters, "parameters")):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: parameters must be Tensors, but item {i} is {type(p).__name__}")
        if p.grad is None:
            continue
        g = p.grad
        if g._node is not None or not g.data.flags.writeable:
            # a gradient recorded under create_graph (or a read-only view): clip a private copy
            g = p.grad = Tensor._make(np.array(g.data, copy=True))
        grads.append(g.data)
    return grads


def clip_grad_value_(parameters: ParamsOrTensor, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value]."""
    who = "clip_grad_value_"
    clip_value = A.number(who, "clip_value", clip_value, A.NON_NEGATIVE_OR_INF)
    for g in _grads(parameters, who):
        np.clip(g, -clip_value, clip_value, out=g)


def _norm(g: np.ndarray, norm_type: float) -> float:
    if norm_type == math.inf:
        return float(np.max(np.abs(g))) if g.size else 0.0
    if norm_type == -math.inf:
        return float(np.min(np.abs(g))) if g.size else math.inf
    if norm_type == 2.0:
        flat = g.ravel()
        return math.sqrt(float(np.dot(flat, flat)))
    if norm_type == 1.0:
        return float(np.sum(np.abs(g)))
    if norm_type == 0:
        return float(np.count_nonzero(g))
    return float(np.sum(np.abs(g) ** norm_type) ** (1.0 / norm_type))


def clip_grad_norm_(
    parameters: ParamsOrTensor,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint `norm_type`-norm is at most `max_norm`.

    Returns the joint norm before clipping as a 0-d float32 Tensor (like torch: the norm of the
    per-parameter norms). Gradients are left alone when the norm is already small enough.
    """
    who = "clip_grad_norm_"
    max_norm = A.number(who, "max_norm", max_norm, A.NON_NEGATIVE_OR_INF)
    norm_type = A.number(who, "norm_type", float(norm_type) if norm_type in ("inf", "-inf") else norm_type,
                         A.ANY_OR_INF)
    grads = _grads(parameters, who)
    if not grads:
        return Tensor._make(np.asarray(0.0, dtype=np.float32))
    if is_tracing():  # compile: the norm decides a branch, so the whole clip is one replayed equation
        clip = lambda *gs: _clip_by_norm(list(gs), max_norm, norm_type, error_if_nonfinite).data  # noqa: E731
        return Tensor._make(opaque("clip_grad_norm_", clip, *grads))
    return _clip_by_norm(grads, max_norm, norm_type, error_if_nonfinite)


def _clip_by_norm(grads: list[np.ndarray], max_norm: float, norm_type: float, error_if_nonfinite: bool) -> Tensor:
    norms = np.array([_norm(g, norm_type) for g in grads], dtype=np.float64)
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is non-finite ({total}), so "
            "they cannot be clipped; pass error_if_nonfinite=False to scale them anyway"
        )
    coef = max_norm / (total + 1e-6)
    # torch clamps the coefficient at 1 (small gradients are not scaled up) and lets a NaN through
    if coef < 1.0 or math.isnan(coef):
        with np.errstate(invalid="ignore"):  # inf * 0 = nan for a non-finite gradient, as in torch
            for g in grads:
                g *= coef
    dtype = np.result_type(*(g.dtype for g in grads))
    return Tensor._make(np.asarray(total, dtype=dtype))
