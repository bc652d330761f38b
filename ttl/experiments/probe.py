"""Feature-level transferability: a linear probe on the frozen, pooled features of every cut.

One forward pass of the full source network with hooks at every cut gives the pooled features of
all cuts at once; a standardised logistic regression per cut is fitted on the training split and
scored on the evaluation split. Comparing sources (fractal/ImageNet vs random init) per cut shows
which levels of pretrained features carry information about the target.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ttl.analysis.capture import capture
from ttl.metrics import compute_metrics
from ttl.models import build, feature_info, normalization
from ttl.train.batches import normalised_images
from ttl.train.loop import resolve_device


def dataset_tensor(dataset: Any, size: int | None, source: str, arch: str, device: torch.device,
                   batch_size: int = 256) -> torch.Tensor:
    """The whole dataset as normalised float images (N, 3, S, S) on ``device`` (no augmentation)."""
    return normalised_images(dataset, size, *normalization(source, arch), device=device, batch_size=batch_size)


def cut_features(model: torch.nn.Module, arch: str, images: torch.Tensor, cuts: list[str] | None = None,
                 batch_size: int = 64, device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Globally average-pooled features (N, C) of the full ``model`` at each cut."""
    infos = [i for i in feature_info(arch) if cuts is None or i.name in cuts]

    def pooled(relu: bool):  # the DenseNet full stack ends with a functional ReLU after norm5
        def reduce(t: torch.Tensor, start: int, total: int) -> torch.Tensor:
            t = torch.relu(t) if relu else t
            return t.float().mean(dim=(2, 3)).cpu()
        return reduce

    reducers = {f"backbone.{i.modules[-1]}": pooled(i.name == "denseblock4") for i in infos}
    feats = capture(model, images, reducers, batch_size=batch_size, device=device)
    return {i.name: feats[f"backbone.{i.modules[-1]}"].numpy() for i in infos}


def _probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, task: str, seed: int,
           c: float) -> np.ndarray:
    clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    if task == "multilabel":
        clf = OneVsRestClassifier(clf)
    model = make_pipeline(StandardScaler(), clf).fit(train_x, train_y)
    proba = model.predict_proba(test_x)
    return proba[:, 1] if task == "binary" else proba


def feature_probe(arch: str, source: str | os.PathLike, train: Any, test: Any, cuts: list[str] | None = None,
                  image_size: int | None = None, device: str = "auto", seed: int = 0, c: float = 1.0,
                  n_boot: int = 200, batch_size: int = 64) -> pd.DataFrame:
    """Linear-probe metrics of the frozen ``source`` features at every cut of ``arch``."""
    dev = resolve_device(device)
    model = build(arch, None, num_classes=2, source=source, seed=seed).to(dev).eval()
    src = str(source)
    x_train = dataset_tensor(train, image_size, src, arch, dev)
    x_test = dataset_tensor(test, image_size, src, arch, dev)
    f_train = cut_features(model, arch, x_train, cuts, batch_size, dev)
    f_test = cut_features(model, arch, x_test, cuts, batch_size, dev)
    y_train, y_test = np.asarray(train.labels), np.asarray(test.labels)
    rows = []
    infos = {i.name: i for i in feature_info(arch)}
    for cut in tqdm(list(f_train), desc=f"probe {src}", leave=False, disable=None):
        scores = _probe(f_train[cut], y_train, f_test[cut], test.task, seed, c)
        m = compute_metrics(y_test, scores, test.task, n_boot=n_boot, seed=seed, ci_for=("auroc",))
        rows.append({"arch": arch, "source": src, "cut": cut, "cut_index": infos[cut].index,
                     "stage": infos[cut].stage, "channels": infos[cut].channels, "dataset": test.name,
                     "auroc": m["auroc"]["value"], "auroc_low": m["auroc"]["ci_low"],
                     "auroc_high": m["auroc"]["ci_high"], "balanced_accuracy": m["balanced_accuracy"]["value"]})
    return pd.DataFrame(rows)


def probe_sources(arch: str, sources: list[str], train: Any, test: Any, **kwargs: Any) -> pd.DataFrame:
    """:func:`feature_probe` for several sources (e.g. ``["fractal", "scratch"]``), stacked."""
    return pd.concat([feature_probe(arch, s, train, test, **kwargs) for s in sources], ignore_index=True)
