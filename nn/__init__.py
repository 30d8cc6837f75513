"""Neural-network building blocks in PyTorch's shape: Module/Parameter, containers, layers, init,
checkpoints. Modules own tensors; the maths is in `nn.functional`."""
from __future__ import annotations

from . import functional, init, serialization, utils
from .layers import (
    GELU, AvgPool2d, BatchNorm1d, BatchNorm2d, BCEWithLogitsLoss, Conv1d, Conv2d, CrossEntropyLoss, Dropout,
    Flatten, Identity, LayerNorm, LeakyReLU, Linear, LogSoftmax, MaxPool2d, MSELoss, NLLLoss, ReLU, Sigmoid,
    Softmax, Tanh,
)
from .module import IncompatibleKeys, Module, ModuleDict, ModuleList, Parameter, Sequential, StateDictError
from .serialization import CheckpointError, load, save

__all__ = [name for name in dir() if not name.startswith("_")]
