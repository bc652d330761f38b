"""Random-feature baselines: reproducible, well-formed, and at the level theory predicts."""

from __future__ import annotations

import numpy as np
import pytest

from ttl.analysis import baseline_for, random_baseline
from ttl.errors import ConfigError


def test_svcca_baseline_shape_order_and_seed():
    base = random_baseline(60, 8, 6, draws=5, seed=3)
    assert base.measure == "svcca" and base.values.shape == (5,)
    assert base.curves.shape[0] == 5 and base.curves.shape[1] <= 6
    assert np.all(base.curve_low <= base.curve_mean + 1e-12)
    assert np.all(base.curve_mean <= base.curve_high + 1e-12)
    assert base.low <= base.mean <= base.high
    np.testing.assert_allclose(base.values, [np.nanmean(c) for c in base.curves])
    again = random_baseline(60, 8, 6, draws=5, seed=3)
    np.testing.assert_array_equal(base.values, again.values)
    assert not np.array_equal(base.values, random_baseline(60, 8, 6, draws=5, seed=4).values)
    # a draw does not depend on how many draws are made
    np.testing.assert_array_equal(random_baseline(60, 8, 6, draws=2, seed=3).values,
                                  base.values[:2])
    d = base.as_dict()
    assert isinstance(d["curve_mean"], list) and d["draws"] == 5


def test_svcca_baseline_matches_null_theory():
    # Under independence, Pillai's trace sum(rho_i^2) has expectation p*q/(n-1).
    n, p, q, draws = 200, 5, 4, 60
    base = random_baseline(n, p, q, draws=draws, keep=1.0, seed=0)
    pillai = np.nansum(base.curves**2, axis=1)
    assert pillai.mean() == pytest.approx(p * q / (n - 1), abs=0.02)


def test_baseline_rises_as_features_approach_samples():
    small = random_baseline(50, 4, 4, draws=4, seed=0)
    large = random_baseline(50, 40, 40, draws=4, seed=0)
    assert large.mean > small.mean + 0.2
    cka_small = random_baseline(50, 4, 4, measure="cka", draws=4)
    cka_large = random_baseline(50, 40, 40, measure="cka", draws=4)
    assert cka_large.mean > cka_small.mean
    assert cka_small.curves is None and 0 < cka_small.mean < 1


def test_baseline_for_uses_shapes_and_checks_input():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((40, 7)), rng.standard_normal((40, 3))
    base = baseline_for(a, b, measure="cka", draws=3, seed=1)
    assert (base.n_samples, base.dim_a, base.dim_b) == (40, 7, 3)
    np.testing.assert_array_equal(
        base.values, random_baseline(40, 7, 3, measure="cka", draws=3, seed=1).values)
    with pytest.raises(ConfigError, match="flatten"):
        baseline_for(rng.standard_normal((4, 2, 3, 3)), a[:4])
    with pytest.raises(ConfigError, match="measure"):
        random_baseline(10, 2, 2, measure="pwcca")
    with pytest.raises(ConfigError, match="draws"):
        random_baseline(10, 2, 2, draws=0)
