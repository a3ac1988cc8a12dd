"""DataLoader: batches of NumPy arrays, shuffled reproducibly, prefetched in a thread.

    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
    for epoch in range(3):
        for images, labels in loader:      # images (64, 1, 28, 28) float32, labels (64,) int64
            ...

How a batch is made:

* the batch sampler yields a list of indices (a new random order each epoch when
  ``shuffle=True``, drawn in the main thread when the epoch starts);
* if the dataset is *batch indexable* (``TensorDataset``, ``MNIST``, ``CIFAR10``,
  ``Subset`` of those: class attribute ``batch_indexable = True``) and no custom
  ``collate_fn`` is given, the whole batch is one call ``dataset[index_array]``:
  fancy indexing plus vectorised transforms, no Python loop over samples;
* otherwise each sample is fetched with ``dataset[i]`` and the list is merged by
  ``collate_fn`` (default :func:`default_collate`).

Randomness: each epoch draws its order and one "loader seed" in the caller's thread;
seed-less random transforms draw from a generator made from that loader seed while
batches are built (see ``seeding.py``), so results do not depend on thread timing.

With ``prefetch=True`` (the default) a background thread prepares the next
``prefetch_factor`` batches while the model trains on the current one (NumPy, BLAS and
Numba release the GIL, so the two overlap). The thread stops as soon as the iterator is
exhausted, closed, garbage-collected (e.g. after ``break``) or an error happens; an
exception raised while loading is re-raised in the main thread with its original type.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Iterator, List, Optional

import numpy as np

from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler
from .seeding import GeneratorLike, RandomStream, generator_for_this_thread


def default_collate(batch: List[Any]) -> Any:
    """Merge a list of samples into a batch of NumPy arrays.

    arrays ``(...)`` -> stacked ``(B, ...)``; Python ints -> int64 ``(B,)``; floats ->
    float64 ``(B,)``; bools -> bool; NumPy scalars keep their dtype; tuples/lists ->
    the same container of collated fields (``[(x, y), ...]`` -> ``(X, Y)``); dicts ->
    dict of collated values; strings/bytes -> list.
    """
    if not isinstance(batch, (list, tuple)) or len(batch) == 0:
        raise ValueError(f"default_collate: expected a non-empty list of samples, got {batch!r}")
    elem = batch[0]
    if isinstance(elem, np.ndarray):
        shapes = {b.shape for b in batch}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: cannot stack arrays of different shapes {sorted(shapes)}; "
                             "give a collate_fn that pads or crops them")
        return np.stack(batch)
    if isinstance(elem, np.generic):
        return np.asarray(batch, dtype=elem.dtype)
    if isinstance(elem, bool):
        return np.asarray(batch, dtype=np.bool_)
    if isinstance(elem, int):
        return np.asarray(batch, dtype=np.int64)
    if isinstance(elem, float):
        return np.asarray(batch, dtype=np.float64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return type(elem)({key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise ValueError("default_collate: every sample must have the same number of fields, got "
                             f"{sorted({len(b) for b in batch})}")
        fields = [default_collate(list(field)) for field in zip(*batch)]
        return tuple(fields) if isinstance(elem, tuple) else fields
    if hasattr(elem, "__array__"):
        return np.stack([np.asarray(b) for b in batch])
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(elem).__name__}; "
                    "give the DataLoader a collate_fn")


class _End:
    """Marker put in the queue after the last batch."""


class _WorkerError:
    def __init__(self, exc: BaseException, batch_number: int) -> None:
        self.exc = exc
        self.batch_number = batch_number


def _prefetch_worker(batches: Iterator[Any], fetch: Callable[[Any], Any], out: "queue.Queue[Any]",
                     stop: threading.Event, loader_seed: int) -> None:
    """Thread body. Holds no reference to the iterator object, so dropping it ends us."""
    with generator_for_this_thread(np.random.default_rng(loader_seed)):
        _prefetch_loop(batches, fetch, out, stop)


def _prefetch_loop(batches: Iterator[Any], fetch: Callable[[Any], Any], out: "queue.Queue[Any]",
                   stop: threading.Event) -> None:

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    number = 0
    try:
        for indices in batches:
            if stop.is_set():
                return
            if not put(fetch(indices)):
                return
            number += 1
        put(_End())
    except BaseException as exc:  # re-raised in the main thread
        put(_WorkerError(exc, number))


class _PrefetchingIterator:
    """Iterator over batches made by a background thread; see the module docstring."""

    def __init__(self, batches: Iterator[Any], fetch: Callable[[Any], Any], depth: int, length: Optional[int],
                 loader_seed: int) -> None:
        self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._length = length
        self._thread: Optional[threading.Thread] = threading.Thread(
            target=_prefetch_worker, args=(batches, fetch, self._queue, self._stop, loader_seed),
            name="tinygrad_cnn-DataLoader-prefetch", daemon=True)
        self._thread.start()

    def __iter__(self) -> "_PrefetchingIterator":
        return self

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("this DataLoader iterator has no length")
        return self._length

    def __next__(self) -> Any:
        if self._thread is None:
            raise StopIteration
        item = self._queue.get()
        if isinstance(item, _End):
            self.close()
            raise StopIteration
        if isinstance(item, _WorkerError):
            self.close()
            exc = item.exc
            if hasattr(exc, "add_note"):
                exc.add_note(f"(raised in the DataLoader prefetch thread while loading batch {item.batch_number}; "
                             "use prefetch=False to debug it in the main thread)")
            raise exc
        return item

    def close(self) -> None:
        """Stop the prefetch thread and wait for it (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        while thread.is_alive():  # keep the queue empty so a blocked put() returns at once
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.005)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


def _synchronous(batches: Iterator[Any], fetch: Callable[[Any], Any], loader_seed: int) -> Iterator[Any]:
    rng = np.random.default_rng(loader_seed)
    for indices in batches:
        with generator_for_this_thread(rng):  # only around fetch: the caller's code keeps its own
            batch = fetch(indices)
        yield batch


class DataLoader:
    """Iterate over a dataset in (optionally shuffled) batches of NumPy arrays.

    Args (PyTorch names and order):
        dataset: a map-style dataset (``__len__`` + ``__getitem__``).
        batch_size: samples per batch; ``None`` yields single samples, unbatched.
        shuffle: a new random order every epoch (``iter(loader)``).
        sampler: an iterable of indices (excludes ``shuffle``).
        batch_sampler: an iterable of index lists (excludes batch_size, shuffle,
            sampler, drop_last).
        num_workers: accepted for PyTorch compatibility (must be >= 0); loading
            always happens in at most one background thread, see ``prefetch``.
        collate_fn: merges a list of samples into a batch (default
            :func:`default_collate`); giving one disables the batch-indexing fast path.
        pin_memory: accepted and ignored (CPU only, nothing to pin).
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        generator: int seed or ``numpy.random.Generator`` for shuffling and for the
            per-epoch seed of random transforms that have no generator of their own.
        seed: int seed (same as an int ``generator``). With neither, both follow
            the global generator, reset by ``tinygrad_cnn.data.seed(n)``.
        prefetch: prepare upcoming batches in a background thread.
        prefetch_factor: how many batches the thread may prepare ahead (>= 1).

    Batches are what the dataset/collate produce, e.g. ``(images (B, C, H, W) float32,
    labels (B,) int64)`` for the image datasets.
    """

    def __init__(self, dataset: Any, batch_size: Optional[int] = 1, shuffle: Optional[bool] = False,
                 sampler: Optional[Any] = None, batch_sampler: Optional[Any] = None, num_workers: int = 0,
                 collate_fn: Optional[Callable[[List[Any]], Any]] = None, pin_memory: bool = False,
                 drop_last: bool = False, *, generator: GeneratorLike = None, seed: Optional[int] = None,
                 prefetch: bool = True, prefetch_factor: int = 2) -> None:
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: dataset must have __len__ and __getitem__, got {type(dataset).__name__}")
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer))
                                       or batch_size <= 0):
            raise ValueError(f"DataLoader: batch_size must be a positive int or None, got {batch_size!r}")
        shuffle = bool(shuffle) if shuffle is not None else False
        if not isinstance(drop_last, bool):
            raise TypeError(f"DataLoader: drop_last must be a bool, got {drop_last!r}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be an int >= 0, got {num_workers!r}")
        if isinstance(prefetch_factor, bool) or not isinstance(prefetch_factor, (int, np.integer)) or prefetch_factor < 1:
            raise ValueError(f"DataLoader: prefetch_factor must be an int >= 1, got {prefetch_factor!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {collate_fn!r}")
        if generator is not None and seed is not None:
            raise ValueError("DataLoader: give either generator or seed, not both")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True are mutually exclusive "
                             "(the sampler decides the order)")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler is mutually exclusive with batch_size, shuffle, "
                                 "sampler and drop_last")
            batch_size = None

        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.pin_memory = pin_memory
        self.prefetch = bool(prefetch)
        self.prefetch_factor = int(prefetch_factor)
        self.generator = generator if seed is None else seed
        self._stream = RandomStream(self.generator)  # validates the argument
        if not self._stream.follows_global_seed:
            self.generator = self._stream.get()  # one Generator shared by the sampler and the loader seed
        self.collate_fn = collate_fn
        self.drop_last = drop_last

        if sampler is None:
            sampler = RandomSampler(dataset, generator=self.generator) if shuffle else SequentialSampler(dataset)
        self.sampler = sampler
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, int(batch_size), drop_last)
        self.batch_sampler = batch_sampler
        self.batch_size = None if batch_size is None else int(batch_size)

    # ---- fetching -------------------------------------------------------------------
    def _fetch_batch(self, indices: Any) -> Any:
        dataset = self.dataset
        if self.collate_fn in (None, default_collate) and getattr(dataset, "batch_indexable", False):
            return dataset[np.asarray(indices, dtype=np.int64)]
        collate = self.collate_fn or default_collate
        if hasattr(dataset, "__getitems__"):
            samples = dataset.__getitems__(list(indices))
        else:
            samples = [dataset[i] for i in indices]
        return collate(samples)

    def _fetch_sample(self, index: Any) -> Any:
        sample = self.dataset[index]
        return self.collate_fn(sample) if self.collate_fn is not None else sample

    # ---- iteration ------------------------------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        # Both random draws of an epoch happen here, in the caller's thread: the order, and
        # the seed of the generator that seed-less transforms use while building batches.
        if self.batch_sampler is not None:
            batches, fetch = iter(self.batch_sampler), self._fetch_batch
        else:
            batches, fetch = iter(self.sampler), self._fetch_sample
        loader_seed = int(self._stream.get().integers(0, 2**63 - 1))
        try:
            length: Optional[int] = len(self)
        except TypeError:
            length = None
        if self.prefetch:
            return _PrefetchingIterator(batches, fetch, self.prefetch_factor, length, loader_seed)
        return _synchronous(batches, fetch, loader_seed)

    def __len__(self) -> int:
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __repr__(self) -> str:
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, sampler={type(self.sampler).__name__}, "
                f"drop_last={self.drop_last}, prefetch={self.prefetch})")
