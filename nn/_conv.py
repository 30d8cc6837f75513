"""Geometry of convolution and pooling windows: argument normalisation, output sizes, paddings.

Pure integer arithmetic on shapes, with the errors a user should see (naming the layer and the
shapes) raised here, before any array is touched. `nn.functional` does the maths.
"""
from __future__ import annotations

from typing import Any

from autograd.errors import ShapeError, fmt_shape

from ._args import ntuple, positive  # the one home of argument checks


def conv_padding(padding: Any, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
                 op: str) -> tuple[tuple[int, int], ...]:
    """(before, after) per spatial axis; 'same' splits d*(k-1) like PyTorch (extra on the right)."""
    n = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding != "same":
            raise ValueError(f"{op}: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {stride})")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    pads = ntuple(padding, n, "padding", op)
    positive(pads, "padding", op, minimum=0)
    return tuple((p, p) for p in pads)


def conv_output(in_shape: tuple[int, ...], kernel: tuple[int, ...], pads, stride, dilation, op: str) -> tuple[int, ...]:
    """Output spatial sizes; a kernel spanning more than the padded input is an error in user terms."""
    spatial = in_shape[-len(kernel):]
    padded = tuple(s + a + b for s, (a, b) in zip(spatial, pads))
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(sp > p for sp, p in zip(spans, padded)):
        raise ShapeError(
            f"{op}: kernel {fmt_shape(kernel)} (dilation {fmt_shape(dilation)}) spans {fmt_shape(spans)} but the "
            f"padded input is only {fmt_shape(padded)} (input {fmt_shape(in_shape)})"
        )
    return tuple((p - sp) // s + 1 for p, sp, s in zip(padded, spans, stride))


def pool_geometry(in_shape: tuple[int, ...], kernel, stride, padding, dilation, ceil_mode: bool, op: str):
    """PyTorch's pooling sizes: returns (out sizes, (before, after) pads incl. the ceil-mode overhang).

    In ceil mode the last window may start inside the right padding but not past it; the overhang
    beyond the padded input is padded as well (with -inf or zeros) so every window is a full view.
    """
    if any(p > k // 2 for k, p in zip(kernel, padding)):
        raise ValueError(f"{op}: padding {padding} should be at most half of the kernel size {kernel}")
    outs, pads = [], []
    for size, k, s, p, d in zip(in_shape[-2:], kernel, stride, padding, dilation):
        span = d * (k - 1) + 1
        if size + 2 * p < span:
            raise ShapeError(
                f"{op}: kernel {fmt_shape(kernel)} (dilation {fmt_shape(dilation)}) is larger than the padded "
                f"input {fmt_shape(in_shape)} with padding {padding}"
            )
        top = size + 2 * p - span
        out = (-(-top // s) if ceil_mode else top // s) + 1
        if ceil_mode and (out - 1) * s >= size + p:
            out -= 1
        needed = (out - 1) * s + span
        pads.append((p, p + max(0, needed - (size + 2 * p))))
        outs.append(out)
    return tuple(outs), tuple(pads)


def check_spatial_input(shape: tuple[int, ...], n: int, op: str) -> None:
    if len(shape) not in (n + 1, n + 2):
        names = {1: "length", 2: "height, width"}[n]
        raise ShapeError(
            f"{op}: expected a {n + 2}-D input (batch, channels, {names}) or a {n + 1}-D unbatched one, "
            f"got {fmt_shape(shape)}"
        )


def divisor_counts(size: tuple[int, int], pads, kernel, stride, out, include_pad: bool):
    """Per output position, how many elements an average pool divides by (PyTorch's rule)."""
    import numpy as np

    h, w = size
    (pt, pb), (pl, pr) = pads
    mask = np.zeros((h + pt + pb, w + pl + pr))
    if include_pad:  # the padding counts, the ceil-mode overhang beyond it does not
        mask[: h + 2 * pt, : w + 2 * pl] = 1
    else:
        mask[pt:pt + h, pl:pl + w] = 1
    win = np.lib.stride_tricks.sliding_window_view(mask, kernel)[:: stride[0], :: stride[1]][: out[0], : out[1]]
    return win.sum(axis=(-2, -1))

