"""The data layer: manifests, synthetic phantoms, MedMNIST npz files, folder/CSV datasets.

``load(name_or_manifest, root=None, split="train", **overrides) -> ImageDataset`` returns decoded
uint8 images (N, C, H, W) with labels, class names, task and name (see ARCHITECTURE.md);
``list_datasets()`` names the shipped manifests; ``load_manifest(name_or_path)`` validates one;
``summary(dataset)`` counts images per class; ``ttl.data.show.example_grid`` draws examples.
Synthetic phantoms (:mod:`ttl.data.phantoms`) are generated, not real patients' images.
"""

from __future__ import annotations

from .dataset import ImageDataset
from .loader import load
from .manifest import Manifest, list_datasets, load_manifest
from .show import summary

__all__ = ["ImageDataset", "Manifest", "list_datasets", "load", "load_manifest", "summary"]
