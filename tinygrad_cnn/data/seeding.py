"""One global seed for everything random in ``tinygrad_cnn.data``.

Shuffling (``DataLoader(shuffle=True)``, ``RandomSampler``, ``random_split``) and the
random transforms (``RandomCrop``, ``RandomHorizontalFlip``) each own a
``numpy.random.Generator``.  When you pass them a ``generator`` (an int seed or a
``numpy.random.Generator``) they use it.  When you do not, their generator is derived
from the package-wide seed set by :func:`seed`:

    stream k  =  PCG64(SeedSequence(global_seed, spawn_key=(k,)))

where ``k`` counts the seed-less random objects in the order they were created.  So a
script that calls ``seed(0)`` and then builds the same objects in the same order gets
exactly the same shuffles and augmentations on every run, and calling ``seed(n)`` again
(before or after the objects were built) restarts every stream from the beginning.

The default global seed is 0, so runs are reproducible even if nobody calls
:func:`seed`; ``seed(None)`` picks a fresh seed from the operating system.

Hook for the rest of the framework: ``tinygrad_cnn.manual_seed(n)`` should call
``tinygrad_cnn.data.seed(n)`` (this module imports only NumPy, so that is always safe).

Each object only ever draws from its own stream, so a DataLoader's prefetch thread
(which runs the transforms) and the main thread (which draws the epoch permutation)
never race on a shared generator.
"""
from __future__ import annotations

import itertools
import threading
from typing import Optional, Union

import numpy as np

_global_seed: int = 0
_version: int = 0  # bumped by every seed() call; streams re-derive themselves lazily
_stream_ids = itertools.count()
_lock = threading.Lock()

GeneratorLike = Union[None, int, np.integer, np.random.Generator, np.random.SeedSequence]


def seed(n: Optional[int] = 0) -> int:
    """Set the global seed of ``tinygrad_cnn.data`` and restart every seed-less stream.

    ``n`` is a non-negative int, or None to draw a fresh seed from the OS.
    Returns the seed now in use.
    """
    global _global_seed, _version
    if n is None:
        n = int(np.random.SeedSequence().entropy)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"seed: n must be a non-negative int or None, got {n!r} of type {type(n).__name__}")
    if n < 0:
        raise ValueError(f"seed: n must be a non-negative int, got {n}")
    with _lock:
        _global_seed = int(n)
        _version += 1
    return _global_seed


def initial_seed() -> int:
    """The global seed currently in use (0 unless :func:`seed` was called)."""
    return _global_seed


def new_generator(generator: GeneratorLike = None) -> np.random.Generator:
    """A one-shot generator: ``generator`` itself if given, else the next global stream."""
    return RandomStream(generator).get()


class RandomStream:
    """A lazily (re)seeded ``numpy.random.Generator`` owned by one random object.

    ``RandomStream(None)`` follows the global seed (see the module docstring);
    ``RandomStream(5)`` is ``np.random.default_rng(5)``; ``RandomStream(gen)`` uses
    the ``numpy.random.Generator`` ``gen`` as is (shared with whoever else holds it).
    """

    def __init__(self, generator: GeneratorLike = None) -> None:
        self._fixed: Optional[np.random.Generator] = None
        self._stream_id: Optional[int] = None
        if generator is None:
            with _lock:
                self._stream_id = next(_stream_ids)
            self._version = -1
            self._rng: Optional[np.random.Generator] = None
        elif isinstance(generator, np.random.Generator):
            self._fixed = generator
        elif isinstance(generator, np.random.SeedSequence):
            self._fixed = np.random.default_rng(generator)
        elif isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
            if generator < 0:
                raise ValueError(f"generator: a seed must be a non-negative int, got {generator}")
            self._fixed = np.random.default_rng(int(generator))
        else:
            raise TypeError("generator: expected None, a non-negative int seed or a "
                            f"numpy.random.Generator, got {generator!r} of type {type(generator).__name__}")

    @property
    def follows_global_seed(self) -> bool:
        return self._fixed is None

    def get(self) -> np.random.Generator:
        """The generator to draw from now (re-derived if :func:`seed` was called since)."""
        if self._fixed is not None:
            return self._fixed
        if self._version != _version or self._rng is None:
            seq = np.random.SeedSequence(_global_seed, spawn_key=(self._stream_id,))
            self._rng = np.random.Generator(np.random.PCG64(seq))
            self._version = _version
        return self._rng

    def __repr__(self) -> str:
        if self._fixed is not None:
            return f"RandomStream({self._fixed!r})"
        return f"RandomStream(global seed {_global_seed}, stream {self._stream_id})"
