"""Per-cut curves: linear probes and finetuned TTL side by side, and the best cut of each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ttl.models import feature_info


def transferability_curves(probe: pd.DataFrame, sweep: pd.DataFrame | None = None) -> pd.DataFrame:
    """One long table (dataset, method, cut, cut_index, auroc) from probe and TTL-sweep tables."""
    parts = [probe.assign(method="linear probe, " + probe["source"].astype(str) + " features")
             [["dataset", "method", "cut", "cut_index", "auroc", "auroc_low", "auroc_high"]]]
    if sweep is not None and len(sweep):
        ft = sweep.rename(columns={"test_auroc": "auroc", "test_auroc_low": "auroc_low",
                                   "test_auroc_high": "auroc_high"})
        parts.append(ft.assign(method="TTL finetuned")[["dataset", "method", "cut", "cut_index", "auroc",
                                                        "auroc_low", "auroc_high", "seed"]])
    return pd.concat(parts, ignore_index=True)


def best_cuts(curves: pd.DataFrame, value: str = "auroc") -> pd.DataFrame:
    """The cut with the highest mean ``value`` for every (dataset, method), with that value."""
    mean = curves.groupby(["dataset", "method", "cut_index", "cut"], as_index=False)[value].mean()
    best = mean.loc[mean.groupby(["dataset", "method"])[value].idxmax()]
    return best.rename(columns={"cut": "best_cut", value: f"best_{value}"}).reset_index(drop=True)


def block_layers(arch: str, prefix: str = "backbone.") -> dict[str, str]:
    """Cut name -> the module whose output is that cut (for activation capture, SVCCA, Grad-CAM)."""
    return {i.name: prefix + i.modules[-1] for i in feature_info(arch)}


def balanced_indices(labels: np.ndarray | list[int], n: int, seed: int = 0) -> list[int]:
    """``n`` indices spread evenly over the classes of single-label ``labels`` (seeded)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = [rng.permutation(np.flatnonzero(labels == c)).tolist() for c in classes]
    out: list[int] = []
    while len(out) < min(n, len(labels)):
        for group in per:
            if group and len(out) < n:
                out.append(group.pop(0))
    return out
