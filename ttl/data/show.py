"""Look at a dataset: a class-count table and a grid of example images (matplotlib, notebook-ready)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .dataset import ImageDataset


def summary(datasets: ImageDataset | Iterable[ImageDataset]) -> Any:
    """A pandas DataFrame with one row per (split, class): ``count`` and ``fraction``.

    For multilabel sets ``count`` is the number of positives of each label and ``fraction`` its
    prevalence. Pass one dataset or several (e.g. the three splits).
    """
    import pandas as pd

    if isinstance(datasets, ImageDataset):
        datasets = [datasets]
    rows = []
    for ds in datasets:
        counts = ds.class_counts()
        n = len(ds)
        for name, c in zip(ds.classes, counts):
            rows.append({"dataset": ds.name, "split": ds.split, "class": name, "count": int(c),
                         "fraction": round(float(c) / n, 4) if n else 0.0, "images": n})
    return pd.DataFrame(rows, columns=["dataset", "split", "class", "count", "fraction", "images"])


def _pick(ds: ImageDataset, n: int, seed: int) -> list[int]:
    """Up to ``n`` indices, spread evenly over the classes (multilabel: at random)."""
    rng = np.random.default_rng(seed)
    if ds.task == "multilabel" or len(ds) <= n:
        return sorted(rng.choice(len(ds), size=min(n, len(ds)), replace=False).tolist())
    labels = ds.labels.numpy()
    pools = [rng.permutation(np.flatnonzero(labels == k)).tolist() for k in range(len(ds.classes))]
    out: list[int] = []
    while len(out) < n and any(pools):
        for pool in pools:
            if pool and len(out) < n:
                out.append(pool.pop())
    return out


def example_grid(dataset: ImageDataset, n: int = 16, seed: int = 0, cols: int | None = None,
                 title: str | None = None) -> Any:
    """A matplotlib Figure with ``n`` example images (spread over classes), each titled by label."""
    from matplotlib.figure import Figure  # no pyplot: works headless (Agg) and shows inline in notebooks

    idx = _pick(dataset, n, seed)
    cols = cols or min(len(idx), 8) or 1
    rows = max(1, -(-len(idx) // cols))
    fig = Figure(figsize=(1.6 * cols, 1.75 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, i in zip(axes, idx):
        img, label = dataset[i]
        arr = img.numpy()
        if arr.shape[0] == 1:
            ax.imshow(arr[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(arr.transpose(1, 2, 0), interpolation="nearest")
        if dataset.task == "multilabel":
            names = [c for c, v in zip(dataset.classes, label.tolist()) if v > 0.5]
            text = ", ".join(names) if names else "none"
        else:
            text = dataset.classes[int(label)]
        ax.set_title(text, fontsize=7)
    fig.suptitle(title or f"{dataset.name} ({dataset.split}, {len(dataset)} images)", fontsize=9)
    return fig
