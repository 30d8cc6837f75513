"""Make the pictures of docs/visualization.md: `python examples/draw_graphs.py [outdir]` (default docs/img).

Each section below is the code shown in the docs next to its picture. Needs the `dot` program
(apt-get install graphviz / brew install graphviz) to write PNGs.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import autograd as ag
import nn
from autograd import profiler, viz
from autograd.graph import _Mode
from autograd.primitive import Primitive

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "docs" / "img"


def save(graph: viz.Graph, name: str) -> None:
    graph.render(OUT / name, format="png", cleanup=True)
    print("wrote", OUT / f"{name}.png")


def digit_cnn() -> nn.Module:
    """The reference digit CNN: conv3x3 1->8 (pad 1) + BN + ReLU -> maxpool 2 -> linear 10, 20x20 input."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(8 * 10 * 10, 10),
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    # --- 1. a 3-op expression ---------------------------------------------------------------
    x = ag.tensor(rng.standard_normal((2, 3)).astype(np.float32))
    w = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    b = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    y = (x * w + b).relu().sum()
    save(viz.draw(y, params={"w": w, "b": b}), "graph-3op")
    save(viz.draw(y, params={"w": w, "b": b}, show_saved=True, rankdir="LR"), "graph-3op-saved")

    # --- 2. the digit CNN: modules as clusters, then collapsed ------------------------------
    model = digit_cnn()
    images = ag.tensor(rng.standard_normal((4, 1, 20, 20)).astype(np.float32))
    labels = ag.tensor(np.array([3, 1, 4, 1]))
    with viz.record_inputs():  # draw `images` as the input, not conv's unfolding of it
        logits = model(images)
    save(viz.draw(logits, module=model), "graph-cnn")
    save(viz.draw(logits, module=model, depth=1), "graph-cnn-collapsed")
    save(viz.draw(logits, module=model, collapse=["Conv2d", "BatchNorm2d"]), "graph-cnn-collapse-by-class")

    # --- 3. a 50-layer net, one box per layer -----------------------------------------------
    layers = []
    for _ in range(25):
        layers += [nn.Linear(16, 16), nn.ReLU()]
    deep = nn.Sequential(*layers)
    out = deep(ag.tensor(rng.standard_normal((8, 16)).astype(np.float32))).sum()
    save(viz.draw(out, module=deep, depth=1, show_shapes=False), "graph-deep")

    # --- 4. a backward graph (create_graph=True) --------------------------------------------
    x = ag.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    w = ag.tensor(rng.standard_normal(3).astype(np.float32), requires_grad=True)
    loss = (x * w).tanh().sum()
    with viz.record_backward():
        (gw,) = ag.grad(loss, [w], create_graph=True)
    save(viz.draw(gw, params={"x": x, "w": w}, backward=True), "graph-backward")
    save(viz.draw(gw, params={"x": x, "w": w}, backward=True, layout="side_by_side"), "graph-backward-side")

    # --- 4b. source lines as labels (captured by anomaly mode or a profile) ---------------------
    with ag.detect_anomaly():
        y = (x * w).tanh().sum()
    save(viz.draw(y, params={"x": x, "w": w}), "graph-source")

    # --- 5. a profile overlay -----------------------------------------------------------------
    nn.CrossEntropyLoss()(model(images), labels).backward()  # warm up: first calls pay one-off costs
    with profiler.profile() as prof:
        loss = nn.CrossEntropyLoss()(model(images), labels)
        loss.backward(retain_graph=True)  # keep the graph to draw it afterwards
    print(prof.table())
    save(viz.draw(loss, module=model, depth=1, overlay=prof), "graph-profile")

    x = ag.tensor(np.array([[1.0, -2.0], [3.0, 4.0]], np.float32), requires_grad=True)
    with profiler.profile() as prof, np.errstate(all="ignore"):
        z = (x.log() * 2.0).sum()
        z.backward(retain_graph=True)
    save(viz.draw(z, params={"x": x}, overlay=prof), "graph-nan")


if __name__ == "__main__":
    main()
