"""Neural-network building blocks in PyTorch's shape: Module/Parameter, containers, layers, init,
checkpoints. Modules own tensors; the maths is in `nn.functional`."""
from __future__ import annotations

from . import init, serialization, utils
from .module import IncompatibleKeys, Module, ModuleDict, ModuleList, Parameter, Sequential, StateDictError
from .serialization import CheckpointError, load, save
