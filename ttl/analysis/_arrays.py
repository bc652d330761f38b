"""Turn numpy arrays or torch tensors into checked float64 numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from ttl.errors import ConfigError, DataError


def to_numpy(x: Any, name: str = "x") -> np.ndarray:
    """A numpy view/copy of ``x`` (numpy array, torch tensor or nested sequence), dtype kept."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu()
        if str(x.dtype) in ("torch.bfloat16", "torch.float16"):
            x = x.float()
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - unusual inputs
        raise ConfigError(f"{name}: cannot convert {type(x).__name__} to an array ({exc})") from exc


def as_2d_float64(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a finite float64 (samples, features) array; a clear error otherwise."""
    arr = to_numpy(x, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigError(
            f"{name}: expected a (samples, features) array, got shape {tuple(arr.shape)}; "
            "flatten conv maps (N, C, H, W) first with ttl.analysis.flatten_conv")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ConfigError(f"{name}: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise DataError(f"{name}: contains NaN or infinite values")
    return arr


def check_pair(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 2-D arrays with the same number of samples (at least 2)."""
    x = as_2d_float64(a, "a")
    y = as_2d_float64(b, "b")
    if x.shape[0] != y.shape[0]:
        raise ConfigError(f"a and b must have the same number of samples (rows): "
                          f"a has {x.shape[0]}, b has {y.shape[0]}")
    if x.shape[0] < 2:
        raise ConfigError(f"at least 2 samples are needed, got {x.shape[0]}")
    return x, y
