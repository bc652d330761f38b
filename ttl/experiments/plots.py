"""Figures of the experiments: per-cut curves and the accuracy-versus-cost benchmark."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _axes(ax: Any, figsize: tuple[float, float] = (7, 3.6)) -> Any:
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
    ax.set_xticks(order["cut_index"], order["cut"], rotation=60, ha="right", fontsize=8)
    ax.set_xlabel("cut point (deeper →)")
    ax.set_ylabel(value.replace("_", " ").upper() if value == "auroc" else value.replace("_", " "))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_accuracy_vs_cost(summary: pd.DataFrame, cost: str = "params", value: str = "test_auroc",
                          ax: Any = None, title: str | None = None) -> Any:
    """Mean ``value`` with its CI over seeds against a cost column (log scale), one point a strategy."""
    ax = _axes(ax, (6.5, 4))
    mean, low, high = summary[f"{value}_mean"], summary[f"{value}_ci_low"], summary[f"{value}_ci_high"]
    yerr = np.vstack([(mean - low).fillna(0).clip(lower=0), (high - mean).fillna(0).clip(lower=0)])
    ax.errorbar(summary[cost], mean, yerr=yerr, fmt="o", capsize=3)
    for _, row in summary.iterrows():
        ax.annotate(row["label"], (row[cost], row[f"{value}_mean"]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel({"params": "parameters", "flops": "FLOPs per image", "latency_ms": "latency (ms)"}.get(cost, cost))
    ax.set_ylabel(f"{value.replace('_', ' ')} (mean, 95% CI over seeds)")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    return ax
