"""Optimizers and schedulers: 20-step training trajectories against PyTorch, state dicts, errors.

The trajectory model is a small CNN (conv, batchnorm, relu, max-pool, linear) with the same
initial weights in both libraries and the same batches; losses and parameters must agree
within float32 tolerance after 20 steps.
"""
import copy
import math

import numpy as np
import pytest
import torch

import tinygrad_cnn as tc
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
import tinygrad_cnn.optim as optim
from tinygrad_cnn.optim import lr_scheduler as sched


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny ops: torch's threads only add contention. Restored afterwards for other files."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TL = torch.optim.lr_scheduler
STEPS = 20
DATA = np.random.default_rng(0)
XS = DATA.standard_normal((STEPS, 8, 2, 8, 8)).astype(np.float32)
# learnable labels: which of the two input channels has the larger mean, or neither by much
_diff = XS[:, :, 0].mean((-1, -2)) - XS[:, :, 1].mean((-1, -2))
YS = np.where(_diff > 0.1, 0, np.where(_diff < -0.1, 1, 2)).astype(np.int64)


def _cnn(n):
    # conv has no bias: a bias right before BatchNorm gets a zero gradient, which Adam-type
    # optimizers turn into +-lr steps driven by rounding noise (in both libraries, differently)
    return n.Sequential(n.Conv2d(2, 4, 3, padding=1, bias=False), n.BatchNorm2d(4), n.ReLU(), n.MaxPool2d(2),
                        n.Flatten(), n.Linear(4 * 4 * 4, 3))


def _pair():
    tc.manual_seed(0)
    ours, theirs = _cnn(nn), _cnn(torch.nn)
    theirs.load_state_dict({k: torch.tensor(v.data.copy()) for k, v in ours.state_dict().items()})
    return ours, theirs


def _train(ours, theirs, opt, topt, sch=None, tsch=None, steps=STEPS, start=0):
    losses, tlosses = [], []
    for i in range(start, start + steps):
        opt.zero_grad()
        topt.zero_grad()
        loss = F.cross_entropy(ours(tc.Tensor(XS[i])), tc.Tensor(YS[i]))
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(XS[i])), torch.tensor(YS[i]))
        tloss.backward()
        topt.step()
        if sch is not None:
            sch.step()
            tsch.step()
            assert sch.get_last_lr() == pytest.approx(tsch.get_last_lr(), rel=1e-12, abs=1e-15)
        losses.append(loss.item())
        tlosses.append(tloss.item())
    return np.array(losses), np.array(tlosses)


def _assert_same(ours, theirs, losses, tlosses):
    np.testing.assert_allclose(losses, tlosses, rtol=1e-4, atol=1e-5)
    tsd = theirs.state_dict()
    for k, v in ours.state_dict().items():
        np.testing.assert_allclose(v.data, tsd[k].numpy(), rtol=1e-4, atol=2e-5, err_msg=k)


OPTIMIZERS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.3, maximize=False)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), weight_decay=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("RMSprop", dict(lr=0.005)),
    ("RMSprop", dict(lr=0.002, momentum=0.9, centered=True, weight_decay=1e-3)),
    ("Adagrad", dict(lr=0.05)),
    ("Adagrad", dict(lr=0.05, lr_decay=0.01, weight_decay=1e-3, initial_accumulator_value=0.1)),
]


@pytest.mark.parametrize("name,kwargs", OPTIMIZERS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(OPTIMIZERS)])
def test_optimizer_trajectory_matches_torch(name, kwargs):
    ours, theirs = _pair()
    opt = getattr(optim, name)(ours.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    losses, tlosses = _train(ours, theirs, opt, topt)
    assert losses[-5:].mean() < losses[:5].mean()       # it does learn
    _assert_same(ours, theirs, losses, tlosses)


SCHEDULERS = [
    ("StepLR", lambda S, o: S.StepLR(o, step_size=4, gamma=0.5)),
    ("MultiStepLR", lambda S, o: S.MultiStepLR(o, milestones=[3, 8, 8, 15], gamma=0.5)),
    ("ExponentialLR", lambda S, o: S.ExponentialLR(o, gamma=0.9)),
    ("CosineAnnealingLR", lambda S, o: S.CosineAnnealingLR(o, T_max=7, eta_min=1e-3)),
    ("LinearLR", lambda S, o: S.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=6)),
    ("OneCycleLR", lambda S, o: S.OneCycleLR(o, max_lr=0.2, total_steps=STEPS)),
    ("OneCycleLR-3phase-linear", lambda S, o: S.OneCycleLR(o, max_lr=0.2, total_steps=STEPS, three_phase=True,
                                                           anneal_strategy="linear")),
    ("SequentialLR-warmup-cosine", lambda S, o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.2, total_iters=5), S.CosineAnnealingLR(o, T_max=15)], milestones=[5])),
]


SCHED_CASES = [(n, m, "SGD") for n, m in SCHEDULERS] + [(n, m, "Adam") for n, m in SCHEDULERS
                                                         if n in ("OneCycleLR", "SequentialLR-warmup-cosine")]


@pytest.mark.parametrize("name,make,opt_name", SCHED_CASES, ids=[f"{n}-{o}" for n, _, o in SCHED_CASES])
def test_scheduler_trajectory_matches_torch(name, make, opt_name):
    ours, theirs = _pair()
    kw = dict(lr=0.05, momentum=0.9) if opt_name == "SGD" else dict(lr=0.01)
    opt = getattr(optim, opt_name)(ours.parameters(), **kw)
    topt = getattr(torch.optim, opt_name)(theirs.parameters(), **kw)
    sch, tsch = make(sched, opt), make(TL, topt)
    assert sch.get_last_lr() == pytest.approx(tsch.get_last_lr())
    losses, tlosses = _train(ours, theirs, opt, topt, sch, tsch)
    _assert_same(ours, theirs, losses, tlosses)
    if name.startswith("OneCycle"):    # momentum / beta1 are cycled as in torch
        key = "momentum" if opt_name == "SGD" else "betas"
        assert opt.param_groups[0][key] == pytest.approx(topt.param_groups[0][key])


def test_reduce_lr_on_plateau_matches_torch():
    p, tp = nn.Parameter(tc.zeros(1)), torch.zeros(1, requires_grad=True)
    kwargs = dict(mode="min", factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.01)
    o, to = optim.SGD([p], lr=1.0), torch.optim.SGD([tp], lr=1.0)
    s, ts = sched.ReduceLROnPlateau(o, **kwargs), TL.ReduceLROnPlateau(to, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8]
    for m in metrics:
        s.step(m)
        ts.step(m)
        assert s.get_last_lr() == pytest.approx(ts.get_last_lr())
    assert s.get_last_lr()[0] < 1.0
    for mode, thr_mode in [("max", "abs"), ("max", "rel"), ("min", "abs")]:
        o, to = optim.SGD([p], lr=1.0), torch.optim.SGD([tp], lr=1.0)
        s = sched.ReduceLROnPlateau(o, mode=mode, threshold_mode=thr_mode, patience=1)
        ts = TL.ReduceLROnPlateau(to, mode=mode, threshold_mode=thr_mode, patience=1)
        for m in [1.0, 1.0, 0.5, 2.0, 2.0, 2.0, 2.0]:
            s.step(m)
            ts.step(m)
            assert s.get_last_lr() == pytest.approx(ts.get_last_lr())


def test_scheduler_lr_sequences_match_torch_over_many_epochs():
    """Pure learning-rate sequences (no training) over 60 epochs, including periodic cosine."""
    makers = [lambda S, o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.01),
              lambda S, o: S.StepLR(o, 7), lambda S, o: S.ExponentialLR(o, 0.95),
              lambda S, o: S.LinearLR(o, 0.5, 0.9, 10), lambda S, o: S.ConstantLR(o, 0.5, 4),
              lambda S, o: S.LambdaLR(o, lambda e: 1 / (1 + e)),
              lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, 0.1, 100), S.ExponentialLR(o, 0.9)], [5])]
    for make in makers:
        o = optim.SGD([nn.Parameter(tc.zeros(1))], lr=0.3)
        to = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
        s, ts = make(sched, o), make(TL, to)
        for _ in range(60):
            o.step()
            to.step()
            s.step()
            ts.step()
            assert s.get_last_lr() == pytest.approx(ts.get_last_lr(), rel=1e-12)


def test_param_groups_with_own_lr_match_torch():
    ours, theirs = _pair()
    groups = lambda m: [{"params": m[0].parameters(), "lr": 0.01},   # noqa: E731
                        {"params": list(m[1].parameters()) + list(m[5].parameters()), "weight_decay": 0.01}]
    opt = optim.SGD(groups(ours), lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(groups(theirs), lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.1
    assert opt.param_groups[1]["weight_decay"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.0
    losses, tlosses = _train(ours, theirs, opt, topt, steps=10)
    _assert_same(ours, theirs, losses, tlosses)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.05, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True)),
                                         ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
                                         ("Adagrad", dict(lr=0.05))])
def test_state_dict_resume_is_exact(name, kwargs):
    """Train 10 steps, save optimizer + scheduler state, resume in fresh objects: the next 10 steps
    equal an uninterrupted run bit for bit."""
    ours, _ = _pair()
    opt = getattr(optim, name)(ours.parameters(), **kwargs)
    sch_ = sched.StepLR(opt, 3, 0.5)
    for i in range(10):
        opt.zero_grad()
        F.cross_entropy(ours(tc.Tensor(XS[i])), tc.Tensor(YS[i])).backward()
        opt.step()
        sch_.step()
    model_sd = copy.deepcopy({k: v.data.copy() for k, v in ours.state_dict().items()})
    opt_sd, sch_sd = opt.state_dict(), sch_.state_dict()
    assert set(opt_sd) == {"state", "param_groups"} and opt_sd["param_groups"][0]["params"] == list(range(5))

    resumed, _ = _pair()
    resumed.load_state_dict(model_sd)
    opt2 = getattr(optim, name)(resumed.parameters(), **kwargs)
    sch2 = sched.StepLR(opt2, 3, 0.5)
    opt2.load_state_dict(opt_sd)
    sch2.load_state_dict(sch_sd)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    for i in range(10, 20):
        for m, o, s in ((ours, opt, sch_), (resumed, opt2, sch2)):
            o.zero_grad()
            F.cross_entropy(m(tc.Tensor(XS[i])), tc.Tensor(YS[i])).backward()
            o.step()
            s.step()
    for (k, v), (_, u) in zip(ours.state_dict().items(), resumed.state_dict().items()):
        np.testing.assert_array_equal(v.data, u.data, err_msg=k)


def test_state_dict_format_matches_torch():
    ours, theirs = _pair()
    opt, topt = optim.Adam(ours.parameters(), lr=0.01), torch.optim.Adam(theirs.parameters(), lr=0.01)
    _train(ours, theirs, opt, topt, steps=2)
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(sd["state"]) == sorted(tsd["state"])
    for k in sd["state"]:
        assert set(sd["state"][k]) == set(tsd["state"][k])
        assert float(sd["state"][k]["step"]) == float(tsd["state"][k]["step"])
        np.testing.assert_allclose(sd["state"][k]["exp_avg"].data, tsd["state"][k]["exp_avg"].numpy(),
                                   rtol=1e-4, atol=1e-6)
    assert sd["param_groups"][0]["params"] == tsd["param_groups"][0]["params"]
    # and a torch optimizer state dict loads into ours (tensors converted to numpy)
    conv = {"state": {k: {n: (v.numpy() if torch.is_tensor(v) else v) for n, v in s.items()}
                      for k, s in tsd["state"].items()},
            "param_groups": tsd["param_groups"]}
    opt.load_state_dict(conv)
    assert opt.state[next(iter(ours.parameters()))]["step"] == 2


def test_zero_grad_step_closure_and_no_grad_params_skipped():
    p = nn.Parameter(tc.Tensor(np.array([1.0, -2.0], dtype=np.float32)))
    q = nn.Parameter(tc.ones(2))
    opt = optim.SGD([p, q], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss
    loss = opt.step(closure)
    assert loss.item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.data, [0.8, -1.6], rtol=1e-6)
    np.testing.assert_array_equal(q.data, [1.0, 1.0])        # no gradient: untouched
    opt.zero_grad(set_to_none=False)
    assert p.grad is not None and not p.grad.data.any()
    opt.zero_grad()
    assert p.grad is None


def test_optimizer_errors():
    p = nn.Parameter(tc.ones(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Invalid learning rate"):
        optim.Adam([p], lr=-1.0)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="iterable"):
        optim.SGD(p, lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(TypeError, match="not an Optimizer"):
        sched.StepLR(object(), 3)
    with pytest.raises(ValueError, match="total_steps"):
        sched.OneCycleLR(opt, 0.1)


def test_scheduler_state_dict_round_trip():
    o = optim.SGD([nn.Parameter(tc.zeros(1))], lr=0.1)
    s = sched.SequentialLR(o, [sched.LinearLR(o, 0.1, total_iters=3), sched.CosineAnnealingLR(o, 10)], [3])
    for _ in range(5):
        o.step()
        s.step()
    sd = s.state_dict()
    o2 = optim.SGD([nn.Parameter(tc.zeros(1))], lr=0.1)
    s2 = sched.SequentialLR(o2, [sched.LinearLR(o2, 0.1, total_iters=3), sched.CosineAnnealingLR(o2, 10)], [3])
    s2.load_state_dict(sd)
    o2.load_state_dict(o.state_dict())
    for _ in range(5):
        for oo, ss in ((o, s), (o2, s2)):
            oo.step()
            ss.step()
        assert s.get_last_lr() == s2.get_last_lr()
    assert math.isfinite(s.get_last_lr()[0])
