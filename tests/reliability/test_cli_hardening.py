"""The CLI under bad input: every user error is one `tapegrad: error: ...` line and exit code 2,
nothing is written before the settings are valid, a run directory is locked for its run and never
takes a folder of the user's own files. In-process through `tapegrad.cli.main` (fast); subprocesses
only where a second process or a signal is the point."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tapegrad.cli as cli
from tapegrad.cli import main
from tapegrad.rundir import LOCK_NAME, RunDirBusy, RunLock

REPO = Path(__file__).resolve().parents[2]
TINY = ["--model", "mlp-l2", "--epochs", "1", "--no-progress"]  # with --dataset tiny.npz: ~0.5 s a run
MODELS = "digits, zhou, escontrela, nielsen-mlp, mlp-l2, nielsen-conv, lenet-bn"


def _npz(path, n=20, shape=(1, 8, 8), labels=None, seed=0):
    images = np.random.default_rng(seed).random((n, *shape)).astype(np.float32)
    np.savez(path, images=images, labels=np.arange(n) % 4 if labels is None else labels)
    return path


def _snapshot(folder):
    """{relative path: sha256} of every file under `folder` (a user's files, before and after)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished 1-epoch run of mlp-l2 on 20 random 8x8 images (and its dataset)."""
    base = tmp_path_factory.mktemp("hardening")
    data = _npz(base / "tiny.npz")
    run = base / "run"
    assert main(["train", *TINY, "--dataset", str(data), "--out", str(run)]) == 0
    return run


# --- the table: argv -> the exact line ------------------------------------------------------------
def _setup_files(tmp, run):
    """Files the table's cases point at ({tmp}/...): damaged data, foreign folders, broken configs."""
    (tmp / "dir.npz").mkdir()
    good = (tmp / "good.npz")
    _npz(good, n=200)
    (tmp / "cut.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (tmp / "text.npz").write_text("images,labels\n0,1\n")
    (tmp / "empty.npz").write_bytes(b"")
    np.savez(tmp / "objects.npz", images=np.array([None] * 4, dtype=object), labels=np.arange(4))
    _npz(tmp / "wide.npz", n=20, shape=(1, 8, 8), labels=np.arange(20) % 12)
    _npz(tmp / "other.npz", n=20, shape=(1, 10, 10))
    (tmp / "project").mkdir()
    (tmp / "project" / "README.md").write_text("my project\n")
    (tmp / "project" / "config.json").write_text('{"mine": true}\n')
    (tmp / "afile").write_text("not a folder")
    saved = json.loads((run / "config.json").read_text())
    for name, content in [("listcfg", "[1, 2]"), ("badjson", '{"model": '),
                          ("nokeys", json.dumps({k: v for k, v in saved.items() if k not in ("lr", "seed")})),
                          ("unknown", json.dumps(dict(saved, model="resnet"))),
                          ("negepochs", json.dumps(dict(saved, epochs=-3))),
                          ("noconfig", None)]:
        (tmp / name).mkdir()
        if content is not None:
            (tmp / name / "config.json").write_text(content)
    (tmp / "badckpt").mkdir()
    (tmp / "badckpt" / "config.json").write_text(json.dumps(saved))
    (tmp / "badckpt" / "model.npz").write_bytes(b"garbage" * 10)


CASES = [
    # numeric options: sign, finiteness, range, type
    ("clip-norm negative", ["train", "--clip-norm", "-1"], "--clip-norm must be a finite number > 0, got -1.0"),
    ("clip-value negative", ["train", "--clip-value", "-1"], "--clip-value must be a finite number > 0, got -1.0"),
    ("clip-value nan", ["train", "--clip-value", "nan"], "--clip-value must be a finite number > 0, got nan"),
    ("clip-norm inf", ["train", "--clip-norm", "inf"], "--clip-norm must be a finite number > 0, got inf"),
    ("lr zero", ["train", "--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    ("lr negative", ["train", "--lr", "-0.1"], "--lr must be a finite number > 0, got -0.1"),
    ("lr nan", ["train", "--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    ("weight decay negative", ["train", "--weight-decay", "-0.001"],
     "--weight-decay must be a finite number >= 0, got -0.001"),
    ("early stop nan", ["train", "--early-stop-loss", "nan"],
     "--early-stop-loss must be a finite number >= 0, got nan"),
    ("epochs zero", ["train", "--epochs", "0"], "--epochs must be an integer in 1..100000, got 0"),
    ("epochs huge", ["train", "--epochs", "1000001"], "--epochs must be an integer in 1..100000, got 1000001"),
    ("batch zero", ["train", "--batch-size", "0"], "--batch-size must be an integer in 1..1000000, got 0"),
    ("seed negative", ["train", "--seed", "-1"], "--seed must be an integer in 0..4294967295, got -1"),
    ("seed huge", ["train", "--seed", str(2**40)], f"--seed must be an integer in 0..4294967295, got {2**40}"),
    ("limit-train zero", ["train", "--limit-train", "0"], "--limit-train must be an integer >= 1, got 0"),
    ("limit-test negative", ["train", "--limit-test", "-5"], "--limit-test must be an integer >= 1, got -5"),
    ("epochs not a number", ["train", "--epochs", "x"],
     "argument --epochs: invalid int value: 'x' (see `tapegrad train --help`)"),
    ("lr not a number", ["train", "--lr", "fast"],
     "argument --lr: invalid float value: 'fast' (see `tapegrad train --help`)"),
    ("resume negative epochs", ["train", "--resume", "{tmp}/nowhere", "--epochs", "-2"],
     "--epochs must be an integer in 1..100000, got -2"),
    ("resume with recipe flags", ["train", "--resume", "{tmp}/nowhere", "--lr", "0.1"],
     "--resume continues a run with its saved settings; only --epochs, --eager and --no-progress may be given with it "
     "(got --lr)"),
    ("unknown command", ["fit"], "argument {train,eval,predict,graph,export}: invalid choice: 'fit' (choose from 'train', "
                                 "'eval', 'predict', 'graph', 'export') (see `tapegrad --help`)"),
    # data files
    ("npz is a folder", ["train", "--dataset", "{tmp}/dir.npz"], "{tmp}/dir.npz is a folder, not an .npz file"),
    ("npz truncated", ["train", "--dataset", "{tmp}/cut.npz"],
     "{tmp}/cut.npz is not a valid .npz file (not a zip archive: truncated, or another format)"),
    ("npz is text", ["train", "--dataset", "{tmp}/text.npz"],
     "{tmp}/text.npz is not a valid .npz file (not a zip archive: truncated, or another format)"),
    ("npz empty", ["train", "--dataset", "{tmp}/empty.npz"],
     "{tmp}/empty.npz is not a valid .npz file (an empty file)"),
    ("npz object arrays", ["train", "--dataset", "{tmp}/objects.npz"],
     "{tmp}/objects.npz holds object arrays, which tapegrad does not load (they need pickle); save images and "
     "labels as plain numeric arrays"),
    ("npz missing", ["train", "--dataset", "{tmp}/missing.npz"], "{tmp}/missing.npz: no such file"),
    ("npz path too long", ["train", "--dataset", "{tmp}/" + "d" * 300 + ".npz"], "LONG: File name too long"),
    # run directories
    ("out holds user files", ["train", "--out", "{tmp}/project"],
     "--out {tmp}/project holds files tapegrad did not write (README.md, config.json); tapegrad never overwrites "
     "them: choose a new or empty folder"),
    ("out is a file", ["train", "--out", "{tmp}/afile"],
     "cannot write to the run directory {tmp}/afile: it is a file, not a folder"),
    ("out name too long", ["train", "--out", "{tmp}/" + "o" * 300], "LONG: File name too long"),
    # config.json and checkpoints of a run
    ("eval no folder", ["eval", "{tmp}/nowhere"], "{tmp}/nowhere is not a tapegrad run directory (no such folder)"),
    ("eval no config", ["eval", "{tmp}/noconfig"], "{tmp}/noconfig is not a tapegrad run directory (no config.json)"),
    ("config is a list", ["eval", "{tmp}/listcfg"],
     "{tmp}/listcfg/config.json is not a tapegrad run configuration: it holds a JSON list, not an object"),
    ("config not json", ["predict", "{tmp}/badjson"],
     "{tmp}/badjson/config.json is not valid JSON: Expecting value: line 1 column 11 (char 10)"),
    ("config lacks keys", ["eval", "{tmp}/nokeys"],
     "{tmp}/nokeys/config.json is not a tapegrad run configuration: missing 'lr', 'seed'"),
    ("config unknown model", ["eval", "{tmp}/unknown"],
     f"{{tmp}}/unknown/config.json names an unknown model 'resnet' (known: {MODELS})"),
    ("config bad number", ["train", "--resume", "{tmp}/negepochs"],
     "{tmp}/negepochs/config.json: 'epochs' must be an integer in 1..100000, got -3"),
    ("checkpoint damaged", ["eval", "{tmp}/badckpt"], "CKPT"),
    ("eval labels beyond classes", ["eval", "{run}", "--dataset", "{tmp}/wide.npz"],
     "{tmp}/wide.npz (test split) has label 7, but the model was trained for 4 classes (0..3)"),
    ("eval other image size", ["eval", "{run}", "--dataset", "{tmp}/other.npz"],
     "{tmp}/other.npz images are (1, 10, 10), the model was trained on (1, 8, 8)"),
    ("predict n zero", ["predict", "{run}", "-n", "0"], "-n must be an integer >= 1, got 0"),
    ("eval limit zero", ["eval", "{run}", "--limit-test", "0"], "--limit-test must be an integer >= 1, got 0"),
    # graph
    ("graph unknown extension", ["graph", "-o", "{tmp}/g.xyz"],
     "-o {tmp}/g.xyz: unknown graph format 'xyz' (use one of .dot, .gv, .svg, .png, .pdf, .jpg, .jpeg, .gif, .bmp, "
     ".tif, .tiff, .webp, .ps, .eps, .json, .xdot, .plain)"),
    ("graph input too small", ["graph", "--model", "zhou", "--input-shape", "1,2,2", "-o", "{tmp}/g.dot"],
     "model zhou cannot take input of shape (1, 2, 2): conv2d: kernel (3, 3) (dilation (1, 1)) spans (3, 3) but the "
     "padded input is only (2, 2) (input (1, 1, 2, 2))"),
    ("graph input too large", ["graph", "--input-shape", "1,5000,5000"],
     "argument --input-shape: at most 64 channels and 256x256 pixels, got '1,5000,5000' (see `tapegrad graph --help`)"),
    ("graph input not a shape", ["graph", "--input-shape", "28x28"],
     "argument --input-shape: expected C,H,W of positive integers such as 1,28,28, got '28x28' "
     "(see `tapegrad graph --help`)"),
    ("graph unknown collapse", ["graph", "--collapse", "ConvBlock", "-o", "{tmp}/g.dot"],
     "--collapse ConvBlock: model digits has no module class or name 'ConvBlock' (its classes: BatchNorm2d, Conv2d, "
     "Digits, Flatten, Linear, MaxPool2d, ReLU)"),
    ("graph negative depth", ["graph", "--depth", "-1", "-o", "{tmp}/g.dot"],
     "--depth must be an integer in 0..100, got -1"),
]


def _long(text):
    from tapegrad.rundir import short

    return short(text)


def test_the_table_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name,argv,line", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(tmp_path, tiny_run, capsys, name, argv, line):
    _setup_files(tmp_path, tiny_run)
    before = _snapshot(tmp_path)
    fill = lambda text: text.replace("{tmp}", str(tmp_path)).replace("{run}", str(tiny_run))  # noqa: E731
    argv = [fill(a) for a in argv]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    if line.startswith("LONG"):  # the over-long path is shortened in the middle, not repeated whole
        long_arg = max(argv, key=len)
        line = line.replace("LONG", _long(long_arg if not long_arg.endswith("d.npz") else long_arg))
        assert len(err) < 200
    if line == "CKPT":  # nn's own message, named file first: check the shape of the line
        assert err.startswith(f"tapegrad: error: ") and f"{tmp_path}/badckpt/model.npz" in err
        assert err.count("\n") == 1 and "Traceback" not in err
    else:
        assert err == f"tapegrad: error: {fill(line)}\n"
    assert out == ""
    assert _snapshot(tmp_path) == before  # a failed command writes nothing


# --- nothing is lost ------------------------------------------------------------------------------
def test_a_folder_of_user_files_is_untouched(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    for name, text in [("config.json", '{"lr": 1}'), ("metrics.csv", "a,b\n1,2\n"), ("graph.dot", "digraph {}"),
                       ("notes.txt", "mine"), ("src/main.py", "print(1)\n")]:
        (project / name).write_text(text)
    before = _snapshot(project)
    names = sorted(os.listdir(project))
    monkeypatch.chdir(project)
    assert main(["train", "--out", ".", "--no-progress"]) == 2
    assert capsys.readouterr().err == ("tapegrad: error: --out . holds files tapegrad did not write (config.json, "
                                       "graph.dot, metrics.csv, notes.txt, src); tapegrad never overwrites them: "
                                       "choose a new or empty folder\n")
    assert _snapshot(project) == before and sorted(os.listdir(project)) == names  # not even a lock file


def test_files_named_like_ours_are_the_users_without_our_config(tmp_path, capsys):
    folder = tmp_path / "looks-like-a-run"
    folder.mkdir()
    (folder / "metrics.csv").write_text("my,own\n")
    assert main(["train", "--out", str(folder), "--no-progress"]) == 2
    assert "holds files tapegrad did not write (metrics.csv)" in capsys.readouterr().err
    assert os.listdir(folder) == ["metrics.csv"]


def test_an_empty_folder_and_an_unfinished_run_are_accepted(tmp_path, capsys):
    data = _npz(tmp_path / "tiny.npz")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", *TINY, "--dataset", str(data), "--out", str(empty)]) == 0
    (empty / "model.npz").unlink()  # a run stopped before its first checkpoint: tapegrad's own files
    assert main(["train", *TINY, "--dataset", str(data), "--out", str(empty)]) == 0
    assert json.loads((empty / "config.json").read_text())["tapegrad_version"]


def _state(run):
    """Every file of a run with its mtime and checksum, but the lock file (taken, pid written, by
    every resume, including one that finds nothing to do)."""
    return {p.name: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in run.iterdir() if p.name != LOCK_NAME}


def test_invalid_resume_writes_nothing(tiny_run, capsys):
    before = _state(tiny_run)
    assert main(["train", "--resume", str(tiny_run), "--epochs", "-2"]) == 2
    assert main(["train", "--resume", str(tiny_run), "--epochs", "0", "--no-progress"]) == 2
    assert main(["train", "--resume", str(tiny_run), "--lr", "1"]) == 2
    assert main(["train", "--resume", str(tiny_run), "--epochs", "1"]) == 0  # nothing to do: says so
    out = capsys.readouterr().out
    assert "already trained 1 epoch; pass --epochs N (> 1) to train further" in out
    # the run wrote its files (graph.svg too where Graphviz is installed), and none of them changed
    assert {"config.json", "metrics.csv", "model.npz", "graph.dot", "curves.png"} <= set(before)
    assert _state(tiny_run) == before


def test_resume_reports_a_changed_dataset_new_against_old(tmp_path, capsys):
    data = _npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    assert main(["train", *TINY, "--dataset", str(data), "--out", str(run)]) == 0
    _npz(data, shape=(1, 10, 10))
    config = (run / "config.json").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    assert capsys.readouterr().err == (
        f"tapegrad: error: {data} has changed since {run} started: it now gives 16 train / 4 test images of shape "
        "(1, 10, 10), the run was trained on 16 / 4 of shape (1, 8, 8); start a new run for the new data\n")
    assert (run / "config.json").read_bytes() == config


def test_dataset_path_is_stored_absolute_so_eval_works_from_anywhere(tmp_path, monkeypatch, capsys):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    _npz(tmp_path / "work" / "d.npz")
    assert main(["train", *TINY, "--dataset", "d.npz", "--out", "run"]) == 0
    cfg = json.loads((tmp_path / "work" / "run" / "config.json").read_text())
    assert cfg["dataset"] == str(tmp_path / "work" / "d.npz")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["eval", "work/run"]) == 0
    assert "accuracy" in capsys.readouterr().out


def test_an_old_relative_dataset_path_is_explained(tiny_run, tmp_path, capsys):
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps(dict(cfg, dataset="data/d.npz")))
    assert main(["eval", str(run)]) == 2
    assert capsys.readouterr().err == (
        "tapegrad: error: data/d.npz: no such file (the run stored this path relative to the folder where "
        "`tapegrad train` ran: run from there)\n")


# --- one place classifies: user errors one line, bugs keep their traceback --------------------------
def test_ctrl_c_during_start_up_is_one_line_exit_130(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_data", interrupted)
    assert main(["train", "--out", str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err == "tapegrad: error: interrupted by Ctrl-C\n"
    assert not (tmp_path / "run").exists()


def test_a_bug_is_not_disguised_as_a_user_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a bug in tapegrad")

    monkeypatch.setattr(cli, "load_data", broken)
    with pytest.raises(RuntimeError, match="a bug in tapegrad"):
        main(["train"])


def test_data_layer_advice_names_the_cli_flag():
    from tapegrad.data import DatasetNotFoundError

    exc = DatasetNotFoundError("mnist (train split) not found.\nSearched (for NAME.gz or NAME):\n  /x\n"
                               "To fix: put train-images-idx3-ubyte.gz into /x, or pass root=<folder holding them>.")
    assert cli.user_message(exc) == ("mnist (train split) not found; Searched (for NAME.gz or NAME): /x; To fix: put "
                                     "train-images-idx3-ubyte.gz into /x, or pass --data-dir <folder holding them>")


def test_sparse_labels_warn_and_skip_the_confusion_plot(tmp_path, capsys):
    labels = np.array([0, 9000, 5] * 10)
    data = _npz(tmp_path / "sparse.npz", n=30, labels=labels)
    run = tmp_path / "run"
    start = time.perf_counter()
    assert main(["train", *TINY, "--dataset", str(data), "--out", str(run)]) == 0
    assert time.perf_counter() - start < 30
    out = capsys.readouterr().out
    note = ("labels are sparse: 3 distinct values in 0..9000, so the model gets 9001 outputs, 8998 of them for "
            "labels that never occur; remap them to 0..2 with `_, labels = np.unique(labels, return_inverse=True)`")
    assert f"note: {note}\n" in out
    assert "note: confusion matrix skipped: 9001 classes (more than 100)\n" in out
    assert "(8998 classes absent from the labels)" in out
    assert not (run / "confusion.png").exists()
    assert note in json.loads((run / "config.json").read_text())["data_notes"]


def test_data_notes_are_printed_and_stored(tmp_path, monkeypatch, capsys):
    """What the data layer did to the user's file (`dataset.notes`) is said after the start line
    and kept in config.json."""
    real = cli._npz_split
    said = "images (20, 8, 8, 1) look channels-last; transposed to (20, 1, 8, 8)"

    def with_note(path):
        train, test = real(path)
        train.notes = list(getattr(train, "notes", [])) + [said]
        return train, test

    monkeypatch.setattr(cli, "_npz_split", with_note)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--dataset", str(_npz(tmp_path / "d.npz")), "--out", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("training mlp-l2 on") and "up to 1 epoch, compiled steps)" in lines[0]
    notes = [line for line in lines[1:] if line.startswith("note: ")]
    assert f"note: {said}" in notes and lines[1:1 + len(notes)] == notes  # right after the start line
    assert said in json.loads((run / "config.json").read_text())["data_notes"]


# --- fuzzing the numeric options -------------------------------------------------------------------
NUMERIC = ["--epochs", "--batch-size", "--lr", "--weight-decay", "--clip-value", "--clip-norm", "--early-stop-loss",
           "--seed", "--limit-train", "--limit-test"]
VALUES = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-2**70, 2**70).map(str),
                   st.sampled_from(["", " ", "1e309", "-0", "0x10", "1_000", "nan", "-inf", "١"]), st.text(max_size=5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.tuples(st.sampled_from(NUMERIC), VALUES), min_size=1, max_size=3))
def test_fuzz_numeric_options_up_to_the_training_loop(tmp_path_factory, monkeypatch, capsys, options):
    """Any values: exit 0 or 2, one line, no traceback; what passes is recorded valid in config.json.
    (The loop itself is replaced: a valid --epochs 100000 must not run here; see the next test.)"""
    reached = []
    monkeypatch.setattr(cli, "_train_run", lambda cfg, *rest, **kw: reached.append(cfg) or 0)
    out = tmp_path_factory.mktemp("fuzz") / "run"
    argv = ["train", "--limit-train", "64", "--limit-test", "16", "--no-progress", "--out", str(out)]
    for opt, value in options:
        argv += [f"{opt}={value}"]
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    if code == 2:
        assert err.startswith("tapegrad: error: ") and err.count("\n") == 1 and not reached
    else:
        (cfg,) = reached
        for key in ("lr", "weight_decay", "clip_value", "clip_norm", "early_stop_loss"):
            assert cfg[key] is None or (np.isfinite(cfg[key]) and cfg[key] >= 0)
        assert cfg["epochs"] >= 1 and cfg["batch_size"] >= 1 and 0 <= cfg["seed"] < 2**32
        assert json.loads((out / "config.json").read_text()) == cfg


FLOAT_OPTIONS = ["--lr", "--weight-decay", "--clip-value", "--clip-norm", "--early-stop-loss"]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(options=st.lists(st.tuples(st.sampled_from(FLOAT_OPTIONS),
                                  st.floats(-1e300, 1e300) | st.sampled_from([0.0, 1e-300, 1e300, float("nan")])),
                        min_size=1, max_size=3),
       batch=st.integers(-2, 40))
def test_fuzz_real_tiny_runs(tmp_path_factory, capsys, options, batch):
    """The same on real 1-epoch runs of 16 images: divergence (lr 1e300) is a user error too."""
    base = tmp_path_factory.mktemp("fuzzrun")
    argv = ["train", *TINY, "--dataset", str(_npz(base / "d.npz")), "--out", str(base / "run"),
            "--batch-size", str(batch)] + [f"{opt}={value!r}" for opt, value in options]
    with np.errstate(all="ignore"):
        code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    assert code == 0 or (err.startswith("tapegrad: error: ") and err.count("\n") == 1)


# --- the lock: two processes, one folder ---------------------------------------------------------
def _default_sigint() -> None:
    """In the child, before exec: Ctrl-C as a terminal delivers it. An ignored SIGINT (SIG_IGN) is
    inherited across exec, and Python then keeps ignoring it, so a test runner that ignores it
    would make the child ignore the test's signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _train_process(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "tapegrad", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def test_two_trainings_into_one_folder_exactly_one_runs(tmp_path):
    run = tmp_path / "shared"
    args = ["--limit-train", "3200", "--limit-test", "40", "--epochs", "1", "--no-progress", "--early-stop-loss", "0",
            "--out", str(run)]
    procs = [_train_process(args, tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    loser = next(err for p, (_, err) in zip(procs, results) if p.returncode == 2)
    assert loser.startswith(f"tapegrad: error: {run} is in use by another tapegrad run (pid ")
    assert loser.endswith("); wait for it to finish or choose another --out\n") and loser.count("\n") == 1
    winner = next(out for p, (out, _) in zip(procs, results) if p.returncode == 0)
    assert f"saved to {run}" in winner
    # the folder holds one whole run: its config and its weights belong together
    assert main(["eval", str(run)]) == 0
    assert json.loads((run / "config.json").read_text())["n_train"] == 3200


def _held_without_a_pid(lock: Path):
    """The lock file opened and flock'ed, as a run holds it between taking the lock and writing its pid."""
    import fcntl

    holder = open(lock, "a+")
    fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    return holder


def test_a_run_that_loses_the_race_names_the_winner_not_a_finished_run(tmp_path):
    """The winner writes its pid just after taking the lock: a loser reading in between finds a
    finished run's pid (or nothing) and must wait for the winner's, as two `tapegrad train` into one
    folder race in CI."""
    import threading

    run = tmp_path / "run"
    run.mkdir()
    finished = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True, check=True).stdout)
    (run / LOCK_NAME).write_text(f"{finished}\n")  # left by a run that has ended
    with _held_without_a_pid(run / LOCK_NAME) as holder:
        def write_pid():
            time.sleep(0.05)
            holder.seek(0)
            holder.truncate()
            holder.write(f"{os.getpid()}\n")
            holder.flush()

        writer = threading.Thread(target=write_pid)
        writer.start()
        with pytest.raises(RunDirBusy) as err:
            RunLock(run).acquire()
        writer.join()
    assert str(err.value) == f"{run} is in use by another tapegrad run (pid {os.getpid()}); wait for it to finish " \
                             "or choose another --out"


def test_a_lock_held_by_something_else_is_reported_without_a_pid(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with _held_without_a_pid(run / LOCK_NAME), pytest.raises(RunDirBusy) as err:
        RunLock(run).acquire()
    assert str(err.value) == f"{run} is in use by another tapegrad run; wait for it to finish or choose another --out"


def test_the_lock_is_held_for_the_run_and_released_after(tmp_path, capsys):
    data = _npz(tmp_path / "d.npz")
    run = tmp_path / "run"
    run.mkdir()
    with RunLock(run):  # another process (or open file) holds the folder
        assert main(["train", *TINY, "--dataset", str(data), "--out", str(run)]) == 2
        assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2  # no config yet: not a run
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"tapegrad: error: {run} is in use by another tapegrad run (pid {os.getpid()}); wait for it " \
                     "to finish or choose another --out"
    assert os.listdir(run) == [LOCK_NAME]
    assert main(["train", *TINY, "--dataset", str(data), "--out", str(run)]) == 0  # released: the run goes ahead
    with RunLock(run):
        assert main(["train", "--resume", str(run), "--epochs", "2"]) == 2
    assert capsys.readouterr().err.endswith("is in use by another tapegrad run "
                                            f"(pid {os.getpid()}); wait for it to finish\n")


def test_ctrl_c_early_in_a_real_process_never_shows_a_traceback(tmp_path):
    """SIGINT while the run starts (data, checks, graph) or in its first steps: one line, exit 130."""
    run = tmp_path / "run"
    proc = _train_process(["--model", "lenet-bn", "--limit-train", "2000", "--limit-test", "40", "--no-progress",
                           "--out", str(run)], tmp_path)
    deadline = time.monotonic() + 60
    while not (run / LOCK_NAME).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (err, out[-500:], signal.getsignal(signal.SIGINT))
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("interrupted: checkpoint saved to") or err == "tapegrad: error: interrupted by Ctrl-C\n"


def test_a_default_run_folder_in_use_moves_to_the_next_name(tmp_path, monkeypatch, capsys):
    """Two runs started in the same second pick the same runs/<model>-<time>: the second moves on."""
    busy, free = tmp_path / "runs" / "mlp-l2-1", tmp_path / "runs" / "mlp-l2-1-1"
    busy.mkdir(parents=True)
    names = iter([busy, free])
    monkeypatch.setattr(cli, "_default_run_dir", lambda model: next(names))
    with RunLock(busy):
        assert main(["train", *TINY, "--dataset", str(_npz(tmp_path / "d.npz"))]) == 0
    assert (free / "model.npz").is_file() and os.listdir(busy) == [LOCK_NAME]
    assert f"saved to {free}" in capsys.readouterr().out


def test_a_second_ctrl_c_in_training_stops_at_once_exit_130(tmp_path, monkeypatch, capsys):
    import tapegrad.train

    def second_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt  # what catch_sigint's handler raises on the second SIGINT

    monkeypatch.setattr(tapegrad.train, "fit", second_ctrl_c)
    run = tmp_path / "run"
    assert main(["train", *TINY, "--dataset", str(_npz(tmp_path / "d.npz")), "--out", str(run)]) == 130
    assert capsys.readouterr().err == (f"tapegrad: error: interrupted by a second Ctrl-C: stopped without saving; "
                                       f"{run}/model.npz holds the last checkpoint written (if any)\n")


SHAPE_TEXT = st.one_of(st.tuples(st.integers(0, 70), st.integers(0, 40), st.integers(0, 300)).map(
                           lambda v: ",".join(map(str, v))),
                       st.lists(st.integers(-2, 300), min_size=0, max_size=4).map(lambda v: ",".join(map(str, v))),
                       st.text(max_size=8))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=SHAPE_TEXT, depth=st.integers(-3, 200) | st.none(), model=st.sampled_from(["digits", "zhou"]))
def test_fuzz_graph_shape_and_depth(tmp_path_factory, capsys, shape, depth, model):
    out = tmp_path_factory.mktemp("graph") / "g.dot"
    argv = ["graph", "--model", model, f"--input-shape={shape}", "-o", str(out)]
    argv += [] if depth is None else ["--depth", str(depth)]
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 2) and "Traceback" not in err
    assert (code == 0) == out.exists()
    assert code == 0 or (err.startswith("tapegrad: error: ") and err.count("\n") == 1)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.sampled_from(["eval", "predict"]), n=VALUES, limit=VALUES | st.none())
def test_fuzz_eval_and_predict_numbers(tiny_run, capsys, command, n, limit):
    argv = [command, str(tiny_run)] + (["-n", n] if command == "predict" else [])
    argv += [] if limit is None else [f"--limit-test={limit}"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in err
    assert (code == 0 and out and not err) or (code == 2 and err.startswith("tapegrad: error: ")
                                                and err.count("\n") == 1)
