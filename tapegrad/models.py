"""The reference models, each a plain `nn.Module`, and `MODELS`: name -> constructor + recipe.

Every model takes `input_shape=(C, H, W)` (so one class runs on 20x20 synthetic digits and on 28x28
MNIST), `num_classes`, and `seed`: all initial weights are drawn from `numpy.random.default_rng(seed)`
in layer order with PyTorch's default initialisers, so a seed fixes the model. Models return
logits (or, for `nielsen-mlp`, sigmoid activations); the softmax lives in the loss.

Conventions the PyTorch twins follow too:
- "L2 lambda" is Nielsen's regularised cost `C = C0 + lambda/(2n) sum(w**2)` with n the number of
  training images, applied as the optimizer's coupled `weight_decay = lambda / n` (PyTorch's
  `g += wd * p`, on every parameter, biases included; after gradient clipping, as in `torch.optim`).
  `Recipe.l2` holds lambda; the CLI resolves `weight_decay` from the training-set size and writes
  it to config.json (`--weight-decay` sets it directly). Read as a per-step `wd = 0.01`, the digits
  recipe's coupled Adam decay plateaus at ~86% test accuracy (measured); as lambda/n it reaches 100%.
- The quadratic cost is Nielsen's `C = 1/(2n) sum_x ||y(x) - a(x)||^2` (`QuadraticCost`): summed
  over the 10 outputs, averaged over the batch, with the 1/2. PyTorch's `MSELoss()` would divide by
  10 and drop the 1/2 (a gradient 5x smaller), which changes what `lr=3.0` means.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np

import autograd as ag
import nn
from autograd.tensor import Tensor

Shape = tuple[int, int, int]


def _pooled(size: int, kernel: int = 2) -> int:
    return size // kernel


def _init_rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Independent generators for the initial weights and for dropout masks."""
    weights, dropout = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(weights), np.random.default_rng(dropout)


class Digits(nn.Module):
    """conv3x3 (8, pad 1) + BatchNorm + ReLU -> maxpool 2 -> linear: the default synthetic-digit net."""

    def __init__(self, input_shape: Shape = (1, 20, 20), num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        c, h, w = input_shape
        g, _ = _init_rngs(seed)
        self.conv = nn.Conv2d(c, 8, 3, padding=1, rng=g)
        self.bn = nn.BatchNorm2d(8)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8 * _pooled(h) * _pooled(w), num_classes, rng=g)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.pool(self.relu(self.bn(self.conv(x))))))


class Zhou(nn.Module):
    """conv3x3x8 (no bias, valid) -> maxpool 2 -> linear 10 (Victor Zhou's NumPy CNN)."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        c, h, w = input_shape
        g, _ = _init_rngs(seed)
        self.conv = nn.Conv2d(c, 8, 3, bias=False, rng=g)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(8 * _pooled(h - 2) * _pooled(w - 2), num_classes, rng=g)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.pool(self.conv(x))))


class Escontrela(nn.Module):
    """conv5x5x8 -> ReLU -> conv5x5x8 -> ReLU -> maxpool 2 -> FC128 -> ReLU -> FC10."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        c, h, w = input_shape
        g, _ = _init_rngs(seed)
        self.conv1 = nn.Conv2d(c, 8, 5, rng=g)
        self.conv2 = nn.Conv2d(8, 8, 5, rng=g)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(8 * _pooled(h - 8) * _pooled(w - 8), 128, rng=g)
        self.fc2 = nn.Linear(128, num_classes, rng=g)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu(self.conv2(self.relu(self.conv1(x)))))
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class NielsenMLP(nn.Module):
    """784-30-10 with sigmoids on both layers (Nielsen's network.py); outputs activations in (0, 1)."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10, seed: int = 0,
                 out_activation: bool = True) -> None:
        super().__init__()
        c, h, w = input_shape
        g, _ = _init_rngs(seed)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c * h * w, 30, rng=g)
        self.sigmoid = nn.Sigmoid()
        self.fc2 = nn.Linear(30, num_classes, rng=g)
        self.out_activation = out_activation

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc2(self.sigmoid(self.fc1(self.flatten(x))))
        return self.sigmoid(x) if self.out_activation else x


class MLPL2(NielsenMLP):
    """784-30 sigmoid -> 10 logits, trained with softmax cross-entropy and L2 (Nielsen's network2.py)."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10, seed: int = 0) -> None:
        super().__init__(input_shape, num_classes, seed, out_activation=False)


class NielsenConv(nn.Module):
    """conv5x5x20 -> maxpool 2 -> sigmoid -> FC100 sigmoid -> softmax (Nielsen's network3.py)."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        c, h, w = input_shape
        g, _ = _init_rngs(seed)
        self.conv = nn.Conv2d(c, 20, 5, rng=g)
        self.pool = nn.MaxPool2d(2)
        self.sigmoid = nn.Sigmoid()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(20 * _pooled(h - 4) * _pooled(w - 4), 100, rng=g)
        self.fc2 = nn.Linear(100, num_classes, rng=g)

    def forward(self, x: Tensor) -> Tensor:
        x = self.flatten(self.sigmoid(self.pool(self.conv(x))))
        return self.fc2(self.sigmoid(self.fc1(x)))


class ConvBNReLU(nn.Module):
    """conv3x3 (pad 1, no bias: BatchNorm's shift replaces it) + BatchNorm + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False, rng=rng)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.bn(self.conv(x)))


class LeNetBN(nn.Module):
    """Three conv+BN+ReLU blocks (32, 32, 64) with two maxpools, FC128 + dropout 0.3, FC10."""

    def __init__(self, input_shape: Shape = (1, 28, 28), num_classes: int = 10, seed: int = 0,
                 dropout: float = 0.3) -> None:
        super().__init__()
        c, h, w = input_shape
        g, g_dropout = _init_rngs(seed)
        self.block1 = ConvBNReLU(c, 32, g)
        self.block2 = ConvBNReLU(32, 32, g)
        self.pool1 = nn.MaxPool2d(2)
        self.block3 = ConvBNReLU(32, 64, g)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64 * _pooled(_pooled(h)) * _pooled(_pooled(w)), 128, rng=g)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout, rng=g_dropout)
        self.fc2 = nn.Linear(128, num_classes, rng=g)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.block2(self.block1(x)))
        x = self.flatten(self.pool2(self.block3(x)))
        return self.fc2(self.dropout(self.relu(self.fc1(x))))


# --- losses --------------------------------------------------------------------------------------
class QuadraticCost(nn.Module):
    """Nielsen's quadratic cost against one-hot targets: mean over the batch of 1/2 ||y - a||^2."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        labels = np.asarray(target.data if isinstance(target, Tensor) else target)
        onehot = np.eye(input.shape[1], dtype=input.dtype)[labels]
        diff = input - ag.tensor(onehot)
        return (diff * diff).sum(axis=1).mean() * 0.5


LOSSES: dict[str, Callable[[], nn.Module]] = {
    "cross_entropy": nn.CrossEntropyLoss,
    "quadratic": QuadraticCost,
}


# --- registry ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """A model's reference training settings: the CLI's defaults for that model."""

    optimizer: str  # "sgd" | "adam" | "adamw"
    lr: float
    batch_size: int
    epochs: int
    betas: tuple[float, float] = (0.9, 0.999)
    l2: float = 0.0  # Nielsen's lambda: weight_decay = l2 / n_train (see the module docstring)
    clip_value: float | None = None
    clip_norm: float | None = None
    early_stop_loss: float | None = None
    loss: str = "cross_entropy"  # a key of LOSSES
    scheduler: str | None = None  # None | "cosine" (CosineAnnealingLR, T_max = epochs, stepped per epoch)
    input_shape: Shape = (1, 28, 28)  # the reference input size

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]  # build(input_shape=, num_classes=, seed=)
    recipe: Recipe
    summary: str = field(default="")


def _spec(name: str, cls: type, recipe: Recipe) -> ModelSpec:
    return ModelSpec(name, cls, recipe, (cls.__doc__ or "").strip().splitlines()[0])


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        # early stop: the moving-average training loss (EMA, see train.EarlyStopping) below 0.003
        _spec("digits", Digits, Recipe("adam", 0.01, 32, 10, l2=0.01, clip_value=0.5,
                                       early_stop_loss=0.003, input_shape=(1, 20, 20))),
        _spec("zhou", Zhou, Recipe("sgd", 0.005, 1, 3)),
        _spec("escontrela", Escontrela, Recipe("adam", 0.01, 32, 2, betas=(0.95, 0.99))),
        _spec("nielsen-mlp", NielsenMLP, Recipe("sgd", 3.0, 10, 30, loss="quadratic")),
        # Nielsen's network2 uses lambda = 5.0 (over n = 50,000 training images: wd 1e-4)
        _spec("mlp-l2", MLPL2, Recipe("sgd", 3.0, 50, 10, l2=5.0)),
        _spec("nielsen-conv", NielsenConv, Recipe("sgd", 0.1, 10, 10)),
        _spec("lenet-bn", LeNetBN, Recipe("adam", 1e-3, 128, 10, scheduler="cosine")),
    )
}
DEFAULT_MODEL = "digits"


def weight_decay_for(recipe: Recipe, n_train: int) -> float:
    """The optimizer weight_decay of a recipe's L2 lambda on a training set of `n_train` images."""
    return recipe.l2 / n_train if recipe.l2 and n_train else 0.0


def build_model(name: str, input_shape: Shape, num_classes: int = 10, seed: int = 0) -> nn.Module:
    """Instantiate model `name` of MODELS; raises KeyError naming the known models."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name].build(input_shape=tuple(input_shape), num_classes=num_classes, seed=seed)
