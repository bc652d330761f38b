"""A tiny made-up image set for tests: class 1 has a bright blob, class 0 does not."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class TinyDataset(torch.utils.data.Dataset):
    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str] = field(default_factory=lambda: ["absent", "present"])
    task: str = "binary"
    name: str = "tiny"

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def tiny_dataset(n: int = 64, size: int = 32, seed: int = 0, channels: int = 1) -> TinyDataset:
    """Noise images; positives carry a bright square at a random place."""
    rng = np.random.default_rng(seed)
    x = rng.normal(100, 20, size=(n, channels, size, size))
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, size - size // 3, size=2)
        x[i, :, r:r + size // 3, c:c + size // 3] += 90
    images = torch.from_numpy(np.clip(x, 0, 255).astype(np.uint8))
    return TinyDataset(images, torch.from_numpy(y).long())
