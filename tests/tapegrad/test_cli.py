"""`tapegrad` end to end: the run directory, eval/predict/graph, resume, Ctrl-C, user errors, the default job."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nn
from tapegrad.cli import main

REPO = Path(__file__).resolve().parents[2]
MNIST_DIR = Path(os.environ.get("TAPEGRAD_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))
TINY = ["--limit-train", "96", "--limit-test", "40", "--no-progress"]
CONFIG_KEYS = {"model", "dataset", "data_dir", "limit_train", "limit_test", "n_train", "n_test", "input_shape", "num_classes",
               "class_names", "epochs", "batch_size", "optimizer", "lr", "betas", "l2", "weight_decay",
               "clip_value", "clip_norm", "early_stop_loss", "loss", "scheduler", "seed", "tapegrad_version", "eager"}


def _metrics(run):
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(run)]) == 0
    return run


def test_run_directory_has_every_file(tiny_run, capsys):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert CONFIG_KEYS <= set(cfg)
    assert (cfg["model"], cfg["dataset"], cfg["epochs"], cfg["input_shape"]) == ("digits", "synthetic-digits", 2,
                                                                                 [1, 20, 20])
    assert (cfg["n_train"], cfg["n_test"]) == (96, 40)
    assert cfg["weight_decay"] == pytest.approx(0.01 / 96)  # L2 lambda / n_train
    rows = _metrics(tiny_run)
    assert list(rows[0]) == ["epoch", "loss", "train_acc", "test_acc", "samples_per_s", "seconds"]
    assert [r["epoch"] for r in rows] == ["1", "2"]
    ckpt = nn.load(tiny_run / "model.npz")
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "loader", "early_stop"} <= set(ckpt)
    assert ckpt["epoch"] == 2 and "conv.weight" in ckpt["model"]
    for png in ("curves.png", "confusion.png"):
        data = (tiny_run / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
    assert "digraph" in (tiny_run / "graph.dot").read_text()
    if shutil.which("dot"):
        assert "<svg" in (tiny_run / "graph.svg").read_text()


def test_train_prints_epoch_lines_and_recall(tmp_path, capsys):
    assert main(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^epoch 1/1  loss \d+\.\d{4}  train_acc [\d.]+%  test_acc [\d.]+%  \d+ samples/s", out, re.M)
    assert "per-class recall: 0 " in out and re.search(r"test accuracy [\d.]+% \(\d+/40\) after 1 epoch, ", out)
    assert "batch 32, up to 1 epoch, compiled steps); run directory" in out
    assert not re.search(r"^epoch 1/1 +\d+%", out, re.M)  # --no-progress: no progress lines


def test_progress_lines_when_stdout_is_not_a_terminal(tmp_path, capsys):
    """Logs get a line per tenth of an epoch with samples/s and ETA (no bar: stdout is captured)."""
    assert main(["train", "--limit-train", "960", "--limit-test", "40", "--epochs", "1", "--out",
                 str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    lines = re.findall(r"^epoch 1/1 +(\d+)% \((\d+)/30 batches\)  loss \d+\.\d{4}  \d+ samples/s  ETA \d+ s$", out, re.M)
    assert [int(step) for _, step in lines] == [3, 6, 9, 12, 15, 18, 21, 24, 27]
    assert out.index("10% (3/30") < out.index("epoch 1/1  loss")


def test_eval_and_predict(tiny_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    acc = float(re.search(r"accuracy ([\d.]+)% \((\d+)/40\)", out).group(1))
    assert acc == pytest.approx(100 * float(_metrics(tiny_run)[-1]["test_acc"]), abs=0.01)
    assert "per-class recall:" in out and "true\\pred" in out
    matrix = [line.split()[1:] for line in out.splitlines()[-10:]]
    assert sum(int(v) for row in matrix for v in row) == 40

    assert main(["predict", str(tiny_run), "-n", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    assert all(re.fullmatch(r"Sample \d+ - digit: \d \| prediction: \d", line) for line in lines)


def test_resume_equals_uninterrupted(tmp_path):
    whole, half = tmp_path / "whole", tmp_path / "half"
    assert main(["train", *TINY, "--epochs", "2", "--out", str(whole)]) == 0
    assert main(["train", *TINY, "--epochs", "1", "--out", str(half)]) == 0
    assert main(["train", "--resume", str(half), "--epochs", "2", "--no-progress"]) == 0
    keys = ("epoch", "loss", "train_acc", "test_acc")
    assert [[r[k] for k in keys] for r in _metrics(half)] == [[r[k] for k in keys] for r in _metrics(whole)]
    a, b = nn.load(whole / "model.npz"), nn.load(half / "model.npz")
    assert all(np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]


def _start(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "tapegrad.cli", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_saves_a_checkpoint_and_resume_matches(tmp_path):
    args = ["--limit-train", "1600", "--limit-test", "40", "--epochs", "3", "--no-progress", "--early-stop-loss", "0"]
    proc = _start([*args, "--out", str(tmp_path / "cut")], tmp_path)
    first = proc.stdout.readline()  # "training ..." is printed just before the first step
    assert first.startswith("training digits"), first + proc.stderr.read()
    proc.stdout.readline()  # the first epoch's line: the signal lands in epoch 2
    time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    line = err.strip().splitlines()
    match = re.fullmatch(r"interrupted: checkpoint saved to .*cut/model\.npz \(epoch (\d+), step (\d+)\)", line[0])
    assert len(line) == 1 and match, err
    ckpt = nn.load(tmp_path / "cut" / "model.npz")
    assert (ckpt["epoch"] + 1, ckpt["step"]) == (int(match.group(1)), int(match.group(2)))
    assert ckpt["epoch"] >= 1

    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    assert main(["train", *args, "--out", str(tmp_path / "whole")]) == 0
    keys = ("loss", "train_acc", "test_acc")
    cut, whole = _metrics(tmp_path / "cut"), _metrics(tmp_path / "whole")
    assert [[r[k] for k in keys] for r in cut] == [[r[k] for k in keys] for r in whole]
    a, b = nn.load(tmp_path / "cut" / "model.npz"), nn.load(tmp_path / "whole" / "model.npz")
    assert all(np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "nope"], "invalid choice: 'nope'"),
    (["train", "--dataset", "cifar"], "unknown dataset 'cifar'"),
    (["train", "--dataset", "mnist-10k", "--data-dir", "/nonexistent/mnist"], "mnist test set not found"),
    (["train", "--dataset", "/nonexistent/data.npz"], "/nonexistent/data.npz"),
    (["eval", "/nonexistent/run"], "not a tapegrad run directory"),
    (["train", "--resume", "/nonexistent/run", "--lr", "0.1"], "only --epochs, --eager and --no-progress"),
])
def test_user_errors_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_run_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["train", *TINY, "--epochs", "1", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot write to the run directory" in err and "Traceback" not in err


def test_existing_run_is_not_overwritten(tiny_run, capsys):
    assert main(["train", *TINY, "--out", str(tiny_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".dot", ".svg"])
def test_graph_command(tmp_path, suffix, capsys):
    if suffix != ".dot" and not shutil.which("dot"):
        pytest.skip("the Graphviz 'dot' program is not installed")
    out = tmp_path / f"g{suffix}"
    assert main(["graph", "--model", "lenet-bn", "--input-shape", "1,28,28", "--collapse", "ConvBNReLU",
                 "-o", str(out)]) == 0
    text = out.read_text()
    assert ("digraph" if suffix == ".dot" else "<svg") in text


def test_graph_depth_and_show_saved(tmp_path):
    files = {}
    for name, extra in [("plain", []), ("depth", ["--depth", "1"]), ("saved", ["--show-saved"])]:
        files[name] = tmp_path / f"{name}.dot"
        assert main(["graph", "--model", "lenet-bn", *extra, "-o", str(files[name])]) == 0
    plain, depth, saved = (files[n].read_text() for n in ("plain", "depth", "saved"))
    assert depth.count("->") < plain.count("->")  # children of the model drawn as single boxes
    assert "saved" not in plain and plain.count("shape=note") < saved.count("shape=note")


def test_curves_of_a_single_epoch_are_readable(tmp_path):
    from tapegrad import reports

    row = {"epoch": 1.0, "loss": 0.5, "train_acc": 0.8, "test_acc": 0.7, "samples_per_s": 1.0, "seconds": 1.0}
    steps = [((k + 1) / 20, 1.0 / (k + 1)) for k in range(20)]
    xlim = reports.plot_curves(tmp_path / "c.png", [row], steps=steps)
    assert xlim[0] == 0 and 1 <= xlim[1] < 1.2  # not 0.96-1.04 around a lone dot
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
    xs, ys = reports._binned([(k / 5000, 1.0) for k in range(5000)], 2000)
    assert len(xs) == 2000 and np.allclose(ys, 1.0)


def test_predict_on_an_npz_names_classes_not_digits(tmp_path, capsys):
    data = tmp_path / "d.npz"
    np.savez(data, images=np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32),
             labels=np.arange(20) % 3)
    assert main(["train", "--model", "mlp-l2", "--dataset", str(data), "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "r"), "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Sample 0 - class: 1 | prediction: ") and len(lines) == 2


def test_graph_backward(tmp_path):
    out = tmp_path / "g.dot"
    assert main(["graph", "--model", "zhou", "--backward", "-o", str(out)]) == 0
    assert "digraph" in out.read_text()


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(),
                    reason=f"real MNIST test set not found in {MNIST_DIR} (set TAPEGRAD_MNIST_DIR)")
def test_real_mnist_10k(tmp_path, capsys):
    run = tmp_path / "mnist"
    assert main(["train", "--dataset", "mnist-10k", "--data-dir", str(MNIST_DIR), "--limit-train", "500",
                 "--epochs", "2", "--no-progress", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["input_shape"] == [1, 28, 28]
    assert float(_metrics(run)[-1]["test_acc"]) > 0.6  # 500 real digits, 2 epochs: well above chance


def test_default_job_reaches_100_percent_in_under_a_minute(tmp_path, monkeypatch, capsys):
    """`tapegrad` with no arguments: digits on synthetic digits. The main job; runs everywhere."""
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    assert main([]) == 0
    elapsed = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "test accuracy 100.00% (500/500)" in out, out
    assert elapsed < 60, elapsed
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("digits-") and (run / "model.npz").is_file()


def test_disk_full_mid_run_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    """A failing checkpoint write (ENOSPC) ends the run with one clear line; the previous one stays."""
    import errno

    real_save, calls = nn.save, []

    def flaky_save(obj, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "save: could not write checkpoint (No space left on device)", str(path))
        real_save(obj, path)

    monkeypatch.setattr(nn, "save", flaky_save)
    run = tmp_path / "full"
    assert main(["train", *TINY, "--epochs", "3", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "last checkpoint written is intact" in err
    assert "Traceback" not in err
    assert nn.load(run / "model.npz")["epoch"] == 1


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_class_names(tmp_path, capsys):
    run = tmp_path / "fashion"
    assert main(["train", "--model", "mlp-l2", "--dataset", "fashion-mnist", "--limit-train", "300",
                 "--limit-test", "100", "--epochs", "1", "--no-progress", "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["class_names"][9] == "Ankle boot" and cfg["weight_decay"] == pytest.approx(5.0 / 300)
    assert "Ankle boot" in capsys.readouterr().out
    assert main(["predict", str(run), "-n", "3"]) == 0  # class names, as eval prints them; not "digit: 9"
    lines = capsys.readouterr().out.strip().splitlines()
    names = "|".join(re.escape(n) for n in cfg["class_names"])
    assert len(lines) == 3 and all(re.fullmatch(rf"Sample \d - class: ({names}) \| prediction: ({names})", line)
                                   for line in lines), lines
    assert lines[0].startswith("Sample 0 - class: Ankle boot")  # the first Fashion-MNIST test image


@pytest.mark.skipif(not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists(), reason=f"no MNIST in {MNIST_DIR}")
def test_eval_on_images_of_another_size_is_a_clear_error(tiny_run, capsys):
    assert main(["eval", str(tiny_run), "--dataset", "mnist-10k", "--data-dir", str(MNIST_DIR)]) == 2
    assert "images are (1, 28, 28), the model was trained on (1, 20, 20)" in capsys.readouterr().err


# --- compiled steps (the default) and --eager -----------------------------------------------------
def _start_line(out):
    return next(line for line in out.splitlines() if line.startswith("training "))


def test_compiled_and_eager_runs_give_the_same_weights_and_metrics(tmp_path, capsys):
    """100 images in batches of 32: the partial last batch is one more compiled program."""
    small = ["--limit-train", "100", "--limit-test", "40", "--no-progress", "--epochs", "1"]
    assert main(["train", *small, "--out", str(tmp_path / "compiled")]) == 0
    assert "compiled steps); run directory" in _start_line(capsys.readouterr().out)
    assert main(["train", *small, "--eager", "--out", str(tmp_path / "eager")]) == 0
    out = capsys.readouterr().out
    assert "eager steps); run directory" in _start_line(out) and "note:" not in out
    compiled, eager = (json.loads((tmp_path / r / "config.json").read_text()) for r in ("compiled", "eager"))
    assert (compiled["eager"], eager["eager"]) == (False, True)
    a, b = nn.load(tmp_path / "compiled" / "model.npz"), nn.load(tmp_path / "eager" / "model.npz")
    for k in a["model"]:
        np.testing.assert_allclose(a["model"][k], b["model"][k], rtol=1e-6, atol=0, err_msg=k)
    rows_c, rows_e = _metrics(tmp_path / "compiled"), _metrics(tmp_path / "eager")
    np.testing.assert_allclose([float(r["loss"]) for r in rows_c], [float(r["loss"]) for r in rows_e], rtol=1e-6)
    assert [(r["train_acc"], r["test_acc"]) for r in rows_c] == [(r["train_acc"], r["test_acc"]) for r in rows_e]


def test_resume_keeps_the_saved_mode_and_eager_may_be_asked_for(tmp_path, capsys):
    """Compiled epoch 1, --eager epoch 2 (stored), epoch 3 in the saved (eager) mode: as one compiled run."""
    whole, half = tmp_path / "whole", tmp_path / "half"
    assert main(["train", *TINY, "--epochs", "3", "--out", str(whole)]) == 0
    assert main(["train", *TINY, "--epochs", "1", "--out", str(half)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(half), "--epochs", "2", "--no-progress", "--eager"]) == 0
    assert "eager steps); resuming" in _start_line(capsys.readouterr().out)
    assert json.loads((half / "config.json").read_text())["eager"] is True
    assert main(["train", "--resume", str(half), "--epochs", "3", "--no-progress"]) == 0
    assert "eager steps); resuming" in _start_line(capsys.readouterr().out)
    keys = ("epoch", "loss", "train_acc", "test_acc")
    assert [[r[k] for k in keys] for r in _metrics(half)] == [[r[k] for k in keys] for r in _metrics(whole)]
    a, b = nn.load(whole / "model.npz"), nn.load(half / "model.npz")
    assert all(np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_model_that_cannot_be_compiled_trains_eagerly_after_one_note(tmp_path, capsys, monkeypatch):
    import autograd as ag

    real = ag.compile

    def failing(fn, **options):
        def fail(*args):
            raise ag.TraceError("trace: float() reads a traced value (shape ()) back into Python\nat model.py:3")
        return real(fail, **options)

    monkeypatch.setattr(ag, "compile", failing)
    assert main(["train", *TINY, "--epochs", "2", "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    notes = [line for line in out.splitlines() if line.startswith("note:")]
    assert notes[0] == ("note: cannot compile the training step of Digits (trace: float() reads a traced value "
                        "(shape ()) back into Python at model.py:3); running eager training steps instead")
    assert len([n for n in notes if "training step" in n]) == 1 and len(_metrics(tmp_path / "r")) == 2
    monkeypatch.undo()
    assert main(["train", *TINY, "--epochs", "2", "--eager", "--out", str(tmp_path / "eager")]) == 0
    a, b = nn.load(tmp_path / "r" / "model.npz"), nn.load(tmp_path / "eager" / "model.npz")
    assert all(np.array_equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_eval_and_predict_compiled_and_eager_agree(tiny_run, capsys):
    for command in (["eval", str(tiny_run)], ["predict", str(tiny_run), "-n", "40"]):
        capsys.readouterr()
        assert main(command) == 0
        compiled = capsys.readouterr().out
        assert main([*command, "--eager"]) == 0
        assert capsys.readouterr().out == compiled


def test_graph_draws_the_image_not_the_conv_unfolding(tmp_path):
    out = tmp_path / "g.dot"
    assert main(["graph", "--model", "digits", "-o", str(out)]) == 0
    leaves = [line for line in out.read_text().splitlines() if "fillcolor=lightyellow" in line]
    assert len(leaves) == 1 and "(1, 1, 20, 20) f32" in leaves[0]  # the user's image, one input
