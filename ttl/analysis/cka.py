"""Linear centred kernel alignment (Kornblith et al. 2019)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ttl.analysis._arrays import check_pair
from ttl.errors import DataError


def linear_cka(a: Any, b: Any) -> float:
    """Linear CKA between ``a`` and ``b`` (samples, features), numpy or torch, in [0, 1].

    ``||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)`` on column-centred features (equal to
    HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with linear kernels). Invariant to orthogonal
    transforms and isotropic scaling of either side. Computed in the feature space or the
    sample space, whichever is smaller.
    """
    x, y = check_pair(a, b)
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    n, fa, fb = x.shape[0], x.shape[1], y.shape[1]
    if n * n * (fa + fb) < n * (fa * fb + fa * fa + fb * fb):
        k, l_ = x @ x.T, y @ y.T
        num, kk, ll = np.sum(k * l_), np.sum(k * k), np.sum(l_ * l_)
    else:
        num = np.sum((x.T @ y) ** 2)
        kk, ll = np.sum((x.T @ x) ** 2), np.sum((y.T @ y) ** 2)
    if kk == 0 or ll == 0:
        raise DataError(f"linear_cka: {'a' if kk == 0 else 'b'} has no variance")
    return float(np.clip(num / np.sqrt(kk * ll), 0.0, 1.0))
