"""Reliability: no leaks over long runs, loud anomalies, stable numerics, reproducible runs.

See docs/reliability.md for what is promised. The fuzzing of the public API lives in
tests/test_fuzz.py. Slow variants (opt in with ``--runslow``) train for an epoch.
"""
import gc
import os
import subprocess
import sys
import textwrap
import warnings

import numba
import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn import optim
from tinygrad_cnn.debug import GraphLeakWarning, graph_size, live_graph_nodes, rss_bytes, warn_on_graph_leaks
from tinygrad_cnn.optim.optimizer import Optimizer

F = nn.functional
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def one_thread():
    """Tiny kernels run faster on one thread (no pool wake-up per call); restored afterwards."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


def small_cnn():
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 4 * 4, 3))


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 8, 8)).astype(np.float32), rng.integers(0, 3, n)


# ============================================================================ memory

def test_long_training_memory_and_graph_nodes_stop_growing(one_thread):
    """500 SGD steps of a small CNN: the process's RSS and the number of live graph nodes stay
    flat. The cycle collector is off during the loop, so every graph must be freed by reference
    counting alone (no reference cycles in the engine)."""
    tc.manual_seed(0)
    model = small_cnn()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    X, Y = tiny_data()
    rss, nodes = {}, {}
    gc.collect()
    baseline = live_graph_nodes()       # graphs other tests may keep alive
    gc.disable()
    try:
        for step in range(500):
            b = (step * 8) % len(X)
            x, y = tc.tensor(X[b:b + 8]), tc.tensor(Y[b:b + 8])
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            if step % 10 == 9 and (200 <= step < 300 or step >= 400):
                rss[step] = rss_bytes()
                nodes[step] = live_graph_nodes()
    finally:
        gc.enable()
    assert np.isfinite(loss.item())
    early = [v for s, v in rss.items() if 200 <= s < 300]
    late = [v for s, v in rss.items() if 400 <= s < 500]
    growth = np.mean(late) - np.mean(early)
    assert growth < 1 << 20, f"RSS grew by {growth / 1024:.0f} KiB between steps 200-300 and 400-500"
    early_nodes = {v for s, v in nodes.items() if 200 <= s < 300}
    late_nodes = {v for s, v in nodes.items() if 400 <= s < 500}
    # only the graph of the last step is alive: the same number of nodes every time
    assert early_nodes == late_nodes and len(late_nodes) == 1, (early_nodes, late_nodes)
    assert 0 < late_nodes.pop() - baseline < 40
    del loss
    assert live_graph_nodes() == baseline


def _train(steps, accumulate, model=None, count_nodes=False):
    tc.manual_seed(0)
    model = model or small_cnn()
    opt = optim.SGD(model.parameters(), lr=0.01)
    X, Y = tiny_data(16)
    total, sizes, nodes = 0.0, [], []
    for step in range(steps):
        x, y = tc.tensor(X[:8] if step % 2 else X[8:]), tc.tensor(Y[:8] if step % 2 else Y[8:])
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        total = accumulate(total, loss)
        sizes.append(graph_size(total))
        if count_nodes:
            nodes.append(live_graph_nodes())
    return total, sizes, nodes


def test_total_loss_plus_loss_keeps_every_graph_alive_and_item_does_not(one_thread):
    gc.collect()
    total, sizes, nodes = _train(12, lambda t, loss: t + loss, count_nodes=True)   # total_loss += loss
    assert isinstance(total, tc.Tensor) and total.requires_grad
    assert sizes[-1] > sizes[5] > sizes[0] > 0        # the history grows by one graph per step
    assert nodes[-1] - nodes[5] >= 6 * (sizes[1] - sizes[0]) - 6
    del total
    gc.collect()
    total, sizes, nodes = _train(12, lambda t, loss: t + loss.item(), count_nodes=True)  # += loss.item()
    assert isinstance(total, float) and sizes == [0] * 12
    assert len(set(nodes[2:])) == 1                   # one step's graph at a time
    total, sizes, _ = _train(6, lambda t, loss: loss.detach() + t)       # detach() also cuts it
    assert sizes == [0] * 6


def test_warn_on_graph_leaks_detects_the_total_loss_leak(one_thread):
    original = Optimizer.step
    with pytest.warns(GraphLeakWarning, match=r"loss\.item\(\)") as record:
        with warn_on_graph_leaks() as watcher:
            _train(8, lambda t, loss: t + loss)
    assert Optimizer.step is original                 # the observer is removed on exit
    assert watcher.warned and watcher.steps == 8
    assert watcher.old_nodes[-1] > watcher.old_nodes[-2] > watcher.old_nodes[2]
    leaks = [w for w in record if issubclass(w.category, GraphLeakWarning)]
    assert len(leaks) == 1                            # warns once
    # stacklevel points at the user's optimizer.step() call, not into the library
    assert leaks[0].filename == __file__


def test_warn_on_graph_leaks_is_quiet_for_correct_loops(one_thread):
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphLeakWarning)
        with warn_on_graph_leaks() as watcher:
            _train(8, lambda t, loss: t + loss.item())
        assert not watcher.warned and len(set(watcher.old_nodes)) <= 2   # 0, then graphs kept elsewhere
        # one graph kept on purpose (e.g. for a plot) survives, but does not grow: no warning
        kept = []
        with warn_on_graph_leaks() as watcher:
            _train(8, lambda t, loss: (kept.append(loss) if not kept else None) or t + loss.item())
        assert not watcher.warned and watcher.old_nodes[-1] == watcher.old_nodes[-2] > watcher.old_nodes[0]


def test_warn_on_graph_leaks_nests_restores_and_checks_arguments(one_thread):
    original = Optimizer.step
    with pytest.raises(ZeroDivisionError):
        with warn_on_graph_leaks() as outer:
            with warn_on_graph_leaks(patience=3) as inner:
                _train(2, lambda t, loss: t + loss.item())
                1 / 0
    assert outer.steps == inner.steps == 2         # both blocks saw the steps
    assert Optimizer.step is original
    _train(1, lambda t, loss: t + loss.item())
    assert outer.steps == 2                         # and stop watching once left
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="patience"):
            warn_on_graph_leaks(patience=bad)


def test_debug_counters():
    gc.collect()
    start = live_graph_nodes()
    x = tc.randn(3, requires_grad=True)
    y = ((x * 2).exp() + x).sum()
    assert graph_size(y) == 4 and graph_size(x) == 0 and graph_size(y.detach()) == 0
    assert live_graph_nodes() - start == 4
    y.backward()                    # backward frees saved tensors, not the nodes y still holds
    assert live_graph_nodes() - start == 4
    del y
    assert live_graph_nodes() == start          # refcounting alone freed them
    assert 1 << 20 < rss_bytes() < 1 << 40


# ============================================================================ anomaly detection

def test_detect_anomaly_names_first_op_shapes_and_line():
    x = tc.tensor(np.array([[1.0, -1.0, 2.0]]), requires_grad=True)
    with tc.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            y = x.log()   # line of the op that creates the NaN: the first op, not a later one
            y = y * 2.0 + 1.0
        line = sys._getframe().f_lineno - 2
    msg = str(info.value)
    assert "Log forward" in msg and "NaN or inf" in msg
    assert "(1, 3)" in msg                                       # output / input shapes
    assert f"{os.path.basename(__file__)}\", line {line}" in msg and "x.log()" in msg


def test_detect_anomaly_catches_inf_in_forward_of_library_ops():
    x = tc.tensor(np.ones((2, 1, 4, 4)), dtype="float64")
    w = tc.tensor(np.full((3, 1, 3, 3), 1e308))
    with tc.autograd.detect_anomaly():
        with pytest.raises(RuntimeError) as info:
            F.conv2d(x, w)   # 9 * 1e308 overflows to inf inside the kernel
    msg = str(info.value)
    assert "ConvNd forward" in msg and "(2, 3, 2, 2)" in msg and "(3, 1, 3, 3)" in msg
    assert "F.conv2d(x, w)" in msg                              # the user's line, not the library's


def test_detect_anomaly_backward_reports_where_the_op_was_created():
    x = tc.tensor(np.array([0.0, 1.0]), dtype="float64", requires_grad=True)
    with tc.autograd.detect_anomaly():
        y = x.sqrt()                       # forward is finite; d sqrt(x)/dx at 0 is inf
        created = sys._getframe().f_lineno - 1
        loss = (y * 3.0).sum()
        with pytest.raises(RuntimeError) as info:
            loss.backward()
    msg = str(info.value)
    assert "Sqrt backward" in msg and "NaN or inf" in msg
    assert f"line {created}" in msg and "x.sqrt()" in msg


def test_detect_anomaly_inside_a_module_points_to_the_users_call():
    layer = nn.Linear(3, 2)
    with tc.no_grad():
        layer.weight.fill_(np.inf)
    with tc.autograd.detect_anomaly():
        with pytest.raises(RuntimeError, match=r"forward produced NaN or inf.*layer\(tc\.ones\(4, 3\)\)"):
            layer(tc.ones(4, 3))


def test_detect_anomaly_finds_user_code_in_a_folder_named_tinygrad_cnn(tmp_path):
    folder = tmp_path / "tinygrad_cnn" / "demos"       # e.g. `git clone .../tinygrad_cnn`, then a demo
    folder.mkdir(parents=True)
    script = folder / "train.py"
    script.write_text(textwrap.dedent("""
        import tinygrad_cnn as tc
        x = tc.tensor([-1.0])
        with tc.autograd.detect_anomaly():
            try:
                x.log()
            except RuntimeError as e:
                print(e)
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "Log forward" in out.stdout, out.stderr[-2000:]
    assert "train.py" in out.stdout and "x.log()" in out.stdout, out.stdout


def test_detect_anomaly_is_off_outside_the_block_and_restored_after_errors():
    x = tc.tensor([-1.0])
    with pytest.raises(RuntimeError):
        with tc.autograd.detect_anomaly():
            x.log()
    assert np.isnan(x.log().item())                  # no check once the block is left
    with tc.autograd.detect_anomaly(check_nan=False):
        assert np.isnan(x.log().item())
    with tc.autograd.detect_anomaly():
        y = tc.tensor([1.0, 2.0], requires_grad=True)
        ((y * y).exp().sum()).backward()          # finite everywhere: no false alarm
    assert np.all(np.isfinite(y.grad.numpy()))
    tc.autograd.set_detect_anomaly(True)
    try:
        with pytest.raises(RuntimeError, match="Log forward"):
            x.log()
    finally:
        tc.autograd.set_detect_anomaly(False)
    assert np.isnan(x.log().item())


# ============================================================================ numerical robustness

def _both(array, requires_grad=True):
    return (tc.tensor(array, requires_grad=requires_grad),
            torch.tensor(array, requires_grad=requires_grad))


def _extreme_logits():
    rng = np.random.default_rng(1)
    x = rng.choice([-1e4, 1e4, 0.0, 3.0, -7.5], size=(6, 5)).astype(np.float32)
    x[0] = 1e4                  # a row of equal huge logits
    x[1] = -1e4
    x[2] = [1e4, -1e4, 1e4, -1e4, 0.0]
    return x


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp", "cross_entropy",
                                  "cross_entropy_smooth", "bce_with_logits"])
def test_extreme_logits_are_finite_and_match_torch(name):
    logits = _extreme_logits()
    target = np.array([0, 1, 2, 3, 4, 0])
    probs = (np.random.default_rng(2).random(logits.shape) > 0.5).astype(np.float32)
    ours, theirs = _both(logits)
    g = np.random.default_rng(3).standard_normal(logits.shape[:1]).astype(np.float32)
    calls = {
        "softmax": (lambda x: F.softmax(x, dim=1), lambda x: torch.softmax(x, dim=1)),
        "log_softmax": (lambda x: F.log_softmax(x, dim=1), lambda x: torch.log_softmax(x, dim=1)),
        "logsumexp": (lambda x: F.logsumexp(x, 1), lambda x: torch.logsumexp(x, 1)),
        "cross_entropy": (lambda x: F.cross_entropy(x, tc.tensor(target), reduction="none"),
                          lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(target), reduction="none")),
        "cross_entropy_smooth": (
            lambda x: F.cross_entropy(x, tc.tensor(target), reduction="none", label_smoothing=0.1),
            lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(target), reduction="none",
                                                        label_smoothing=0.1)),
        "bce_with_logits": (
            lambda x: F.binary_cross_entropy_with_logits(x, tc.tensor(probs), reduction="none").sum(1),
            lambda x: torch.nn.functional.binary_cross_entropy_with_logits(
                x, torch.tensor(probs), reduction="none").sum(1)),
    }
    ours_fn, torch_fn = calls[name]
    a, b = ours_fn(ours), torch_fn(theirs)
    assert a.dtype == np.float32
    assert np.all(np.isfinite(a.detach().numpy())), a
    np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-6)
    upstream = g if a.ndim == 1 else np.random.default_rng(4).standard_normal(a.shape).astype(np.float32)
    (a * tc.tensor(upstream)).sum().backward()
    (b * torch.tensor(upstream)).sum().backward()
    assert np.all(np.isfinite(ours.grad.numpy()))
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_mean_reduced_losses_at_extreme_logits_are_finite():
    logits = _extreme_logits()
    target = np.array([4, 3, 1, 0, 2, 1])
    x = tc.tensor(logits, requires_grad=True)
    loss = F.cross_entropy(x, tc.tensor(target)) + F.binary_cross_entropy_with_logits(
        x, tc.tensor((logits > 0).astype(np.float32)))
    xt = torch.tensor(logits, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(target)) + \
        torch.nn.functional.binary_cross_entropy_with_logits(xt, torch.tensor((logits > 0).astype(np.float32)))
    loss.backward()
    ref.backward()
    assert np.isfinite(loss.item()) and np.isclose(loss.item(), ref.item(), rtol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("module, shape", [("BatchNorm1d", (1, 3)), ("BatchNorm1d", (1, 3, 1)),
                                           ("BatchNorm2d", (1, 3, 1, 1)), ("BatchNorm3d", (1, 3, 1, 1, 1))])
def test_batchnorm_batch_of_one_in_training_raises_torchs_error(module, shape):
    x = np.ones(shape, dtype=np.float32)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training") as theirs:
        getattr(torch.nn, module)(3)(torch.tensor(x))
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training") as ours:
        getattr(nn, module)(3)(tc.tensor(x))
    assert str(theirs.value).split(",")[0] == str(ours.value).split(",")[0]
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        F.batch_norm(tc.tensor(x), None, None, training=True)
    # a batch of one is fine in eval mode, and in training when a channel has several values
    layer = getattr(nn, module)(3)
    layer.eval()
    assert layer(tc.tensor(x)).shape == shape
    if len(shape) > 2:
        bigger = (1, 3) + (2,) * (len(shape) - 2)
        layer.train()
        out = layer(tc.tensor(np.arange(np.prod(bigger), dtype=np.float32).reshape(bigger)))
        assert np.all(np.isfinite(out.detach().numpy()))


def _resnet20_steps(steps, batch, lr=0.1, seed=0, log=None):
    from tinygrad_cnn.models import resnet20
    tc.manual_seed(seed)
    model = resnet20()
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(steps):
        x = tc.tensor(rng.standard_normal((batch, 3, 32, 32)).astype(np.float32))
        y = tc.tensor(rng.integers(0, 10, batch))
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and p.grad.dtype == np.float32, name
            assert np.all(np.isfinite(p.grad.data)), f"step {step}: non-finite gradient in {name}"
        opt.step()
        assert np.isfinite(loss.item()), f"step {step}: loss {loss.item()}"
        losses.append(loss.item())
        if log is not None and step % 20 == 0:
            log(f"step {step}: loss {loss.item():.4f}")
    for name, p in model.named_parameters():
        assert np.all(np.isfinite(p.data)), name
    return losses


def test_resnet20_float32_gradients_stay_finite(one_thread):
    losses = _resnet20_steps(steps=2, batch=2)
    assert len(losses) == 2


@pytest.mark.slow
def test_resnet20_float32_gradients_stay_finite_for_an_epoch():
    """One epoch of CIFAR-sized random data (50,000 images, batch 128 -> 391 steps)."""
    steps = int(os.environ.get("RELIABILITY_RESNET_STEPS", "391"))
    losses = _resnet20_steps(steps=steps, batch=128, log=print)
    print(f"ResNet-20, {steps} steps: first loss {losses[0]:.4f}, last {losses[-1]:.4f}, "
          f"max {max(losses):.4f}")


# ============================================================================ determinism

def _deterministic_run(seed, steps=6):
    from tinygrad_cnn.data import DataLoader, TensorDataset
    from tinygrad_cnn.data import transforms as T
    tc.manual_seed(seed)            # init, dropout, shuffling and augmentation in one call
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 4 * 4, 3))
    opt = optim.Adam(model.parameters(), lr=1e-2)
    X, Y = tiny_data(32, seed=5)
    loader = DataLoader(TensorDataset(X, Y), batch_size=8, shuffle=True)
    flip, crop = T.RandomHorizontalFlip(), T.RandomCrop(8, padding=1)
    losses = []
    while len(losses) < steps:
        for xb, yb in loader:
            xb = crop(flip(xb))
            opt.zero_grad()
            loss = F.cross_entropy(model(tc.tensor(xb)), tc.tensor(yb))
            loss.backward()
            opt.step()
            losses.append(loss.item())
    return np.array(losses), [p.data.copy() for p in model.parameters()]


def test_same_seed_gives_bitwise_identical_runs():
    losses_a, weights_a = _deterministic_run(seed=7)
    losses_b, weights_b = _deterministic_run(seed=7)
    assert losses_a.tobytes() == losses_b.tobytes()
    for a, b in zip(weights_a, weights_b):
        assert a.tobytes() == b.tobytes()
    losses_c, _ = _deterministic_run(seed=8)      # the seed matters (the test can fail)
    assert losses_c.tobytes() != losses_a.tobytes()


_THREADS_SCRIPT = textwrap.dedent("""
    import hashlib, sys
    import numpy as np
    import tinygrad_cnn as tc
    from tinygrad_cnn import nn, optim
    F = nn.functional
    tc.manual_seed(0)
    # one layer of each kernel family: im2col+GEMM conv, depthwise conv, 1x1 conv, transposed
    # conv, max/avg/adaptive pooling, bilinear resize, batch norm, linear
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.Conv2d(16, 24, 1), nn.ReLU(),
        nn.MaxPool2d(2), nn.ConvTranspose2d(24, 8, 2, stride=2), nn.AvgPool2d(3, stride=2, padding=1),
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
        nn.Linear(72, 10))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    h = hashlib.sha256()
    for step in range(3):
        x = tc.tensor(rng.standard_normal((8, 3, 16, 16)).astype(np.float32))
        y = tc.tensor(rng.integers(0, 10, 8))
        opt.zero_grad()
        out, idx = F.max_pool2d(model[:6](x), 2, return_indices=True)
        z = F.max_unpool2d(out, idx, 2)
        loss = F.cross_entropy(model[6:](z), y)
        loss.backward()
        opt.step()
        h.update(np.float32(loss.item()).tobytes())
    for p in model.parameters():
        h.update(p.data.tobytes())
    print(h.hexdigest())
""")


_KERNELS_SCRIPT = textwrap.dedent("""
    import json, hashlib
    import numpy as np
    import tinygrad_cnn as tc
    F = tc.nn.functional
    rng = np.random.default_rng(0)
    out = {}

    def record(name, fn, *shapes):
        xs = [tc.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True) for s in shapes]
        y = fn(*xs)
        (y * tc.tensor(rng.standard_normal(y.shape).astype(np.float32))).sum().backward()
        out[name] = hashlib.sha256(y.data.tobytes()).hexdigest()[:16]
        for k, x in enumerate(xs):
            out[f"{name} grad {k}"] = hashlib.sha256(x.grad.data.tobytes()).hexdigest()[:16]
            out[f"{name} grad {k} values"] = x.grad.data.ravel()[:64].tolist()

    record("conv 3x3", lambda x, w: F.conv2d(x, w, padding=1), (16, 8, 16, 16), (12, 8, 3, 3))
    record("conv 3x3 stride 2", lambda x, w: F.conv2d(x, w, stride=2, padding=1), (16, 8, 16, 16), (12, 8, 3, 3))
    record("conv 1x1", lambda x, w: F.conv2d(x, w), (16, 8, 8, 8), (12, 8, 1, 1))
    record("depthwise conv", lambda x, w: F.conv2d(x, w, padding=1, groups=8), (16, 8, 12, 12), (8, 1, 3, 3))
    record("conv_transpose", lambda x, w: F.conv_transpose2d(x, w, stride=2), (16, 8, 8, 8), (8, 4, 2, 2))
    record("max_pool", lambda x: F.max_pool2d(x, 3, 2, 1), (16, 8, 16, 16))
    record("avg_pool", lambda x: F.avg_pool2d(x, 3, 2, 1), (16, 8, 16, 16))
    record("adaptive_avg_pool", lambda x: F.adaptive_avg_pool2d(x, 5), (16, 8, 16, 16))
    record("bilinear", lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), (16, 8, 8, 8))
    record("batch_norm", lambda x: F.batch_norm(x, None, None, training=True), (16, 8, 8, 8))
    print(json.dumps(out))
""")

# Convolutions that go through a GEMM: the batch is cut into chunks, a multiple of the Numba thread
# count (kernels/conv.py, _batch_chunk), each chunk runs its own BLAS GEMM, and the weight
# gradient adds the chunks' partial sums. Another thread count means other GEMM widths (OpenBLAS
# rounds the edge tiles differently) and another grouping of that sum: the last bits change.
def _thread_dependent(name: str) -> bool:
    return name.startswith(("conv 3x3", "conv_transpose")) or name == "conv 1x1 grad 1"


def _run_script(script, configs):
    """Run ``script`` once per (numba_threads, blas_threads), all at once; their last lines."""
    procs = []
    for numba_threads, blas_threads in configs:
        env = dict(os.environ, NUMBA_NUM_THREADS=str(numba_threads), OPENBLAS_NUM_THREADS=str(blas_threads))
        procs.append(subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    lines = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
        lines.append(out.strip().splitlines()[-1])
    return lines


def test_training_is_bitwise_identical_when_repeated_with_the_same_thread_counts():
    """The same seed and thread counts give the same bits, also in a new process (other memory
    addresses, other thread timing): with 1 and with 2 Numba threads."""
    one, one_again, two, two_again = _run_script(_THREADS_SCRIPT, [(1, 1), (1, 1), (2, 1), (2, 1)])
    assert one == one_again and two == two_again


def test_which_kernels_are_bitwise_identical_across_numba_thread_counts():
    """docs/reliability.md's table: the Numba kernels without a GEMM (depthwise conv, pooling,
    resampling) and NumPy's reductions give the same bits with 1 and 2 Numba threads (each output
    element is computed by one thread, in a fixed order); the GEMM convolutions agree to rounding."""
    import json
    one, two = (json.loads(line) for line in _run_script(_KERNELS_SCRIPT, [(1, 1), (2, 1)]))
    hashes = [k for k in one if not k.endswith("values")]
    differ = sorted(k for k in hashes if one[k] != two[k] and not _thread_dependent(k))
    assert not differ, f"not bitwise identical across thread counts: {differ}"
    assert any(not _thread_dependent(k) for k in hashes)
    for k in hashes:
        if _thread_dependent(k) and "grad" in k:
            np.testing.assert_allclose(one[k + " values"], two[k + " values"], rtol=1e-4, atol=1e-5, err_msg=k)
