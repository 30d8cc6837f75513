"""The random generators a model draws from, and their states (for checkpoints and step snapshots)."""
from __future__ import annotations

from typing import Any

import numpy as np

import nn


def generators(model: nn.Module) -> dict[str, np.random.Generator]:
    """Every numpy Generator a module keeps as `.rng` (Dropout), plus nn.init's default generator."""
    found = {"nn.init": nn.init.default_generator()}
    for name, module in model.named_modules():
        rng = getattr(module, "rng", None)
        if isinstance(rng, np.random.Generator):
            found[f"module:{name}"] = rng
    return found


def rng_states(model: nn.Module) -> dict[str, dict[str, Any]]:
    """`bit_generator.state` of every generator the model draws from (JSON-able dicts)."""
    return {name: g.bit_generator.state for name, g in generators(model).items()}


def set_rng_states(model: nn.Module, states: dict[str, dict[str, Any]]) -> None:
    found = generators(model)
    for name, state in states.items():
        if name not in found:
            raise KeyError(f"checkpoint has an RNG state for {name!r}, which this model does not have")
        found[name].bit_generator.state = state
