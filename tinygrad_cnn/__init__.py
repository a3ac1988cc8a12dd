"""tinygrad_cnn: a small, readable deep-learning framework for CNNs in NumPy and Numba.

    from tinygrad_cnn import Tensor
    x = Tensor([[1.0, 2.0]], requires_grad=True)
    (x * x).sum().backward(); x.grad   # tensor([[2., 4.]])
"""
from . import _malloc  # noqa: F401  (keeps freed activation memory mapped: see _malloc.py)
from . import ops  # noqa: F401  (registers the core Functions)
from .tensor import (Tensor, arange, as_dtype, empty, eye, float32, float64, from_numpy, full,  # noqa: F401
                     full_like, get_rng, int32, int64, linspace, manual_seed, ones, ones_like,
                     rand, rand_like, randint, randn, randn_like, randperm, tensor, zeros,
                     zeros_like)
from .tensor import bool_ as bool  # noqa: F401,A001
from .engine import enable_grad, is_grad_enabled, no_grad  # noqa: F401
from .functions import *  # noqa: F401,F403
from . import autograd  # noqa: F401
from .io import load, save  # noqa: F401  (safe checkpoints)
from . import data as _data
from .tensor import _seed_hooks

_seed_hooks.append(_data.seed)   # manual_seed also seeds shuffling and random transforms

long, double, float = int64, float64, float32  # noqa: A001  (torch.long, torch.double, torch.float)

from .threads import get_num_threads, set_num_threads  # noqa: F401,E402

from . import nn, optim  # noqa: F401,E402  (tinygrad_cnn.nn like torch.nn)

__version__ = "0.1.0"
