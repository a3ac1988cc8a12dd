"""The model zoo against PyTorch references built from torch.nn layers (tests/test_models_torchref.py).

What is checked: parameter counts equal torchvision's; state-dict keys (in order) and shapes equal
the reference's; with the reference's weights copied in, forward outputs agree in float32 on
(2, 3, 224, 224) for AlexNet, VGG-11, ResNet-18, GoogLeNet (eval) and MobileNet-V2 (also ZFNet)
and (2, 3, 32, 32) for ResNet-20; parameter gradients through ResNet-18 (train mode, input
(2, 3, 64, 64) to keep the test fast) and ResNet-20 agree; weight files load (or fail) clearly.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tinygrad_cnn import Tensor, models, nn, no_grad  # noqa: E402
from tinygrad_cnn.nn import init as tinit  # noqa: E402
from test_models_torchref import (TORCH_BUILDERS, TORCHVISION_COUNTS, TCifarResNet, TGoogLeNet,  # noqa: E402
                                  meta_count, t_zfnet)

tnn = torch.nn

# Every init function a layer or model might call. Counting parameters and comparing keys only
# needs shapes, and weights copied from a reference overwrite any init, so the tests that build
# big models skip the random draws (the arrays stay untouched np.empty pages: no memory, no time).
_INIT_FUNCTIONS = ["uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
                   "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]


@pytest.fixture
def no_init(monkeypatch):
    for name in _INIT_FUNCTIONS:
        if hasattr(tinit, name):
            monkeypatch.setattr(tinit, name, lambda tensor, *args, **kwargs: tensor)


def build(name, **kwargs):
    if name == "googlenet":
        kwargs.setdefault("init_weights", False)
    return models.get_model(name, **kwargs)


def torch_state(ref):
    return {k: v.detach().numpy() for k, v in ref.state_dict().items()}


def randomize_batchnorm(ref, seed=0):
    """Non-trivial BN statistics and affine parameters, so eval mode tests more than x * 1 + 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, tnn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
    return ref


def copy_from(ref, ours):
    report = models.load_weights(ours, torch_state(ref))   # strict: every key and shape must match
    assert report.ok and not report.notes
    return ours


def assert_close(ours, ref, rtol=1e-4, atol_rel=1e-5, what="output"):
    """Element-wise ``|a - b| <= atol_rel * max|b| + rtol * |b|`` (float32 through deep nets)."""
    a = ours.detach().numpy() if isinstance(ours, Tensor) else np.asarray(ours)
    b = ref.detach().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert a.shape == b.shape, f"{what}: shape {a.shape} != {b.shape}"
    scale = float(np.abs(b).max()) if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol_rel * scale + 1e-7, err_msg=what)


# ------------------------------------------------------------------ counts, keys, shapes
KNOWN_COUNTS = dict(TORCHVISION_COUNTS, googlenet=13_004_888, resnet20=269_722, lenet5=61_706,
                    zfnet=62_357_608)


@pytest.mark.parametrize("name", models.list_models())
def test_parameter_count_keys_and_shapes_match_reference(name, no_init):
    ours = build(name)
    with torch.device("meta"):
        ref = TORCH_BUILDERS[name]()
    n = models.count_parameters(ours)
    assert n == meta_count(ref)
    if name in KNOWN_COUNTS:
        assert n == KNOWN_COUNTS[name], f"{name}: {n:,} parameters, torchvision has {KNOWN_COUNTS[name]:,}"
    ours_sd, ref_sd = ours.state_dict(), ref.state_dict()
    assert list(ours_sd) == list(ref_sd)               # same names, same order
    for key, value in ref_sd.items():
        assert tuple(ours_sd[key].shape) == tuple(value.shape), key
    assert ours_sd[next(iter(ours_sd))].dtype == np.float32


def test_googlenet_without_aux_and_num_classes(no_init):
    ours = models.googlenet(aux_logits=False, init_weights=False)
    assert models.count_parameters(ours) == 6_624_904
    assert not any(k.startswith("aux") for k in ours.state_dict())
    with torch.device("meta"):
        ref = TGoogLeNet(num_classes=17, aux_logits=True)
    ours = models.googlenet(num_classes=17, init_weights=False)
    assert models.count_parameters(ours) == meta_count(ref)
    assert ours.aux1.fc2.weight.shape == (17, 1024) and ours.fc.weight.shape == (17, 1024)


@pytest.mark.parametrize("name", ["alexnet", "zfnet", "vgg11_bn", "resnet50", "mobilenet_v2", "resnet20",
                                  "lenet5"])
def test_num_classes_sets_the_last_layer(name, no_init):
    ours = build(name, num_classes=7)
    last = [m for m in ours.modules() if isinstance(m, nn.Linear)][-1]
    assert last.weight.shape[0] == 7


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_num_classes_is_rejected(bad):
    with pytest.raises(ValueError, match="num_classes"):
        models.resnet20(num_classes=bad)


# ------------------------------------------------------------------ forward vs torch
def compare_forward(name, shape, ours_kwargs=None, ref_kwargs=None, seed=0, rtol=1e-4, atol_rel=1e-5):
    torch.manual_seed(seed)
    ref = randomize_batchnorm(TORCH_BUILDERS[name](**(ref_kwargs or {}))).eval()
    ours = copy_from(ref, build(name, **(ours_kwargs or {}))).eval()
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x))
    with no_grad():
        out = ours(Tensor(x))
    assert_close(out, expected, rtol=rtol, atol_rel=atol_rel, what=f"{name} forward")
    return ours, out


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "resnet18", "googlenet", "mobilenet_v2"])
def test_imagenet_forward_matches_torch(name, no_init):
    compare_forward(name, (2, 3, 224, 224))


def test_resnet20_forward_matches_torch(no_init):
    compare_forward("resnet20", (2, 3, 32, 32))
    compare_forward("resnet20", (2, 3, 32, 32), {"shortcut": "B"}, {"shortcut": "B"}, seed=1)


@pytest.mark.parametrize("name, shape", [("resnet20", (2, 3, 32, 32)), ("mobilenet_v2", (1, 3, 64, 64)),
                                         ("lenet5", (2, 1, 28, 28))])
def test_float64_forward_matches_torch_to_rounding(name, shape):
    """In float64 the only differences left are summation order: agreement to ~1e-12 shows the
    architectures are the same function, not merely close."""
    torch.manual_seed(15)
    ref = randomize_batchnorm(TORCH_BUILDERS[name](), seed=15).double().eval()
    ours = build(name).double()
    report = models.load_weights(ours, torch_state(ref))
    assert report.ok and ours.state_dict()[report.loaded[0]].dtype == np.float64
    x = np.random.default_rng(15).standard_normal(shape)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x))
    with no_grad():
        out = ours.eval()(Tensor(x))
    assert out.dtype == np.float64
    assert_close(out, expected, rtol=1e-10, atol_rel=1e-12, what=f"{name} float64")


def test_lenet5_forward_matches_torch_and_rejects_wrong_size():
    ours, out = compare_forward("lenet5", (2, 1, 28, 28))
    assert out.shape == (2, 10)
    with pytest.raises(ValueError, match="5x5"):
        ours(Tensor(np.zeros((1, 1, 32, 32), np.float32)))
    assert models.lenet5(padding=0)(Tensor(np.zeros((1, 1, 32, 32), np.float32))).shape == (1, 10)


def test_zfnet_forward_matches_torch_with_paper_sizes(no_init):
    """Fig. 2 of Zeiler & Fergus: 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6 on a 224 input."""
    torch.manual_seed(3)
    ref = t_zfnet(lrn=True).eval()
    ours = copy_from(ref, models.zfnet(local_response_norm=True)).eval()
    sizes = []
    for m in ours.features:
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
            m.register_forward_hook(lambda mod, inp, out: sizes.append(out.shape[-1]))
    x = np.random.default_rng(3).standard_normal((2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x))
    assert_close(ours(Tensor(x)), expected, what="zfnet forward")
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
    assert models.first_conv(ours).weight.shape == (96, 3, 7, 7)


def test_resnet50_bottlenecks_and_odd_input_size(no_init):
    compare_forward("resnet50", (1, 3, 64, 64), seed=4)
    # any size the pooling allows: adaptive average pooling at the end, as torchvision
    compare_forward("mobilenet_v2", (1, 3, 72, 90), seed=5)


def test_googlenet_training_mode_returns_aux_outputs_like_torchvision(no_init):
    """Training mode with aux_logits=True: (logits, aux1 head, aux2 head) in torchvision's order
    (the namedtuple's second field is called aux_logits2 but holds aux1's output, as torchvision's);
    BatchNorm uses batch statistics; dropout is switched off so both sides are deterministic."""
    torch.manual_seed(6)
    kw = dict(transform_input=True, dropout=0.0, dropout_aux=0.0)
    ref = TGoogLeNet(**kw).train()
    ours = copy_from(ref, models.googlenet(init_weights=False, **kw)).train()
    x = np.random.default_rng(6).standard_normal((2, 3, 96, 96)).astype(np.float32)
    expected = ref(torch.from_numpy(x))
    out = ours(Tensor(x))
    assert isinstance(out, models.GoogLeNetOutputs) and out._fields == ("logits", "aux_logits2", "aux_logits1")
    for got, want, what in zip(out, expected, out._fields):   # batch statistics: looser float32 bound
        assert_close(got, want, rtol=1e-3, atol_rel=1e-4, what=what)
    assert_close(ours.inception4a.branch1.bn.running_mean.detach().numpy(),
                 ref.inception4a.branch1.bn.running_mean, rtol=1e-3, atol_rel=1e-4, what="running_mean")
    ours.eval()
    assert isinstance(ours(Tensor(x)), Tensor)   # eval: logits only


# ------------------------------------------------------------------ backward vs torch
def compare_backward(ref, ours, shape, seed):
    ref.train()
    ours.train()
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    xt = torch.from_numpy(x).requires_grad_(True)
    out_ref = ref(xt)
    r = rng.standard_normal(tuple(out_ref.shape)).astype(np.float32)   # non-uniform upstream gradient
    (out_ref * torch.from_numpy(r)).sum().backward()
    xo = Tensor(x, requires_grad=True)
    out = ours(xo)
    assert_close(out, out_ref, rtol=1e-3, atol_rel=1e-4, what="train-mode output")
    (out * Tensor(r)).sum().backward()
    ref_params = dict(ref.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(ref_params)
    for n, p in ours.named_parameters():
        assert p.grad is not None, f"no gradient for {n}"
        assert_close(p.grad, ref_params[n].grad, rtol=1e-3, atol_rel=1e-4, what=f"grad of {n}")
    assert_close(xo.grad, xt.grad, rtol=1e-3, atol_rel=1e-4, what="grad of input")


def test_resnet18_backward_matches_torch(no_init):
    torch.manual_seed(7)
    ref = randomize_batchnorm(TORCH_BUILDERS["resnet18"](), seed=7)
    ours = copy_from(ref, models.resnet18())
    compare_backward(ref, ours, (2, 3, 64, 64), seed=7)


def test_resnet20_backward_matches_torch():
    torch.manual_seed(8)
    ref = randomize_batchnorm(TCifarResNet(3), seed=8)
    ours = copy_from(ref, models.resnet20())
    compare_backward(ref, ours, (4, 3, 32, 32), seed=8)


# ------------------------------------------------------------------ building blocks
def test_local_response_norm_matches_torch_and_gradchecks():
    from tinygrad_cnn.testing import gradcheck
    rng = np.random.default_rng(9)
    for size, shape in [(5, (2, 7, 3, 4)), (4, (1, 3, 2, 2)), (1, (2, 2, 3))]:
        x = rng.standard_normal(shape)
        lrn = models.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=1.5)
        ref = tnn.LocalResponseNorm(size, alpha=0.5, beta=0.75, k=1.5)
        xt = torch.from_numpy(x).requires_grad_(True)
        r = rng.standard_normal(shape)
        (ref(xt) * torch.from_numpy(r)).sum().backward()
        xo = Tensor(x, requires_grad=True)
        out = lrn(xo)
        np.testing.assert_allclose(out.detach().numpy(), ref(xt).detach().numpy(), rtol=1e-10, atol=1e-12)
        (out * Tensor(r)).sum().backward()
        np.testing.assert_allclose(xo.grad.detach().numpy(), xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    assert gradcheck(lambda t: models.LocalResponseNorm(3, alpha=0.5, k=1.0)(t),
                     [Tensor(rng.standard_normal((1, 4, 2, 2)), requires_grad=True)])
    with pytest.raises(ValueError, match="size"):
        models.LocalResponseNorm(0)


def test_zero_pad_shortcut_odd_sizes():
    x = np.random.default_rng(10).standard_normal((2, 16, 7, 7)).astype(np.float32)
    out = models.ZeroPadShortcut(16, 32, 2)(Tensor(x)).numpy()
    expected = np.zeros((2, 32, 4, 4), np.float32)
    expected[:, 8:24] = x[:, :, ::2, ::2]
    np.testing.assert_array_equal(out, expected)


def test_default_inits_follow_torchvision():
    tinit_rng = np.random.default_rng(11)  # noqa: F841  (the library's own RNG is used)
    m = models.mobilenet_v2()
    w = m.classifier[1].weight.detach().numpy()
    assert abs(w.std() - 0.01) < 1e-3 and np.all(m.classifier[1].bias.detach().numpy() == 0)
    conv = m.features[0][0].weight.detach().numpy()                # kaiming normal, fan_out = 32 * 3 * 3
    assert abs(conv.std() - np.sqrt(2 / (32 * 9))) < 0.02
    r = models.resnet18(zero_init_residual=True)
    assert np.all(r.layer1[0].bn2.weight.detach().numpy() == 0) and np.all(r.bn1.weight.detach().numpy() == 1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = models.googlenet(aux_logits=False)
    assert any(issubclass(c.category, FutureWarning) for c in caught)
    gw = g.conv1.conv.weight.detach().numpy()
    assert abs(gw.std() - 0.01) < 1e-3 * 2 and np.abs(gw).max() <= 2.0


def test_registry_and_first_conv(no_init):
    assert "resnet20" in models.list_models() and "vgg19_bn" in models.list_models()
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        models.get_model("resnet9")
    assert models.first_conv(models.alexnet()).weight.shape == (64, 3, 11, 11)
    assert models.first_conv(models.googlenet(init_weights=False)).weight.shape == (64, 3, 7, 7)
    assert models.first_conv(nn.Sequential(nn.Linear(2, 2))) is None


# ------------------------------------------------------------------ weight files
@pytest.fixture
def resnet20_ref():
    torch.manual_seed(12)
    return randomize_batchnorm(TCifarResNet(3), seed=12).eval()


def _expected(ref, x):
    with torch.no_grad():
        return ref(torch.from_numpy(x))


def test_load_safetensors_and_npz_files(tmp_path, resnet20_ref):
    import safetensors.torch
    x = np.random.default_rng(13).standard_normal((2, 3, 32, 32)).astype(np.float32)
    # the two lines a user with PyTorch runs once (docs/models.md)
    safetensors.torch.save_file(resnet20_ref.state_dict(), str(tmp_path / "r20.safetensors"))
    np.savez(tmp_path / "r20.npz", **{k: v.numpy() for k, v in resnet20_ref.state_dict().items()})
    for fname in ["r20.safetensors", "r20.npz"]:
        ours = models.resnet20()
        report = models.load_weights(ours, tmp_path / fname)
        assert report.ok and len(report.loaded) == len(resnet20_ref.state_dict())
        assert_close(ours.eval()(Tensor(x)), _expected(resnet20_ref, x), what=fname)
        assert int(ours.bn1.num_batches_tracked.detach().numpy()) == int(resnet20_ref.bn1.num_batches_tracked)


def test_strict_load_lists_every_problem_and_copies_nothing(resnet20_ref):
    sd = torch_state(resnet20_ref)
    del sd["layer2.0.conv1.weight"]
    sd["layer9.weight"] = np.zeros(3, np.float32)
    sd["bn1.bias"] = np.zeros(17, np.float32)
    ours = models.resnet20()
    before = ours.conv1.weight.detach().numpy().copy()
    with pytest.raises(ValueError) as info:
        models.load_weights(ours, sd)
    msg = str(info.value)
    assert "missing keys" in msg and "layer2.0.conv1.weight" in msg
    assert "unexpected keys" in msg and "layer9.weight" in msg
    assert "bn1.bias: (17,) -> (16,)" in msg and "nothing copied" in msg
    np.testing.assert_array_equal(ours.conv1.weight.detach().numpy(), before)


def test_new_num_classes_hint_and_non_strict_fine_tuning_load(resnet20_ref):
    sd = torch_state(resnet20_ref)
    ours = models.resnet20(num_classes=4)
    fc_before = ours.fc.weight.detach().numpy().copy()
    with pytest.raises(ValueError, match="num_classes=10"):
        models.load_weights(ours, sd)
    report = models.load_weights(ours, sd, strict=False)
    assert report.copied and not report.ok
    assert [k for k, _, _ in report.mismatched_shapes] == ["fc.weight", "fc.bias"]
    np.testing.assert_array_equal(ours.conv1.weight.detach().numpy(), sd["conv1.weight"])
    np.testing.assert_array_equal(ours.fc.weight.detach().numpy(), fc_before)
    assert "fc.weight: (10, 64) -> (4, 64)" in str(report)


def test_prefix_old_counters_and_dtype_are_handled(resnet20_ref):
    sd = {"module." + k: v.astype(np.float64) if v.dtype == np.float32 else v
          for k, v in torch_state(resnet20_ref).items() if not k.endswith("num_batches_tracked")}
    ours = models.resnet20()
    report = models.load_weights(ours, sd)
    assert report.ok and len(report.notes) == 2
    assert "module." in report.notes[0] and "num_batches_tracked" in report.notes[1]
    assert ours.conv1.weight.dtype == np.float32
    x = np.random.default_rng(14).standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert_close(ours.eval()(Tensor(x)), _expected(resnet20_ref, x), what="after prefix strip")


def test_googlenet_aux_hints(no_init):
    """torchvision's pretrained GoogLeNet file has no aux heads: say which constructor fits."""
    with torch.device("meta"):
        ref = TGoogLeNet(aux_logits=False)
    shapes_only = {k: np.broadcast_to(np.float32(0), tuple(v.shape)) for k, v in ref.state_dict().items()}
    report = models.check_state_dict(models.googlenet(init_weights=False), shapes_only)
    assert not report.ok and all(k.startswith(("aux1.", "aux2.")) for k in report.missing_keys)
    assert any("aux_logits=False, transform_input=True" in h for h in report.hints)
    assert models.check_state_dict(models.googlenet(aux_logits=False, init_weights=False), shapes_only).ok


def test_weight_file_errors(tmp_path):
    model = models.lenet5()
    with pytest.raises(ValueError, match="never unpickles"):
        models.load_weights(model, tmp_path / "resnet18-f37072fd.pth")
    with pytest.raises(ValueError, match=".safetensors or .npz"):
        models.load_weights(model, tmp_path / "weights.h5")
    with pytest.raises(FileNotFoundError):
        models.load_weights(model, tmp_path / "nothing.safetensors")
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):   # object arrays would need pickle: refused
        models.load_weights(model, tmp_path / "obj.npz")
    assert not os.path.exists(tmp_path / "weights.h5")


# ------------------------------------------------------------------ the teaching summary on the zoo
@pytest.mark.parametrize("name, gmacs", [("alexnet", 0.71), ("resnet18", 1.81), ("googlenet", 1.50),
                                         ("mobilenet_v2", 0.30)])
def test_summary_counts_match_torchvision_documentation(name, gmacs, no_init):
    """tinygrad_cnn.teach.summary on a zoo model: the parameter total equals count_parameters and
    the multiply-accumulates at 224x224 round to torchvision's documented "GFLOPS" (which count
    conv and linear multiply-adds)."""
    from tinygrad_cnn.teach import summary
    model = build(name).eval()
    for p in model.parameters():   # defined values (no_init leaves np.empty garbage); cheaper than init
        p.data[...] = 0.01
    s = summary(model, (1, 3, 224, 224))
    assert s.total_params == models.count_parameters(model)
    assert round(s.total_macs / 1e9, 2) == gmacs
