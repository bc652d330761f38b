"""Paired comparisons of trained runs (DeLong) and committed GPU benchmark figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ttl.provenance import read_json
from ttl.stats import delong_test
from ttl.train import TrainConfig, predict
from ttl.train.runs import load_run


def delong_runs(run_a: str | os.PathLike, run_b: str | os.PathLike, test: Any, device: str = "cpu",
                label_a: str = "a", label_b: str = "b") -> dict[str, Any]:
    """DeLong's test of two finished runs' AUROCs on the same test images (binary tasks)."""
    scores = {}
    labels = None
    for name, run in ((label_a, run_a), (label_b, run_b)):
        model, params = load_run(run)
        cfg = TrainConfig(device=device, image_size=params["train"].get("image_size"))
        labels, scores[name], _ = predict(model, test, cfg)
    res = delong_test(labels, scores[label_a], scores[label_b])
    return {"a": label_a, "b": label_b, "auc_a": res.auc_a, "auc_b": res.auc_b, "diff": res.diff,
            "z": res.z, "p_value": res.p_value, "n": int(len(labels))}


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
