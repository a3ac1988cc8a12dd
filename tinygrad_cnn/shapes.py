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
