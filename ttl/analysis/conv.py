"""Conv feature maps (N, C, H, W) to (samples, channels) matrices, as in the SVCCA paper.

Two ways (Raghu et al. 2017, section on convolutional layers):

- ``mode="pool"``: average over the spatial positions; one sample per image, one feature per
  channel. Cheap, but needs many images for many channels.
- ``mode="positions"``: every (image, position) pair is a sample and every channel a neuron;
  ``max_samples`` of them are drawn uniformly without replacement (seeded), kept in
  (image, row, column) order. Two maps are compared position by position, so they must share
  the spatial size: :func:`flatten_pair` first average-pools the larger map to the smaller size.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ttl.analysis._arrays import to_numpy
from ttl.errors import ConfigError

Mode = Literal["pool", "positions"]
MODES = ("pool", "positions")
DEFAULT_MAX_SAMPLES = 5000


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {MODES}, got {mode!r}")
    return mode


def position_indices(n: int, h: int, w: int, max_samples: int | None, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (image, row, column) indices used by ``mode="positions"``, sorted.

    All ``n * h * w`` positions when ``max_samples`` is None or not smaller; otherwise
    ``max_samples`` drawn without replacement with ``numpy.random.default_rng(seed)``.
    """
    total = n * h * w
    if max_samples is not None and max_samples < 1:
        raise ConfigError(f"max_samples must be >= 1 or None, got {max_samples}")
    if max_samples is None or max_samples >= total:
        flat = np.arange(total)
    else:
        flat = np.sort(np.random.default_rng(seed).choice(total, size=max_samples, replace=False))
    img, row, col = np.unravel_index(flat, (n, h, w))
    return img, row, col


def flatten_conv(x: Any, mode: Mode = "pool", max_samples: int | None = DEFAULT_MAX_SAMPLES,
                 seed: int = 0) -> np.ndarray:
    """(N, C, H, W) maps (numpy or torch) to a float64 (samples, C) matrix.

    ``mode="pool"``: spatial mean, (N, C); ``max_samples`` is ignored.
    ``mode="positions"``: (image, position) pairs as samples, at most ``max_samples`` of them,
    drawn with ``seed`` (same shape and seed give the same positions). 2-D input is returned
    as float64 unchanged.
    """
    check_mode(mode)
    arr = to_numpy(x, "x")
    if arr.ndim == 2:
        return arr.astype(np.float64)
    if arr.ndim != 4:
        raise ConfigError(f"flatten_conv: expected (N, C, H, W) or (N, F), got {tuple(arr.shape)}")
    if mode == "pool":
        return arr.mean(axis=(2, 3), dtype=np.float64)
    n, _, h, w = arr.shape
    img, row, col = position_indices(n, h, w, max_samples, seed)
    return arr[img, :, row, col].astype(np.float64)


def pool_to(x: Any, size: tuple[int, int]) -> Any:
    """Adaptive average pooling of (N, C, H, W) maps to ``size``; a torch tensor comes back for
    torch input, numpy otherwise. Maps already of that size are returned as they are."""
    import torch
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if isinstance(x, torch.Tensor):
        return F.adaptive_avg_pool2d(x, size)
    return F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(x)), size).numpy()


def common_size(*shapes: tuple[int, ...]) -> tuple[int, int]:
    """The smallest spatial size (H, W) among 4-D shapes."""
    return min(int(s[-2]) for s in shapes), min(int(s[-1]) for s in shapes)


def flatten_pair(a: Any, b: Any, mode: Mode = "pool",
                 max_samples: int | None = DEFAULT_MAX_SAMPLES, seed: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Flatten two activations on the same images so their rows correspond.

    In ``positions`` mode both maps are pooled to the smaller spatial size, then the same
    positions are drawn for both. 2-D activations pass through; a 2-D with a 4-D one needs
    ``mode="pool"``.
    """
    check_mode(mode)
    xa, xb = to_numpy(a, "a"), to_numpy(b, "b")
    if xa.shape[0] != xb.shape[0]:
        raise ConfigError(f"a and b must hold the same images: {xa.shape[0]} vs {xb.shape[0]}")
    if mode == "positions" and xa.ndim == 4 and xb.ndim == 4:
        size = common_size(xa.shape, xb.shape)
        xa, xb = pool_to(xa, size), pool_to(xb, size)
    elif mode == "positions" and (xa.ndim == 4) != (xb.ndim == 4):
        raise ConfigError("positions mode needs two conv maps (N, C, H, W); one input is "
                          f"{xa.ndim}-D: use mode='pool'")
    return (flatten_conv(xa, mode, max_samples, seed), flatten_conv(xb, mode, max_samples, seed))
