"""Side-by-side forward/backward drawings, source lines as labels, and the user's tensor as the input."""
from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

import autograd as ag
import nn
from autograd import viz

from .test_viz import label, parse, tanh_gradient




def _rows(source: str) -> list[set[str]]:
    return [set(re.findall(r"\b(n\d+)\b", block)) for block in re.findall(r"\{\s*rank=same(.*?)\}", source, re.S)]


def test_side_by_side_puts_forward_left_backward_right_each_gradient_on_its_forward_row():
    gw, x, w = tanh_gradient()
    graph = viz.draw(gw, params={"x": x, "w": w}, backward=True, layout="side_by_side")
    nodes, edges, clusters = parse(graph.source)
    assert "newrank=true" in graph.source
    tops = [(name, lab) for name, lab, depth in clusters if depth == 0]
    assert [lab for _, lab in tops] == ["forward", "backward"]
    forward = {n for n, a in nodes.items() if a.get("fillcolor") == "lightgrey"}
    grads = {n for n, a in nodes.items() if a.get("fillcolor") == "mistyrose" and label(a)[0] != "g0"}
    rows = _rows(graph.source)
    by_op = {label(nodes[n])[0]: n for n in forward}
    tanh_row = next(r for r in rows if by_op["tanh"] in r)
    mul_row = next(r for r in rows if by_op["mul"] in r)
    assert {label(nodes[n])[0] for n in tanh_row - {by_op["tanh"]}} == {"tanh", "mul", "sub"}  # tanh's VJP ops
    assert {label(nodes[n])[0] for n in mul_row - {by_op["mul"]}} == {"mul", "sum_to"}
    assert (tanh_row | mul_row) - set(by_op.values()) == grads  # every gradient op is on a forward op's row
    links = {(label(nodes[s])[0], d) for s, d, a in edges if a.get("color") == "firebrick"}
    assert {s for s, _ in links} == {"mul", "tanh"} and len(links) == 2  # one link per matching pair
    backward_edges = [a for s, d, a in edges if d in grads and a.get("color") != "firebrick"]
    assert backward_edges and all(a.get("constraint") == "false" for a in backward_edges)


@pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz 'dot' program is not installed")
def test_side_by_side_layout_places_rows_and_sides_when_rendered():
    gw, x, w = tanh_gradient()
    graph = viz.draw(gw, params={"x": x, "w": w}, backward=True, layout="side_by_side", legend=False)
    nodes, _, _ = parse(graph.source)
    pos = {}
    for line in graph.pipe(format="plain", encoding="utf-8").splitlines():
        parts = line.split()
        if parts[0] == "node":
            pos[parts[1]] = (float(parts[2]), float(parts[3]))
    forward = [n for n, a in nodes.items() if a.get("fillcolor") == "lightgrey"]
    grads = [n for n, a in nodes.items() if a.get("fillcolor") == "mistyrose" and label(a)[0] != "g0"]
    assert max(pos[n][0] for n in forward) < min(pos[n][0] for n in grads)  # forward left of backward
    for row in _rows(graph.source):
        assert len({round(pos[n][1], 2) for n in row}) == 1  # one row, one height


def test_side_by_side_needs_a_gradient_graph_and_a_known_layout():
    y = (ag.tensor([1.0, 2.0], requires_grad=True) * 2.0).sum()
    with pytest.raises(ValueError, match="backward=True"):
        viz.draw(y, layout="side_by_side")
    with pytest.raises(ValueError, match="layout must be one of interleaved, side_by_side"):
        viz.draw(y, layout="sideways")


def test_source_line_is_a_label_when_captured():
    x = ag.tensor([1.0, 2.0], requires_grad=True)
    with ag.detect_anomaly():
        y = (x * 3.0).sum()
    nodes, _, _ = parse(viz.draw(y).source)
    mul = next(a for a in nodes.values() if label(a)[0] == "mul")
    assert re.fullmatch(r"test_viz_layouts\.py:\d+: y = \(x \* 3\.0\)\.sum\(\)", label(mul)[-1])
    hidden, _, _ = parse(viz.draw(y, show_source=False).source)
    assert not any("test_viz_layouts.py" in label(a)[-1] for a in hidden.values())
    plain, _, _ = parse(viz.draw((x * 3.0).sum()).source)  # not captured: no line
    assert not any(".py:" in label(a)[-1] for a in plain.values())


def digit_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 10 * 10, 10))


def test_cnn_input_is_drawn_as_the_users_image_with_the_unfolding_inside_the_conv():
    model = digit_cnn()
    images = ag.tensor(np.random.default_rng(0).standard_normal((4, 1, 20, 20)).astype(np.float32))
    with viz.record_inputs():
        logits = model(images)
    source = viz.draw(logits, module=model).source
    nodes, edges, clusters = parse(source)
    inputs = [a for a in nodes.values() if a.get("fillcolor") == "lightyellow" and a.get("shape") == "box"]
    assert [label(a) for a in inputs] == [["x0", "(4, 1, 20, 20) f32"]]
    (unfold,) = [n for n in nodes if n.startswith("u")]
    assert "sliding_windows" in label(nodes[unfold])[0]
    conv_cluster = re.search(r"label=\"0 Conv2d\".*?\n(.*?)\n\t\t\}", source, re.S)[1]
    assert f"{unfold} [" in conv_cluster  # the unfolding is an op inside the conv cluster
    user = next(n for n, a in nodes.items() if a in inputs)
    assert (user, unfold) in [(s, d) for s, d, _ in edges]
    into_conv = [a for s, d, a in edges if s == unfold]
    assert [label(a)[0] for a in into_conv] == ["(1, 9, 1600) f32"]  # what the matmul receives (batch-last im2col)
    collapsed, boxed_edges, _ = parse(viz.draw(logits, module=model, depth=1).source)
    box = next(n for n, a in collapsed.items() if label(a)[0] == "0 Conv2d")
    assert (user, box) in [(s, d) for s, d, _ in boxed_edges]


def test_without_record_inputs_the_unfolded_array_is_drawn():
    model = digit_cnn()
    logits = model(ag.tensor(np.zeros((4, 1, 20, 20), np.float32)))
    nodes, edges, _ = parse(viz.draw(logits, module=model).source)
    (leaf,) = [n for n, a in nodes.items() if a.get("fillcolor") == "lightyellow" and a.get("shape") == "box"]
    assert label(nodes[leaf]) == ["x0"]
    assert [label(a)[0] for s, _, a in edges if s == leaf] == ["(1, 9, 1600) f32"]  # the unfolded array (batch-last im2col)
    assert not [n for n in nodes if n.startswith("u")]


def test_the_users_tensor_keeps_its_own_name():
    model = digit_cnn()
    images = ag.tensor(np.zeros((2, 1, 20, 20), np.float32), name="images")
    with viz.record_inputs():
        logits = model(images)
    nodes, _, _ = parse(viz.draw(logits, module=model).source)
    assert ["images", "(2, 1, 20, 20) f32"] in [label(a) for a in nodes.values()]
