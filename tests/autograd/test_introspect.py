"""The graph as data: walk order, ids, names, params, saved bytes, scopes, freed graphs, backward links."""
from __future__ import annotations

import numpy as np
import pytest

import autograd as ag
from autograd.errors import GraphError
from autograd.graph import _Mode, module_scope
from autograd.introspect import LeafInfo, NodeInfo, record_backward, short_repr, total_saved_bytes, walk


def three_op(seed: int = 0):
    rng = np.random.default_rng(seed)
    x = ag.tensor(rng.standard_normal((2, 3)).astype(np.float32))
    w = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    b = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    return (x * w + b).relu().sum(), x, w, b


def test_walk_lists_inputs_first_with_positional_ids():
    y, x, w, b = three_op()
    recs = walk(y, params={"w": w, "b": b})
    assert [r.op for r in recs] == ["leaf", "leaf", "mul", "leaf", "add", "relu", "sum"]
    assert [r.id for r in recs] == list(range(7))
    for r in recs:  # every input is listed before the op that reads it
        if isinstance(r, NodeInfo):
            assert all(i is not None and i < r.id for i in r.inputs)
    mul, add, relu, total = (recs[i] for i in (2, 4, 5, 6))
    assert mul.inputs == (0, 1) and add.inputs == (2, 3) and relu.inputs == (4,)
    assert mul.input_shapes == ((2, 3), (3,)) and mul.shape == (2, 3) and mul.dtype == "float32"
    assert total.shape == () and total.params == (("axis", "None"), ("keepdims", "False"))


def test_leaf_names_come_from_params_module_name_slot_then_x0_x1():
    y, x, w, b = three_op()
    assert [r.name for r in walk(y) if isinstance(r, LeafInfo)] == ["x0", "x1", "x2"]
    named = [r for r in walk(y, params={"w": w}) if isinstance(r, LeafInfo)]
    assert [(r.name, r.is_param, r.requires_grad) for r in named] == [
        ("x0", False, False), ("w", True, True), ("x1", False, True)]

    class Holder:
        def named_parameters(self):
            return iter([("lin.weight", w), ("lin.bias", b)])

    assert [r.name for r in walk(y, module=Holder()) if isinstance(r, LeafInfo)] == ["x0", "lin.weight", "lin.bias"]
    x.name = "image"
    assert walk(y)[0].name == "image" and not walk(y)[0].is_param


def test_walk_is_deterministic_across_runs():
    a, b = walk(three_op(1)[0]), walk(three_op(1)[0])
    assert a == b  # dataclass equality ignores the live node/tensor handles


def test_saved_arrays_and_bytes_count_each_array_once():
    x = ag.tensor(np.ones((4, 5), np.float32), requires_grad=True)
    sq = x * x  # both arguments are the same array: saved once
    e = sq.exp()  # exp keeps its output
    recs = walk(e.sum())
    mul, exp = recs[1], recs[2]
    assert [(s.what, s.ref, s.nbytes) for s in mul.saved] == [("arg0", 0, 80)]
    assert mul.saved_bytes == 80
    assert [(s.what, s.ref) for s in exp.saved] == [("arg0", 1), ("out", 2)] and exp.saved_bytes == 160
    # x, x*x, exp(x*x) each kept once by the whole graph, however many ops keep them
    assert total_saved_bytes(recs) == 3 * 80


def test_short_params_summarise_indices_and_constants():
    x = ag.tensor(np.zeros((4, 5, 6), np.float32), requires_grad=True)
    sl = walk(x[1:3, None, ..., ::2])[-1]
    assert sl.op == "slice" and dict(sl.params)["index"] == "(1:3, None, ..., ::2)"
    gathered = walk(x[np.arange(40) % 4])[-1]
    assert dict(gathered.params)["index"].startswith("(int64[40]")
    scaled = walk(x * 2.5)[-1]
    assert dict(scaled.params)["arg1"] == "2.5" and scaled.inputs == (0, None)
    assert short_repr(tuple(range(100))).endswith("…") and len(short_repr(tuple(range(100)))) == 32


def test_scope_and_source_are_carried():
    w = ag.tensor(np.ones(3, np.float32), requires_grad=True)
    with module_scope("", "Net"), module_scope("fc", "Linear"):
        y = w * 2.0
    z = y.sum()
    recs = walk(z)
    assert recs[1].scope == (("", "Net"), ("fc", "Linear")) and recs[2].scope == ()
    assert recs[1].source is None  # captured only in profile/anomaly modes


def test_freed_graph_raises_and_says_what_to_do():
    y, *_ = three_op()
    y.backward()
    with pytest.raises(GraphError, match=r"freed by backward.*before calling backward\(\).*retain_graph=True"):
        walk(y)


def test_retained_graph_can_be_walked_after_backward():
    y, *_ = three_op()
    y.backward(retain_graph=True)
    assert len(walk(y)) == 7


def test_deep_chain_is_walked_without_recursion():
    x = ag.tensor(np.ones(2, np.float32), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y * 1.0
    recs = walk(y)
    assert len(recs) == 20_001 and recs[-1].inputs == (recs[-2].id, None)


def test_leaf_output_and_non_tensor_output():
    x = ag.tensor([1.0], requires_grad=True)
    assert walk(x) == [LeafInfo(0, "x0", (1,), "float32", True, False, 4)]
    with pytest.raises(TypeError, match="Tensors"):
        walk(np.ones(2))


def test_record_backward_links_gradient_ops_to_forward_ops_and_restores_hooks():
    seen = []
    with ag.observe(on_vjp_start=lambda node, g: seen.append("start"),
                    on_vjp_end=lambda node, results: seen.append("end")):
        x = ag.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
        w = ag.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = (x * w).tanh().sum()
        with record_backward():
            (gw,) = ag.grad(y, [w], create_graph=True)
        assert seen[:2] == ["start", "end"]  # both observers saw the events
    assert not _Mode.observed
    recs = walk(gw, follow_grad_of=True)
    forward = {r.id: r.op for r in recs if isinstance(r, NodeInfo) and r.grad_of is None}
    grads = [r for r in recs if isinstance(r, NodeInfo) and r.grad_of is not None]
    assert set(forward.values()) == {"mul", "tanh"}
    assert {forward[r.grad_of] for r in grads} == {"mul", "tanh"}
    assert all(r.grad_of < r.id for r in grads)  # the forward op is listed before its gradient ops
    assert any(isinstance(r, LeafInfo) and r.is_grad and r.name == "g0" for r in recs)
    # without follow_grad_of the same graph carries no links
    assert all(r.grad_of is None for r in walk(gw) if isinstance(r, NodeInfo))


def test_walk_reports_the_user_tensor_behind_an_unrecorded_input():
    from autograd.introspect import record_inputs

    image = ag.tensor(np.arange(12.0).reshape(3, 4))
    w = ag.tensor(np.ones((2, 2)), requires_grad=True)
    with record_inputs():
        cols = ag.reshape(ag.transpose(image, (1, 0)), (2, 6)) * 2.0  # recorded nothing: image needs no grad
        y = (w @ cols).sum()
    leaf = next(r for r in walk(y) if r.op == "leaf" and not r.requires_grad)
    assert leaf.shape == (2, 6)
    assert leaf.origin.ops == ("transpose", "reshape", "mul") and leaf.origin.shape == (3, 4)
    assert leaf.origin.tensor is image
    plain = ag.reshape(image, (2, 6))  # outside record_inputs: no origin
    assert next(r for r in walk((w @ plain).sum()) if r.op == "leaf" and not r.requires_grad).origin is None
