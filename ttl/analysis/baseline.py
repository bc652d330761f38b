"""Similarity of independent Gaussian features of given widths (NOT the chance level of a comparison).

With finitely many samples, independent features still show non-zero canonical correlations
(and CKA), the more so the closer the feature count comes to the sample count. This module draws
isotropic Gaussian features of given shapes: a property of the *estimator* at those widths.

It is not the chance level of a real comparison: real activations are far from isotropic, so the
99% SVD step keeps many fewer directions of them (e.g. 117 and 64 of 512 at ``layer4.0``) than of
Gaussian features (about 458 of 512), and the Gaussian level comes out much higher than chance
(0.69 against 0.36 for SVCCA in the book's run). For the chance level of a comparison use
:func:`ttl.analysis.permutation_null` (rows permuted, same SVD step, same kept dimensions).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ttl.analysis._arrays import to_numpy
from ttl.analysis.measures import get_measure
from ttl.analysis.svcca import FewSamplesWarning, Keep
from ttl.analysis.null import MEASURES, Measure, check_measure
from ttl.errors import ConfigError
from ttl.seeding import derive_seed

__all__ = ["MEASURES", "Measure", "RandomBaseline", "baseline_for", "check_measure",
           "random_baseline"]


@dataclass(frozen=True)
class RandomBaseline:
    """Similarity of independent Gaussian features over ``draws`` draws (see the module note:
    not a comparison's chance level).

    ``values``: per draw, the SVCCA mean coefficient or the CKA value; ``mean``/``low``/``high``
    their mean and quantiles. For SVCCA, ``curves`` (draws, k) holds each draw's sorted
    coefficients (NaN-padded when draws keep different numbers of directions), and
    ``curve_mean``/``curve_low``/``curve_high`` summarise them per coefficient index.
    """

    measure: str
    n_samples: int
    dim_a: int
    dim_b: int
    draws: int
    quantiles: tuple[float, float]
    values: np.ndarray
    mean: float
    low: float
    high: float
    curves: np.ndarray | None = None
    curve_mean: np.ndarray | None = None
    curve_low: np.ndarray | None = None
    curve_high: np.ndarray | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain types, ready for JSON."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in asdict(self).items()}


def random_baseline(n_samples: int, dim_a: int, dim_b: int, measure: Measure = "svcca",
                    draws: int = 10, keep: Keep = 0.99, epsilon: float = 1e-10, seed: int = 0,
                    quantiles: tuple[float, float] = (0.025, 0.975), progress: bool = False
                    ) -> RandomBaseline:
    """SVCCA coefficients / CKA of independent standard Gaussian features of the given shapes.

    Draw ``i`` uses ``numpy.random.default_rng(derive_seed(seed, "random_baseline", i))``, so a
    draw does not depend on how many draws are asked for.
    """
    check_measure(measure)
    for name, v in (("n_samples", n_samples), ("dim_a", dim_a), ("dim_b", dim_b),
                    ("draws", draws)):
        if int(v) != v or v < 1:
            raise ConfigError(f"random_baseline: {name} must be a positive int, got {v!r}")
    if n_samples < 2:
        raise ConfigError(f"random_baseline: n_samples must be >= 2, got {n_samples}")
    lo_q, hi_q = quantiles
    if not 0.0 <= lo_q <= hi_q <= 1.0:
        raise ConfigError(f"quantiles must satisfy 0 <= low <= high <= 1, got {quantiles}")
    values = np.empty(draws)
    curves: list[np.ndarray] = []
    for i in tqdm(range(draws), desc=f"random {measure} baseline", disable=not progress):
        rng = np.random.default_rng(derive_seed(seed, "random_baseline", i))
        a = rng.standard_normal((n_samples, dim_a))
        b = rng.standard_normal((n_samples, dim_b))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewSamplesWarning)
            res = get_measure(measure).compare(a, b, keep=keep, epsilon=epsilon)
        values[i] = res["value"]
        if "coefficients" in res:  # SVCCA: the coefficient curves too
            curves.append(np.asarray(res["coefficients"]))
    extra: dict[str, Any] = {}
    if curves:
        width = max(c.size for c in curves)
        mat = np.full((draws, width), np.nan)
        for i, c in enumerate(curves):
            mat[i, :c.size] = c
        extra = dict(curves=mat, curve_mean=np.nanmean(mat, axis=0),
                     curve_low=np.nanquantile(mat, lo_q, axis=0),
                     curve_high=np.nanquantile(mat, hi_q, axis=0))
    return RandomBaseline(
        measure=measure, n_samples=int(n_samples), dim_a=int(dim_a), dim_b=int(dim_b),
        draws=int(draws), quantiles=(float(lo_q), float(hi_q)), values=values,
        mean=float(values.mean()), low=float(np.quantile(values, lo_q)),
        high=float(np.quantile(values, hi_q)), **extra)


def baseline_for(a: Any, b: Any, measure: Measure = "svcca", **kwargs: Any) -> RandomBaseline:
    """:func:`random_baseline` for the shapes of real (samples, features) activations ``a``, ``b``
    (flatten conv maps first with the same mode as the real comparison)."""
    sa = tuple(a.shape) if hasattr(a, "shape") else to_numpy(a, "a").shape
    sb = tuple(b.shape) if hasattr(b, "shape") else to_numpy(b, "b").shape
    if len(sa) != 2 or len(sb) != 2:
        raise ConfigError(f"baseline_for: expected (samples, features) arrays, got {sa} and {sb}; "
                          "flatten conv maps first with ttl.analysis.flatten_conv")
    if sa[0] != sb[0]:
        raise ConfigError(f"baseline_for: a and b have {sa[0]} and {sb[0]} samples")
    return random_baseline(sa[0], sa[1], sb[1], measure=measure, **kwargs)
