"""The Optimizer base class: parameter groups, per-parameter state, zero_grad, step, state dicts.

An optimizer subclass only writes :meth:`Optimizer._update`, the update rule for one parameter
(NumPy arrays in, the parameter's array changed in place). The base class does the rest, with
PyTorch's semantics and state-dict format::

    {"state": {0: {"step": 3, "exp_avg": Tensor, ...}, 1: {...}},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}]}

Parameters are numbered in order across the groups, so a state dict can be loaded into a fresh
optimizer built over the same parameters.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from ..engine import enable_grad, no_grad
from ..tensor import Tensor

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


class Optimizer:
    """Base of all optimizers (torch.optim.Optimizer).

    ``params`` is an iterable of Tensors, or of dicts (parameter groups) such as
    ``[{"params": model.features.parameters()}, {"params": model.fc.parameters(), "lr": 1e-3}]``;
    keys missing from a group take the values in ``defaults``.
    """

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        self.param_groups: List[Dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            f"or dicts, but got {type(params).__name__}")
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for k in sorted(g):
                if k != "params":
                    lines.append(f"    {k}: {g[k]}")
        return "\n".join(lines) + "\n)"

    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (e.g. a lower lr)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        params = param_group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                f"{type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"parameter group didn't specify a value of required optimization "
                                 f"parameter {name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("a parameter group contains the same parameter more than once")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized parameters (to None by default)."""
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor(np.zeros_like(p.grad.data))

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Update every parameter that has a gradient. ``closure`` (re-evaluates the model and
        returns the loss) is called first, with grad enabled, if given."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    grad = p.grad.data
                    if grad.dtype != p.dtype:
                        grad = grad.astype(p.dtype)
                    if not p.data.flags.writeable:
                        p.data = p.data.copy()
                    self._update(p.data, grad, self.state[p], group)
                    p._version += 1
        return loss

    def _update(self, param: np.ndarray, grad: np.ndarray, state: Dict[str, Any],
                group: Dict[str, Any]) -> None:
        """The update rule: change ``param`` in place (subclasses implement it)."""
        raise NotImplementedError

    @staticmethod
    def _buffer(state: Dict[str, Any], key: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """The state array ``key`` (created as ``like``-shaped, filled with ``fill``), as NumPy."""
        if key not in state:
            state[key] = Tensor(np.full(like.shape, fill, dtype=like.dtype))
        return state[key].data

    # ------------------------------------------------------------------ state dicts
    def state_dict(self) -> Dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}`` as PyTorch.

        State tensors are copies, so later steps do not change a saved state dict.
        """
        index: Dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed = {k: v for k, v in g.items() if k != "params"}
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for g in self.param_groups:
            for p in g["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (Tensor(v.data.copy()) if isinstance(v, Tensor) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore state and hyper-parameters saved by :meth:`state_dict` (ours or PyTorch's,
        e.g. after a round trip through ``tinygrad_cnn.save``/``load``)."""
        if not isinstance(state_dict, dict) or "param_groups" not in state_dict or "state" not in state_dict:
            raise ValueError("optimizer state dict must be a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, but the optimizer "
                             f"has {len(self.param_groups)}")
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"loaded state dict contains a parameter group ({i}) that doesn't match "
                                 f"the size of optimizer's group: {len(s['params'])} vs {len(g['params'])} params")
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            for p, k in zip(g["params"], s["params"]):
                id_map[int(k)] = p
        saved_state = {int(k): v for k, v in state_dict["state"].items()}
        new_state: Dict[Tensor, Dict[str, Any]] = defaultdict(dict)
        for k, values in saved_state.items():
            if k not in id_map:
                continue
            p = id_map[k]
            entry = {}
            for name, v in values.items():
                entry[name] = self._cast_state(name, v, p)
            new_state[p] = entry
        self.state = new_state
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            for key, value in s.items():
                if key != "params":
                    g[key] = copy.deepcopy(value)

    @staticmethod
    def _cast_state(name: str, value: Any, param: Tensor) -> Any:
        """State arrays take the parameter's dtype and must have its shape; ``step`` stays a number."""
        if name == "step":
            arr = value.data if isinstance(value, Tensor) else np.asarray(value)
            return int(arr.item()) if float(arr.item()).is_integer() else float(arr.item())
        if isinstance(value, (Tensor, np.ndarray)):
            arr = value.data if isinstance(value, Tensor) else value
            if arr.shape != param.shape and arr.size != 1:
                raise ValueError(f"optimizer state {name!r} has shape {arr.shape}, but its parameter "
                                 f"has shape {param.shape}")
            return Tensor(np.array(arr, dtype=param.dtype if arr.dtype.kind == "f" else arr.dtype, copy=True))
        return copy.deepcopy(value)
