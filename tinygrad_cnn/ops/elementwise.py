"""Element-wise ops. Broadcasting happens in forward (NumPy); the engine sums gradients back."""
import numpy as np

from ..engine import Function
from ..kernels.elementwise import add as _add_kernel
from ..kernels.elementwise import erf as _erf_kernel
from ..kernels.elementwise import relu as _relu_kernel
from ..kernels.elementwise import relu_backward as _relu_backward_kernel
from ..tensor import Tensor


def _const(mask: np.ndarray, like: Tensor) -> Tensor:
    """A constant (non-differentiable) Tensor of ``like``'s dtype, e.g. a 0/1 mask."""
    return Tensor(mask.astype(like.dtype, copy=False))


class Add(Function):
    @staticmethod
    def forward(ctx, a, b):
        return _add_kernel(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        return g, g


class Sub(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a.data - b.data

    @staticmethod
    def backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data * b.data

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g * b if ctx.needs_input_grad[0] else None,
                g * a if ctx.needs_input_grad[1] else None)


class Div(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a.data / b.data

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g / b if ctx.needs_input_grad[0] else None,
                -(g * (a / b)) / b if ctx.needs_input_grad[1] else None)


class Neg(Function):
    @staticmethod
    def forward(ctx, a):
        return -a.data

    @staticmethod
    def backward(ctx, g):
        return -g


class Cast(Function):
    """Change of float dtype; the gradient is cast back."""
    @staticmethod
    def forward(ctx, a, dtype):
        ctx.dtype = a.dtype
        return a.data.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.to(ctx.dtype), None


class PowScalar(Function):
    """x ** p for a Python number p: d/dx = p * x ** (p - 1)."""
    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return np.power(x.data, x.dtype.type(p))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.p == 0:
            return g * 0.0, None
        return g * ctx.p * PowScalar.apply(x, ctx.p - 1), None


class Pow(Function):
    """a ** b for two tensors: d/da = b a^(b-1), d/db = a^b log a (0 where a == 0 and b >= 0)."""
    @staticmethod
    def forward(ctx, a, b):
        out = np.power(a.data, b.data)
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx, g):
        a, b, out = ctx.saved_tensors
        ga = gb = None
        if ctx.needs_input_grad[0]:
            ga = g * b * a ** (b - 1.0)
        if ctx.needs_input_grad[1]:
            safe = Where.apply(a.data == 0, Tensor(np.ones((), a.dtype)), a)
            mask = _const(~((a.data == 0) & (b.data >= 0)), g)
            gb = g * out * safe.log() * mask
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.exp(x.data)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g * out


class Log(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x.data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    @staticmethod
    def forward(ctx, x):
        with np.errstate(invalid="ignore"):
            out = np.sqrt(x.data)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (out,) = ctx.saved_tensors
        return g / (out * 2.0)


class Abs(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.abs(x.data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _const(np.sign(x.data), g)


class Clamp(Function):
    """Gradient passes where min <= x <= max (inclusive, as PyTorch)."""
    @staticmethod
    def forward(ctx, x, lo, hi):
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return np.clip(x.data, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        mask = np.ones(x.shape, dtype=bool)
        if ctx.lo is not None:
            mask &= x.data >= ctx.lo
        if ctx.hi is not None:
            mask &= x.data <= ctx.hi
        return g * _const(mask, g), None, None


class Maximum(Function):
    """Element-wise max; where a == b the gradient is split in half (as PyTorch)."""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = (a.data > b.data) + 0.5 * (a.data == b.data)
        return g * _const(wa, g), g * _const(1.0 - wa, g)


class Minimum(Function):
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        wa = (a.data < b.data) + 0.5 * (a.data == b.data)
        return g * _const(wa, g), g * _const(1.0 - wa, g)


class Where(Function):
    """where(cond, a, b); ``cond`` is a bool array (no gradient)."""
    @staticmethod
    def forward(ctx, cond, a, b):
        ctx.cond = cond
        return np.where(cond, a.data, b.data)

    @staticmethod
    def backward(ctx, g):
        zero = Tensor(np.zeros((), g.dtype))
        return (None,
                Where.apply(ctx.cond, g, zero) if ctx.needs_input_grad[1] else None,
                Where.apply(ctx.cond, zero, g) if ctx.needs_input_grad[2] else None)


class ReLU(Function):
    @staticmethod
    def forward(ctx, x):
        out = _relu_kernel(x.data)
        ctx.save_for_backward(out)      # the output: y > 0 exactly where x > 0
        return out

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return ReluBackward.apply(g, y)


class ReluBackward(Function):
    """``g * (y > 0)`` in one pass (PyTorch's threshold_backward). Linear in g, so its own
    gradient is itself; the mask has zero derivative (almost everywhere) in y."""
    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(y)
        return _relu_backward_kernel(g.data, y.data)

    @staticmethod
    def backward(ctx, gg):
        (y,) = ctx.saved_tensors
        return (ReluBackward.apply(gg, y) if ctx.needs_input_grad[0] else None), None


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return np.where(x.data > 0, x.data, x.data * x.dtype.type(slope))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * _const(np.where(x.data > 0, 1.0, ctx.slope), g), None


class Sigmoid(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.exp(-np.logaddexp(0, -x.data)).astype(x.dtype, copy=False)  # stable for |x| large
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * s * (1.0 - s)


class Tanh(Function):
    @staticmethod
    def forward(ctx, x):
        out = np.tanh(x.data)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (1.0 - t * t)


class Erf(Function):
    """erf(x); d/dx = 2/sqrt(pi) exp(-x^2). Used by the exact GELU."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _erf_kernel(x.data)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (2.0 / np.sqrt(np.pi)) * (-(x * x)).exp()


class Softplus(Function):
    """log(1 + exp(beta x)) / beta, linear above ``threshold`` (as PyTorch)."""
    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = beta, threshold
        bx = x.data * beta
        return np.where(bx > threshold, x.data, np.logaddexp(0, bx) / beta).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        linear = x.data * ctx.beta > ctx.threshold
        s = (x * ctx.beta).sigmoid()
        return Where.apply(linear, g, g * s), None, None
