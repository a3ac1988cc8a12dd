"""Every curriculum demo runs end to end on tiny inputs, writes its files, and prints the slide's
numbers (checked here from what main() returns). Pictures are not compared pixel by pixel."""
import importlib.util
import json
import os
import sys

import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMOS = ["topic_02_05_convolution", "topic_07_output_size", "topic_08_21_23_depthwise_separable",
         "topic_09_11_dims_pooling", "topic_12_13_classifier", "topic_14_families", "topic_16_17_unpooling",
         "topic_18_19_transposed_conv", "topic_20_conv_matrix", "backprop_by_hand", "segmentation", "filters"]


def load_demo(name):
    spec = importlib.util.spec_from_file_location(f"demo_{name}", os.path.join(ROOT, "demos", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def files_in(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("name", DEMOS)
def test_every_demo_has_help_and_an_out_option(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_demo(name).main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--out" in text and "usage:" in text


def test_topic_02_05_the_5x5_example_and_shapes(tmp_path):
    r = load_demo("topic_02_05_convolution").main(["--out", str(tmp_path)])
    np.testing.assert_array_equal(r["feature_map"], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    assert r["maps_shape"] == (2, 6, 28, 28)
    assert r["conv_params"] == sum(p.numel() for p in torch.nn.Conv2d(3, 6, 5).parameters()) == 456
    assert r["fc_params"] == 3 * 32 * 32 * 6 * 28 * 28 + 6 * 28 * 28
    assert files_in(tmp_path) == ["topic03_feature_map.png", "topic04_activation_maps.png", "topic05_relu_maps.png"]


def test_topic_07_output_sizes(tmp_path):
    r = load_demo("topic_07_output_size").main(["--out", str(tmp_path)])
    assert [(o, d) for _, o, d in r] == [(5, 0), (7, 0), (3, 0), (2, 1), (7, 0)]
    assert files_in(tmp_path) == ["topic07_coverage.png"]
    cov = load_demo("topic_07_output_size").coverage(7, 3, 3, 0)
    assert cov[:, -1].sum() == 0 and cov[:6, :6].min() == 1       # stride 3 never reads the last column


def test_topic_07_runs_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    load_demo("topic_07_output_size").main(["--out", str(tmp_path)])
    assert "matplotlib is not installed" in capsys.readouterr().out
    assert files_in(tmp_path) == []


def test_topic_08_21_23_depthwise_pointwise_separable(tmp_path):
    r = load_demo("topic_08_21_23_depthwise_separable").main(["--out", str(tmp_path), "--channels", "8",
                                                              "--size", "8"])
    assert r["depthwise_error"] < 1e-6
    cmp = r["comparison"]
    assert cmp.plain_params == sum(p.numel() for p in torch.nn.Conv2d(8, 8, 3, bias=False).parameters())
    assert cmp.separable_params == 8 * 9 + 8 * 8
    assert files_in(tmp_path) == ["topic21_depthwise.png", "topic22_separable.png"]


def test_topic_09_11_dims_and_pooling(tmp_path):
    r = load_demo("topic_09_11_dims_pooling").main(["--out", str(tmp_path)])
    assert r["shapes"] == {"conv1d": (2, 8, 96), "conv2d": (2, 8, 28, 28), "conv3d": (2, 8, 12, 28, 28)}
    np.testing.assert_array_equal(r["max_pool"], [[6, 8], [3, 4]])
    np.testing.assert_array_equal(r["avg_pool"], [[3.25, 5.25], [2, 2]])
    assert files_in(tmp_path) == ["topic09_conv_dims.png", "topic10_pooling.png"]


def test_topic_12_13_lenet_summary_and_softmax(tmp_path):
    r = load_demo("topic_12_13_classifier").main(["--out", str(tmp_path)])
    assert r["params"] == 61706
    scores = torch.tensor([[2.0, 1.0, 0.1, -1.0, 0.5, 3.0, -0.5, 0.0, 1.5, -2.0]], requires_grad=True)
    loss = torch.nn.functional.cross_entropy(scores, torch.tensor([5]))
    loss.backward()
    np.testing.assert_allclose(r["probs"], torch.softmax(scores, 1).detach().numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(r["grad"], scores.grad.numpy()[0], atol=1e-6)
    assert r["loss"] == pytest.approx(loss.item(), rel=1e-5)
    np.testing.assert_array_equal(r["stable"], [1, 0, 0])
    assert r["big_ce"] == pytest.approx(2e4)
    assert files_in(tmp_path) == ["topic13_softmax.png"]


def test_topic_14_blocks_count_like_torch(tmp_path):
    demo = load_demo("topic_14_families")
    r = demo.main(["--out", str(tmp_path), "--channels", "8", "--size", "8"])
    ref = demo.make_blocks(torch.nn, torch.cat, 8)
    for name, block in ref.items():
        assert r[name][0] == sum(p.numel() for p in block.parameters()), name
    with torch.no_grad():
        out = ref["Inception block"].eval()(torch.zeros(1, 8, 8, 8))
    assert r["residual block, stride 2"][2] == (1, 16, 4, 4)
    assert out.shape == (1, 24, 8, 8)
    assert files_in(tmp_path) == ["topic14_blocks.png"]


def test_topic_16_17_unpooling_slide_examples(tmp_path):
    r = load_demo("topic_16_17_unpooling").main(["--out", str(tmp_path)])
    np.testing.assert_array_equal(r["nearest"], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    np.testing.assert_array_equal(r["bed_of_nails"], [[1, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(r["indices"], [[1, 7], [12, 10]])
    np.testing.assert_array_equal(r["unpooled"], [[0, 1, 0, 0], [0, 0, 0, 2], [0, 0, 4, 0], [3, 0, 0, 0]])
    assert files_in(tmp_path) == ["topic17_unpooling.png"]


def test_topic_18_19_transposed_convolution(tmp_path):
    r = load_demo("topic_18_19_transposed_conv").main(["--out", str(tmp_path)])
    x = np.array([[1, 2], [3, 4]], float)
    w = np.array([[1, 1, 1], [1, 2, 1], [1, 1, 1]], float)
    full = np.zeros((5, 5))
    for (i, j), v in np.ndenumerate(x):           # weight the filter, copy 2 pixels apart, sum
        full[2 * i:2 * i + 3, 2 * j:2 * j + 3] += v * w
    np.testing.assert_array_equal(r["full"], full)
    np.testing.assert_array_equal(r["trimmed"], full[1:, 1:])
    np.testing.assert_array_equal(r["full_1d"], [1, 2, 5, 4, 6])
    np.testing.assert_array_equal(r["trimmed_1d"], [2, 5, 4, 6])
    assert r["grad_matches"]
    assert files_in(tmp_path) == ["topic18_transposed_conv.png", "topic19_transposed_conv_1d.png"]


def test_topic_20_conv_matrix(tmp_path):
    r = load_demo("topic_20_conv_matrix").main(["--out", str(tmp_path)])
    assert list(r["labels"][0]) == ["w00", "w01", "w02", "", "w10", "w11", "w12", "", "w20", "w21", "w22",
                                    "", "", "", "", ""]
    for shape, e_conv, e_t in r["results"].values():
        assert shape == (4, 16) and e_conv < 1e-12 and e_t < 1e-12
    assert files_in(tmp_path) == ["topic20_C.png", "topic20_CT.png"]


def test_backprop_by_hand(tmp_path):
    r = load_demo("backprop_by_hand").main(["--out", str(tmp_path)])
    assert r["worst"] < 1e-12
    assert r["hvp"]["err"] < 1e-6
    names = files_in(tmp_path)
    assert {"tiny_graph.dot", "lenet_graph.dot", "lenet_layers.dot"} <= set(names)
    lenet = open(tmp_path / "lenet_graph.dot").read()
    assert "grad = conv_transpose" in lenet and "features.0 (Conv2d)" in lenet


def test_segmentation_synthetic_both_variants(tmp_path):
    r = load_demo("segmentation").main(["--synthetic", "--epochs", "1", "--limit-batches", "1",
                                        "--train-size", "8", "--test-size", "4", "--batch-size", "4",
                                        "--width", "4", "--out", str(tmp_path)])
    assert set(r) == {"segnet", "transposed"}
    for v in r.values():
        assert 0.0 <= v["mean_iou"] <= 1.0 and len(v["per_class_iou"]) == 11
    assert files_in(tmp_path) == ["metrics.json", "segmentation.png"]
    assert json.load(open(tmp_path / "metrics.json"))["data"] == "synthetic strokes"


def test_segmentation_data_and_metrics():
    demo = load_demo("segmentation")
    rng = np.random.default_rng(0)
    digits = np.zeros((2, 28, 28), np.float32)
    digits[0, 10:20, 10:12] = 1.0                    # a "1"-like stroke
    digits[1, 5:8, 5:20] = 0.8
    images, masks = demo.compose(digits, np.array([1, 7]), 3, rng)
    assert images.shape == (3, 1, 32, 56) and masks.shape == (3, 32, 56)
    assert set(np.unique(masks)) <= {0, 2, 8}       # background, digit 1 -> class 2, digit 7 -> class 8
    np.testing.assert_array_equal(masks > 0, images[:, 0] > 0.5)
    truth = np.array([[0, 0, 1, 1], [2, 2, 0, 0]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    ious = demo.iou_per_class(demo.confusion(pred, truth, 3))
    np.testing.assert_allclose(ious, [3 / 4, 2 / 3, 1.0])
    assert demo.mean_iou(pred, truth) == pytest.approx(np.nanmean(demo.iou_per_class(demo.confusion(pred, truth))))


def test_filters_train_then_load(tmp_path):
    demo = load_demo("filters")
    r = demo.main(["--synthetic", "--train-steps", "2", "--batch-size", "4", "--out", str(tmp_path / "a")])
    assert r["weight_shape"] == (6, 1, 5, 5)
    assert files_in(tmp_path / "a") == ["activations.png", "filters.png", "filters_initial.png",
                                        "trained.safetensors"]
    weights = str(tmp_path / "a" / "trained.safetensors")
    r = demo.main(["--weights", weights, "--model", "lenet5", "--synthetic", "--out", str(tmp_path / "b")])
    assert files_in(tmp_path / "b") == ["activations.png", "filters.png"]
    r = demo.main(["--weights", weights, "--out", str(tmp_path / "c")])
    assert r["weight_shape"] == (6, 1, 5, 5) and files_in(tmp_path / "c") == ["filters.png"]


def test_tutorial_pictures_and_demos_exist_and_are_small():
    import re
    text = open(os.path.join(ROOT, "docs", "tutorial.md")).read()
    images = re.findall(r"\]\((images/[^)]+\.png)\)", text)
    assert len(images) >= 20
    for rel in images:
        path = os.path.join(ROOT, "docs", rel)
        assert os.path.exists(path), rel
        assert os.path.getsize(path) < 200_000, rel
    for script in set(re.findall(r"demos/(\w+)\.py", text)) - {"mnist"}:   # mnist.py: the data issue's demo
        assert os.path.exists(os.path.join(ROOT, "demos", script + ".py")), script
    covered = set()                 # every curriculum row (1-23) has a section: "## 7. ..." or "## 16-17. ..."
    for a, b in re.findall(r"^## (\d+)(?:-(\d+))?\. ", text, re.M):
        covered.update(range(int(a), int(b or a) + 1))
    assert covered >= set(range(1, 24)), sorted(set(range(1, 24)) - covered)
