"""Optimizers, gradient clipping and learning-rate schedules with PyTorch's names.

optim needs only parameters (autograd Tensors with `.data` and `.grad`), never `nn`:

    >>> import numpy as np, autograd as ag, optim
    >>> w = ag.tensor(np.ones(3), requires_grad=True)
    >>> opt = optim.SGD([w], lr=0.1)
    >>> (w * w).sum().backward(); opt.step()
    >>> w.data
    array([0.8, 0.8, 0.8])
"""
from __future__ import annotations

from . import lr_scheduler
from .adam import Adam, AdamW
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "clip_grad_norm_", "clip_grad_value_", "lr_scheduler"]
