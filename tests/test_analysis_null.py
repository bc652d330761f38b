"""The permutation null of SVCCA/CKA: the same comparison with rows shuffled, same kept dimensions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ttl.analysis import (linear_cka, n_thresholded, permutation_null, random_baseline, svcca,
                          thresholded_mean)
from ttl.errors import ConfigError
from ttl.seeding import derive_seed


def _anisotropic(n=240, p=48, q=40, seed=0, related=False):
    """Features with steeply decaying variances, like real activations: the 99% SVD step keeps
    far fewer directions than the raw width. ``related``: b is a noisy linear map of a."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, p)) * np.geomspace(4.0, 0.01, p)
    if related:
        b = a @ rng.standard_normal((p, q)) + 0.3 * rng.standard_normal((n, q))
    else:
        b = rng.standard_normal((n, q)) * np.geomspace(4.0, 0.01, q)
    return a, b


def _perm(seed, i, n):
    return np.random.default_rng(derive_seed(seed, "permutation_null", i)).permutation(n)


@pytest.mark.parametrize("measure", ["svcca", "cka"])
def test_each_draw_is_the_same_comparison_on_permuted_rows(measure):
    a, b = _anisotropic()
    null = permutation_null(a, b, measure, draws=4, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(4):
            pa = a[_perm(3, i, len(a))]
            expected = svcca(pa, b).mean if measure == "svcca" else linear_cka(pa, b)
            assert null.values[i] == pytest.approx(expected, abs=1e-8)
        real = svcca(a, b) if measure == "svcca" else None
    assert null.value == pytest.approx(real.mean if real else linear_cka(a, b), abs=1e-8)
    if real is not None:  # the SVD step keeps the real comparison's dimensions, well below the widths
        assert (null.kept_a, null.kept_b) == (real.kept_a, real.kept_b)
        assert null.kept_a < a.shape[1] // 2 and null.kept_b < b.shape[1] // 2
    assert null.low <= null.mean <= null.high
    assert (null.dim_a, null.dim_b, null.n_samples, null.draws) == (48, 40, 240, 4)


def test_chance_level_of_unrelated_anisotropic_features_is_far_below_the_gaussian_band():
    a, b = _anisotropic(p=96, q=80)
    null = permutation_null(a, b, "svcca", draws=30, seed=0)
    gauss = random_baseline(len(a), a.shape[1], b.shape[1], draws=10, seed=0)
    # Gaussian features at the raw width keep almost every direction, the real ones few
    assert null.kept_a < 40 and null.kept_b < 40
    assert null.mean < gauss.mean - 0.2 and null.high < gauss.low
    assert not null.above and null.p_value > 0.05  # unrelated features: not above chance
    cka = permutation_null(a, b, "cka", draws=30, seed=0)
    assert not cka.above and cka.p_value > 0.05


def test_related_features_are_above_their_null():
    a, b = _anisotropic(related=True)
    for measure in ("svcca", "cka"):
        null = permutation_null(a, b, measure, draws=19, seed=1)
        assert null.above and null.value > null.high
        assert null.p_value == pytest.approx(1 / 20)


def test_draws_are_reproducible_and_independent_of_their_number():
    a, b = _anisotropic(seed=2)
    n5 = permutation_null(a, b, "cka", draws=5, seed=7)
    n2 = permutation_null(a, b, "cka", draws=2, seed=7)
    np.testing.assert_array_equal(n5.values[:2], n2.values)
    assert not np.array_equal(n5.values, permutation_null(a, b, "cka", draws=5, seed=8).values)
    d = n5.as_dict()
    assert d["kept_a"] == 48 and d["above"] is False and len(d["values"]) == 5


def test_isotropic_gaussian_null_agrees_with_the_gaussian_baseline():
    # For isotropic Gaussian features the two chance levels describe the same thing.
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((200, 12)), rng.standard_normal((200, 9))
    null = permutation_null(a, b, "svcca", draws=40, seed=0, keep=None)
    gauss = random_baseline(200, 12, 9, draws=40, seed=0, keep=None)
    assert null.mean == pytest.approx(gauss.mean, abs=0.03)


def _google_thresholded(coefs, threshold=0.98):
    """google/svcca's sum_threshold followed by the mean of the leading coefficients (rewritten)."""
    for i in range(len(coefs)):
        if np.sum(coefs[:i]) / np.sum(coefs) >= threshold:
            return float(np.mean(coefs[:i]))
    return float(np.mean(coefs))


def test_thresholded_mean_is_google_svcca_statistic():
    a, b = _anisotropic(seed=5)  # unrelated: the coefficients trail off towards 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = svcca(a, b, keep=20)
    assert res.mean_thresholded == pytest.approx(_google_thresholded(res.coefficients), abs=1e-12)
    assert res.n_thresholded < res.coefficients.size  # trailing coefficients dropped
    assert res.mean_thresholded > res.mean == pytest.approx(res.coefficients.mean())
    coefs = np.array([1.0, 0.9, 0.5, 0.05, 0.01])
    assert n_thresholded(coefs) == 4  # 2.45 / 2.46 >= 0.98, 2.40 / 2.46 is not
    assert thresholded_mean(coefs) == pytest.approx(2.45 / 4)
    null = permutation_null(a, b, "svcca", draws=3, keep=20, statistic="thresholded")
    assert null.value == pytest.approx(res.mean_thresholded, abs=1e-10)
    assert null.statistic == "thresholded"


def test_bad_arguments_say_what_to_fix():
    a, b = _anisotropic()
    with pytest.raises(ConfigError, match="draws"):
        permutation_null(a, b, draws=0)
    with pytest.raises(ConfigError, match="measure"):
        permutation_null(a, b, "pwcca")
    with pytest.raises(ConfigError, match="statistic"):
        permutation_null(a, b, statistic="median")
    with pytest.raises(ConfigError, match="same number of samples"):
        permutation_null(a, b[:10])
