"""The convolution family: three Functions whose gradients are made of each other.

For a convolution ``y = conv(x, w)`` (cross-correlation, as in PyTorch):

    ConvNd           y  = conv(x, w) + b                      (the forward pass)
    ConvTransposeNd  x' = conv^T(y', w) + b                    (= the gradient of conv in x)
    ConvWeightGrad   w' = d<y', conv(x, w)>/dw                (= the gradient of conv in w)

conv is linear in x and in w, so each member's backward is another member:

    ConvNd:           dx = conv^T(gy, w)          dw = ConvWeightGrad(x, gy)     db = sum(gy)
    ConvTransposeNd:  dy = conv(gz, w)            dw = ConvWeightGrad(gz, y)     db = sum(gz)
    ConvWeightGrad:   dx = conv^T(gy, gw')        dgy = conv(x, gw')

Because every backward is written with ``.apply`` of these Functions (Tensor level), second
derivatives (gradgradcheck, create_graph=True) work through every convolution. One shortcut:
when nothing records the backward (no create_graph) and ConvNd needs both dx and dw, one kernel
computes the two from one patch matrix of gy (``kernels.conv_backward``); the results are the
same as the two Functions', and the tests check both routes.

Geometry arguments (all tuples, one entry per spatial dim, already validated by
``tinygrad_cnn.nn.functional.conv``): ``stride``, ``padding`` = padding *before* each dim,
``dilation``, ``groups``. The padding after each dim is implied by the sizes, which are passed
explicitly (``out_size`` of a conv, ``in_size`` of a transposed conv); see kernels/conv.py.
Weights always use the conv layout (C_out, C_in/groups, *K); for a transposed convolution
that is exactly PyTorch's (C_in, C_out/groups, *K) layout.
"""
from __future__ import annotations

from ..engine import Function, is_grad_enabled
from ..kernels import conv as kernels
from ..tensor import Tensor


def _channel_sum(g):
    """Bias gradient: sum over the batch and every spatial dim, keeping channels."""
    return g.sum(dim=(0,) + tuple(range(2, g.ndim)))


class ConvNd(Function):
    """(N, C_in, *S) conv (C_out, C_in/groups, *K) [+ (C_out,)] -> (N, C_out, *out_size)."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups, out_size):
        ctx.save_for_backward(x, weight)
        ctx.geometry = (stride, padding, dilation, groups)
        # the weight gradient reuses the padded input the forward builds (memory for time),
        # unless the fused backward will compute it from grad_out's patch matrix instead
        need_x, need_w = ctx.needs_input_grad[:2]
        keep = need_w and not (need_x and kernels.backward_fuses(weight.shape, x.shape[1], *ctx.geometry))
        out = kernels.conv_forward(x.data, weight.data, None if bias is None else bias.data,
                                   stride, padding, dilation, groups, out_size, keep_source=keep)
        y, ctx.source = out if keep else (out, None)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        source, ctx.source = ctx.source, None      # used once (a second backward rebuilds it)
        if need_x and need_w and not is_grad_enabled():     # not recorded: the fused kernel
            both = kernels.conv_backward(x.data, grad_out.data, weight.data, *ctx.geometry)
            if both is not None:
                gb = _channel_sum(grad_out) if need_b else None
                return Tensor(both[0]), Tensor(both[1]), gb, None, None, None, None, None
        gx = ConvTransposeNd.apply(grad_out, weight, None, *ctx.geometry, x.shape[2:]) if need_x else None
        gw = ConvWeightGrad.apply(x, grad_out, weight.shape[2:], *ctx.geometry, source) if need_w else None
        gb = _channel_sum(grad_out) if need_b else None
        return gx, gw, gb, None, None, None, None, None


class ConvTransposeNd(Function):
    """Transposed convolution = the input-gradient of a convolution.

    (N, C_out, *S_out) with weight (C_out, C_in/groups, *K) [+ bias (C_in,)] -> (N, C_in, *in_size),
    where C_out/C_in are named from the point of view of the convolution it transposes.
    """

    @staticmethod
    def forward(ctx, y, weight, bias, stride, padding, dilation, groups, in_size):
        ctx.save_for_backward(y, weight)
        ctx.geometry = (stride, padding, dilation, groups)
        out = kernels.conv_input_grad(y.data, weight.data, stride, padding, dilation, groups, in_size)
        if bias is not None:
            out += bias.data.reshape((1, -1) + (1,) * (out.ndim - 2))
        return out

    @staticmethod
    def backward(ctx, grad_out):
        y, weight = ctx.saved_tensors
        need_y, need_w, need_b = ctx.needs_input_grad[:3]
        gy = ConvNd.apply(grad_out, weight, None, *ctx.geometry, y.shape[2:]) if need_y else None
        gw = ConvWeightGrad.apply(grad_out, y, weight.shape[2:], *ctx.geometry, None) if need_w else None
        gb = _channel_sum(grad_out) if need_b else None
        return gy, gw, gb, None, None, None, None, None


class ConvWeightGrad(Function):
    """d<gy, conv(x, w)>/dw: x (N, C_in, *S), gy (N, C_out, *S_out) -> (C_out, C_in/groups, *K).

    Bilinear in (x, gy); its own gradients are a transposed conv and a conv with the
    incoming weight-shaped gradient as the filter.
    """

    @staticmethod
    def forward(ctx, x, grad_y, kernel_size, stride, padding, dilation, groups, source=None):
        ctx.save_for_backward(x, grad_y)
        ctx.geometry = (stride, padding, dilation, groups)
        return kernels.conv_weight_grad(x.data, grad_y.data, kernel_size, stride, padding, dilation, groups,
                                        source)

    @staticmethod
    def backward(ctx, grad_w):
        x, grad_y = ctx.saved_tensors
        need_x, need_gy = ctx.needs_input_grad[:2]
        gx = ConvTransposeNd.apply(grad_y, grad_w, None, *ctx.geometry, x.shape[2:]) if need_x else None
        ggy = ConvNd.apply(x, grad_w, None, *ctx.geometry, grad_y.shape[2:]) if need_gy else None
        return gx, ggy, None, None, None, None, None, None
