"""Output-size and padding arithmetic, shared by kernels, ops, nn and the teaching tools.

Every impossible shape is refused here with a ValueError that names the argument,
the value and what was expected, before any kernel runs.

The one formula of the course (topic 7), per spatial dimension::

    out = floor((W + 2P - D*(K-1) - 1) / S) + 1        (= (W-K+2P)/S+1 when D=1)

and its inverse for transposed convolution::

    W = (out-1)*S - 2P + D*(K-1) + output_padding + 1
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

IntOrTuple = Union[int, Sequence[int]]


def ntuple(value: IntOrTuple, n: int, name: str, minimum: int | None = None) -> Tuple[int, ...]:
    """Turn an int or a sequence into a tuple of ``n`` ints, checking each against ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    if isinstance(value, int) or (hasattr(value, "__index__") and not hasattr(value, "__len__")):
        out = (int(value),) * n
    else:
        try:
            out = tuple(value)
        except TypeError:
            raise TypeError(f"{name} must be an int or a tuple of {n} ints, got {value!r}") from None
        if len(out) == 1 and n > 1:
            out = out * n
        if len(out) != n:
            raise ValueError(f"{name} must have {n} elements for a {n}d operation, got {value!r}")
        for v in out:
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise TypeError(f"{name} must contain ints, got {value!r}")
        out = tuple(int(v) for v in out)
    if minimum is not None and any(v < minimum for v in out):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {value!r}")
    return out


def conv_output_size(in_size: int, kernel: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1, dim: int = 0) -> int:
    """Output length of a convolution along one dimension; ValueError if it would be empty."""
    effective = dilation * (kernel - 1) + 1
    out = (in_size + 2 * padding - effective) // stride + 1
    if out < 1:
        raise ValueError(
            f"convolution output would be empty in spatial dim {dim}: input size {in_size} "
            f"+ 2*padding {padding} is smaller than the dilated kernel size {effective} "
            f"(kernel_size={kernel}, dilation={dilation})")
    return out


def conv_transpose_output_size(in_size: int, kernel: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0, dilation: int = 1, dim: int = 0) -> int:
    """Output length of a transposed convolution along one dimension."""
    if output_padding >= stride and output_padding >= dilation:
        raise ValueError(
            f"output_padding ({output_padding}) in spatial dim {dim} must be smaller than "
            f"either stride ({stride}) or dilation ({dilation})")
    out = (in_size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1
    if out < 1:
        raise ValueError(
            f"transposed convolution output would be empty in spatial dim {dim}: "
            f"({in_size}-1)*{stride} - 2*{padding} + {dilation}*({kernel}-1) + {output_padding} + 1 = {out}")
    return out


def same_padding(in_size: int, kernel: int, stride: int = 1, dilation: int = 1) -> Tuple[int, int]:
    """(pad_before, pad_after) so that out = ceil(in/stride) -- TensorFlow's 'same' convention.

    With stride 1 this is PyTorch's ``padding='same'`` (the extra pixel, when the total is
    odd, goes at the end, as in PyTorch).
    """
    if dilation * (kernel - 1) > 2 ** 31:
        raise ValueError(f"'same' padding: dilation {dilation} x (kernel {kernel} - 1) is too large "
                         f"(the padding would not fit in memory)")
    out = -(-in_size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - in_size, 0)
    return total // 2, total - total // 2


def pool_output_size(in_size: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False, dim: int = 0) -> int:
    """Output length of a pooling window along one dimension, with PyTorch's ceil_mode rule.

    In ceil mode the last window must start inside the input or the left padding
    (PyTorch drops it otherwise).
    """
    if padding > kernel // 2:
        raise ValueError(f"padding ({padding}) in spatial dim {dim} should be at most half of "
                         f"kernel_size ({kernel})")
    effective = dilation * (kernel - 1) + 1
    span = in_size + 2 * padding - effective
    if ceil_mode:
        out = -(-span // stride) + 1
        if (out - 1) * stride >= in_size + padding:
            out -= 1
    else:
        out = span // stride + 1
    if out < 1:
        raise ValueError(
            f"pooling output would be empty in spatial dim {dim}: input size {in_size} "
            f"+ 2*padding {padding} is smaller than the dilated kernel size {effective}")
    return out


def drops_pixels(in_size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """How many input pixels at the end the floor in the output-size formula leaves unused."""
    effective = dilation * (kernel - 1) + 1
    return (in_size + 2 * padding - effective) % stride


def max_unpool_output_size(in_size: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                           padding: Sequence[int], output_size: Sequence[int] | None = None) -> Tuple[int, ...]:
    """Spatial output size of max-unpooling, as PyTorch computes it.

    Without ``output_size``: ``(in - 1) * stride - 2 * padding + kernel`` per dimension (the
    input size of a pooling that floored nothing).  With it (spatial sizes, or the full
    ``(N, C, *spatial)`` shape), each entry must lie strictly between ``default - stride`` and
    ``default + stride``: those are the only sizes a pooling with these parameters could have
    shrunk to ``in_size`` (the floor of the output-size formula drops fewer than ``stride``
    pixels).
    """
    n = len(in_size)
    default = tuple((i - 1) * s - 2 * p + k for i, k, s, p in zip(in_size, kernel, stride, padding))
    if output_size is None:
        out = default
    else:
        if isinstance(output_size, int):
            output_size = (output_size,) * n
        sizes = tuple(int(v) for v in output_size)
        if len(sizes) == n + 2:
            sizes = sizes[2:]
        if len(sizes) != n:
            raise ValueError(f"output_size must have {n} or {n + 2} elements, got {output_size!r}")
        for d, (size, base, s) in enumerate(zip(sizes, default, stride)):
            if not base - s < size < base + s:
                raise ValueError(
                    f"invalid output_size {tuple(output_size)!r} (dim {d} must be between "
                    f"{base - s} and {base + s}, exclusive): a pooling with kernel_size={tuple(kernel)}, "
                    f"stride={tuple(stride)}, padding={tuple(padding)} could not have produced an input "
                    f"of size {tuple(in_size)} from it")
        out = sizes
    for d, size in enumerate(out):
        if size < 1:
            raise ValueError(f"max_unpool output would be empty in spatial dim {d}: ({in_size[d]}-1)"
                             f"*{stride[d]} - 2*{padding[d]} + {kernel[d]} = {size}")
    return tuple(out)


def adaptive_pool_output_size(in_size: Sequence[int], output_size) -> Tuple[int, ...]:
    """The spatial output size of adaptive pooling; ``None`` entries keep the input size."""
    n = len(in_size)
    if output_size is None or isinstance(output_size, int):
        sizes = (output_size,) * n
    else:
        sizes = tuple(output_size)
        if len(sizes) == 1 and n > 1:
            sizes = sizes * n
        if len(sizes) != n:
            raise ValueError(f"output_size must be an int or a tuple of {n} ints/None, got {output_size!r}")
    out = []
    for size, inp in zip(sizes, in_size):
        if size is None:
            out.append(int(inp))
        elif isinstance(size, bool) or not hasattr(size, "__index__"):
            raise TypeError(f"output_size must contain ints or None, got {output_size!r}")
        elif int(size) < 1:
            raise ValueError(f"output_size must be >= 1 in every dimension (an empty output), "
                             f"got {output_size!r}")
        else:
            out.append(int(size))
    return tuple(out)


def interpolate_output_size(in_size: Sequence[int], size=None, scale_factor=None
                            ) -> Tuple[Tuple[int, ...], Tuple[float | None, ...]]:
    """``(out_size, scale_factors)`` of ``interpolate``, as PyTorch computes them.

    Exactly one of ``size`` and ``scale_factor`` must be given.  With ``scale_factor``,
    ``out = floor(in * scale)`` and the scale itself is what the kernels use (``1 / scale``
    per output step), so e.g. ``scale_factor=1.5`` on 5 pixels gives 7 outputs spaced 1/1.5.
    """
    n = len(in_size)
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined "
                         f"(got size={size!r}, scale_factor={scale_factor!r})")
    if size is not None:
        out = ntuple(size, n, "size")
        scales: Tuple[float | None, ...] = (None,) * n
    else:
        if isinstance(scale_factor, (int, float)) and not isinstance(scale_factor, bool):
            scales = (float(scale_factor),) * n
        else:
            scales = tuple(float(s) for s in scale_factor)
            if len(scales) != n:
                raise ValueError(f"scale_factor must have {n} elements for {n} spatial dims, "
                                 f"got {scale_factor!r}")
        for s in scales:
            if not s > 0 or s != s or s == float("inf"):
                raise ValueError(f"scale_factor must be positive and finite, got {scale_factor!r}")
        out = tuple(int(float(i) * s // 1) for i, s in zip(in_size, scales))   # floor, as PyTorch
    if any(o < 1 for o in out) or any(i < 1 for i in in_size):
        raise ValueError(f"interpolate: input and output sizes should be greater than 0, but got "
                         f"input {tuple(in_size)} and output {tuple(out)} "
                         f"(size={size!r}, scale_factor={scale_factor!r})")
    return tuple(out), scales


def conv_transpose_output_padding(in_size: Sequence[int], output_size: Sequence[int],
                                  kernel: Sequence[int], stride: Sequence[int],
                                  padding: Sequence[int], dilation: Sequence[int]) -> Tuple[int, ...]:
    """The ``output_padding`` that makes a transposed convolution produce ``output_size``.

    A strided convolution maps ``stride`` different input sizes to the same output size, so
    its transpose has to be told which one to produce. Per dimension the valid sizes are
    ``min = (in-1)*stride - 2*padding + dilation*(kernel-1) + 1`` up to ``min + stride - 1``
    (PyTorch's rule for ``ConvTranspose*d.forward(input, output_size)``);
    ``output_size`` holds the spatial sizes only.
    """
    n = len(kernel)
    sizes = tuple(int(v) for v in output_size)
    if len(sizes) != n:
        raise ValueError(f"output_size must have {n} spatial sizes, got {tuple(output_size)!r}")
    lo = [(i - 1) * s - 2 * p + d * (k - 1) + 1
          for i, k, s, p, d in zip(in_size, kernel, stride, padding, dilation)]
    hi = [m + s - 1 for m, s in zip(lo, stride)]
    for size, a, b in zip(sizes, lo, hi):
        if not a <= size <= b:
            raise ValueError(f"requested an output size of {sizes}, but valid sizes range from "
                             f"{tuple(lo)} to {tuple(hi)} (for an input of spatial size "
                             f"{tuple(in_size)}, kernel_size={tuple(kernel)}, stride={tuple(stride)}, "
                             f"padding={tuple(padding)}, dilation={tuple(dilation)})")
    return tuple(size - a for size, a in zip(sizes, lo))
