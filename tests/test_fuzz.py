"""Fuzzing the public API against PyTorch: bad arguments fail loudly and cleanly, never crash.

For every op of ``tinygrad_cnn.nn.functional`` and the core Tensor ops, hypothesis draws
random shapes, dtypes (float32 / float64 / int64 / bool), argument values (negative, zero,
huge, wrong types) and data (with NaN / inf / huge values). Our call runs in a separate
worker process, so that a segfault, an abort or a hang in a kernel is caught and reported
with the arguments instead of killing the test run. Then:

* ours returns and PyTorch returns: the results (and, for finite float data, the gradients
  for a random upstream gradient) must match, dtype included;
* ours raises: it must be a ValueError, TypeError, RuntimeError or IndexError with a
  message -- never a Numba typing error, an AttributeError, a ZeroDivisionError, ...;
* ours returns where PyTorch raises: tolerated (a documented extension such as 'same'
  padding with stride > 1, or leniency such as integer inputs to softmax) and counted;
  ``FUZZ_REPORT=1`` prints every such case at the end of the run.

A second pass runs the kernel ops with ``NUMBA_DISABLE_JIT=1``, where the kernels are plain
Python and every out-of-range positive index raises: an IndexError coming out of
``tinygrad_cnn/kernels`` there is an out-of-bounds access the argument checks let through.
"""
from __future__ import annotations

import math
import os
import pickle
import select
import struct
import subprocess
import sys
import traceback
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ALLOWED = (ValueError, TypeError, RuntimeError, IndexError)
HANG_SECONDS = 60
REPORT = os.environ.get("FUZZ_REPORT", "") not in ("", "0")
COLLECT = os.environ.get("FUZZ_COLLECT", "") not in ("", "0")   # triage: list every failure, fail none
EXAMPLES_SCALE = float(os.environ.get("FUZZ_EXAMPLES_SCALE", "1"))

# ============================================================================ argument specs


class Arr:
    """A tensor argument: ``array`` becomes a tinygrad Tensor (ours) or a torch tensor (theirs);
    float arrays require grad when the op is differentiable."""

    def __init__(self, array: np.ndarray, grad: bool = True):
        self.array = array
        self.grad = grad

    def __repr__(self) -> str:
        a = self.array
        body = np.array2string(a, threshold=20, precision=3, separator=",") if a.size <= 40 else "..."
        body = " ".join(body.split())
        return f"Arr({a.dtype}{list(a.shape)} {body})"


class Spec:
    def __init__(self, args: list, kwargs: Optional[dict] = None, seed: int = 0):
        self.args, self.kwargs, self.seed = args, kwargs or {}, seed

    def __repr__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"({', '.join(map(repr, self.args))}{', ' if kw else ''}{kw})"


def _tensors(spec: Spec) -> List[Arr]:
    out = []
    for v in list(spec.args) + list(spec.kwargs.values()):
        if isinstance(v, Arr):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out += [u for u in v if isinstance(u, Arr)]
    return out


# ============================================================================ strategies

SPECIAL = [math.nan, math.inf, -math.inf, 1e30, -1e30, 0.0, -0.0, 1e-30, 1e4, -1e4]
BAD = [0, -1, -3, 1.5, "2", None, True, (), (1, 2, 3, 4, 5), [2, -1]]
HUGE = [10 ** 6, 2 ** 62]


def bad_or(draw, good, bad=BAD, rate=8):
    """A good value most of the time; with probability 1/rate one of the bad ones."""
    if draw(st.integers(0, rate - 1)) == 0:
        return draw(st.sampled_from(bad))
    return draw(good)


def dtype_of(draw, floats_only=False):
    if floats_only:
        return draw(st.sampled_from([np.float32, np.float64]))
    return draw(st.sampled_from([np.float32, np.float32, np.float64, np.float64, np.float64, np.int64, np.bool_]))


def array(draw, shape, dtype=None, special=True, low=-3, high=4, grad=True) -> Arr:
    dtype = dtype or dtype_of(draw)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    shape = tuple(shape)
    if dtype is np.bool_:
        a = rng.random(shape) < 0.5
    elif np.dtype(dtype).kind in "iu":
        a = rng.integers(low, high, shape).astype(dtype)
    else:
        a = rng.standard_normal(shape).astype(dtype)
        if special and a.size and draw(st.integers(0, 7)) == 0:
            for v in draw(st.lists(st.sampled_from(SPECIAL), min_size=1, max_size=3)):
                a.flat[rng.integers(a.size)] = v
    return Arr(a, grad)


def dims(draw, rank, lo=1, hi=4, zero_rate=25):
    """``rank`` sizes in [lo, hi]; now and then a 0 (empty tensors must not crash either)."""
    return tuple(0 if draw(st.integers(0, zero_rate - 1)) == 0 else draw(st.integers(lo, hi))
                 for _ in range(rank))


def int_or_tuple(draw, n, lo, hi):
    if draw(st.booleans()):
        return draw(st.integers(lo, hi))
    return tuple(draw(st.integers(lo, hi)) for _ in range(n))


def rank_for(draw, good_ranks, bad_rate=12):
    if draw(st.integers(0, bad_rate - 1)) == 0:
        return draw(st.integers(0, 6))
    return draw(st.sampled_from(good_ranks))


# ============================================================================ the op table


class Op:
    """One fuzzed entry point.

    gen(draw) -> Spec; ours(tc, *args, **kw) and theirs(torch, *args, **kw) run the call with
    Tensors built from the Arr arguments. ``reference`` replaces torch for the comparison when
    given (an op without a torch twin, or a documented difference), ``extension`` says which
    successful calls that torch rejects are intended, ``grad`` whether to compare gradients,
    ``kernel`` whether the op reaches Numba kernels (then it is also run without the JIT),
    ``same_nonfinite`` whether NaN/inf must appear at the same places as in PyTorch (not for
    convolutions: we multiply the zero padding by a NaN weight, PyTorch skips padded taps).
    """

    def __init__(self, name: str, gen: Callable, ours: Callable, theirs: Optional[Callable],
                 grad: bool = True, examples: int = 40, rtol: Optional[float] = None,
                 kernel: bool = False, compare_values: bool = True,
                 reference: Optional[Callable] = None, extension: Optional[Callable] = None,
                 same_nonfinite: bool = True):
        self.name, self.gen, self.ours, self.theirs = name, gen, ours, theirs
        self.same_nonfinite = same_nonfinite
        self.grad, self.examples, self.rtol, self.kernel = grad, examples, rtol, kernel
        self.compare_values, self.reference, self.extension = compare_values, reference, extension


OPS: Dict[str, Op] = {}


def op(*args, **kwargs) -> None:
    o = Op(*args, **kwargs)
    assert o.name not in OPS, o.name
    OPS[o.name] = o


def _F(lib):
    return lib.nn.functional


# ----------------------------------------------------------------------------- convolutions

def gen_conv(nd: int, transpose: bool):
    def gen(draw):
        groups = bad_or(draw, st.sampled_from([1, 1, 2]), BAD + [3])
        g = groups if type(groups) is int and 1 <= groups <= 3 else 1
        n, cin, cout = draw(st.integers(1, 2)), g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
        k = dims(draw, nd, 1, 3, zero_rate=40)
        spatial = dims(draw, nd, 1, 5, zero_rate=40)
        rank = rank_for(draw, [nd + 2, nd + 2, nd + 2, nd + 1])
        xshape = ((n, cin) + spatial)[-rank:] if rank <= nd + 2 else (1,) * (rank - nd - 2) + (n, cin) + spatial
        wshape = ((cin, cout // g) if transpose else (cout, cin // g)) + k
        if draw(st.integers(0, 15)) == 0:
            wshape = (draw(st.integers(1, 3)),) + wshape[1:]
        dt = dtype_of(draw)
        wdt = dt if draw(st.integers(0, 9)) else dtype_of(draw)
        bias_ch = cout
        bias = None if draw(st.booleans()) else array(draw, (bias_ch if draw(st.integers(0, 15)) else bias_ch + 1,),
                                                      wdt)
        kw = dict(bias=bias,
                  stride=bad_or(draw, st.integers(1, 3), BAD + (HUGE[:1] if transpose else HUGE)),
                  dilation=bad_or(draw, st.integers(1, 2), BAD + HUGE))
        if transpose:
            kw["padding"] = bad_or(draw, st.integers(0, 2), BAD)
            kw["output_padding"] = bad_or(draw, st.integers(0, 1), BAD)
        else:
            kw["padding"] = bad_or(draw, st.sampled_from([0, 1, 2, "same", "valid"]), BAD + ["full"])
            if draw(st.integers(0, 5)) == 0:
                kw["padding"] = int_or_tuple(draw, nd, 0, 2)
        if draw(st.integers(0, 5)) == 0:
            kw["stride"] = int_or_tuple(draw, nd, 1, 3)
        kw["groups"] = groups
        return Spec([array(draw, xshape, dt), array(draw, wshape, wdt)], kw)
    return gen


def _same_with_stride(spec: Spec) -> bool:
    s = spec.kwargs.get("stride", 1)
    return spec.kwargs.get("padding") == "same" and s not in (1, (1,), (1, 1), (1, 1, 1))


for _nd in (1, 2, 3):
    op(f"conv{_nd}d", gen_conv(_nd, False),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"conv{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"conv{_nd}d")(*a, **k),
       kernel=True, examples=60, extension=_same_with_stride,   # TF-style strided 'same' is ours only
       same_nonfinite=False)
    op(f"conv_transpose{_nd}d", gen_conv(_nd, True),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"conv_transpose{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"conv_transpose{_nd}d")(*a, **k),
       kernel=True, examples=50, same_nonfinite=False)


# ----------------------------------------------------------------------------- pooling

def _pool_input(draw, nd, floats_only=False):
    rank = rank_for(draw, [nd + 2, nd + 2, nd + 1])
    shape = dims(draw, rank, 1, 6, zero_rate=30)
    return array(draw, shape, dtype_of(draw) if not floats_only else None)


def gen_max_pool(nd):
    def gen(draw):
        kw = dict(kernel_size=bad_or(draw, st.integers(1, 3) | st.tuples(*[st.integers(1, 3)] * nd), BAD + HUGE),
                  stride=bad_or(draw, st.none() | st.integers(1, 3), BAD + HUGE),
                  padding=bad_or(draw, st.integers(0, 1), BAD + HUGE),
                  dilation=bad_or(draw, st.integers(1, 2), BAD + HUGE),
                  ceil_mode=draw(st.booleans()), return_indices=draw(st.booleans()))
        return Spec([_pool_input(draw, nd)], kw)
    return gen


def gen_avg_pool(nd):
    def gen(draw):
        kw = dict(kernel_size=bad_or(draw, st.integers(1, 3) | st.tuples(*[st.integers(1, 3)] * nd), BAD + HUGE),
                  stride=bad_or(draw, st.none() | st.integers(1, 3), BAD + HUGE),
                  padding=bad_or(draw, st.integers(0, 1), BAD + HUGE),
                  ceil_mode=draw(st.booleans()), count_include_pad=draw(st.booleans()))
        if nd > 1 and draw(st.integers(0, 3)) == 0:
            kw["divisor_override"] = bad_or(draw, st.integers(1, 5), [0, -2, 1.5, "3"])
        return Spec([_pool_input(draw, nd)], kw)
    return gen


def gen_adaptive(nd, with_indices):
    def gen(draw):
        size = bad_or(draw, st.integers(1, 4) | st.tuples(*[st.none() | st.integers(1, 4)] * nd),
                      [0, -1, 1.5, "2", None, (1,) * (nd + 1), (-1,) * nd])
        kw = dict(return_indices=draw(st.booleans())) if with_indices else {}
        return Spec([_pool_input(draw, nd), size], kw)
    return gen


for _nd in (1, 2, 3):
    op(f"max_pool{_nd}d", gen_max_pool(_nd), lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"max_pool{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"max_pool{_nd}d")(*a, **k), kernel=True)
    op(f"avg_pool{_nd}d", gen_avg_pool(_nd), lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"avg_pool{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"avg_pool{_nd}d")(*a, **k), kernel=True)
    op(f"adaptive_avg_pool{_nd}d", gen_adaptive(_nd, False),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"adaptive_avg_pool{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"adaptive_avg_pool{_nd}d")(*a, **k), kernel=True,
       examples=30)
    op(f"adaptive_max_pool{_nd}d", gen_adaptive(_nd, True),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"adaptive_max_pool{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"adaptive_max_pool{_nd}d")(*a, **k), kernel=True,
       examples=30)


# ----------------------------------------------------------------------------- max unpooling

def gen_unpool(nd):
    def gen(draw):
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 3))
        spatial = tuple(draw(st.integers(k, 6)) for _ in range(nd))
        n, c = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        x = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))).standard_normal((n, c) + spatial)
        import torch   # only the main process generates specs
        vals, idx = getattr(torch.nn.functional, f"max_pool{nd}d")(torch.tensor(x), k, s, return_indices=True)
        vals, idx = vals.numpy(), idx.numpy()
        out_spatial = tuple((i - 1) * s + k for i in vals.shape[2:])
        plane = int(np.prod(out_spatial))
        mutation = draw(st.integers(0, 9))
        if mutation == 0 and idx.size:        # an out-of-range index: must raise before any kernel
            idx = idx.copy()
            idx.flat[draw(st.integers(0, idx.size - 1))] = draw(st.sampled_from([-1, plane, plane + 7, 2 ** 40,
                                                                                 -(2 ** 40)]))
        elif mutation == 1:                   # random in-range indices: collisions allowed
            idx = np.random.default_rng(1).integers(0, max(plane, 1), idx.shape)
        elif mutation == 2:
            idx = idx.astype(draw(st.sampled_from([np.float32, np.int32, np.bool_])))
        elif mutation == 3:
            idx = idx.reshape(-1)
        dt = draw(st.sampled_from([np.float32, np.float64, np.float64, np.int64]))
        kw = dict(kernel_size=bad_or(draw, st.just(k), BAD), stride=bad_or(draw, st.just(s), BAD + [None]),
                  padding=bad_or(draw, st.just(0), [1, -1, 1.5]))
        if draw(st.integers(0, 3)) == 0:
            extra = draw(st.integers(-1, 3))
            size = tuple(o + extra for o in out_spatial)
            kw["output_size"] = size if draw(st.booleans()) else (n, c) + size
        if draw(st.integers(0, 5)) == 0:   # unbatched
            return Spec([array(draw, vals.shape[1:], dt), Arr(idx[0] if idx.ndim > 1 else idx, False)], kw)
        return Spec([array(draw, vals.shape, dt), Arr(idx, False)], kw)
    return gen


def _scatter_reference(nd):
    """max_unpool as a scatter-ADD (ours, documented): PyTorch keeps one of colliding values.
    Used for the comparison only when indices collide; None (use torch) otherwise."""
    def ref(torch, x, indices, kernel_size, stride=None, padding=0, output_size=None):
        flat = indices.reshape(indices.shape[:-nd] + (-1,))
        if all(len(np.unique(p)) == p.size for p in flat.reshape(-1, flat.shape[-1])):
            return None
        out = getattr(torch.nn.functional, f"max_unpool{nd}d")(torch.tensor(x), torch.tensor(indices),
                                                               kernel_size, stride, padding, output_size)
        res = np.zeros(out.shape, x.dtype)
        lead = int(np.prod(x.shape[:-nd]))
        r2 = res.reshape(lead, -1)
        np.add.at(r2, (np.arange(lead)[:, None], indices.reshape(lead, -1)), x.reshape(lead, -1))
        return res
    return ref


for _nd in (1, 2, 3):
    op(f"max_unpool{_nd}d", gen_unpool(_nd),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"max_unpool{_nd}d")(*a, **k),
       lambda lib, *a, _nd=_nd, **k: getattr(_F(lib), f"max_unpool{_nd}d")(*a, **k), kernel=True,
       reference=_scatter_reference(_nd))


# ----------------------------------------------------------------------------- resampling

def gen_interpolate(draw):
    rank = rank_for(draw, [3, 4, 5])
    x = array(draw, dims(draw, rank, 1, 4, zero_rate=40))
    nd = max(rank - 2, 1)
    mode = draw(st.sampled_from(["nearest", "nearest-exact", "linear", "bilinear", "trilinear", "area",
                                 "bilinear" if rank == 4 else "linear" if rank == 3 else "trilinear",
                                 "bicubic", "cubic"]))
    kw: Dict[str, Any] = dict(mode=mode)
    which = draw(st.integers(0, 9))
    if which < 5:
        kw["size"] = bad_or(draw, st.integers(1, 6) | st.tuples(*[st.integers(1, 6)] * nd), [0, -1, 1.5, (1,) * 4])
    elif which < 9:
        kw["scale_factor"] = bad_or(draw, st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0, 2.7]) |
                                    st.tuples(*[st.sampled_from([0.6, 1.0, 2.0, 2.5])] * nd),
                                    [0.0, -1.0, math.nan, math.inf, "2"])
        kw["recompute_scale_factor"] = draw(st.sampled_from([None, True, False]))
    elif draw(st.booleans()):
        kw["size"], kw["scale_factor"] = 2, 2.0
    if draw(st.integers(0, 2)) == 0:
        kw["align_corners"] = draw(st.booleans())
    return Spec([x], kw)


op("interpolate", gen_interpolate, lambda lib, *a, **k: _F(lib).interpolate(*a, **k),
   lambda lib, *a, **k: _F(lib).interpolate(*a, **k), kernel=True, examples=80)


def gen_bed_of_nails(draw):
    rank = rank_for(draw, [3, 4, 5])
    x = array(draw, dims(draw, rank, 1, 4, zero_rate=40))
    scale = bad_or(draw, st.integers(1, 3) | st.tuples(*[st.integers(1, 3)] * max(rank - 2, 1)), BAD + HUGE[:1])
    return Spec([x], dict(scale_factor=scale))


def _bed_of_nails_torch(torch, x, scale_factor=2):
    """PyTorch has no bed-of-nails op: a transposed conv with a one-hot kernel, stride = kernel."""
    nd = x.dim() - 2
    if nd not in (1, 2, 3):
        raise ValueError(f"bed of nails needs a 3-d to 5-d input, got {x.dim()}-d")
    s = (scale_factor,) * nd if isinstance(scale_factor, int) else tuple(scale_factor)
    kernel = torch.zeros((1, 1) + s, dtype=x.dtype)
    kernel[(0, 0) + (0,) * nd] = 1
    n, c = x.shape[:2]
    conv_t = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    out = conv_t(x.reshape((n * c, 1) + tuple(x.shape[2:])), kernel, stride=s)
    return out.reshape((n, c) + tuple(out.shape[2:]))


op("bed_of_nails", gen_bed_of_nails, lambda lib, *a, **k: _F(lib).bed_of_nails(*a, **k), _bed_of_nails_torch,
   kernel=True)


# ----------------------------------------------------------------------------- losses

REDUCTION = st.sampled_from(["mean", "mean", "sum", "none"])
BAD_REDUCTION = ["avg", None, 1]


def gen_cross_entropy(nll: bool):
    def gen(draw):
        rank = rank_for(draw, [2, 2, 1, 3])
        shape = dims(draw, rank, 1, 4, zero_rate=30)
        x = array(draw, shape)
        c = shape[1] if rank >= 2 else (shape[0] if rank == 1 else 1)
        tshape = (shape[:1] + shape[2:]) if rank >= 2 else ()
        if not nll and draw(st.integers(0, 3)) == 0:          # class probabilities
            t = array(draw, shape if draw(st.integers(0, 9)) else shape[::-1], special=False)
            t.array = np.abs(t.array).astype(x.array.dtype if x.array.dtype.kind == "f" else np.float32)
            t.grad = False
        else:
            low = -1 if draw(st.integers(0, 6)) == 0 else 0                 # sometimes out of range
            high = max(c + (1 if draw(st.integers(0, 6)) == 0 else 0), low + 1)
            t = array(draw, tshape, np.int64, low=low, high=high, grad=False)
            if draw(st.integers(0, 5)) == 0 and t.array.size:
                t.array.flat[0] = -100
        kw = dict(reduction=bad_or(draw, REDUCTION, BAD_REDUCTION, rate=12))
        if draw(st.integers(0, 3)) == 0:
            kw["weight"] = array(draw, (c if draw(st.integers(0, 9)) else c + 1,), x.array.dtype, special=False)
            kw["weight"].array = np.abs(kw["weight"].array) + 0.1 if kw["weight"].array.dtype.kind == "f" \
                else kw["weight"].array
            kw["weight"].grad = False
        if draw(st.integers(0, 4)) == 0:
            kw["ignore_index"] = draw(st.sampled_from([-100, 0, 1, -1]))
        if not nll and draw(st.integers(0, 3)) == 0:
            kw["label_smoothing"] = bad_or(draw, st.sampled_from([0.0, 0.1, 0.5, 1.0]), [-0.1, 1.5])
        return Spec([x, t], kw)
    return gen


op("cross_entropy", gen_cross_entropy(False), lambda lib, *a, **k: _F(lib).cross_entropy(*a, **k),
   lambda lib, *a, **k: _F(lib).cross_entropy(*a, **k), examples=60)
op("nll_loss", gen_cross_entropy(True), lambda lib, *a, **k: _F(lib).nll_loss(*a, **k),
   lambda lib, *a, **k: _F(lib).nll_loss(*a, **k))


def gen_pointwise_loss(draw):
    shape = dims(draw, rank_for(draw, [1, 2, 3, 0]), 1, 4)
    tshape = shape
    r = draw(st.integers(0, 9))
    if r == 0:
        tshape = shape[1:]            # broadcastable: both warn
    elif r == 1:
        tshape = shape + (2,)          # not broadcastable (or broadcasting up)
    x, t = array(draw, shape), array(draw, tshape)
    return Spec([x, t], dict(reduction=bad_or(draw, REDUCTION, BAD_REDUCTION, rate=12)))


op("mse_loss", gen_pointwise_loss, lambda lib, *a, **k: _F(lib).mse_loss(*a, **k),
   lambda lib, *a, **k: _F(lib).mse_loss(*a, **k))
op("l1_loss", gen_pointwise_loss, lambda lib, *a, **k: _F(lib).l1_loss(*a, **k),
   lambda lib, *a, **k: _F(lib).l1_loss(*a, **k))


def gen_bce(logits: bool):
    def gen(draw):
        shape = dims(draw, rank_for(draw, [1, 2, 3]), 1, 4)
        x = array(draw, shape)
        if not logits and x.array.dtype.kind == "f" and draw(st.integers(0, 5)):
            x.array = (1 / (1 + np.exp(-x.array.astype(np.float64)))).astype(x.array.dtype)   # in [0, 1]
        t = array(draw, shape if draw(st.integers(0, 9)) else shape + (1,), special=False)
        if t.array.dtype.kind == "f":
            t.array = np.clip(np.abs(t.array), 0, 1)
        t.grad = False
        kw = dict(reduction=bad_or(draw, REDUCTION, BAD_REDUCTION, rate=12))
        if draw(st.integers(0, 3)) == 0:
            kw["weight"] = array(draw, shape[-1:], x.array.dtype, special=False, grad=False)
        if logits and draw(st.integers(0, 3)) == 0:
            kw["pos_weight"] = array(draw, shape[-1:], x.array.dtype, special=False, grad=False)
        return Spec([x, t], kw)
    return gen


op("binary_cross_entropy", gen_bce(False), lambda lib, *a, **k: _F(lib).binary_cross_entropy(*a, **k),
   lambda lib, *a, **k: _F(lib).binary_cross_entropy(*a, **k))
op("binary_cross_entropy_with_logits", gen_bce(True),
   lambda lib, *a, **k: _F(lib).binary_cross_entropy_with_logits(*a, **k),
   lambda lib, *a, **k: _F(lib).binary_cross_entropy_with_logits(*a, **k))


# ----------------------------------------------------------------------------- activations, pad, linear

def gen_unary(extra=None):
    def gen(draw):
        x = array(draw, dims(draw, rank_for(draw, [0, 1, 2, 3, 4]), 1, 4))
        return Spec([x], extra(draw) if extra else {})
    return gen


for _name, _extra in [
        ("relu", None), ("sigmoid", None), ("tanh", None),
        ("leaky_relu", lambda d: dict(negative_slope=bad_or(d, st.sampled_from([0.01, 0.2, -1.0, 0.0]), ["a", None]))),
        ("gelu", lambda d: dict(approximate=bad_or(d, st.sampled_from(["none", "tanh"]), ["erf", None]))),
        ("softplus", lambda d: dict(beta=bad_or(d, st.sampled_from([1.0, 2.0, 0.5]), [0.0, -1.0, "b"]),
                                    threshold=bad_or(d, st.sampled_from([20.0, 1.0]), [-1.0, "t"])))]:
    op(_name, gen_unary(_extra), lambda lib, *a, _n=_name, **k: getattr(_F(lib), _n)(*a, **k),
       lambda lib, *a, _n=_name, **k: getattr(_F(lib), _n)(*a, **k))


def gen_softmax(draw):
    x = array(draw, dims(draw, rank_for(draw, [1, 2, 3]), 1, 4))
    return Spec([x], dict(dim=bad_or(draw, st.integers(-x.array.ndim, max(x.array.ndim - 1, 0)),
                                     [x.array.ndim, -x.array.ndim - 1, 1.5, "0", (0, 1)])))


def gen_logsumexp(draw):
    x = array(draw, dims(draw, rank_for(draw, [1, 2, 3]), 1, 4))
    nd = max(x.array.ndim, 1)
    return Spec([x], dict(dim=bad_or(draw, st.integers(-nd, nd - 1) | st.just(tuple(range(nd))),
                                     [nd, 1.5, (0, 0)]), keepdim=draw(st.booleans())))


for _name in ("softmax", "log_softmax"):
    op(_name, gen_softmax, lambda lib, *a, _n=_name, **k: getattr(_F(lib), _n)(*a, **k),
       lambda lib, *a, _n=_name, **k: getattr(_F(lib), _n)(*a, **k))
op("logsumexp", gen_logsumexp, lambda lib, *a, **k: _F(lib).logsumexp(*a, **k),
   lambda torch, x, dim, keepdim=False: torch.logsumexp(x, dim, keepdim))


def gen_pad(draw):
    x = array(draw, dims(draw, rank_for(draw, [1, 2, 3, 4, 5]), 1, 4))
    n = draw(st.sampled_from([2, 2, 4, 4, 6, 1, 3, 0, 8]))
    pad = tuple(draw(st.integers(-2, 3)) for _ in range(n))
    if draw(st.integers(0, 9)) == 0:
        pad = draw(st.sampled_from([(10 ** 4, 0), (1.5, 1), ("1", 1), None, (-5, -5)]))
    mode = draw(st.sampled_from(["constant", "constant", "reflect", "replicate", "circular", "wrap"]))
    kw = dict(mode=mode)
    if mode == "constant" and draw(st.booleans()):
        kw["value"] = draw(st.sampled_from([0.0, 1.5, -2.0, math.nan, math.inf]))
    return Spec([x, pad], kw)


op("pad", gen_pad, lambda lib, *a, **k: _F(lib).pad(*a, **k), lambda lib, *a, **k: _F(lib).pad(*a, **k),
   examples=60)


def gen_linear(draw):
    lead = dims(draw, rank_for(draw, [1, 2, 2, 3]) - 1, 1, 3)
    fin, fout = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dt = dtype_of(draw)
    x = array(draw, lead + (fin if draw(st.integers(0, 9)) else fin + 1,), dt)
    w = array(draw, (fout, fin), dt if draw(st.integers(0, 9)) else dtype_of(draw))
    b = None if draw(st.booleans()) else array(draw, (fout if draw(st.integers(0, 9)) else fout + 1,), dt)
    return Spec([x, w, b])


op("linear", gen_linear, lambda lib, *a, **k: _F(lib).linear(*a, **k),
   lambda lib, *a, **k: _F(lib).linear(*a, **k))


def gen_dropout(fn):
    def gen(draw):
        rank = {"dropout": [1, 2, 3], "dropout1d": [2, 3], "dropout2d": [3, 4], "dropout3d": [4, 5]}[fn]
        x = array(draw, dims(draw, rank_for(draw, rank), 1, 4))
        p = bad_or(draw, st.sampled_from([0.0, 0.5, 1.0, 0.2]), [-0.1, 1.5, math.nan])
        return Spec([x], dict(p=p, training=draw(st.booleans())))
    return gen


def _dropout_deterministic(spec):
    return not spec.kwargs["training"] or spec.kwargs["p"] in (0, 0.0)


for _name in ("dropout", "dropout1d", "dropout2d", "dropout3d"):
    op(_name, gen_dropout(_name), lambda lib, *a, _n=_name, **k: getattr(_F(lib), _n)(*a, **k),
       lambda lib, *a, _n=_name, **k: getattr(_F(lib), _n)(*a, **k), grad=False, compare_values=False)


# ----------------------------------------------------------------------------- normalisation

def gen_batch_norm(draw):
    rank = rank_for(draw, [2, 3, 4, 5])
    shape = dims(draw, rank, 1, 3)
    c = shape[1] if rank >= 2 else 1
    dt = dtype_of(draw, floats_only=draw(st.integers(0, 5)) > 0)
    training = draw(st.booleans())

    def stat(var):
        if draw(st.integers(0, 4)) == 0 and training:
            return None
        a = array(draw, (c if draw(st.integers(0, 15)) else c + 1,), dt, special=False, grad=False)
        if var and a.array.dtype.kind == "f":
            a.array = np.abs(a.array) + 0.5
        return a
    mean, var = stat(False), stat(True)
    kw = dict(weight=None if draw(st.booleans()) else array(draw, (c,), dt),
              bias=None if draw(st.booleans()) else array(draw, (c,), dt),
              training=training, momentum=draw(st.sampled_from([0.1, 0.5])),
              eps=bad_or(draw, st.sampled_from([1e-5, 1e-3]), [0.0, -1.0]))
    return Spec([array(draw, shape, dt), mean, var], kw)


op("batch_norm", gen_batch_norm, lambda lib, *a, **k: _F(lib).batch_norm(*a, **k),
   lambda lib, *a, **k: _F(lib).batch_norm(*a, **k))


def gen_layer_norm(draw):
    shape = dims(draw, rank_for(draw, [2, 3, 4]), 1, 4)
    k = draw(st.integers(1, max(len(shape), 1)))
    ns = shape[len(shape) - k:] if draw(st.integers(0, 9)) else (7,)
    dt = dtype_of(draw)
    kw = dict(weight=None if draw(st.booleans()) else array(draw, ns, dt),
              bias=None if draw(st.booleans()) else array(draw, ns, dt),
              eps=draw(st.sampled_from([1e-5, 1e-2])))
    return Spec([array(draw, shape, dt), list(ns) if draw(st.booleans()) else tuple(ns)], kw)


op("layer_norm", gen_layer_norm, lambda lib, *a, **k: _F(lib).layer_norm(*a, **k),
   lambda lib, *a, **k: _F(lib).layer_norm(*a, **k))


def gen_group_norm(draw):
    shape = dims(draw, rank_for(draw, [2, 3, 4]), 1, 4)
    c = shape[1] if len(shape) >= 2 else 1
    groups = bad_or(draw, st.sampled_from([g for g in range(1, c + 1) if c % g == 0] or [1]), [0, -1, c + 1, 1.5])
    dt = dtype_of(draw)
    kw = dict(weight=None if draw(st.booleans()) else array(draw, (c,), dt),
              bias=None if draw(st.booleans()) else array(draw, (c,), dt), eps=1e-5)
    return Spec([array(draw, shape, dt), groups], kw)


op("group_norm", gen_group_norm, lambda lib, *a, **k: _F(lib).group_norm(*a, **k),
   lambda lib, *a, **k: _F(lib).group_norm(*a, **k))


# ----------------------------------------------------------------------------- core Tensor ops

def _broadcast_partner(draw, shape):
    r = draw(st.integers(0, 5))
    if r == 0:
        return shape[1:]
    if r == 1:
        return tuple(1 if draw(st.booleans()) else s for s in shape)
    if r == 2:
        return dims(draw, len(shape), 1, 4)          # often not broadcastable
    return shape


def gen_binary(draw):
    shape = dims(draw, rank_for(draw, [0, 1, 2, 3]), 1, 3)
    a = array(draw, shape)
    if draw(st.integers(0, 3)) == 0:
        b = draw(st.sampled_from([2, -1, 0, 1.5, -0.5, True, 0.0, 3]))
    else:
        b = array(draw, _broadcast_partner(draw, shape))
    return Spec([a, b], dict(name=draw(st.sampled_from(["add", "sub", "mul", "truediv", "pow", "radd", "rsub",
                                                         "rmul", "rtruediv"]))))


def _binary(lib, a, b, name):
    import operator
    if name.startswith("r"):
        return getattr(operator, name[1:])(b, a)
    return getattr(operator, name)(a, b)


op("binary", gen_binary, _binary, _binary, examples=80)


def gen_matmul(draw):
    ra, rb = rank_for(draw, [1, 2, 2, 3]), rank_for(draw, [1, 2, 2, 3])
    k = draw(st.integers(1, 4))
    sa = dims(draw, ra - 1, 1, 3) + (k,) if ra >= 1 else ()
    sb = ((k,) + dims(draw, rb - 1, 1, 3)) if rb == 1 else dims(draw, rb - 2, 1, 3) + (k, draw(st.integers(1, 3))) \
        if rb >= 2 else ()
    if draw(st.integers(0, 7)) == 0 and sb:
        sb = sb[:-2] + (k + 1,) + sb[-1:] if len(sb) >= 2 else (k + 1,)
    dt = dtype_of(draw)
    return Spec([array(draw, sa, dt), array(draw, sb, dt if draw(st.integers(0, 5)) else dtype_of(draw))])


op("matmul", gen_matmul, lambda lib, a, b: a @ b, lambda lib, a, b: a @ b, examples=60)


def gen_reduce(draw):
    x = array(draw, dims(draw, rank_for(draw, [0, 1, 2, 3]), 1, 4))
    nd = x.array.ndim
    name = draw(st.sampled_from(["sum", "mean", "amax", "amin", "max", "min", "var", "std", "argmax", "argmin",
                                 "logsumexp"]))
    kw: Dict[str, Any] = {}
    choice = draw(st.integers(0, 4))
    if choice == 0 and name not in ("logsumexp",):
        pass                                                     # all dims
    elif choice == 1 and name in ("sum", "mean", "amax", "amin", "var", "std", "logsumexp") and nd:
        kw["dim"] = tuple(sorted(draw(st.sets(st.integers(0, nd - 1), min_size=1))))
    else:
        kw["dim"] = bad_or(draw, st.integers(-max(nd, 1), max(nd, 1) - 1), [nd + 1, -nd - 2, 1.5, "0"])
    if "dim" in kw and draw(st.booleans()):
        kw["keepdim"] = True
    return Spec([x], dict(name=name, kw=kw))


def _reduce(lib, x, name, kw):
    return getattr(x, name)(**kw)


op("reduce", gen_reduce, _reduce, _reduce, examples=100)


def gen_movement(draw):
    x = array(draw, dims(draw, rank_for(draw, [1, 2, 3, 4]), 1, 4))
    shape, nd = x.array.shape, x.array.ndim
    n1 = max(nd, 1)          # for the index ranges of a 0-d tensor (where only errors are expected)
    name = draw(st.sampled_from(["reshape", "permute", "transpose", "squeeze", "unsqueeze", "expand", "flatten",
                                 "getitem", "gather", "clamp", "where", "cat", "stack", "index_select",
                                 "exp", "log", "sqrt", "abs", "neg", "repeat", "split", "chunk"]))
    args: list = []
    if name == "reshape":
        n = int(np.prod(shape))
        args = [draw(st.sampled_from([(n,), (-1,), (1, n), (n, -1), (-1, -1), (n + 1,), (0,), (-2, n)]))]
    elif name == "permute":
        perm = draw(st.permutations(range(nd)))
        args = [tuple(perm) if draw(st.integers(0, 7)) else tuple(perm) + (0,)]
    elif name == "transpose":
        args = [draw(st.integers(-n1 - 1, n1)), draw(st.integers(-n1, n1 - 1))]
    elif name in ("squeeze", "unsqueeze"):
        args = [draw(st.integers(-nd - 2, nd + 1))]
    elif name == "expand":
        args = [tuple(draw(st.sampled_from([-1, s, 3, 1])) if s == 1 else draw(st.sampled_from([-1, s, s, 2]))
                      for s in shape)]
        if draw(st.booleans()):
            args[0] = (2,) + args[0]
    elif name == "flatten":
        args = [draw(st.integers(-n1, n1 - 1)), draw(st.integers(-n1, n1))]
    elif name == "getitem":
        def index(s):
            return draw(st.sampled_from([0, -1, s, -s - 1, slice(None), slice(1, None), slice(None, None, 2),
                                         slice(5, 1), None, Ellipsis]))
        idx = tuple(index(s) for s in shape[:draw(st.integers(1, n1))]) or (0,)
        if idx.count(Ellipsis) > 1:
            idx = tuple(i for i in idx if i is not Ellipsis)
        r = draw(st.integers(0, 4))
        if r == 0:         # an integer array index, sometimes out of range
            size = shape[0] if nd else 1
            idx = Arr(np.random.default_rng(0).integers(-size - 1, size + 1, (3,)), False)
        elif r == 1:       # a boolean mask
            idx = Arr(np.random.default_rng(1).random(shape) < 0.5, False)
        args = [idx]
    elif name in ("gather", "index_select"):
        d = draw(st.integers(0, n1 - 1))
        size = shape[d] if nd else 1
        high = max(size + (draw(st.integers(0, 5)) == 0), 1)          # sometimes one past the end
        low = -1 if name == "gather" and draw(st.integers(0, 5)) == 0 else 0
        ishape = (tuple(draw(st.integers(1, s)) if s else 0 for s in shape) or (1,)) if name == "gather" else (2,)
        args = [d, Arr(np.random.default_rng(2).integers(low, high, ishape), False)]
    elif name == "clamp":
        args = [draw(st.sampled_from([None, -0.5, 0, 1])), draw(st.sampled_from([None, 0.5, 2, -1]))]
    elif name == "repeat":
        args = [tuple(draw(st.integers(0, 2)) for _ in range(draw(st.integers(max(nd - 1, 0), nd + 1))))]
    elif name in ("split", "chunk"):
        args = [bad_or(draw, st.integers(1, 3) if name == "chunk" else st.integers(1, 3) | st.just([1, 1]),
                       [0, -1, 1.5]), draw(st.integers(-n1, n1 - 1))]
    elif name == "where":
        args = [Arr(np.random.default_rng(4).random(shape) < 0.5, False) if draw(st.integers(0, 7)) else
                Arr(np.ones(shape), False), array(draw, _broadcast_partner(draw, shape))]
    elif name in ("cat", "stack"):
        other = shape if draw(st.integers(0, 3)) else dims(draw, nd, 1, 4)
        args = [array(draw, other), draw(st.integers(-nd - 1, nd))]
    return Spec([x] + args, dict(name=name))


def _movement(lib, x, *args, name):
    if name == "getitem":
        return x[args[0]]
    if name == "where":
        return lib.where(args[0], x, args[1])
    if name in ("cat", "stack"):
        return getattr(lib, name)([x, args[0]], args[1])
    if name in ("reshape", "permute", "expand", "repeat"):
        return getattr(x, name)(*args[0])
    return getattr(x, name)(*args)


op("movement", gen_movement, _movement, _movement, examples=120)


def gen_constructor(draw):
    name = draw(st.sampled_from(["zeros", "ones", "full", "arange", "eye", "rand", "randn", "linspace", "randint"]))
    rank = draw(st.integers(0, 3))
    size = tuple(bad_or(draw, st.integers(0, 3), [-1, 1.5, "2", None, 10 ** 12]) for _ in range(rank))
    kw: Dict[str, Any] = {}
    if name in ("zeros", "ones", "rand", "randn") and draw(st.integers(0, 3)) == 0:
        kw["dtype"] = draw(st.sampled_from(["float32", "float64", "int64", "bool", "complex", "float"]))
    if name == "full":
        args: list = [size, draw(st.sampled_from([0, 1.5, -2, True, math.nan]))]
    elif name == "arange":
        args = [draw(st.sampled_from([0, 1, -2, 0.5])), draw(st.sampled_from([3, 5, -1, 2.5])),
                draw(st.sampled_from([1, 2, -1, 0.5, 0]))]
    elif name == "eye":
        args = [bad_or(draw, st.integers(0, 4), [-1, 1.5]), draw(st.sampled_from([None, 0, 2, 3]))]
    elif name == "linspace":
        args = [draw(st.sampled_from([0.0, -1.0])), draw(st.sampled_from([1.0, 5.0])),
                bad_or(draw, st.integers(0, 5), [-1, 1.5])]
    elif name == "randint":
        args = [draw(st.sampled_from([0, 3, -2])), draw(st.sampled_from([5, 3, 1])), size]
    else:
        args = list(size)
    return Spec(args, dict(name=name, kw=kw))


def _constructor(lib, *args, name, kw):
    kw = dict(kw)
    if "dtype" in kw:
        kw["dtype"] = getattr(lib, kw["dtype"], kw["dtype"]) if lib.__name__ == "torch" else kw["dtype"]
    return getattr(lib, name)(*args, **kw)


def _random_constructor(spec: Spec) -> bool:
    return spec.kwargs["name"] in ("rand", "randn", "randint")


op("constructors", gen_constructor, _constructor, _constructor, grad=False, compare_values=False)


# ============================================================================ the worker process


def _to_ours(v, tc, grad):
    if isinstance(v, Arr):
        t = tc.tensor(v.array.copy())
        if grad and v.grad and v.array.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    if isinstance(v, list) and any(isinstance(u, Arr) for u in v):
        return [_to_ours(u, tc, grad) for u in v]
    return v


def _outputs(result) -> list:
    """Tensor, tuple/namedtuple of Tensors -> list of Tensor-likes."""
    if isinstance(result, (tuple, list)):
        return list(result)
    return [result]


def _upstream(seed: int, k: int, shape, dtype) -> np.ndarray:
    return np.random.default_rng([seed, k]).standard_normal(shape).astype(dtype)


def run_ours(name: str, spec: Spec, want_grad: bool):
    """Runs in the worker. Returns ('ok', outputs, grads) or ('raise', type, message, where)."""
    import tinygrad_cnn as tc
    if name == "__crash__":      # for the harness's own test
        os.kill(os.getpid(), 11)
    if name == "__hang__":
        import time
        time.sleep(3600)
    o = OPS[name]
    grad = want_grad and o.grad
    args = [_to_ours(a, tc, grad) for a in spec.args]
    kwargs = {k: _to_ours(v, tc, grad) for k, v in spec.kwargs.items()}
    try:
        result = o.ours(tc, *args, **kwargs)
        outs = _outputs(result)
        arrays = [np.asarray(t.data if isinstance(t, tc.Tensor) else t) for t in outs]
        if not all(isinstance(t, tc.Tensor) for t in outs):
            return ("bad-return", repr(type(result)))
        grads = None
        leaves = [a for a in args + list(kwargs.values()) if isinstance(a, tc.Tensor) and a.requires_grad]
        differentiable = [t for t in outs if t.requires_grad]
        if grad and leaves and differentiable and all(np.all(np.isfinite(a.data)) for a in leaves + outs
                                                     if a.dtype.kind == "f"):
            total = None
            for k, t in enumerate(outs):
                if t.requires_grad:
                    term = (t * tc.tensor(_upstream(spec.seed, k, t.shape, t.dtype))).sum()
                    total = term if total is None else total + term
            total.backward()
            grads = [None if a.grad is None else np.asarray(a.grad.data) for a in leaves]
        return ("ok", arrays, grads)
    except BaseException as e:  # noqa: BLE001 - everything is reported to the main process
        tb = traceback.extract_tb(e.__traceback__)
        where = f"{tb[-1].filename}:{tb[-1].lineno}" if tb else "?"
        return ("raise", f"{type(e).__module__}.{type(e).__qualname__}", str(e), where,
                isinstance(e, ALLOWED), "".join(traceback.format_exception(type(e), e, e.__traceback__))[-3000:])


def _read_exact(f, n):
    buf = b""
    while len(buf) < n:
        chunk = f.read(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


def worker_main(side: str = "ours") -> None:
    """Serve calls of one side: ours (tinygrad_cnn) or theirs (PyTorch, which can crash too)."""
    import resource
    import warnings
    warnings.simplefilter("ignore")
    limit = 16 << 30         # a runaway allocation fails with MemoryError instead of taking the machine
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr
    if side == "torch":
        import torch
        torch.set_num_threads(1)
    else:
        import tinygrad_cnn  # noqa: F401  (import once, before the first request)
    ready = pickle.dumps("ready")
    out.write(struct.pack("<Q", len(ready)) + ready)
    out.flush()
    while True:
        try:
            n = struct.unpack("<Q", _read_exact(inp, 8))[0]
        except EOFError:
            return
        name, spec, want_grad = pickle.loads(_read_exact(inp, n))
        result = run_theirs(OPS[name], spec) if side == "torch" else run_ours(name, spec, want_grad)
        reply = pickle.dumps(result)
        out.write(struct.pack("<Q", len(reply)) + reply)
        out.flush()


class WorkerDied(Exception):
    pass


class Worker:
    """A child Python process that runs our side of each call."""

    def __init__(self, jit: bool = True, hang_seconds: float = HANG_SECONDS, side: str = "ours"):
        self.jit, self.hang_seconds, self.side = jit, hang_seconds, side
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        env = dict(os.environ, NUMBA_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        if not self.jit:
            env["NUMBA_DISABLE_JIT"] = "1"
        code = f"import sys; sys.path.insert(0, {HERE!r}); import test_fuzz; test_fuzz.worker_main({self.side!r})"
        self.log = open(os.devnull, "wb")
        self.proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, cwd=ROOT, env=env)
        if self._receive(timeout=300) != "ready":     # the imports may be slow on a busy machine
            raise WorkerDied("the worker did not start")

    def _receive(self, timeout: float):
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.stop()
            raise WorkerDied(f"HANG: no answer after {timeout} s")
        n = struct.unpack("<Q", _read_exact(self.proc.stdout, 8))[0]
        return pickle.loads(_read_exact(self.proc.stdout, n))

    def call(self, name: str, spec: Spec, want_grad: bool = True):
        payload = pickle.dumps((name, spec, want_grad))
        try:
            if self.proc is None or self.proc.poll() is not None:
                self.start()
            self.proc.stdin.write(struct.pack("<Q", len(payload)) + payload)
            self.proc.stdin.flush()
            return self._receive(self.hang_seconds)
        except (EOFError, BrokenPipeError):
            code = self.proc.wait()
            self.proc = None
            raise WorkerDied(f"CRASH: the worker died with exit code {code}"
                             f"{' (signal %d)' % -code if code < 0 else ''}") from None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


# ============================================================================ tolerated and known differences

import re  # noqa: E402

# PyTorch refuses many ops on integer / bool tensors ("not implemented for 'Long'"); we compute
# them in a float type instead. That leniency is fine: only a *value* error must be shared.
DTYPE_LENIENCY = re.compile(r"not implemented for|dtype|Boolean|bool tensor|two bool|result type|scalar type|"
                            r"should be type|support bool",
                            re.IGNORECASE)

# Calls PyTorch rejects and we accept on purpose: (op regex, PyTorch's message regex, why).
TOLERATED = [
    (r"adaptive_(avg|max)_pool", r"NoneType|tuple of ints", "output_size=None keeps the input size "
     "(PyTorch allows None only inside a tuple)"),
    (r"pad", r"Padding size \d+ is not supported", "reflect / replicate / circular padding of any rank"),
    (r"avg_pool3d", r"smaller than kernel size", "PyTorch's avg_pool3d alone ignores the padding in this check"),
    (r"group_norm", r"does not have a device", "PyTorch bug: group_norm with bias but no weight"),
    (r"group_norm", r"Expected more than 1 value per channel", "a group of one value normalises to 0"),
    (r".", r"without overflow", "sizes are Python ints here: a stride of 2**62 just gives one output"),
    (r"constructors|movement", r"missing 1 required positional", "no sizes means a 0-d tensor / no change"),
    (r"max_unpool", r"tuple index out of range", "PyTorch's own Python fails on stride=(); ours uses kernel_size"),
    (r"cross_entropy", r"ignore_index is not supported for floating point target",
     "ignore_index is unused with probability targets"),
]


def _has_empty_tensor(spec: Spec) -> bool:
    return any(0 in t.array.shape for t in _tensors(spec))


def _extreme_float32(spec: Spec) -> bool:
    for t in _tensors(spec):
        a = np.abs(t.array[np.isfinite(t.array)]) if t.array.dtype == np.float32 else np.zeros(0)
        if np.any((a > 0) & (a < 1e-18)) or np.any(a > 1e18):
            return True
    return False


def _float_dtypes(spec: Spec) -> set:
    return {t.array.dtype for t in _tensors(spec) if t.array.dtype.kind == "f"}


# Bugs found by this fuzzer and not fixed yet: (op, predicate on the spec, description). Cases
# matching them are counted, not failed, so that the fuzzer keeps looking for new bugs; each
# has a strict xfail test below that starts to fail (XPASS) once the bug is fixed -- then
# delete the entry. Listed in the report to the owners.
_HUGE_SAME = "conv with padding='same' and dilation 2**62 reaches a kernel: OverflowError (int too large for C long)"
KNOWN_BUGS = [
    ("binary_cross_entropy_with_logits", lambda s: len(_float_dtypes(s)) > 1,
     "binary_cross_entropy_with_logits with mixed float dtypes: promoted dtype as PyTorch, but values "
     "differ from PyTorch's by ~3e-8 relative (PyTorch rounds some terms in float32 first)"),
]
KNOWN_HITS: Dict[str, int] = {}


def _known_bug(name: str, spec: Spec) -> Optional[str]:
    for op_name, applies, what in KNOWN_BUGS:
        if op_name == name:
            try:
                hit = applies(spec)
            except Exception:  # noqa: BLE001 - a predicate that does not fit the spec does not apply
                hit = False
            if hit:
                KNOWN_HITS[what] = KNOWN_HITS.get(what, 0) + 1
                return what
    return None


def _tolerated(name: str, spec: Spec, torch_error: str) -> bool:
    o = OPS[name]
    if DTYPE_LENIENCY.search(torch_error) or (o.extension and o.extension(spec)) or _has_empty_tensor(spec):
        return True
    return any(re.match(op_re, name) and re.search(msg_re, torch_error) for op_re, msg_re, _ in TOLERATED)


# ============================================================================ the checks (main process)

DEVIATIONS: List[str] = []
TORCH_CRASHES: List[str] = []
_TORCH_WORKER: List[Worker] = []


def _theirs(name: str, spec: Spec):
    """PyTorch's side of a call, in its own worker; ('crash', why) if PyTorch itself died."""
    if not _TORCH_WORKER:
        _TORCH_WORKER.append(Worker(side="torch"))
    try:
        return _TORCH_WORKER[0].call(name, spec)
    except WorkerDied as e:
        return ("crash", str(e))


def _to_torch(v, torch, grad):
    if isinstance(v, Arr):
        t = torch.tensor(v.array.copy())
        if grad and v.grad and v.array.dtype.kind == "f":
            t.requires_grad_(True)
        return t
    if isinstance(v, list) and any(isinstance(u, Arr) for u in v):
        return [_to_torch(u, torch, grad) for u in v]
    return v


def run_theirs(o: Op, spec: Spec):
    """('ok', arrays, grads) or ('raise', type, message) from PyTorch (or the op's reference).
    Runs in the PyTorch worker: PyTorch itself segfaults on some of these inputs."""
    import warnings

    import torch
    grad = o.grad
    args = [_to_torch(a, torch, grad) for a in spec.args]
    kwargs = {k: _to_torch(v, torch, grad) for k, v in spec.kwargs.items()}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = o.theirs(torch, *args, **kwargs)
            outs = _outputs(result)
            arrays = [t.detach().numpy() for t in outs]
            leaves = [a for a in args + list(kwargs.values()) if isinstance(a, torch.Tensor) and a.requires_grad]
            grads = None
            if leaves and any(t.requires_grad for t in outs):
                total = sum((t * torch.tensor(_upstream(spec.seed, k, tuple(t.shape), t.detach().numpy().dtype))).sum()
                            for k, t in enumerate(outs) if t.requires_grad)
                grads_t = torch.autograd.grad(total, leaves, allow_unused=True)
                grads = [None if g is None else g.numpy() for g in grads_t]
            if o.reference is not None:
                ref = o.reference(torch, *[a.array if isinstance(a, Arr) else a for a in spec.args],
                                  **{k: (v.array if isinstance(v, Arr) else v) for k, v in spec.kwargs.items()})
                if ref is not None:
                    arrays, grads = [ref], None
        return ("ok", arrays, grads)
    except Exception as e:  # noqa: BLE001
        return ("raise", type(e).__name__, str(e))


def _close(ours: np.ndarray, theirs: np.ndarray, what: str, rtol: Optional[float], scale: float,
           same_nonfinite: bool = True, check_dtype: bool = True) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != torch {theirs.shape}"
    assert ours.dtype == theirs.dtype or not check_dtype, f"{what}: dtype {ours.dtype} != torch {theirs.dtype}"
    if ours.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, theirs, err_msg=what)
        return
    a, b = ours.astype(np.float64), theirs.astype(np.float64)
    fin_a, fin_b = np.isfinite(a), np.isfinite(b)
    if not same_nonfinite:
        fin_a = fin_b = fin_a & fin_b
    assert np.array_equal(fin_a, fin_b), f"{what}: finite at different places:\nours {a}\ntorch {b}"
    both_inf = np.isinf(a) & np.isinf(b)          # NaN against inf may differ, +inf against -inf not
    assert np.array_equal(a[both_inf], b[both_inf]), f"{what}: infinities of opposite sign:\nours {a}\ntorch {b}"
    tol = rtol or (1e-4 if ours.dtype == np.float32 else 1e-9)
    big = max([1.0, scale] + [float(np.max(np.abs(x[f]))) for x, f in ((a, fin_a), (b, fin_b)) if f.any()])
    err = np.abs(a[fin_a] - b[fin_a])
    assert np.all(err <= tol * big + tol * np.abs(b[fin_a])), \
        f"{what}: max error {err.max() if err.size else 0} (tolerance {tol} x {big}):\nours {a}\ntorch {b}"


def _input_scale(spec: Spec) -> float:
    """Inputs' magnitude: with huge finite inputs, results of sums may cancel differently."""
    scale = 1.0
    for t in _tensors(spec):
        a = t.array
        if a.dtype.kind == "f" and a.size and np.isfinite(a).any():
            scale *= max(1.0, float(np.max(np.abs(a[np.isfinite(a)]))))
    return scale


def check(worker: Worker, name: str, spec: Spec) -> None:
    o = OPS[name]
    try:
        ours = worker.call(name, spec)
    except WorkerDied as e:
        raise AssertionError(f"{name}{spec!r}: {e}") from None
    if ours[0] == "bad-return":
        raise AssertionError(f"{name}{spec!r}: returned {ours[1]}, not Tensors")
    if ours[0] == "raise":
        _, etype, msg, where, allowed, tb = ours
        if etype.endswith("MemoryError") and _theirs(name, spec)[0] != "ok":
            DEVIATIONS.append(f"{name}{spec!r}: a huge output, ours MemoryError, torch raised too")
            return
        if not allowed and _known_bug(name, spec):
            return
        assert allowed, f"{name}{spec!r} raised {etype} (not ValueError/TypeError/RuntimeError/IndexError) " \
                        f"at {where}: {msg}\n{tb}"
        assert msg.strip(), f"{name}{spec!r} raised {etype} without a message at {where}"
        assert "numba" not in etype, f"{name}{spec!r}: a Numba error leaked out: {etype}: {msg}"
        if not worker.jit and etype.endswith("IndexError") and "/tinygrad_cnn/kernels/" in where:
            raise AssertionError(f"{name}{spec!r}: out-of-bounds access inside a kernel at {where}: {msg}\n{tb}")
        return
    if not worker.jit:
        return                   # the no-JIT pass looks for out-of-bounds accesses only
    theirs = _theirs(name, spec)
    if theirs[0] == "crash":
        shapes = [(t.array.dtype.name, t.array.shape) for t in _tensors(spec)]
        options = {k: v for k, v in spec.kwargs.items() if not isinstance(v, Arr)}
        TORCH_CRASHES.append(f"{name} {shapes} {options}: {theirs[1]}")
        return
    if theirs[0] == "raise":
        message = f"{theirs[1]}: {theirs[2]}"
        if _tolerated(name, spec, message) or _known_bug(name, spec):
            DEVIATIONS.append(f"{name}{spec!r}: ours returned, torch raised {message[:120]}")
            return
        raise AssertionError(f"{name}{spec!r}: ours returned a result where PyTorch raises {message[:300]}")
    if _known_bug(name, spec):
        return
    _, arrays, grads = ours
    _, t_arrays, t_grads = theirs
    assert len(arrays) == len(t_arrays), f"{name}{spec!r}: {len(arrays)} outputs, torch {len(t_arrays)}"
    scale = _input_scale(spec)
    # PyTorch returns some degenerate results (an empty softmax of bools) in the input's dtype
    check_dtype = not (_has_empty_tensor(spec) and any(t.array.dtype.kind != "f" for t in _tensors(spec)))
    for k, (a, b) in enumerate(zip(arrays, t_arrays)):
        if o.compare_values or (name.startswith("dropout") and _dropout_deterministic(spec)) or \
                (name == "constructors" and not _random_constructor(spec)):
            _close(a, b, f"{name}{spec!r} output {k}", o.rtol, scale, o.same_nonfinite, check_dtype)
        else:
            assert a.shape == b.shape and (a.dtype == b.dtype or not check_dtype), \
                f"{name}{spec!r}: {a.shape} {a.dtype} vs torch {b.shape} {b.dtype}"
    if grads is not None and t_grads is not None:
        for k, (g, tg) in enumerate(zip(grads, t_grads)):
            if g is None or tg is None:
                continue
            _close(g, tg, f"{name}{spec!r} gradient of tensor input {k}", o.rtol, scale, o.same_nonfinite)


# ============================================================================ the tests

_WORKERS: Dict[bool, Worker] = {}


@pytest.fixture(scope="module")
def workers():
    yield _WORKERS
    for w in list(_WORKERS.values()) + _TORCH_WORKER:
        w.stop()
    if TORCH_CRASHES:
        print(f"\nPyTorch itself crashed on {len(TORCH_CRASHES)} calls (not counted against us):")
        for line in TORCH_CRASHES:
            print("  " + line[:400])
    if COLLECT:
        print(f"\n{len(FAILURES)} failures:")
        for line in FAILURES:
            print("  FAIL " + line)
    if REPORT and KNOWN_HITS:
        print("\nknown bugs hit:")
        for what, count in sorted(KNOWN_HITS.items()):
            print(f"  {count:4d}  {what}")
    if REPORT and DEVIATIONS:
        print(f"\n{len(DEVIATIONS)} calls that ours accepted and PyTorch rejected:")
        for line in DEVIATIONS:
            print("  " + line)


FAILURES: List[str] = []


def _fuzz(workers, name: str, jit: bool, data) -> None:
    w = workers.setdefault(jit, Worker(jit))
    spec = OPS[name].gen(data.draw)
    spec.seed = data.draw(st.integers(0, 2 ** 31 - 1))
    try:
        check(w, name, spec)
    except AssertionError as e:
        if not COLLECT:
            raise
        FAILURES.append(str(e).split("\n")[0][:600])


def _settings(examples: int):
    return settings(max_examples=max(int(examples * EXAMPLES_SCALE), 1), deadline=None,
                    suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("name", sorted(OPS))
def test_fuzz_against_torch(workers, name):
    @_settings(OPS[name].examples)
    @given(data=st.data())
    def run(data):
        _fuzz(workers, name, True, data)
    run()


@pytest.mark.parametrize("name", sorted(n for n, o in OPS.items() if o.kernel))
def test_fuzz_kernels_without_jit_stay_in_bounds(workers, name):
    @_settings(max(OPS[name].examples // 4, 8))
    @given(data=st.data())
    def run(data):
        _fuzz(workers, name, False, data)
    run()


def test_every_functional_op_is_fuzzed():
    """New functions in nn.functional must get a generator here."""
    import tinygrad_cnn.nn.functional as F
    public = set(F.__all__) if hasattr(F, "__all__") else {n for n in dir(F) if not n.startswith("_")}
    covered = set(OPS) | {"upsample"}   # upsample is interpolate's deprecated alias
    missing = sorted(n for n in public if callable(getattr(F, n)) and n not in covered)
    assert not missing, f"functional ops without a fuzz generator: {missing}"


def test_the_worker_reports_crashes_and_hangs():
    """The harness itself: a segfault and a hang in the worker become test failures, and the
    next call gets a fresh worker."""
    w = Worker(hang_seconds=2)
    try:
        assert w.call("relu", Spec([Arr(np.array([-1.0, 2.0]))]))[0] == "ok"
        with pytest.raises(WorkerDied, match=r"CRASH.*signal 11"):
            w.call("__crash__", Spec([]))
        assert w.call("relu", Spec([Arr(np.array([1.0]))]))[0] == "ok"
        with pytest.raises(WorkerDied, match="HANG"):
            w.call("__hang__", Spec([]))
        with pytest.raises(AssertionError, match="raised ZeroDivisionError|raised builtins.ZeroDivisionError"):
            check(_FakeWorker(("raise", "builtins.ZeroDivisionError", "division by zero", "x.py:1", False, "")),
                  "relu", Spec([Arr(np.array([1.0]))]))
        with pytest.raises(AssertionError, match="without a message"):
            check(_FakeWorker(("raise", "builtins.ValueError", "", "x.py:1", True, "")), "relu",
                  Spec([Arr(np.array([1.0]))]))
        with pytest.raises(AssertionError, match="max error"):
            check(_FakeWorker(("ok", [np.array([1.5])], None)), "relu", Spec([Arr(np.array([1.0]))]))
    finally:
        w.stop()


class _FakeWorker:
    jit = True

    def __init__(self, reply):
        self.reply = reply

    def call(self, name, spec, want_grad=True):
        return self.reply


# ============================================================================ kernels called directly


def test_unpool_out_of_range_indices_raise_before_any_kernel(monkeypatch):
    import tinygrad_cnn as tc
    import tinygrad_cnn.ops.pool as pool_ops
    F = tc.nn.functional
    calls = []
    real = pool_ops.scatter_add_planes
    monkeypatch.setattr(pool_ops, "scatter_add_planes", lambda *a: calls.append(a) or real(*a))
    x = tc.randn(1, 2, 2, 2)
    good = tc.tensor(np.array([[[[0, 3], [9, 15]], [[1, 2], [12, 13]]]]))
    assert F.max_unpool2d(x, good, 2).shape == (1, 2, 4, 4) and len(calls) == 1
    for bad in (-1, 16, 2 ** 40, -(2 ** 62)):
        idx = good.data.copy()
        idx[0, 1, 1, 0] = bad
        with pytest.raises(ValueError, match=f"invalid max index {bad}"):
            F.max_unpool2d(x, tc.tensor(idx), 2)
        with pytest.raises(RuntimeError, match="invalid max index"):   # PyTorch refuses it too
            import torch
            torch.nn.functional.max_unpool2d(torch.tensor(x.numpy()), torch.tensor(idx), 2)
    assert len(calls) == 1, "the kernel ran with invalid indices"


_KERNEL_GUARD = """
import numpy as np
from tinygrad_cnn.kernels.pool import scatter_add_by_index, gather_by_index
rng = np.random.default_rng(0)
# a guarded buffer: the kernel's output lives in the middle; the guards must stay untouched
for trial in range(200):
    P, M, L = rng.integers(1, 4), rng.integers(1, 9), rng.integers(1, 9)
    src = rng.standard_normal((P, M))
    index = rng.integers(-3 * L, 4 * L, (P, M)).astype(np.int64)
    index[0, 0] = np.iinfo(np.int64).max; index[-1, -1] = np.iinfo(np.int64).min
    out = scatter_add_by_index(src, index, L)
    ref = np.zeros((P, L))
    for p in range(P):
        for m in range(M):
            if 0 <= index[p, m] < L:
                ref[p, index[p, m]] += src[p, m]
    assert np.array_equal(out, ref), (out, ref)
    big = rng.standard_normal((P, L))
    got = gather_by_index(big, index)
    want = np.where((index >= 0) & (index < L), np.take_along_axis(big, np.clip(index, 0, L - 1), 1), 0.0)
    assert np.array_equal(got, want)
print("ok")
"""


@pytest.mark.parametrize("jit", [True, False])
def test_index_kernels_never_touch_memory_outside_their_arrays(jit):
    """The scatter / gather kernels behind max-unpool and max-pool's gradient, called directly
    with indices far outside the planes (int64 extremes included): out-of-range entries are
    skipped (scatter) or read as 0 (gather); the process neither crashes nor corrupts results."""
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    if not jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    out = subprocess.run([sys.executable, "-c", _KERNEL_GUARD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", (out.returncode, out.stderr[-3000:])


# ============================================================================ bugs found by the fuzzer, one test each
# test_known_bug_*: still open, listed in KNOWN_BUGS. Each test states the PyTorch behaviour and
# fails until the owner fixes the bug; then it passes (XPASS), which strict=True turns into a
# failure: delete the xfail mark and the KNOWN_BUGS entry then, and rename it test_fixed_bug_*.
# test_fixed_bug_*: fixed since, kept as regression tests.

def _tc():
    import tinygrad_cnn as tc
    return tc


def test_fixed_bug_integer_true_division_gives_float32():
    tc = _tc()
    assert (tc.tensor([1, 2]) / 2).dtype == np.float32
    assert (tc.tensor([1, 2]) / tc.tensor([2, 4])).dtype == np.float32
    assert (tc.tensor([True, False]) / 2).dtype == np.float32


def test_fixed_bug_division_gradient_with_tiny_float32_denominator():
    tc = _tc()
    a = tc.tensor(np.array([1e-30, 1e20], np.float32), requires_grad=True)
    (tc.tensor(np.array([1e-30, 1e20], np.float32)) / a).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [-1e30, -1e-20], rtol=1e-6)   # torch: -b / a / a


def test_known_bug_binary_cross_entropy_gradient_at_saturated_probability():
    import torch
    tc = _tc()
    p = tc.tensor(np.array([1.0, 0.0, 0.5], np.float32), requires_grad=True)
    t = np.array([0.126, 0.5, 1.0], np.float32)
    tc.nn.functional.binary_cross_entropy(p, tc.tensor(t)).backward()
    pt = torch.tensor(np.array([1.0, 0.0, 0.5], np.float32), requires_grad=True)
    torch.nn.functional.binary_cross_entropy(pt, torch.tensor(t)).backward()
    assert np.all(np.isfinite(p.grad.numpy()))
    np.testing.assert_allclose(p.grad.numpy(), pt.grad.numpy(), rtol=1e-5)   # (p - t) / max(p(1-p), 1e-12)


def test_known_bug_bce_with_logits_promotes_mixed_dtypes():
    tc = _tc()
    F = tc.nn.functional
    out = F.binary_cross_entropy_with_logits(tc.tensor(np.zeros(3, np.float32)), tc.tensor(np.ones(3)))
    assert out.dtype == np.float64                   # torch: float32 input, float64 target -> float64


def test_fixed_bug_dropout_of_integer_tensors():
    tc = _tc()
    F = tc.nn.functional
    with pytest.raises(RuntimeError):                # torch: result type Float can't be cast to Long
        F.dropout(tc.tensor([1, 2, 3]), 0.5)
    with pytest.raises(RuntimeError):
        F.dropout2d(tc.tensor(np.ones((2, 3, 2, 2), np.int64)), 0.5)


def test_fixed_bug_clamp_of_bool_tensor_promotes():
    tc = _tc()
    out = tc.tensor([True, False]).clamp(None, -1)
    assert out.dtype == np.int64 and out.tolist() == [-1, -1]        # as torch
    assert tc.tensor([1, -2]).clamp(-0.5, 0.5).dtype == np.float32    # torch promotes to float32


def test_fixed_bug_linear_checks_bias_shape():
    tc = _tc()
    with pytest.raises((ValueError, RuntimeError), match="bias"):
        tc.nn.functional.linear(tc.randn(3, 4), tc.randn(1, 4), tc.randn(2))     # torch raises


def test_known_bug_group_norm_rejects_float_groups():
    tc = _tc()
    with pytest.raises(TypeError, match="num_groups"):
        tc.nn.functional.group_norm(tc.randn(1, 3, 2), 1.5)


def test_fixed_bug_softmax_rejects_tuple_dim():
    tc = _tc()
    for fn in (tc.nn.functional.softmax, tc.nn.functional.log_softmax):
        with pytest.raises(TypeError, match="dim"):
            fn(tc.randn(2, 3, 4), dim=(1, 2))


def test_fixed_bug_pad_rejects_bad_pads():
    tc = _tc()
    x = tc.randn(1, 1, 3)
    for bad in ((1.5, 1), ("1", 1)):
        with pytest.raises(TypeError):
            tc.nn.functional.pad(x, bad)
    with pytest.raises((ValueError, RuntimeError)):
        tc.nn.functional.pad(tc.randn(1, 1, 2), (-2, -1))    # torch: narrow(): length must be non-negative


def test_known_bug_batch_norm_rejects_non_positive_eps_in_training():
    tc = _tc()
    with pytest.raises(ValueError, match="eps"):
        tc.nn.functional.batch_norm(tc.randn(4, 2), None, None, training=True, eps=0.0)
    with pytest.raises(ValueError, match="eps"):                 # torch: eps must be non-negative
        tc.nn.functional.batch_norm(tc.randn(4, 2), tc.zeros(2), tc.ones(2), training=False, eps=-1.0)


def test_known_bug_batch_norm_backward_with_zero_channels():
    tc = _tc()
    x = tc.tensor(np.zeros((1, 0), np.float32), requires_grad=True)
    try:      # PyTorch raises IndexError here; a clean error or a working empty gradient are both fine
        out = tc.nn.functional.batch_norm(x, tc.zeros(0), tc.ones(0), weight=tc.ones(0, requires_grad=True))
        out.sum().backward()
        assert x.grad.shape == (1, 0)
    except ALLOWED:
        pass


def test_fixed_bug_constructors_reject_float_sizes():
    tc = _tc()
    for make in (lambda: tc.zeros(1.5), lambda: tc.full((1.5, 2), 0.0), lambda: tc.rand("2")):
        with pytest.raises(TypeError):     # torch: must be tuple of ints
            make()


def test_fixed_bug_arange_rejects_inconsistent_step():
    tc = _tc()
    with pytest.raises((ValueError, RuntimeError)):   # torch: upper bound and lower bound inconsistent
        tc.arange(-2, 5, -1)


def test_fixed_bug_flatten_of_scalar_checks_dims():
    tc = _tc()
    with pytest.raises(IndexError):                    # torch: Dimension out of range
        tc.tensor(1.0).flatten(-1, 1)


def test_fixed_bug_split_and_chunk_sizes():
    tc = _tc()
    for bad in (lambda: tc.zeros(3).split(0), lambda: tc.zeros(3).chunk(0), lambda: tc.zeros(3).split(-1)):
        with pytest.raises(RuntimeError):                      # as torch, not ZeroDivisionError
            bad()
    assert [t.shape for t in tc.zeros(0).split(1)] == [(0,)]  # torch: one empty piece
    with pytest.raises(RuntimeError):                          # torch: must sum exactly to 1
        tc.zeros(1).split([1, 1])


def test_fixed_bug_gather_rejects_negative_indices():
    tc = _tc()
    x = tc.tensor([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises((IndexError, RuntimeError)):          # torch: index -1 is out of bounds
        x.gather(1, tc.tensor([[-1], [0]]))


def test_known_bug_same_padding_with_huge_dilation_raises_before_the_kernel():
    tc = _tc()
    x, w = tc.randn(1, 2, 2, 1, dtype="float64"), tc.randn(2, 2, 3, 2, dtype="float64")
    with pytest.raises((ValueError, RuntimeError)):          # not OverflowError from a kernel call
        tc.nn.functional.conv2d(x, w, stride=2, dilation=2 ** 62, padding="same")


def test_known_bug_layer_norm_of_huge_float32_values():
    tc = _tc()
    x = tc.tensor(np.array([[1e30, 1e30, -1e30]], np.float32))
    out = tc.nn.functional.layer_norm(x, [3]).numpy()
    np.testing.assert_allclose(out, [[0.7071, 0.7071, -1.4142]], rtol=1e-3)   # scale-invariant answer


def test_fixed_bug_pad_of_integer_tensor_with_infinite_value():
    tc = _tc()
    with pytest.raises((ValueError, TypeError, RuntimeError)):     # torch: RuntimeError
        tc.nn.functional.pad(tc.tensor([[1, 2]]), (1, 1), value=float("inf"))
