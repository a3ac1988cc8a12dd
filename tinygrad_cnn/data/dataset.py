"""Map-style datasets: ``Dataset``, ``TensorDataset``, ``Subset``, ``random_split``.

A dataset is anything with ``__len__`` and ``__getitem__(i)`` returning one sample.
Datasets whose class sets ``batch_indexable = True`` also accept an integer *array* of
indices and return the whole, already collated batch in one vectorised step
(``dataset[np.array([3, 1, 4])]`` -> ``(images (3, ...), labels (3,))``); the
DataLoader uses that fast path instead of calling ``__getitem__`` once per sample.
"""
from __future__ import annotations

import math
from typing import Any, List, Sequence, Tuple, Union

import numpy as np

from .seeding import GeneratorLike, new_generator


def is_index_array(index: Any) -> bool:
    """True for a 1-D sequence/array of integer indices (a batch request)."""
    if isinstance(index, np.ndarray):
        return index.ndim == 1 and (index.dtype.kind in "iu" or index.size == 0)
    if isinstance(index, (list, tuple)):
        return all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in index)
    return False


def as_index_array(index: Any, length: int, what: str = "index") -> np.ndarray:
    """Validate a batch of indices against ``length``; negative indices count from the end."""
    idx = np.asarray(index, dtype=np.int64).reshape(-1)
    if idx.size and (idx.min() < -length or idx.max() >= length):
        bad = idx[(idx < -length) | (idx >= length)][0]
        raise IndexError(f"{what} {int(bad)} is out of range for a dataset of length {length}")
    return np.where(idx < 0, idx + length, idx)


def check_index(index: Any, length: int) -> int:
    """Validate one integer index; negative indices count from the end."""
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"dataset index must be an int or a 1-D integer array, got {index!r} "
                        f"of type {type(index).__name__}")
    i = int(index)
    if not -length <= i < length:
        raise IndexError(f"index {i} is out of range for a dataset of length {length}")
    return i + length if i < 0 else i


class Dataset:
    """Base class of map-style datasets: override ``__getitem__`` and ``__len__``."""

    batch_indexable: bool = False

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__")

    def __add__(self, other: "Dataset") -> "ConcatDataset":
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the i-th rows of equally long arrays: ``(arrays[0][i], arrays[1][i], ...)``.

    ``TensorDataset(x, y)`` with ``x`` of shape ``(N, ...)`` and ``y`` of shape ``(N, ...)``.
    Arrays are kept as given (``np.asarray``, no copy). Indexing with an integer array
    returns the whole batch ``(x[idx], y[idx])`` at once.
    """

    batch_indexable = True

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset: give at least one array")
        arrays = tuple(np.asarray(t) for t in tensors)
        for k, a in enumerate(arrays):
            if a.ndim == 0:
                raise ValueError(f"TensorDataset: array {k} is a scalar; every array needs a first (sample) dimension")
        n = arrays[0].shape[0]
        for k, a in enumerate(arrays):
            if a.shape[0] != n:
                raise ValueError("TensorDataset: all arrays must have the same first dimension (number of samples), "
                                 f"got shapes {[x.shape for x in arrays]}")
        self.tensors: Tuple[np.ndarray, ...] = arrays

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index: Any) -> Tuple[Any, ...]:
        if is_index_array(index):
            idx = as_index_array(index, len(self))
            return tuple(a[idx] for a in self.tensors)
        i = check_index(index, len(self))
        return tuple(a[i] for a in self.tensors)


class Subset(Dataset):
    """The samples of ``dataset`` at positions ``indices`` (in that order)."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = as_index_array(indices, len(dataset), what="Subset index")

    @property
    def batch_indexable(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.dataset, "batch_indexable", False))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        if is_index_array(index):
            inner = self.indices[as_index_array(index, len(self))]
            if self.batch_indexable:
                return self.dataset[inner]
            return [self.dataset[int(i)] for i in inner]
        return self.dataset[int(self.indices[check_index(index, len(self))])]


class ConcatDataset(Dataset):
    """Several datasets one after the other (sample ``i`` of the concatenation)."""

    def __init__(self, datasets: Sequence[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets must not be empty")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: Any) -> Any:
        if is_index_array(index):
            return [self[int(i)] for i in as_index_array(index, len(self))]
        i = check_index(index, len(self))
        d = int(np.searchsorted(self.cumulative_sizes, i, side="right"))
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][i - start]


def _lengths_from_fractions(fractions: Sequence[float], n: int) -> List[int]:
    """PyTorch's rule: floor(n * f) each, then hand out the remainder round-robin."""
    lengths = [int(math.floor(n * f)) for f in fractions]
    remainder = n - sum(lengths)
    for i in range(remainder):
        lengths[i % len(lengths)] += 1
    return lengths


def random_split(dataset: Any, lengths: Sequence[Union[int, float]],
                 generator: GeneratorLike = None) -> List[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are ints summing to ``len(dataset)``, or fractions summing to 1
    (``random_split(ds, [0.9, 0.1])``; leftover samples go round-robin to the first
    subsets, as in PyTorch). ``generator``: int seed, ``numpy.random.Generator``, or
    None for the next stream of the global seed (``tinygrad_cnn.data.seed``).
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ValueError("random_split: lengths must not be empty")
    if all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1.0) and sum(lengths) <= 1 + 1e-9:
        if any(not 0.0 <= f <= 1.0 for f in lengths):
            raise ValueError(f"random_split: fractions must lie in [0, 1], got {lengths}")
        lengths = _lengths_from_fractions(lengths, n)
    for x in lengths:
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 0:
            raise ValueError("random_split: lengths must be non-negative ints summing to len(dataset) "
                             f"or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} sum to {sum(lengths)}, "
                         f"but the dataset has {n} samples")
    perm = new_generator(generator).permutation(n)
    out, start = [], 0
    for length in lengths:
        out.append(Subset(dataset, perm[start:start + int(length)]))
        start += int(length)
    return out
