"""Hypothesis strategies for tensors, shapes and primitive arguments, built on hypothesis.extra.numpy.

Public: users test their own functions and primitives with them.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..ops.shape import window_geometry
from ..primitive import REGISTRY, Primitive
from ..tensor import Tensor

__all__ = [
    "st", "hnp", "DOMAINS", "elements", "separated", "arrays", "tensors", "shapes", "broadcastable_shapes", "broadcast_target",
    "basic_indices", "advanced_indices", "axes", "window_geometries", "conv_geometries", "primitive_args",
]

#: value ranges per domain name; kept away from kinks and poles so finite differences are exact enough
DOMAINS: dict[str, tuple[float, float]] = {
    "real": (-2.0, 2.0),
    "positive": (0.5, 2.0),
    "nonzero": (0.3, 2.0),  # magnitude; the sign is drawn separately
    "unit": (-0.9, 0.9),
}


def elements(domain: str = "real") -> st.SearchStrategy[float]:
    """Floats from a named domain (see DOMAINS)."""
    lo, hi = DOMAINS[domain]
    mag = st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=64)
    if domain == "nonzero":
        return st.tuples(mag, st.sampled_from([-1.0, 1.0])).map(lambda t: t[0] * t[1])
    return mag


_elements = elements


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 4) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def separated(step: float = 0.25, bound: float = 2.0) -> st.SearchStrategy[float]:
    """Values on a grid: distinct ones stay `step` apart, so finite differences never cross a tie
    (what max, sorting and pooling need)."""
    n = int(bound / step)
    return st.integers(-n, n).map(lambda i: i * step)


def arrays(shape=None, dtype=np.float64, domain: str = "real", unique: bool = False,
           elements: st.SearchStrategy | None = None) -> st.SearchStrategy:
    """ndarrays of `dtype` with values from `domain` ('bool' gives masks) or from `elements`."""
    shape = shapes() if shape is None else shape
    if domain == "bool":
        return hnp.arrays(bool, shape)
    return hnp.arrays(dtype, shape, elements=elements if elements is not None else _elements(domain), unique=unique)


def tensors(shape=None, dtype=np.float64, domain: str = "real", unique: bool = False,
            elements: st.SearchStrategy | None = None, requires_grad: bool = False) -> st.SearchStrategy[Tensor]:
    """Tensors (float64 by default, for gradient checks) drawn from a value domain."""
    return arrays(shape, dtype, domain, unique, elements).map(
        lambda a: Tensor(a, requires_grad=requires_grad and a.dtype.kind == "f"))


def broadcastable_shapes(n: int = 2, max_dims: int = 3, max_side: int = 3) -> st.SearchStrategy:
    """n shapes that broadcast together (NumPy rules)."""
    return hnp.mutually_broadcastable_shapes(num_shapes=n, max_dims=max_dims, max_side=max_side).map(
        lambda b: b.input_shapes)


@st.composite
def broadcast_target(draw) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(small, big): `small` broadcasts to `big`."""
    big = draw(shapes(min_dims=0, max_dims=3, max_side=3))
    keep = draw(st.integers(0, len(big)))
    small = tuple(1 if draw(st.booleans()) else s for s in big[len(big) - keep:])
    return small, big


def basic_indices(shape) -> st.SearchStrategy:
    """ints, slices (with steps), None and Ellipsis, always as a tuple."""
    return hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True).map(
        lambda i: i if isinstance(i, tuple) else (i,))


def advanced_indices(shape) -> st.SearchStrategy:
    """Integer-array indices, duplicates included (they exercise scatter_add's summing)."""
    return hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4))


@st.composite
def axes(draw, ndim: int):
    """None (all axes) or a tuple of distinct axes."""
    if ndim == 0 or draw(st.booleans()):
        return None
    return tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1, max_size=ndim))))


@st.composite
def window_geometries(draw, n: int = 2, max_batch_dims: int = 2):
    """(input shape, kernel, stride, dilation) with at least one window fitting."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(n))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(n))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(n))
    spatial = tuple(d * (k - 1) + 1 + draw(st.integers(0, 3)) for k, d in zip(kernel, dilation))
    lead = tuple(draw(st.integers(1, 2)) for _ in range(draw(st.integers(0, max_batch_dims))))
    shape = lead + spatial
    window_geometry(shape, kernel, stride, dilation)  # asserts it is valid
    return shape, kernel, stride, dilation


@st.composite
def conv_geometries(draw, max_batch: int = 3, max_channels: int = 4, max_kernel: int = 3, max_groups: int = 2):
    """Valid conv2d settings: dict(batch, in_channels, out_channels, size, kernel, stride, padding,
    dilation, groups); the padded input always holds at least one dilated window."""
    groups = draw(st.integers(1, max_groups))
    cin = groups * draw(st.integers(1, max(1, max_channels // groups)))
    cout = groups * draw(st.integers(1, max(1, max_channels // groups)))
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    size = tuple(max(1, d * (k - 1) + 1 - 2 * p + draw(st.integers(0, 4))) for k, d, p in zip(kernel, dilation, padding))
    return dict(batch=draw(st.integers(1, max_batch)), in_channels=cin, out_channels=cout, size=size,
                kernel=kernel, stride=stride, padding=padding, dilation=dilation, groups=groups)


def _generic_args(draw, prim: Primitive):
    """Broadcastable arrays, one per declared domain: the default for elementwise primitives."""
    n = len(prim.domain)
    shape_list = draw(broadcastable_shapes(n)) if n > 1 else (draw(shapes(max_dims=3, max_side=3)),)
    args = []
    for shape, domain in zip(shape_list, prim.domain):
        arr = draw(arrays(st.just(shape), domain=domain))
        args.append(arr if domain == "bool" else Tensor(arr))
    return tuple(args), {}


class _Namespace:
    """What `examples(draw, S)` receives: this module's strategies plus `st` and `hnp`."""

    def __getattr__(self, name: str) -> Any:
        return globals()[name]


_S = _Namespace()


def primitive_args(prim: Primitive | str) -> st.SearchStrategy:
    """(args, params) for a registered primitive, drawn from its declared domain or examples."""
    prim = REGISTRY[prim] if isinstance(prim, str) else prim

    @st.composite
    def draw_args(draw):
        if prim.examples is not None:
            return prim.examples(draw, _S)
        return _generic_args(draw, prim)

    return draw_args()


def has_test_data(prim: Primitive) -> bool:
    """A primitive can be tested if it has examples, or if its domain covers all its arguments."""
    return prim.examples is not None or (not prim.variadic and "..." not in prim.domain and len(prim.domain) == len(prim.vjps))
