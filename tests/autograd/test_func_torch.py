"""autograd.func against torch.func in float64, to 1e-9, on random programs built from the registry's
primitives (drawn by Hypothesis), on a small MLP's loss (hessian, hvp) and on a conv layer (jacfwd,
jacrev)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import autograd as ag
import nn.functional as NF
from autograd import func

torch = pytest.importorskip("torch")
tf = torch.func
TOL = dict(rtol=1e-9, atol=1e-9)

RNG = np.random.default_rng(1234)
W = RNG.standard_normal((4, 4)) * 0.5
MASK = RNG.random((3, 4)) < 0.5
PERM = np.array([3, 2, 0, 1])
C = RNG.standard_normal((3, 4))


def _t(a):
    return torch.tensor(a, dtype=torch.float64)


# Each step maps the running value h (3, 4) and the second input y (4,) to a new (3, 4) value, once with
# tapegrad (whose primitives are named) and once with torch. Together they use every registry primitive
# except cast (a float64 no-op here).
STEPS = {
    "exp": (lambda h, y: ag.exp(0.3 * h), lambda h, y: torch.exp(0.3 * h)),
    "log": (lambda h, y: ag.log(h * h + 1.0), lambda h, y: torch.log(h * h + 1.0)),
    "tanh": (lambda h, y: ag.tanh(h), torch.tanh and (lambda h, y: torch.tanh(h))),
    "sigmoid": (lambda h, y: ag.sigmoid(h) * 2.0, lambda h, y: torch.sigmoid(h) * 2.0),
    "relu": (lambda h, y: ag.relu(h) - 0.5 * h, lambda h, y: torch.relu(h) - 0.5 * h),
    "neg_div": (lambda h, y: -h / (y * y + 1.0), lambda h, y: -h / (y * y + 1.0)),
    "mul_add": (lambda h, y: h * y + y, lambda h, y: h * y + y),
    "pow": (lambda h, y: (h * h + 1.0) ** (0.5 + 0.1 * y), lambda h, y: (h * h + 1.0) ** (0.5 + 0.1 * y)),
    "where": (lambda h, y: ag.where(MASK, h, h * y), lambda h, y: torch.where(torch.tensor(MASK), h, h * y)),
    "center": (lambda h, y: h - h.sum(axis=1, keepdims=True) * 0.25, lambda h, y: h - h.sum(1, keepdim=True) * 0.25),
    "max": (lambda h, y: h * ag.max(h, axis=0, keepdims=True), lambda h, y: h * torch.amax(h, 0, keepdim=True)),
    "matmul": (lambda h, y: h @ ag.tensor(W), lambda h, y: h @ _t(W)),
    "einsum": (lambda h, y: ag.einsum("ij,jk,k->ik", h, ag.tensor(W), y), lambda h, y: torch.einsum("ij,jk,k->ik", h, _t(W), y)),
    "transpose": (lambda h, y: ag.reshape(h.T, (3, 4)), lambda h, y: h.T.reshape(3, 4)),
    "roll": (lambda h, y: ag.concatenate([h[:, 1:], h[:, :1]], axis=1), lambda h, y: torch.cat([h[:, 1:], h[:, :1]], 1)),
    "take": (lambda h, y: h[:, PERM] + h[PERM[1:], :], lambda h, y: h[:, PERM] + h[PERM[1:], :]),
    "windows": (lambda h, y: ag.pad(NF.avg_pool2d(h[None, None], 2, stride=1)[0, 0], ((0, 1), (1, 0))),
                lambda h, y: torch.nn.functional.pad(torch.nn.functional.avg_pool2d(h[None, None], 2, stride=1)[0, 0], (1, 0, 0, 1))),
    "broadcast": (lambda h, y: h + ag.broadcast_to(y, (3, 4)).sum(axis=0), lambda h, y: h + y.expand(3, 4).sum(0)),
    "maximum": (lambda h, y: ag.maximum(h, y) - ag.minimum(h, 0.3), lambda h, y: torch.maximum(h, y) - torch.clamp(h, max=0.3)),
    "sign_equal": (lambda h, y: ag.where(ag.equal(ag.sign(h), 1.0), h, 0.5 * h), lambda h, y: torch.where(h > 0, h, 0.5 * h)),
    "softmax": (lambda h, y: ag.softmax(h, axis=1) * 3.0, lambda h, y: torch.softmax(h, 1) * 3.0),
}


def program(names):
    def ours(x, y):
        h = x
        for n in names:
            h = STEPS[n][0](h, y)
        return h

    def theirs(x, y):
        h = x
        for n in names:
            h = STEPS[n][1](h, y)
        return h

    return ours, theirs


def scalar(f, mod):
    c = ag.tensor(C) if mod is ag else _t(C)
    return lambda x, y: (f(x, y) * c).sum()


programs = st.lists(st.sampled_from(sorted(STEPS)), min_size=1, max_size=4)
inputs = st.integers(0, 2**31 - 1).map(lambda s: np.random.default_rng(s)).map(
    lambda g: (g.standard_normal((3, 4)), g.standard_normal(4), g.standard_normal((3, 4)), g.standard_normal(4)))


def close(ours, theirs):
    if isinstance(theirs, (tuple, list)):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            close(a, b)
        return
    np.testing.assert_allclose(np.asarray(ours.data), theirs.detach().numpy(), **TOL)


def test_every_primitive_appears_in_the_programs_or_their_gradients():
    used = set()
    rec = lambda prim, *a: used.add(prim.name)  # noqa: E731
    x, y = ag.tensor(RNG.standard_normal((3, 4))), ag.tensor(RNG.standard_normal(4))
    with ag.observe(on_apply=rec):
        for name in STEPS:
            func.grad(scalar(program([name])[0], ag))(x, y)
    assert set(ag.REGISTRY) - used == {"cast"}


@settings(max_examples=15)
@given(names=programs, data=inputs)
def test_reverse_transforms_match_torch(names, data):
    xa, ya, va, _ = data
    ours, theirs = program(names)
    x, y, v = ag.tensor(xa), ag.tensor(ya), ag.tensor(va)
    tx, ty, tv = _t(xa), _t(ya), _t(va)
    close(func.grad(scalar(ours, ag), argnums=(0, 1))(x, y), tf.grad(scalar(theirs, torch), argnums=(0, 1))(tx, ty))
    value, g = func.value_and_grad(scalar(ours, ag))(x, y)
    tg, tvalue = tf.grad_and_value(scalar(theirs, torch))(tx, ty)
    close((value, g), (tvalue, tg))
    out, pull = func.vjp(ours, x, y)
    tout, tpull = tf.vjp(theirs, tx, ty)
    close(out, tout)
    close(pull(v), tpull(tv))
    close(func.jacrev(ours, argnums=(0, 1))(x, y), tf.jacrev(theirs, argnums=(0, 1))(tx, ty))


@settings(max_examples=15)
@given(names=programs, data=inputs)
def test_forward_transforms_match_torch(names, data):
    xa, ya, va, wa = data
    ours, theirs = program(names)
    x, y, v, w = ag.tensor(xa), ag.tensor(ya), ag.tensor(va), ag.tensor(wa)
    tx, ty, tv, tw = _t(xa), _t(ya), _t(va), _t(wa)
    close(func.jvp(ours, (x, y), (v, w)), tf.jvp(theirs, (tx, ty), (tv, tw)))
    close(func.jacfwd(ours, argnums=(0, 1))(x, y), tf.jacfwd(theirs, argnums=(0, 1))(tx, ty))
    close(func.hessian(scalar(ours, ag))(x, y), tf.hessian(scalar(theirs, torch))(tx, ty))
    _, hv = func.hvp(lambda x: scalar(ours, ag)(x, y), (x,), (v,))
    close(hv, tf.jvp(tf.grad(lambda x: scalar(theirs, torch)(x, ty)), (tx,), (tv,))[1])


@settings(max_examples=15)
@given(names=programs, data=inputs)
def test_vmap_and_compositions_match_torch(names, data):
    xa, ya, _, _ = data
    ours, theirs = program(names)
    xs = np.stack([xa, 0.5 * xa, -xa])
    x, y, tx, ty = ag.tensor(xs), ag.tensor(ya), _t(xs), _t(ya)
    close(func.vmap(ours, in_axes=(0, None))(x, y), tf.vmap(theirs, in_dims=(0, None))(tx, ty))
    close(func.vmap(ours, in_axes=(2, None), out_axes=1)(ag.tensor(xs.transpose(1, 2, 0)), y),
          tf.vmap(theirs, in_dims=(2, None), out_dims=1)(_t(xs.transpose(1, 2, 0)), ty))
    close(func.vmap(func.grad(scalar(ours, ag), argnums=(0, 1)), in_axes=(0, None))(x, y),
          tf.vmap(tf.grad(scalar(theirs, torch), argnums=(0, 1)), in_dims=(0, None))(tx, ty))
    x0, tx0 = ag.tensor(xa), _t(xa)
    close(func.jacfwd(func.jacrev(scalar(ours, ag)))(x0, y), tf.jacfwd(tf.jacrev(scalar(theirs, torch)))(tx0, ty))

    def g2(f, mod):  # grad of a projection of the gradient: grad(grad(f))
        c = ag.tensor(C) if mod is ag else _t(C)
        inner = (func if mod is ag else tf).grad(scalar(f, mod))
        return (func if mod is ag else tf).grad(lambda x, y: (inner(x, y) * c).sum())

    close(g2(ours, ag)(x0, y), g2(theirs, torch)(tx0, ty))


# --- a small MLP's loss: hessian and hvp ---------------------------------------------------------------
def _mlp(mod):
    g = np.random.default_rng(7)
    w1, b1, w2 = g.standard_normal((5, 4)) * 0.5, g.standard_normal(5) * 0.1, g.standard_normal((3, 5)) * 0.5
    xb, labels = g.standard_normal((6, 4)), g.integers(0, 3, 6)
    onehot = np.eye(3)[labels]
    T = (lambda a: ag.tensor(a)) if mod is ag else _t
    lib = NF if mod is ag else torch.nn.functional

    def loss(w1_):
        h = (lib.linear(T(xb), w1_, T(b1))).tanh()
        logits = lib.linear(h, T(w2))
        return lib.cross_entropy(logits, T(onehot))

    return loss, w1


def test_mlp_loss_hessian_and_hvp_match_torch():
    loss, w1 = _mlp(ag)
    tloss, _ = _mlp(torch)
    v = np.random.default_rng(8).standard_normal(w1.shape)
    h = func.hessian(loss)(ag.tensor(w1))
    th = tf.hessian(tloss)(_t(w1))
    assert h.shape == (5, 4, 5, 4)
    close(h, th)
    value, hv = func.hvp(loss, (ag.tensor(w1),), (ag.tensor(v),))
    tvalue, thv = torch.autograd.functional.hvp(tloss, _t(w1), _t(v))
    close((value, hv), (tvalue, thv))
    np.testing.assert_allclose(hv.data, np.tensordot(h.data, v, axes=2), **TOL)


# --- a conv layer: jacfwd and jacrev ---------------------------------------------------------------------
@pytest.mark.parametrize("stride,padding,groups", [(1, 1, 1), (2, 0, 2)])
def test_conv_layer_jacobians_match_torch(stride, padding, groups):
    g = np.random.default_rng(3)
    xa, wa, ba = g.standard_normal((2, 4, 5, 5)), g.standard_normal((4, 4 // groups, 3, 3)), g.standard_normal(4)

    def conv(x, w):
        return NF.conv2d(x, w, ag.tensor(ba), stride=stride, padding=padding, groups=groups)

    def tconv(x, w):
        return torch.nn.functional.conv2d(x, w, _t(ba), stride=stride, padding=padding, groups=groups)

    x, w = ag.tensor(xa), ag.tensor(wa)
    fwd = func.jacfwd(conv, argnums=(0, 1))(x, w)
    rev = func.jacrev(conv, argnums=(0, 1))(x, w)
    expected = tf.jacrev(tconv, argnums=(0, 1))(_t(xa), _t(wa))
    close(fwd, expected)
    close(rev, expected)
