"""The numbers behind the teaching tools' pictures: the conv matrix, shape explanations, model
summaries, the computation graph's DOT text, and the arrays behind filter / activation pictures."""
import re
import sys

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tc
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.teach import (conv_matrix, conv_transpose_matrix, draw_graph, explain_conv,
                                explain_conv_transpose, explain_pool, op_name, record_modules, save_graph,
                                separable_comparison, summary, trace_backward)
from tinygrad_cnn.teach import graph as graph_module
from tinygrad_cnn.teach.pictures import activation_maps, filter_tiles, require_matplotlib, tile_grid

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


# ----------------------------------------------------------------------------- conv as a matrix

@st.composite
def conv_configs(draw):
    nd = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(nd))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(nd))
    padding = tuple(draw(st.integers(0, 2)) for _ in range(nd))
    size = tuple(draw(st.integers(max(1, d * (k - 1) + 1 - 2 * p), 6 if nd < 3 else 4))
                 for k, d, p in zip(kernel, dilation, padding))
    return nd, groups, c_in, c_out, kernel, stride, dilation, padding, size


@given(conv_configs(), st.integers(0, 2 ** 31 - 1))
def test_conv_matrix_times_x_is_conv_and_its_transpose_is_conv_transpose(cfg, seed):
    nd, groups, c_in, c_out, kernel, stride, dilation, padding, size = cfg
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, c_in // groups) + kernel)
    x = rng.standard_normal((1, c_in) + size)
    C = conv_matrix(w, (c_in,) + size, stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = CONV[nd](tc.Tensor(x), tc.Tensor(w), stride=stride, padding=padding, dilation=dilation, groups=groups)
    assert C.shape == (y.numel(), x.size)
    np.testing.assert_allclose(C @ x.ravel(), y.numpy().ravel(), atol=1e-10)

    # conv_transpose(u) == C^T u, for every output_padding that leads back to `size`
    u = rng.standard_normal(y.shape)
    out_pad = tuple((s + 2 * p - d * (k - 1) - 1) % st_ for s, p, d, k, st_ in
                    zip(size, padding, dilation, kernel, stride))
    z = CONV_T[nd](tc.Tensor(u), tc.Tensor(w), stride=stride, padding=padding, output_padding=out_pad,
                   groups=groups, dilation=dilation)
    assert z.shape[2:] == size
    np.testing.assert_allclose(C.T @ u.ravel(), z.numpy().ravel(), atol=1e-10)
    M = conv_transpose_matrix(w, u.shape[1:], stride=stride, padding=padding, output_padding=out_pad,
                              groups=groups, dilation=dilation)
    np.testing.assert_array_equal(M, C.T)


def test_slide_conv_matrix_is_4x16_with_shifted_weight_rows():
    w = np.arange(1, 10, dtype=np.float64).reshape(1, 1, 3, 3)        # w00..w22 numbered 1..9
    C = conv_matrix(w, (4, 4))
    assert C.shape == (4, 16)
    np.testing.assert_array_equal(C[0], [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(C[1], np.roll(C[0], 1))
    np.testing.assert_array_equal(C[2], np.roll(C[0], 4))
    np.testing.assert_array_equal(C[3], np.roll(C[0], 5))
    assert conv_transpose_matrix(w, (1, 2, 2)).shape == (16, 4)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv_matrix_padding_modes_match_torch(mode, rng):
    w = rng.standard_normal((4, 2, 3, 2))
    x = rng.standard_normal((1, 4, 6, 5))
    conv = torch.nn.Conv2d(4, 4, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2,
                           padding_mode=mode, bias=False, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(w))
        want = conv(torch.tensor(x)).numpy().ravel()
    C = conv_matrix(w, (4, 6, 5), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, padding_mode=mode)
    np.testing.assert_allclose(C @ x.ravel(), want, atol=1e-10)


def test_conv_matrix_same_padding_and_output_padding_beyond_stride(rng):
    w = rng.standard_normal((2, 1, 4, 3))
    x = rng.standard_normal((1, 1, 7, 6))
    C = conv_matrix(w, (1, 7, 6), padding="same")
    np.testing.assert_allclose(C @ x.ravel(), F.conv2d(tc.Tensor(x), tc.Tensor(w), padding="same").numpy().ravel(),
                               atol=1e-10)
    # output_padding (1) >= stride (1) is allowed when smaller than dilation (2)
    w1 = rng.standard_normal((2, 3, 3))
    y1 = rng.standard_normal((1, 2, 5))
    M = conv_transpose_matrix(w1, (2, 5), output_padding=1, dilation=2)
    want = torch.nn.functional.conv_transpose1d(torch.tensor(y1), torch.tensor(w1), output_padding=1, dilation=2)
    np.testing.assert_allclose(M @ y1.ravel(), want.numpy().ravel(), atol=1e-10)


def test_conv_matrix_errors_name_the_problem():
    w = np.zeros((2, 3, 3, 3))
    with pytest.raises(ValueError, match="3 channels"):
        conv_matrix(w, (4, 8, 8))
    with pytest.raises(ValueError, match="padding_mode"):
        conv_matrix(w, (3, 8, 8), padding_mode="mirror")
    with pytest.raises(ValueError, match="empty"):
        conv_matrix(w, (3, 2, 2))
    with pytest.raises(ValueError, match="divisible by groups"):
        conv_matrix(np.zeros((3, 1, 3, 3)), (2, 8, 8), groups=2)
    with pytest.raises(ValueError, match="input_shape"):
        conv_matrix(w, (8,))


# ----------------------------------------------------------------------------- shape explainer

def test_slide_output_sizes_and_formula_strings():
    assert str(explain_conv(7, 3)[0]) == "L: (7 - 3 + 2*0)/1 + 1 = 5"
    assert explain_conv(7, 3, padding=1)[0].worked == "(7 - 3 + 2*1)/1 + 1 = 7"
    e = explain_conv((7, 7), 3, stride=2)
    assert [x.dim for x in e] == ["H", "W"] and [x.out_size for x in e] == [3, 3]
    assert e[0].formula == "(W - K + 2P)/S + 1" and e[0].dropped == 0 and e[0].inverse == ""
    s3 = explain_conv(7, 3, stride=3)[0]
    assert s3.out_size == 2 and s3.dropped == 1 and s3.lost == 1 and s3.output_padding == 1
    assert "the last 1 input pixel(s) are never read" in str(s3)
    pad_only = explain_conv(32, 3, stride=2, padding=1)[0]        # ResNet's downsampling conv
    assert pad_only.out_size == 16 and pad_only.dropped == 1 and pad_only.lost == 0
    assert "only padding is dropped" in str(pad_only) and pad_only.output_padding == 1
    assert "floor 2" in s3.worked and "output_padding=1" in s3.inverse and "output_size=7" in s3.inverse
    d = explain_conv(32, 5, dilation=2)[0]
    assert d.formula == "(W + 2P - D*(K-1) - 1)/S + 1" and d.out_size == 24
    same = explain_conv((7, 8), 3, stride=2, padding="same")
    assert [x.out_size for x in same] == [4, 4] and "0 before and 1 after" in same[1].worked
    t = explain_conv_transpose(2, 3, stride=2, padding=1, output_padding=1)[0]
    assert t.out_size == 4 and t.worked == "(2 - 1)*2 - 2*1 + 1*(3-1) + 1 + 1 = 4"
    p = explain_pool((7, 7), 2)[0]
    assert p.out_size == 3 and p.dropped == 1 and "output_size=7" in p.inverse
    assert explain_pool(7, 2, ceil_mode=True)[0].out_size == 4


def test_impossible_and_uneven_configurations_are_refused_with_the_arithmetic():
    with pytest.raises(ValueError, match=r"\(2 - 5 \+ 2\*0\)/1 \+ 1 = -3 \+ 1 < 1"):
        explain_conv(2, 5)
    with pytest.raises(ValueError, match="does not fit evenly"):
        explain_conv(7, 3, stride=3, strict=True)
    with pytest.raises(ValueError, match="at most half"):
        explain_pool(8, 2, padding=2)
    with pytest.raises(ValueError, match="output_padding"):
        explain_conv_transpose(3, 3, stride=2, output_padding=2)


@given(st.integers(1, 30), st.integers(1, 6), st.integers(1, 4), st.integers(0, 3), st.integers(1, 3))
def test_explained_size_matches_conv_and_output_padding_inverts_it(w, k, s, p, d):
    if w + 2 * p < d * (k - 1) + 1:
        with pytest.raises(ValueError):
            explain_conv(w, k, s, p, d)
        return
    e = explain_conv(w, k, s, p, d)[0]
    x = tc.zeros(1, 1, w, dtype=tc.float64)
    y = F.conv1d(x, tc.zeros(1, 1, k, dtype=tc.float64), stride=s, padding=p, dilation=d)
    assert e.out_size == y.shape[2]
    assert e.dropped == (w + 2 * p - d * (k - 1) - 1) % s
    if e.output_padding < max(s, d):     # the transposing layer can put the dropped pixels back
        back = F.conv_transpose1d(y, tc.zeros(1, 1, k, dtype=tc.float64), stride=s, padding=p,
                                  output_padding=e.output_padding, dilation=d)
        assert back.shape[2] == w


@given(st.integers(2, 20), st.integers(1, 4), st.integers(1, 4))
def test_pool_explanation_matches_max_pool_and_unpool_inverts_it(w, k, s):
    if w < k:
        return
    e = explain_pool(w, k, s)[0]
    x = tc.randn(1, 1, w, dtype=tc.float64)
    v, i = F.max_pool1d(x, k, s, return_indices=True)
    assert e.out_size == v.shape[2]
    if s >= k:   # non-overlapping windows: unpool with output_size=W gives W back
        assert F.max_unpool1d(v, i, k, s, output_size=[w]).shape[2] == w


# ----------------------------------------------------------------------------- summary

def test_summary_of_an_mlp_counts_like_torch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    ref = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 100), torch.nn.ReLU(),
                              torch.nn.Linear(100, 10))
    s = summary(model, (2, 1, 28, 28))
    assert s.total_params == sum(p.numel() for p in ref.parameters()) == 79510
    assert [r.params for r in s.rows] == [0, 78500, 0, 1010]
    assert [r.output_shape for r in s.rows] == [(2, 784), (2, 100), (2, 100), (2, 10)]
    assert s.total_macs == 2 * (784 * 100 + 100 * 10)
    text = str(s)
    assert "Total params: 79,510" in text and "1 (Linear)" in text
    assert "| **total** | | **79,510** |" in s.to_markdown()
    assert model.training                  # summary restores the mode it found


@pytest.mark.parametrize("c_in,c_out,k,size", [(32, 64, 3, 32), (3, 16, 5, 28), (64, 64, 3, 8)])
def test_separable_comparison_counts_equal_torch_layers(c_in, c_out, k, size):
    cmp = separable_comparison(c_in, c_out, k, (size, size), bias=True)
    plain = torch.nn.Conv2d(c_in, c_out, k, padding=k // 2)
    depthwise = torch.nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in)
    pointwise = torch.nn.Conv2d(c_in, c_out, 1)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert cmp.plain_params == count(plain)
    assert cmp.depthwise_params == count(depthwise) and cmp.pointwise_params == count(pointwise)
    assert cmp.out_size == (size, size)
    assert cmp.plain_macs == size * size * c_out * c_in * k * k
    assert cmp.separable_macs == size * size * c_in * (k * k + c_out)
    assert cmp.macs_ratio == pytest.approx(1 / c_out + 1 / k ** 2)
    assert "fewer multiply-adds" in str(cmp)


# ----------------------------------------------------------------------------- graph

def _conv_net_loss():
    x = tc.randn(1, 1, 6, 6, dtype=tc.float64, requires_grad=True)
    w1 = tc.randn(2, 1, 3, 3, dtype=tc.float64, requires_grad=True)
    w2 = tc.randn(3, 2, 3, 3, dtype=tc.float64, requires_grad=True)
    h = F.conv2d(x, w1).relu()
    y = F.conv2d(h, w2)                           # a conv whose input is an op's output
    loss = (y * y).sum()
    return loss, {"image": x, "conv1.weight": w1, "conv2.weight": w2}


def _norms_in(dot, name):
    line = next(line for line in dot.splitlines() if f'label="{name}' in line)
    return float(re.search(r"\|grad\| = ([0-9.e+-]+)", line).group(1))


def test_draw_graph_shows_ops_shapes_names_and_gradient_norms_after_backward():
    loss, params = _conv_net_loss()
    dot = draw_graph(loss, params=params)
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert dot.count("conv2d  [ConvNd]") == 2 and "relu  [ReLU]" in dot and "sum  [Sum]" in dot
    assert "(1, 3, 2, 2) float64" in dot and "(1, 2, 4, 4) float64" in dot
    assert "conv1.weight\\n(2, 1, 3, 3) float64" in dot
    # both conv input gradients are transposed convolutions, weight gradients conv_weight_grad
    assert dot.count('label="grad = conv_transpose') == 2
    assert dot.count('label="grad = conv_weight_grad') == 2
    loss.backward()                               # the graph was kept: backward still works
    for name, t in params.items():
        assert _norms_in(dot, name) == float(f"{np.linalg.norm(t.grad.numpy()):.3g}")   # 3 digits shown
    assert _norms_in(dot, "sum") == 1.0
    after = draw_graph(loss, params=params)       # freed by that backward: leaves' .grad only
    assert "retain_graph=True" in after and "grad = conv_transpose" not in after
    for name, t in params.items():
        assert _norms_in(after, name) == float(f"{np.linalg.norm(t.grad.numpy()):.3g}")
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        trace_backward(loss)
    assert "|grad|" not in draw_graph(loss, params=params, show_grads=False)


def test_trace_backward_gives_the_engines_gradients_and_names_the_ops():
    loss, params = _conv_net_loss()
    steps, leaf_grads = trace_backward(loss)
    assert [s.name for s in steps] == ["Sum", "Mul", "ConvNd", "ReLU", "ConvNd"]
    conv2 = steps[2]
    assert conv2.made_by[:2] == ["ConvTransposeNd", "ConvWeightGrad"]
    assert op_name("ConvTransposeNd") == "conv_transpose" and op_name("MaxUnpoolNd") == "max_unpool"
    loss.backward()
    for t in params.values():
        np.testing.assert_allclose(leaf_grads[id(t)].numpy(), t.grad.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="no grad_fn"):
        trace_backward(tc.ones(2))
    with pytest.raises(ValueError, match="gradient="):
        trace_backward(tc.ones(2, requires_grad=True) * 2)


def test_draw_graph_groups_ops_by_module_and_names_parameters():
    tc.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 2), nn.Tanh()))
    x = tc.randn(5, 4)
    with record_modules(model) as modules:
        out = model(x).sum()
    dot = draw_graph(out, params=model, modules=modules)
    for cluster in ("cluster_0", "cluster_1", "cluster_2", "cluster_2_0", "cluster_2_1"):
        assert f"subgraph {cluster} " in dot
    assert 'label="0 (Linear)"' in dot and 'label="2.1 (Tanh)"' in dot
    assert "0.weight\\n(3, 4) float32" in dot and "2.0.bias\\n(2,) float32" in dot
    # the matmul of layer 2.0 sits inside cluster 2.0, which sits inside cluster 2
    inner = dot[dot.index("subgraph cluster_2 "):]
    assert inner.index("subgraph cluster_2_0") < inner.index("matmul")


def test_save_graph_writes_dot_and_explains_missing_graphviz(tmp_path, monkeypatch):
    loss, params = _conv_net_loss()
    dot = draw_graph(loss, params=params)
    path = save_graph(dot, str(tmp_path / "g.dot"))
    assert open(path).read() == dot
    monkeypatch.setattr(graph_module.shutil, "which", lambda name: None)
    with pytest.raises(graph_module.GraphvizNotFound, match="Graphviz"):
        save_graph(dot, str(tmp_path / "g2.svg"))
    assert (tmp_path / "g2.dot").exists()
    with pytest.raises(ValueError, match="format"):
        save_graph(dot, str(tmp_path / "g.bmp"))


# ----------------------------------------------------------------------------- pictures' arrays

def test_tile_grid_and_filter_tiles_numbers():
    tiles = [np.full((2, 3), v, float) for v in (0.1, 0.2, 0.3)]
    grid = tile_grid(tiles, ncols=2, pad=1, pad_value=-1)
    assert grid.shape == (5, 7)
    assert (grid[0:2, 0:3] == 0.1).all() and (grid[0:2, 4:7] == 0.2).all() and (grid[3:5, 0:3] == 0.3).all()
    assert (grid[2] == -1).all() and (grid[3:5, 4:7] == -1).all()

    w = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    colour = filter_tiles(w)                      # C_in == 3: one RGB tile per filter
    assert len(colour) == 2 and colour[0].shape == (2, 2, 3)
    assert colour[0].min() == 0 and colour[0].max() == 1
    grey = filter_tiles(w, colour=False, normalise="all")
    assert len(grey) == 6 and grey[0][0, 0] == 0 and grey[-1][-1, -1] == 1
    with pytest.raises(ValueError, match="colour tiles need 3"):
        filter_tiles(np.zeros((2, 1, 3, 3)), colour=True)


class _TwoConvs(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Identity()
        self.w = nn.Parameter(np.ones((2, 1, 3, 3), np.float32))

    def forward(self, x):
        return F.conv2d(self.first(x), self.w).relu()


def test_activation_maps_are_captured_by_forward_hooks():
    model = _TwoConvs()
    x = tc.ones(1, 1, 5, 5)
    maps = activation_maps(model, x, ["first"])
    np.testing.assert_array_equal(maps["first"], np.ones((1, 1, 5, 5)))
    assert activation_maps(model, x).keys() == {"first"}
    with pytest.raises(ValueError, match="no layer named"):
        activation_maps(model, x, ["nope"])
    assert not model.first._forward_hooks         # hooks removed


def test_missing_matplotlib_gives_a_clear_message(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        require_matplotlib()


def _lenet(lib):
    return lib.Sequential(lib.Conv2d(1, 6, 5, padding=2), lib.ReLU(), lib.MaxPool2d(2),
                          lib.Conv2d(6, 16, 5), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(),
                          lib.Linear(400, 120), lib.ReLU(), lib.Linear(120, 84), lib.ReLU(), lib.Linear(84, 10))


def test_summary_of_lenet_equals_torch_counts_and_hand_macs():
    s = summary(_lenet(nn), (1, 1, 28, 28))
    ref = _lenet(torch.nn)
    torch_params = [sum(p.numel() for p in m.parameters()) for m in ref]
    assert [r.params for r in s.rows] == torch_params
    assert s.total_params == sum(p.numel() for p in ref.parameters()) == 61706
    shapes = [tuple(t.shape) for t in _torch_outputs(ref, torch.zeros(1, 1, 28, 28))]
    assert [r.output_shape for r in s.rows] == shapes
    conv1, conv2 = s.rows[0], s.rows[3]
    assert conv1.macs == 6 * 28 * 28 * 1 * 5 * 5 and conv2.macs == 16 * 10 * 10 * 6 * 5 * 5
    assert s.rows[7].macs == 400 * 120
    assert s.total_macs == conv1.macs + conv2.macs + 400 * 120 + 120 * 84 + 84 * 10
    assert conv1.formula == "H,W: (28 - 5 + 2*2)/1 + 1 = 28"
    assert s.rows[2].formula == "H,W: (28 - 2 + 2*0)/2 + 1 = 14" and not s.rows[2].flags


def _torch_outputs(seq, x):
    outs = []
    for m in seq:
        x = m(x)
        outs.append(x)
    return outs


def test_summary_flags_dropped_pixels_and_inverts_them_with_transposed_layers():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.MaxPool2d(2), nn.ConvTranspose2d(4, 2, 3, stride=2,
                                                                                              output_padding=1),
                          nn.Conv2d(2, 2, 3, groups=2))
    s = summary(model, (1, 1, 16, 17))
    conv = s.rows[0]
    assert conv.output_shape == (1, 4, 7, 8)
    assert conv.explanation[0].dropped == 1 and conv.explanation[1].dropped == 0
    assert len(conv.flags) == 1 and conv.flags[0].startswith("floor in H: the last 1 input pixel(s) are never read")
    assert "output_padding=1 (or output_size=16)" in conv.flags[0]
    pool = s.rows[1]
    assert pool.output_shape == (1, 4, 3, 4) and "floor in H: the last 1" in pool.flags[0]
    assert "output_size=7" in pool.flags[0]
    tconv = s.rows[2]
    assert tconv.output_shape == (1, 2, 8, 10)
    assert tconv.formula == "H: (3 - 1)*2 - 2*0 + 1*(3-1) + 1 + 1 = 8; W: (4 - 1)*2 - 2*0 + 1*(3-1) + 1 + 1 = 10"
    assert tconv.macs == 1 * 4 * 3 * 4 * 2 * 9 and tconv.params == 4 * 2 * 9 + 2
    grouped = s.rows[3]
    assert grouped.params == sum(p.numel() for p in torch.nn.Conv2d(2, 2, 3, groups=2).parameters())
    assert any("groups=2" in f for f in grouped.flags)
    assert "    ! floor in H" in str(s)


def test_draw_graph_collapses_modules_into_boxes():
    tc.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.Flatten(), nn.Linear(8, 3)))
    x = tc.randn(1, 1, 4, 4)
    with record_modules(model) as modules:
        loss = model(x).sum()
    per_layer = draw_graph(loss, params=model, modules=modules, collapse=True)
    assert 'mod_0 [shape=box' in per_layer and "0 (Conv2d)\\n1 op: conv2d\\n(1, 2, 2, 2) float32" in per_layer
    assert "2.1 (Linear)\\n1 op: linear" in per_layer
    assert "20 parameters, |grad| = " in per_layer            # conv: 2*1*3*3 + 2, as an annotation
    assert "0.weight" not in per_layer                        # parameters folded into their box
    assert "mod_0 -> mod_1" in per_layer and "mod_1 -> mod_2_0" in per_layer and "mod_2_0 -> mod_2_1" in per_layer
    assert "subgraph cluster_2 " in per_layer                 # 2.0 and 2.1 sit in module 2's cluster
    criterion = nn.MSELoss()
    with record_modules(model, loss=criterion) as modules:
        loss = criterion(model(x), tc.zeros(1, 3))
    top = draw_graph(loss, params=model, modules=modules, collapse=1)
    assert "loss (MSELoss)" in top and "mod_loss [shape=box" in top
    assert "mod_2 [shape=box" in top and "2 ops: reshape, linear" in top
    assert 'mod_1 -> mod_2 [label="grad = reshape' in top and "mod_2 -> mod_loss" in top


def test_summary_of_a_zoo_resnet_counts_every_parameter_once():
    from tinygrad_cnn import models
    net = models.resnet20()
    s = summary(net, (1, 3, 32, 32))
    assert s.total_params == models.count_parameters(net) == sum(r.params for r in s.rows)
    assert s.rows[-1].output_shape == (1, 10)
    convs = [r for r in s.rows if r.type == "Conv2d"]
    assert len(convs) == 19 and all(r.macs > 0 for r in convs)
    assert any("only padding is dropped" in f for r in convs for f in r.flags)   # the stride-2 convs
