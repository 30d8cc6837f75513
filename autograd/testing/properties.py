"""`check_grads_property`: `check_grads` over Hypothesis-drawn inputs, shrunk to the smallest failure.

`check_grads(f, x)` checks one input. A bug that shows only for some shapes or values is found by
drawing many inputs; Hypothesis then shrinks a failing one to the smallest (fewest dimensions,
shortest sides, simplest values), and the error message shows that input.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ..tensor import Tensor
from .gradcheck import GradientCheckError, check_grads


def check_grads_property(
    f: Callable[..., Tensor],
    *strategies: st.SearchStrategy,
    max_examples: int | None = None,
    **check_options: Any,
) -> None:
    """Run `check_grads(f, *args, **check_options)` on arguments drawn from `strategies` (one per
    positional argument: ndarrays, Tensors or constants); raise GradientCheckError for the smallest
    failing arguments Hypothesis finds, with those arguments in the message.

        check_grads_property(my_softplus, S.arrays(S.shapes(max_dims=2)), order=2)

    max_examples: how many inputs to draw (default: the active Hypothesis profile's).
    """
    if not strategies:
        raise ValueError("check_grads_property: give one Hypothesis strategy per argument of f")

    def one(args: tuple) -> None:
        try:
            check_grads(f, *args, **check_options)
        except GradientCheckError as exc:
            raise GradientCheckError(f"{exc}\n  for the smallest failing input found:\n{_describe(args)}") from None

    run = given(st.tuples(*strategies))(one)
    if max_examples is not None:
        run = settings(max_examples=max_examples)(run)
    run()


def _describe(args: tuple) -> str:
    lines = []
    for k, a in enumerate(args):
        data = a.data if isinstance(a, Tensor) else a
        if isinstance(data, np.ndarray):
            text = np.array2string(data, precision=4, threshold=20, separator=", ").replace("\n", " ")
            lines.append(f"    argument {k}: shape {data.shape}, {data.dtype}: {text}")
        else:
            lines.append(f"    argument {k}: {data!r}")
    return "\n".join(lines)
