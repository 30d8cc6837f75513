"""`tapegrad`: train the reference models, evaluate and query a run, draw a model's graph.

    tapegrad train [--model digits] [--dataset synthetic-digits] ...   (the default command)
    tapegrad eval RUN_DIR          accuracy, per-class recall, confusion matrix
    tapegrad predict RUN_DIR -n 10 `Sample i - digit: d | prediction: p` (class names for other data)
    tapegrad graph --model M -o graph.svg [--depth 1] [--show-saved]
    tapegrad export RUN_DIR -o model.onnx   the trained model as ONNX (pip install tapegrad[onnx])

Errors: a user error (bad option, missing or damaged file, a folder that is not a run, a run
directory in use) prints one `tapegrad: error: ...` line and exits with code 2, never a traceback.
`main` is the one place that classifies exceptions: the types of `user_errors()` are the user's to
fix; anything else is a bug in tapegrad and keeps its traceback. Ctrl-C during training saves a
checkpoint and exits with code 130; Ctrl-C anywhere else exits with code 130 and one line.

Settings are validated by `RunConfig.from_args` (tapegrad/config.py) before anything is read or
written; a run directory is checked for foreign files and locked by tapegrad/rundir.py.
"""
from __future__ import annotations

# Only the standard library and tapegrad's light modules at import time: numpy and the engine load
# inside `main`, so a Ctrl-C while they load is reported like any other.
import argparse
import contextlib
import copy
import datetime
import json
import os
import re
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from . import __version__
from .export import add_export_parser
from .config import BUILTIN_DATASETS, Interrupted, RunConfig, UserError, absolute, check_number, check_saved
from .rundir import RunDirBusy, RunLock, io_message, open_new_run, short

__all__ = ["main", "UserError", "RunConfig", "load_datasets", "load_run", "write_graph", "build_parser"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer killed by a closed pipe
DATASETS = BUILTIN_DATASETS
DIGIT_DATASETS = ("synthetic-digits", "mnist", "mnist-10k")
SYNTHETIC_TRAIN, SYNTHETIC_TEST, SYNTHETIC_SEED = 20000, 500, 0
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
GRAPH_FORMATS = ("dot", "gv", "svg", "png", "pdf", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ps", "eps",
                 "json", "xdot", "plain")
MAX_INPUT_SIDE, MAX_INPUT_CHANNELS = 256, 64


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types `main` reports as one line: problems the user can fix. Importing them
    loads the engine, so this runs inside `main`'s guard."""
    import nn
    from tapegrad.data import IDXFormatError
    from tapegrad.data.errors import DataError
    from tapegrad.train import TrainingDiverged

    return (UserError, DataError, IDXFormatError, nn.CheckpointError, TrainingDiverged, OSError)


def user_message(exc: BaseException) -> str:
    """One line for a user error: the data layer's `root=` advice in the CLI's terms, newlines folded."""
    text = str(exc)
    if isinstance(exc, OSError) and exc.filename and exc.strerror and text.startswith("[Errno"):
        text = f"{short(exc.filename)}: {exc.strerror}"  # not the repr of an over-long path
    text = re.sub(r"\broot=<([^>]*)>", r"--data-dir <\1>", text)
    text = re.sub(r"\broot=", "--data-dir ", text)
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    if len(parts) > 1:  # a multi-line message (a list of searched folders) folded into one line
        parts = [p.rstrip(".") for p in parts]
    line = parts[0] if parts else ""
    for part in parts[1:]:
        line += (" " if line.endswith(":") else "; ") + part
    return line or type(exc).__name__


# --- data ----------------------------------------------------------------------------------------
@dataclass
class Data:
    train: Any
    test: Any
    classes: list[str]
    notes: list[str] = field(default_factory=list)


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
    check_number("limit_train", n, "limits")
    return ArrayDataset(ds.images[:n], ds.labels[:n])


def _stored_path_hint(path: str) -> str:
    return "" if os.path.isabs(path) else \
        " (the run stored this path relative to the folder where `tapegrad train` ran: run from there)"


def _check_npz_file(path: str) -> None:
    """Refuse, naming the file, what np.load would misreport (a folder, a missing or empty file,
    anything that is not a zip archive: np.load blames those on "pickled data")."""
    import zipfile

    p = Path(path)
    if p.is_dir():
        raise UserError(f"{short(path)} is a folder, not an .npz file")
    if not p.exists():
        raise UserError(f"{short(path)}: no such file{_stored_path_hint(path)}")
    if not zipfile.is_zipfile(p):
        what = "an empty file" if p.stat().st_size == 0 else "not a zip archive: truncated, or another format"
        raise UserError(f"{short(path)} is not a valid .npz file ({what})")


@contextlib.contextmanager
def _npz_errors(path: str) -> Iterator[None]:
    """Reading an .npz that passed `_check_npz_file`: a damaged member or object arrays, one line."""
    import zipfile

    try:
        yield
    except (zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{short(path)} is damaged (truncated or corrupt .npz): {exc}") from None
    except (ValueError, TypeError) as exc:
        if "pickle" in str(exc):
            raise UserError(f"{short(path)} holds object arrays, which tapegrad does not load (they need pickle); "
                            "save images and labels as plain numeric arrays") from None
        if isinstance(exc, UserError):
            raise
        raise UserError(user_message(exc)) from None


def _npz_split(path: str) -> tuple[Any, Any]:
    """(train, test) of an .npz through the data layer (a Keras-style file's own split, else the
    first 80% in file order for training); the CLI's own checks name the file in its terms."""
    from tapegrad import data

    _check_npz_file(path)
    with _npz_errors(path):
        return data.load_npz_split(path)


def load_data(name: str, data_dir: str | None = None, limit_train: int | None = None,
              limit_test: int | None = None) -> Data:
    """Train and test split, class names and notes (layout fixes, sparse labels) of a dataset name or
    an .npz path (split 80/20 in file order). Python warnings of the data layer become notes."""
    import numpy as np

    from tapegrad import data
    from tapegrad.data.arrays import sparse_label_note

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if name == "synthetic-digits":
                (xtr, ytr), (xte, yte) = data.synthetic_digits_split(SYNTHETIC_TRAIN, SYNTHETIC_TEST,
                                                                     SYNTHETIC_SEED)
                train, test = data.ArrayDataset(xtr, ytr), data.ArrayDataset(xte, yte)
            elif name in ("mnist", "fashion-mnist"):
                loader = data.MNIST if name == "mnist" else data.FashionMNIST
                train, test = loader(data_dir, train=True), loader(data_dir, train=False)
            elif name == "mnist-10k":
                train, test = data.mnist_split_from_test_set(_mnist_10k_dir(data_dir))
            elif name.endswith(".npz"):
                train, test = _npz_split(name)
            else:
                raise UserError(f"unknown dataset {name!r} (choose from {', '.join(DATASETS)}, or a PATH.npz)")
        except (data.IDXFormatError, ValueError, TypeError) as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(user_message(exc)) from None
    for w in caught:  # the data layer's advice (UserWarning) becomes notes; anything else is warned again
        if not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    told = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    notes = list(dict.fromkeys(list(getattr(train, "notes", [])) + told))
    if name == "fashion-mnist":
        classes = list(FASHION_CLASSES)
    else:
        top = max(int(train.labels.max()), int(test.labels.max())) + 1
        classes = [str(i) for i in range(max(top, 10) if name in DATASETS else top)]
        labels = np.concatenate([train.labels, test.labels])
        sparse = sparse_label_note(int(labels.max()) + 1, len(np.unique(labels))) if labels.size else None
        if sparse and not any("label" in n for n in notes):
            notes.append(sparse)
    return Data(_limit(train, limit_train), _limit(test, limit_test), classes, notes)


def load_datasets(name: str, data_dir: str | None = None, limit_train: int | None = None,
                  limit_test: int | None = None) -> tuple[Any, Any, list[str]]:
    """(train, test, class names) of a dataset name or an .npz path (see `load_data`)."""
    d = load_data(name, data_dir, limit_train, limit_test)
    return d.train, d.test, d.classes


# --- models --------------------------------------------------------------------------------------
def check_model_input(model_name: str, input_shape: Sequence[int], what: str) -> None:
    """Raise UserError unless model `model_name` can take one input of `input_shape` (a forward on
    zeros in eval mode, no graph): a kernel larger than the image is the user's to fix."""
    import numpy as np

    import autograd as ag
    from autograd.errors import ShapeError
    from tapegrad.models import build_model

    try:
        # a layer sized from the input (a Linear after convs) refuses a size <= 0 with ValueError
        model = build_model(model_name, tuple(input_shape), 10, 0)
        model.eval()
        with ag.no_grad():
            model(ag.tensor(np.zeros((1, *input_shape), dtype=np.float32)))
    except (ShapeError, ValueError) as exc:
        raise UserError(f"model {model_name} cannot take {what} of shape {tuple(input_shape)}: {exc}") from None


def _module_names(model: Any) -> set[str]:
    names = set()
    for qualified, module in model.named_modules():
        names.add(type(module).__name__)
        if qualified:
            names.add(qualified)
    return names


# --- run directories -----------------------------------------------------------------------------
def _atomic_json(path: Path, obj: Any) -> None:
    from autograd.fileio import atomic_write

    atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def _default_run_dir(model: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{model}-{stamp}"
    path, k = base, 1
    while path.exists():
        path, k = Path(f"{base}-{k}"), k + 1
    return path


def read_config(run_dir: Path) -> dict[str, Any]:
    """config.json of a run directory, checked to be a whole tapegrad run configuration."""
    path = run_dir / "config.json"
    if not run_dir.exists():
        raise UserError(f"{short(run_dir)} is not a tapegrad run directory (no such folder)")
    if not path.is_file():
        raise UserError(f"{short(run_dir)} is not a tapegrad run directory (no config.json)")
    try:
        saved = json.loads(path.read_text())
    except OSError as exc:
        raise UserError(io_message("cannot read", path, exc)) from None
    except ValueError as exc:
        raise UserError(f"{short(path)} is not valid JSON: {exc}") from None
    check_saved(saved, path)
    return saved


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    import nn

    path = run_dir / "model.npz"
    try:
        return nn.load(path)
    except FileNotFoundError:
        raise UserError(f"{short(run_dir)} has no checkpoint (model.npz): the run saved none yet") from None
    except IsADirectoryError:
        raise UserError(f"{short(path)} is a folder, not a checkpoint") from None


def load_run(run_dir: Path) -> tuple[dict[str, Any], Any]:
    """(config, model with the checkpoint's weights) of a run directory."""
    import nn
    from tapegrad.models import build_model

    cfg = read_config(run_dir)
    model = build_model(cfg["model"], tuple(cfg["input_shape"]), cfg["num_classes"], cfg["seed"])
    try:
        model.load_state_dict(load_checkpoint(run_dir)["model"])
    except (nn.StateDictError, KeyError, ValueError, TypeError) as exc:
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{short(run_dir / 'model.npz')} does not fit model {cfg['model']!r}: {exc}") from None
    return cfg, model


# --- train ---------------------------------------------------------------------------------------
def _make_optimizer(cfg: dict, params: Any) -> Any:
    import optim

    kind, lr, wd = cfg["optimizer"], cfg["lr"], cfg["weight_decay"]
    if kind == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=wd)
    cls = optim.Adam if kind == "adam" else optim.AdamW
    return cls(params, lr=lr, betas=tuple(cfg["betas"]), weight_decay=wd)


def write_graph(model: Any, input_shape: Sequence[int], out: Path, backward: bool = False,
                collapse: Sequence[str] = (), loss: str = "cross_entropy", depth: int | None = None,
                show_saved: bool = False) -> Path:
    """Draw one forward (or, with backward, its gradient graph) of `model` to `out` (.dot/.gv or any
    Graphviz output format such as .svg, .png, .pdf, which need the `dot` program)."""
    import numpy as np

    import autograd as ag
    from autograd.viz import draw, record_backward, record_inputs
    from tapegrad.models import LOSSES

    x = ag.tensor(np.random.default_rng(0).random((1, *input_shape), dtype=np.float32))
    with record_inputs():  # draw the image as the input, not a conv's unfolding of it
        output = model(x)
    if backward:
        params = list(model.parameters())
        value = LOSSES[loss]()(output, np.zeros(1, dtype=np.int64))
        with record_backward():
            grads = ag.grad(value, params, create_graph=True)
        graph = draw(*grads, module=model, backward=True, collapse=collapse, depth=depth, show_saved=show_saved)
    else:
        graph = draw(output, module=model, collapse=collapse, depth=depth, show_saved=show_saved)
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
        raise UserError(io_message("cannot write the graph to", run_dir, exc)) from None
    except Exception as exc:  # a drawing problem must not cost the user the training run
        print(f"tapegrad: warning: could not draw the model graph: {type(exc).__name__}: {exc}", file=sys.stderr)


def _check_same_data(cfg: dict, data: Data, run_dir: Path) -> None:
    """A resumed run must see the data it started with: a changed file is reported, new against old."""
    now = (list(data.train.images.shape[1:]), len(data.train), len(data.test))
    then = (list(cfg["input_shape"]), cfg["n_train"], cfg["n_test"])
    if now != then:
        raise UserError(f"{short(cfg['dataset'])} has changed since {short(run_dir)} started: it now gives "
                        f"{now[1]} train / {now[2]} test images of shape {tuple(now[0])}, the run was trained on "
                        f"{then[1]} / {then[2]} of shape {tuple(then[0])}; start a new run for the new data")
    _check_labels(data.train, cfg, f"{short(cfg['dataset'])} (train split)")


def _check_labels(ds: Any, cfg: dict, what: str) -> None:
    top = int(ds.labels.max()) if len(ds) else -1
    if top >= cfg["num_classes"]:
        raise UserError(f"{what} has label {top}, but the model was trained for {cfg['num_classes']} classes "
                        f"(0..{cfg['num_classes'] - 1})")


def _note(text: str) -> None:
    print(f"note: {text}", flush=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cmd_train(args: argparse.Namespace) -> int:
    return run(RunConfig.from_args(args))


def run(rc: RunConfig) -> int:
    """`tapegrad train` on validated settings: nothing is written before every check has passed."""
    if rc.resume is not None:
        run_dir = Path(rc.resume)
        saved = read_config(run_dir)
        rc = rc.with_saved(saved, run_dir / "config.json")
        with RunLock(run_dir, "wait for it to finish"):
            data = load_data(rc.dataset, rc.data_dir, rc.limit_train, rc.limit_test)
            cfg = dict(saved, epochs=rc.epochs, eager=rc.eager)
            _check_same_data(cfg, data, run_dir)
            return _train_run(cfg, rc, run_dir, data, resume=True)
    data = load_data(rc.dataset, rc.data_dir, rc.limit_train, rc.limit_test)
    input_shape = tuple(data.train.images.shape[1:])
    check_model_input(rc.model, input_shape, f"{rc.dataset} images")
    cfg = rc.record(len(data.train), len(data.test), input_shape, data.classes, data.notes)
    run_dir = Path(rc.out) if rc.out else _default_run_dir(rc.model)
    for attempt in range(100):
        try:
            lock = open_new_run(run_dir)
            break
        except RunDirBusy:  # two runs started in the same second: the default name moves on, --out does not
            if rc.out or attempt == 99:
                raise
            run_dir = _default_run_dir(rc.model)
    with lock:
        try:
            _atomic_json(run_dir / "config.json", cfg)
        except OSError as exc:
            raise UserError(io_message("cannot write to the run directory", run_dir, exc)) from None
        return _train_run(cfg, rc, run_dir, data, resume=False)


def _train_run(cfg: dict, rc: RunConfig, run_dir: Path, data: Data, resume: bool) -> int:
    import numpy as np

    import nn
    import optim
    from tapegrad import reports
    from tapegrad.data import DataLoader
    from tapegrad.models import LOSSES, build_model
    from tapegrad.train import (EarlyStopping, ProgressLog, catch_sigint, checkpoint_state, fit, format_epoch,
                                predict, restore_checkpoint)

    train_ds, test_ds = data.train, data.test
    model = build_model(cfg["model"], tuple(cfg["input_shape"]), cfg["num_classes"], cfg["seed"])
    optimizer = _make_optimizer(cfg, model.parameters())
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"]) if cfg["scheduler"] == "cosine" \
        else None
    loader = DataLoader(train_ds, batch_size=cfg["batch_size"], shuffle=True, seed=cfg["seed"])
    early = EarlyStopping(cfg["early_stop_loss"]) if cfg["early_stop_loss"] is not None else None
    progress = None
    checkpoint_path = run_dir / "model.npz"
    if resume:
        try:
            progress = restore_checkpoint(load_checkpoint(run_dir), model, optimizer, scheduler, loader, early)
        except (KeyError, ValueError, TypeError, nn.StateDictError) as exc:
            if isinstance(exc, UserError):
                raise
            raise UserError(f"cannot resume from {short(checkpoint_path)}: {exc}") from None
        if early is not None and early.stopped:
            print(f"{run_dir}: this run already stopped early (moving-average loss below {early.threshold}); "
                  "nothing to do")
            return 0
        if progress.epoch >= cfg["epochs"]:
            print(f"{run_dir}: already trained {_plural(progress.epoch, 'epoch')}; pass --epochs N "
                  f"(> {progress.epoch}) to train further")
            return 0
        try:  # every check passed: now the new epoch count may be recorded
            _atomic_json(run_dir / "config.json", cfg)
        except OSError as exc:
            raise UserError(io_message("cannot write to the run directory", run_dir, exc)) from None
    else:
        _write_run_graph(model, cfg, run_dir)
    classes = cfg["class_names"]
    where = f"resuming {run_dir} at epoch {progress.epoch + 1}, step {progress.step}" if resume else \
        f"run directory {run_dir}"
    print(f"training {cfg['model']} on {cfg['dataset']} ({len(train_ds)} train / {len(test_ds)} test, "
          f"{cfg['optimizer']} lr {cfg['lr']}, batch {cfg['batch_size']}, up to {_plural(cfg['epochs'], 'epoch')}, "
          f"{'eager' if rc.eager else 'compiled'} steps); {where}", flush=True)
    for note in data.notes:
        print(f"note: {note}", flush=True)

    steps: list[tuple[float, float]] = []
    log = ProgressLog(len(loader), cfg["epochs"]) if rc.progress and not sys.stdout.isatty() else None

    def save(state: Any) -> None:
        nn.save(checkpoint_state(model, optimizer, scheduler, loader, early, state), checkpoint_path)

    def on_step(state: Any, loss: float) -> bool:
        steps.append((state.epoch + state.step / len(loader), loss))
        if log is not None:
            log(state, loss)
        return False

    def on_epoch(row: dict, state: Any) -> None:
        print(format_epoch(row, cfg["epochs"]), flush=True)
        save(state)
        reports.write_metrics_csv(run_dir / "metrics.csv", state.history)
        reports.plot_curves(run_dir / "curves.png", state.history, title=f"{cfg['model']} on {cfg['dataset']}",
                            steps=steps)

    started = time.perf_counter()
    show = rc.progress and sys.stderr.isatty()
    try:
        with catch_sigint() as flag:
            result = fit(model, LOSSES[cfg["loss"]](), optimizer, loader, (test_ds.images, test_ds.labels),
                         cfg["epochs"], clip_value=cfg["clip_value"], clip_norm=cfg["clip_norm"], scheduler=scheduler,
                         early_stop=early, on_epoch=on_epoch, progress=progress, interrupt=flag, show_progress=show,
                         on_step=on_step, eager=rc.eager, note=_note)
            if result.interrupted:
                save(result.progress)
                print(f"interrupted: checkpoint saved to {checkpoint_path} (epoch {result.progress.epoch + 1}, "
                      f"step {result.progress.step})", file=sys.stderr)
                return EXIT_INTERRUPTED
    except KeyboardInterrupt:  # a second Ctrl-C: stop at once
        raise Interrupted(f"interrupted by a second Ctrl-C: stopped without saving; {short(checkpoint_path)} holds "
                          "the last checkpoint written (if any)") from None
    except OSError as exc:
        raise UserError(f"could not write to {short(run_dir)}: {exc.strerror or exc} "
                        f"({getattr(exc, 'filename', '')}); the last checkpoint written is intact") from None
    preds = predict(model, test_ds.images, forward=result.forward)
    correct, total = int(np.sum(preds == test_ds.labels)), len(test_ds)
    _report_test_set(test_ds.labels, preds, classes, run_dir / "confusion.png", f"{cfg['model']}: test set")
    if result.stopped_early:
        print(f"early stop: moving-average loss {early.average:.4f} < {early.threshold}")
    print(f"test accuracy {100 * correct / max(total, 1):.2f}% ({correct}/{total}) after "
          f"{_plural(result.progress.epoch, 'epoch')}, {time.perf_counter() - started:.1f} s; saved to {run_dir}")
    return 0


def _report_test_set(labels: Any, preds: Any, classes: list[str], png: Path | None, title: str = "") -> None:
    """Per-class recall, and the confusion matrix (as text when `png` is None, else drawn to it),
    skipped with a note above reports.MAX_MATRIX_CLASSES classes."""
    from tapegrad import reports

    n = len(classes)
    if n > reports.MAX_MATRIX_CLASSES:
        print(reports.format_recall(reports.recall_from_predictions(labels, preds, n), classes))
        print(f"note: confusion matrix skipped: {n} classes (more than {reports.MAX_MATRIX_CLASSES})")
        return
    cm = reports.confusion_matrix(labels, preds, n)
    print(reports.format_recall(reports.per_class_recall(cm), classes))
    if png is None:
        print("confusion matrix (rows: true class, columns: prediction):")
        print(reports.format_confusion(cm, classes))
        return
    try:
        reports.plot_confusion(png, cm, classes, title=title)
    except OSError as exc:
        raise UserError(io_message("cannot write to the run directory", png.parent, exc)) from None


# --- eval, predict, graph ------------------------------------------------------------------------
def _test_set(cfg: dict, args: argparse.Namespace) -> Any:
    check_number("limit_test", args.limit_test)
    dataset = args.dataset or cfg["dataset"]
    if args.dataset and args.dataset.endswith(".npz"):
        dataset = absolute(args.dataset)
    data_dir = args.data_dir if args.data_dir is not None else (cfg["data_dir"] if dataset == cfg["dataset"] else None)
    limit = args.limit_test if args.limit_test is not None else cfg["limit_test"]
    data = load_data(dataset, data_dir, None, limit)
    test = data.test
    if list(test.images.shape[1:]) != list(cfg["input_shape"]):
        raise UserError(f"{short(dataset)} images are {tuple(test.images.shape[1:])}, the model was trained on "
                        f"{tuple(cfg['input_shape'])}")
    _check_labels(test, cfg, f"{short(dataset)} (test split)")
    return test


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np

    from tapegrad.train import predict

    cfg, model = load_run(Path(args.run_dir))
    test = _test_set(cfg, args)
    preds = predict(model, test.images, eager=args.eager or cfg.get("eager") is True, note=_note)
    correct, total = int(np.sum(preds == test.labels)), len(test)
    print(f"accuracy {100 * correct / max(total, 1):.2f}% ({correct}/{total}) on {args.dataset or cfg['dataset']} test")
    _report_test_set(test.labels, preds, cfg["class_names"], None)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tapegrad.train import predict

    check_number("n", args.n)
    cfg, model = load_run(Path(args.run_dir))
    test = _test_set(cfg, args)
    n = min(args.n, len(test))
    preds = predict(model, test.images[:n], eager=args.eager or cfg.get("eager") is True, note=_note)
    names = cfg["class_names"]
    word = "digit" if (args.dataset or cfg["dataset"]) in DIGIT_DATASETS else "class"
    for i in range(n):
        print(f"Sample {i} - {word}: {names[int(test.labels[i])]} | prediction: {names[int(preds[i])]}")
    return 0


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected C,H,W of positive integers such as 1,28,28, got {text!r}")
    if shape[0] > MAX_INPUT_CHANNELS or max(shape[1:]) > MAX_INPUT_SIDE:
        raise argparse.ArgumentTypeError(f"at most {MAX_INPUT_CHANNELS} channels and {MAX_INPUT_SIDE}x"
                                         f"{MAX_INPUT_SIDE} pixels, got {text!r}")
    return shape


def cmd_graph(args: argparse.Namespace) -> int:
    from autograd.viz import GraphvizNotInstalled
    from tapegrad.models import MODELS, build_model

    check_number("depth", args.depth)
    out = Path(args.output)
    fmt = out.suffix.lstrip(".").lower()
    if fmt and fmt not in GRAPH_FORMATS:
        raise UserError(f"-o {short(out)}: unknown graph format {fmt!r} (use one of "
                        f"{', '.join('.' + f for f in GRAPH_FORMATS)})")
    spec = MODELS[args.model]
    shape = args.input_shape or spec.recipe.input_shape
    check_model_input(args.model, shape, "input")
    model = build_model(args.model, shape, seed=0)
    unknown = [c for c in args.collapse if c not in _module_names(model)]
    if unknown:
        known = sorted({type(m).__name__ for _, m in model.named_modules()})
        raise UserError(f"--collapse {unknown[0]}: model {args.model} has no module class or name {unknown[0]!r} "
                        f"(its classes: {', '.join(known)})")
    try:
        write_graph(model, shape, out, backward=args.backward, collapse=args.collapse, loss=spec.recipe.loss,
                    depth=args.depth, show_saved=args.show_saved)
    except GraphvizNotInstalled as exc:
        raise UserError(f"{exc} (or write DOT text with -o {out.with_suffix('.dot')})") from None
    except OSError as exc:
        raise UserError(io_message("cannot write", out, exc)) from None
    print(f"wrote {out}")
    return 0


# --- argument parsing ----------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors raised as UserError (one line, like every other error)."""

    def error(self, message: str):  # type: ignore[override]
        raise UserError(f"{message} (see `{self.prog} --help`)")


def build_parser() -> argparse.ArgumentParser:
    from tapegrad.models import MODELS

    parser = _Parser(prog="tapegrad", description="Train and inspect tapegrad's reference models.")
    parser.add_argument("--version", action="version", version=f"tapegrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{train,eval,predict,graph,export}")

    train = sub.add_parser("train", help="train a model (the default command)",
                           description="Train a model; unset options take the model's reference recipe.")
    train.add_argument("--model", choices=list(MODELS), help="model (default: digits)")
    train.add_argument("--dataset", help=f"{' | '.join(DATASETS)} | PATH.npz (default: synthetic-digits)")
    train.add_argument("--data-dir", help="folder with the IDX files (mnist, fashion-mnist, mnist-10k)")
    train.add_argument("--epochs", type=int, help="number of epochs, >= 1")
    train.add_argument("--batch-size", type=int, help=">= 1")
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw"])
    train.add_argument("--lr", type=float, help="learning rate, > 0")
    train.add_argument("--weight-decay", type=float, help="optimizer weight decay, >= 0 (default: recipe L2 / n_train)")
    train.add_argument("--clip-value", type=float, help="clip each gradient element to [-v, v], v > 0")
    train.add_argument("--clip-norm", type=float, help="clip the global gradient norm, > 0")
    train.add_argument("--early-stop-loss", type=float,
                       help="stop when the moving-average loss falls below this (>= 0)")
    train.add_argument("--seed", type=int, help="initialisation, shuffling and dropout seed, 0..2**32-1 (default: 0)")
    train.add_argument("--limit-train", type=int, metavar="N", help="use the first N training samples")
    train.add_argument("--limit-test", type=int, metavar="N", help="use the first N test samples")
    train.add_argument("--out", help="run directory: new, empty, or a tapegrad run without a checkpoint "
                                     "(default: runs/<model>-<timestamp>)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run saved in RUN_DIR")
    train.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    train.add_argument("--eager", action="store_true",
                       help="run every step eagerly instead of compiling it (autograd.compile); same results")
    train.set_defaults(func=cmd_train)

    for name, func, help_text in (("eval", cmd_eval, "accuracy, per-class recall and confusion matrix of a run"),
                                  ("predict", cmd_predict, "print predictions of a run on test samples")):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("run_dir", metavar="RUN_DIR")
        p.add_argument("--dataset", help="evaluate on another dataset's test split (same image size)")
        p.add_argument("--data-dir")
        p.add_argument("--limit-test", type=int, metavar="N")
        p.add_argument("--eager", action="store_true", help="an eager forward instead of a compiled one")
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
                       help="draw calls of this module class (or qualified name) as one box (repeatable)")
    graph.add_argument("--depth", type=int, metavar="D",
                       help="draw every module at nesting level D as one box (0: the whole model)")
    graph.add_argument("--show-saved", action="store_true", help="note what each op saves for backward")
    graph.add_argument("-o", "--output", default="graph.svg",
                       help=f"output file: {', '.join('.' + f for f in GRAPH_FORMATS[:5])}, ...")
    graph.set_defaults(func=cmd_graph)
    add_export_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tapegrad` console script; returns the exit code.

    The one place where exceptions become messages: `user_errors()` print one line and exit 2,
    Ctrl-C exits 130; anything else is a bug and propagates with its traceback.
    """
    errors: tuple[type[BaseException], ...] = (UserError,)
    try:
        argv = list(sys.argv[1:] if argv is None else argv)
        if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version")):
            argv = ["train", *argv]  # `tapegrad` alone trains the default model
        errors = user_errors()
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help / --version
            return int(exc.code or 0)
        if getattr(args, "func", None) is None:
            raise UserError("choose a command: train, eval, predict or graph (see `tapegrad --help`)")
        return args.func(args)
    except KeyboardInterrupt:
        print("tapegrad: error: interrupted by Ctrl-C", file=sys.stderr)
        return Interrupted.exit_code
    except BrokenPipeError:  # `tapegrad eval RUN | head`: the reader left; stop quietly, as cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except errors as exc:
        print(f"tapegrad: error: {user_message(exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_USAGE)


if __name__ == "__main__":
    sys.exit(main())
