"""ONNX export of tapegrad models: `autograd.onnx.export(model, example_inputs, "model.onnx")`.

Needs the `onnx` package (`pip install tapegrad[onnx]`). The forward is traced with the engine's
own recorder and read with `autograd.introspect.walk`; calls of known layers (Conv2d, Linear,
BatchNorm, pooling, Flatten) become one ONNX operator each, and every other primitive goes through
one translation table keyed by registry name (`TRANSLATIONS`). See docs/export.md.
"""
from __future__ import annotations

try:
    import onnx  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("autograd.onnx needs the onnx package: pip install 'tapegrad[onnx]'") from exc

from .export import DEFAULT_OPSET, MIN_OPSET, export
from .graph import BatchDim, ExportError
from .patterns import PATTERNS, Call, pattern
from .table import TRANSLATIONS, Site, translates

__all__ = ["export", "ExportError", "TRANSLATIONS", "translates", "Site", "PATTERNS", "pattern", "Call",
           "BatchDim", "DEFAULT_OPSET", "MIN_OPSET"]
