"""Shapes, explained: the output-size formula worked out per dimension, and a model summary.

The one formula of the course (topic 7), per spatial dimension::

    out = (W - K + 2P) / S + 1              (with dilation D: (W + 2P - D*(K-1) - 1) / S + 1)

PyTorch takes the floor of the division. When it is not exact, the last input pixels are never
reached by the filter ("dropped"), and a transposed convolution with the same K, S, P gives
back a size that is short by exactly those pixels: ``output_padding`` (or ``output_size=``, or
``MaxUnpool``'s ``output_size=``) is what puts them back. :func:`explain_conv` and
:func:`explain_pool` say all of that for each dimension; :func:`summary` does it for every
layer of a model, with parameter and multiply-accumulate (MAC) counts; :func:`separable_comparison`
sets a plain convolution beside its depthwise-separable replacement (topic 22).

MACs count the multiply-adds of convolutions and linear layers (the bulk of the work); other
layers count 0. FLOPs are about 2 x MACs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import shapes

__all__ = ["DimExplanation", "explain_conv", "explain_conv_transpose", "explain_pool", "summary",
           "Summary", "LayerRow", "separable_comparison", "SeparableComparison", "count_parameters"]

IntOrTuple = Union[int, Sequence[int]]
_DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass
class DimExplanation:
    """The output size along one dimension, with the arithmetic that produced it.

    ``formula``: the symbolic formula, e.g. ``"(W - K + 2P)/S + 1"``.
    ``worked``: the same with numbers, e.g. ``"(7 - 3 + 2*0)/2 + 1 = 3"``.
    ``dropped``: positions at the end of the *padded* input that no window reaches (the floor's
    remainder; 0 if exact). ``lost``: how many of those are real input pixels rather than padding
    (``max(0, dropped - P)``): a stride-2 3x3 conv with padding 1 on 32 pixels drops 1 position,
    but it is padding, so nothing of the image is lost.
    ``inverse``: how to get ``in_size`` back with the transposing layer (or "" when exact).
    """
    dim: str
    in_size: int
    out_size: int
    formula: str
    worked: str
    dropped: int = 0
    output_padding: int = 0
    inverse: str = ""
    lost: int = 0

    def short(self) -> str:
        """``dim: worked formula`` (what a table shows)."""
        return f"{self.dim}: {self.worked}"

    def drop_note(self) -> str:
        """What the floor dropped, in words ("" when nothing)."""
        if not self.dropped:
            return ""
        if self.lost:
            return f"the last {self.lost} input pixel(s) are never read"
        return f"only padding is dropped ({self.dropped} position(s)), no input pixel is lost"

    def __str__(self) -> str:
        text = self.short()
        if self.dropped:
            text += f"  [{self.drop_note()}; {self.inverse}]"
        return text


def _dim_names(n: int) -> Tuple[str, ...]:
    return _DIM_NAMES.get(n, tuple(f"dim{i}" for i in range(n)))


def _fmt_frac(num: int, den: int) -> str:
    if num % den == 0:
        return str(num // den)
    return f"{num / den:.4g}"


def _conv_dim(dim: str, w: int, k: int, s: int, p: int, d: int, what: str, ceil_mode: bool = False,
              pool: bool = False) -> DimExplanation:
    effective = d * (k - 1) + 1
    span = w + 2 * p - effective                      # how far the window can slide
    if d == 1:
        formula = "(W - K + 2P)/S + 1"
        numer = f"({w} - {k} + 2*{p})"
    else:
        formula = "(W + 2P - D*(K-1) - 1)/S + 1"
        numer = f"({w} + 2*{p} - {d}*({k}-1) - 1)"
    if ceil_mode:
        formula = "ceil(" + formula.replace(" + 1", "") + ") + 1"
    if span < 0:
        raise ValueError(
            f"{what}: impossible output size in {dim}: {formula} = {numer}/{s} + 1 = "
            f"{_fmt_frac(span, s)} + 1 < 1; the {'window' if pool else 'filter'} "
            f"({'dilated ' if d > 1 else ''}size {effective}) is larger than the padded input "
            f"({w} + 2*{p} = {w + 2 * p}). Use a smaller kernel, more padding or a larger input.")
    if ceil_mode:
        out = shapes.pool_output_size(w, k, s, p, d, ceil_mode=True)
    else:
        out = span // s + 1
    exact = span % s == 0
    value = _fmt_frac(span, s)
    worked = f"{numer}/{s} + 1 = {value} + 1"
    if exact:
        worked = f"{numer}/{s} + 1 = {out}"
    else:
        worked += f" -> {'ceil' if ceil_mode else 'floor'} {out}"
    dropped = 0 if ceil_mode else span % s
    exp = DimExplanation(dim, w, out, formula, worked, dropped, lost=max(0, dropped - p))
    if dropped:
        back = (out - 1) * s - 2 * p + d * (k - 1) + 1   # what the transposing layer gives without help
        exp.output_padding = w - back
        if pool:
            exp.inverse = (f"MaxUnpool gives ({out}-1)*{s} - 2*{p} + {k} = {back}; pass output_size={w} "
                           f"to get {w} back")
        else:
            exp.inverse = (f"ConvTranspose with the same K, S, P gives ({out}-1)*{s} - 2*{p} + "
                           f"{d}*({k}-1) + 1 = {back}; output_padding={exp.output_padding} "
                           f"(or output_size={w}) gives {w} back")
    return exp


def _geometry(in_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple, padding: IntOrTuple,
              dilation: IntOrTuple) -> Tuple[Tuple[int, ...], ...]:
    if isinstance(in_size, (int, np.integer)):
        n = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 1
        in_size = (int(in_size),) * n
    n = len(in_size)
    sizes = shapes.ntuple(in_size, n, "in_size", minimum=1)
    return (sizes, shapes.ntuple(kernel_size, n, "kernel_size", minimum=1),
            shapes.ntuple(stride, n, "stride", minimum=1), shapes.ntuple(padding, n, "padding", minimum=0),
            shapes.ntuple(dilation, n, "dilation", minimum=1))


def explain_conv(in_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: Union[IntOrTuple, str] = 0, dilation: IntOrTuple = 1,
                 strict: bool = False) -> List[DimExplanation]:
    """Explain a convolution's output size, one :class:`DimExplanation` per spatial dimension.

    ``in_size``: the spatial sizes (an int means one dim, or as many as ``kernel_size`` has).
    ``padding='same'`` explains the padding it picks (``P = (K-1)/2`` for odd K and stride 1).
    Raises ValueError with the worked formula for an impossible (empty) output, and, with
    ``strict=True``, also when the filter does not fit evenly (pixels would be dropped).

    >>> str(explain_conv(7, 3, stride=2)[0])
    'L: (7 - 3 + 2*0)/2 + 1 = 3'
    """
    same = isinstance(padding, str) and padding == "same"
    if isinstance(padding, str) and padding not in ("same", "valid"):
        raise ValueError(f"explain_conv: padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    pad0 = 0 if isinstance(padding, str) else padding
    sizes, ks, ss, ps, ds = _geometry(in_size, kernel_size, stride, pad0, dilation)
    names = _dim_names(len(sizes))
    out = []
    for i, (w, k, s, p, d) in enumerate(zip(sizes, ks, ss, ps, ds)):
        if same:
            before, after = shapes.same_padding(w, k, s, d)
            o = -(-w // s)
            note = f"'same' pads {before} before and {after} after"
            if s == 1 and before == after:
                note += f" (P = D*(K-1)/2 = {before} on each side keeps the size)"
            elif before != after:
                note += " (odd total: the extra pixel goes at the end, as PyTorch)"
            exp = DimExplanation(names[i], w, o, "ceil(W/S)", f"ceil({w}/{s}) = {o}; {note}")
        else:
            exp = _conv_dim(names[i], w, k, s, p, d, "explain_conv")
        if strict and exp.dropped:
            raise ValueError(f"explain_conv: the filter does not fit evenly in {exp.dim}: {exp.worked}; "
                             f"{exp.drop_note()}. "
                             f"Change the padding or stride so that (W - K + 2P) is divisible by S.")
        out.append(exp)
    return out


def explain_conv_transpose(in_size: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                           padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                           dilation: IntOrTuple = 1) -> List[DimExplanation]:
    """Explain a transposed convolution's output size: ``(W-1)*S - 2P + D*(K-1) + output_padding + 1``."""
    sizes, ks, ss, ps, ds = _geometry(in_size, kernel_size, stride, padding, dilation)
    ops = shapes.ntuple(output_padding, len(sizes), "output_padding", minimum=0)
    names = _dim_names(len(sizes))
    out = []
    for i, (w, k, s, p, d, op) in enumerate(zip(sizes, ks, ss, ps, ds, ops)):
        o = shapes.conv_transpose_output_size(w, k, s, p, op, d, dim=i)
        formula = "(W - 1)*S - 2P + D*(K-1) + output_padding + 1"
        worked = f"({w} - 1)*{s} - 2*{p} + {d}*({k}-1) + {op} + 1 = {o}"
        out.append(DimExplanation(names[i], w, o, formula, worked, 0, op))
    return out


def explain_pool(in_size: IntOrTuple, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False) -> List[DimExplanation]:
    """Explain a pooling layer's output size (the conv formula, with PyTorch's ``ceil_mode``)."""
    sizes, ks, ss, ps, ds = _geometry(in_size, kernel_size, kernel_size if stride is None else stride,
                                      padding, dilation)
    names = _dim_names(len(sizes))
    for i, (k, p) in enumerate(zip(ks, ps)):
        if p > k // 2:
            raise ValueError(f"explain_pool: padding {p} in {names[i]} should be at most half of the "
                             f"kernel size {k}")
    return [_conv_dim(names[i], w, k, s, p, d, "explain_pool", ceil_mode=ceil_mode, pool=True)
            for i, (w, k, s, p, d) in enumerate(zip(sizes, ks, ss, ps, ds))]


def _join(exps: List[DimExplanation]) -> str:
    """One line for all dims; dims with the same arithmetic are written once ("H,W: ...")."""
    groups: Dict[str, List[str]] = {}
    for e in exps:
        groups.setdefault(e.worked, []).append(e.dim)
    return "; ".join(",".join(dims) + ": " + body for body, dims in groups.items())


# ----------------------------------------------------------------------------- model summary

@dataclass
class LayerRow:
    """One layer of :func:`summary`."""
    name: str
    type: str
    input_shape: Tuple[int, ...]
    output_shape: Tuple[int, ...]
    params: int
    macs: int
    explanation: List[DimExplanation] = field(default_factory=list)
    flags: List[str] = field(default_factory=list)

    @property
    def formula(self) -> str:
        return _join(self.explanation) if self.explanation else ""


@dataclass
class Summary:
    """A model summary: ``rows`` (one per layer), totals, and a printable table (``str(s)``)."""
    rows: List[LayerRow]
    input_shape: Tuple[int, ...]
    total_params: int
    trainable_params: int
    total_macs: int

    def table(self) -> str:
        head = ("Layer", "Output shape", "Params", "MACs", "Output size per dim")
        body = [(f"{r.name} ({r.type})", str(r.output_shape), f"{r.params:,}", f"{r.macs:,}", r.formula)
                for r in self.rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
        fmt = lambda cells: "  ".join(  # noqa: E731
            c.rjust(w) if i in (2, 3) else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
        lines = [f"Input shape: {self.input_shape}", fmt(head), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        for r, cells in zip(self.rows, body):
            lines.append(fmt(cells))
            for flag in r.flags:
                lines.append("    ! " + flag)
        lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        lines.append(f"Total params: {self.total_params:,} (trainable {self.trainable_params:,})")
        lines.append(f"Total MACs: {self.total_macs:,} (about {2 * self.total_macs:,} FLOPs) "
                     f"for input {self.input_shape}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_markdown(self) -> str:
        lines = ["| layer | output shape | params | MACs | output size per dim |", "| --- | --- | ---: | ---: | --- |"]
        for r in self.rows:
            extra = "".join("<br>! " + f for f in r.flags)
            lines.append(f"| {r.name} ({r.type}) | {r.output_shape} | {r.params:,} | {r.macs:,} | {r.formula}{extra} |")
        lines.append(f"| **total** | | **{self.total_params:,}** | **{self.total_macs:,}** | |")
        return "\n".join(lines)


def count_parameters(model: Any, trainable_only: bool = False) -> int:
    """Number of parameter elements of a module (each shared parameter counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _first_tensor(obj: Any) -> Any:
    if hasattr(obj, "shape") and hasattr(obj, "data"):
        return obj
    if isinstance(obj, (tuple, list)):
        for o in obj:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _attr_tuple(m: Any, name: str, n: int) -> Tuple[int, ...]:
    return shapes.ntuple(getattr(m, name), n, name)


def _explain_layer(m: Any, in_shape: Tuple[int, ...], out_shape: Tuple[int, ...]
                   ) -> Tuple[List[DimExplanation], List[str], int]:
    """(per-dim explanation, flags, MACs) of one layer from its PyTorch-named attributes."""
    kind = type(m).__name__
    n = len(in_shape) - 2
    batch = int(in_shape[0]) if len(in_shape) > 0 else 1
    spatial_in = tuple(int(s) for s in in_shape[2:])
    explanation: List[DimExplanation] = []
    flags: List[str] = []
    macs = 0
    if kind.startswith("ConvTranspose") and n >= 1:
        k = _attr_tuple(m, "kernel_size", n)
        explanation = explain_conv_transpose(spatial_in, k, m.stride, m.padding, m.output_padding, m.dilation)
        real = tuple(out_shape[2:])
        for e, r in zip(explanation, real):     # forward(input, output_size=...) may add output padding
            if e.out_size != r:
                e.worked += f"; output_size= asked for {r}"
                e.out_size = r
        macs = batch * int(np.prod(in_shape[1:])) * (m.out_channels // m.groups) * int(np.prod(k))
    elif kind.startswith("Conv") and n >= 1:
        k = _attr_tuple(m, "kernel_size", n)
        explanation = explain_conv(spatial_in, k, m.stride, m.padding, m.dilation)
        macs = int(np.prod(out_shape)) * (m.in_channels // m.groups) * int(np.prod(k))
        if m.groups > 1:
            flags.append(f"groups={m.groups}: each output channel sees {m.in_channels // m.groups} input "
                         f"channel(s)" + (" (depthwise)" if m.groups == m.in_channels else ""))
    elif kind.startswith(("MaxPool", "AvgPool", "LPPool")) and n >= 1:
        stride = m.stride if m.stride is not None else m.kernel_size
        explanation = explain_pool(spatial_in, m.kernel_size, stride, m.padding,
                                   getattr(m, "dilation", 1), getattr(m, "ceil_mode", False))
    elif kind == "Linear":
        macs = int(np.prod(out_shape[:-1])) * m.in_features * m.out_features
    notes: Dict[str, List[str]] = {}
    for e in explanation:
        if e.dropped:
            notes.setdefault(f"{e.drop_note()} ({e.in_size} -> {e.out_size}); {e.inverse}", []).append(e.dim)
    for note, dims in notes.items():
        flags.append(f"floor in {','.join(dims)}: {note}")
    return explanation, flags, macs


def summary(model: Any, input_size: Any, dtype: Any = "float32", depth: Optional[int] = None) -> Summary:
    """Run ``model`` once on zeros of ``input_size`` and tabulate every layer.

    Args:
        model: an ``nn.Module``.
        input_size: the input shape including the batch, e.g. ``(1, 1, 28, 28)``, or an input Tensor.
        dtype: of the zeros input.
        depth: keep only layers at most this many dots deep (default: every leaf module).

    Each row: the layer's name and type, output shape, its own parameter count, its MACs for
    this input, the output size formula worked out per dimension, and flags (pixels dropped by
    the floor, with the ``output_padding``/``output_size`` that inverts it; grouped convs).
    The model runs in eval mode under ``no_grad`` and its mode is restored afterwards.
    """
    from ..engine import no_grad
    from ..tensor import Tensor
    if not hasattr(model, "named_modules"):
        raise TypeError(f"summary: model must be an nn.Module, got {type(model).__name__}")
    if isinstance(input_size, Tensor):
        x = input_size
    else:
        shape = tuple(int(s) for s in input_size)
        x = Tensor(np.zeros(shape, dtype=np.dtype(dtype)))
    rows: List[LayerRow] = []
    seen_params: set = set()
    modes = {id(m): m.training for m in model.modules()}

    def hook_for(name: str):
        def hook(module, inputs, output):
            t_in, t_out = _first_tensor(inputs), _first_tensor(output)
            if t_in is None or t_out is None:
                return
            own = [p for p in module.parameters(recurse=False) if id(p) not in seen_params]
            seen_params.update(id(p) for p in own)
            explanation, flags, macs = _explain_layer(module, tuple(t_in.shape), tuple(t_out.shape))
            rows.append(LayerRow(name, type(module).__name__, tuple(t_in.shape), tuple(t_out.shape),
                                 sum(p.numel() for p in own), macs, explanation, flags))
        return hook

    handles = []
    for name, m in model.named_modules():
        is_leaf = not any(True for _ in m.children())
        has_own = any(True for _ in m.parameters(recurse=False))
        if name and (is_leaf or has_own) and (depth is None or name.count(".") < depth):
            handles.append(m.register_forward_hook(hook_for(name)))
    if not handles:   # a single layer given as the model
        handles.append(model.register_forward_hook(hook_for(type(model).__name__.lower())))
    model.eval()
    try:
        with no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            m.training = modes[id(m)]
    return Summary(rows, tuple(x.shape), count_parameters(model), count_parameters(model, True),
                   sum(r.macs for r in rows))


# ----------------------------------------------------------------------------- depthwise-separable

@dataclass
class SeparableComparison:
    """A plain KxK convolution beside depthwise (KxK, groups=C_in) + pointwise (1x1) convolutions."""
    in_channels: int
    out_channels: int
    kernel_size: int
    out_size: Tuple[int, ...]
    plain_params: int
    depthwise_params: int
    pointwise_params: int
    plain_macs: int
    depthwise_macs: int
    pointwise_macs: int

    @property
    def separable_params(self) -> int:
        return self.depthwise_params + self.pointwise_params

    @property
    def separable_macs(self) -> int:
        return self.depthwise_macs + self.pointwise_macs

    @property
    def macs_ratio(self) -> float:
        """separable / plain; about 1/C_out + 1/K^2 (MobileNet's paper, section 3.1)."""
        return self.separable_macs / self.plain_macs

    @property
    def params_ratio(self) -> float:
        return self.separable_params / self.plain_params

    def table(self) -> str:
        c, o, k = self.in_channels, self.out_channels, self.kernel_size
        kk = "x".join([str(k)] * len(self.out_size))
        rows = [(f"plain {kk} conv {c}->{o}", self.plain_params, self.plain_macs),
                (f"  depthwise {kk}, groups={c}", self.depthwise_params, self.depthwise_macs),
                (f"  pointwise 1x1 {c}->{o}", self.pointwise_params, self.pointwise_macs),
                ("depthwise-separable total", self.separable_params, self.separable_macs)]
        w = max(len(r[0]) for r in rows)
        lines = [f"{'layer'.ljust(w)}  {'params':>10}  {'MACs':>14}   (output {self.out_size})"]
        lines += [f"{n.ljust(w)}  {p:>10,}  {m:>14,}" for n, p, m in rows]
        lines.append(f"FLOPs (2 x MACs): plain {2 * self.plain_macs:,}, separable {2 * self.separable_macs:,}")
        lines.append(f"separable / plain: params {self.params_ratio:.3f}, MACs {self.macs_ratio:.3f} "
                     f"(1/C_out + 1/K^{len(self.out_size)} = {1 / o + 1 / k ** len(self.out_size):.3f}); "
                     f"{1 / self.macs_ratio:.1f}x fewer multiply-adds")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def separable_comparison(in_channels: int, out_channels: int, kernel_size: int = 3,
                         input_size: IntOrTuple = (32, 32), stride: int = 1, padding: Union[int, str] = "same",
                         bias: bool = False) -> SeparableComparison:
    """Parameters and MACs of ``Conv2d(C_in, C_out, K)`` against ``Conv2d(C_in, C_in, K, groups=C_in)``
    followed by ``Conv2d(C_in, C_out, 1)`` on one input of spatial size ``input_size`` (topic 22).

    ``padding='same'`` uses ``(K-1)//2``. ``bias`` adds each conv's bias to the counts.
    """
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("kernel_size", kernel_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"separable_comparison: {name} must be a positive int, got {v!r}")
    sizes = (input_size,) * 2 if isinstance(input_size, (int, np.integer)) else tuple(input_size)
    n = len(sizes)
    p = (kernel_size - 1) // 2 if padding == "same" else int(padding)
    out = tuple(shapes.conv_output_size(s, kernel_size, stride, p, dim=i) for i, s in enumerate(sizes))
    positions = int(np.prod(out))
    taps = kernel_size ** n
    return SeparableComparison(
        in_channels, out_channels, kernel_size, out,
        plain_params=out_channels * in_channels * taps + (out_channels if bias else 0),
        depthwise_params=in_channels * taps + (in_channels if bias else 0),
        pointwise_params=out_channels * in_channels + (out_channels if bias else 0),
        plain_macs=positions * out_channels * in_channels * taps,
        depthwise_macs=positions * in_channels * taps,
        pointwise_macs=positions * in_channels * out_channels)
