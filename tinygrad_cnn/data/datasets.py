"""Image classification datasets: MNIST, FashionMNIST, CIFAR10, and ImageDataset for arrays.

    train = MNIST(root="~/data", train=True, download=True)
    image, label = train[0]                  # float32 (1, 28, 28) in [0, 1], int
    images, labels = train[np.arange(64)]    # float32 (64, 1, 28, 28), int64 (64,)
    train.data, train.targets                # uint8 (60000, 28, 28), int64 (60000,)

See ``tinygrad_cnn/data/download.py`` (and docs/data.md) for where files are looked for.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .dataloader import default_collate
from .dataset import Dataset, as_index_array, check_index, is_index_array
from .download import (ENV_VAR, DatasetNotFoundError, DownloadError, cache_dir, download_dir,
                       download_resources, extract_tar, search_dirs)
from .formats import (DatasetFormatError, read_cifar_bin, read_cifar_pickle, read_mnist_images,
                      read_mnist_labels)
from .transforms import ToTensor, supports_batches

Transform = Optional[Callable[[Any], Any]]


class ImageDataset(Dataset):
    """Images and integer labels held in memory, with torchvision-style transforms.

    Args:
        data: uint8 images ``(N, H, W)`` (grey) or ``(N, H, W, C)``.
        targets: integer labels ``(N,)``.
        transform: applied to each image; default :class:`ToTensor` (float32
            ``(C, H, W)`` in [0, 1]). Transforms from ``tinygrad_cnn.data.transforms``
            are applied to whole batches at once when the dataset is indexed with an
            index array (which the DataLoader does); other callables per image.
        target_transform: applied to each label (an int).

    ``dataset[i]`` -> ``(image, label)``; ``dataset[index_array]`` -> ``(images, labels)``
    stacked, e.g. float32 ``(B, C, H, W)`` and int64 ``(B,)``.
    """

    batch_indexable = True
    classes: List[str] = []

    def __init__(self, data: np.ndarray, targets: np.ndarray, transform: Transform = None,
                 target_transform: Transform = None, classes: Optional[Sequence[str]] = None) -> None:
        data, targets = np.asarray(data), np.asarray(targets)
        if data.dtype != np.uint8 or data.ndim not in (3, 4):
            raise ValueError(f"ImageDataset: data must be uint8 (N, H, W) or (N, H, W, C), got {data.dtype} {data.shape}")
        if targets.ndim != 1 or len(targets) != len(data) or (targets.size and targets.dtype.kind not in "iu"):
            raise ValueError(f"ImageDataset: targets must be {len(data)} integers, got {targets.dtype} {targets.shape}")
        self.data = data
        self.targets = targets.astype(np.int64)
        self.transform = ToTensor() if transform is None else transform
        self.target_transform = target_transform
        if classes is not None:
            self.classes = list(classes)

    @property
    def class_to_idx(self) -> Dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: Any) -> Tuple[Any, Any]:
        if is_index_array(index):
            return self._get_batch(as_index_array(index, len(self)))
        i = check_index(index, len(self))
        image, label = self.data[i], int(self.targets[i])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def _get_batch(self, idx: np.ndarray) -> Tuple[Any, Any]:
        images, labels = self.data[idx], self.targets[idx]
        if supports_batches(self.transform):
            grey = images.ndim == 3
            batch = images[..., None] if grey else images  # transforms take (N, H, W, C) uint8
            out = self.transform.apply_batch(batch)
            if grey and isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.ndim == 4 and out.shape[-1] == 1:
                out = out[..., 0]  # still raw grey images: same shape a per-image transform would give
            images = out
        else:
            images = default_collate([self.transform(im) for im in images])
        if self.target_transform is not None:
            if getattr(self.target_transform, "batchable", False) and hasattr(self.target_transform, "apply_batch"):
                labels = self.target_transform.apply_batch(labels)
            else:
                labels = default_collate([self.target_transform(int(t)) for t in labels])
        return images, labels

    def arrays(self) -> Tuple[Any, Any]:
        """The whole dataset as one batch, e.g. float32 ``(N, C, H, W)`` and int64 ``(N,)``."""
        return self._get_batch(np.arange(len(self)))

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}"]
        for name in ("split", "folder"):
            if getattr(self, name, None) is not None:
                lines.append(f"    {name.capitalize()}: {getattr(self, name)}")
        lines.append(f"    Transform: {self.transform!r}")
        return "\n".join(lines)


class _FileDataset(ImageDataset):
    """Shared search / download logic for the datasets that read official files."""

    folder_names: Tuple[str, ...] = ()   # sub-folders of each search dir that may hold the files
    download_folder: str = ""            # where download=True puts them, under root or the cache
    mirrors: List[str] = []              # base URLs, tried in order
    resources: List[Tuple[str, str]] = []  # (file name, published MD5)
    extra_help: str = ""

    def __init__(self, root: Optional[os.PathLike] = None, train: bool = True, download: bool = False,
                 transform: Transform = None, target_transform: Transform = None) -> None:
        if not isinstance(train, bool):
            raise TypeError(f"{type(self).__name__}: train must be a bool, got {train!r}")
        self.root = None if root is None else os.path.expanduser(str(root))
        self.train = train
        self.split = "train" if train else "test"
        found = self._locate()
        if found is None and download:
            self._download()
            found = self._locate()
        if found is None:
            raise DatasetNotFoundError(self._not_found_message())
        self.folder, files = found
        data, targets = self._load(files)
        super().__init__(data, targets, transform, target_transform)

    # subclasses: which files make up the split in `folder` (None if incomplete), and how to read them
    def _files_in(self, folder: Path) -> Optional[Dict[str, Path]]:
        raise NotImplementedError

    def _load(self, files: Dict[str, Path]) -> Tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _wanted(self) -> str:
        raise NotImplementedError

    def _locate(self) -> Optional[Tuple[Path, Dict[str, Path]]]:
        for folder, _ in search_dirs(self.root, self.folder_names):
            if folder.is_dir():
                files = self._files_in(folder)
                if files is not None:
                    return folder, files
        return None

    def _searched(self) -> str:
        lines = []
        for folder, origin in search_dirs(self.root, self.folder_names):
            state = "exists but is incomplete" if folder.is_dir() else "absent"
            lines.append(f"  {folder}  ({origin}; {state})")
        return "\n".join(lines)

    def _how_to_provide(self, offer_download: bool = True) -> str:
        target = Path(download_dir(self.root)) / self.download_folder
        download = f"  - pass download=True (fetches the official files into {target}), or\n"
        return (f"To provide it, either\n"
                f"{download if offer_download else ''}"
                f"  - put the files in a folder and pass it as root= / --data-dir, or\n"
                f"  - set ${ENV_VAR} to a folder containing {self.folder_names[0]}/"
                f"{self.extra_help}")

    def _not_found_message(self) -> str:
        return (f"{type(self).__name__} ({self.split} split) not found: looked for {self._wanted()} in\n"
                f"{self._searched()}\n{self._how_to_provide()}")

    def _download(self) -> None:
        target = download_dir(self.root) / self.download_folder
        try:
            download_resources(self.resources, self.mirrors, target)
        except DownloadError as e:
            raise type(e)(f"{type(self).__name__}: download failed.\n{e}\n"
                          f"Also looked for existing files in:\n{self._searched()}\n"
                          f"{self._how_to_provide(offer_download=False)}") from e


def _first_existing(folder: Path, stems: Sequence[str]) -> Optional[Path]:
    for stem in stems:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


class MNIST(_FileDataset):
    """MNIST handwritten digits (LeCun, Cortes, Burges): 60,000 train / 10,000 test, 28x28 grey.

    ``MNIST(root=None, train=True, download=False, transform=None, target_transform=None)``.
    Reads the four official IDX files, gzipped or not, from the first folder of the search
    path that has them (see docs/data.md). ``.data`` uint8 ``(N, 28, 28)``, ``.targets``
    int64 ``(N,)``; samples are float32 ``(1, 28, 28)`` in [0, 1] by default.
    """

    folder_names = ("mnist", "MNIST/raw", "MNIST")
    download_folder = "mnist"
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = [("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                 ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
                 ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
                 ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c")]
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def _stems(self) -> Tuple[List[str], List[str]]:
        prefix = "train" if self.train else "t10k"
        return ([f"{prefix}-images-idx3-ubyte", f"{prefix}-images.idx3-ubyte"],
                [f"{prefix}-labels-idx1-ubyte", f"{prefix}-labels.idx1-ubyte"])

    def _wanted(self) -> str:
        images, labels = self._stems()
        return f"{images[0]}[.gz] and {labels[0]}[.gz]"

    def _files_in(self, folder: Path) -> Optional[Dict[str, Path]]:
        image_stems, label_stems = self._stems()
        images, labels = _first_existing(folder, image_stems), _first_existing(folder, label_stems)
        if images is None or labels is None:
            return None
        return {"images": images, "labels": labels}

    def _load(self, files: Dict[str, Path]) -> Tuple[np.ndarray, np.ndarray]:
        images = read_mnist_images(files["images"])
        labels = read_mnist_labels(files["labels"], num_classes=len(self.classes))
        if len(images) != len(labels):
            raise DatasetFormatError(f"{files['images']} holds {len(images)} images but {files['labels']} holds "
                                     f"{len(labels)} labels; the two files do not belong together")
        return images, labels


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, Zalando, MIT licence): MNIST's format and
    sizes, ten kinds of clothing. Same signature and search logic as :class:`MNIST`, with
    folder ``fashion-mnist/`` (Debian: ``apt install dataset-fashion-mnist``)."""

    folder_names = ("fashion-mnist", "FashionMNIST/raw", "FashionMNIST", "fashion_mnist")
    download_folder = "fashion-mnist"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
               "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"]
    resources = [("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
                 ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
                 ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
                 ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310")]
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    extra_help = ",\n  - or on Debian/Ubuntu: sudo apt install dataset-fashion-mnist"


class CIFAR10(_FileDataset):
    """CIFAR-10 (Krizhevsky 2009): 50,000 train / 10,000 test colour images 32x32, 10 classes.

    ``CIFAR10(root=None, train=True, download=False, transform=None, target_transform=None)``.
    Reads ``cifar-10-batches-bin/`` (preferred: no pickle at all) or
    ``cifar-10-batches-py/`` (through a restricted unpickler that accepts only plain
    containers and numeric arrays). ``.data`` uint8 ``(N, 32, 32, 3)``, ``.targets`` int64
    ``(N,)``; samples are float32 ``(3, 32, 32)`` in [0, 1] by default.
    ``download=True`` fetches and unpacks the official binary archive.
    """

    folder_names = ("cifar-10-batches-bin", "cifar-10-batches-py")
    download_folder = ""  # the archive unpacks to cifar-10-batches-bin/ itself
    mirrors = ["https://www.cs.toronto.edu/~kriz/"]
    resources = [("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530")]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    def _names(self) -> List[str]:
        return [f"data_batch_{k}" for k in range(1, 6)] if self.train else ["test_batch"]

    def _wanted(self) -> str:
        names = self._names()
        return f"{', '.join(n + '.bin' for n in names)} (or the python-format {', '.join(names)})"

    def _files_in(self, folder: Path) -> Optional[Dict[str, Any]]:
        for suffix, fmt in ((".bin", "bin"), ("", "py")):
            paths = [folder / (name + suffix) for name in self._names()]
            if all(p.is_file() for p in paths):
                return {"format": fmt, **{p.name: p for p in paths}}
        return None

    def _load(self, files: Dict[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
        files = dict(files)
        fmt = files.pop("format")
        reader = read_cifar_bin if fmt == "bin" else read_cifar_pickle
        parts = [reader(path, num_classes=len(self.classes)) for path in files.values()]
        self.format = fmt
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def _download(self) -> None:
        base = download_dir(self.root)
        super()._download()
        archive = base / self.resources[0][0]
        try:
            extract_tar(archive, base)
        finally:
            if archive.exists():
                archive.unlink()
