"""`nn.utils`: PyTorch's home for gradient clipping. The implementations live in `optim.clip`
(optim needs only parameters, not nn); they are looked up on first use, so `nn` imports even when
`optim` is absent."""
from __future__ import annotations

from typing import Any

_FROM_OPTIM = ("clip_grad_value_", "clip_grad_norm_")

__all__ = list(_FROM_OPTIM)


def __getattr__(name: str) -> Any:
    if name in _FROM_OPTIM:
        from optim import clip

        return getattr(clip, name)
    raise AttributeError(f"module 'nn.utils' has no attribute '{name}'")
