"""SVCCA (Raghu et al. 2017): SVD-truncate each side, then canonical correlation analysis.

The algorithm follows google/svcca (``cca_core.get_cca_similarity`` after the SVD step of its
tutorial), written anew here:

1. centre each feature over the samples;
2. SVD of each centred (samples, features) matrix; keep the top directions that explain the
   fraction ``keep`` of the variance (variance = squared singular values), or the ``keep`` first
   directions when ``keep`` is an int; project the data on them;
3. CCA of the two projections: covariances (``ddof=1``), each auto-covariance rescaled by its
   largest absolute entry (the cross-covariance by the geometric mean of both), directions whose
   rescaled variance is below ``epsilon`` dropped, ``epsilon`` added to the diagonals, inverse
   square roots by eigendecomposition, and the singular values of the whitened
   cross-covariance are the canonical correlations.

Two summary statistics are returned: ``mean``, the mean of **all** canonical correlations (ours,
and what the book plots), and ``mean_thresholded``, google/svcca's ``mean`` (``get_cca_similarity``
with ``threshold=0.98``): the mean of the leading coefficients whose running sum first reaches
0.98 of their total, so the trailing, near-zero ones are dropped. The second is never smaller.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ttl.analysis._arrays import check_pair
from ttl.errors import ConfigError, DataError

Keep = float | int | None
#: google/svcca's default ``threshold``: the leading coefficients making up this share of the sum.
GOOGLE_THRESHOLD = 0.98


class FewSamplesWarning(UserWarning):
    """Fewer samples than features: canonical correlations are biased upwards."""


@dataclass(frozen=True)
class SVCCAResult:
    """Canonical correlations (descending) of the SVD-reduced inputs and two summaries.

    ``mean``: mean of all coefficients; ``mean_thresholded``: mean of the first
    ``n_thresholded`` ones, those whose running sum reaches ``threshold`` of the total
    (google/svcca's statistic). ``kept_a``/``kept_b``: directions kept by the SVD step.
    """

    coefficients: np.ndarray
    mean: float
    kept_a: int
    kept_b: int
    n_samples: int
    mean_thresholded: float = float("nan")
    n_thresholded: int = 0
    threshold: float = GOOGLE_THRESHOLD


def n_thresholded(coefficients: np.ndarray, threshold: float = GOOGLE_THRESHOLD) -> int:
    """How many leading coefficients (descending) google/svcca keeps: the fewest whose sum
    reaches ``threshold`` of the total (all of them when the total is 0)."""
    if not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be in [0, 1], got {threshold}")
    c = np.asarray(coefficients, dtype=np.float64)
    total = c.sum()
    if c.size == 0:
        raise ConfigError("n_thresholded: no coefficients")
    if total <= 0:
        return int(c.size)
    reached = np.cumsum(c) / total >= threshold
    return int(np.argmax(reached)) + 1 if reached.any() else int(c.size)


def thresholded_mean(coefficients: np.ndarray, threshold: float = GOOGLE_THRESHOLD) -> float:
    """google/svcca's SVCCA statistic: the mean of the :func:`n_thresholded` leading coefficients."""
    c = np.asarray(coefficients, dtype=np.float64)
    return float(c[: n_thresholded(c, threshold)].mean())


def n_directions(singular_values: np.ndarray, keep: float | int) -> int:
    """How many leading directions ``keep`` asks for, given descending singular values.

    A float in (0, 1] keeps the fewest directions whose squared singular values reach that
    fraction of the total; an int keeps that many (at most as many as there are).
    """
    s = np.asarray(singular_values, dtype=np.float64)
    if isinstance(keep, (bool, np.bool_)):
        raise ConfigError(f"keep must be a float in (0, 1] or an int >= 1, got {keep!r}")
    if isinstance(keep, (int, np.integer)):
        if keep < 1:
            raise ConfigError(f"keep as a number of directions must be >= 1, got {keep}")
        return int(min(keep, s.size))
    if isinstance(keep, (float, np.floating)):
        if not 0.0 < keep <= 1.0:
            raise ConfigError(f"keep as a variance fraction must be in (0, 1], got {keep}")
        var = s**2
        frac = np.cumsum(var) / var.sum()
        k = int(np.searchsorted(frac, keep - 1e-12, side="left")) + 1
        return min(k, s.size)
    raise ConfigError(f"keep must be a float in (0, 1], an int >= 1 or None, got {keep!r}")


def svd_reduce(x: np.ndarray, keep: float | int, name: str = "a") -> np.ndarray:
    """Centre ``x`` (samples, features) and project it on its top SVD directions per ``keep``.

    Directions beyond the numerical rank are never kept. Returns (samples, k) float64.
    """
    xc = x - x.mean(axis=0, keepdims=True)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)
    tol = (s[0] if s.size else 0.0) * max(xc.shape) * np.finfo(np.float64).eps
    rank = int(np.count_nonzero(s > tol))
    if rank == 0:
        raise DataError(f"{name}: no variance (every feature is constant over the samples)")
    k = n_directions(s[:rank], keep)
    return u[:, :k] * s[:k]


def _inv_sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Inverse square root of a symmetric positive semi-definite matrix (pseudo-inverse)."""
    w, v = np.linalg.eigh(m)
    cutoff = max(w.max(initial=0.0), 0.0) * 1e-15
    inv_sqrt = np.zeros_like(w)
    pos = w > cutoff
    inv_sqrt[pos] = 1.0 / np.sqrt(w[pos])
    return (v * inv_sqrt) @ v.T


def whiten(x: np.ndarray, epsilon: float = 1e-10, name: str = "a") -> np.ndarray:
    """The CCA whitening of one side: ``x`` (samples, features) centred, scaled by the largest
    absolute entry of its covariance, directions with a rescaled variance below ``epsilon``
    dropped, and multiplied by ``(cov + epsilon I)^(-1/2)``.

    ``whiten(a).T @ whiten(b) / (n - 1)`` is the whitened cross-covariance whose singular values
    are the canonical correlations. Whitening commutes with reordering the rows, so a
    permutation null whitens once and only permutes rows per draw.
    """
    if epsilon < 0:
        raise ConfigError(f"epsilon must be >= 0, got {epsilon}")
    n = x.shape[0]
    xc = x - x.mean(axis=0, keepdims=True)
    sxx = xc.T @ xc / (n - 1)
    xmax = np.abs(sxx).max()
    if xmax == 0:
        raise DataError(f"cca: {name} has no variance")
    sxx = sxx / xmax
    keep = np.abs(np.diag(sxx)) >= epsilon
    if not keep.any():
        raise DataError(f"cca: every direction of {name} has a variance below epsilon={epsilon} "
                        "(relative to its largest)")
    sxx = sxx[np.ix_(keep, keep)] + epsilon * np.eye(int(keep.sum()))
    return (xc[:, keep] / np.sqrt(xmax)) @ _inv_sqrt_psd(sxx)


def correlations(wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """Canonical correlations (descending, in [0, 1]) of two :func:`whiten` outputs."""
    rho = np.linalg.svd(wa.T @ wb / (wa.shape[0] - 1), compute_uv=False)
    return np.clip(np.sort(rho)[::-1], 0.0, 1.0)


def cca(a: Any, b: Any, epsilon: float = 1e-10) -> np.ndarray:
    """Canonical correlations (descending, in [0, 1]) between ``a`` and ``b`` (samples, features).

    ``epsilon`` regularises: after rescaling each covariance by its largest absolute entry,
    directions with variance below it are dropped and it is added to the diagonals.
    """
    if epsilon < 0:
        raise ConfigError(f"epsilon must be >= 0, got {epsilon}")
    x, y = check_pair(a, b)
    return correlations(whiten(x, epsilon, "a"), whiten(y, epsilon, "b"))


def svcca(a: Any, b: Any, keep: Keep = 0.99, epsilon: float = 1e-10,
          warn_few_samples: bool = True, threshold: float = GOOGLE_THRESHOLD) -> SVCCAResult:
    """SVCCA between activations ``a`` and ``b``, each (samples, features), numpy or torch.

    ``keep``: fraction of variance kept by the SVD step (float in (0, 1]), a number of
    directions (int), or None for plain CCA without the SVD step. Conv maps (N, C, H, W) must be
    flattened first (:func:`ttl.analysis.flatten_conv`). With fewer samples than features a
    :class:`FewSamplesWarning` is issued: at most samples - 1 directions survive the SVD and the
    coefficients are biased upwards; compare with :func:`ttl.analysis.permutation_null`.
    ``threshold``: for ``mean_thresholded`` (google/svcca's statistic), see :class:`SVCCAResult`.
    """
    x, y = check_pair(a, b)
    n = x.shape[0]
    if warn_few_samples and n <= max(x.shape[1], y.shape[1]):
        warnings.warn(
            f"svcca: {n} samples for {x.shape[1]} (a) and {y.shape[1]} (b) features; at most "
            f"{n - 1} directions survive and the correlations are biased upwards. Use more "
            "samples (or mode='positions' for conv maps) and compare with permutation_null.",
            FewSamplesWarning, stacklevel=2)
    if keep is None:
        ra, rb = x, y
    else:
        ra, rb = svd_reduce(x, keep, "a"), svd_reduce(y, keep, "b")
    rho = cca(ra, rb, epsilon)
    k = n_thresholded(rho, threshold)
    return SVCCAResult(coefficients=rho, mean=float(rho.mean()), kept_a=int(ra.shape[1]),
                       kept_b=int(rb.shape[1]), n_samples=int(n),
                       mean_thresholded=float(rho[:k].mean()), n_thresholded=k,
                       threshold=float(threshold))
