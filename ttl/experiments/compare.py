"""Paired comparisons of trained runs (DeLong), their test scores per seed for
:mod:`ttl.experiments.verdicts`, and committed GPU benchmark figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttl.errors import DataError
from ttl.provenance import read_json
from ttl.stats import delong_test, format_p
from ttl.train import TrainConfig, predict
from ttl.train.loop import predictions_path
from ttl.train.runs import load_run


def _run_predictions(run: str | os.PathLike, test: Any, device: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of a finished run folder's model on ``test``: the predictions the run
    folder keeps for that test set, else its rebuilt model scored now."""
    cached = predictions_path(run, test)
    if cached.exists():
        with np.load(cached) as f:
            return f["labels"], f["scores"]
    model, params = load_run(run)
    cfg = TrainConfig(device=device, image_size=params["train"].get("image_size"))
    labels, scores, _ = predict(model, test, cfg)
    return labels, scores


def delong_runs(run_a: str | os.PathLike, run_b: str | os.PathLike, test: Any, device: str = "cpu",
                label_a: str = "a", label_b: str = "b") -> dict[str, Any]:
    """DeLong's test of two finished runs' AUROCs on the same test images (binary tasks).

    ``p_value`` is a float that stays positive up to z of about 38; ``log10_p`` is finite beyond;
    ``p_text`` is the p-value as text (never "0.0"; see :func:`ttl.stats.format_p`).
    """
    labels, score_a = _run_predictions(run_a, test, device)
    _, score_b = _run_predictions(run_b, test, device)
    res = delong_test(labels, score_a, score_b)
    return {"a": label_a, "b": label_b, "auc_a": res.auc_a, "auc_b": res.auc_b, "diff": res.diff,
            "z": res.z, "p_value": res.p_value, "log10_p": res.log10_p,
            "p_text": format_p(res.p_value, res.log10_p), "n": int(len(labels))}


def run_scores(runs: pd.DataFrame, test: Any, device: str = "cpu", label_col: str = "label",
               seed_col: str = "seed", run_col: str = "run_dir"
               ) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """Test labels and, per label, its runs' test scores in ascending seed order (every label must
    have the same seeds, so seed j pairs across labels).

    ``runs``: one row per (label, seed) with the run folder, as
    :func:`ttl.experiments.run_strategies` returns. The result feeds
    :func:`ttl.experiments.verdicts.paired_comparisons` and ``summarise_runs``.
    """
    seed_sets = {label: sorted(g[seed_col]) for label, g in runs.groupby(label_col, sort=False)}
    if len({tuple(v) for v in seed_sets.values()}) > 1:
        raise DataError(f"run_scores: labels were trained with different seeds {seed_sets}; "
                        "keep the seeds every label has, so seeds pair by position")
    labels: np.ndarray | None = None
    out: dict[str, list[np.ndarray]] = {}
    for label, group in runs.groupby(label_col, sort=False):
        out[label] = []
        for run in group.sort_values(seed_col)[run_col]:
            y, scores = _run_predictions(run, test, device)
            if labels is not None and not np.array_equal(y, labels):
                raise DataError(f"{run}: its test labels differ from the other runs'; "
                                "score every run on the same test set")
            labels = y
            out[label].append(scores)
    if labels is None:
        raise DataError("run_scores: the runs frame is empty")
    return labels, out


def gpu_inference_table(path: str | os.PathLike, arch: str) -> pd.DataFrame | None:
    """The rows of a committed ``ttl bench infer`` JSON for ``arch`` (None when the file is absent),
    with the GPU's name and the commit it was measured at."""
    path = Path(path)
    if not path.exists():
        return None
    doc = read_json(path)
    rows = [r for r in doc["rows"] if r["arch"] == arch]
    if not rows:
        return None
    hw = doc["provenance"]["hardware"]
    return pd.DataFrame(rows).assign(gpu=hw.get("gpu"), torch=doc["provenance"]["packages"].get("torch"))
