"""Batches of uint8 images prepared on the device: float, grey->RGB, resize, augment, normalise.

Small datasets (the uint8 array fits in ``max_device_bytes``) are moved to the device once and
indexed there, so an epoch does no host work and no host-device copies. Larger ones (e.g. a NumPy
memmap of a decoded cache) are streamed through a DataLoader with pinned memory and workers.
Augmentation (random resized crop and/or flips, as the dataset's manifest allows) is one batched
``grid_sample``.
Randomness comes from generators seeded by ``(seed, epoch)``: an epoch is the same whether a run
was interrupted or not.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ttl.seeding import derive_seed


AUGMENTATIONS = ("random-resized-crop", "hflip", "vflip", "rot180")


@dataclass(frozen=True)
class Preprocess:
    """How batches are prepared (same on CPU and GPU). ``augment`` names the random transforms
    applied to training batches: any of ``random-resized-crop``, ``hflip``, ``vflip`` and ``rot180``
    (a half turn: both flips at once, which keeps an image's handedness)."""

    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: tuple[str, ...] = ()
    scale: tuple[float, float] = (0.7, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    channels_last: bool = False
    to_rgb: bool = True  # repeat one-channel images to three (false: a one-channel network)

    def __post_init__(self) -> None:
        unknown = set(self.augment) - set(AUGMENTATIONS)
        if unknown:
            raise ValueError(f"unknown augmentation(s) {sorted(unknown)}; known: {', '.join(AUGMENTATIONS)}")


def _as_tensor(images: object) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images
    return torch.from_numpy(np.ascontiguousarray(images))


def random_augment(x: torch.Tensor, size: int, augment: tuple[str, ...], scale: tuple[float, float],
                   ratio: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Per-sample random resized crop and/or flips of a float batch, as one ``grid_sample``."""
    n = x.shape[0]
    dev = x.device
    u = torch.rand(n, 7, generator=generator, device=generator.device).to(dev)
    sw = sh = torch.ones(n, device=dev)
    tx = ty = torch.zeros(n, device=dev)
    if "random-resized-crop" in augment:
        area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
        log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
        aspect = torch.exp(log_r)
        sw = torch.sqrt(area * aspect).clamp(max=1.0)  # crop width / image width
        sh = torch.sqrt(area / aspect).clamp(max=1.0)
        tx = (2 * u[:, 2] - 1) * (1 - sw)
        ty = (2 * u[:, 3] - 1) * (1 - sh)
    if "hflip" in augment:
        sw = torch.where(u[:, 4] < 0.5, -sw, sw)
    if "vflip" in augment:
        sh = torch.where(u[:, 5] < 0.5, -sh, sh)
    if "rot180" in augment:
        half_turn = u[:, 6] < 0.5
        sw, sh = torch.where(half_turn, -sw, sw), torch.where(half_turn, -sh, sh)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = sw, sh, tx, ty
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


@functools.lru_cache(maxsize=64)
def _normaliser(mean: tuple[float, ...], std: tuple[float, ...], device: torch.device,
                dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as (1, C, 1, 1) tensors on ``device``, made once: building them per batch is a
    blocking host-to-device copy, which would stall the GPU at every step."""
    def make(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=dtype).view(1, -1, 1, 1).to(device)
    return make(mean), make(std)


def prepare_batch(x: torch.Tensor, prep: Preprocess, generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) on the device -> normalised float (N, 3, S, S) (N, 1, S, S for one-channel
    images without ``prep.to_rgb``)."""
    x = x.float().div_(255.0)
    # One resampling rule for training and evaluation: every batch is first brought to the model's
    # size by the same antialiased resize (the only step that shrinks images, so the only one that
    # can alias); training then augments at that size. The crop covers at most the whole image, so
    # its bilinear grid_sample only magnifies (never decimates) and needs no antialiasing; with an
    # identity draw a training image equals its evaluation image exactly. (Resampling the full
    # image straight to the crop with grid_sample, as before, skipped the antialiasing in training
    # only.) Resample while grey images still have one channel (a third of the work), then expand.
    if x.shape[-1] != prep.image_size or x.shape[-2] != prep.image_size:
        x = F.interpolate(x, size=(prep.image_size, prep.image_size), mode="bilinear",
                          align_corners=False, antialias=True)
    if prep.augment and generator is not None:
        x = random_augment(x, prep.image_size, prep.augment, prep.scale, prep.ratio, generator)
    if x.shape[1] == 1 and prep.to_rgb:
        x = x.expand(-1, 3, -1, -1)
    mean, std = _normaliser(tuple(prep.mean), tuple(prep.std), x.device, x.dtype)
    x = (x - mean) / std
    if prep.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def normalised_images(images: object, size: int | None, mean: tuple[float, ...], std: tuple[float, ...],
                      device: torch.device | str = "cpu", batch_size: int = 256) -> torch.Tensor:
    """A whole uint8 image set (N, C, H, W: tensor, array or a dataset's ``images``) as normalised
    float images (N, 3, S, S) on ``device``, without augmentation, converted batch by batch."""
    x = _as_tensor(getattr(images, "images", images))
    prep = Preprocess(size or int(x.shape[-1]), tuple(mean), tuple(std))
    return torch.cat([prepare_batch(x[i:i + batch_size].to(device), prep) for i in range(0, len(x), batch_size)])


class DeviceBatches:
    """Iterate ``(x, y)`` batches of a uint8 dataset, prepared on ``device``."""

    def __init__(self, dataset: object, batch_size: int, device: torch.device, prep: Preprocess,
                 shuffle: bool, seed: int = 0, drop_last: bool = False,
                 max_device_bytes: int = 20 * 2**30, num_workers: int = 4) -> None:
        self.images = dataset.images  # type: ignore[attr-defined]
        labels = dataset.labels  # type: ignore[attr-defined]
        # (a tensor may already be on the GPU, e.g. rendered fractals: NumPy cannot read it there)
        self.labels = labels if torch.is_tensor(labels) else torch.as_tensor(np.asarray(labels))
        self.batch_size = batch_size
        self.device = torch.device(device)
        self.prep = prep
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_workers = num_workers
        nbytes = int(np.prod(self.images.shape))
        self.resident = nbytes <= max_device_bytes
        if self.resident:
            self.images = _as_tensor(self.images).to(self.device)
            self.labels = self.labels.to(self.device)

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self, epoch: int) -> torch.Tensor:
        n = len(self.labels)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
        return torch.randperm(n, generator=g)

    def epoch(self, epoch: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of one epoch (deterministic given ``seed`` and ``epoch``)."""
        order = self._order(epoch)
        gen = None
        if self.prep.augment:
            gen = torch.Generator(device=self.device if self.device.type == "cuda" else "cpu")
            gen.manual_seed(derive_seed(self.seed, "augment", epoch))
        chunks = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks = chunks[:-1]
        if self.resident:
            if self.device.type == "cuda":  # an asynchronous copy: no host sync at the epoch start
                order_dev = order.pin_memory().to(self.device, non_blocking=True)
            else:
                order_dev = order.to(self.device)
            for i in range(0, len(chunks) * self.batch_size, self.batch_size):
                idx = order_dev[i:i + self.batch_size]
                yield prepare_batch(self.images[idx], self.prep, gen), self.labels[idx]
            return
        yield from self._streamed(chunks, gen)

    def _streamed(self, chunks: list[torch.Tensor], gen: torch.Generator | None
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        images, labels = self.images, self.labels

        class _Chunks(torch.utils.data.Dataset):
            def __len__(self) -> int:
                return len(chunks)

            def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
                idx = np.sort(chunks[i].numpy())
                return _as_tensor(images[idx]), labels[idx]

        loader = torch.utils.data.DataLoader(_Chunks(), batch_size=None, num_workers=self.num_workers,
                                             pin_memory=self.device.type == "cuda")
        for x, y in loader:
            x = x.to(self.device, non_blocking=True)
            yield prepare_batch(x, self.prep, gen), y.to(self.device, non_blocking=True)
