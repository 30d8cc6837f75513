"""Contractions: matmul (BLAS) and einsum. Their VJPs are contractions again."""
from __future__ import annotations

import numpy as np

from ..batching import to_front
from ..errors import ShapeError, fmt_shape
from .. import parallel
from ..primitive import OUT_WRITERS, defprim, shape_of
from .elementwise import _plus
from .shape import broadcast_to_p, reshape_p, sum_to, transpose_p


def _swap_last(t):
    nd = len(shape_of(t))
    return transpose_p(t, axes=tuple(range(nd - 2)) + (nd - 1, nd - 2))


def _matmul_check(x, y):
    xs, ys = np.shape(x), np.shape(y)
    if len(xs) == 0 or len(ys) == 0:
        raise ShapeError(f"matmul: operands must have at least one dimension, got {fmt_shape(xs)} @ {fmt_shape(ys)}")
    k1 = xs[-1]
    k2 = ys[-2] if len(ys) > 1 else ys[0]
    if k1 != k2:
        raise ShapeError(
            f"matmul: {fmt_shape(xs)} @ {fmt_shape(ys)}: inner dimensions differ ({k1} vs {k2})"
        )


def _matmul_vjp_x(g, ans, x, y):
    xs, ys = shape_of(x), shape_of(y)
    if len(xs) == 1 and len(ys) == 1:
        return g * y
    if len(ys) == 1:  # (..., m, k) @ (k,) -> (..., m)
        return reshape_p(g, shape=shape_of(g) + (1,)) * y
    if len(xs) == 1:  # (k,) @ (..., k, n) -> (..., n)
        gx = reshape_p(g, shape=shape_of(g)[:-1] + (1, shape_of(g)[-1])) @ _swap_last(y)
        return reshape_p(sum_to(gx, (1, xs[0])), shape=xs)
    return sum_to(g @ _swap_last(y), xs)


def _matmul_vjp_y(g, ans, x, y):
    xs, ys = shape_of(x), shape_of(y)
    if len(xs) == 1 and len(ys) == 1:
        return g * x
    if len(xs) == 1:  # (k,) @ (..., k, n)
        return reshape_p(x, shape=(xs[0], 1)) * reshape_p(g, shape=shape_of(g)[:-1] + (1, shape_of(g)[-1]))
    if len(ys) == 1:  # (..., m, k) @ (k,)
        gy = _swap_last(x) @ reshape_p(g, shape=shape_of(g) + (1,))
        return reshape_p(sum_to(gy, (ys[0], 1)), shape=ys)
    return sum_to(_swap_last(x) @ g, ys)


def _matmul_examples(draw, S):
    m, k, n = (draw(S.st.integers(1, 4)) for _ in range(3))
    batch = draw(S.st.sampled_from([(), (2,), (3, 1)]))
    xs = draw(S.st.sampled_from([(k,), batch + (m, k), (m, k)]))
    ys = draw(S.st.sampled_from([(k,), batch + (k, n), (k, n)]))
    return (draw(S.tensors(shape=S.st.just(xs))), draw(S.tensors(shape=S.st.just(ys)))), {}


def _blas_ready(a):
    """A matrix BLAS can read: broadcast views (a zero stride in the last two axes, common for
    cotangents coming from sum/mean) would send NumPy down its slow non-BLAS loop."""
    if isinstance(a, np.ndarray) and a.ndim >= 1 and 0 in a.strides[-2:] and a.size > 1:
        return np.ascontiguousarray(a)
    return a


def _matmul(x, y, out=None):
    """Matrix product with NumPy's broadcasting and 1-D rules (BLAS; large ones split over threads
    by autograd.parallel)."""
    return parallel.matmul(_blas_ready(x), _blas_ready(y), out=out)


def _matmul_jvp(ts, ans, x, y):
    tx, ty = ts
    dx = None if tx is None else matmul_p(tx, y)
    dy = None if ty is None else matmul_p(x, ty)
    return _plus(dx, dy)


def _matmul_batch(args, dims):
    """Batch axes to the front; a batched vector becomes a one-row (x) or one-column (y) matrix, and
    batched matrices get unit batch axes up to the other operand's rank, so NumPy's matmul
    broadcasting pairs example i with example i. Unbatched operands broadcast as they are."""
    (x, y), (dx, dy) = args, dims
    rx, ry = len(shape_of(x)) - (dx is not None), len(shape_of(y)) - (dy is not None)
    x_row, y_col = dx is not None and rx == 1, dy is not None and ry == 1
    if dx is not None:
        x = to_front(x, dx)
        if x_row:
            x = reshape_p(x, shape=shape_of(x)[:1] + (1,) + shape_of(x)[1:])
    if dy is not None:
        y = to_front(y, dy)
        if y_col:
            y = reshape_p(y, shape=shape_of(y) + (1,))
    n = max(len(shape_of(x)) - (dx is not None), len(shape_of(y)) - (dy is not None))
    if dx is not None and len(shape_of(x)) - 1 < n:
        x = reshape_p(x, shape=shape_of(x)[:1] + (1,) * (n + 1 - len(shape_of(x))) + shape_of(x)[1:])
    if dy is not None and len(shape_of(y)) - 1 < n:
        y = reshape_p(y, shape=shape_of(y)[:1] + (1,) * (n + 1 - len(shape_of(y))) + shape_of(y)[1:])
    out = matmul_p(x, y)
    if x_row or y_col:
        s = list(shape_of(out))
        if y_col:
            del s[-1]
        if x_row:
            del s[-1 if y_col or (dy is None and ry == 1) else -2]
        out = reshape_p(out, shape=tuple(s))
    return out, 0


matmul_p = defprim(
    "matmul", _matmul, _matmul_vjp_x, _matmul_vjp_y,
    check=_matmul_check, examples=_matmul_examples, domain=("real", "real"),
    jvp=_matmul_jvp, batch=_matmul_batch,
    doc="x @ y with NumPy's broadcasting and 1-D rules (BLAS)",
)
OUT_WRITERS["matmul"] = _matmul  # replay writes into its planned buffers with out=


def _einsum(*xs, subscripts):
    """Einstein summation over explicit subscripts ('ij,jk->ik'); contractions reach BLAS."""
    return np.einsum(subscripts, *xs, optimize=True)


def _einsum_check(*xs, subscripts):
    ins, _ = subscripts.split("->")
    terms = ins.split(",")
    if len(terms) != len(xs):
        raise ShapeError(f"einsum: {subscripts!r} names {len(terms)} operands, got {len(xs)}")
    sizes: dict[str, int] = {}
    for term, x in zip(terms, xs):
        shape = np.shape(x)
        if len(term) != len(shape):
            raise ShapeError(f"einsum: operand {term!r} has {len(term)} indices but shape {fmt_shape(shape)}")
        for letter, size in zip(term, shape):
            if sizes.setdefault(letter, size) != size:
                raise ShapeError(f"einsum: index {letter!r} is {sizes[letter]} in one operand and {size} in another ({subscripts!r})")


def _einsum_vjp(g, ans, *xs, subscripts):
    ins, out = subscripts.split("->")
    terms = ins.split(",")
    grads = []
    for i, (term, x) in enumerate(zip(terms, xs)):
        if not getattr(x, "requires_grad", False):
            grads.append(None)
            continue
        if len(set(term)) != len(term):
            raise NotImplementedError(f"einsum: the gradient of an operand with a repeated index ({term!r}) is not supported")
        others = [(t, o) for j, (t, o) in enumerate(zip(terms, xs)) if j != i]
        available = set(out).union(*[set(t) for t, _ in others])
        kept = "".join(c for c in term if c in available)
        spec = ",".join([out] + [t for t, _ in others]) + "->" + kept
        gi = einsum_p(g, *[o for _, o in others], subscripts=spec)
        if kept != term:  # letters only this operand had were summed out: broadcast them back
            shape = shape_of(x)
            gi = reshape_p(gi, shape=tuple(s if c in available else 1 for c, s in zip(term, shape)))
            gi = broadcast_to_p(gi, shape=shape)
        grads.append(gi)
    return tuple(grads)


def _einsum_examples(draw, S):
    spec = draw(S.st.sampled_from(["ij,jk->ik", "bij,bjk->bik", "ij,ij->", "i,j->ij", "ijk,k->ij", "ij,k->i", "ij,jk,k->i"]))
    ins, _ = spec.split("->")
    size = {c: draw(S.st.integers(1, 3)) for c in sorted(set(ins) - {","})}
    xs = tuple(draw(S.tensors(shape=S.st.just(tuple(size[c] for c in t)))) for t in ins.split(","))
    return xs, {"subscripts": spec}


def _einsum_jvp(ts, ans, *xs, subscripts):
    """Multilinear: the sum over operands of einsum with that operand's tangent in its place."""
    total = None
    for i, t in enumerate(ts):
        if t is not None:
            term = einsum_p(*xs[:i], t, *xs[i + 1:], subscripts=subscripts)
            total = _plus(total, term)
    return total


def _einsum_batch(args, dims, subscripts):
    """A new index letter for the batch axis, in front of every batched operand and the output."""
    ins, out = subscripts.split("->")
    letter = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in subscripts)
    terms, moved = [], []
    for term, a, d in zip(ins.split(","), args, dims):
        terms.append(term if d is None else letter + term)
        moved.append(a if d is None else to_front(a, d))
    return einsum_p(*moved, subscripts=",".join(terms) + "->" + letter + out), 0


einsum_p = defprim(
    "einsum", _einsum, vjp=_einsum_vjp, check=_einsum_check, examples=_einsum_examples, domain=("real", "..."),
    jvp=_einsum_jvp, batch=_einsum_batch,
)
