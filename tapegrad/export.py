"""`tapegrad export RUN_DIR -o model.onnx`: a trained run as an ONNX model any runtime can serve.

The run's model is rebuilt from config.json, loaded from model.npz and exported in eval mode with a
dynamic batch axis (autograd.onnx). When onnxruntime is installed, the file is checked against
tapegrad on a few of the run's input shape's random images and the largest difference is printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


INPUT_NAME, OUTPUT_NAME = "input", "output"
# relative to the outputs' size: float32 rounding stays well below it (measured: 2e-5 on logits up to 77,
# where tapegrad itself is 3e-5 from float64), a wrong translation does not
CHECK_TOLERANCE = 1e-5


def add_export_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `export` command to the CLI's subparsers."""
    p = subparsers.add_parser("export", help="write a trained run as an ONNX model",
                              description="Export a run's model (eval mode, dynamic batch) as an ONNX file; "
                                          "needs the onnx package (pip install 'tapegrad[onnx]').")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", default="model.onnx", help="output file (default: model.onnx)")
    p.add_argument("--opset", type=int, help="ONNX opset to write (default: 17)")
    p.add_argument("--static-batch", action="store_true",
                   help="fix the batch axis at --batch-size instead of leaving it dynamic")
    p.add_argument("--batch-size", type=int, default=2, help="batch size of the traced example (default: 2)")
    p.add_argument("--no-patterns", action="store_true",
                   help="translate every primitive one by one (no Conv, Gemm, ... nodes)")
    p.set_defaults(func=cmd_export)
    return p


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np

    from .cli import UserError, load_run
    from .config import check_number

    try:
        from autograd.onnx import ExportError, export
    except ImportError as exc:
        raise UserError(f"{exc}") from None
    check_number("batch_size", args.batch_size)
    cfg, model = load_run(Path(args.run_dir))
    shape = (args.batch_size, *cfg["input_shape"])
    example = np.random.default_rng(0).random(shape, dtype=np.float32)
    out = Path(args.output)
    try:
        onnx_model = export(model, example, out, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                            dynamic_batch=not args.static_batch, opset=args.opset, patterns=not args.no_patterns)
    except (ExportError, ValueError) as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    ops = [n.op_type for n in onnx_model.graph.node]
    batch = str(args.batch_size) if args.static_batch else "batch"
    print(f"wrote {out}: {cfg['model']}, {len(ops)} nodes ({', '.join(dict.fromkeys(ops))}); "
          f"input '{INPUT_NAME}' ({batch}, {', '.join(map(str, cfg['input_shape']))}) float32 -> "
          f"output '{OUTPUT_NAME}' ({batch}, {cfg['num_classes']})")
    check = _check_with_onnxruntime(model, out, shape)
    if check is not None:
        diff, scale = check
        text = f"largest difference {diff:.1e} (outputs up to {scale:.3g}) on {shape[0]} random images"
        if diff <= CHECK_TOLERANCE * max(1.0, scale):
            print(f"onnxruntime agrees with tapegrad: {text}")
        else:
            print(f"tapegrad: warning: onnxruntime differs from tapegrad: {text}", file=sys.stderr)
    return 0


def _check_with_onnxruntime(model: Any, path: Path, shape: tuple[int, ...]) -> tuple[float, float] | None:
    """(largest |onnxruntime - tapegrad|, largest |output|) on random images; None without onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return None
    import numpy as np

    import autograd as ag

    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {INPUT_NAME: x})
    was_training = model.training
    model.eval()
    try:
        with ag.no_grad():
            want = model(ag.tensor(x)).data
    finally:
        model.train(was_training)
    return float(np.abs(got - want).max()), float(np.abs(want).max())
