"""Pictures of what a CNN computes: filters, activation maps, small matrices with their numbers.

The arrays behind every picture come from plain NumPy functions (:func:`filter_tiles`,
:func:`tile_grid`, :func:`activation_maps`) that work without matplotlib; only the ``save_*``
functions draw, and they need matplotlib (an optional extra: ``pip install matplotlib`` or
``pip install -e '.[demos]'``). Without it they raise an ImportError that says so.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["require_matplotlib", "has_matplotlib", "filter_tiles", "tile_grid", "activation_maps",
           "save_filter_grid", "save_activation_maps", "save_images", "save_matrix"]


def has_matplotlib() -> bool:
    """True when matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def require_matplotlib():
    """``matplotlib.pyplot`` with the non-interactive Agg backend, or a clear ImportError."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("drawing pictures needs matplotlib, an optional extra of tinygrad_cnn: "
                          "pip install matplotlib   (or: pip install -e '.[demos]'). "
                          "Everything else (numbers, tables, DOT text) works without it.") from None
    if matplotlib.get_backend().lower() != "agg":
        matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _array(x: Any) -> np.ndarray:
    return np.asarray(getattr(x, "data", x))


def _normalise(a: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] (a constant array becomes 0.5)."""
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(a.max())
    if hi - lo < 1e-12:
        return np.full(a.shape, 0.5)
    return (a - lo) / (hi - lo)


def filter_tiles(conv_or_weight: Any, colour: Optional[bool] = None, normalise: str = "each",
                 max_filters: int = 64, max_in_channels: int = 8) -> List[np.ndarray]:
    """The tiles of a filter picture, as arrays in [0, 1].

    ``conv_or_weight``: a conv module (its ``weight``) or a 2d weight ``(C_out, C_in, kH, kW)``.
    With ``colour`` (default: when ``C_in == 3``) each filter is one ``(kH, kW, 3)`` RGB tile, as
    the AlexNet first-layer picture; otherwise every (output, input channel) pair is a grey
    ``(kH, kW)`` tile, output-major (first ``max_in_channels`` inputs of each filter).
    ``normalise``: ``'each'`` scales every tile to [0, 1] on its own, ``'all'`` uses one scale.
    """
    w = _array(getattr(conv_or_weight, "weight", conv_or_weight))
    if w.ndim != 4:
        raise ValueError(f"filter_tiles: expected a 2d conv weight (C_out, C_in, kH, kW), got shape {w.shape}")
    if normalise not in ("each", "all"):
        raise ValueError(f"filter_tiles: normalise must be 'each' or 'all', got {normalise!r}")
    w = w[:max_filters].astype(np.float64)
    if colour is None:
        colour = w.shape[1] == 3
    if colour and w.shape[1] != 3:
        raise ValueError(f"filter_tiles: colour tiles need 3 input channels, the weight has {w.shape[1]}")
    if colour:
        tiles = [f.transpose(1, 2, 0) for f in w]                        # (kH, kW, 3)
    else:
        tiles = [f[c] for f in w for c in range(min(w.shape[1], max_in_channels))]
    if normalise == "all":
        lo, hi = w.min(), w.max()
        scale = hi - lo if hi - lo > 1e-12 else 1.0
        return [(t - lo) / scale for t in tiles]
    return [_normalise(t) for t in tiles]


def tile_grid(tiles: Sequence[np.ndarray], ncols: Optional[int] = None, pad: int = 1,
              pad_value: float = 1.0) -> np.ndarray:
    """Arrange equally sized tiles ``(h, w)`` or ``(h, w, 3)`` into one mosaic, row by row,
    with ``pad`` pixels of ``pad_value`` between them."""
    if not tiles:
        raise ValueError("tile_grid: no tiles")
    first = np.asarray(tiles[0])
    if any(np.asarray(t).shape != first.shape for t in tiles):
        raise ValueError("tile_grid: tiles must all have the same shape")
    n = len(tiles)
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = -(-n // ncols)
    h, w = first.shape[:2]
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad) + first.shape[2:], pad_value,
                   dtype=np.float64)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = t
    return grid


def activation_maps(model: Any, input: Any, layers: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
    """Run ``model(input)`` with forward hooks and return ``{layer name: output array}``.

    ``layers``: module names as in ``model.named_modules()`` (default: every leaf module whose
    output has spatial dims, i.e. ``(N, C, *spatial)``). Runs under ``no_grad``.
    """
    from ..engine import no_grad
    named = dict(model.named_modules())
    if layers is None:
        chosen = [n for n, m in named.items() if n and not any(True for _ in m.children())]
    else:
        missing = [n for n in layers if n not in named]
        if missing:
            raise ValueError(f"activation_maps: no layer named {missing}; the model has "
                             f"{[n for n in named if n]}")
        chosen = list(layers)
    maps: Dict[str, np.ndarray] = {}

    def hook_for(name: str):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            arr = _array(out)
            if layers is not None or arr.ndim >= 3:
                maps[name] = np.array(arr, copy=True)
        return hook

    handles = [named[n].register_forward_hook(hook_for(n)) for n in chosen]
    try:
        with no_grad():
            model(input)
    finally:
        for h in handles:
            h.remove()
    return {n: maps[n] for n in chosen if n in maps}


def _save(fig, path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path


def save_filter_grid(conv_or_weight: Any, path: str, title: Optional[str] = None, colour: Optional[bool] = None,
                     normalise: str = "each", max_filters: int = 64, max_in_channels: int = 8) -> str:
    """Save a PNG grid of a conv layer's filters (see :func:`filter_tiles`), one small panel per
    tile: filters in rows of up to 8 (colour), or one row per filter with one panel per input
    channel (grey, when the filters have several input channels). Returns ``path``."""
    plt = require_matplotlib()
    w = _array(getattr(conv_or_weight, "weight", conv_or_weight))
    tiles = filter_tiles(w, colour, normalise, max_filters, max_in_channels)
    is_colour = tiles[0].ndim == 3
    per_filter = 1 if is_colour else min(w.shape[1], max_in_channels)
    ncols = per_filter if per_filter > 1 else min(8, len(tiles))
    nrows = -(-len(tiles) // ncols)
    tile_inch = min(1.2, max(0.9, 0.1 * w.shape[3]))
    scale = min(1.0, 10.0 / (ncols * tile_inch))
    height = nrows * tile_inch * scale + 0.45
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * tile_inch * scale, height), dpi=80, squeeze=False)
    fig.subplots_adjust(left=0.03, right=0.97, bottom=0.02, top=1 - 0.4 / height, wspace=0.1, hspace=0.1)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, t in enumerate(tiles):
        ax = axes[i // ncols, i % ncols]
        ax.imshow(t, cmap=None if is_colour else "gray", interpolation="nearest", vmin=0, vmax=1)
        if per_filter > 1 and i % ncols == 0:
            ax.text(-0.6, (t.shape[0] - 1) / 2, f"{i // ncols}", ha="right", va="center", fontsize=6)
    fig.suptitle(title or f"{w.shape[0]} filters of {w.shape[1]}x{w.shape[2]}x{w.shape[3]}", fontsize=9)
    return _save(fig, path)


def save_activation_maps(maps: Any, path: str, sample: int = 0, max_channels: int = 32,
                         title: Optional[str] = None, cmap: str = "viridis", symmetric: bool = False) -> str:
    """Save a PNG grid of the channels of one sample of an activation ``(N, C, H, W)`` (or ``(C, H, W)``).

    ``maps`` may also be a dict from :func:`activation_maps`: then each layer is one row block.
    ``symmetric`` centres the colour scale of each map on 0 (for a diverging ``cmap``).
    """
    plt = require_matplotlib()
    blocks = maps if isinstance(maps, dict) else {"": maps}
    panels: List[Tuple[str, np.ndarray]] = []
    for name, a in blocks.items():
        a = _array(a)
        if a.ndim == 4:
            a = a[sample]
        if a.ndim != 3:
            raise ValueError(f"save_activation_maps: expected (N, C, H, W) or (C, H, W) maps, got shape {a.shape}"
                             + (f" for layer {name!r}" if name else ""))
        panels.append((name, a[:max_channels]))
    ncols = min(8, max(p[1].shape[0] for p in panels))
    nrows = sum(-(-p[1].shape[0] // ncols) for p in panels)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.3 * nrows + 0.4), dpi=80, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    row = 0
    for name, a in panels:
        for c in range(a.shape[0]):
            ax = axes[row + c // ncols, c % ncols]
            bound = float(np.abs(a[c]).max()) or 1.0
            limits = {"vmin": -bound, "vmax": bound} if symmetric else {}
            ax.imshow(a[c], cmap=cmap, interpolation="nearest", **limits)
            ax.set_title(f"{name + ' ' if name else ''}ch {c}", fontsize=6)
        row += -(-a.shape[0] // ncols)
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def save_images(images: Sequence[Any], path: str, titles: Optional[Sequence[str]] = None,
                ncols: Optional[int] = None, cmap: str = "gray", annotate: bool = False,
                vmin: Optional[float] = None, vmax: Optional[float] = None, suptitle: Optional[str] = None,
                fmt: str = "{:g}", cell: float = 1.8) -> str:
    """Save a row/grid of 2-D arrays (or (H, W, 3) images) side by side; with ``annotate`` each
    cell shows its number (for the slide-sized examples: 5x5 images, 3x3 filters, 4x4 outputs)."""
    plt = require_matplotlib()
    images = [_array(im) for im in images]
    n = len(images)
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell * ncols, cell * nrows + (0.4 if suptitle else 0.1)),
                             dpi=80, squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, im in enumerate(images):
        ax = axes[i // ncols, i % ncols]
        if im.ndim == 1:
            im = im[None, :]
        shown = ax.imshow(im, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
        if titles is not None and i < len(titles):
            ax.set_title(titles[i], fontsize=8)
        if annotate and im.ndim == 2:
            for (r, c), v in np.ndenumerate(im):
                red, green, blue, _ = shown.cmap(shown.norm(v))        # the cell's colour
                dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5
                ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path)


def save_matrix(matrix: Any, path: str, labels: Optional[np.ndarray] = None, title: Optional[str] = None,
                cmap: str = "coolwarm") -> str:
    """Save a picture of a (small) matrix, e.g. the conv matrix C; ``labels`` (same shape, strings
    or '' for blank) are written in the cells."""
    plt = require_matplotlib()
    m = _array(matrix).astype(np.float64)
    if m.ndim != 2:
        raise ValueError(f"save_matrix: expected a 2-D matrix, got shape {m.shape}")
    h, w = m.shape
    scale = 0.32 if max(h, w) <= 40 else 12.0 / max(h, w)
    fig, ax = plt.subplots(figsize=(max(2.0, scale * w + 1), max(1.5, scale * h + 0.8)), dpi=80)
    bound = float(np.abs(m).max()) or 1.0
    lo = 0.0 if m.min() >= 0 else -bound      # zeros get the lightest colour of a one-sided map
    ax.imshow(m, cmap=cmap, vmin=lo, vmax=bound, interpolation="nearest")
    if labels is not None:
        for (r, c), text in np.ndenumerate(np.asarray(labels, dtype=object)):
            if text:
                ax.text(c, r, str(text), ha="center", va="center", fontsize=6)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(f"{w} columns", fontsize=8)
    ax.set_ylabel(f"{h} rows", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)
