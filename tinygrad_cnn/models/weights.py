"""Load torchvision-format weights (a state dict in a safetensors or ``.npz`` file) into a model.

No PyTorch needed, and no pickle is ever read: convert torchvision's ``.pth`` once, on a machine
with PyTorch, e.g.::

    import torchvision, safetensors.torch
    safetensors.torch.save_file(torchvision.models.resnet18(weights="DEFAULT").state_dict(),
                                "resnet18.safetensors")

and then, anywhere::

    from tinygrad_cnn import models
    model = models.resnet18()
    models.load_weights(model, "resnet18.safetensors")   # strict: every key and shape must match

:func:`load_weights` checks the whole file against the model *before* copying anything and
explains every problem at once (missing keys, unexpected keys, shape mismatches), with a hint
for the usual causes (a different ``num_classes``, GoogLeNet's auxiliary heads, a ``module.``
prefix from DataParallel).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np

from .. import nn
from ..tensor import Tensor

__all__ = ["LoadReport", "read_state_dict", "check_state_dict", "load_weights", "first_conv"]

PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class LoadReport:
    """What matched between a state dict and a model.

    ``missing_keys``: in the model, not in the file. ``unexpected_keys``: in the file, not in the
    model. ``mismatched_shapes``: ``(key, shape in file, shape in model)``. ``loaded``: keys
    copied (or, before copying, that would be). ``copied``: whether they were. ``notes``: things
    that were handled silently (a stripped prefix, BatchNorm's ``num_batches_tracked`` counters
    absent from older files). ``hints``: likely causes of the problems and what to do.
    """
    missing_keys: List[str] = field(default_factory=list)
    unexpected_keys: List[str] = field(default_factory=list)
    mismatched_shapes: List[Tuple[str, Tuple[int, ...], Tuple[int, ...]]] = field(default_factory=list)
    loaded: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    hints: List[str] = field(default_factory=list)
    copied: bool = False

    @property
    def ok(self) -> bool:
        """True when every model key was found with the right shape and nothing was left over."""
        return not (self.missing_keys or self.unexpected_keys or self.mismatched_shapes)

    def __str__(self) -> str:
        def listing(title: str, items: List[str]) -> List[str]:
            if not items:
                return []
            shown = items[:20] + ([f"... and {len(items) - 20} more"] if len(items) > 20 else [])
            return [f"{title} ({len(items)}):"] + ["    " + s for s in shown]

        if self.copied:
            head = f"loaded {len(self.loaded)} tensors"
        else:
            head = f"{len(self.loaded)} tensors match the model (nothing copied)"
        lines = [head + ("" if self.ok else "; problems:")]
        lines += listing("missing keys (in the model, not in the file)", self.missing_keys)
        lines += listing("unexpected keys (in the file, not in the model)", self.unexpected_keys)
        lines += listing("shape mismatches (key: file -> model)",
                         [f"{k}: {tuple(a)} -> {tuple(b)}" for k, a, b in self.mismatched_shapes])
        lines += ["note: " + n for n in self.notes] + ["hint: " + h for h in self.hints]
        return "\n".join(lines)


def _as_array(value: Any, key: str) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (int, float, np.number)):
        return np.asarray(value)
    raise TypeError(f"state dict entry {key!r} is a {type(value).__name__}, expected an array or Tensor "
                    "(pass the model's state dict itself, not a checkpoint that wraps it)")


def read_state_dict(path: PathLike) -> Dict[str, np.ndarray]:
    """Read a flat state dict ``{"features.0.weight": array, ...}`` from ``.safetensors`` or ``.npz``.

    Uses ``tinygrad_cnn.load`` when the library has it, else the ``safetensors`` package's NumPy
    API / ``np.load(allow_pickle=False)``. PyTorch pickles (``.pth``, ``.pt``) are refused with a
    note on how to convert them: loading a pickle can run arbitrary code.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".pth", ".pt", ".pkl", ".ckpt", ".bin"):
        raise ValueError(f"{path!r} looks like a pickled PyTorch file, which tinygrad_cnn never unpickles. "
                         "Convert it once where PyTorch is installed: "
                         "safetensors.torch.save_file(torch.load(path, weights_only=True), 'weights.safetensors')")
    if ext not in (".safetensors", ".npz"):
        raise ValueError(f"unsupported weight file {path!r}: expected a .safetensors or .npz file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"weight file not found: {path!r}")
    import tinygrad_cnn
    library_load = getattr(tinygrad_cnn, "load", None)
    if library_load is not None:
        raw = library_load(path)
    elif ext == ".safetensors":
        from safetensors.numpy import load_file
        raw = load_file(path)
    else:
        with np.load(path, allow_pickle=False) as archive:
            raw = {k: archive[k] for k in archive.files}
    if not isinstance(raw, Mapping):
        raise TypeError(f"{path!r} does not hold a state dict (got {type(raw).__name__})")
    return {str(k): _as_array(v, k) for k, v in raw.items()}


def _strip_prefix(state: Dict[str, np.ndarray], model_keys: set, report: LoadReport) -> Dict[str, np.ndarray]:
    """Drop a ``module.`` prefix (saved from DataParallel) when it is on every key and the model
    has none."""
    prefix = "module."
    if state and all(k.startswith(prefix) for k in state) and not any(k.startswith(prefix) for k in model_keys):
        report.notes.append(f"removed the prefix {prefix!r} from every key of the file")
        return {k[len(prefix):]: v for k, v in state.items()}
    return state


def _hints(report: LoadReport, model: nn.Module) -> None:
    mism = report.mismatched_shapes
    if mism:
        linear_keys = {name + ".weight" for name, m in model.named_modules() if isinstance(m, nn.Linear)}
        last = [k for k, _, _ in mism if k in linear_keys]
        if last:
            n_file = [a[0] for k, a, _ in mism if k in linear_keys][-1]
            report.hints.append(f"the classifier layer differs in size (the file has {n_file} outputs): build "
                                f"the model with num_classes={n_file}, or pass strict=False to keep the "
                                "model's own (new, untrained) classifier and load the rest")
    aux = ("aux1.", "aux2.")
    if any(k.startswith(aux) for k in report.unexpected_keys):
        report.hints.append("the file has GoogLeNet's auxiliary classifiers: build googlenet(aux_logits=True)")
    if any(k.startswith(aux) for k in report.missing_keys):
        report.hints.append("the file has no auxiliary classifiers (torchvision drops them from its pretrained "
                            "GoogLeNet): build googlenet(aux_logits=False, transform_input=True)")
    if any(".running_mean" in k for k in report.unexpected_keys) and report.missing_keys:
        report.hints.append("batch-norm statistics in the file have no place in the model: is this the _bn "
                            "variant of the architecture (e.g. vgg16_bn instead of vgg16)?")


def check_state_dict(model: nn.Module, state_dict: Mapping[str, Any]) -> LoadReport:
    """Compare ``state_dict`` with ``model.state_dict()`` (keys and shapes) without copying.

    Returns a :class:`LoadReport` whose ``loaded`` lists the keys that *would* load.
    """
    report = LoadReport()
    own = model.state_dict()
    state = {str(k): _as_array(v, k) for k, v in state_dict.items()}
    state = _strip_prefix(state, set(own), report)
    old_counters = []
    for key, target in own.items():
        if key not in state:
            if key.endswith("num_batches_tracked"):
                old_counters.append(key)   # older torchvision files predate this buffer
            else:
                report.missing_keys.append(key)
            continue
        shape = tuple(state[key].shape)
        if shape != tuple(target.shape):
            report.mismatched_shapes.append((key, shape, tuple(target.shape)))
        else:
            report.loaded.append(key)
    report.unexpected_keys = [k for k in state if k not in own]
    if old_counters:
        report.notes.append(f"{len(old_counters)} BatchNorm num_batches_tracked counters are not in the file "
                            "(older checkpoints have none); the model keeps its own")
    _hints(report, model)
    return report


def load_weights(model: nn.Module, weights: Union[PathLike, Mapping[str, Any]],
                 strict: bool = True) -> LoadReport:
    """Copy a torchvision-format state dict into ``model`` (in place) and return a :class:`LoadReport`.

    ``weights``: a ``.safetensors`` / ``.npz`` path, or a mapping of names to arrays / Tensors.
    ``strict=True``: any missing key, unexpected key or shape mismatch raises a ValueError that
    lists all of them (nothing is copied in that case). ``strict=False``: load every key whose
    shape matches and report the rest (e.g. to fine-tune with a new ``num_classes``).
    Values are cast to the model's dtype.
    """
    state = read_state_dict(weights) if isinstance(weights, (str, os.PathLike)) else dict(weights)
    report = check_state_dict(model, state)
    if strict and not report.ok:
        where = f" from {os.fspath(weights)!r}" if isinstance(weights, (str, os.PathLike)) else ""
        raise ValueError(f"cannot load weights{where} into {type(model).__name__} with strict=True:\n{report}")
    own = model.state_dict()
    state = {str(k): _as_array(v, k) for k, v in state.items()}
    state = _strip_prefix(state, set(own), LoadReport())
    to_load = {k: state[k] for k in report.loaded}
    model.load_state_dict(to_load, strict=False)
    report.copied = True
    return report


def first_conv(model: nn.Module) -> Optional[nn.Module]:
    """The first ``Conv2d`` of ``model`` in registration order (its ``weight`` holds the filters a
    filter picture shows, e.g. AlexNet's 64 x 3 x 11 x 11), or None if it has none."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m
    return None
