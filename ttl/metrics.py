"""Classification metrics with scikit-learn: AUROC, AUPRC, balanced accuracy, F1, bootstrap CIs.

Tasks: ``binary`` (scores = probability of the positive class), ``multiclass`` (one-vs-rest macro
AUROC over softmax probabilities), ``multilabel`` (macro over labels of sigmoid probabilities;
labels with a single class in ``y_true`` are skipped).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn import metrics as skm

TASKS = ("binary", "multiclass", "multilabel")


def scores_from_logits(logits: torch.Tensor | np.ndarray, task: str) -> np.ndarray:
    """Probabilities from model outputs: positive-class (binary), softmax (multiclass), sigmoid."""
    t = torch.as_tensor(logits).float()
    if task == "multilabel":
        return torch.sigmoid(t).numpy()
    probs = torch.softmax(t, dim=1).numpy()
    return probs[:, 1] if task == "binary" and probs.shape[1] == 2 else probs


def _predictions(y_score: np.ndarray, task: str) -> np.ndarray:
    if task == "multiclass":
        return y_score.argmax(axis=1)
    return (y_score >= 0.5).astype(int)


def auroc(y_true: np.ndarray, y_score: np.ndarray, task: str = "binary") -> float:
    if task == "binary":
        return float(skm.roc_auc_score(y_true, y_score))
    if task == "multiclass":
        return float(skm.roc_auc_score(y_true, y_score, multi_class="ovr", average="macro",
                                       labels=np.arange(y_score.shape[1])))
    keep = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
    if not keep:
        raise ValueError("no label has both classes present")
    return float(skm.roc_auc_score(y_true[:, keep], y_score[:, keep], average="macro"))


def auprc(y_true: np.ndarray, y_score: np.ndarray, task: str = "binary") -> float:
    if task == "multiclass":
        onehot = np.eye(y_score.shape[1])[y_true]
        return float(skm.average_precision_score(onehot, y_score, average="macro"))
    return float(skm.average_precision_score(y_true, y_score, average="macro"))


def balanced_accuracy(y_true: np.ndarray, y_score: np.ndarray, task: str = "binary") -> float:
    pred = _predictions(y_score, task)
    if task == "multilabel":
        return float(np.mean([skm.balanced_accuracy_score(y_true[:, j], pred[:, j])
                              for j in range(y_true.shape[1])]))
    return float(skm.balanced_accuracy_score(y_true, pred))


def f1(y_true: np.ndarray, y_score: np.ndarray, task: str = "binary") -> float:
    pred = _predictions(y_score, task)
    average = "binary" if task == "binary" else "macro"
    return float(skm.f1_score(y_true, pred, average=average, zero_division=0))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, str], float]] = {
    "auroc": auroc, "auprc": auprc, "balanced_accuracy": balanced_accuracy, "f1": f1,
}


def compute_metrics(y_true: np.ndarray, y_score: np.ndarray, task: str, n_boot: int = 1000,
                    seed: int = 0, alpha: float = 0.05,
                    ci_for: tuple[str, ...] | None = None) -> dict[str, dict[str, float | None]]:
    """Every metric with a percentile-bootstrap (1 - alpha) CI: ``{name: {value, ci_low, ci_high}}``.

    ``n_boot=0`` skips the bootstrap (the CI fields are then ``None``); ``ci_for`` limits the
    bootstrap to some metrics (default: all).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    out: dict[str, dict[str, float | None]] = {}
    for name, fn in METRICS.items():
        def metric(yt: np.ndarray, ys: np.ndarray, fn: Callable = fn) -> float:
            return fn(yt, ys, task)
        try:
            value = metric(y_true, y_score)
        except ValueError:  # e.g. a single class present
            out[name] = {"value": None, "ci_low": None, "ci_high": None}
            continue
        low = high = None
        if n_boot > 0 and (ci_for is None or name in ci_for):
            from ttl.stats import bootstrap_ci

            _, low, high = bootstrap_ci(y_true, y_score, metric, n_boot=n_boot, alpha=alpha, seed=seed,
                                        stratified=task != "multilabel")
        out[name] = {"value": value, "ci_low": low, "ci_high": high}
    return out
