"""Safe checkpoints: ``tinygrad_cnn.save(obj, path)`` and ``tinygrad_cnn.load(path)``.

``obj`` is a nest of dicts, lists and tuples whose leaves are Tensors, NumPy arrays, numbers,
strings, booleans or None -- a model's ``state_dict()``, an optimizer's, a scheduler's, or a
dict holding several of them plus the epoch number.

Formats (chosen by the file name):

* ``.npz``: NumPy's zip of arrays, read back with ``allow_pickle=False``.
* anything else (``.safetensors`` recommended): the safetensors format, written with the
  ``safetensors`` package's NumPy API. Tensors are stored under their state-dict names
  (``features.0.weight``), so the file loads with ``safetensors.torch.load_file`` into a PyTorch
  model; a file written by ``safetensors.torch.save_file(model.state_dict(), path)`` loads here.

The nesting and the non-tensor values are stored as JSON (in the safetensors header metadata,
or as a small uint8 array in the npz). Nothing is ever unpickled: a pickle (``torch.save``)
file, a truncated file, or a header that promises more bytes than the file holds is rejected
with a clear error before any tensor is read.

Writes are atomic: the bytes go to a temporary file in the same directory, which is flushed,
fsync'ed and then renamed over the target with ``os.replace``. A crash mid-save leaves the
previous checkpoint intact.
"""
from __future__ import annotations

import io as _io
import json
import math
import os
import struct
import tempfile
import zipfile
from collections import Counter, OrderedDict
from typing import Any, Dict, Tuple, Union

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "CheckpointError"]

PathLike = Union[str, "os.PathLike[str]"]

_META_KEY = "tinygrad_cnn"          # safetensors metadata entry holding the JSON structure
_NPZ_STRUCT = "__tinygrad_cnn_structure__"
_FORMAT_VERSION = 1
_SUPPORTED_DTYPES = {np.dtype(t) for t in (np.float16, np.float32, np.float64, np.int8, np.int16, np.int32,
                                           np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.bool_)}


class CheckpointError(ValueError):
    """A checkpoint file is unsafe, damaged, or not in a format tinygrad_cnn reads."""


# ----------------------------------------------------------------------------- structure <-> JSON

def _encode(obj: Any, path: str, tensors: Dict[str, np.ndarray]) -> Any:
    """JSON-able description of ``obj``; arrays are moved into ``tensors`` under a name."""
    if isinstance(obj, (Tensor, np.ndarray)):
        arr = obj.data if isinstance(obj, Tensor) else obj
        if arr.dtype not in _SUPPORTED_DTYPES:
            raise TypeError(f"save: array at {path or '<root>'} has dtype {arr.dtype}, which cannot be stored "
                            f"(supported: {sorted(str(d) for d in _SUPPORTED_DTYPES)})")
        name = path or "tensor"
        base, k = name, 1
        while name in tensors:
            name = f"{base}#{k}"
            k += 1
        tensors[name] = arr if arr.flags.c_contiguous else np.array(arr, order="C")   # keeps 0-d shape
        return {"__tensor__" if isinstance(obj, Tensor) else "__ndarray__": name}
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(obj, Counter):
        return {"__counter__": [[_encode_key(k, path), v] for k, v in obj.items()]}
    if isinstance(obj, dict):
        pairs = [[_encode_key(k, path), _encode(v, _join(path, k), tensors)] for k, v in obj.items()]
        tag = "__odict__" if isinstance(obj, OrderedDict) else "__dict__"
        return {tag: pairs}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, _join(path, i), tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, _join(path, i), tensors) for i, v in enumerate(obj)]
    hint = " (save its .state_dict() instead)" if hasattr(obj, "state_dict") else ""
    raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at {path or '<root>'}{hint}; "
                    "checkpoints hold dicts, lists and tuples of Tensors, arrays, numbers, strings, bools and None")


def _encode_key(k: Any, path: str) -> Any:
    if isinstance(k, (str, bool)) or k is None:
        return k
    if isinstance(k, (int, np.integer)):
        return {"__int__": int(k)}
    if isinstance(k, (float, np.floating)):
        return {"__float__": repr(float(k))}
    if isinstance(k, tuple):
        return {"__tuple__": [_encode_key(v, path) for v in k]}
    raise TypeError(f"save: dict key {k!r} at {path or '<root>'} has type {type(k).__name__}; "
                    "keys must be str, int, float, bool, None or tuples of those")


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _decode(node: Any, tensors: Dict[str, np.ndarray]) -> Any:
    if node is None or isinstance(node, (bool, str, int, float)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if isinstance(node, dict) and len(node) == 1:
        (tag, value), = node.items()
        if tag in ("__tensor__", "__ndarray__"):
            if value not in tensors:
                raise CheckpointError(f"load: the structure refers to tensor {value!r}, which is not in the file")
            arr = tensors[value]
            return Tensor(arr) if tag == "__tensor__" else arr
        if tag == "__float__":
            return float(value)
        if tag == "__int__":
            return int(value)
        if tag == "__tuple__":
            return tuple(_decode(v, tensors) for v in value)
        if tag in ("__dict__", "__odict__", "__counter__"):
            out = OrderedDict() if tag == "__odict__" else (Counter() if tag == "__counter__" else {})
            for k, v in value:
                out[_decode_key(k)] = _decode(v, tensors)
            return out
    raise CheckpointError(f"load: unrecognised entry in the checkpoint structure: {str(node)[:80]}")


def _decode_key(k: Any) -> Any:
    if isinstance(k, dict) and len(k) == 1:
        (tag, value), = k.items()
        if tag == "__int__":
            return int(value)
        if tag == "__float__":
            return float(value)
        if tag == "__tuple__":
            return tuple(_decode_key(v) for v in value)
    if k is None or isinstance(k, (str, bool)):
        return k
    raise CheckpointError(f"load: unrecognised dict key in the checkpoint structure: {k!r}")


# ----------------------------------------------------------------------------- atomic write

def _atomic_write(path: PathLike, write: Any) -> None:
    """Call ``write(fileobj)`` on a temp file next to ``path``, fsync it, then rename over ``path``."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:   # make the rename itself durable (best effort: not every OS lets us open a directory)
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def _safetensors_numpy():
    try:
        import safetensors.numpy as stn
    except ImportError:
        raise ImportError("tinygrad_cnn.save/load need the 'safetensors' package for safetensors files: "
                          "pip install 'tinygrad_cnn[io]' (or pip install safetensors), or save to a "
                          "path ending in .npz instead") from None
    return stn


def _is_npz(path: PathLike) -> bool:
    return os.fspath(path).lower().endswith(".npz")


# ----------------------------------------------------------------------------- save

def save(obj: Any, path: PathLike) -> None:
    """Write ``obj`` (a nest of dicts/lists/tuples of Tensors, arrays and plain values) to ``path``.

    ``path`` ending in ``.npz`` -> NumPy npz; anything else -> safetensors. The write is atomic.
    A dict of str -> Tensor (a model's ``state_dict()``) is stored under exactly those names.
    """
    tensors: Dict[str, np.ndarray] = {}
    structure = _encode(obj, "", tensors)
    header = json.dumps({"version": _FORMAT_VERSION, "structure": structure}, allow_nan=False)
    if _is_npz(path):
        if _NPZ_STRUCT in tensors:
            raise ValueError(f"save: the name {_NPZ_STRUCT!r} is reserved")
        arrays = dict(tensors)
        arrays[_NPZ_STRUCT] = np.frombuffer(header.encode("utf-8"), dtype=np.uint8)
        _atomic_write(path, lambda f: np.savez(f, **arrays))
        return
    stn = _safetensors_numpy()
    blob = stn.save(tensors, metadata={"format": "pt", _META_KEY: header})
    _atomic_write(path, lambda f: f.write(blob))


# ----------------------------------------------------------------------------- load

def _reject_foreign(head: bytes, path: str) -> None:
    if head[:1] == b"\x80":
        raise CheckpointError(f"load: {path} is a Python pickle (e.g. written by torch.save). tinygrad_cnn "
                              "never unpickles files, because unpickling can run arbitrary code. Re-save it "
                              "with safetensors (safetensors.torch.save_file(model.state_dict(), path)).")
    if head[:2] == b"PK":
        raise CheckpointError(f"load: {path} is a zip archive (a torch.save .pt file or an npz). tinygrad_cnn "
                              "does not unpickle PyTorch's zip checkpoints; give npz files a .npz name, or "
                              "re-save with safetensors.")


def _parse_safetensors(blob: bytes, path: str) -> Tuple[Dict[str, Any], int]:
    """Validate the safetensors header against the file size; return (header, data start)."""
    if len(blob) < 8:
        _reject_foreign(blob, path)
        raise CheckpointError(f"load: {path} is truncated: {len(blob)} bytes, fewer than the 8-byte header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        _reject_foreign(blob[:8], path)
        raise CheckpointError(f"load: {path} is truncated or corrupt: its header claims {n} bytes of JSON but "
                              f"the file has only {len(blob) - 8} bytes after the length field")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        _reject_foreign(blob[:8], path)
        raise CheckpointError(f"load: {path} is not a valid safetensors file (header is not JSON: {e})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"load: {path} is not a valid safetensors file (header is not a JSON object)")
    data_len = len(blob) - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in info["data_offsets"])
            shape = [int(s) for s in info["shape"]]
        except (KeyError, TypeError, ValueError):
            raise CheckpointError(f"load: {path}: malformed header entry for tensor {name!r}") from None
        if not 0 <= begin <= end:
            raise CheckpointError(f"load: {path}: tensor {name!r} has invalid data offsets [{begin}, {end})")
        if end > data_len:
            raise CheckpointError(f"load: {path} is truncated or corrupt: tensor {name!r} claims bytes "
                                  f"[{begin}, {end}) but the file holds only {data_len} data bytes")
        if any(s < 0 for s in shape):
            raise CheckpointError(f"load: {path}: tensor {name!r} has a negative dimension in {shape}")
    return header, 8 + n


def _load_safetensors(blob: bytes, path: str) -> Any:
    header, _ = _parse_safetensors(blob, path)
    stn = _safetensors_numpy()
    try:
        arrays = stn.load(blob)
    except Exception as e:  # safetensors' own validation (dtype/shape/size mismatches, overlaps)
        raise CheckpointError(f"load: {path} is not a valid safetensors file: {e}") from None
    arrays = {k: (v if v.flags.writeable else v.copy()) for k, v in arrays.items()}
    meta = header.get("__metadata__") or {}
    if _META_KEY not in meta:   # a plain safetensors file (e.g. from safetensors.torch.save_file)
        order = sorted((k for k in header if k != "__metadata__"),
                       key=lambda k: header[k]["data_offsets"][0])
        return OrderedDict((k, Tensor(arrays[k])) for k in order)
    return _decode_structure(meta[_META_KEY], arrays, path)


def _decode_structure(text: str, arrays: Dict[str, np.ndarray], path: str) -> Any:
    try:
        doc = json.loads(text)
        structure = doc["structure"]
        version = int(doc.get("version", 1))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CheckpointError(f"load: {path}: the tinygrad_cnn metadata is not valid JSON") from None
    if version > _FORMAT_VERSION:
        raise CheckpointError(f"load: {path} was written by a newer tinygrad_cnn (format {version}); "
                              f"this one reads format {_FORMAT_VERSION}")
    return _decode(structure, arrays)


def _load_npz(blob: bytes, path: str) -> Any:
    if blob[:1] == b"\x80":
        _reject_foreign(blob, path)
    try:
        with np.load(_io.BytesIO(blob), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise CheckpointError(f"load: {path} contains pickled (object) arrays; tinygrad_cnn never "
                                  "unpickles files, because unpickling can run arbitrary code") from None
        raise CheckpointError(f"load: {path} is not a valid npz file: {e}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as e:
        raise CheckpointError(f"load: {path} is truncated or not a valid npz file ({type(e).__name__}: {e})") from None
    if _NPZ_STRUCT not in arrays:
        return OrderedDict((k, Tensor(v)) for k, v in arrays.items())
    text = arrays.pop(_NPZ_STRUCT).tobytes().decode("utf-8")
    return _decode_structure(text, arrays, path)


def load(path: PathLike, map_location: Any = None, weights_only: bool = True) -> Any:
    """Read a checkpoint written by :func:`save` (or any safetensors / npz file of arrays).

    Returns the saved nest with Tensors in place of the saved Tensors. A plain safetensors or
    npz file without tinygrad_cnn metadata comes back as an ordered dict name -> Tensor, ready
    for ``model.load_state_dict``. ``map_location`` and ``weights_only`` are accepted for
    PyTorch compatibility (everything is on the CPU, and only data is ever loaded).
    """
    p = os.fspath(path)
    with open(p, "rb") as f:
        blob = f.read()
    if _is_npz(p):
        return _load_npz(blob, p)
    return _load_safetensors(blob, p)
