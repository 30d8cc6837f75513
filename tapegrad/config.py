"""Every setting of a `tapegrad` command, checked in one place before anything is read or written.

`RunConfig.from_args(args)` turns the parsed `train` command line into a frozen, validated value:
the model's recipe fills what the command line left out, and every number is checked for type,
sign, finiteness and range here (a negative `--clip-norm` would otherwise train backwards, a NaN
one on constants). `check_saved` does the same for a run's config.json, so `--resume`,
`eval` and `predict` never start from a damaged or foreign file.

`UserError` is the one exception type of a problem the user can fix; the CLI prints it as one
`tapegrad: error: ...` line. Everything else that escapes is a bug and keeps its traceback.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from . import __version__


class UserError(Exception):
    """A problem with the user's input or environment: reported in one line, exit code 2."""

    exit_code = 2


class Interrupted(UserError):
    """Ctrl-C stopped the command; reported in one line, exit code 130 (128 + SIGINT)."""

    exit_code = 130


# --- numbers -------------------------------------------------------------------------------------
MAX_EPOCHS = 100_000
MAX_BATCH = 1_000_000
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class Number:
    """What one numeric setting accepts: an integer or a finite float, with bounds."""

    integer: bool
    low: float | None = None
    low_open: bool = False  # low itself is excluded (> low rather than >= low)
    high: float | None = None

    def describe(self) -> str:
        if self.integer and self.low is not None and self.high is not None:
            return f"an integer in {int(self.low)}..{int(self.high)}"
        what = "an integer" if self.integer else "a finite number"
        if self.low is not None:
            what += f" {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            what += f" <= {self.high:g}"
        return what

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value <= self.high


# The numeric settings of every command, by their config.json / argparse name.
NUMBERS: dict[str, Number] = {
    "epochs": Number(True, 1, high=MAX_EPOCHS),
    "batch_size": Number(True, 1, high=MAX_BATCH),
    "limit_train": Number(True, 1),
    "limit_test": Number(True, 1),
    "seed": Number(True, 0, high=MAX_SEED),
    "lr": Number(False, 0, low_open=True),
    "weight_decay": Number(False, 0),
    "clip_value": Number(False, 0, low_open=True),
    "clip_norm": Number(False, 0, low_open=True),
    "early_stop_loss": Number(False, 0),
    "n": Number(True, 1),
    "depth": Number(True, 0, high=100),
}


def flag(name: str) -> str:
    return "-n" if name == "n" else "--" + name.replace("_", "-")


def check_number(name: str, value: Any, label: str | None = None) -> None:
    """Raise UserError unless `value` (not None) is acceptable for setting `name`."""
    if value is None:
        return
    rule = NUMBERS[name]
    if not rule.accepts(value):
        raise UserError(f"{label or flag(name)} must be {rule.describe()}, got {value!r}")


# --- the train command ---------------------------------------------------------------------------
OPTIMIZERS = ("sgd", "adam", "adamw")
# Settings a resumed run takes from its config.json; only these may be given again with --resume.
RESUMABLE_OVERRIDES = ("epochs",)
RECIPE_OPTIONS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "clip_value", "clip_norm",
                  "early_stop_loss")
NEW_RUN_OPTIONS = RECIPE_OPTIONS + ("model", "dataset", "data_dir", "seed", "limit_train", "limit_test", "out")
# The keys config.json must have for eval, predict and --resume to use it.
SAVED_KEYS = ("model", "dataset", "data_dir", "limit_train", "limit_test", "n_train", "n_test", "input_shape",
              "num_classes", "class_names", "epochs", "batch_size", "optimizer", "lr", "betas", "weight_decay",
              "clip_value", "clip_norm", "early_stop_loss", "loss", "scheduler", "seed")
BUILTIN_DATASETS = ("synthetic-digits", "mnist", "fashion-mnist", "mnist-10k")


def absolute(path: str | None) -> str | None:
    """A path as stored in config.json: absolute, so eval works from any folder."""
    return path if not path else os.path.abspath(os.path.expanduser(path))


@dataclass(frozen=True)
class RunConfig:
    """The settings of one `tapegrad train` run (new or resumed), validated on construction.

    Dataset-dependent values (n_train, input shape, classes, the recipe's weight decay as L2 / n)
    are resolved by the training command once the data is loaded; `record()` is config.json.
    """

    model: str = "digits"
    dataset: str = "synthetic-digits"
    data_dir: str | None = None
    epochs: int = 1
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 0.01
    weight_decay: float | None = None  # None: the recipe's L2 lambda / n_train
    clip_value: float | None = None
    clip_norm: float | None = None
    early_stop_loss: float | None = None
    seed: int = 0
    limit_train: int | None = None
    limit_test: int | None = None
    out: str | None = None
    resume: str | None = None  # the run directory to continue
    extend_to: int | None = None  # with resume: the new total of epochs (--epochs), else the saved one
    progress: bool = True
    eager: bool = False  # eager steps instead of compiled ones (config.json "eager"; --eager on resume too)

    def __post_init__(self) -> None:
        from tapegrad.models import MODELS

        if self.model not in MODELS:
            raise UserError(f"unknown model {self.model!r} (choose from {', '.join(MODELS)})")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"unknown optimizer {self.optimizer!r} (choose from {', '.join(OPTIMIZERS)})")
        for name in NUMBERS:
            if hasattr(self, name):
                check_number(name, getattr(self, name))
        check_number("epochs", self.extend_to)
        for name in ("dataset", "data_dir", "out", "resume"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value or "\0" in value):
                raise UserError(f"{flag(name)} must be a non-empty path or name, got {value!r}")

    # -- construction --
    @classmethod
    def from_args(cls, args: Any) -> "RunConfig":
        """The validated settings of `tapegrad train` (argparse namespace). With --resume only the
        epochs may be given; the rest is read from the run's config.json by `with_saved`."""
        from tapegrad.models import MODELS

        given = {name: getattr(args, name, None) for name in NEW_RUN_OPTIONS}
        for name, value in given.items():
            if name in NUMBERS:
                check_number(name, value)
        progress = not getattr(args, "no_progress", False)
        eager = bool(getattr(args, "eager", False))
        if args.resume is not None:
            extra = [flag(n) for n, v in given.items() if v is not None and n not in RESUMABLE_OVERRIDES]
            if extra:
                raise UserError(f"--resume continues a run with its saved settings; only --epochs, --eager and "
                                f"--no-progress may be given with it (got {', '.join(extra)})")
            if not args.resume:
                raise UserError("--resume needs a run directory")
            return cls(resume=args.resume, extend_to=args.epochs, progress=progress, eager=eager)
        model = args.model or "digits"
        if model not in MODELS:
            raise UserError(f"unknown model {model!r} (choose from {', '.join(MODELS)})")
        recipe = MODELS[model].recipe
        pick = lambda name: given[name] if given[name] is not None else getattr(recipe, name)  # noqa: E731
        dataset = "synthetic-digits" if args.dataset is None else args.dataset
        if dataset.endswith(".npz"):
            dataset = absolute(dataset)
        return cls(model=model, dataset=dataset, data_dir=absolute(args.data_dir), epochs=pick("epochs"),
                   batch_size=pick("batch_size"), optimizer=pick("optimizer"), lr=pick("lr"),
                   weight_decay=given["weight_decay"], clip_value=pick("clip_value"), clip_norm=pick("clip_norm"),
                   early_stop_loss=pick("early_stop_loss"), seed=0 if args.seed is None else args.seed,
                   limit_train=args.limit_train, limit_test=args.limit_test, out=args.out, progress=progress,
                   eager=eager)

    def with_saved(self, saved: Mapping[str, Any], where: Path) -> "RunConfig":
        """This resume request completed from the run's config.json (checked by `check_saved`): the
        saved step mode, or eager if --eager is given now (a config.json without "eager" is compiled)."""
        check_saved(saved, where)
        return replace(self, model=saved["model"], dataset=saved["dataset"], data_dir=saved["data_dir"],
                       epochs=self.extend_to if self.extend_to is not None else saved["epochs"],
                       batch_size=saved["batch_size"],
                       optimizer=saved["optimizer"], lr=saved["lr"], weight_decay=saved["weight_decay"],
                       clip_value=saved["clip_value"], clip_norm=saved["clip_norm"],
                       early_stop_loss=saved["early_stop_loss"], seed=saved["seed"],
                       limit_train=saved["limit_train"], limit_test=saved["limit_test"],
                       eager=self.eager or saved.get("eager") is True)

    # -- config.json --
    def record(self, n_train: int, n_test: int, input_shape: tuple, classes: list[str],
               notes: list[str]) -> dict[str, Any]:
        """config.json of a new run: every setting, with the recipe's dataset-dependent ones resolved."""
        from tapegrad.models import MODELS, weight_decay_for

        recipe = MODELS[self.model].recipe
        wd = self.weight_decay if self.weight_decay is not None else weight_decay_for(recipe, n_train)
        return {
            "model": self.model, "dataset": self.dataset, "data_dir": self.data_dir,
            "limit_train": self.limit_train, "limit_test": self.limit_test, "n_train": n_train, "n_test": n_test,
            "data_seed": 0 if self.dataset == "synthetic-digits" else None,
            "input_shape": list(input_shape), "num_classes": len(classes), "class_names": list(classes),
            "epochs": self.epochs, "batch_size": self.batch_size, "optimizer": self.optimizer, "lr": self.lr,
            "betas": list(recipe.betas), "l2": recipe.l2 if self.weight_decay is None else None,
            "weight_decay": wd, "clip_value": self.clip_value, "clip_norm": self.clip_norm,
            "early_stop_loss": self.early_stop_loss, "loss": recipe.loss, "scheduler": recipe.scheduler,
            "seed": self.seed, "data_notes": list(notes), "tapegrad_version": __version__, "eager": self.eager,
        }


def check_saved(saved: Any, where: Path) -> None:
    """Raise UserError unless `saved` (a parsed config.json at `where`) can drive a run."""
    from tapegrad.models import LOSSES, MODELS

    if not isinstance(saved, dict):
        raise UserError(f"{where} is not a tapegrad run configuration: it holds a JSON "
                        f"{type(saved).__name__.replace('dict', 'object')}, not an object")
    missing = [k for k in SAVED_KEYS if k not in saved]
    if missing:
        raise UserError(f"{where} is not a tapegrad run configuration: missing "
                        f"{', '.join(repr(k) for k in missing)}")
    if saved["model"] not in MODELS:
        raise UserError(f"{where} names an unknown model {saved['model']!r} (known: {', '.join(MODELS)})")
    for name in NUMBERS:
        if name in saved:
            check_number(name, saved[name], label=f"{where}: {name!r}")
    for name in ("n_train", "n_test", "num_classes"):
        check_number("n", saved[name], label=f"{where}: {name!r}")
    shape, classes = saved["input_shape"], saved["class_names"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(NUMBERS["n"].accepts(v) for v in shape)):
        raise UserError(f"{where}: 'input_shape' must be [C, H, W] of positive integers, got {shape!r}")
    if not (isinstance(classes, list) and len(classes) == saved["num_classes"]):
        raise UserError(f"{where}: 'class_names' must list {saved['num_classes']} names, got {classes!r}")
    if not isinstance(saved.get("eager", False), bool):
        raise UserError(f"{where}: 'eager' must be true or false, got {saved['eager']!r}")
    if saved["optimizer"] not in OPTIMIZERS or saved["loss"] not in LOSSES:
        raise UserError(f"{where}: unknown optimizer or loss ({saved['optimizer']!r}, {saved['loss']!r})")
    betas = saved["betas"]
    if not (isinstance(betas, list) and len(betas) == 2 and all(Number(False, 0).accepts(b) and b < 1
                                                                 for b in betas)):
        raise UserError(f"{where}: 'betas' must be two numbers in [0, 1), got {betas!r}")
    for name in ("dataset", "data_dir"):
        if not (isinstance(saved[name], str) or (name == "data_dir" and saved[name] is None)):
            raise UserError(f"{where}: {name!r} must be a string, got {saved[name]!r}")
