"""The Tensor: a NumPy array plus what autograd needs (requires_grad, grad, grad_fn).

Operators and methods are thin: they turn arguments into Tensors and call an op's
``Function.apply`` (see ``tinygrad_cnn/ops/``). Names, argument names and semantics follow
PyTorch, so ``x.sum(dim=1, keepdim=True)`` means what it means there.
"""
from __future__ import annotations

import math
import weakref
from collections import namedtuple
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from . import engine
from .engine import _GradMode, is_grad_enabled, no_grad  # noqa: F401

float32, float64, int64, int32, bool_ = np.float32, np.float64, np.int64, np.int32, np.bool_
_DTYPE_NAMES = {"float32": np.float32, "float": np.float32, "float64": np.float64,
                "double": np.float64, "int64": np.int64, "long": np.int64, "int32": np.int32,
                "int": np.int32, "bool": np.bool_, "uint8": np.uint8, "float16": np.float16}

_default_dtype = np.dtype(np.float32)
_rng = np.random.default_rng()
_seed_hooks: list = []

MaxResult = namedtuple("max", ["values", "indices"])
MinResult = namedtuple("min", ["values", "indices"])


def as_dtype(dtype: Any) -> np.dtype:
    """numpy dtype from a numpy dtype, a type, or a torch-like name ('float32', 'long', ...)."""
    if isinstance(dtype, str):
        if dtype not in _DTYPE_NAMES:
            raise TypeError(f"dtype must be one of {sorted(_DTYPE_NAMES)}, got {dtype!r}")
        return np.dtype(_DTYPE_NAMES[dtype])
    return np.dtype(dtype)


def manual_seed(seed: int) -> None:
    """Seed every random stream of tinygrad_cnn: init, dropout, rand*, data shuffling."""
    global _rng
    _rng = np.random.default_rng(seed)
    for hook in _seed_hooks:
        hook(seed)


def get_rng() -> np.random.Generator:
    """The generator behind rand/randn/init/dropout (reseeded by manual_seed)."""
    return _rng


def _to_array(data: Any, dtype: Any = None) -> np.ndarray:
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, np.ndarray):
        arr = data
    elif isinstance(data, np.generic):   # a NumPy scalar keeps its dtype (np.float64(1) stays float64)
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if arr.dtype.kind == "f":
            arr = arr.astype(_default_dtype)
        elif arr.dtype.kind in "iu":
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "b":
            raise TypeError(f"cannot build a Tensor from data of type {type(data).__name__} "
                            f"(numpy dtype {arr.dtype})")
    if dtype is not None:
        dt = as_dtype(dtype)
        if arr.dtype != dt:
            arr = arr.astype(dt)
    return arr


def _promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """Result dtype of a binary op, as PyTorch: floats win, the wider float wins."""
    if a == b:
        return a
    fa, fb = a.kind == "f", b.kind == "f"
    if fa and fb:
        return a if a.itemsize >= b.itemsize else b
    if fa:
        return a
    if fb:
        return b
    return np.result_type(a, b)


class Tensor:
    """An n-dimensional array that records the ops applied to it for backpropagation.

    ``Tensor(data, requires_grad=False, dtype=None)``: ``data`` is a NumPy array (kept as it
    is, no copy), a Tensor, a Python number or nested list (floats become float32, ints int64).
    """
    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "_output_nr", "_version",
                 "name", "__weakref__")
    __array_priority__ = 1000  # so ndarray (op) Tensor calls the Tensor's reflected operator

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None):
        self.data: np.ndarray = _to_array(data, dtype)
        self.grad: Optional[Tensor] = None
        self.grad_fn = None
        self._output_nr = 0
        self._version = 0
        self.name: Optional[str] = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, arr: np.ndarray) -> "Tensor":
        """A Tensor around an ndarray as it is (no conversion, no checks): how ops wrap
        their outputs."""
        t = object.__new__(cls)
        t.data, t.grad, t.grad_fn, t._output_nr, t._version = arr, None, None, 0, 0
        t.name, t.requires_grad = None, False
        return t

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> Tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: Optional[int] = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def item(self) -> Union[float, int, bool]:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, this one has shape {self.shape}")
        return self.data.reshape(()).item()

    def tolist(self):
        return self.data.tolist()

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError("Can't call numpy() on a Tensor that requires grad. "
                               "Use tensor.detach().numpy() instead.")
        return self.data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(", precision=4)
        extras = []
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_)):
            extras.append(f"dtype={self.dtype}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of Tensor with shape {self.shape} is ambiguous")
        return bool(self.data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iu":
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    # ------------------------------------------------------------------ autograd API
    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if requires_grad and self.dtype.kind != "f":
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"this one has dtype {self.dtype}")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("you can only change requires_grad flags of leaf tensors; "
                               "use detach() for a non-leaf")
        self.requires_grad = requires_grad
        return self

    def detach(self) -> "Tensor":
        """A new Tensor sharing the data, cut off from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on a Tensor that has requires_grad=False")
        if self.grad_fn is not None:
            self.grad_fn.retained[self._output_nr] = weakref.ref(self)

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self._output_nr in self.grad_fn.retained

    def backward(self, gradient: Optional["Tensor"] = None, retain_graph: Optional[bool] = None,
                 create_graph: bool = False, inputs: Optional[Sequence["Tensor"]] = None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (see torch.Tensor.backward)."""
        from .autograd import backward
        backward([self], None if gradient is None else [gradient], retain_graph, create_graph,
                 inputs=inputs)

    def register_hook(self, hook):  # pragma: no cover - simple passthrough is not offered
        raise NotImplementedError("tensor hooks are not supported; use retain_grad() or module hooks")

    # ------------------------------------------------------------------ in-place helpers
    def _inplace_ok(self, what: str) -> None:
        if _GradMode.enabled and self.requires_grad:
            if self.grad_fn is None:
                raise RuntimeError(f"a leaf Tensor that requires grad is being used in an in-place "
                                   f"operation ({what}); wrap it in `with no_grad():`")
            raise RuntimeError(f"in-place operation {what} on a tensor that is part of a graph is "
                               "not supported; use the out-of-place op")
        if not self.data.flags.writeable:
            self.data = self.data.copy()
        self._version += 1

    def _set(self, value: Any, what: str) -> "Tensor":
        self._inplace_ok(what)
        self.data[...] = value.data if isinstance(value, Tensor) else value
        return self

    def zero_(self) -> "Tensor":
        return self._set(0, "zero_")

    def fill_(self, value: float) -> "Tensor":
        return self._set(value, "fill_")

    def copy_(self, src: Any) -> "Tensor":
        src = _to_array(src)
        if not np.broadcast_shapes(src.shape, self.shape) == self.shape:
            raise RuntimeError(f"copy_: source shape {src.shape} does not broadcast to {self.shape}")
        return self._set(src, "copy_")

    def add_(self, other: Any, alpha: float = 1.0) -> "Tensor":
        return self._set(self.data + alpha * _to_array(other), "add_")

    def sub_(self, other: Any, alpha: float = 1.0) -> "Tensor":
        return self._set(self.data - alpha * _to_array(other), "sub_")

    def mul_(self, other: Any) -> "Tensor":
        return self._set(self.data * _to_array(other), "mul_")

    def div_(self, other: Any) -> "Tensor":
        return self._set(self.data / _to_array(other), "div_")

    def clamp_(self, min: Optional[float] = None, max: Optional[float] = None) -> "Tensor":
        return self._set(np.clip(self.data, min, max), "clamp_")

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> "Tensor":
        return self._set(_rng.uniform(a, b, self.shape), "uniform_")

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> "Tensor":
        return self._set(_rng.normal(mean, std, self.shape), "normal_")

    # ------------------------------------------------------------------ conversions
    def to(self, *args: Any, **kwargs: Any) -> "Tensor":
        """``to("cpu")`` is a no-op; ``to(dtype)`` casts (differentiably between floats)."""
        dtype = kwargs.get("dtype")
        for a in args:
            if isinstance(a, str) and a in ("cpu", "cpu:0"):
                continue
            if isinstance(a, Tensor):
                dtype = a.dtype
            else:
                dtype = a
        if dtype is None or as_dtype(dtype) == self.dtype:
            return self
        from .ops.elementwise import Cast
        dt = as_dtype(dtype)
        if self.requires_grad and dt.kind == "f":
            return Cast.apply(self, dt)
        return Tensor(self.data.astype(dt))

    def cpu(self) -> "Tensor":
        return self

    def type(self, dtype: Any) -> "Tensor":
        return self.to(dtype)

    def float(self) -> "Tensor":
        return self.to(np.float32)

    def double(self) -> "Tensor":
        return self.to(np.float64)

    def long(self) -> "Tensor":
        return self.to(np.int64)

    def int(self) -> "Tensor":
        return self.to(np.int32)

    def bool(self) -> "Tensor":
        return self.to(np.bool_)

    def clone(self) -> "Tensor":
        return self * 1 if self.requires_grad else Tensor(self.data.copy())

    def contiguous(self) -> "Tensor":
        if self.data.flags.c_contiguous:
            return self
        from .ops.movement import Contiguous
        return Contiguous.apply(self)

    def is_contiguous(self) -> bool:
        return bool(self.data.flags.c_contiguous)

    # ------------------------------------------------------------------ arithmetic
    def _binary(self, other: Any, fn, reverse: bool = False) -> "Tensor":
        a, b = _operands(self, other)
        if a.shape != b.shape:
            try:
                np.broadcast_shapes(a.shape, b.shape)
            except ValueError:
                raise RuntimeError(f"{fn.__name__.lower()}: shapes {tuple(a.shape)} and {tuple(b.shape)} "
                                   "are not broadcastable (each dim must match or be 1, aligned "
                                   "from the right)") from None
        return fn.apply(b, a) if reverse else fn.apply(a, b)

    def __add__(self, o): from .ops.elementwise import Add; return self._binary(o, Add)
    def __radd__(self, o): from .ops.elementwise import Add; return self._binary(o, Add, True)
    def __sub__(self, o): from .ops.elementwise import Sub; return self._binary(o, Sub)
    def __rsub__(self, o): from .ops.elementwise import Sub; return self._binary(o, Sub, True)
    def __mul__(self, o): from .ops.elementwise import Mul; return self._binary(o, Mul)
    def __rmul__(self, o): from .ops.elementwise import Mul; return self._binary(o, Mul, True)
    def __truediv__(self, o): from .ops.elementwise import Div; return _floating(self)._binary(_float_operand(o), Div)
    def __rtruediv__(self, o): from .ops.elementwise import Div; return _floating(self)._binary(_float_operand(o), Div, True)

    def __pow__(self, o):
        from .ops.elementwise import Pow, PowScalar
        if isinstance(o, (int, float)) and not isinstance(o, bool):
            return PowScalar.apply(self if self.dtype.kind == "f" else self.float(), float(o))
        return self._binary(o, Pow)

    def __rpow__(self, o):
        from .ops.elementwise import Pow
        return self._binary(o, Pow, True)

    def __neg__(self): from .ops.elementwise import Neg; return Neg.apply(self)
    def __pos__(self): return self
    def __matmul__(self, o): return self.matmul(o)
    def __rmatmul__(self, o): return Tensor(_to_array(o)).matmul(self)

    # in-place operators on tensors outside the graph (e.g. running stats) stay in place
    def __iadd__(self, o): return self.add_(o) if not self.requires_grad else self + o
    def __isub__(self, o): return self.sub_(o) if not self.requires_grad else self - o
    def __imul__(self, o): return self.mul_(o) if not self.requires_grad else self * o
    def __itruediv__(self, o): return self.div_(o) if not self.requires_grad else self / o

    add = __add__
    sub = __sub__
    mul = __mul__
    div = __truediv__
    neg = __neg__

    def pow(self, exponent): return self ** exponent

    # comparisons: no gradient, bool results
    def _compare(self, other, op) -> "Tensor":
        return Tensor(op(self.data, _to_array(other)))

    def __eq__(self, o): return self._compare(o, np.equal)  # type: ignore[override]
    def __ne__(self, o): return self._compare(o, np.not_equal)  # type: ignore[override]
    def __lt__(self, o): return self._compare(o, np.less)
    def __le__(self, o): return self._compare(o, np.less_equal)
    def __gt__(self, o): return self._compare(o, np.greater)
    def __ge__(self, o): return self._compare(o, np.greater_equal)
    def __and__(self, o): return self._compare(o, np.logical_and if self.dtype == bool else np.bitwise_and)
    def __or__(self, o): return self._compare(o, np.logical_or if self.dtype == bool else np.bitwise_or)
    def __invert__(self): return Tensor(~self.data)
    eq, ne, lt, le, gt, ge = __eq__, __ne__, __lt__, __le__, __gt__, __ge__

    def logical_not(self): return Tensor(np.logical_not(self.data))
    def isnan(self): return Tensor(np.isnan(self.data))
    def isinf(self): return Tensor(np.isinf(self.data))
    def isfinite(self): return Tensor(np.isfinite(self.data))
    def sign(self): return Tensor(np.sign(self.data))
    def allclose(self, other, rtol=1e-5, atol=1e-8): return bool(np.allclose(self.data, _to_array(other), rtol, atol))
    def equal(self, other): return bool(np.array_equal(self.data, _to_array(other)))

    # ------------------------------------------------------------------ unary math
    def exp(self): from .ops.elementwise import Exp; return Exp.apply(_floating(self))
    def log(self): from .ops.elementwise import Log; return Log.apply(_floating(self))
    def sqrt(self): from .ops.elementwise import Sqrt; return Sqrt.apply(_floating(self))
    def rsqrt(self): return self.sqrt().reciprocal()
    def reciprocal(self): return 1.0 / _floating(self)
    def square(self): return self * self
    def abs(self): from .ops.elementwise import Abs; return Abs.apply(self)
    def relu(self): from .ops.elementwise import ReLU; return ReLU.apply(self)
    def sigmoid(self): from .ops.elementwise import Sigmoid; return Sigmoid.apply(_floating(self))
    def tanh(self): from .ops.elementwise import Tanh; return Tanh.apply(_floating(self))
    def erf(self): from .ops.elementwise import Erf; return Erf.apply(_floating(self))
    def log1p(self): return (self + 1.0).log()

    def leaky_relu(self, negative_slope: float = 0.01):
        from .ops.elementwise import LeakyReLU
        return LeakyReLU.apply(self, float(negative_slope))

    def clamp(self, min: Any = None, max: Any = None) -> "Tensor":
        from .ops.elementwise import Clamp
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        x = self
        if x.dtype.kind != "f" and any(isinstance(v, float) for v in (min, max)):
            x = x.to(_default_dtype)             # int.clamp(0.5) is float32, as PyTorch
        elif x.dtype == np.bool_:
            x = x.long()
        if x is not self:
            return x.clamp(min, max)
        if isinstance(min, Tensor) or isinstance(max, Tensor):
            out = self
            if min is not None:
                out = out.maximum(min)
            if max is not None:
                out = out.minimum(max)
            return out
        return Clamp.apply(self, min, max)

    clip = clamp

    def maximum(self, other): from .ops.elementwise import Maximum; return self._binary(other, Maximum)
    def minimum(self, other): from .ops.elementwise import Minimum; return self._binary(other, Minimum)

    # ------------------------------------------------------------------ reductions
    def sum(self, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> "Tensor":
        from .ops.reduce import Sum
        x = self if dtype is None else self.to(dtype)
        if x.dtype == np.bool_:
            x = x.long()
        return Sum.apply(x, _dims(dim, self.ndim), keepdim)

    def mean(self, dim: Any = None, keepdim: bool = False) -> "Tensor":
        if self.dtype.kind != "f":
            raise RuntimeError(f"mean(): input dtype should be floating point, got {self.dtype}")
        dims = _dims(dim, self.ndim)
        n = int(np.prod([self.shape[d] for d in dims])) if self.ndim else 1
        return self.sum(dims, keepdim) * (1.0 / max(n, 1)) if n else self.sum(dims, keepdim) * np.nan

    def var(self, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False,
            correction: Optional[int] = None) -> "Tensor":
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        dims = _dims(dim, self.ndim)
        n = int(np.prod([self.shape[d] for d in dims])) if self.ndim else 1
        centered = self - self.mean(dims, keepdim=True)
        return (centered * centered).sum(dims, keepdim) * (1.0 / max(n - correction, 0) if n - correction > 0 else np.inf)

    def std(self, dim: Any = None, unbiased: Optional[bool] = None, keepdim: bool = False,
            correction: Optional[int] = None) -> "Tensor":
        return self.var(dim, unbiased, keepdim, correction).sqrt()

    def _max_min(self, dim, keepdim, is_max: bool):
        from .ops.reduce import AMax, MaxDim
        if dim is None:
            if self.numel() == 0:
                raise RuntimeError("max()/min() of an empty tensor: specify a dim")
            return AMax.apply(self, tuple(range(self.ndim)), False, is_max)
        if isinstance(dim, Tensor):  # torch.max(a, b) style
            return self.maximum(dim) if is_max else self.minimum(dim)
        d = _dims(dim, self.ndim)[0] if self.ndim else 0
        values, indices = MaxDim.apply(self, d, keepdim, is_max)
        return (MaxResult if is_max else MinResult)(values, indices)

    def max(self, dim: Any = None, keepdim: bool = False):
        return self._max_min(dim, keepdim, True)

    def min(self, dim: Any = None, keepdim: bool = False):
        return self._max_min(dim, keepdim, False)

    def amax(self, dim: Any = None, keepdim: bool = False):
        from .ops.reduce import AMax
        return AMax.apply(self, _dims(dim, self.ndim), keepdim, True)

    def amin(self, dim: Any = None, keepdim: bool = False):
        from .ops.reduce import AMax
        return AMax.apply(self, _dims(dim, self.ndim), keepdim, False)

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        if dim is None:
            return Tensor(np.int64(np.argmax(self.data)))
        return Tensor(np.argmax(self.data, axis=_dims(dim, self.ndim)[0], keepdims=keepdim).astype(np.int64))

    def argmin(self, dim: Optional[int] = None, keepdim: bool = False) -> "Tensor":
        if dim is None:
            return Tensor(np.int64(np.argmin(self.data)))
        return Tensor(np.argmin(self.data, axis=_dims(dim, self.ndim)[0], keepdims=keepdim).astype(np.int64))

    def logsumexp(self, dim: Any, keepdim: bool = False) -> "Tensor":
        from .ops.reduce import LogSumExp
        return LogSumExp.apply(_floating(self), _dims(dim, self.ndim), keepdim)

    def softmax(self, dim: int) -> "Tensor":
        from .ops.reduce import Softmax
        _single_dim(dim, "softmax")
        return Softmax.apply(_floating(self), _dims(dim, self.ndim)[0] if self.ndim else 0)

    def log_softmax(self, dim: int) -> "Tensor":
        from .ops.reduce import LogSoftmax
        _single_dim(dim, "log_softmax")
        return LogSoftmax.apply(_floating(self), _dims(dim, self.ndim)[0] if self.ndim else 0)

    def all(self) -> "Tensor": return Tensor(np.all(self.data))
    def any(self) -> "Tensor": return Tensor(np.any(self.data))

    # ------------------------------------------------------------------ movement
    def reshape(self, *shape: Any) -> "Tensor":
        from .ops.movement import Reshape
        shape = _shape_arg(shape)
        size = self.data.size
        new = shape
        if -1 in shape:                     # one inferred dim: the known ones must divide the size
            known = math.prod(s for s in shape if s != -1)
            ok = shape.count(-1) == 1 and known > 0 and size % known == 0
            new = tuple(size // known if s == -1 else s for s in shape) if ok else None
        if new is None or min(new, default=0) < 0 or math.prod(new) != size:
            raise RuntimeError(f"shape {tuple(shape)} is invalid for input of size {self.numel()} "
                               f"(shape {self.shape})")
        if new == self.shape:
            return self
        return Reshape.apply(self, new)

    view = reshape

    def view_as(self, other: "Tensor") -> "Tensor":
        return self.reshape(other.shape)

    def reshape_as(self, other: "Tensor") -> "Tensor":
        return self.reshape(other.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        s, e = _dims(start_dim, self.ndim)[0], _dims(end_dim, self.ndim)[0]
        if self.ndim == 0:
            return self.reshape(1)
        if s > e:
            raise ValueError(f"flatten: start_dim ({start_dim}) must not come after end_dim ({end_dim})")
        return self.reshape(self.shape[:s] + (-1,) + self.shape[e + 1:])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> "Tensor":
        d = _dims(dim, self.ndim)[0]
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def permute(self, *dims: Any) -> "Tensor":
        from .ops.movement import Permute
        given = _shape_arg(dims)
        dims = tuple(_dims(d, self.ndim)[0] for d in given)
        if sorted(dims) != list(range(self.ndim)):
            raise ValueError(f"permute: dims {given} must be a permutation of 0..{self.ndim - 1}")
        if dims == tuple(range(self.ndim)):
            return self
        return Permute.apply(self, dims)

    def transpose(self, dim0: int, dim1: int) -> "Tensor":
        order = list(range(self.ndim))
        a, b = _dims(dim0, self.ndim)[0], _dims(dim1, self.ndim)[0]
        order[a], order[b] = order[b], order[a]
        return self.permute(*order)

    def t(self) -> "Tensor":
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dimensions, got {self.ndim}")
        return self.T

    def squeeze(self, dim: Any = None) -> "Tensor":
        if dim is None:
            return self.reshape(tuple(s for s in self.shape if s != 1))
        dims = _dims(dim, self.ndim)
        return self.reshape(tuple(s for i, s in enumerate(self.shape) if not (i in dims and s == 1)))

    def unsqueeze(self, dim: int) -> "Tensor":
        d = _dims(dim, self.ndim + 1)[0]
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def expand(self, *sizes: Any) -> "Tensor":
        from .ops.movement import Expand
        sizes = _shape_arg(sizes)
        lead = len(sizes) - self.ndim
        if lead < 0:
            raise RuntimeError(f"expand: the number of sizes ({len(sizes)}) must be >= the number "
                               f"of dimensions ({self.ndim})")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(sizes))
        ok = min(shape, default=0) >= 0 and all(self.shape[i - lead] in (1, shape[i]) for i in range(lead, len(shape)))
        if not ok:
            raise RuntimeError(f"expand: shape {self.shape} cannot be expanded to {tuple(sizes)}")
        if shape == self.shape:
            return self
        return Expand.apply(self, shape)

    def expand_as(self, other: "Tensor") -> "Tensor":
        return self.expand(*other.shape)

    def repeat(self, *sizes: Any) -> "Tensor":
        sizes = _shape_arg(sizes)
        x = self.reshape((1,) * (len(sizes) - self.ndim) + self.shape)
        inter = []
        for r, s in zip(sizes, x.shape):
            inter += [r, s]
        x = x.reshape(tuple(v for s in x.shape for v in (1, s)))
        return x.expand(*inter).reshape(tuple(r * s for r, s in zip(sizes, x.shape[1::2])))

    def __getitem__(self, index: Any) -> "Tensor":
        from .ops.movement import GetItem, normalize_index
        return GetItem.apply(self, normalize_index(index, self.shape))

    def __setitem__(self, index: Any, value: Any) -> None:
        from .ops.movement import normalize_index
        self._inplace_ok("__setitem__")
        self.data[normalize_index(index, self.shape)] = _to_array(value)

    def gather(self, dim: int, index: "Tensor") -> "Tensor":
        from .ops.movement import Gather
        return Gather.apply(self, _dims(dim, self.ndim)[0], _index_array(index, "index"))

    def index_select(self, dim: int, index: Any) -> "Tensor":
        d = _dims(dim, self.ndim)[0]
        return self[(slice(None),) * d + (_index_array(index, "index"),)]

    def pad(self, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> "Tensor":
        from .ops.movement import pad as _pad
        return _pad(self, pad, mode, value)

    def split(self, split_size: Any, dim: int = 0):
        d = _dims(dim, self.ndim)[0]
        n = self.shape[d]
        if isinstance(split_size, (int, np.integer)):
            if split_size <= 0:
                raise RuntimeError(f"split: split_size must be a positive int, got {split_size}")
            sizes = [split_size] * (n // split_size) + ([n % split_size] if n % split_size else [])
            sizes = sizes or [0]
        else:
            sizes = [int(v) for v in split_size]
            if any(v < 0 for v in sizes) or sum(sizes) != n:
                raise RuntimeError(f"split: sizes {sizes} must be non-negative and sum exactly to {n} "
                                   f"(the size of dim {d})")
        out, start = [], 0
        for size in sizes:
            out.append(self[(slice(None),) * d + (slice(start, start + size),)])
            start += size
        return tuple(out)

    def chunk(self, chunks: int, dim: int = 0):
        if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
            raise RuntimeError(f"chunk: chunks must be a positive int, got {chunks!r}")
        n = self.shape[_dims(dim, self.ndim)[0]]
        return self.split(max(-(-n // chunks), 1), dim)

    # ------------------------------------------------------------------ linear algebra
    def matmul(self, other: Any) -> "Tensor":
        from .ops.matmul import matmul
        return matmul(*_operands(self, other))

    def dot(self, other: "Tensor") -> "Tensor":
        return self.matmul(other)


engine.register_tensor_class(Tensor)


# ----------------------------------------------------------------------------- helpers

def _floating(t: Tensor) -> Tensor:
    return t if t.dtype.kind == "f" else t.to(_default_dtype)


def _float_operand(o: Any) -> Any:
    """True division always gives floats (int / int -> float32, as PyTorch)."""
    if isinstance(o, Tensor):
        return _floating(o)
    if isinstance(o, np.ndarray) and o.dtype.kind != "f":
        return o.astype(_default_dtype)
    return o


def _operands(a: Any, b: Any) -> Tuple[Tensor, Tensor]:
    """Two Tensors of one dtype from a Tensor and a Tensor/array/number (PyTorch promotion)."""
    if not isinstance(a, Tensor):
        a, b = b, a
        swapped = True
    else:
        swapped = False
    if isinstance(b, Tensor):
        dt = _promote(a.dtype, b.dtype)
    elif isinstance(b, np.ndarray):
        b = Tensor(b)
        dt = _promote(a.dtype, b.dtype)
    else:
        if isinstance(b, (bool, np.bool_)):
            dt = a.dtype
        elif isinstance(b, (int, np.integer)):
            dt = a.dtype if a.dtype != np.bool_ else np.dtype(np.int64)
        elif isinstance(b, (float, np.floating)):
            dt = a.dtype if a.dtype.kind == "f" else _default_dtype
        else:
            raise TypeError(f"unsupported operand type {type(b).__name__} for a Tensor op")
        b = Tensor(np.asarray(b, dtype=dt))
    if a.dtype != dt:
        a = a.to(dt)
    if b.dtype != dt:
        b = b.to(dt)
    return (b, a) if swapped else (a, b)


def _dims(dim: Any, ndim: int) -> Tuple[int, ...]:
    """Normalise dim (None, int or sequence; negatives allowed) to a sorted tuple."""
    if dim is None:
        return tuple(range(ndim))
    n = ndim if ndim > 0 else 1
    if isinstance(dim, (int, np.integer)):
        if not -n <= dim < n:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {dim})")
        return (int(dim) % n,)
    out = [_dims(d, ndim)[0] for d in dim]
    if len(set(out)) != len(out):
        raise ValueError(f"dim {dim!r} appears more than once")
    return tuple(sorted(out))


def _single_dim(dim: Any, fname: str) -> None:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{fname}: dim must be a single int, got {dim!r}")


def _shape_arg(shape: Any) -> Tuple[int, ...]:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    for s in shape:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"sizes must be a tuple of ints, got {tuple(shape)!r} (element {s!r} of type "
                            f"{type(s).__name__})")
    return tuple(int(s) for s in shape)


def _index_array(index: Any, name: str) -> np.ndarray:
    arr = index.data if isinstance(index, Tensor) else np.asarray(index)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer tensor, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


# ----------------------------------------------------------------------------- constructors

def _size(size: Any) -> Tuple[int, ...]:
    shape = _shape_arg(size) if size else ()
    if any(s < 0 for s in shape):
        raise ValueError(f"size must be non-negative, got {tuple(shape)}")
    return shape


def _make(arr: np.ndarray, dtype: Any, requires_grad: bool) -> Tensor:
    return Tensor(arr, requires_grad=requires_grad, dtype=dtype)


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new Tensor holding a copy of ``data`` (as torch.tensor)."""
    arr = _to_array(data, dtype)
    if arr is (data.data if isinstance(data, Tensor) else data):
        arr = arr.copy()
    return Tensor(arr, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing memory with ``array`` (as torch.from_numpy)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects an np.ndarray, got {type(array).__name__}")
    return Tensor(array)


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.zeros(_size(size), dtype=as_dtype(dtype or _default_dtype)), None, requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.ones(_size(size), dtype=as_dtype(dtype or _default_dtype)), None, requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    if dtype is None:
        dtype = np.bool_ if isinstance(fill_value, bool) else (
            np.int64 if isinstance(fill_value, int) else _default_dtype)
    return _make(np.full(_size((size,) if isinstance(size, int) else size), fill_value,
                         dtype=as_dtype(dtype)), None, requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def arange(start: float, end: Optional[float] = None, step: float = 1, dtype: Any = None,
           requires_grad: bool = False) -> Tensor:
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound {end} and lower bound {start} inconsistent with step sign {step}")
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, int) for v in (start, end, step)) else _default_dtype
    return _make(np.arange(start, end, step, dtype=as_dtype(dtype)), None, requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None) -> Tensor:
    return Tensor(np.linspace(start, end, steps, dtype=as_dtype(dtype or _default_dtype)))


def eye(n: int, m: Optional[int] = None, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(np.eye(n, m, dtype=as_dtype(dtype or _default_dtype)), None, requires_grad)


def rand(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(_rng.random(_size(size)).astype(as_dtype(dtype or _default_dtype)), None, requires_grad)


def randn(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return _make(_rng.standard_normal(_size(size)).astype(as_dtype(dtype or _default_dtype)), None,
                 requires_grad)


def randint(low: int, high: Optional[int] = None, size: Any = (), dtype: Any = None) -> Tensor:
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    return Tensor(_rng.integers(low, high, _size(size)).astype(as_dtype(dtype or np.int64)))


def randperm(n: int, dtype: Any = None) -> Tensor:
    return Tensor(_rng.permutation(n).astype(as_dtype(dtype or np.int64)))


def _like(fn):
    def like(t: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return fn(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)
    like.__name__ = fn.__name__ + "_like"
    like.__doc__ = f"{fn.__name__} with the shape (and by default the dtype) of ``t``."
    return like


zeros_like, ones_like, rand_like, randn_like = (_like(f) for f in (zeros, ones, rand, randn))


def full_like(t: Tensor, fill_value: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return full(t.shape, fill_value, dtype=dtype or t.dtype, requires_grad=requires_grad)
