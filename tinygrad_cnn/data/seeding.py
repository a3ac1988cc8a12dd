"""The random numbers of ``tinygrad_cnn.data``: one global generator, PyTorch's model.

Shuffling (``DataLoader(shuffle=True)``, ``RandomSampler``, ``random_split``) and the
random transforms (``RandomCrop``, ``RandomHorizontalFlip``) use the generator you pass
them (``generator=`` an int seed or a ``numpy.random.Generator``; ``DataLoader`` also
takes ``seed=``). Without one they draw from the *global* generator, which
:func:`seed` resets, exactly like ``torch.manual_seed`` resets PyTorch's:

    tinygrad_cnn.data.seed(0)          # (tinygrad_cnn.manual_seed(0) calls this)
    loader = DataLoader(train, batch_size=64, shuffle=True)
    ...                                # same shuffles and augmentations on every run

The default global seed is 0, so runs are reproducible even if nobody calls
:func:`seed`; ``seed(None)`` picks a fresh seed from the operating system.

Threads: a DataLoader draws the epoch's order *and* one integer "loader seed" from its
generator (or the global one) in the main thread when the epoch starts. The code that
builds the batches (possibly in the prefetch thread) then runs with a thread-local
generator made from that loader seed, and transforms that follow the global seed draw
from it (:func:`current_generator`). So results never depend on thread timing, and
``prefetch=True`` and ``prefetch=False`` give identical batches.
"""
from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Optional, Union

import numpy as np

_global_seed: int = 0
_global_rng: np.random.Generator = np.random.default_rng(0)
_local = threading.local()  # .rng: the generator of the data-loading code running in this thread

GeneratorLike = Union[None, int, np.integer, np.random.Generator, np.random.SeedSequence]


def seed(n: Optional[int] = 0) -> int:
    """Reset the global generator of ``tinygrad_cnn.data`` to seed ``n`` (an int >= 0).

    ``n=None`` draws a fresh seed from the OS. Returns the seed now in use.
    ``tinygrad_cnn.manual_seed(n)`` calls this, so one call seeds everything.
    """
    global _global_seed, _global_rng
    if n is None:
        n = int(np.random.SeedSequence().entropy) % (1 << 63)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"seed: n must be a non-negative int or None, got {n!r} of type {type(n).__name__}")
    if n < 0:
        raise ValueError(f"seed: n must be a non-negative int, got {n}")
    _global_seed = int(n)
    _global_rng = np.random.default_rng(_global_seed)
    return _global_seed


def initial_seed() -> int:
    """The seed the global generator was last reset to (0 unless :func:`seed` was called)."""
    return _global_seed


def current_generator() -> np.random.Generator:
    """The generator that seed-less random objects draw from in this thread right now:
    the DataLoader's per-epoch generator inside batch loading, else the global one."""
    rng = getattr(_local, "rng", None)
    return rng if rng is not None else _global_rng


@contextlib.contextmanager
def generator_for_this_thread(rng: np.random.Generator) -> Iterator[None]:
    """Within the block, seed-less random objects in this thread draw from ``rng``."""
    previous = getattr(_local, "rng", None)
    _local.rng = rng
    try:
        yield
    finally:
        _local.rng = previous


def to_generator(generator: GeneratorLike) -> Optional[np.random.Generator]:
    """Validate a ``generator`` argument: None stays None (follow the global generator),
    an int seed becomes ``np.random.default_rng(seed)``, a Generator is used as is."""
    if generator is None or isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, np.random.SeedSequence):
        return np.random.default_rng(generator)
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        if generator < 0:
            raise ValueError(f"generator: a seed must be a non-negative int, got {generator}")
        return np.random.default_rng(int(generator))
    raise TypeError("generator: expected None, a non-negative int seed or a numpy.random.Generator, "
                    f"got {generator!r} of type {type(generator).__name__}")


class RandomStream:
    """The generator a random object draws from: its own if it was given one, else
    :func:`current_generator` at the moment of each draw."""

    def __init__(self, generator: GeneratorLike = None) -> None:
        self._own = to_generator(generator)

    @property
    def follows_global_seed(self) -> bool:
        return self._own is None

    def get(self) -> np.random.Generator:
        return self._own if self._own is not None else current_generator()

    def __repr__(self) -> str:
        return f"RandomStream({self._own!r})" if self._own is not None else "RandomStream(global)"


def new_generator(generator: GeneratorLike = None) -> np.random.Generator:
    """``generator`` as a Generator, or the current (global or per-epoch) generator."""
    return RandomStream(generator).get()
