"""The training demos on tiny generated datasets: outputs, resuming, determinism, signals.

Each demo runs a few batches on IDX / CIFAR files written here (never the real datasets).
The central promise (issue 9, "resumable training"): a run that is interrupted -- by
``--stop-after-steps``, SIGTERM or SIGKILL -- and continued with ``--resume`` ends with exactly
the same weights (``np.array_equal``) and the same per-step losses as an uninterrupted run.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.data import write_cifar_bin, write_idx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMOS = os.path.join(ROOT, "demos")
if DEMOS not in sys.path:
    sys.path.insert(0, DEMOS)

import cifar10  # noqa: E402
import fashion_mnist  # noqa: E402
import mnist  # noqa: E402

# one thread: fast on a busy machine, and the same count in-process and in subprocesses
QUIET = ["--no-progress", "--threads", "1"]


def _write_mnist(folder, n_train, n_test, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        # a learnable signal: a bright square whose position is the label, plus noise
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, lab in enumerate(labels):
            r, c = 2 + 8 * (lab // 4), 2 + 6 * (lab % 4)
            images[i, r:r + 6, c:c + 5] = 255
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"), images)
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), labels)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """DIR/mnist (192 train, 48 test), DIR/fashion-mnist, DIR/mnist-long (500 train, for the
    signal tests) and DIR/cifar-10-batches-bin (5 x 16 train, 24 test)."""
    root = tmp_path_factory.mktemp("datasets")
    _write_mnist(root / "mnist", 192, 48, 0)
    _write_mnist(root / "fashion-mnist", 128, 32, 1)
    _write_mnist(root / "mnist-long" / "mnist", 500, 16, 2)
    rng = np.random.default_rng(3)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir()
    for name, n in [(f"data_batch_{k}.bin", 16) for k in range(1, 6)] + [("test_batch.bin", 24)]:
        write_cifar_bin(folder / name, rng.integers(0, 256, (n, 32, 32, 3)).astype(np.uint8),
                        rng.integers(0, 10, n).astype(np.uint8))
    return root


def _weights(path):
    return {k: (v.data if isinstance(v, tg.Tensor) else np.asarray(v)) for k, v in tg.load(path).items()}


def _assert_same_weights(dir_a, dir_b):
    a, b = _weights(dir_a / "model.safetensors"), _weights(dir_b / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), f"{k} differs"


def _metrics(out):
    with open(out / "metrics.json") as f:
        return json.load(f)


def _assert_same_history(dir_a, dir_b):
    ha, hb = _metrics(dir_a)["history"], _metrics(dir_b)["history"]
    for key in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "step_loss"):
        assert ha[key] == hb[key], key


MNIST_RUN = ["--epochs", "2", "--batch-size", "16", "--limit-batches", "5", "--checkpoint-every", "2"]


@pytest.fixture(scope="module")
def mnist_reference(data_dir, tmp_path_factory):
    """An uninterrupted 2-epoch x 5-step MNIST run (seed 0) to compare against."""
    out = tmp_path_factory.mktemp("mnist_ref")
    assert mnist.main(["--data-dir", str(data_dir), "--out", str(out)] + MNIST_RUN + QUIET) == 0
    return out


# ------------------------------------------------------------------------------ basics
@pytest.mark.parametrize("module", [mnist, fashion_mnist, cifar10])
def test_help_lists_the_options(module, capsys):
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data-dir", "--epochs", "--batch-size", "--lr", "--seed", "--out", "--resume",
                   "--limit-batches", "--checkpoint-every"):
        assert option in text


def test_mnist_writes_checkpoint_model_metrics_and_curves(mnist_reference):
    out = mnist_reference
    for name in ("checkpoint.safetensors", "model.safetensors", "metrics.json", "curves.png"):
        assert (out / name).is_file(), name
    with open(out / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    m = _metrics(out)
    assert m["status"] == "finished" and m["demo"] == "mnist" and m["dataset"] == "mnist"
    assert m["history"]["epoch"] == [1, 2]
    assert len(m["history"]["step_loss"]) == 10 and all(np.isfinite(m["history"]["step_loss"]))
    assert m["final"]["steps_done"] == 10 and 0 <= m["final"]["test_acc"] <= 1
    ck = tg.load(out / "checkpoint.safetensors")
    assert ck["progress"]["epoch"] == 2 and ck["progress"]["step_in_epoch"] == 0
    assert {"model", "optimizer", "scheduler", "rng", "args"} <= set(ck)
    assert ck["rng"]["tinygrad_cnn"]["bit_generator"] == "PCG64"
    assert set(_weights(out / "model.safetensors")) == set(tg.models.lenet5().state_dict())


def test_mnist_learns_the_toy_task(data_dir, tmp_path):
    """Sanity: a few epochs on the toy images (the label is where a bright square sits) learn it."""
    out = tmp_path / "learn"
    assert mnist.main(["--data-dir", str(data_dir), "--out", str(out), "--epochs", "4", "--batch-size", "16",
                       "--lr", "0.03", "--no-plot"] + QUIET) == 0
    assert _metrics(out)["final"]["test_acc"] >= 0.9


def test_fashion_demo_reads_tinygrad_cnn_data(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(data_dir))
    out = tmp_path / "fashion"
    assert fashion_mnist.main(["--out", str(out), "--epochs", "1", "--batch-size", "32", "--limit-batches", "2",
                               "--no-plot"] + QUIET) == 0
    m = _metrics(out)
    assert m["dataset"] == "fashion" and m["title"] == "LeNet-5 on Fashion-MNIST"
    assert m["args"]["epochs"] == 1 and len(m["history"]["step_loss"]) == 2


def test_missing_dataset_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TINYGRAD_CNN_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert mnist.main(["--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "o")] + QUIET) == 2
    assert "--download" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["fast", "resnet20"])
def test_cifar10_smoke(model, data_dir, tmp_path):
    out = tmp_path / model
    assert cifar10.main(["--data-dir", str(data_dir), "--model", model, "--out", str(out), "--epochs", "1",
                         "--batch-size", "8", "--limit-batches", "2", "--eval-batch-size", "12"] + QUIET) == 0
    m = _metrics(out)
    assert m["model"] == model and m["history"]["epoch"] == [1] and len(m["history"]["step_loss"]) == 2
    assert (out / "curves.png").is_file() and (out / "checkpoint.safetensors").is_file()
    assert m["args"]["label_smoothing"] == (0.1 if model == "fast" else 0.0)


# ------------------------------------------------------------------------------ determinism
def test_same_seed_gives_identical_losses_and_weights(data_dir, mnist_reference, tmp_path):
    again = tmp_path / "again"
    assert mnist.main(["--data-dir", str(data_dir), "--out", str(again), "--no-plot"] + MNIST_RUN + QUIET) == 0
    _assert_same_history(mnist_reference, again)
    _assert_same_weights(mnist_reference, again)
    other = tmp_path / "other"
    assert mnist.main(["--data-dir", str(data_dir), "--out", str(other), "--no-plot", "--seed", "1"]
                      + MNIST_RUN + QUIET) == 0
    assert _metrics(other)["history"]["step_loss"] != _metrics(again)["history"]["step_loss"]


def test_epoch_seed_is_a_pure_function_of_seed_and_epoch():
    import _common
    seeds = {_common.epoch_seed(s, e) for s in range(3) for e in range(3)}
    assert len(seeds) == 9 and _common.epoch_seed(1, 2) == _common.epoch_seed(1, 2)


# ------------------------------------------------------------------------------ resuming
@pytest.mark.parametrize("stops", [[3], [5], [2, 7]], ids=["mid-epoch", "before-eval", "twice"])
def test_stopped_and_resumed_run_equals_uninterrupted_run(stops, data_dir, mnist_reference, tmp_path):
    """Stop after k steps (mid-epoch, after the last step of epoch 1 but before its evaluation,
    or twice), resume, and end bitwise where the uninterrupted run ends."""
    out = tmp_path / "run"
    base = ["--data-dir", str(data_dir), "--out", str(out)] + MNIST_RUN + QUIET
    assert mnist.main(base + ["--stop-after-steps", str(stops[0])]) == 0
    assert _metrics(out)["status"] == "interrupted"
    ck = tg.load(out / "checkpoint.safetensors")
    assert ck["progress"]["global_step"] == stops[0]
    assert ck["progress"]["step_in_epoch"] == (stops[0] if stops[0] <= 5 else stops[0] - 5)
    for k in stops[1:]:
        assert mnist.main(base + ["--resume", "--stop-after-steps", str(k)]) == 0
    assert mnist.main(base + ["--resume"]) == 0
    assert _metrics(out)["status"] == "finished"
    _assert_same_weights(mnist_reference, out)
    _assert_same_history(mnist_reference, out)


def test_cifar10_resume_replays_the_augmentation(data_dir, tmp_path):
    """Random crops and flips of the resumed epoch are the ones the uninterrupted run saw."""
    common = ["--data-dir", str(data_dir), "--epochs", "2", "--batch-size", "8", "--limit-batches", "4",
              "--eval-batch-size", "12", "--no-plot"] + QUIET
    ref, run = tmp_path / "ref", tmp_path / "run"
    assert cifar10.main(common + ["--out", str(ref)]) == 0
    assert cifar10.main(common + ["--out", str(run), "--stop-after-steps", "3"]) == 0
    assert cifar10.main(common + ["--out", str(run), "--resume"]) == 0
    _assert_same_weights(ref, run)   # includes BatchNorm running statistics
    _assert_same_history(ref, run)


def test_resume_keeps_the_options_of_the_run(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--data-dir", str(data_dir), "--out", str(out)] + MNIST_RUN + QUIET
    assert mnist.main(base + ["--stop-after-steps", "1", "--lr", "0.05"]) == 0
    with pytest.raises(SystemExit) as exc:  # a different learning rate would change the run
        mnist.main(base + ["--resume", "--lr", "0.2"])
    assert exc.value.code == 2 and "--lr 0.2 differs" in capsys.readouterr().err
    assert mnist.main(["--resume", str(out / "checkpoint.safetensors")] + QUIET + ["--no-plot"]) == 0
    m = _metrics(out)
    assert m["args"]["lr"] == 0.05 and m["status"] == "finished" and m["final"]["steps_done"] == 10


def test_a_new_run_does_not_silently_replace_an_unfinished_one(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--data-dir", str(data_dir), "--out", str(out), "--no-plot"] + MNIST_RUN + QUIET
    assert mnist.main(base + ["--stop-after-steps", "3"]) == 0
    with pytest.raises(SystemExit) as exc:
        mnist.main(base)
    assert exc.value.code == 2 and "unfinished run (epoch 1/2, step 3)" in capsys.readouterr().err
    assert mnist.main(base + ["--overwrite"]) == 0      # starts again
    assert mnist.main(base) == 0                        # a finished run may be replaced
    assert _metrics(out)["final"]["steps_done"] == 10


def test_resume_without_checkpoint_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        mnist.main(["--out", str(tmp_path / "none"), "--resume"])
    assert exc.value.code == 2 and "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("content", [b"\x80\x04not a checkpoint", b""], ids=["pickle-like", "empty"])
def test_resume_from_a_damaged_or_foreign_file_is_a_clear_error(content, tmp_path, capsys):
    (tmp_path / "checkpoint.safetensors").write_bytes(content)
    with pytest.raises(SystemExit) as exc:
        mnist.main(["--out", str(tmp_path), "--resume"])
    assert exc.value.code == 2 and "cannot use" in capsys.readouterr().err
    tg.save({"weights": np.zeros(3, np.float32)}, tmp_path / "other.safetensors")  # valid, but not ours
    with pytest.raises(SystemExit):
        mnist.main(["--resume", str(tmp_path / "other.safetensors")])
    assert "not a checkpoint of the tinygrad_cnn demos" in capsys.readouterr().err


# ------------------------------------------------------------------------------ signals
LONG_RUN = ["--epochs", "4", "--batch-size", "2", "--checkpoint-every", "10", "--no-plot", "--eval-batch-size", "16"]


@pytest.fixture(scope="module")
def long_reference(data_dir, tmp_path_factory):
    """Uninterrupted reference for the signal tests: 4 epochs x 250 steps on mnist-long."""
    out = tmp_path_factory.mktemp("long_ref")
    assert mnist.main(["--data-dir", str(data_dir / "mnist-long"), "--out", str(out)] + LONG_RUN + QUIET) == 0
    return out


def _start_and_signal(data_dir, out, sig, min_step=20):
    """Run the demo in a subprocess and send ``sig`` once a checkpoint after >= min_step steps exists."""
    cmd = [sys.executable, os.path.join(DEMOS, "mnist.py"), "--data-dir", str(data_dir / "mnist-long"),
           "--out", str(out)] + LONG_RUN + QUIET
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    ckpt = out / "checkpoint.safetensors"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt.is_file():
                try:
                    if tg.load(ckpt)["progress"]["global_step"] >= min_step:
                        break
                except Exception:  # being replaced right now: try again
                    pass
            time.sleep(0.02)
        assert proc.poll() is None, "the demo finished before it could be interrupted:\n" + proc.stdout.read()
        proc.send_signal(sig)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, output


def test_sigterm_writes_a_checkpoint_and_resume_matches(data_dir, long_reference, tmp_path):
    out = tmp_path / "term"
    code, output = _start_and_signal(data_dir, out, signal.SIGTERM)
    assert code == 143, output
    assert "stopped by SIGTERM" in output and "Traceback" not in output
    ck = tg.load(out / "checkpoint.safetensors")
    assert _metrics(out)["status"] == "interrupted"
    assert 20 <= ck["progress"]["global_step"] < 1000
    assert mnist.main(["--data-dir", str(data_dir / "mnist-long"), "--out", str(out), "--resume"]
                      + LONG_RUN + QUIET) == 0
    _assert_same_weights(long_reference, out)
    _assert_same_history(long_reference, out)


def test_sigkill_loses_at_most_checkpoint_every_steps(data_dir, long_reference, tmp_path):
    out = tmp_path / "kill"
    code, _ = _start_and_signal(data_dir, out, signal.SIGKILL)
    assert code == -signal.SIGKILL
    ck = tg.load(out / "checkpoint.safetensors")  # never half-written: loads
    assert ck["progress"]["global_step"] % 10 == 0 or ck["progress"]["step_in_epoch"] == 0
    assert mnist.main(["--data-dir", str(data_dir / "mnist-long"), "--out", str(out), "--resume"]
                      + LONG_RUN + QUIET) == 0
    _assert_same_weights(long_reference, out)
    _assert_same_history(long_reference, out)
