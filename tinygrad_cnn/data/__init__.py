"""tinygrad_cnn.data: datasets, DataLoader and transforms, in NumPy only (never a Tensor).

    from tinygrad_cnn.data import MNIST, DataLoader, transforms as T
    train = MNIST(root=None, train=True, download=True,
                  transform=T.Compose([T.ToTensor(), T.Normalize((0.1307,), (0.3081,))]))
    loader = DataLoader(train, batch_size=64, shuffle=True)
    for images, labels in loader:   # float32 (64, 1, 28, 28), int64 (64,)
        ...

Randomness (shuffling, random_split, random transforms) follows :func:`seed`
(``tinygrad_cnn.manual_seed`` calls it) unless a ``generator``/``seed`` is given.
See docs/data.md for where datasets are looked for and how downloads are verified.
"""
from . import transforms
from .dataloader import DataLoader, default_collate
from .dataset import ConcatDataset, Dataset, Subset, TensorDataset, random_split
from .datasets import CIFAR10, MNIST, FashionMNIST, ImageDataset
from .download import (ChecksumError, DatasetNotFoundError, DownloadError, UnsafeArchiveError, cache_dir,
                       check_integrity, download_url, extract_tar)
from .formats import (DatasetFormatError, UnsafePickleError, read_cifar_bin, read_cifar_pickle, read_idx,
                      safe_unpickle, write_cifar_bin, write_idx)
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler, SubsetRandomSampler
from .seeding import initial_seed, seed

__all__ = [
    "transforms", "DataLoader", "default_collate",
    "Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split",
    "ImageDataset", "MNIST", "FashionMNIST", "CIFAR10",
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler", "BatchSampler",
    "seed", "initial_seed",
    "DatasetNotFoundError", "DownloadError", "ChecksumError", "UnsafeArchiveError",
    "DatasetFormatError", "UnsafePickleError",
    "cache_dir", "check_integrity", "download_url", "extract_tar",
    "read_idx", "write_idx", "read_cifar_bin", "write_cifar_bin", "read_cifar_pickle", "safe_unpickle",
]
