"""Drawings read from the DOT text: nodes, edges, labels, colours, clusters, collapse, determinism, rendering."""
from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import autograd as ag
from autograd import viz
from autograd.errors import GraphError
from autograd.graph import module_scope
from autograd.ops.shape import sliding_windows_p as sliding_windows

_ATTR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|<<.*?>>|[^\s\]]+)')


def parse(source: str):
    """DOT text -> (nodes {name: attrs}, edges [(src, dst, attrs)], clusters [(name, label, depth)])."""
    nodes, edges, clusters, depth = {}, [], [], 0
    for line in source.splitlines():
        text = line.strip()
        if text.startswith("subgraph cluster"):
            clusters.append([text.split()[1], None, depth])
            depth += 1
            continue
        if text == "}":
            depth -= 1
            continue
        if clusters and depth == clusters[-1][2] + 1 and text.startswith(("color=", "fillcolor=", "label=")):
            clusters[-1][1] = _attrs(text).get("label")
        m = re.match(r'^(\w+) -> (\w+)(?: \[(.*)\])?$', text)
        if m:
            edges.append((m[1], m[2], _attrs(m[3] or "")))
            continue
        m = re.match(r'^(\w+) \[(.*)\]$', text)
        if m and m[1] not in ("graph", "node", "edge"):
            nodes[m[1]] = _attrs(m[2])
    return nodes, edges, [tuple(c) for c in clusters]


def _attrs(text: str) -> dict[str, str]:
    return {k: v.strip('"') for k, v in _ATTR.findall(text)}


def label(attrs: dict) -> list[str]:
    return attrs.get("label", "").split("\\n")


def three_op():
    rng = np.random.default_rng(0)
    x = ag.tensor(rng.standard_normal((2, 3)).astype(np.float32))
    w = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    b = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    return (x * w + b).relu().sum(), w, b


# --- a tiny module system (nn-independent): layers record their ops under module_scope --------
class Layer:
    def __init__(self, name: str, kind: str, fn, **params):
        self.name, self.kind, self.fn, self.params = name, kind, fn, params

    def __call__(self, x):
        with module_scope(self.name, self.kind):
            return self.fn(x, **self.params)


class Net:
    def __init__(self, layers):
        self.layers = layers

    def named_parameters(self):
        for layer in self.layers:
            for k, v in layer.params.items():
                yield f"{layer.name}.{k}", v

    def __call__(self, x):
        with module_scope("", "Net"):
            for layer in self.layers:
                x = layer(x)
        return x


def _param(rng, *shape):
    return ag.tensor((rng.standard_normal(shape) * 0.1).astype(np.float32), requires_grad=True)


def conv(x, weight, bias):
    win = sliding_windows(ag.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), kernel=(3, 3), stride=(1, 1), dilation=(1, 1))
    return ag.einsum("nchwij,ocij->nohw", win, weight) + bias.reshape(1, -1, 1, 1)


def linear(x, weight, bias):
    return x.reshape(x.shape[0], -1) @ weight.transpose() + bias


def relu(x):
    return x.relu()


def conv_net(seed: int = 0) -> tuple[Net, ag.Tensor]:
    rng = np.random.default_rng(seed)
    net = Net([
        Layer("features.0", "Conv2d", conv, weight=_param(rng, 4, 1, 3, 3), bias=_param(rng, 4)),
        Layer("features.1", "ReLU", relu),
        Layer("classifier", "Linear", linear, weight=_param(rng, 10, 4 * 6 * 6), bias=_param(rng, 10)),
    ])
    # the input requires grad (as for a saliency map), so the conv's pad and window ops are recorded too
    x = ag.tensor(rng.standard_normal((2, 1, 6, 6)).astype(np.float32), requires_grad=True)
    return net, net(x).sum()


def deep_net(n_layers: int = 50):
    rng = np.random.default_rng(0)
    layers = []
    for i in range(n_layers):
        if i % 2 == 0:
            layers.append(Layer(f"layers.{i}", "Linear", linear, weight=_param(rng, 8, 8), bias=_param(rng, 8)))
        else:
            layers.append(Layer(f"layers.{i}", "ReLU", relu))
    net = Net(layers)
    return net, net(ag.tensor(rng.standard_normal((4, 8)).astype(np.float32))).sum()


# --- the 3-op expression --------------------------------------------------------------------
def test_three_op_expression_nodes_edges_labels_and_colours():
    y, w, b = three_op()
    nodes, edges, clusters = parse(viz.draw(y, params={"w": w, "b": b}).source)
    assert [label(nodes[f"n{i}"])[0] for i in range(7)] == ["x0", "w", "mul", "b", "add", "relu", "sum"]
    assert nodes["n1"]["fillcolor"] == "lightblue" and nodes["n3"]["fillcolor"] == "lightblue"
    assert nodes["n0"]["fillcolor"] == "lightyellow"
    assert {nodes[f"n{i}"]["fillcolor"] for i in (2, 4, 5, 6)} == {"lightgrey"}
    assert nodes["out0"]["fillcolor"] == "darkolivegreen1" and label(nodes["out0"]) == ["output", "() f32"]
    shown = {(s, d): a.get("label") for s, d, a in edges}
    assert shown == {("n0", "n2"): "(2, 3) f32", ("n1", "n2"): "(3,) f32", ("n2", "n4"): "(2, 3) f32",
                     ("n3", "n4"): "(3,) f32", ("n4", "n5"): "(2, 3) f32", ("n5", "n6"): "(2, 3) f32",
                     ("n6", "out0"): None}
    assert clusters == [] and "legend" in nodes and "parameter" in nodes["legend"]["label"]


def test_same_program_twice_gives_byte_identical_source():
    first = viz.draw(three_op()[0], show_saved=True).source
    assert viz.draw(three_op()[0], show_saved=True).source == first
    net, loss = conv_net()
    again, loss2 = conv_net()
    assert viz.draw(loss, module=net).source == viz.draw(loss2, module=again).source


def test_show_saved_lists_arrays_and_bytes():
    y, w, b = three_op()
    nodes, edges, _ = parse(viz.draw(y, params={"w": w, "b": b}, show_saved=True).source)
    saved = label(nodes["s2"])  # what mul keeps: its two inputs
    assert nodes["s2"]["fillcolor"] == "orange"
    assert saved == ["saved", "x0: (2, 3) f32  24 B", "w: (3,) f32  12 B", "total 36 B"]
    assert ("s2", "n2") in [(s, d) for s, d, _ in edges]


def test_options_shapes_off_legend_off_and_rankdir():
    y, *_ = three_op()
    source = viz.draw(y, show_shapes=False, legend=False, rankdir="LR").source
    nodes, edges, _ = parse(source)
    assert "rankdir=LR" in source and "legend" not in nodes
    assert all("label" not in a for _, _, a in edges)
    assert label(nodes["n1"]) == ["x1", "(3,) f32"]  # without edge labels the leaf shows its shape


def test_freed_graph_cannot_be_drawn():
    y, *_ = three_op()
    y.backward()
    with pytest.raises(GraphError, match="retain_graph=True"):
        viz.draw(y)


# --- modules: clusters and collapse ------------------------------------------------------------
def test_module_ops_are_clustered_and_parameters_named():
    net, loss = conv_net()
    nodes, edges, clusters = parse(viz.draw(loss, module=net).source)
    labels = [c[1] for c in clusters]
    assert labels == ["Net", "features.0 Conv2d", "features.1 ReLU", "classifier Linear"]
    assert [c[2] for c in clusters] == [0, 1, 1, 1]  # the layers nest inside the root module
    names = {label(a)[0] for a in nodes.values()}
    assert {"features.0.weight", "features.0.bias", "classifier.weight", "classifier.bias", "einsum"} <= names
    assert sum(label(a)[0] == "sliding_windows" for a in nodes.values()) == 1
    assert label(next(a for a in nodes.values() if label(a)[0] == "sliding_windows"))[1] == (
        "kernel=(3, 3), stride=(1, 1), dilation=(1, 1)")


def test_collapse_by_class_draws_one_box_per_module_call():
    net, loss = conv_net()
    nodes, edges, clusters = parse(viz.draw(loss, module=net, collapse=["Conv2d"]).source)
    boxes = {n: label(a) for n, a in nodes.items() if a.get("fillcolor") == "lavender"}
    assert list(boxes.values()) == [["features.0 Conv2d", "(2, 1, 6, 6) → (2, 4, 6, 6)",
                                     "weight (4, 1, 3, 3), bias (4,)", "5 ops"]]
    assert "features.0.weight" not in {label(a)[0] for a in nodes.values()}  # absorbed into the box
    assert "einsum" not in {label(a)[0] for a in nodes.values()}
    assert "relu" in {label(a)[0] for a in nodes.values()}  # other modules still drawn op by op
    (box,) = boxes
    assert [a["label"] for s, d, a in edges if s == box] == ["(2, 4, 6, 6) f32"]
    assert [c[1] for c in clusters] == ["Net", "features.1 ReLU", "classifier Linear"]


def test_fifty_layer_net_collapsed_by_depth_stays_readable():
    net, loss = deep_net(50)
    full, _, _ = parse(viz.draw(loss, module=net, legend=False).source)
    nodes, edges, clusters = parse(viz.draw(loss, module=net, depth=1, legend=False).source)
    assert len(full) > 150  # 25 x (4 ops + 2 parameters) + 25 relu + input
    assert len(nodes) <= 60
    boxes = [label(a) for a in nodes.values() if a.get("fillcolor") == "lavender"]
    assert len(boxes) == 50 and boxes[0][:3] == ["layers.0 Linear", "(4, 8) → (4, 8)", "weight (8, 8), bias (8,)"]
    by_class, _, _ = parse(viz.draw(loss, module=net, collapse=["Linear", "ReLU"], legend=False).source)
    assert len(by_class) == len(nodes)
    whole, _, _ = parse(viz.draw(loss, module=net, depth=0, legend=False).source)
    assert [label(a)[0] for a in whole.values() if a.get("fillcolor") == "lavender"] == ["Net"]


# --- backward graphs -----------------------------------------------------------------------------
def tanh_gradient():
    """d/dw sum(tanh(x * w)) recorded with create_graph inside record_backward: (gw, x, w)."""
    x = ag.tensor(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), requires_grad=True)
    w = ag.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x * w).tanh().sum()
    with viz.record_backward():
        (gw,) = ag.grad(y, [w], create_graph=True)
    return gw, x, w


def test_backward_graph_marks_gradient_ops_and_links_them_to_forward_ops():
    gw, x, w = tanh_gradient()
    nodes, edges, clusters = parse(viz.draw(gw, params={"x": x, "w": w}, backward=True).source)
    forward = {n for n, a in nodes.items() if a.get("fillcolor") == "lightgrey" and n.startswith("n")}
    grads = {n for n, a in nodes.items() if a.get("fillcolor") == "mistyrose" and n.startswith("n")}
    assert {label(nodes[n])[0] for n in forward} == {"mul", "tanh"}
    assert {"mul", "sum_to", "tanh", "sub"} <= {label(nodes[n])[0] for n in grads}
    links = [(s, d) for s, d, a in edges if a.get("color") == "firebrick"]
    assert {label(nodes[s])[0] for s, _ in links} == {"mul", "tanh"} and all(d in grads for _, d in links)
    assert sorted(c[1] for c in clusters) == ["∂ mul #2", "∂ tanh #3"]
    assert label(nodes["out0"])[0] == "gradient"


def test_backward_graph_without_record_backward_says_how_to_link():
    x = ag.tensor([0.5, 1.0], requires_grad=True)
    (gx,) = ag.grad(x.tanh().sum(), [x], create_graph=True)
    nodes, _, _ = parse(viz.draw(gx, backward=True).source)
    assert "record_backward()" in nodes["legend"]["label"]


# --- profile overlay ------------------------------------------------------------------------
class FakeProfile:
    """The overlay reads only stats(node); the real profiler has its own tests."""

    def __init__(self, table):
        self.table = table

    def stats(self, node):
        return self.table.get(node.prim.name) if node is not None else None


def test_overlay_prints_times_bytes_and_marks_nonfinite_in_red():
    from autograd.profiler import OpStats

    y, w, b = three_op()
    prof = FakeProfile({"mul": OpStats("mul", 0.001, 0.003, 36), "relu": OpStats("relu", 0.0005, 0.0, 24, True)})
    nodes, _, _ = parse(viz.draw(y, overlay=prof).source)
    assert label(nodes["n2"])[1:] == ["fwd 1.00 ms | bwd 3.00 ms", "saved 36 B"]
    assert nodes["n2"]["fillcolor"] == viz._heat(1.0)
    assert nodes["n5"]["color"] == "red" and label(nodes["n5"])[-1] == "NaN/Inf starts here (output)"
    assert nodes["n5"]["fillcolor"] == viz.COLORS["nonfinite"]
    assert label(nodes["n4"]) == ["add"]  # not profiled: plain
    prof.table["sum"] = OpStats("sum", 0.0001, 0.0, 24, True)  # downstream of relu: passes the NaN on
    nodes, _, _ = parse(viz.draw(y, overlay=prof).source)
    assert nodes["n6"]["color"] == "red" and nodes["n6"]["fillcolor"] != viz.COLORS["nonfinite"]
    assert label(nodes["n6"])[-1] == "NaN/Inf in output"


# --- rendering --------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz 'dot' program is not installed")
def test_render_svg_with_dot_contains_parameter_names(tmp_path):
    net, loss = conv_net()
    path = viz.draw(loss, module=net).render(tmp_path / "net", format="svg")
    root = ET.parse(path).getroot()
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"features.0.weight", "classifier.bias", "einsum"} <= texts
    bundle = viz.draw(three_op()[0])._repr_mimebundle_()
    assert bundle["image/svg+xml"].lstrip().startswith("<?xml")


def test_missing_dot_raises_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on PATH
    g = viz.draw(three_op()[0])
    assert g.source.startswith("digraph")  # DOT text needs no Graphviz program
    with pytest.raises(viz.GraphvizNotInstalled, match=r"apt-get install graphviz.*brew install graphviz"):
        g.render(tmp_path / "g", format="png")
    with pytest.raises(viz.GraphvizNotInstalled):
        g.pipe(format="svg")
    assert "apt-get install graphviz" in g._repr_mimebundle_()["text/plain"]
    assert g._repr_svg_() is None
