"""Figures of the experiments in the book's house style: per-cut curves, the accuracy-versus-cost
benchmark, example-image grids and the Grad-CAM grid.

House style (:func:`house_style`): figures at most :data:`MAX_WIDTH_IN` inches wide (the book's
column at 100 % zoom), text at least 9 pt, PNGs at 150 dpi. A figure with several panels wraps
them into rows (:func:`panel_grid`) instead of shrinking them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

MAX_WIDTH_IN = 7.0  # the book's text column, in inches, at 100 % zoom
MIN_FONT_PT = 9.0  # smallest text in a figure (tick labels, legends, annotations)
STYLE: dict[str, Any] = {
    "figure.figsize": (MAX_WIDTH_IN, 3.6),
    "figure.dpi": 150,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "figure.constrained_layout.use": True,
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "image.interpolation": "nearest",
}


def house_style() -> dict[str, Any]:
    """Apply the book's matplotlib style (call once per notebook, after ``%matplotlib inline``)."""
    mpl.rcParams.update(STYLE)
    return dict(STYLE)


def panel_grid(n: int, max_cols: int = 3, panel_height: float = 2.6, width: float = MAX_WIDTH_IN,
               **subplots: Any) -> tuple[Any, np.ndarray]:
    """A figure ``width`` wide with ``n`` panels in rows of at most ``max_cols`` (unused hidden).

    Returns ``(fig, axes)`` with ``axes`` flat and of length ``n``.
    """
    cols = max(1, min(n, max_cols))
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(min(width, MAX_WIDTH_IN), panel_height * rows),
                             squeeze=False, **subplots)
    flat = axes.ravel()
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _axes(ax: Any, figsize: tuple[float, float] = (MAX_WIDTH_IN, 3.6)) -> Any:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    return ax


def plot_cut_curves(df: pd.DataFrame, value: str = "auroc", hue: str = "source", ax: Any = None,
                    title: str | None = None, chance: float | None = 0.5) -> Any:
    """``value`` per cut (x: cut index, ticks: cut names), one line per ``hue``; CI bands when
    ``{value}_low``/``{value}_high`` columns exist, or mean ± sd over seeds when rows repeat."""
    ax = _axes(ax)
    order = df.drop_duplicates("cut_index").sort_values("cut_index")
    for name, g in df.groupby(hue, sort=False):
        stats = g.groupby("cut_index")[value].agg(["mean", "std"]).reindex(order["cut_index"])
        stats = stats[stats["mean"].notna()]
        x = stats.index.to_numpy()
        ax.plot(x, stats["mean"], marker="o", ms=3.5, label=str(name))
        if f"{value}_low" in g and g[f"{value}_low"].notna().all() and g["cut_index"].is_unique:
            gg = g.set_index("cut_index").reindex(stats.index)
            ax.fill_between(x, gg[f"{value}_low"].astype(float), gg[f"{value}_high"].astype(float), alpha=0.2)
        elif stats["std"].notna().any():
            sd = stats["std"].fillna(0)
            ax.fill_between(x, stats["mean"] - sd, stats["mean"] + sd, alpha=0.2)
    if chance is not None:
        ax.axhline(chance, color="grey", lw=0.8, ls=":", label="chance")
    ax.set_xticks(order["cut_index"], order["cut"], rotation=60, ha="right")
    ax.set_xlabel("cut point (deeper →)")
    ax.set_ylabel(value.replace("_", " ").upper() if value == "auroc" else value.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


STRATEGY_STYLE = {  # kind -> (marker, colour): the same look for a strategy in every panel
    "ttl": ("o", "C0"), "full": ("s", "C1"), "lwft": ("^", "C2"), "transfusion": ("D", "C3"),
    "scratch": ("x", "C7"), "scratch at TTL's cut": ("P", "C5"), "linear_probe": ("v", "C4"),
}


def strategy_kind(label: str) -> str:
    """A run label's kind for the legend: ``ttl(layer2.1)`` -> ``ttl``, ``scratch(layer2.1)`` ->
    ``scratch at TTL's cut``."""
    if label.startswith("scratch("):
        return "scratch at TTL's cut"
    return label.split("(")[0]


def plot_accuracy_vs_cost(summary: pd.DataFrame, cost: str = "params", value: str = "test_auroc",
                          ax: Any = None, title: str | None = None, legend: bool = True) -> Any:
    """Mean ``value`` with its CI over seeds against a cost column (log scale), one marker per
    strategy kind (a legend, not text labels, so models of the same size do not overprint);
    points of equal cost are spread slightly sideways."""
    ax = _axes(ax, (6.5, 4))
    seen: dict[float, int] = {}
    for _, row in summary.iterrows():
        kind = strategy_kind(str(row["label"]))
        marker, colour = STRATEGY_STYLE.get(kind, ("o", "k"))
        x0 = float(row[cost])
        k = seen.get(round(x0, 6), 0)
        seen[round(x0, 6)] = k + 1
        x = x0 * (1.12 ** (k - 0.0))
        mean, low, high = row[f"{value}_mean"], row[f"{value}_ci_low"], row[f"{value}_ci_high"]
        yerr = [[max(mean - low, 0) if pd.notna(low) else 0], [max(high - mean, 0) if pd.notna(high) else 0]]
        ax.errorbar([x], [mean], yerr=yerr, fmt=marker, color=colour, capsize=3, label=kind, ms=6)
    ax.set_xscale("log")
    ax.set_xlabel({"params": "parameters", "flops": "FLOPs per image", "latency_ms": "latency (ms)"}.get(cost, cost))
    ax.set_ylabel(f"{value.replace('_', ' ')} (mean, 95% CI)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), frameon=False, fontsize=MIN_FONT_PT)
    return ax


def plot_pretraining_curve(history: Sequence[Mapping[str, float]], chance: float | None = None) -> Any:
    """Training loss (left) and training / held-out accuracy (right) per epoch of a pretraining
    (``ttl pretrain``'s ``result.json`` history), with the chance accuracy dashed."""
    epochs = [int(h["epoch"]) for h in history]
    fig, (left, right) = plt.subplots(1, 2, figsize=(MAX_WIDTH_IN - 0.3, 2.8), constrained_layout=True)  # tight bbox adds a margin
    left.plot(epochs, [h["train_loss"] for h in history], marker="o", color="C0")
    left.set_xlabel("epoch")
    left.set_ylabel("training loss")
    right.plot(epochs, [h["train_accuracy"] for h in history], marker="o", color="C0", label="training (augmented)")
    right.plot(epochs, [h["val_accuracy"] for h in history], marker="s", color="C1", label="held-out instances")
    if chance is not None:
        right.axhline(chance, color="0.5", linestyle="--", linewidth=1, label="chance")
    right.set_xlabel("epoch")
    right.set_ylabel("top-1 accuracy")
    right.set_ylim(0, 1.02)
    right.legend(loc="lower right")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return fig


def _grid_cols(n: int) -> int:
    """Columns for ``n`` example images: a divisor of ``n`` among 6, 5, 4 when there is one."""
    for cols in (4, 5, 6):
        if n % cols == 0 and n // cols <= 4:
            return cols
    return min(n, 5) or 1


def example_grid(images: np.ndarray, titles: Sequence[str], cols: int | None = None,
                 width: float = MAX_WIDTH_IN) -> Any:
    """Images (N, H, W) grey uint8 or (N, H, W, 3) in a grid ``width`` wide, each titled (9 pt)."""
    n = len(images)
    cols = cols or _grid_cols(n)
    rows = max(1, math.ceil(n / cols))
    cell = width / cols
    fig, axes = plt.subplots(rows, cols, figsize=(width, (cell + 0.25) * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, title in zip(axes.ravel(), images, titles):
        grey = img.ndim == 2
        ax.imshow(img, cmap="gray" if grey else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
        ax.set_title(title, fontsize=MIN_FONT_PT, pad=2)
    return fig


def _wrapped(title: str) -> str:
    """A long class name broken after its last hyphen, so it fits above a narrow image."""
    head, sep, tail = title.rpartition("-")
    return f"{head}{sep}\n{tail}" if sep and len(title) > 10 else title


def example_panels(blocks: Mapping[str, tuple[np.ndarray, Sequence[str]]], cols: int | None = None,
                   width: float = MAX_WIDTH_IN) -> Any:
    """One block of titled example images per dataset, stacked, each block headed by its name.

    ``blocks[name] = (images (N, H, W) grey uint8 or (N, H, W, 3), titles)``. Without ``cols``,
    as many columns (4 to 8) as the longest title line leaves room for at 9 pt.
    """
    if cols is None:
        longest = max((len(line) for _, titles in blocks.values() for t in titles
                       for line in _wrapped(t).splitlines()), default=8)
        cols = int(np.clip(width * 72 // (0.6 * MIN_FONT_PT * longest + 8), 4, 8))
        cols = min(cols, max(len(imgs) for imgs, _ in blocks.values()))
    rows = {name: max(1, math.ceil(len(imgs) / cols)) for name, (imgs, _) in blocks.items()}
    cell = width / cols
    lines = {name: max(len(_wrapped(t).splitlines()) for t in titles) for name, (_, titles) in blocks.items()}
    heights = [(cell + 0.17 * lines[n]) * r + 0.3 for n, r in rows.items()]
    fig = plt.figure(figsize=(width, sum(heights)), layout="constrained")
    subfigs = np.atleast_1d(fig.subfigures(len(blocks), 1, height_ratios=heights))
    for sub, (name, (images, titles)) in zip(subfigs, blocks.items()):
        sub.suptitle(name, fontsize=MIN_FONT_PT + 1, fontweight="bold")
        axes = np.atleast_1d(sub.subplots(rows[name], cols, squeeze=False)).ravel()
        for ax in axes:
            ax.axis("off")
        for ax, img, title in zip(axes, images, titles):
            grey = img.ndim == 2
            ax.imshow(img, cmap="gray" if grey else None, vmin=0, vmax=255 if img.dtype == np.uint8 else 1)
            ax.set_title(_wrapped(title), fontsize=MIN_FONT_PT, pad=2, linespacing=0.95)
    return fig


def gradcam_grid(images: np.ndarray, heatmaps: Mapping[str, np.ndarray], true: Sequence[int],
                 predicted: Mapping[str, Sequence[int]], probability: Mapping[str, Sequence[float]],
                 class_names: Sequence[str], width: float = MAX_WIDTH_IN, cmap: str = "jet",
                 alpha: float = 0.45) -> Any:
    """Grad-CAM maps: one column per image (titled with its true class), a first row with the
    images, then one row per model (its heat map over the image, the predicted class and its
    probability under each map, red when wrong), and one colour bar for the map values in [0, 1].

    ``images``: (N, H, W, 3) floats in [0, 1]; ``heatmaps[model]``: (N, H, W) in [0, 1].
    """
    models = list(heatmaps)
    n = min(len(images), *(len(h) for h in heatmaps.values()))
    cell = (width - 1.4) / n
    fig, axes = plt.subplots(len(models) + 1, n, figsize=(width, (cell + 0.42) * (len(models) + 1)),
                             squeeze=False, layout="constrained")
    for j in range(n):
        axes[0, j].imshow(np.clip(images[j], 0, 1))
        axes[0, j].set_title(f"true: {class_names[int(true[j])]}", fontsize=MIN_FONT_PT)
        for i, model in enumerate(models, 1):
            ax = axes[i, j]
            ax.imshow(np.clip(images[j], 0, 1))
            ax.imshow(heatmaps[model][j], cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            pred = int(predicted[model][j])
            wrong = pred != int(true[j])
            ax.set_xlabel(f"{class_names[pred]} {float(probability[model][j]):.2f}", fontsize=MIN_FONT_PT,
                          labelpad=2, color="#b00020" if wrong else "black")
    axes[0, 0].set_ylabel("image", fontsize=MIN_FONT_PT)
    for i, model in enumerate(models, 1):
        axes[i, 0].set_ylabel(model, fontsize=MIN_FONT_PT)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    mappable = mpl.cm.ScalarMappable(norm=mpl.colors.Normalize(0, 1), cmap=cmap)
    bar = fig.colorbar(mappable, ax=axes, shrink=0.6, pad=0.02)
    bar.set_label("Grad-CAM weight (0 to 1)", fontsize=MIN_FONT_PT)
    bar.ax.tick_params(labelsize=MIN_FONT_PT)
    return fig
