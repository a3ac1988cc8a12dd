"""Samplers decide the order in which a DataLoader visits a dataset.

A sampler is an iterable of indices; a batch sampler is an iterable of lists of
indices. Random samplers draw their permutation when ``iter()`` is called (in the
caller's thread), so every epoch gets a new order and the order is reproducible from
the seed.
"""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Sequence

import numpy as np

from .seeding import GeneratorLike, RandomStream


class Sampler:
    """Base class: ``__iter__`` yields dataset indices, ``__len__`` says how many."""

    def __iter__(self) -> Iterator[int]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random permutation of the indices at every ``iter()`` (every epoch).

    With ``replacement=True``, ``num_samples`` indices drawn uniformly with replacement.
    ``generator``: int seed, ``numpy.random.Generator``, or None (global seed stream).
    """

    def __init__(self, data_source: Any, replacement: bool = False, num_samples: Optional[int] = None,
                 generator: GeneratorLike = None) -> None:
        if not isinstance(replacement, bool):
            raise TypeError(f"RandomSampler: replacement must be a bool, got {replacement!r}")
        if num_samples is not None and (isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer))
                                        or num_samples <= 0):
            raise ValueError(f"RandomSampler: num_samples must be a positive int, got {num_samples!r}")
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = RandomStream(generator)

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self) -> Iterator[int]:
        # Not a generator function: the random draw happens right here, at iter() time.
        return iter(self.epoch_indices().tolist())

    def epoch_indices(self) -> np.ndarray:
        """Draw this epoch's indices as an int64 array (advances the generator)."""
        n = len(self.data_source)
        rng = self.generator.get()
        if self.replacement:
            if n == 0:
                raise ValueError("RandomSampler: cannot sample with replacement from an empty dataset")
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        reps = -(-self.num_samples // n) if n else 0
        perms = [rng.permutation(n) for _ in range(reps)]
        return np.concatenate(perms)[:self.num_samples].astype(np.int64) if perms else np.zeros(0, np.int64)

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a fresh random order at every ``iter()``."""

    def __init__(self, indices: Sequence[int], generator: GeneratorLike = None) -> None:
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        self.generator = RandomStream(generator)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices[self.generator.get().permutation(len(self.indices))].tolist())

    def __len__(self) -> int:
        return len(self.indices)


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    The last, shorter batch is yielded unless ``drop_last``.
    """

    def __init__(self, sampler: Any, batch_size: int, drop_last: bool) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
            raise ValueError(f"BatchSampler: batch_size must be a positive int, got {batch_size!r}")
        if not isinstance(drop_last, bool):
            raise TypeError(f"BatchSampler: drop_last must be a bool, got {drop_last!r}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[List[int]]:
        indices = iter(self.sampler)  # random samplers draw their epoch order here
        return self._batches(indices)

    def _batches(self, indices: Iterator[int]) -> Iterator[List[int]]:
        batch: List[int] = []
        for i in indices:
            batch.append(int(i))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
