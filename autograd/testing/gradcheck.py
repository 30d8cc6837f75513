"""`check_grads`: compare reverse-mode gradients with float64 finite differences.

Order 1 compares the VJP of a random projection of the output against central differences;
small inputs are checked entry by entry (so a failure names the worst entries), large ones along a
random direction (HIPS autograd's trick: one pair of function calls per argument). When a random
direction disagrees, the direction is bisected over blocks of entries until the failing entries are
found, so a large input's failure names its worst entries too. Order 2 applies the same check to the
gradient function itself, built with `create_graph=True`.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..engine import grad
from ..errors import fmt_shape
from ..tensor import Tensor

#: inputs with at most this many elements are checked entry by entry
ENTRYWISE_LIMIT = 256
#: bisection stops splitting a failing block of entries at this size and checks its entries one by one
BLOCK_LIMIT = 8
#: at most this many failing blocks are searched (each costs two calls of f per half)
MAX_BLOCKS = 24


class GradientCheckError(AssertionError):
    """Analytic and numeric gradients disagree; the message names the argument and the worst entries."""


def _to64(a: Any) -> Tensor | Any:
    if isinstance(a, Tensor):
        a = a.data
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return Tensor(a.astype(np.float64), requires_grad=True)
    if isinstance(a, float):
        return Tensor(np.float64(a), requires_grad=True)
    return a


def _value(f: Callable, args: Sequence[Any]) -> np.ndarray:
    out = f(*args)  # recorded: at order 2, f itself takes gradients of its inputs
    return np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)


def check_grads(
    f: Callable[..., Tensor],
    *args: Any,
    order: int = 2,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    rng: np.random.Generator | int | None = 0,
    argnums: Sequence[int] | None = None,
    modes: Sequence[str] = ("rev",),
) -> None:
    """Raise GradientCheckError unless f's gradients (up to `order`) match finite differences.

    Float arrays and Tensors among `args` are differentiated (in float64); anything else is passed
    through unchanged. `argnums` restricts which arguments are checked. `modes` (HIPS autograd's
    name): "rev" checks reverse mode (VJPs), "fwd" forward mode (autograd.func.jvp along a random
    direction per argument; at order 2, jvp of the gradient, i.e. forward-over-reverse).
    """
    unknown = set(modes) - {"fwd", "rev"}
    if unknown:
        raise ValueError(f"check_grads: modes must be 'fwd' and/or 'rev', got {sorted(unknown)}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    xs = [_to64(a) for a in args]
    diff = [i for i, a in enumerate(xs) if isinstance(a, Tensor) and (argnums is None or i in argnums)]
    for i, a in enumerate(xs):
        if isinstance(a, Tensor) and i not in diff:
            xs[i] = Tensor(a.data)  # constant: not differentiated
    if not diff:
        raise ValueError("check_grads: no floating-point argument to differentiate")
    if "fwd" in modes:
        _check_forward(f, xs, diff, eps, rtol, atol, gen, order_label=1)
        if order >= 2:
            _check_forward(_gradient_projection(f, xs, diff, gen), xs, diff, eps, rtol, atol, gen, order_label=2)
    if "rev" not in modes:
        return
    _check_order1(f, xs, diff, eps, rtol, atol, gen, order_label=1)
    if order >= 2:
        out_shape = _value(f, xs).shape
        v = gen.standard_normal(out_shape)
        ws = {i: gen.standard_normal(xs[i].shape) for i in diff}

        def grad_projection(*ys):
            """<grad of <f, v>, w>: its gradient is a Hessian-vector product."""
            out = f(*ys)
            total = Tensor(np.float64(0.0))
            if not out.requires_grad:
                return total
            gs = grad((out * v).sum(), [ys[i] for i in diff], create_graph=True, allow_unused=True)
            for i, g in zip(diff, gs):
                if g is not None:  # a constant g still counts: its finite differences must then be 0
                    total = total + (g * ws[i]).sum()
            return total

        _check_order1(grad_projection, xs, diff, eps, rtol, atol, gen, order_label=2)


def _check_order1(f, xs, diff, eps, rtol, atol, gen, order_label: int) -> None:
    out = f(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"check_grads: the function must return a Tensor, got {type(out).__name__}")
    v = gen.standard_normal(out.shape)
    if out.requires_grad:
        analytic = grad((out * v).sum(), [xs[i] for i in diff], allow_unused=True)
    else:
        analytic = [None] * len(diff)

    def projected(ys) -> float:
        return float(np.sum(_value(f, ys) * v))

    for i, g in zip(diff, analytic):
        x = xs[i]
        g = np.zeros(x.shape) if g is None else np.asarray(g.data, dtype=np.float64)
        if g.shape != x.shape:
            raise GradientCheckError(
                f"check_grads: order {order_label}, argument {i}: gradient shape {fmt_shape(g.shape)} "
                f"differs from the argument's {fmt_shape(x.shape)}"
            )
        if x.size <= ENTRYWISE_LIMIT:
            numeric = np.zeros(x.shape)
            for idx in np.ndindex(*x.shape):
                numeric[idx] = _central(projected, xs, i, _unit(x.shape, idx), eps)
            _compare_entries(g, numeric, i, order_label, rtol, atol)
        else:
            u = gen.standard_normal(x.shape)
            numeric = _central(projected, xs, i, u, eps)
            exact = float(np.sum(g * u))
            if not np.isclose(exact, numeric, rtol=rtol, atol=atol * np.sqrt(x.size)):
                found = _bisect(g, u, lambda d: _central(projected, xs, i, d, eps), rtol, atol)
                raise GradientCheckError(
                    f"check_grads: order {order_label}, argument {i} (shape {fmt_shape(x.shape)}): directional "
                    f"derivative along a random direction: analytic {exact:.8g}, numeric {numeric:.8g}; "
                    + _worst_lines(found, x.shape, rtol, atol)
                )


def _bisect(g: np.ndarray, u: np.ndarray, numeric_along: Callable[[np.ndarray], float], rtol: float,
            atol: float) -> dict[int, tuple[float, float]]:
    """Flat index -> (analytic, numeric) of the entries that disagree, found by halving the failing
    direction `u`: each half's directional derivative is compared on its own, failing halves are split
    again, and blocks of BLOCK_LIMIT entries are checked entry by entry. If no half fails on its own
    (the error was spread thin), the half with the larger disagreement is followed."""
    flat_g, flat_u = g.reshape(-1), u.reshape(-1)
    found: dict[int, tuple[float, float]] = {}
    frontier = [np.arange(flat_u.size)]
    searched = 0
    while frontier and searched < MAX_BLOCKS:
        block = frontier.pop(0)
        searched += 1
        if block.size <= BLOCK_LIMIT:
            for j in block:
                d = np.zeros_like(flat_u)
                d[j] = 1.0
                num = numeric_along(d.reshape(u.shape))
                if not np.isclose(flat_g[j], num, rtol=rtol, atol=atol):
                    found[int(j)] = (float(flat_g[j]), num)
            continue
        gaps = []
        for half in np.array_split(block, 2):
            d = np.zeros_like(flat_u)
            d[half] = flat_u[half]
            exact, num = float(flat_g[half] @ flat_u[half]), numeric_along(d.reshape(u.shape))
            bad = not np.isclose(exact, num, rtol=rtol, atol=atol * np.sqrt(half.size))
            gaps.append((bad, abs(exact - num), half))
        failing = [h for bad, _, h in gaps if bad]
        frontier += failing or [max(gaps, key=lambda t: t[1])[2]]
    return found


def _worst_lines(found: dict[int, tuple[float, float]], shape, rtol: float, atol: float) -> str:
    if not found:
        return "bisection over blocks of entries found no single entry that disagrees (the error is spread thin)"
    worst = sorted(found.items(), key=lambda kv: -abs(kv[1][0] - kv[1][1]))[:5]
    lines = [f"  [{', '.join(map(str, np.unravel_index(j, shape)))}]: analytic {a:.8g}, numeric {n:.8g}"
             for j, (a, n) in worst]
    return (f"bisection found {len(found)} entr{'y' if len(found) == 1 else 'ies'} that differ "
            f"(rtol={rtol}, atol={atol}); worst:\n" + "\n".join(lines))


def _check_forward(f, xs, diff, eps, rtol, atol, gen, order_label: int) -> None:
    """<v, J u> by forward mode against the central difference of <v, f> along u, per argument."""
    from ..func import jvp

    consts = [Tensor(a.data) if isinstance(a, Tensor) else a for a in xs]
    v = gen.standard_normal(_value(f, consts).shape)
    for i in diff:
        u = gen.standard_normal(xs[i].shape)
        _, tangent = jvp(lambda xi: f(*consts[:i], xi, *consts[i + 1:]), (consts[i],), (Tensor(u),))
        exact = float(np.sum(np.asarray(tangent.data, dtype=np.float64) * v))
        numeric = _central(lambda ys: float(np.sum(_value(f, ys) * v)), consts, i, u, eps)
        if not np.isclose(exact, numeric, rtol=rtol, atol=atol * np.sqrt(u.size)):
            raise GradientCheckError(
                f"check_grads: forward mode, order {order_label}, argument {i} (shape {fmt_shape(u.shape)}): "
                f"JVP along a random direction: analytic {exact:.8g}, numeric {numeric:.8g}")


def _gradient_projection(f, xs, diff, gen):
    """<grad <f, v>, w> through autograd.func.grad, so forward mode can differentiate it again."""
    from ..func import grad as func_grad

    consts = [Tensor(a.data) if isinstance(a, Tensor) else a for a in xs]
    v = Tensor(gen.standard_normal(_value(f, consts).shape))
    ws = [Tensor(gen.standard_normal(xs[i].shape)) for i in diff]

    def projection(*ys):
        gs = func_grad(lambda *zs: (f(*zs) * v).sum(), argnums=tuple(diff))(*ys)
        total = Tensor(np.float64(0.0))
        for g, w in zip(gs, ws):
            total = total + (g * w).sum()
        return total

    return projection


def _unit(shape, idx) -> np.ndarray:
    u = np.zeros(shape)
    u[idx] = 1.0
    return u


def _central(projected, xs, i, direction, eps) -> float:
    base = xs[i].data
    plus = list(xs)
    plus[i] = Tensor(base + eps * direction, requires_grad=True)
    minus = list(xs)
    minus[i] = Tensor(base - eps * direction, requires_grad=True)
    return (projected(plus) - projected(minus)) / (2 * eps)


def _compare_entries(analytic: np.ndarray, numeric: np.ndarray, i: int, order: int, rtol: float, atol: float) -> None:
    bad = ~np.isclose(analytic, numeric, rtol=rtol, atol=atol)
    if not bad.any():
        return
    err = np.abs(analytic - numeric)
    worst = np.argsort(err, axis=None)[::-1][: min(5, int(bad.sum()))]
    lines = []
    for flat in worst:
        idx = np.unravel_index(flat, analytic.shape)
        lines.append(f"  [{', '.join(map(str, idx))}]: analytic {analytic[idx]:.8g}, numeric {numeric[idx]:.8g}")
    raise GradientCheckError(
        f"check_grads: order {order}, argument {i} (shape {fmt_shape(analytic.shape)}): {int(bad.sum())} of "
        f"{analytic.size} entries differ (rtol={rtol}, atol={atol}); worst:\n" + "\n".join(lines)
    )
