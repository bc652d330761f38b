"""The registry of representation-similarity measures (SVCCA, linear CKA, and any a user adds).

A :class:`SimilarityMeasure` has two parts, like pytorch-grad-cam's plug-in methods:

- ``compare(a, b, *, keep, epsilon, statistic, threshold) -> dict``: one comparison of two
  (samples, features) arrays: ``value`` (the statistic asked for), ``kept_a``/``kept_b`` and any
  details the measure reports (SVCCA: both summaries and the coefficients);
- ``prepare(a, b, *, keep, epsilon, statistic, threshold)``: the comparison set up once, whose
  ``stat(perm)`` recomputes the value with the rows of ``a`` reordered (the permutation null
  calls it once per draw) and whose ``kept_a``/``kept_b`` say what was kept.

``layer_similarity``, ``cross_layer_similarity``, ``permutation_null`` and ``random_baseline`` take
any registered name as ``measure``; :func:`register_measure` adds one (ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from ttl.analysis._arrays import check_pair
from ttl.analysis.cka import linear_cka
from ttl.analysis.svcca import (GOOGLE_THRESHOLD, Keep, correlations, svcca, svd_reduce, thresholded_mean,
                                whiten)
from ttl.errors import DataError
from ttl.registry import Registry


class Prepared(Protocol):
    kept_a: int
    kept_b: int

    def stat(self, perm: np.ndarray | None = None) -> float: ...


@dataclasses.dataclass(frozen=True)
class SimilarityMeasure:
    """One measure: ``compare`` for a result, ``prepare`` for repeated permuted statistics;
    ``statistics``: the summaries it offers (None: one value, recorded under the measure's name)."""

    name: str
    summary: str
    compare: Callable[..., dict[str, Any]]
    prepare: Callable[..., Prepared]
    statistics: tuple[str, ...] | None = None

    def statistic_label(self, statistic: str) -> str:
        """What a result records as its statistic: the summary asked for, or the measure's name."""
        return statistic if self.statistics else self.name


REGISTRY: Registry[SimilarityMeasure] = Registry("similarity measure")


def register_measure(measure: SimilarityMeasure) -> SimilarityMeasure:
    return REGISTRY.add(measure.name, measure)


def get_measure(name: str) -> SimilarityMeasure:
    return REGISTRY.lookup(name)


# --------------------------------------------------------------------------------------------
# SVCCA


def _svcca_compare(a: Any, b: Any, *, keep: Keep = 0.99, epsilon: float = 1e-10, statistic: str = "mean",
                   threshold: float = GOOGLE_THRESHOLD) -> dict[str, Any]:
    res = svcca(a, b, keep=keep, epsilon=epsilon, threshold=threshold)
    value = res.mean_thresholded if statistic == "thresholded" else res.mean
    return dict(value=value, svcca_mean=res.mean, svcca_thresholded=res.mean_thresholded,
                n_thresholded=res.n_thresholded, coefficients=res.coefficients.tolist(),
                kept_a=res.kept_a, kept_b=res.kept_b)


class _SVCCAPrepared:
    """The SVD step and CCA whitening done once; a permutation only reorders the whitened rows."""

    def __init__(self, a: Any, b: Any, *, keep: Keep = 0.99, epsilon: float = 1e-10, statistic: str = "mean",
                 threshold: float = GOOGLE_THRESHOLD) -> None:
        x, y = check_pair(a, b)
        ra = x if keep is None else svd_reduce(x, keep, "a")
        rb = y if keep is None else svd_reduce(y, keep, "b")
        self.kept_a, self.kept_b = int(ra.shape[1]), int(rb.shape[1])
        self.x, self.y = whiten(ra, epsilon, "a"), whiten(rb, epsilon, "b")
        self.statistic, self.threshold = statistic, threshold

    def stat(self, perm: np.ndarray | None = None) -> float:
        rho = correlations(self.x if perm is None else self.x[perm], self.y)
        return thresholded_mean(rho, self.threshold) if self.statistic == "thresholded" else float(rho.mean())


# --------------------------------------------------------------------------------------------
# linear CKA


def _cka_compare(a: Any, b: Any, **_: Any) -> dict[str, Any]:
    return dict(value=linear_cka(a, b), kept_a=np.shape(a)[1], kept_b=np.shape(b)[1])


class _CKAPrepared:
    """Centred features and the two Gram norms computed once."""

    def __init__(self, a: Any, b: Any, **_: Any) -> None:
        x, y = check_pair(a, b)
        self.x = x - x.mean(axis=0, keepdims=True)
        self.y = y - y.mean(axis=0, keepdims=True)
        self.kk = float(np.sum((self.x.T @ self.x) ** 2))
        self.ll = float(np.sum((self.y.T @ self.y) ** 2))
        if self.kk == 0 or self.ll == 0:
            raise DataError(f"linear_cka: {'a' if self.kk == 0 else 'b'} has no variance")
        self.kept_a, self.kept_b = x.shape[1], y.shape[1]

    def stat(self, perm: np.ndarray | None = None) -> float:
        x = self.x if perm is None else self.x[perm]
        num = float(np.sum((x.T @ self.y) ** 2))
        return float(np.clip(num / np.sqrt(self.kk * self.ll), 0.0, 1.0))


register_measure(SimilarityMeasure(
    "svcca", "SVCCA (Raghu et al. 2017): SVD to the directions holding `keep` of the variance, then CCA",
    _svcca_compare, _SVCCAPrepared, statistics=("mean", "thresholded")))
register_measure(SimilarityMeasure(
    "cka", "linear CKA (Kornblith et al. 2019)", _cka_compare, _CKAPrepared))
