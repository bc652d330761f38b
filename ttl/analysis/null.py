"""Chance level of one SVCCA/CKA comparison: a permutation null on the real features.

Under "the two representations are unrelated", which row of ``a`` goes with which row of ``b``
is arbitrary. :func:`permutation_null` therefore shuffles the rows (images, or (image, position)
samples) of ``a`` against ``b`` and recomputes the same measure ``draws`` times. Everything else
is the real comparison's: the same features, the same SVD step with the **same kept dimensions**
(the SVD of each side is done once; permuting rows permutes its projection and leaves the
singular values, hence the kept count, unchanged), the same CCA regularisation and the same
summary statistic. The result is the level (``mean``) and spread (``low``..``high``, by default
the 5th-95th percentiles) a real value has to exceed, and a permutation p-value.

This replaces Gaussian features at the layer's raw width (:func:`ttl.analysis.random_baseline`),
whose SVD step keeps far more directions than the real activations do and so overstates chance.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ttl.analysis._arrays import check_pair
from ttl.analysis.measures import REGISTRY as MEASURE_REGISTRY
from ttl.analysis.measures import get_measure
from ttl.analysis.svcca import GOOGLE_THRESHOLD, FewSamplesWarning, Keep
from ttl.errors import ConfigError
from ttl.seeding import derive_seed

Measure = str  # a registered measure's name (ttl.analysis.measures): "svcca", "cka", ...
MEASURES = tuple(MEASURE_REGISTRY)  # the shipped ones; a measure registered later is accepted too
#: SVCCA summary statistics: ``mean`` of every canonical correlation (ours) or ``thresholded``,
#: google/svcca's mean of the leading coefficients that make up 0.98 of their sum.
STATISTICS = ("mean", "thresholded")


def check_measure(measure: str) -> str:
    get_measure(measure)
    return measure


def check_statistic(statistic: str) -> str:
    if statistic not in STATISTICS:
        raise ConfigError(f"statistic must be one of {STATISTICS}, got {statistic!r}")
    return statistic


@dataclass(frozen=True)
class PermutationNull:
    """The real value of one comparison and its distribution under row permutations.

    ``values``: the statistic per draw; ``mean``/``low``/``high``: their mean and ``quantiles``;
    ``p_value``: (1 + draws at or above the real value) / (1 + draws); ``above``: real value >
    ``high``. ``kept_a``/``kept_b``: directions kept by the SVD step (SVCCA; the raw widths for
    CKA), identical in the real comparison and in every draw.
    """

    measure: str
    statistic: str
    value: float
    n_samples: int
    dim_a: int
    dim_b: int
    kept_a: int
    kept_b: int
    draws: int
    quantiles: tuple[float, float]
    values: np.ndarray
    mean: float
    low: float
    high: float
    p_value: float

    @property
    def above(self) -> bool:
        """Whether the real value exceeds the upper end of the null band."""
        return bool(self.value > self.high)

    def as_dict(self) -> dict[str, Any]:
        """Plain types, ready for JSON."""
        out = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        out["quantiles"] = list(self.quantiles)
        out["above"] = self.above
        return out


def permutation_null(a: Any, b: Any, measure: Measure = "svcca", draws: int = 20, seed: int = 0,
                     *, keep: Keep = 0.99, epsilon: float = 1e-10, statistic: str = "mean",
                     threshold: float = GOOGLE_THRESHOLD,
                     quantiles: tuple[float, float] = (0.05, 0.95)) -> PermutationNull:
    """SVCCA/CKA of ``a`` against ``b`` (samples, features) and its row-permutation null.

    Draw ``i`` permutes the rows of ``a`` with ``numpy.random.default_rng(derive_seed(seed,
    "permutation_null", i))``, so a draw does not depend on how many are asked for. ``keep``,
    ``epsilon``, ``statistic`` (``"mean"`` or ``"thresholded"``, SVCCA only) and ``threshold``
    are those of the real comparison (see :func:`ttl.analysis.svcca`).
    """
    check_measure(measure)
    check_statistic(statistic)
    if isinstance(draws, bool) or int(draws) != draws or draws < 1:
        raise ConfigError(f"permutation_null: draws must be a positive int, got {draws!r}")
    lo_q, hi_q = quantiles
    if not 0.0 <= lo_q <= hi_q <= 1.0:
        raise ConfigError(f"quantiles must satisfy 0 <= low <= high <= 1, got {quantiles}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewSamplesWarning)
        x, y = check_pair(a, b)
        spec = get_measure(measure)
        comp = spec.prepare(x, y, keep=keep, epsilon=epsilon, statistic=statistic, threshold=threshold)
    n = x.shape[0]
    value = comp.stat()
    values = np.empty(int(draws))
    for i in range(int(draws)):
        rng = np.random.default_rng(derive_seed(seed, "permutation_null", i))
        values[i] = comp.stat(rng.permutation(n))
    return PermutationNull(
        measure=measure, statistic=spec.statistic_label(statistic), value=value,
        n_samples=n, dim_a=x.shape[1], dim_b=y.shape[1], kept_a=comp.kept_a,
        kept_b=comp.kept_b, draws=int(draws), quantiles=(float(lo_q), float(hi_q)),
        values=values, mean=float(values.mean()), low=float(np.quantile(values, lo_q)),
        high=float(np.quantile(values, hi_q)),
        p_value=float((1 + np.sum(values >= value - 1e-12)) / (1 + draws)))
