"""Statistics for the study: bootstrap confidence intervals, DeLong's paired AUROC test,
and summaries over seeds.

References: Efron & Tibshirani (1993) for the percentile bootstrap; DeLong, DeLong &
Clarke-Pearson (1988) for the test of correlated ROC AUCs, computed with the fast midrank
algorithm of Sun & Xu (2014).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

from ttl.errors import ConfigError, DataError

Metric = Callable[[np.ndarray, np.ndarray], float]


class _CI(NamedTuple):
    estimate: float
    low: float
    high: float


class BootstrapCI(_CI):
    """``(estimate, low, high)``; also ``n_boot`` (asked), ``n_valid`` (used) and ``n_skipped``
    (resamples on which the metric was undefined)."""

    n_boot: int
    n_valid: int
    n_skipped: int


def _undefined_warnings() -> list[type[Warning]]:
    cats: list[type[Warning]] = [RuntimeWarning]
    try:
        from sklearn.exceptions import UndefinedMetricWarning

        cats.append(UndefinedMetricWarning)
    except ImportError:  # pragma: no cover
        pass
    return cats


def _metric_or_none(metric: Metric, y_true: np.ndarray, y_score: np.ndarray) -> float | None:
    """The metric's value, or None when it is undefined (raises ValueError/ZeroDivisionError,
    or returns NaN/inf)."""
    try:
        value = float(metric(y_true, y_score))
    except (ValueError, ZeroDivisionError, FloatingPointError):
        return None
    return value if math.isfinite(value) else None


def bootstrap_ci(y_true: Any, y_score: Any, metric: Metric, n_boot: int = 1000,
                 alpha: float = 0.05, seed: int = 0, stratified: bool = True,
                 max_skipped_fraction: float = 0.1) -> BootstrapCI:
    """Percentile bootstrap confidence interval of ``metric(y_true, y_score)``.

    Cases (rows) are resampled with replacement ``n_boot`` times with
    ``numpy.random.default_rng(seed)``. With ``stratified`` and 1-D labels, each class is
    resampled within itself, so every resample keeps the class counts; 2-D labels (multilabel,
    one-hot) are resampled as whole rows. Resamples on which the metric is undefined (e.g. one
    class only: it raises ValueError or returns NaN) are skipped and counted in ``n_skipped``;
    a warning is issued when more than ``max_skipped_fraction`` of them are.

    Returns ``BootstrapCI(estimate, low, high)`` (a tuple; the estimate is the metric on all the
    data, the bounds the ``alpha/2`` and ``1 - alpha/2`` quantiles of the resampled values).
    """
    yt, ys = np.asarray(y_true), np.asarray(y_score)
    if yt.ndim not in (1, 2) or ys.ndim not in (1, 2):
        raise ConfigError(f"bootstrap_ci: y_true and y_score must be 1-D or 2-D, got "
                          f"{yt.shape} and {ys.shape}")
    n = yt.shape[0]
    if ys.shape[0] != n:
        raise ConfigError(f"bootstrap_ci: y_true has {n} cases, y_score {ys.shape[0]}")
    if n < 2:
        raise DataError(f"bootstrap_ci: need at least 2 cases, got {n}")
    if int(n_boot) != n_boot or n_boot < 1:
        raise ConfigError(f"bootstrap_ci: n_boot must be a positive int, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"bootstrap_ci: alpha must be in (0, 1), got {alpha}")
    with warnings.catch_warnings():
        for cat in _undefined_warnings():
            warnings.simplefilter("ignore", cat)
        estimate = _metric_or_none(metric, yt, ys)
    if estimate is None:
        raise DataError("bootstrap_ci: the metric is undefined on the full data "
                        "(e.g. only one class present)")
    rng = np.random.default_rng(seed)
    groups = ([np.flatnonzero(yt == c) for c in np.unique(yt)]
              if stratified and yt.ndim == 1 else [np.arange(n)])
    values = []
    with warnings.catch_warnings():
        for cat in _undefined_warnings():
            warnings.simplefilter("ignore", cat)
        for _ in range(int(n_boot)):
            idx = np.concatenate([g[rng.integers(0, g.size, g.size)] for g in groups])
            v = _metric_or_none(metric, yt[idx], ys[idx])
            if v is not None:
                values.append(v)
    n_valid = len(values)
    n_skipped = int(n_boot) - n_valid
    if n_valid == 0:
        raise DataError(f"bootstrap_ci: the metric was undefined on all {n_boot} resamples; "
                        "use stratified=True or more cases")
    if n_skipped > max_skipped_fraction * n_boot:
        warnings.warn(f"bootstrap_ci: metric undefined on {n_skipped} of {n_boot} resamples "
                      "(skipped); the interval rests on the rest", RuntimeWarning, stacklevel=2)
    low, high = np.quantile(np.asarray(values), [alpha / 2, 1 - alpha / 2])
    ci = BootstrapCI(float(estimate), float(low), float(high))
    ci.n_boot, ci.n_valid, ci.n_skipped = int(n_boot), n_valid, n_skipped
    return ci


@dataclass(frozen=True)
class DeLongResult:
    """DeLong's test of ``H0: AUC_a == AUC_b`` on the same cases (two-sided)."""

    auc_a: float
    auc_b: float
    diff: float  # auc_a - auc_b
    var: float  # variance of diff
    z: float
    p_value: float


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n along each row of ``x``, ties given their mean rank."""
    return sps.rankdata(x, method="average", axis=1)


def _binary_labels(y_true: Any, pos_label: Any = None, name: str = "y_true") -> np.ndarray:
    """Boolean mask of the positives; ``pos_label`` None means the larger of the two labels."""
    yt = np.asarray(y_true)
    if yt.ndim != 1:
        raise ConfigError(f"{name}: expected 1-D binary labels, got shape {yt.shape}")
    classes = np.unique(yt)
    if classes.size != 2:
        raise DataError(f"{name}: need exactly two classes (negatives and positives), "
                        f"found {classes.size}: {classes[:5].tolist()}")
    if pos_label is None:
        pos_label = classes[1]
    elif pos_label not in classes.tolist():
        raise ConfigError(f"pos_label {pos_label!r} is not one of the labels {classes.tolist()}")
    return yt == pos_label


def delong_components(y_true: Any, scores: Any, pos_label: Any = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong's structural components by the midrank algorithm (Sun & Xu 2014).

    ``scores``: (k, n) or (n,) scores, higher meaning positive (``pos_label``, by default the
    larger label). Returns
    ``auc`` (k,), ``v10`` (k, m) over the positives and ``v01`` (k, n_neg) over the negatives.
    """
    pos = _binary_labels(y_true, pos_label)
    s = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    if s.shape[1] != pos.size:
        raise ConfigError(f"scores have {s.shape[1]} cases, y_true {pos.size}")
    if not np.isfinite(s).all():
        raise DataError("scores contain NaN or infinite values")
    x, y = s[:, pos], s[:, ~pos]
    m, n = x.shape[1], y.shape[1]
    tx, ty = _midranks(x), _midranks(y)
    tz = _midranks(np.concatenate([x, y], axis=1))
    auc = (tz[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def delong_test(y_true: Any, score_a: Any, score_b: Any, pos_label: Any = None) -> DeLongResult:
    """DeLong's test for two correlated ROC AUCs computed on the same cases.

    ``y_true``: two distinct labels; the positives are ``pos_label`` (default: the larger one).

    ``var = (S10[a,a] + S10[b,b] - 2 S10[a,b]) / m + (same for S01) / n`` with S10/S01 the
    sample covariances (ddof 1) of the structural components over the ``m`` positives and ``n``
    negatives; ``z = diff / sqrt(var)``, two-sided normal p-value. When ``var`` is 0 (e.g.
    identical scores), ``z = 0, p = 1`` if ``diff == 0`` and ``z = ±inf, p = 0`` otherwise.
    """
    a = np.asarray(score_a, dtype=np.float64).ravel()
    b = np.asarray(score_b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ConfigError(f"score_a and score_b differ in length: {a.size} vs {b.size}")
    auc, v10, v01 = delong_components(y_true, np.vstack([a, b]), pos_label)
    m, n = v10.shape[1], v01.shape[1]
    if m < 2 or n < 2:
        raise DataError(f"delong_test: need at least 2 positives and 2 negatives, got {m} and {n}")
    s10, s01 = np.cov(v10), np.cov(v01)
    var = float((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m
                + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n)
    diff = float(auc[0] - auc[1])
    if var <= 1e-15 * max(1.0, diff * diff):
        var = max(var, 0.0)
        z = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0 else 0.0
    else:
        z = diff / math.sqrt(var)
        p = float(2 * sps.norm.sf(abs(z)))
    return DeLongResult(auc_a=float(auc[0]), auc_b=float(auc[1]), diff=diff, var=var, z=z,
                        p_value=min(p, 1.0))


def summarise_seeds(values: Sequence[float] | np.ndarray, confidence: float = 0.95
                    ) -> dict[str, float | int]:
    """Mean, sample sd (ddof 1) and Student-t confidence interval of one value over seeds.

    With a single value, ``sd`` and the bounds are NaN.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise DataError("summarise_seeds: no values")
    if not np.isfinite(v).all():
        raise DataError(f"summarise_seeds: values contain NaN or infinite numbers: {v.tolist()}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"summarise_seeds: confidence must be in (0, 1), got {confidence}")
    n = int(v.size)
    mean = float(v.mean())
    if n < 2:
        return dict(mean=mean, sd=math.nan, ci_low=math.nan, ci_high=math.nan, n=n)
    sd = float(v.std(ddof=1))
    half = float(sps.t.ppf(0.5 + confidence / 2, df=n - 1)) * sd / math.sqrt(n)
    return dict(mean=mean, sd=sd, ci_low=mean - half, ci_high=mean + half, n=n)
