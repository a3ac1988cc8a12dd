"""nn.Module, nn.Parameter and the containers behave as PyTorch's (checked side by side)."""
import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn


def _mlp(lib):
    n = lib.nn
    return n.Sequential(n.Linear(3, 4), n.BatchNorm1d(4), n.ReLU(), n.Dropout(0.2),
                        n.Sequential(n.Linear(4, 2), n.Tanh()))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Linear(3, 5), nn.ReLU())
        self.head = nn.Linear(5, 2)
        self.register_buffer("scale", tc.ones(2))
        self.register_buffer("cache", tc.zeros(2), persistent=False)
        self.plain = tc.zeros(3)             # a Tensor attribute that is not a Parameter: not registered

    def forward(self, x):
        return self.head(self.features(x)) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU())
        self.head = torch.nn.Linear(5, 2)
        self.register_buffer("scale", torch.ones(2))
        self.register_buffer("cache", torch.zeros(2), persistent=False)
        self.plain = torch.zeros(3)

    def forward(self, x):
        return self.head(self.features(x)) * self.scale


def test_parameter_is_a_leaf_tensor_that_requires_grad():
    p = nn.Parameter(tc.ones(2, 3))
    assert isinstance(p, tc.Tensor) and p.requires_grad and p.is_leaf
    assert nn.Parameter(np.zeros(2, dtype=np.float32), requires_grad=False).requires_grad is False
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert type(p * 2) is tc.Tensor                      # results of ops are plain Tensors
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q is not p and np.array_equal(q.data, p.data)


def test_registration_names_and_order_match_torch():
    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert list(ours.state_dict()) == list(theirs.state_dict())          # 'cache' is not persistent
    assert [tuple(v.shape) for v in ours.state_dict().values()] == \
        [tuple(v.shape) for v in theirs.state_dict().values()]
    assert len(list(ours.parameters(recurse=False))) == 0
    assert "plain" not in dict(ours.named_buffers())


def test_state_dict_keys_equal_torch_for_containers():
    ours, theirs = _mlp(tc), _mlp(torch)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert "1.num_batches_tracked" in ours.state_dict()

    ml = nn.ModuleList([nn.Linear(2, 2), nn.BatchNorm1d(2)])
    tml = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)])
    assert list(ml.state_dict()) == list(tml.state_dict())
    md = nn.ModuleDict({"b": nn.Linear(2, 3), "a": nn.LayerNorm(3)})
    tmd = torch.nn.ModuleDict({"b": torch.nn.Linear(2, 3), "a": torch.nn.LayerNorm(3)})
    assert list(md.state_dict()) == list(tmd.state_dict())


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    m = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(m.parameters())) == 2
    assert len(list(m.named_modules())) == 3
    assert list(m.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]   # as torch


def test_repr_matches_torch():
    def build(lib):
        n = lib.nn
        return n.Sequential(n.Linear(3, 4, bias=False), n.BatchNorm1d(4), n.LeakyReLU(0.2), n.Dropout(0.3),
                            n.Flatten(), n.Unflatten(1, (2, 2)), n.GELU(), n.Softmax(dim=1),
                            n.LogSoftmax(dim=-1), n.Sigmoid(), n.Identity(), n.LayerNorm(2),
                            n.ModuleList([n.ReLU()]), n.CrossEntropyLoss(),
                            n.Sequential(OrderedDict([("gn", n.GroupNorm(2, 4)), ("sp", n.Softplus())])))
    assert repr(build(tc)) == repr(build(torch))


def test_train_eval_propagate():
    m = _mlp(tc)
    assert all(x.training for x in m.modules())
    assert m.eval() is m
    assert not any(x.training for x in m.modules())
    m.train()
    assert all(x.training for x in m.modules())
    with pytest.raises(ValueError):
        m.train("yes")


def test_zero_grad_and_requires_grad():
    m = _mlp(tc)
    m(tc.randn(5, 3)).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())
    assert not m(tc.randn(5, 3)).requires_grad


def test_apply_visits_children_first_like_torch():
    seen, tseen = [], []
    _mlp(tc).apply(lambda mod: seen.append(type(mod).__name__))
    _mlp(torch).apply(lambda mod: tseen.append(type(mod).__name__))
    assert seen == tseen


def test_forward_hooks_capture_and_replace():
    m = _mlp(tc).eval()
    captured = {}
    h = m[2].register_forward_hook(lambda mod, inp, out: captured.setdefault("relu", out))
    x = tc.randn(4, 3)
    y = m(x)
    assert captured["relu"].shape == (4, 4) and (captured["relu"].data >= 0).all()
    h.remove()
    captured.clear()
    m(x)
    assert captured == {}
    h2 = m[4].register_forward_hook(lambda mod, inp, out: out * 0)
    assert not m(x).data.any()
    h2.remove()
    pre = m.register_forward_pre_hook(lambda mod, inp: (inp[0] * 0,))
    z = m(x)
    pre.remove()
    np.testing.assert_allclose(z.data, m(tc.zeros(4, 3)).data)
    np.testing.assert_allclose(m(x).data, y.data)


def test_call_runs_forward_and_missing_forward_errors():
    class NoForward(nn.Module):
        pass
    with pytest.raises(NotImplementedError, match="forward"):
        NoForward()(tc.ones(1))


def test_assign_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(tc.ones(1))
    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Bad()


def test_parameter_slot_type_checks():
    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="weight"):
        lin.weight = tc.ones(2, 2)       # a plain Tensor cannot replace a registered Parameter
    lin.bias = None
    assert "bias" not in lin.state_dict()
    with pytest.raises(KeyError):
        lin.register_buffer("a.b", tc.ones(1))


def test_load_state_dict_strict_errors_list_keys_and_shapes():
    m = _mlp(tc)
    sd = m.state_dict()
    sd = OrderedDict((k, v) for k, v in sd.items() if k != "0.bias")
    sd["extra.weight"] = tc.ones(1)
    with pytest.raises(RuntimeError) as e:
        m.load_state_dict(sd)
    msg = str(e.value)
    assert 'Missing key(s) in state_dict: "0.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "extra.weight"' in msg
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert missing == ["0.bias"] and unexpected == ["extra.weight"]
    # the same lists as torch returns for the same situation
    tm = _mlp(torch)
    tsd = OrderedDict((k, torch.tensor(v.data)) for k, v in sd.items())
    tres = tm.load_state_dict(tsd, strict=False)
    assert (missing, unexpected) == (tres.missing_keys, tres.unexpected_keys)

    bad = m.state_dict()
    bad["0.weight"] = tc.ones(5, 3)
    with pytest.raises(RuntimeError, match=r"size mismatch for 0.weight: copying a param with shape \(5, 3\) "
                                           r"from checkpoint, the shape in current model is \(4, 3\)"):
        m.load_state_dict(bad, strict=False)


def test_load_state_dict_copies_values_in_place():
    a, b = _mlp(tc), _mlp(tc)
    w = b[0].weight
    b.load_state_dict(a.state_dict())
    assert b[0].weight is w                                  # same Parameter object, new values
    for (k, v), (_, u) in zip(a.state_dict().items(), b.state_dict().items()):
        assert np.array_equal(v.data, u.data), k
    # loading from torch tensors works too (a torch state dict converted with .numpy())
    t = _mlp(torch)
    b.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    np.testing.assert_array_equal(b[0].weight.data, t[0].weight.detach().numpy())


def test_state_dict_shares_memory_and_keep_vars():
    m = nn.Linear(2, 2)
    sd = m.state_dict()
    assert not sd["weight"].requires_grad
    with tc.no_grad():
        m.weight.fill_(3.0)
    assert (sd["weight"].data == 3.0).all()
    assert m.state_dict(keep_vars=True)["weight"] is m.weight


def test_sequential_indexing_slicing_and_editing():
    m = _mlp(tc)
    assert isinstance(m[0], nn.Linear) and isinstance(m[-1], nn.Sequential)
    sub = m[1:3]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2 and list(sub._modules) == ["1", "2"]
    assert [type(x).__name__ for x in m] == ["Linear", "BatchNorm1d", "ReLU", "Dropout", "Sequential"]
    with pytest.raises(IndexError):
        m[7]
    m.append(nn.Identity())
    assert len(m) == 6
    del m[3]
    assert list(m._modules) == ["0", "1", "2", "3", "4"] and isinstance(m[3], nn.Sequential)
    m[2] = nn.Tanh()
    assert isinstance(m[2], nn.Tanh)
    od = nn.Sequential(OrderedDict([("conv", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(od.state_dict()) == ["conv.weight", "conv.bias"] and isinstance(od.act, nn.ReLU)


def test_modulelist_and_moduledict():
    ml = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(ml) == 3 and len(list(ml.parameters())) == 6
    ml.append(nn.ReLU())
    ml.extend([nn.Tanh()])
    assert isinstance(ml[-1], nn.Tanh) and isinstance(ml[1:3], nn.ModuleList)
    md = nn.ModuleDict({"a": nn.Linear(2, 2)})
    md["b"] = nn.ReLU()
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    assert isinstance(md.pop("b"), nn.ReLU) and len(md) == 1


def test_to_double_and_back():
    m = _mlp(tc).double()
    assert all(p.dtype == np.float64 for p in m.parameters())
    assert m[1].num_batches_tracked.dtype == np.int64
    y = m(tc.randn(3, 3, dtype=np.float64))
    assert y.dtype == np.float64
    m.float()
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_deepcopy_gives_an_independent_module():
    m = _mlp(tc)
    c = copy.deepcopy(m)
    with tc.no_grad():
        c[0].weight.fill_(0.0)
    assert m[0].weight.data.any()
    assert list(c.state_dict()) == list(m.state_dict())


def test_get_submodule_and_parameter():
    m = Net()
    assert m.get_submodule("features.0") is m.features[0]
    assert m.get_parameter("head.bias") is m.head.bias
    with pytest.raises(AttributeError):
        m.get_submodule("features.7")


def test_port_a_torch_model_by_copying_weights():
    ours, theirs = Net(), TorchNet()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(tc.Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-6,
                               atol=1e-6)
