"""What a network is fed, and the checks made before any training starts.

A dataset manifest's ``preprocessing`` decides the input pipeline of the runs trained on it:

- ``normalisation``: ``source`` (default; the statistics the pretrained source was trained with,
  :func:`ttl.models.sources.normalization`), ``imagenet`` (ImageNet's mean/std whatever the source)
  or ``none`` (pixels only scaled to [0, 1]).
- ``to_rgb`` (default true): grey images are repeated to three channels on the device. With
  ``to_rgb: false`` grey images reach the network as one channel, which only a network whose first
  convolution takes one channel accepts; anything else is a :class:`~ttl.errors.DataError` before
  training.

:func:`fit <ttl.train.fit>` stores the resolved choice on the model as its
:class:`~ttl.models.data_config.DataConfig` (``model.data_config``: statistics, training image size,
channels) and in the run's provenance (``params["input"]``, not part of the run key: the manifest is
already hashed into the data fingerprint), so evaluation and :func:`ttl.train.runs.load_run` feed a
trained network exactly as in training whatever manifest the evaluation data come with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from ttl.errors import DataError
from ttl.models.data_config import NORMALISATIONS, DataConfig, source_data_config
from ttl.models.sources import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["NORMALISATIONS", "DataConfig", "check_fit_inputs", "fed_channels", "input_pipeline",
           "model_statistics", "resolve_data_config", "source_feed"]


def manifest_preprocessing(dataset: Any) -> Mapping[str, Any]:
    """The ``preprocessing`` block of the dataset's manifest (``{}`` for a dataset without one)."""
    return (getattr(dataset, "meta", None) or {}).get("preprocessing") or {}


def _where(dataset: Any) -> str:
    meta = getattr(dataset, "meta", None) or {}
    return f"{meta.get('manifest') or getattr(dataset, 'name', 'the dataset')}"


def first_conv_channels(model: nn.Module) -> int | None:
    """Input channels of the model's first convolution (None when it has none)."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return None if conv is None else int(conv.in_channels)


def fed_channels(model: nn.Module, dataset: Any, to_rgb: bool | None = None) -> int:
    """How many channels the network gets from ``dataset`` (``to_rgb`` None: the manifest's, default
    true); a DataError when the network's first convolution takes another number."""
    stored = int(dataset.images.shape[1])
    if to_rgb is None:
        to_rgb = bool(manifest_preprocessing(dataset).get("to_rgb", True))
    fed = 3 if stored == 1 and to_rgb else stored
    wants = first_conv_channels(model)
    if wants is not None and fed != wants:
        how = "repeated to 3 (to_rgb: true)" if stored == 1 and to_rgb else "as stored" + (
            " (to_rgb: false)" if stored == 1 else "")
        raise DataError(f"{_where(dataset)}: images have {stored} channel(s), fed {how}, but the network's first "
                        f"convolution takes {wants}: set preprocessing.to_rgb to "
                        f"{'true' if wants == 3 and stored == 1 else 'false'} or adapt the network's first convolution")
    return fed


def resolve_data_config(model: nn.Module, dataset: Any, image_size: int | None = None) -> DataConfig:
    """The data config for training ``model`` on ``dataset`` at ``image_size`` (None: the data's
    own): the manifest's normalisation and ``to_rgb``, the channels the network takes."""
    prep = manifest_preprocessing(dataset)
    how = prep.get("normalisation") or "source"
    if how == "source":
        base = source_feed(model)
        mean, std = base.mean, base.std
    elif how == "imagenet":
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    elif how == "none":
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    else:
        raise DataError(f"{_where(dataset)}: preprocessing.normalisation {how!r} is not one of {list(NORMALISATIONS)}")
    to_rgb = bool(prep.get("to_rgb", True))
    size = image_size or int(dataset.images.shape[-1])
    return DataConfig(tuple(float(v) for v in mean), tuple(float(v) for v in std), input_size=int(size),
                      channels=fed_channels(model, dataset, to_rgb), to_rgb=to_rgb, normalisation=how)


def source_feed(model: nn.Module) -> DataConfig:
    """The source's config (``model.pretrained_cfg``): its statistics, grey repeated to RGB, any
    size. Every run recorded before the manifest's choice was honoured was fed this way."""
    cfg = getattr(model, "pretrained_cfg", None)
    return cfg if isinstance(cfg, DataConfig) else source_data_config(getattr(model, "source", "imagenet"),
                                                                      getattr(model, "arch", None))


def model_data_config(model: nn.Module) -> DataConfig:
    """What the model is fed: its own config (set by training or ``load_run``), else its source's."""
    cfg = getattr(model, "data_config", None)
    return cfg if isinstance(cfg, DataConfig) else source_feed(model)


def model_statistics(model: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the model is fed with (:func:`model_data_config`)."""
    cfg = model_data_config(model)
    return cfg.mean, cfg.std


def input_pipeline(model: nn.Module, dataset: Any) -> tuple[tuple[float, ...], tuple[float, ...], bool]:
    """(mean, std, to_rgb) for feeding ``dataset`` to ``model``: the model's own config (set by
    training or ``load_run``) when it has one, else the one the dataset's manifest resolves to. A
    network fed one channel gets the average of the three channels' statistics."""
    own = getattr(model, "data_config", None)
    spec = own if isinstance(own, DataConfig) else resolve_data_config(model, dataset)
    mean, std = spec.mean, spec.std
    if fed_channels(model, dataset, spec.to_rgb) == 1:
        mean, std = (float(np.mean(mean)),), (float(np.mean(std)),)
    return mean, std, spec.to_rgb


def check_same_pipeline(train: Any, other: Any, split: str) -> None:
    """A DataError when ``other`` (val/test) asks for another normalisation or to_rgb than ``train``."""
    a, b = manifest_preprocessing(train), manifest_preprocessing(other)
    for key, default in (("normalisation", "source"), ("to_rgb", True)):
        if a.get(key, default) != b.get(key, default):
            raise DataError(f"the {split} split ({_where(other)}) has preprocessing.{key} {b.get(key, default)!r} "
                            f"but the training split ({_where(train)}) {a.get(key, default)!r}: one run needs one")


def check_classes(dataset: Any, split: str) -> None:
    """A DataError naming the split when it holds fewer than two classes (no AUROC, no model selection)."""
    labels = np.asarray(dataset.labels)
    classes = list(getattr(dataset, "classes", []))
    name = getattr(dataset, "name", "the dataset")
    if len(labels) == 0:
        raise DataError(f"the {split} split of {name} is empty")
    if getattr(dataset, "task", "binary") == "multilabel":
        if not ((labels > 0.5).any(0) & (labels <= 0.5).any(0)).any():
            raise DataError(f"the {split} split of {name} has no label with both positive and negative images: "
                            "no AUROC can be computed on it")
        return
    present = np.unique(labels)
    if len(present) < 2:
        only = classes[int(present[0])] if int(present[0]) < len(classes) else int(present[0])
        raise DataError(f"the {split} split of {name} holds only class {only!r} ({len(labels)} images): AUROC "
                        f"needs at least two classes; give the split images of another class "
                        f"(classes: {', '.join(map(str, classes))})")


def check_fit_inputs(model: nn.Module, train: Any, val: Any, test: Any = None) -> None:
    """Every check :func:`ttl.train.fit` makes before its first epoch: classes per split, the same
    input pipeline across splits, and channels the network accepts."""
    splits = {"train": train, "val": val, **({"test": test} if test is not None else {})}
    for split, dataset in splits.items():
        check_classes(dataset, split)
        if split != "train":
            check_same_pipeline(train, dataset, split)
        fed_channels(model, dataset)
