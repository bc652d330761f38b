"""Matplotlib figures for the similarity analysis (axes in, axes out; nothing is shown/saved)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttl.errors import ConfigError


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 3.5))
    return ax


def plot_similarity_curve(df: pd.DataFrame, ax: Any = None, label: str | None = None,
                          color: str | None = None, band_label: str = "random features") -> Any:
    """Similarity per layer (a :func:`layer_similarity` frame) with the random-baseline band.

    Draws ``value`` against the layer order, shades ``baseline_low``..``baseline_high`` and
    dashes ``baseline_mean`` when those columns hold numbers. Returns the axes.
    """
    missing = {"layer", "value"} - set(df.columns)
    if missing:
        raise ConfigError(f"plot_similarity_curve: df lacks columns {sorted(missing)}")
    ax = _axes(ax)
    x = np.arange(len(df))
    measure = str(df["measure"].iloc[0]) if "measure" in df and len(df) else "similarity"
    line, = ax.plot(x, df["value"].to_numpy(float), marker="o", color=color,
                    label=label or measure.upper())
    if {"baseline_low", "baseline_high"} <= set(df.columns) and df["baseline_low"].notna().any():
        c = line.get_color()
        ax.fill_between(x, df["baseline_low"].to_numpy(float), df["baseline_high"].to_numpy(float),
                        color=c, alpha=0.15, linewidth=0, label=band_label)
        if "baseline_mean" in df:
            ax.plot(x, df["baseline_mean"].to_numpy(float), linestyle="--", color=c, alpha=0.7)
    ax.set_xticks(x)
    ax.set_xticklabels(df["layer"].astype(str).tolist(), rotation=45, ha="right")
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("layer")
    ax.set_ylabel(measure.upper() if measure in ("svcca", "cka") else measure)
    ax.legend(loc="best", frameon=False)
    return ax


def plot_svcca_coefficients(curves: Mapping[str, Sequence[float]], baseline: Any = None,
                            ax: Any = None) -> Any:
    """Sorted SVCCA coefficients per layer against their index, optionally with a random
    baseline's band (a :class:`RandomBaseline` or its ``as_dict()``). Returns the axes."""
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
                        label="random features")
        ax.plot(idx, mean, color="grey", linestyle="--")
    ax.set_xlabel("coefficient index (sorted)")
    ax.set_ylabel("canonical correlation")
    ax.set_ylim(0.0, 1.05)
    ax.legend(loc="best", frameon=False, fontsize="small")
    return ax


def plot_similarity_matrix(mat: Any, labels: Sequence[str] | None = None, ax: Any = None,
                           annotate: bool = True, cmap: str = "viridis",
                           vmin: float = 0.0, vmax: float = 1.0) -> Any:
    """Heat map of a square similarity matrix (array or DataFrame, whose index gives the labels
    when ``labels`` is None). Returns the axes."""
    if labels is None and isinstance(mat, pd.DataFrame):
        labels = [str(v) for v in mat.index]
    m = np.asarray(mat, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ConfigError(f"plot_similarity_matrix: expected a square matrix, got {m.shape}")
    if labels is not None and len(labels) != m.shape[0]:
        raise ConfigError(f"plot_similarity_matrix: {len(labels)} labels for a {m.shape} matrix")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(1 + 0.5 * m.shape[0], 0.5 + 0.5 * m.shape[0]))
    im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.figure.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ticks = np.arange(m.shape[0])
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if labels is not None:
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_yticklabels(labels)
    if annotate and m.shape[0] <= 20:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                v = m[i, j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < (vmin + vmax) / 2 else "black")
    return ax
