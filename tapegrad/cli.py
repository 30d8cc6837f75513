"""`tapegrad`: train the reference models, evaluate and query a run, draw a model's graph.

    tapegrad train [--model digits] [--dataset synthetic-digits] ...   (the default command)
    tapegrad eval RUN_DIR          accuracy, per-class recall, confusion matrix
    tapegrad predict RUN_DIR -n 10 `Sample i - digit: d | prediction: p`
    tapegrad graph --model M -o graph.svg

User errors (unknown model or dataset, missing data, an unwritable run directory, a damaged
checkpoint) print one `tapegrad: error: ...` message and exit with code 2, never a traceback.
Ctrl-C during training saves a checkpoint and exits with code 130.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from autograd.errors import ShapeError

from . import __version__

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
DATASETS = ("synthetic-digits", "mnist", "fashion-mnist", "mnist-10k")
SYNTHETIC_TRAIN, SYNTHETIC_TEST, SYNTHETIC_SEED = 20000, 500, 0
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
# Settings a resumed run takes from its config.json; only these may be given again with --resume.
RESUMABLE_OVERRIDES = ("epochs",)
RECIPE_OPTIONS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "clip_value", "clip_norm",
                  "early_stop_loss")


class UserError(Exception):
    """A problem with the user's input or environment: reported in one line, exit code 2."""


# --- data ----------------------------------------------------------------------------------------
def _mnist_10k_dir(data_dir: str | None) -> Path:
    if data_dir:
        return Path(data_dir)
    if os.environ.get("TAPEGRAD_MNIST_DIR"):
        return Path(os.environ["TAPEGRAD_MNIST_DIR"])
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def _limit(ds: Any, n: int | None) -> Any:
    from tapegrad.data import ArrayDataset

    if n is None or n >= len(ds):
        return ds
    if n < 1:
        raise UserError(f"limits must be >= 1, got {n}")
    return ArrayDataset(ds.images[:n], ds.labels[:n])


def load_datasets(name: str, data_dir: str | None = None, limit_train: int | None = None,
                  limit_test: int | None = None) -> tuple[Any, Any, list[str]]:
    """(train, test, class names) of a dataset name or an .npz path (split 80/20 in file order)."""
    from tapegrad import data

    try:
        if name == "synthetic-digits":
            (xtr, ytr), (xte, yte) = data.synthetic_digits_split(SYNTHETIC_TRAIN, SYNTHETIC_TEST, SYNTHETIC_SEED)
            train, test = data.ArrayDataset(xtr, ytr), data.ArrayDataset(xte, yte)
        elif name in ("mnist", "fashion-mnist"):
            loader = data.MNIST if name == "mnist" else data.FashionMNIST
            train, test = loader(data_dir, train=True), loader(data_dir, train=False)
        elif name == "mnist-10k":
            train, test = data.mnist_split_from_test_set(_mnist_10k_dir(data_dir))
        elif name.endswith(".npz"):
            full = data.load_npz(name)
            cut = int(round(0.8 * len(full)))
            if not 0 < cut < len(full):
                raise UserError(f"{name}: {len(full)} samples are too few to split into train and test")
            train = data.ArrayDataset(full.images[:cut], full.labels[:cut])
            test = data.ArrayDataset(full.images[cut:], full.labels[cut:])
        else:
            raise UserError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)}, or a PATH.npz)")
    except (data.DatasetNotFoundError, data.IDXFormatError, FileNotFoundError, ValueError, TypeError) as exc:
        raise UserError(str(exc)) from None
    if name == "fashion-mnist":
        classes = list(FASHION_CLASSES)
    else:
        top = max(int(train.labels.max()), int(test.labels.max())) + 1
        classes = [str(i) for i in range(max(top, 10) if name in DATASETS else top)]
    return _limit(train, limit_train), _limit(test, limit_test), classes


# --- run directories -----------------------------------------------------------------------------
def _atomic_json(path: Path, obj: Any) -> None:
    from tapegrad.reports import _atomic_write

    _atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _default_run_dir(model: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{model}-{stamp}"
    path, k = base, 1
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


def _io_error(what: str, path: Any, exc: OSError) -> UserError:
    reason = exc.strerror or str(exc)
    return UserError(f"{what} {path}: {reason}")


def read_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.json"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a tapegrad run directory (no config.json)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    import nn

    path = run_dir / "model.npz"
    try:
        return nn.load(path)
    except FileNotFoundError:
        raise UserError(f"{run_dir} has no checkpoint (model.npz): the run saved none yet") from None
    except (nn.CheckpointError, OSError) as exc:
        raise UserError(str(exc)) from None


def load_run(run_dir: Path) -> tuple[dict[str, Any], Any]:
    """(config, model with the checkpoint's weights) of a run directory."""
    from tapegrad.models import build_model
    import nn

    cfg = read_config(run_dir)
    model = build_model(cfg["model"], tuple(cfg["input_shape"]), cfg["num_classes"], cfg["seed"])
    try:
        model.load_state_dict(load_checkpoint(run_dir)["model"])
    except (nn.StateDictError, KeyError, ValueError) as exc:
        raise UserError(f"{run_dir / 'model.npz'} does not fit model {cfg['model']!r}: {exc}") from None
    return cfg, model


# --- train ---------------------------------------------------------------------------------------
def resolve_config(args: argparse.Namespace, n_train: int, n_test: int, input_shape: tuple,
                   classes: list[str]) -> dict:
    """Every setting of a run, with the model's recipe filling what the command line left out."""
    from tapegrad.models import MODELS, weight_decay_for

    recipe = MODELS[args.model].recipe
    pick = lambda name: getattr(args, name) if getattr(args, name) is not None else getattr(recipe, name)  # noqa: E731
    weight_decay = args.weight_decay if args.weight_decay is not None else weight_decay_for(recipe, n_train)
    for name in ("epochs", "batch_size"):
        if pick(name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be >= 1, got {pick(name)}")
    return {
        "model": args.model, "dataset": args.dataset, "data_dir": args.data_dir,
        "limit_train": args.limit_train, "limit_test": args.limit_test, "n_train": n_train, "n_test": n_test,
        "data_seed": SYNTHETIC_SEED if args.dataset == "synthetic-digits" else None,
        "input_shape": list(input_shape), "num_classes": len(classes), "class_names": classes,
        "epochs": pick("epochs"), "batch_size": pick("batch_size"), "optimizer": pick("optimizer"),
        "lr": pick("lr"), "betas": list(recipe.betas), "l2": recipe.l2 if args.weight_decay is None else None,
        "weight_decay": weight_decay, "clip_value": pick("clip_value"), "clip_norm": pick("clip_norm"),
        "early_stop_loss": pick("early_stop_loss"), "loss": recipe.loss, "scheduler": recipe.scheduler,
        "seed": args.seed, "tapegrad_version": __version__,
    }


def _make_optimizer(cfg: dict, params: Any) -> Any:
    import optim

    kind, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    try:
        if kind == "sgd":
            return optim.SGD(params, lr=lr, weight_decay=wd)
        cls = optim.Adam if kind == "adam" else optim.AdamW
        return cls(params, lr=lr, betas=tuple(cfg["betas"]), weight_decay=wd)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def write_graph(model: Any, input_shape: Sequence[int], out: Path, backward: bool = False,
                collapse: Sequence[str] = (), loss: str = "cross_entropy") -> Path:
    """Draw one forward (or, with backward, its gradient graph) of `model` to `out` (.dot/.gv or any
    Graphviz output format such as .svg, .png, .pdf, which need the `dot` program)."""
    import autograd as ag
    from autograd.viz import draw, record_backward
    from tapegrad.models import LOSSES

    x = ag.tensor(np.random.default_rng(0).random((1, *input_shape), dtype=np.float32))
    output = model(x)
    if backward:
        params = list(model.parameters())
        value = LOSSES[loss]()(output, np.zeros(1, dtype=np.int64))
        with record_backward():
            grads = ag.grad(value, params, create_graph=True)
        graph = draw(*grads, module=model, backward=True, collapse=collapse)
    else:
        graph = draw(output, module=model, collapse=collapse)
    fmt = out.suffix.lstrip(".").lower()
    if fmt in ("dot", "gv", ""):
        out.write_text(graph.source)
    else:
        out.write_bytes(graph.pipe(format=fmt))
    return out


def _write_run_graph(model: Any, cfg: dict, run_dir: Path) -> None:
    """graph.dot always, graph.svg when `dot` exists; drawn on a copy so the run's state is untouched."""
    try:
        twin = copy.deepcopy(model)
        write_graph(twin, cfg["input_shape"], run_dir / "graph.dot", loss=cfg["loss"])
        if shutil.which("dot"):
            write_graph(twin, cfg["input_shape"], run_dir / "graph.svg", loss=cfg["loss"])
    except OSError as exc:
        raise _io_error("cannot write the graph to", run_dir, exc) from None
    except ShapeError as exc:  # the model cannot take these images at all: say so before training
        raise UserError(f"model {cfg['model']} cannot take {cfg['dataset']} images of shape "
                        f"{tuple(cfg['input_shape'])}: {exc}") from None
    except Exception as exc:  # a drawing problem must not cost the user the training run
        print(f"tapegrad: warning: could not draw the model graph: {type(exc).__name__}: {exc}", file=sys.stderr)


def _check_resume_args(args: argparse.Namespace) -> None:
    given = [name for name in RECIPE_OPTIONS + ("model", "dataset", "data_dir", "seed", "limit_train",
                                                "limit_test", "out")
             if name not in RESUMABLE_OVERRIDES and getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise UserError(f"--resume continues a run with its saved settings; only --epochs and --no-progress "
                        f"may be given with it (got {flags})")


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        _check_resume_args(args)
        run_dir = Path(args.resume)
        cfg = read_config(run_dir)
        if args.epochs is not None:
            cfg["epochs"] = args.epochs
        train_ds, test_ds, _ = load_datasets(cfg["dataset"], cfg["data_dir"], cfg["limit_train"], cfg["limit_test"])
    else:
        args.model = args.model or "digits"
        args.dataset = args.dataset or "synthetic-digits"
        args.seed = 0 if args.seed is None else args.seed
        train_ds, test_ds, classes = load_datasets(args.dataset, args.data_dir, args.limit_train, args.limit_test)
        cfg = resolve_config(args, len(train_ds), len(test_ds), tuple(train_ds.images.shape[1:]), classes)
        run_dir = Path(args.out) if args.out else _default_run_dir(cfg["model"])
        if (run_dir / "model.npz").exists():
            raise UserError(f"{run_dir} already holds a run (model.npz); continue it with --resume {run_dir} "
                            "or choose another --out")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        _atomic_json(run_dir / "config.json", cfg)
    except OSError as exc:
        raise _io_error("cannot write to the run directory", run_dir, exc) from None
    return _train_run(cfg, run_dir, train_ds, test_ds, resume=bool(args.resume), no_progress=args.no_progress)


def _train_run(cfg: dict, run_dir: Path, train_ds: Any, test_ds: Any, resume: bool, no_progress: bool) -> int:
    import nn
    import optim
    from tapegrad import reports
    from tapegrad.data import DataLoader
    from tapegrad.models import LOSSES, build_model
    from tapegrad.train import (EarlyStopping, TrainingDiverged, catch_sigint, checkpoint_state, fit, format_epoch,
                                predict, restore_checkpoint)

    model = build_model(cfg["model"], tuple(cfg["input_shape"]), cfg["num_classes"], cfg["seed"])
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"]) if cfg["scheduler"] == "cosine" \
        else None
    loader = DataLoader(train_ds, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"])
    early = EarlyStopping(cfg["early_stop_loss"]) if cfg["early_stop_loss"] is not None else None
    progress = None
    if resume:
        try:
            progress = restore_checkpoint(load_checkpoint(run_dir), model, optimizer, scheduler, loader, early)
        except (KeyError, ValueError, nn.StateDictError) as exc:
            raise UserError(f"cannot resume from {run_dir / 'model.npz'}: {exc}") from None
        if early is not None and early.stopped:
            print(f"{run_dir}: this run already stopped early (moving-average loss below {early.threshold}); "
                  "nothing to do")
            return 0
        if progress.epoch >= cfg["epochs"]:
            print(f"{run_dir}: already trained {progress.epoch} epochs; pass --epochs N (> {progress.epoch}) "
                  "to train further")
            return 0
    else:
        _write_run_graph(model, cfg, run_dir)
    checkpoint_path = run_dir / "model.npz"
    classes = cfg["class_names"]
    where = f"resuming {run_dir} at epoch {progress.epoch + 1}, step {progress.step}" if resume else \
        f"run directory {run_dir}"
    print(f"training {cfg['model']} on {cfg['dataset']} ({len(train_ds)} train / {len(test_ds)} test, "
          f"{cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}, up to {cfg['epochs']} epochs); {where}",
          flush=True)

    def save(state: Any) -> None:
        nn.save(checkpoint_state(model, optimizer, scheduler, loader, early, state), checkpoint_path)

    def on_epoch(row: dict, state: Any) -> None:
        print(format_epoch(row, cfg["epochs"]), flush=True)
        save(state)
        reports.write_metrics_csv(run_dir / "metrics.csv", state.history)
        reports.plot_curves(run_dir / "curves.png", state.history, title=f"{cfg['model']} on {cfg['dataset']}")

    started = time.perf_counter()
    show = not no_progress and sys.stderr.isatty()
    try:
        with catch_sigint() as flag:
            result = fit(model, LOSSES[cfg["loss"]](), optimizer, loader, (test_ds.images, test_ds.labels),
                         cfg["epochs"], clip_value=cfg["clip_value"], clip_norm=cfg["clip_norm"], scheduler=scheduler,
                         early_stop=early, on_epoch=on_epoch, progress=progress, interrupt=flag, show_progress=show)
            if result.interrupted:
                save(result.progress)
                print(f"interrupted: checkpoint saved to {checkpoint_path} (epoch {result.progress.epoch + 1}, "
                      f"step {result.progress.step})", file=sys.stderr)
                return EXIT_INTERRUPTED
    except TrainingDiverged as exc:
        raise UserError(str(exc)) from None
    except ShapeError as exc:  # e.g. images too small for the model's kernels
        raise UserError(f"model {cfg['model']} cannot take {cfg['dataset']} images of shape "
                        f"{tuple(cfg['input_shape'])}: {exc}") from None
    except OSError as exc:
        raise UserError(f"could not write to {run_dir}: {exc.strerror or exc} ({getattr(exc, 'filename', '')}); "
                        "the last checkpoint written is intact") from None
    cm = reports.confusion_matrix(test_ds.labels, predict(model, test_ds.images), len(classes))
    try:
        reports.plot_confusion(run_dir / "confusion.png", cm, classes, title=f"{cfg['model']}: test set")
    except OSError as exc:
        raise _io_error("cannot write to the run directory", run_dir, exc) from None
    acc = np.trace(cm) / max(cm.sum(), 1)
    if result.stopped_early:
        print(f"early stop: moving-average loss {early.average:.4f} < {early.threshold}")
    print(reports.format_recall(reports.per_class_recall(cm), classes))
    print(f"test accuracy {100 * acc:.2f}% ({int(np.trace(cm))}/{int(cm.sum())}) after "
          f"{result.progress.epoch} epoch(s), {time.perf_counter() - started:.1f} s; saved to {run_dir}")
    return 0


# --- eval, predict, graph ------------------------------------------------------------------------
def _test_set(cfg: dict, args: argparse.Namespace) -> Any:
    dataset = args.dataset or cfg["dataset"]
    data_dir = args.data_dir if args.data_dir is not None else (cfg["data_dir"] if dataset == cfg["dataset"] else None)
    limit = args.limit_test if args.limit_test is not None else cfg["limit_test"]
    _, test, _ = load_datasets(dataset, data_dir, None, limit)
    if list(test.images.shape[1:]) != list(cfg["input_shape"]):
        raise UserError(f"{dataset} images are {tuple(test.images.shape[1:])}, the model was trained on "
                        f"{tuple(cfg['input_shape'])}")
    return test


def cmd_eval(args: argparse.Namespace) -> int:
    from tapegrad import reports
    from tapegrad.train import predict

    cfg, model = load_run(Path(args.run_dir))
    test = _test_set(cfg, args)
    classes = cfg["class_names"]
    cm = reports.confusion_matrix(test.labels, predict(model, test.images), len(classes))
    print(f"accuracy {100 * np.trace(cm) / max(cm.sum(), 1):.2f}% ({int(np.trace(cm))}/{int(cm.sum())}) "
          f"on {args.dataset or cfg['dataset']} test")
    print(reports.format_recall(reports.per_class_recall(cm), classes))
    print("confusion matrix (rows: true class, columns: prediction):")
    print(reports.format_confusion(cm, classes))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tapegrad.train import predict

    cfg, model = load_run(Path(args.run_dir))
    test = _test_set(cfg, args)
    n = min(args.n, len(test))
    preds = predict(model, test.images[:n])
    for i in range(n):
        print(f"Sample {i} - digit: {int(test.labels[i])} | prediction: {int(preds[i])}")
    return 0


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W such as 1,28,28, got {text!r}")
    return shape


def cmd_graph(args: argparse.Namespace) -> int:
    from autograd.viz import GraphvizNotInstalled
    from tapegrad.models import MODELS, build_model

    spec = MODELS[args.model]
    shape = args.input_shape or spec.recipe.input_shape
    model = build_model(args.model, shape, seed=0)
    out = Path(args.output)
    try:
        write_graph(model, shape, out, backward=args.backward, collapse=args.collapse, loss=spec.recipe.loss)
    except GraphvizNotInstalled as exc:
        raise UserError(f"{exc} (or write DOT text with -o {out.with_suffix('.dot')})") from None
    except OSError as exc:
        raise _io_error("cannot write", out, exc) from None
    print(f"wrote {out}")
    return 0


# --- argument parsing ----------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from tapegrad.models import MODELS

    parser = argparse.ArgumentParser(prog="tapegrad", description="Train and inspect tapegrad's reference models.")
    parser.add_argument("--version", action="version", version=f"tapegrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,eval,predict,graph}")

    train = sub.add_parser("train", help="train a model (the default command)",
                           description="Train a model; unset options take the model's reference recipe.")
    train.add_argument("--model", choices=list(MODELS), help="model (default: digits)")
    train.add_argument("--dataset", help=f"{' | '.join(DATASETS)} | PATH.npz (default: synthetic-digits)")
    train.add_argument("--data-dir", help="folder with the IDX files (mnist, fashion-mnist, mnist-10k)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--batch-size", type=int)
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    train.add_argument("--lr", type=float)
    train.add_argument("--weight-decay", type=float, help="optimizer weight decay (default: recipe L2 / n_train)")
    train.add_argument("--clip-value", type=float, help="clip each gradient element to [-v, v]")
    train.add_argument("--clip-norm", type=float, help="clip the global gradient norm")
    train.add_argument("--early-stop-loss", type=float, help="stop when the moving-average loss falls below this")
    train.add_argument("--seed", type=int, help="initialisation, shuffling and dropout seed (default: 0)")
    train.add_argument("--limit-train", type=int, metavar="N", help="use the first N training samples")
    train.add_argument("--limit-test", type=int, metavar="N", help="use the first N test samples")
    train.add_argument("--out", help="run directory (default: runs/<model>-<timestamp>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    for name, func, help_text in (("eval", cmd_eval, "accuracy, per-class recall and confusion matrix of a run"),
                                  ("predict", cmd_predict, "print predictions of a run on test samples")):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run_dir", metavar="RUN_DIR")
        p.add_argument("--dataset", help="evaluate on another dataset's test split (same image size)")
        p.add_argument("--data-dir")
        p.add_argument("--limit-test", type=int, metavar="N")
        if name == "predict":
            p.add_argument("-n", type=int, default=10, help="number of samples (default: 10)")
        p.set_defaults(func=func)

    graph = sub.add_parser("graph", help="draw a model's computation graph",
                           description="Draw one forward pass (or its gradient graph) of a model with Graphviz.")
    graph.add_argument("--model", choices=list(MODELS), default="digits")
    graph.add_argument("--input-shape", type=_parse_shape, metavar="C,H,W",
                       help="input shape (default: the model's reference input)")
    graph.add_argument("--backward", action="store_true", help="draw the gradient graph (create_graph=True)")
    graph.add_argument("--collapse", action="append", default=[], metavar="CLASS",
                       help="draw calls of this module class as one box (repeatable)")
    graph.add_argument("-o", "--output", default="graph.svg", help="output file: .dot, .svg, .png, .pdf")
    graph.set_defaults(func=cmd_graph)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tapegrad` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
        argv = ["train", *argv]  # `tapegrad` alone trains the default model
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (exit 2, message printed) and --help/--version (exit 0)
        return int(exc.code or 0)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"tapegrad: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
