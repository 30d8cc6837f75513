"""The three bugs of docs/debugging.md, each caught with the message tapegrad prints.

    python examples/debugging.py
"""
import numpy as np

import autograd as ag
import nn.functional as F


def shape_error() -> None:
    images = ag.tensor(np.zeros((32, 3, 28, 28), np.float32))
    weight = ag.tensor(np.zeros((8, 1, 3, 3), np.float32), requires_grad=True)
    F.conv2d(images, weight)


def nan_in_backward() -> None:
    x = ag.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with ag.detect_anomaly():
        y = ag.where(x > 0, ag.sqrt(x), 0.0).sum()
        y.backward()


def in_place_bug() -> None:
    w = ag.tensor([1.0, 2.0], requires_grad=True)
    x = ag.tensor([3.0, 4.0])
    with ag.detect_anomaly():
        y = (w * x).sum()
        x *= 2
        y.backward()


if __name__ == "__main__":
    np.seterr(all="ignore")
    for bug in (shape_error, nan_in_backward, in_place_bug):
        try:
            bug()
        except Exception as exc:  # noqa: BLE001 - printing what the user would see
            print(f"--- {bug.__name__}\n{type(exc).__name__}: {exc}\n")
