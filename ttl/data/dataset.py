"""``ImageDataset``: decoded uint8 images, labels and class names (the contract with ``ttl.train``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ttl.errors import DataError

TASKS = ("binary", "multiclass", "multilabel")


class ImageDataset(Dataset):
    """Images as uint8 (N, C, H, W) with C in {1, 3}, all the same size, plus labels.

    ``images`` is a ``torch.Tensor`` (or a read-only NumPy memmap for sets too large to hold);
    ``labels`` is int64 (N,) for binary/multiclass and float32 (N, K) for multilabel.
    ``ids`` names the source of each image (a path relative to the root, an npz index, ...);
    ``meta`` holds the manifest's preprocessing, the load parameters and the cache key.
    """

    def __init__(self, images: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                 classes: Sequence[str], task: str, name: str, split: str = "train",
                 ids: Sequence[str] | None = None, meta: dict[str, Any] | None = None) -> None:
        if task not in TASKS:
            raise DataError(f"dataset {name!r}: task must be one of {TASKS}, got {task!r}")
        if isinstance(images, np.ndarray) and not isinstance(images, np.memmap):
            images = torch.from_numpy(np.ascontiguousarray(images))
        if images.dtype not in (torch.uint8, np.uint8):
            raise DataError(f"dataset {name!r}: images must be uint8, got {images.dtype}")
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"dataset {name!r}: images must be (N, C, H, W) with C in (1, 3), "
                            f"got shape {tuple(images.shape)}")
        labels = torch.as_tensor(np.asarray(labels))
        labels = labels.float() if task == "multilabel" else labels.long()
        n = images.shape[0]
        if labels.shape[0] != n:
            raise DataError(f"dataset {name!r}: {n} images but {labels.shape[0]} labels")
        k = len(classes)
        if task == "multilabel":
            if labels.ndim != 2 or labels.shape[1] != k:
                raise DataError(f"dataset {name!r}: multilabel labels must be (N, {k}), got {tuple(labels.shape)}")
        elif labels.ndim != 1 or (n and (int(labels.min()) < 0 or int(labels.max()) >= k)):
            raise DataError(f"dataset {name!r}: labels must be (N,) integers in [0, {k})")
        if ids is not None and len(ids) != n:
            raise DataError(f"dataset {name!r}: {n} images but {len(ids)} ids")
        self.images = images
        self.labels = labels
        self.classes = list(classes)
        self.task = task
        self.name = name
        self.split = split
        self.ids = list(ids) if ids is not None else None
        self.meta = dict(meta or {})

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.images[i]
        if not isinstance(img, torch.Tensor):
            img = torch.from_numpy(np.array(img))
        return img, self.labels[i]

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.images.shape[2]), int(self.images.shape[3])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> np.ndarray:
        """Images per class (multilabel: positives per label)."""
        if self.task == "multilabel":
            return self.labels.sum(0).numpy().astype(np.int64)
        return np.bincount(self.labels.numpy(), minlength=len(self.classes))

    def __repr__(self) -> str:
        return (f"ImageDataset({self.name!r}, split={self.split!r}, n={len(self)}, "
                f"images={tuple(self.images.shape)}, task={self.task!r}, classes={self.classes})")
