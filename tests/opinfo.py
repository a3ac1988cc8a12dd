"""OpInfo: one declarative test spec per op sample, run by tests/test_ops_generic.py.

A spec says which Functions it makes run (``ops``), how to call ours and PyTorch's, and how to
draw inputs. The generic test checks, for each spec: forward vs PyTorch, backward vs PyTorch with a
random upstream gradient, gradcheck and gradgradcheck in float64; and that every Function in
tinygrad_cnn.engine.REGISTRY is claimed by some spec (an untested op fails the suite).

Families add their specs in tests/opinfo_<family>.py as a list named OPINFOS.
"""
from __future__ import annotations

import dataclasses
import glob
import importlib
import os
from typing import Callable, List, Optional, Set

import numpy as np


@dataclasses.dataclass
class OpInfo:
    name: str
    ops: Set[str]
    fn: Callable
    torch_fn: Callable
    sample: Callable          # draw -> list of np.ndarray (float64 -> differentiable; int/bool -> not)
    atol: float = 1e-6
    rtol: float = 1e-5
    gradgrad: bool = True
    grad: bool = True         # False for ops without a gradient
    gradcheck_atol: float = 1e-5
    gradcheck_rtol: float = 1e-3
    eps: float = 1e-6
    differentiable: Optional[List[int]] = None   # which inputs get requires_grad (default: all float)


def all_opinfos() -> List[OpInfo]:
    here = os.path.dirname(__file__)
    specs: List[OpInfo] = []
    for path in sorted(glob.glob(os.path.join(here, "opinfo_*.py"))):
        mod = importlib.import_module(os.path.splitext(os.path.basename(path))[0])
        specs.extend(mod.OPINFOS)
    names = [s.name for s in specs]
    dup = {n for n in names if names.count(n) > 1}
    assert not dup, f"duplicate OpInfo names: {dup}"
    return specs
