"""End-to-end check of benchmarks/mnist_epoch.py on tiny generated MNIST files (no timing asserted)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

from test_demos import _write_mnist  # noqa: E402  (tiny learnable IDX files, tests/ is on sys.path)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "mnist_epoch.py")


def test_mnist_epoch_benchmark_runs_both_sides(tmp_path):
    data = tmp_path / "data"
    _write_mnist(data / "mnist", 320, 64, 7)
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, SCRIPT, "--limit", "256", "--data-dir", str(data), "--threads", "1",
                           "--json", str(out)], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())

    assert result["train_images"] == 256 and result["steps"] == 4 and result["batch_size"] == 64
    assert result["test_images"] == 64
    assert result["same_batches"] is True
    for side in ("tinygrad_cnn", "torch"):
        r = result[side]
        assert r["steps"] == 4 and r["images"] == 256
        assert r["epoch_s"] > 0 and r["images_per_s"] > 0
        assert r["warmup"]["first_step_s"] > 0
        assert math.isfinite(r["train_loss"]) and r["train_loss"] > 0
        assert math.isfinite(r["test_loss"]) and 0.0 <= r["test_acc"] <= 1.0
        assert abs(sum(r["phases_s"].values()) - r["epoch_s"]) < 0.5 * r["epoch_s"] + 0.05
    assert math.isfinite(result["ratio"]) and result["ratio"] > 0
    assert result["ratio"] == pytest.approx(result["tinygrad_cnn"]["epoch_s"] / result["torch"]["epoch_s"])
    # same initial weights, same batches, same recipe: the two frameworks trained the same thing
    assert result["tinygrad_cnn"]["train_loss"] == pytest.approx(result["torch"]["train_loss"], rel=1e-3)
    assert result["tinygrad_cnn"]["test_loss"] == pytest.approx(result["torch"]["test_loss"], rel=1e-3)
    assert "PyTorch" in proc.stdout and "ours / torch" in proc.stdout


def test_mnist_epoch_benchmark_reports_missing_data(tmp_path):
    env = dict(os.environ, TINYGRAD_CNN_DATA=str(tmp_path / "nothing"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, SCRIPT, "--data-dir", str(tmp_path / "empty"), "--limit", "64"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 2
    assert "error" in proc.stderr
