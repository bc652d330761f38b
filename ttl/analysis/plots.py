"""Matplotlib figures for the similarity analysis (axes in, axes out; nothing is shown/saved).

Text is sized for the book: a figure is shown at the column width (about 700 px, i.e.
:data:`COLUMN_INCHES` at 96 px per inch), so a wider figure is shrunk; :func:`font_size` scales
:data:`MIN_FONT` by that factor so that tick labels, annotations and colour-bar labels are still
at least 9 pt as rendered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttl.errors import ConfigError

MIN_FONT = 9.0  # points, as rendered in the book's column
COLUMN_INCHES = 700 / 96  # the book's column width (700 px at 96 px per inch)


def font_size(ax: Any, points: float = MIN_FONT) -> float:
    """``points`` scaled up by how much the book shrinks ``ax``'s figure to its column width."""
    width = float(ax.figure.get_size_inches()[0])
    return points * max(1.0, width / COLUMN_INCHES)


def _legible(ax: Any) -> None:
    """Tick labels at least :data:`MIN_FONT` as rendered; axis labels and title a little larger."""
    size = font_size(ax)
    ax.tick_params(axis="both", labelsize=size)
    for text in (ax.xaxis.label, ax.yaxis.label):
        text.set_fontsize(max(size, text.get_fontsize()))
    ax.title.set_fontsize(max(size + 1, ax.title.get_fontsize()))


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5))
    return ax


def plot_similarity_curve(df: pd.DataFrame, ax: Any = None, label: str | None = None,
                          color: str | None = None, band_label: str = "permutation null") -> Any:
    """Similarity per layer (a :func:`layer_similarity` frame) with its permutation-null band.

    Draws ``value`` against the layer order, shades ``null_low``..``null_high`` and dashes
    ``null_mean`` when those columns hold numbers; points not above their null are drawn
    hollow. Returns the axes.
    """
    missing = {"layer", "value"} - set(df.columns)
    if missing:
        raise ConfigError(f"plot_similarity_curve: df lacks columns {sorted(missing)}")
    ax = _axes(ax)
    x = np.arange(len(df))
    measure = str(df["measure"].iloc[0]) if "measure" in df and len(df) else "similarity"
    values = df["value"].to_numpy(float)
    line, = ax.plot(x, values, marker="o", color=color, label=label or measure.upper())
    if {"null_low", "null_high"} <= set(df.columns) and df["null_low"].notna().any():
        c = line.get_color()
        ax.fill_between(x, df["null_low"].to_numpy(float), df["null_high"].to_numpy(float),
                        color=c, alpha=0.15, linewidth=0, label=band_label)
        if "null_mean" in df:
            ax.plot(x, df["null_mean"].to_numpy(float), linestyle="--", color=c, alpha=0.7)
        below = ~(values > df["null_high"].to_numpy(float))
        if below.any():
            ax.scatter(x[below], values[below], s=60, facecolors="white", edgecolors=c,
                       zorder=3, label="not above the null")
    ax.set_xticks(x)
    ax.set_xticklabels(df["layer"].astype(str).tolist(), rotation=45, ha="right")
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("layer")
    ax.set_ylabel(measure.upper() if measure in ("svcca", "cka") else measure)
    ax.legend(loc="best", frameon=False, fontsize=font_size(ax))
    _legible(ax)
    return ax


def plot_svcca_coefficients(curves: Mapping[str, Sequence[float]], baseline: Any = None,
                            ax: Any = None) -> Any:
    """Sorted SVCCA coefficients per layer against their index, optionally with the band of
    Gaussian features (a :class:`RandomBaseline` or its ``as_dict()``; not a comparison's chance
    level, see :func:`ttl.analysis.permutation_null`). Returns the axes."""
    ax = _axes(ax)
    for name, c in curves.items():
        c = np.asarray(c, float)
        ax.plot(np.arange(1, c.size + 1), c, label=str(name))
    if baseline is not None:
        get = baseline.get if isinstance(baseline, Mapping) else (lambda k: getattr(baseline, k))
        mean, low, high = (np.asarray(get(k), float) for k in ("curve_mean", "curve_low",
                                                             "curve_high"))
        idx = np.arange(1, mean.size + 1)
        ax.fill_between(idx, low, high, color="grey", alpha=0.25, linewidth=0,
                        label="Gaussian features")
        ax.plot(idx, mean, color="grey", linestyle="--")
    ax.set_xlabel("coefficient index (sorted)")
    ax.set_ylabel("canonical correlation")
    ax.set_ylim(0.0, 1.05)
    ax.legend(loc="best", frameon=False, fontsize=font_size(ax))
    _legible(ax)
    return ax


def plot_similarity_matrix(mat: Any, labels: Sequence[str] | None = None, ax: Any = None,
                           annotate: bool = True, cmap: str = "viridis",
                           vmin: float = 0.0, vmax: float = 1.0, mask: Any = None,
                           colorbar_label: str | None = None) -> Any:
    """Heat map of a square similarity matrix (array or DataFrame, whose index gives the labels
    when ``labels`` is None), with a colour bar. ``mask``: a boolean matrix of cells that are
    **not** above chance; they are hatched and their numbers greyed. By default it is read from a
    :func:`cross_layer_similarity` frame with a null (``attrs["above_null"]``). Returns the axes.
    """
    if labels is None and isinstance(mat, pd.DataFrame):
        labels = [str(v) for v in mat.index]
    if mask is None and isinstance(mat, pd.DataFrame) and "above_null" in mat.attrs:
        mask = ~np.asarray(mat.attrs["above_null"], dtype=bool)
    m = np.asarray(mat, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ConfigError(f"plot_similarity_matrix: expected a square matrix, got {m.shape}")
    if labels is not None and len(labels) != m.shape[0]:
        raise ConfigError(f"plot_similarity_matrix: {len(labels)} labels for a {m.shape} matrix")
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != m.shape:
            raise ConfigError(f"plot_similarity_matrix: mask {mask.shape} for a {m.shape} matrix")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(1 + 0.6 * m.shape[0], 0.5 + 0.6 * m.shape[0]))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
    bar = ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    size = font_size(ax)
    bar.ax.tick_params(labelsize=size)
    if colorbar_label:
        bar.set_label(colorbar_label, fontsize=size)
    ticks = np.arange(m.shape[0])
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if labels is not None:
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_yticklabels(labels)
    if mask is not None and mask.any():
        from matplotlib.patches import Rectangle

        for i, j in zip(*np.nonzero(mask)):
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="white", linewidth=0, alpha=0.8))
    if annotate and m.shape[0] <= 20:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                v = m[i, j]
                if mask is not None and mask[i, j]:  # not above chance: dark on a light box
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=size, color="0.25",
                            bbox=dict(facecolor="white", alpha=0.75, linewidth=0, pad=1.0))
                else:
                    ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=size,
                            color="white" if v < (vmin + vmax) / 2 else "black")
    _legible(ax)
    return ax
