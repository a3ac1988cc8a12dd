"""Every OpInfo spec: forward and backward against PyTorch, gradcheck and gradgradcheck (float64).

A registered Function that no spec claims fails test_every_function_is_covered.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import tinygrad_cnn as tc
import tinygrad_cnn.nn  # noqa: F401  (registers every family's Functions)
from opinfo import all_opinfos
from tinygrad_cnn.engine import REGISTRY, Function
from tinygrad_cnn.testing import gradcheck, gradgradcheck

SPECS = all_opinfos()
IDS = [s.name for s in SPECS]


def _inputs(spec, arrays, dtype=np.float64):
    ours, theirs = [], []
    for i, a in enumerate(arrays):
        a = np.asarray(a)
        diff = a.dtype.kind == "f" and (spec.differentiable is None or i in spec.differentiable)
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        ours.append(tc.Tensor(a.copy(), requires_grad=diff and spec.grad))
        theirs.append(torch.tensor(a.copy(), requires_grad=diff and spec.grad))
    return ours, theirs


def _as_list(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _compare(ours, theirs, atol, rtol, what):
    ours, theirs = _as_list(ours), _as_list(theirs)
    assert len(ours) == len(theirs), f"{what}: {len(ours)} outputs vs torch's {len(theirs)}"
    for k, (o, t) in enumerate(zip(ours, theirs)):
        t = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
        assert o.shape == t.shape, f"{what} output {k}: shape {o.shape} vs torch {t.shape}"
        np.testing.assert_allclose(o.data, t, atol=atol, rtol=rtol, err_msg=f"{what} output {k}")


@pytest.mark.parametrize("spec", SPECS, ids=IDS)
@given(data=st.data())
def test_forward_backward_vs_torch(spec, data):
    arrays = spec.sample(data.draw)
    ours, theirs = _inputs(spec, arrays)
    out, tout = spec.fn(*ours), spec.torch_fn(*theirs)
    _compare(out, tout, spec.atol, spec.rtol, "forward")
    # float32 forward agrees too (looser tolerance)
    o32, t32 = _inputs(spec, arrays, np.float32)
    _compare(spec.fn(*o32), spec.torch_fn(*t32), 1e-4, 1e-3, "float32 forward")
    if not spec.grad:
        return
    outs = [o for o in _as_list(out) if o.requires_grad]
    touts = [t for t in _as_list(tout) if isinstance(t, torch.Tensor) and t.requires_grad]
    rng = np.random.default_rng(len(spec.name))
    ups = [rng.standard_normal(o.shape) for o in outs]     # a non-uniform upstream gradient
    diff = [t for t in ours if t.requires_grad]
    tdiff = [t for t in theirs if t.requires_grad]
    got = tc.autograd.grad(outs, diff, [tc.Tensor(u) for u in ups], allow_unused=True)
    want = torch.autograd.grad(touts, tdiff, [torch.tensor(u) for u in ups], allow_unused=True)
    for k, (g, w) in enumerate(zip(got, want)):
        w = np.zeros(diff[k].shape) if w is None else w.numpy()
        g = np.zeros(diff[k].shape) if g is None else g.data
        np.testing.assert_allclose(g, w, atol=spec.atol, rtol=spec.rtol, err_msg=f"gradient of input {k}")


@pytest.mark.parametrize("spec", [s for s in SPECS if s.grad], ids=[s.name for s in SPECS if s.grad])
@given(data=st.data())
def test_gradcheck(spec, data):
    ours, _ = _inputs(spec, spec.sample(data.draw))
    assert gradcheck(spec.fn, ours, eps=spec.eps, atol=spec.gradcheck_atol, rtol=spec.gradcheck_rtol)


GG = [s for s in SPECS if s.grad and s.gradgrad]


@pytest.mark.parametrize("spec", GG, ids=[s.name for s in GG])
@given(data=st.data())
def test_gradgradcheck(spec, data):
    ours, _ = _inputs(spec, spec.sample(data.draw))
    assert gradgradcheck(spec.fn, ours, eps=spec.eps, atol=spec.gradcheck_atol, rtol=spec.gradcheck_rtol)


def test_every_function_is_covered(monkeypatch):
    """Each spec's claimed Functions really run (forward or backward), and together the specs
    claim every Function registered in tinygrad_cnn."""
    seen = set()
    orig = Function.apply.__func__

    def recording(cls, *args):
        seen.add(cls.__name__)
        return orig(cls, *args)

    monkeypatch.setattr(Function, "apply", classmethod(recording))
    claimed = set()
    for spec in SPECS:
        seen.clear()
        arrays = _draw_once(spec)
        ours, _ = _inputs(spec, arrays)
        outs = [o for o in _as_list(spec.fn(*ours)) if isinstance(o, tc.Tensor) and o.requires_grad]
        diff = [t for t in ours if t.requires_grad]
        if outs and diff:
            seeds = [tc.Tensor(np.ones(o.shape, o.dtype), requires_grad=True) for o in outs]
            gs = tc.autograd.grad(outs, diff, seeds, create_graph=True, allow_unused=True)
            gs = [g for g in gs if g is not None and g.requires_grad]
            if gs:   # second order too: ops that only run inside gradients are covered here
                tc.autograd.grad([sum(g.sum() for g in gs)], diff + seeds, allow_unused=True)
        missing = spec.ops - seen
        assert not missing, f"spec {spec.name} claims {missing} but they never ran (ran: {sorted(seen)})"
        claimed |= spec.ops
    uncovered = set(REGISTRY) - claimed
    assert not uncovered, f"Functions with no OpInfo spec (add one in tests/opinfo_*.py): {sorted(uncovered)}"


def _draw_once(spec):
    """One sample from the spec's strategy, deterministically."""
    from hypothesis import given as _given, settings, Phase
    box = []

    @settings(max_examples=1, phases=[Phase.generate], database=None, derandomize=True)
    @_given(st.data())
    def draw(data):
        box.append(spec.sample(data.draw))
    draw()
    return box[0]


@settings(deadline=None, max_examples=60)
@given(st.data(), st.sampled_from([np.float32, np.float64, np.int32, np.int64]), st.booleans())
def test_sum_over_several_dims_is_numpys_sum(data, dtype, keepdim):
    """The reduction behind Tensor.sum (merged neighbouring dims, innermost run first) gives
    NumPy's dtype and shape, and its values (exactly for integers)."""
    from hypothesis.extra import numpy as hnp
    from tinygrad_cnn.ops.reduce import sum_dims
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))
    a = data.draw(hnp.arrays(dtype, shape, elements=st.integers(-1000, 1000)))
    dims = tuple(sorted(data.draw(st.sets(st.integers(0, max(0, a.ndim - 1)), max_size=a.ndim))))
    got, want = sum_dims(a, dims, keepdim), np.sum(a, axis=dims, keepdims=keepdim)
    assert got.dtype == want.dtype and got.shape == want.shape
    if a.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-3)
    else:
        np.testing.assert_array_equal(got, want)
