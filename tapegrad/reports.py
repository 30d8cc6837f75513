"""What a run leaves for people to read: metrics.csv, curves.png, confusion.png, and text tables.

Plots use matplotlib's Agg backend (no display needed) and import matplotlib only when drawing, so
`tapegrad --help` stays fast. Every writer goes through a temporary file + rename, like checkpoints.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from autograd.fileio import atomic_write

COLUMNS = ("epoch", "loss", "train_acc", "test_acc", "samples_per_s", "seconds")
# Above this many classes a confusion matrix is neither drawn nor printed (a 9001-class heat map
# takes minutes and a 9001x9001 table is unreadable); per-class recall then lists present classes only.
MAX_MATRIX_CLASSES = 100
MAX_CURVE_POINTS = 2000  # per-batch losses are averaged into at most this many points


# --- tables --------------------------------------------------------------------------------------
def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """cm[t, p] = how many samples of true class t were predicted as p."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)), 1)
    return cm


def recall_from_predictions(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """per_class_recall without the matrix: O(N + classes) memory, for any number of classes."""
    labels, predictions = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    totals = np.bincount(labels, minlength=num_classes)
    hits = np.bincount(labels[labels == predictions], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, hits / np.maximum(totals, 1), np.nan)


def per_class_recall(cm: np.ndarray) -> np.ndarray:
    """recall[c] = correct of class c / samples of class c (NaN for a class absent from the labels)."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def format_recall(recall: np.ndarray, class_names: Sequence[str]) -> str:
    """One line: `recall: 0 99.1%  1 100.0%  ...` (n/a for absent classes; with more than
    MAX_MATRIX_CLASSES classes the absent ones are left out and counted)."""
    pairs = list(zip(class_names, recall))
    absent = 0
    if len(pairs) > MAX_MATRIX_CLASSES:
        kept = [(n, r) for n, r in pairs if not np.isnan(r)]
        absent, pairs = len(pairs) - len(kept), kept
    parts = [f"{name} {'n/a' if np.isnan(r) else f'{100 * r:.1f}%'}" for name, r in pairs]
    tail = f"  ({absent} classes absent from the labels)" if absent else ""
    return "per-class recall: " + "  ".join(parts) + tail


def format_confusion(cm: np.ndarray, class_names: Sequence[str]) -> str:
    """The confusion matrix as aligned text: rows are true classes, columns predictions."""
    names = [str(n) for n in class_names]
    width = max(max(len(n) for n in names), len(str(int(cm.max()) if cm.size else 0)), 4)
    header = "true\\pred".ljust(width + 2) + " ".join(n.rjust(width) for n in names)
    rows = [names[i].ljust(width + 2) + " ".join(str(int(v)).rjust(width) for v in cm[i]) for i in range(len(cm))]
    return "\n".join([header] + rows)


# --- metrics.csv ---------------------------------------------------------------------------------
def write_metrics_csv(path: str | os.PathLike, history: Sequence[dict[str, float]]) -> None:
    """Rewrite metrics.csv from the full history (one row per epoch), atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in history:
        writer.writerow([int(row["epoch"])] + [repr(float(row[c])) for c in COLUMNS[1:]])
    atomic_write(Path(path), buffer.getvalue().encode())


def read_metrics_csv(path: str | os.PathLike) -> list[dict[str, float]]:
    with open(path, newline="") as handle:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]


# --- figures -------------------------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=100, bbox_inches="tight")
    atomic_write(Path(path), buffer.getvalue())


def _binned(steps: Sequence[tuple[float, float]], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(x, loss) of per-batch points, averaged in consecutive bins when there are more than `limit`."""
    data = np.asarray(steps, dtype=np.float64).reshape(-1, 2)
    if len(data) <= limit:
        return data[:, 0], data[:, 1]
    bins = np.array_split(data, limit)
    return np.array([b[:, 0].mean() for b in bins]), np.array([b[:, 1].mean() for b in bins])


def plot_curves(path: str | os.PathLike, history: Sequence[dict[str, float]], title: str = "",
                steps: Sequence[tuple[float, float]] = ()) -> tuple[float, float]:
    """Loss (left) and train/test accuracy (right) per epoch, every point marked.

    `steps`: (epoch as a fraction, e.g. 0.25 = a quarter into the first, loss) of each batch, drawn
    as a thin line under the epoch means, so even a one-epoch run shows how its loss went. The x
    axis starts at 0 (the start of training) and ticks whole epochs. Returns the x limits.
    """
    plt = _pyplot()
    epochs = [int(r["epoch"]) for r in history]
    last = max(epochs + [float(x) for x, _ in steps[-1:]] + [1])
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5))
    try:
        if len(steps):
            xs, ys = _binned(steps, MAX_CURVE_POINTS)
            ax_loss.plot(xs, ys, linewidth=0.8, alpha=0.6, color="tab:gray", label="train loss (per batch)")
        ax_loss.plot(epochs, [r["loss"] for r in history], marker="o", label="train loss (epoch mean)")
        ax_loss.set_ylabel("loss")
        ax_acc.plot(epochs, [100 * r["train_acc"] for r in history], marker="o", label="train")
        ax_acc.plot(epochs, [100 * r["test_acc"] for r in history], marker="s", label="test")
        ax_acc.set_ylabel("accuracy (%)")
        for ax in (ax_loss, ax_acc):
            ax.set_xlabel("epoch")
            ax.set_xlim(0, last + 0.05 * last)
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.legend()
        if title:
            fig.suptitle(title)
        _save_figure(fig, path)
        return ax_loss.get_xlim()
    finally:
        plt.close(fig)


def plot_confusion(path: str | os.PathLike, cm: np.ndarray, class_names: Sequence[str], title: str = "") -> None:
    """The confusion matrix as a heat map with counts (rows: true class, columns: prediction);
    at most MAX_MATRIX_CLASSES classes (callers skip the plot above that, and say so)."""
    n = len(class_names)
    if n > MAX_MATRIX_CLASSES:
        raise ValueError(f"plot_confusion: {n} classes; at most {MAX_MATRIX_CLASSES} can be drawn")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(0.55 * n + 2.5, 0.55 * n + 2))
    try:
        image = ax.imshow(cm, cmap="Blues")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        long_names = any(len(str(c)) > 2 for c in class_names)
        ax.set_xticks(range(n), [str(c) for c in class_names], rotation=45 if long_names else 0,
                      ha="right" if long_names else "center")
        ax.set_yticks(range(n), [str(c) for c in class_names])
        ax.set_xlabel("prediction")
        ax.set_ylabel("true class")
        threshold = cm.max() / 2 if cm.size else 0
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(int(v)), ha="center", va="center", fontsize=7,
                    color="white" if v > threshold else "black")
        ax.set_title(title or "confusion matrix")
        _save_figure(fig, path)
    finally:
        plt.close(fig)
