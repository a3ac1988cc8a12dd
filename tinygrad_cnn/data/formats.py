"""Readers (and small writers) for the official dataset file formats.

* IDX (MNIST, Fashion-MNIST): ``read_idx`` / ``write_idx``, gzipped or raw.
* CIFAR-10 binary (``cifar-10-batches-bin/*.bin``): ``read_cifar_bin`` / ``write_cifar_bin``.
* CIFAR-10 python (``cifar-10-batches-py/*``): ``read_cifar_pickle`` through
  ``safe_unpickle``, a restricted unpickler that builds only plain containers and
  plain numeric NumPy arrays and never calls anything else a pickle asks for.

Every structural problem raises :class:`DatasetFormatError` naming the file and saying
what was expected.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import zlib
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]


class DatasetFormatError(ValueError):
    """A dataset file is truncated, corrupt, or not the format it should be."""


class UnsafePickleError(DatasetFormatError, pickle.UnpicklingError):
    """A pickle asked for something other than plain containers and NumPy arrays."""


# ---------------------------------------------------------------------------- gzip

def read_bytes(path: PathLike) -> bytes:
    """The file's bytes, gunzipped if it starts with the gzip magic ``1f 8b``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as g:
                    return g.read()
            return f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DatasetFormatError(f"{path}: corrupt or truncated gzip file ({e}); delete it and download it again") from e


# ---------------------------------------------------------------------------- IDX

# IDX type codes (third byte of the magic number) -> big-endian NumPy dtype
IDX_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes: magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 sizes, data."""
    if len(raw) < 4:
        raise DatasetFormatError(f"{name}: only {len(raw)} bytes, too short for an IDX header (4 bytes of magic number)")
    magic = int.from_bytes(raw[:4], "big")
    code, ndim = raw[2], raw[3]
    if raw[0] != 0 or raw[1] != 0 or code not in IDX_DTYPES or ndim == 0:
        raise DatasetFormatError(f"{name}: not an IDX file (magic number 0x{magic:08X}; expected 0x0000TTDD with "
                                 "type TT in 08,09,0B,0C,0D,0E and DD >= 1 dimensions, e.g. 0x00000803 for images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetFormatError(f"{name}: truncated IDX header ({len(raw)} bytes, the {ndim} dimension sizes need {header})")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        what = "truncated" if found < expected else "too long"
        raise DatasetFormatError(f"{name}: {what}: the header says shape {dims} of {dtype.name} = {expected} bytes "
                                 f"of data, but the file has {found}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw) into a native-endian array of the stored shape."""
    return parse_idx(read_bytes(path), str(path))


def write_idx(path: PathLike, array: np.ndarray, compress: Optional[bool] = None) -> None:
    """Write ``array`` as an IDX file (gzipped if ``compress``, default: name ends in .gz)."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("=").str: k for k, v in IDX_DTYPES.items()}
    native = array.dtype.newbyteorder("=").str
    if native not in codes or array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: cannot store dtype {array.dtype} with {array.ndim} dimensions in IDX")
    code = codes[native]
    body = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes() \
        + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    with open(path, "wb") as f:
        f.write(gzip.compress(body) if compress else body)


def read_mnist_images(path: PathLike) -> np.ndarray:
    """IDX image file (magic 0x00000803) -> uint8 ``(N, H, W)``."""
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != 3:
        raise DatasetFormatError(f"{path}: expected an IDX image file (magic 0x00000803: uint8, 3 dimensions), "
                                 f"got {array.dtype} with shape {array.shape}")
    return array


def read_mnist_labels(path: PathLike, num_classes: int = 10) -> np.ndarray:
    """IDX label file (magic 0x00000801) -> int64 ``(N,)`` with values in ``[0, num_classes)``."""
    array = read_idx(path)
    if array.dtype != np.uint8 or array.ndim != 1:
        raise DatasetFormatError(f"{path}: expected an IDX label file (magic 0x00000801: uint8, 1 dimension), "
                                 f"got {array.dtype} with shape {array.shape}")
    if array.size and array.max() >= num_classes:
        raise DatasetFormatError(f"{path}: label {int(array.max())} is not a class in 0..{num_classes - 1}")
    return array.astype(np.int64)


# ---------------------------------------------------------------------------- CIFAR-10 binary

CIFAR_SHAPE = (3, 32, 32)
CIFAR_PIXELS = 3 * 32 * 32  # 3072 bytes per image, channel-major (R plane, G plane, B plane)
CIFAR_RECORD = 1 + CIFAR_PIXELS


def read_cifar_bin(path: PathLike, num_classes: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """A ``cifar-10-batches-bin`` file: records of <1 label byte><3072 CHW pixel bytes>.

    Returns images uint8 ``(N, 32, 32, 3)`` (channels last, like torchvision's ``.data``)
    and labels int64 ``(N,)``.
    """
    raw = read_bytes(path)
    if len(raw) == 0 or len(raw) % CIFAR_RECORD:
        raise DatasetFormatError(f"{path}: {len(raw)} bytes is not a whole number of CIFAR-10 records "
                                 f"({CIFAR_RECORD} bytes each: 1 label byte + {CIFAR_PIXELS} pixel bytes); "
                                 "the file is truncated or not a CIFAR-10 binary batch")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise DatasetFormatError(f"{path}: record {bad} has label {int(labels[bad])}, not a CIFAR-10 class "
                                 f"0..{num_classes - 1} (is this CIFAR-100, or a damaged file?)")
    images = records[:, 1:].reshape(-1, *CIFAR_SHAPE).transpose(0, 2, 3, 1).copy()
    return images, labels


def write_cifar_bin(path: PathLike, images: np.ndarray, labels: np.ndarray) -> None:
    """Write uint8 images ``(N, 32, 32, 3)`` and labels ``(N,)`` as a CIFAR-10 binary batch."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.dtype != np.uint8 or images.shape[1:] != (32, 32, 3) or labels.shape != images.shape[:1]:
        raise ValueError(f"write_cifar_bin: expected uint8 images (N, 32, 32, 3) and labels (N,), "
                         f"got {images.dtype} {images.shape} and {labels.shape}")
    records = np.empty((len(images), CIFAR_RECORD), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as f:
        f.write(records.tobytes())


# ---------------------------------------------------------------------------- restricted unpickling
#
# A pickle is a small program: its GLOBAL / STACK_GLOBAL opcodes import any callable
# and REDUCE calls it, so `pickle.load` on an untrusted file can run `os.system`.
# `safe_unpickle` overrides `find_class` (the only way a pickle gets a callable) and
# hands out just the few stand-ins below, which build plain numeric arrays from raw
# bytes with np.frombuffer. NumPy's own reconstruction code is never given
# attacker-controlled state, and object arrays are impossible.

_PLAIN_DTYPES = {"b1", "u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"}


class _DTypeSpec:
    """What ``numpy.dtype('u1', False, True)`` (+ BUILD state) in a pickle becomes."""

    def __init__(self, spec: Any) -> None:
        if isinstance(spec, bytes):
            spec = spec.decode("latin1")
        if not isinstance(spec, str) or spec.lstrip("<>|=") not in _PLAIN_DTYPES:
            raise UnsafePickleError(f"dtype {spec!r} is not a plain numeric dtype")
        self.spec = spec.lstrip("<>|=")
        self.byteorder = spec[0] if spec[:1] in ("<", ">") else "="

    def __setstate__(self, state: Any) -> None:
        # numpy writes (version, byteorder, subarray, names, fields, elsize, alignment, flags)
        if not (isinstance(state, tuple) and len(state) >= 5 and state[2] is None and state[3] is None
                and state[4] is None and state[1] in ("<", ">", "|", "=")):
            raise UnsafePickleError(f"dtype state {state!r} is not a plain numeric dtype")
        self.byteorder = state[1]

    def numpy(self) -> np.dtype:
        order = self.byteorder if self.byteorder in ("<", ">") else "="
        return np.dtype(order + self.spec)


def _as_raw_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str):  # Python-2 pickles loaded with encoding="latin1"
        return data.encode("latin1")
    raise UnsafePickleError(f"array data must be bytes, got {type(data).__name__}")


def _array_from_bytes(data: Any, dtype: Any, shape: Any, fortran: bool) -> np.ndarray:
    if not isinstance(dtype, _DTypeSpec):
        raise UnsafePickleError("array dtype is not a plain numeric dtype")
    if not (isinstance(shape, tuple) and all(isinstance(s, int) and s >= 0 for s in shape)):
        raise UnsafePickleError(f"array shape {shape!r} is not a tuple of non-negative ints")
    dt = dtype.numpy()
    raw = _as_raw_bytes(data)
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) != size * dt.itemsize:
        raise UnsafePickleError(f"array of shape {shape} and dtype {dt} needs {size * dt.itemsize} bytes, "
                                f"the pickle holds {len(raw)}")
    return np.frombuffer(raw, dtype=dt).reshape(shape, order="F" if fortran else "C").astype(dt.newbyteorder("="))


class _NDArrayClass:
    """Stand-in for the ``numpy.ndarray`` class object a pickle passes to _reconstruct."""


class _PendingArray:
    """What ``_reconstruct(ndarray, (0,), b'b')`` returns; BUILD then gives it its state."""

    def __init__(self) -> None:
        self.array: Any = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5 and isinstance(state[0], int):
            state = state[1:]  # drop the version number
        if not (isinstance(state, tuple) and len(state) == 4):
            raise UnsafePickleError("unexpected ndarray state in pickle")
        shape, dtype, fortran, data = state
        self.array = _array_from_bytes(data, dtype, shape, bool(fortran))


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> _PendingArray:
    if subtype is not _NDArrayClass:
        raise UnsafePickleError("only plain numpy.ndarray may be reconstructed")
    return _PendingArray()


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    return _array_from_bytes(buf, dtype, tuple(shape), order == "F")


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, _DTypeSpec):
        raise UnsafePickleError("scalar dtype is not a plain numeric dtype")
    return _array_from_bytes(data, dtype, (), False)[()]


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Python-3 protocol-2 pickles store bytes as _codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode is allowed only to rebuild bytes (latin1), got {encoding!r}")
    return text.encode("latin1")


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _NDArrayClass,
    ("numpy", "dtype"): lambda spec, align=False, copy=False: _DTypeSpec(spec),
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _codecs_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(f"refusing to load {module}.{name}: only plain containers and NumPy arrays "
                                    "are allowed in dataset pickles") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refusing persistent ids in a dataset pickle")


def _finish(obj: Any) -> Any:
    """Replace the array stand-ins by real arrays, checking nothing else slipped in."""
    if isinstance(obj, _PendingArray):
        if obj.array is None:
            raise UnsafePickleError("an ndarray in the pickle was never given its data")
        return obj.array
    if isinstance(obj, dict):
        return {_finish(k): _finish(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finish(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_finish(v) for v in obj)
    if isinstance(obj, (np.ndarray, np.generic, str, bytes, bytearray, int, float, complex, bool, type(None))):
        return obj
    raise UnsafePickleError(f"unexpected object of type {type(obj).__name__} in a dataset pickle")


def safe_unpickle(data: bytes, name: str = "<bytes>") -> Any:
    """Unpickle ``data`` allowing only containers, numbers, strings, bytes and numeric arrays.

    Anything else (``os.system``, ``builtins.eval``, arbitrary classes, object arrays)
    raises :class:`UnsafePickleError` *before* it can be called.
    """
    try:
        obj = _RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load()
        return _finish(obj)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{name}: {e}") from None
    except Exception as e:  # truncated/corrupt pickles fail in many ways
        raise DatasetFormatError(f"{name}: not a valid pickle ({type(e).__name__}: {e})") from e


def _key(d: dict, key: str) -> Any:
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    raise KeyError(key)


def read_cifar_pickle(path: PathLike, num_classes: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """A ``cifar-10-batches-py`` batch (a pickled dict with ``data`` (N, 3072) uint8 and
    ``labels``), read with :func:`safe_unpickle`. Returns images uint8 ``(N, 32, 32, 3)``
    and labels int64 ``(N,)``."""
    batch = safe_unpickle(read_bytes(path), str(path))
    if not isinstance(batch, dict):
        raise DatasetFormatError(f"{path}: expected a pickled dict with 'data' and 'labels', got {type(batch).__name__}")
    try:
        data, labels = _key(batch, "data"), _key(batch, "labels")
    except KeyError as e:
        raise DatasetFormatError(f"{path}: the pickled dict has no {e.args[0]!r} entry "
                                 f"(keys: {sorted(map(repr, batch))})") from None
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        raise DatasetFormatError(f"{path}: 'data' must be a uint8 array of shape (N, {CIFAR_PIXELS}), got "
                                 f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    try:
        labels = np.asarray(labels)
    except Exception:
        labels = np.zeros(0)
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(data):
        raise DatasetFormatError(f"{path}: 'labels' must be {len(data)} integers, one per image")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(f"{path}: labels must lie in 0..{num_classes - 1}, found "
                                 f"{int(labels.min())}..{int(labels.max())}")
    images = data.reshape(-1, *CIFAR_SHAPE).transpose(0, 2, 3, 1).copy()
    return images, labels.astype(np.int64)
