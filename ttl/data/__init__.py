"""The data layer: manifests, synthetic phantoms, MedMNIST npz files, folder/CSV datasets.

``load(name_or_manifest, root=None, split="train", **overrides) -> ImageDataset`` returns decoded
uint8 images (N, C, H, W) with labels, class names, task and name (see ARCHITECTURE.md);
``list_datasets()`` names the shipped manifests; ``load_manifest(name_or_path)`` validates one;
``summary(dataset)`` counts images per class; ``ttl.data.show.example_grid`` draws examples.
Synthetic phantoms (:mod:`ttl.data.phantoms`) are generated, not real patients' images.
"""

from __future__ import annotations

import importlib
from typing import Any

# imported on first use, so reading manifests and the kind registry (the CLI's parsers) needs no torch
_LAZY = {"ImageDataset": ".dataset", "load": ".loader", "Manifest": ".manifest", "list_datasets": ".manifest",
         "load_manifest": ".manifest", "summary": ".show"}

__all__ = ["ImageDataset", "Manifest", "list_datasets", "load", "load_manifest", "summary"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'ttl.data' has no attribute {name!r}")
