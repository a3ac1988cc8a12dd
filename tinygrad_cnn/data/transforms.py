"""Image transforms that work on one image or on a whole batch at once.

Layout convention (like PIL images vs. tensors in torchvision):

* ``uint8`` arrays are images as stored on disk, **channels last**:
  ``(H, W)``, ``(H, W, C)``, or a batch ``(N, H, W, C)``;
* floating arrays are network inputs, **channels first**:
  ``(H, W)``, ``(C, H, W)``, or a batch ``(N, C, H, W)``.

A 4-D array is always a batch. Random transforms draw independently for every image
of a batch, in one vectorised step (no Python loop over images or pixels). Each random
transform draws from the ``generator=`` you give it (int seed or Generator); without
one it draws from the global generator (reset by ``tinygrad_cnn.data.seed(n)``), or,
inside a DataLoader, from the loader's per-epoch generator (see ``seeding.py``).

Every transform here has ``apply_batch(x)`` (x a 4-D batch) and ``batchable`` (True,
except for a ``Compose`` holding a per-sample callable, or ``Lambda(f)`` without
``batched=True``); ``dataset[index_array]`` and the DataLoader use it to transform whole
batches. Any other callable still works as a transform, applied one sample at a time.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .seeding import GeneratorLike, RandomStream


def _check_image(x: Any, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array, got {type(x).__name__}")
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"{name}: expected an image (H, W), (H, W, C) / (C, H, W) or a batch of 4 dims, "
                         f"got shape {x.shape}")
    if x.dtype != np.uint8 and x.dtype.kind != "f":
        raise TypeError(f"{name}: expected a uint8 (channels-last) or floating (channels-first) array, "
                        f"got dtype {x.dtype}")
    return x


def _spatial_axes(x: np.ndarray) -> Tuple[int, int]:
    """The (H, W) axes of ``x`` under the layout convention of this module."""
    if x.ndim == 2:
        return 0, 1
    if x.dtype == np.uint8:  # channels last: (H, W, C) or (N, H, W, C)
        return x.ndim - 3, x.ndim - 2
    return x.ndim - 2, x.ndim - 1  # channels first: (C, H, W) or (N, C, H, W)


def supports_batches(transform: Any) -> bool:
    """Whether ``transform`` can be applied to a whole 4-D batch via ``apply_batch``."""
    if transform is None:
        return True
    return callable(getattr(transform, "apply_batch", None)) and bool(getattr(transform, "batchable", True))


class Transform:
    """Base class: ``__call__`` takes one image or a 4-D batch; ``apply_batch`` a batch."""

    batchable = True

    def __call__(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def apply_batch(self, x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 4:
            raise ValueError(f"{type(self).__name__}.apply_batch: expected a 4-D batch (N, H, W, C) uint8 or "
                             f"(N, C, H, W) float, got {getattr(x, 'shape', type(x).__name__)}")
        return self(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Compose(Transform):
    """Apply ``transforms`` one after the other."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)
        for t in self.transforms:
            if not callable(t):
                raise TypeError(f"Compose: every transform must be callable, got {t!r}")

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def apply_batch(self, x: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            if not supports_batches(t):
                raise TypeError(f"Compose.apply_batch: {t!r} has no apply_batch; apply it per sample")
            x = t.apply_batch(x)
        return x

    @property
    def batchable(self) -> bool:
        return all(supports_batches(t) for t in self.transforms)

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToTensor(Transform):
    """uint8 image(s) channels-last -> float32 channels-first in [0, 1].

    ``(H, W)`` -> ``(1, H, W)``; ``(H, W, C)`` -> ``(C, H, W)``; ``(N, H, W, C)`` ->
    ``(N, C, H, W)``; values divided by 255. Floating input is already channels-first
    and is only cast to float32 (so applying ToTensor twice is harmless).
    """

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _check_image(x, "ToTensor")
        if x.dtype.kind == "f":
            return x.astype(np.float32, copy=False)
        if x.ndim == 2:
            x = x[None, :, :]
        elif x.ndim == 3:
            x = x.transpose(2, 0, 1)
        else:
            x = x.transpose(0, 3, 1, 2)
        out = np.empty(x.shape, dtype=np.float32)
        np.multiply(x, np.float32(1.0 / 255.0), out=out, casting="unsafe")
        return out


class Normalize(Transform):
    """``(x - mean[c]) / std[c]`` per channel, on float ``(C, H, W)`` or ``(N, C, H, W)``.

    ``mean`` and ``std`` are sequences with one value per channel (or one value for all).
    """

    def __init__(self, mean: Union[float, Sequence[float]], std: Union[float, Sequence[float]],
                 inplace: bool = False) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be 1-D sequences, got {mean!r} and {std!r}")
        if len(self.mean) != len(self.std) and 1 not in (len(self.mean), len(self.std)):
            raise ValueError(f"Normalize: mean has {len(self.mean)} values but std has {len(self.std)}")
        if np.any(self.std == 0):
            raise ValueError(f"Normalize: std must not contain 0, got {std!r}")
        self.inplace = inplace

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _check_image(x, "Normalize")
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a floating (channels-first) array, got dtype {x.dtype}; "
                            "apply ToTensor() first")
        channels = 1 if x.ndim == 2 else x.shape[-3]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if len(values) not in (1, channels):
                raise ValueError(f"Normalize: {name} has {len(values)} values but the input has {channels} "
                                 f"channels (shape {x.shape})")
        shape = (-1, 1, 1) if x.ndim >= 3 else (1, 1)
        mean = self.mean.astype(x.dtype).reshape(shape)
        inv_std = (1.0 / self.std).astype(x.dtype).reshape(shape)
        out = x if self.inplace else np.empty_like(x)
        np.subtract(x, mean, out=out)
        np.multiply(out, inv_std, out=out)
        return out

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _pair(size: Union[int, Sequence[int]], name: str) -> Tuple[int, int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        return int(size), int(size)
    if isinstance(size, (tuple, list)) and len(size) in (1, 2) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in size):
        return (int(size[0]), int(size[-1]))
    raise TypeError(f"{name}: expected an int or a (h, w) pair of ints, got {size!r}")


def _padding4(padding: Union[int, Sequence[int]]) -> Tuple[int, int, int, int]:
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = int(padding)
        return p, p, p, p
    if isinstance(padding, (tuple, list)) and all(isinstance(p, numbers.Integral) for p in padding):
        if len(padding) == 1:
            return (int(padding[0]),) * 4  # type: ignore[return-value]
        if len(padding) == 2:  # (left/right, top/bottom)
            return int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])
        if len(padding) == 4:
            return int(padding[0]), int(padding[1]), int(padding[2]), int(padding[3])
    raise TypeError(f"RandomCrop: padding must be an int or a sequence of 1, 2 or 4 ints, got {padding!r}")


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


class RandomCrop(Transform):
    """Crop a random ``size`` window, after optional padding (torchvision semantics).

    ``padding``: int (all sides), ``(lr, tb)`` or ``(left, top, right, bottom)``;
    ``padding_mode``: ``constant`` (with ``fill``), ``edge``, ``reflect`` or ``symmetric``;
    ``pad_if_needed``: pad images smaller than ``size``. Every image of a batch gets its
    own offsets, drawn uniformly over all valid positions.
    Shapes: ``(..., H, W)`` -> ``(..., h, w)`` along the spatial axes of the layout.
    """

    def __init__(self, size: Union[int, Sequence[int]], padding: Optional[Union[int, Sequence[int]]] = None,
                 pad_if_needed: bool = False, fill: float = 0, padding_mode: str = "constant",
                 generator: GeneratorLike = None) -> None:
        self.size = _pair(size, "RandomCrop size")
        if min(self.size) <= 0:
            raise ValueError(f"RandomCrop: size must be positive, got {size!r}")
        self.padding = (0, 0, 0, 0) if padding is None else _padding4(padding)
        if min(self.padding) < 0:
            raise ValueError(f"RandomCrop: padding must be >= 0, got {padding!r}")
        if padding_mode not in _PAD_MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {sorted(_PAD_MODES)}, got {padding_mode!r}")
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = RandomStream(generator)

    def _pad(self, x: np.ndarray, hax: int, wax: int, left: int, top: int, right: int, bottom: int) -> np.ndarray:
        if left == top == right == bottom == 0:
            return x
        widths = [(0, 0)] * x.ndim
        widths[hax] = (top, bottom)
        widths[wax] = (left, right)
        if self.padding_mode == "constant":
            return np.pad(x, widths, mode="constant", constant_values=self.fill)
        return np.pad(x, widths, mode=_PAD_MODES[self.padding_mode])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _check_image(x, "RandomCrop")
        hax, wax = _spatial_axes(x)
        x = self._pad(x, hax, wax, *self.padding)
        h, w = self.size
        if self.pad_if_needed:
            extra_h, extra_w = max(0, h - x.shape[hax]), max(0, w - x.shape[wax])
            x = self._pad(x, hax, wax, extra_w, extra_h, extra_w, extra_h)
        H, W = x.shape[hax], x.shape[wax]
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the (padded) image {(H, W)}; "
                             "use padding= or pad_if_needed=True")
        rng = self.generator.get()
        batched = x.ndim == 4
        count = x.shape[0] if batched else 1
        top = rng.integers(0, H - h + 1, size=count)
        left = rng.integers(0, W - w + 1, size=count)
        # windows[..., i, j, :, :] is the (h, w) crop whose corner is (i, j); no copy yet.
        windows = sliding_window_view(x, (h, w), axis=(hax, wax))
        if not batched:
            crop = windows[(slice(None),) * hax + (top[0], left[0])]  # (..., h, w) or (C, h, w)
            return np.ascontiguousarray(np.moveaxis(crop, (-2, -1), (hax, wax))) if x.ndim == 3 and hax == 0 \
                else np.ascontiguousarray(crop)
        n = np.arange(count)
        if hax == 1:  # uint8 (N, H, W, C): windows (N, H', W', C, h, w) -> (N, C, h, w)
            crops = windows[n, top, left]
            return np.ascontiguousarray(crops.transpose(0, 2, 3, 1))
        crops = windows[n, :, top, left]  # float (N, C, H, W): windows (N, C, H', W', h, w) -> (N, C, h, w)
        return np.ascontiguousarray(crops)

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomHorizontalFlip(Transform):
    """Mirror left-right with probability ``p`` (each image of a batch independently)."""

    def __init__(self, p: float = 0.5, generator: GeneratorLike = None) -> None:
        if not isinstance(p, numbers.Real) or not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be a probability in [0, 1], got {p!r}")
        self.p = float(p)
        self.generator = RandomStream(generator)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = _check_image(x, "RandomHorizontalFlip")
        _, wax = _spatial_axes(x)
        rng = self.generator.get()
        if x.ndim != 4:
            return np.flip(x, axis=wax).copy() if rng.random() < self.p else x
        flip = rng.random(x.shape[0]) < self.p
        out = x.copy()
        out[flip] = np.flip(x[flip], axis=wax)
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Lambda(Transform):
    """Wrap a function as a transform. ``batched=True`` promises it also handles 4-D batches."""

    def __init__(self, lambd: Callable[[Any], Any], batched: bool = False) -> None:
        if not callable(lambd):
            raise TypeError(f"Lambda: expected a callable, got {lambd!r}")
        self.lambd = lambd
        self.batched = batched

    def __call__(self, x: Any) -> Any:
        return self.lambd(x)

    def apply_batch(self, x: Any) -> Any:
        if not self.batched:
            raise TypeError("Lambda.apply_batch: this Lambda works on single samples; pass batched=True")
        return self.lambd(x)

    @property
    def batchable(self) -> bool:
        return self.batched
