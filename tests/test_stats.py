"""Bootstrap CIs, DeLong's test (against explicit pairwise loops) and its contrast form, p-values,
Holm, the two-level seed-and-image bootstrap and seed summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from ttl.errors import ConfigError, DataError
from ttl.metrics import auroc
from ttl.stats import (bootstrap_ci, delong_contrast, delong_test, format_p, holm, normal_two_sided_p,
                       paired_seed_image_bootstrap, per_seed_auroc, seed_image_bootstrap, summarise_seeds)


# ---------------------------------------------------------------- bootstrap_ci
def test_bootstrap_of_a_mean_matches_normal_theory():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=400)
    labels = np.zeros(400, dtype=int)
    est, low, high = bootstrap_ci(labels, scores, lambda _y, s: float(np.mean(s)), n_boot=2000)
    se = scores.std() / math.sqrt(scores.size)
    assert est == pytest.approx(scores.mean())
    assert low == pytest.approx(scores.mean() - 1.96 * se, abs=0.01)
    assert high == pytest.approx(scores.mean() + 1.96 * se, abs=0.01)


def test_stratified_resamples_keep_class_counts():
    rng = np.random.default_rng(1)
    y = np.array([0] * 15 + [1] * 5 + [2] * 4)
    s = rng.normal(size=y.size)
    seen: list[tuple[int, ...]] = []

    def metric(yt, ys):
        seen.append(tuple(np.bincount(yt, minlength=3)))
        return float(ys.mean())

    bootstrap_ci(y, s, metric, n_boot=50, stratified=True)
    assert set(seen) == {(15, 5, 4)}
    seen.clear()
    bootstrap_ci(y, s, metric, n_boot=50, stratified=False)
    assert len(set(seen)) > 1


def test_undefined_resamples_are_skipped_and_counted():
    rng = np.random.default_rng(2)
    y = np.array([1, 1] + [0] * 10)
    s = rng.normal(size=y.size) + y
    with pytest.warns(RuntimeWarning, match="undefined"):
        ci = bootstrap_ci(y, s, roc_auc_score, n_boot=300, stratified=False, seed=1)
    assert ci.n_skipped > 0 and ci.n_valid + ci.n_skipped == ci.n_boot == 300
    strat = bootstrap_ci(y, s, roc_auc_score, n_boot=300, stratified=True, seed=1)
    assert strat.n_skipped == 0
    est, low, high = strat
    assert est == pytest.approx(roc_auc_score(y, s)) and low <= est <= high
    with pytest.raises(DataError, match="undefined on the full data"):
        bootstrap_ci(np.zeros(5), s[:5], roc_auc_score)


def test_two_dimensional_scores_and_seed():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, size=(80, 3))
    s = y + rng.normal(size=(80, 3))
    a = bootstrap_ci(y, s, roc_auc_score, n_boot=200, seed=5)
    b = bootstrap_ci(y, s, roc_auc_score, n_boot=200, seed=5)
    c = bootstrap_ci(y, s, roc_auc_score, n_boot=200, seed=6)
    assert tuple(a) == tuple(b) and tuple(a) != tuple(c)
    assert a.low < a.estimate < a.high
    assert a.estimate == pytest.approx(roc_auc_score(y, s))


# ---------------------------------------------------------------- DeLong
def _psi(x, y):
    return 1.0 if x > y else 0.5 if x == y else 0.0


def _delong_by_loops(y, sa, sb):
    """DeLong et al. (1988) written out with explicit loops over positives and negatives."""
    pos = [i for i in range(len(y)) if y[i] == 1]
    neg = [j for j in range(len(y)) if y[j] == 0]
    m, n = len(pos), len(neg)
    aucs, v10s, v01s = [], [], []
    for s in (sa, sb):
        v10 = [sum(_psi(s[i], s[j]) for j in neg) / n for i in pos]
        v01 = [sum(_psi(s[i], s[j]) for i in pos) / m for j in neg]
        aucs.append(sum(_psi(s[i], s[j]) for i in pos for j in neg) / (m * n))
        v10s.append(v10)
        v01s.append(v01)

    def cov(u, v, mu_u, mu_v):
        return sum((a - mu_u) * (b - mu_v) for a, b in zip(u, v)) / (len(u) - 1)

    s10 = [[cov(v10s[r], v10s[c], aucs[r], aucs[c]) for c in range(2)] for r in range(2)]
    s01 = [[cov(v01s[r], v01s[c], aucs[r], aucs[c]) for c in range(2)] for r in range(2)]
    var = ((s10[0][0] + s10[1][1] - 2 * s10[0][1]) / m
           + (s01[0][0] + s01[1][1] - 2 * s01[0][1]) / n)
    z = (aucs[0] - aucs[1]) / math.sqrt(var)
    return aucs, var, z, 2 * norm.sf(abs(z))


def test_delong_matches_explicit_loops_on_a_hand_case():
    y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0])
    sa = np.array([0.9, 0.3, 0.6, 0.4, 0.4, 0.1, 0.8, 0.7, 0.2])  # ties across classes
    sb = np.array([0.5, 0.5, 0.7, 0.2, 0.3, 0.4, 0.6, 0.1, 0.5])
    (auc_a, auc_b), var, z, p = _delong_by_loops(y, sa, sb)
    res = delong_test(y, sa, sb)
    assert res.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert res.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert res.diff == pytest.approx(auc_a - auc_b, abs=1e-12)
    assert res.var == pytest.approx(var, rel=1e-10)
    assert res.z == pytest.approx(z, rel=1e-10)
    assert res.p_value == pytest.approx(p, rel=1e-10)
    swapped = delong_test(y, sb, sa)
    assert swapped.diff == pytest.approx(-res.diff) and swapped.p_value == pytest.approx(p)


def test_delong_aucs_match_sklearn_and_detect_a_real_difference():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 300)
    good = y * 1.5 + rng.normal(size=300)
    weak = y * 0.3 + rng.normal(size=300)
    res = delong_test(y, good, weak)
    assert res.auc_a == pytest.approx(roc_auc_score(y, good), abs=1e-12)
    assert res.auc_b == pytest.approx(roc_auc_score(y, weak), abs=1e-12)
    assert res.p_value < 1e-4 and res.z > 0
    labels = np.where(y == 1, "covid", "healthy")
    named = delong_test(labels, good, weak, pos_label="covid")
    assert named.auc_a == pytest.approx(res.auc_a) and named.p_value == pytest.approx(res.p_value)
    flipped = delong_test(labels, good, weak)  # default positive: the larger label, "healthy"
    assert flipped.auc_a == pytest.approx(1 - res.auc_a)


def test_delong_identical_scores_and_bad_input():
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0])
    s = np.array([0.1, 0.8, 0.4, 0.35, 0.9, 0.2, 0.6, 0.65])
    res = delong_test(y, s, s.copy())
    assert res.diff == 0.0 and res.z == 0.0 and res.p_value == 1.0
    assert not any(math.isnan(v) for v in (res.var, res.z, res.p_value))
    with pytest.raises(DataError, match="two classes"):
        delong_test(np.ones(8), s, s)


# ---------------------------------------------------------------- summarise_seeds
def test_summarise_seeds_t_interval():
    out = summarise_seeds([1.0, 2.0, 3.0, 4.0, 5.0])
    assert out["n"] == 5 and out["mean"] == 3.0
    assert out["sd"] == pytest.approx(math.sqrt(2.5))
    half = 2.7764 * math.sqrt(2.5) / math.sqrt(5)  # t(0.975, 4 df) from the table
    assert out["ci_low"] == pytest.approx(3.0 - half, abs=1e-3)
    assert out["ci_high"] == pytest.approx(3.0 + half, abs=1e-3)
    one = summarise_seeds([0.9])
    assert one["mean"] == 0.9 and math.isnan(one["sd"]) and math.isnan(one["ci_low"])
    with pytest.raises(DataError):
        summarise_seeds([0.9, float("nan")])
    with pytest.raises(DataError):
        summarise_seeds([])


# ---------------------------------------------------------------- p-values that do not underflow
def test_two_sided_p_stays_positive_and_log10_p_is_finite_beyond_underflow():
    p12, log12 = normal_two_sided_p(12.0)
    assert p12 > 0 and p12 == pytest.approx(2 * norm.sf(12.0), rel=1e-12)
    assert log12 == pytest.approx(math.log10(p12), abs=1e-9)
    assert normal_two_sided_p(-12.0) == (p12, log12)
    p40, log40 = normal_two_sided_p(40.0)  # 2 * sf(40) ~ 7e-350: below the smallest double
    assert p40 == 0.0 and log40 == pytest.approx(-349.14, abs=0.01)
    assert normal_two_sided_p(0.0) == (1.0, 0.0)
    assert normal_two_sided_p(math.inf) == (0.0, -math.inf)


def test_delong_reports_log10_p():
    rng = np.random.default_rng(7)
    y = np.arange(400) % 2
    res = delong_test(y, y * 2.0 + rng.normal(size=400), rng.normal(size=400))
    assert 0 < res.p_value < 1e-20 and res.log10_p == pytest.approx(math.log10(res.p_value), abs=1e-9)


def test_format_p_never_prints_zero():
    assert format_p(0.025) == "0.025"
    assert format_p(0.5) == "0.5" and format_p(1.0) == "1"
    assert format_p(0.0012) == "0.0012"
    assert format_p(1.1e-9) == "1.1e-09"
    assert format_p(5e-324) == "4.9e-324"
    assert format_p(0.0) == "< 1e-300"
    assert format_p(0.0, normal_two_sided_p(40.0)[1]) == "7.3e-350"
    assert format_p(float("nan")) == "n/a"
    for p in [0.0, 1e-320, 1e-12, 4e-5, 0.00049, 0.0009999, 0.001, 0.04999, 0.9999]:
        text = format_p(p)
        assert text not in ("0", "0.0", "0.00", "0.000") and float(text.lstrip("< ")) > 0
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        format_p(1.5)


# ---------------------------------------------------------------- Holm
def test_holm_on_a_hand_example():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max so far 0.06
    adj = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])
    adj = holm([0.2, float("nan"), 0.01])  # NaN kept, not counted: m = 2
    np.testing.assert_allclose(adj, [0.2, np.nan, 0.02])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])
    with pytest.raises(ConfigError):
        holm([0.1, 1.2])


# ---------------------------------------------------------------- DeLong contrast over seeds
def test_delong_contrast_with_two_scores_is_delong_test():
    rng = np.random.default_rng(8)
    y = np.arange(120) % 2
    a, b = y * 1.0 + rng.normal(size=120), y * 0.6 + rng.normal(size=120)
    res, ref = delong_contrast(y, np.vstack([a, b]), [1, -1]), delong_test(y, a, b)
    assert res.estimate == pytest.approx(ref.diff, abs=1e-12)
    assert res.var == pytest.approx(ref.var, rel=1e-10) and res.p_value == pytest.approx(ref.p_value, rel=1e-10)


def test_delong_contrast_over_seeds_sharing_images_keeps_its_level():
    """Two equally good strategies, each with its own errors on particular images that every
    seed repeats: the per-seed differences are correlated through the shared test images. The
    contrast test of the mean difference rejects at about its level; Stouffer's z over the seeds'
    DeLong z (which assumes the seeds independent) far more often."""
    rng = np.random.default_rng(9)
    n, s = 80, 4
    y = np.arange(n) % 2
    rejections, stouffer = 0, 0
    for _ in range(150):
        u, va, vb = rng.normal(size=(3, n))  # image difficulty; each strategy's own image errors
        a = [y + u + va + 0.3 * rng.normal(size=n) for _ in range(s)]
        b = [y + u + vb + 0.3 * rng.normal(size=n) for _ in range(s)]
        res = delong_contrast(y, np.vstack(a + b), [1 / s] * s + [-1 / s] * s)
        rejections += res.p_value < 0.05
        z = sum(delong_test(y, ai, bi).z for ai, bi in zip(a, b)) / math.sqrt(s)
        stouffer += 2 * norm.sf(abs(z)) < 0.05
    assert rejections / 150 < 0.1
    assert stouffer > 2 * rejections


# ---------------------------------------------------------------- two-level bootstrap
def test_per_seed_auroc_matches_the_metrics_module():
    rng = np.random.default_rng(10)
    y = np.arange(60) % 2
    scores = [y * d + rng.normal(size=60) for d in (0.2, 1.0)]
    scores[0][:10] = 0.5  # ties
    np.testing.assert_allclose(per_seed_auroc(y, scores), [auroc(y, s) for s in scores], atol=1e-12)
    yk = np.arange(90) % 3
    probs = [rng.dirichlet(np.ones(3), 90) + 0.4 * np.eye(3)[yk] for _ in range(2)]
    probs = [p / p.sum(axis=1, keepdims=True) for p in probs]
    np.testing.assert_allclose(per_seed_auroc(yk, probs), [auroc(yk, p, "multiclass") for p in probs],
                               atol=1e-12)


def test_interval_stays_in_unit_range_with_two_very_different_seeds():
    rng = np.random.default_rng(11)
    y = np.arange(40) % 2
    scores = [y * 0.2 + rng.normal(size=40), y * 6.0 + rng.normal(size=40)]
    aurocs = per_seed_auroc(y, scores)
    assert aurocs[1] - aurocs[0] > 0.3 and aurocs[1] > 0.99
    t = summarise_seeds(aurocs)
    assert t["ci_high"] > 1  # the old t-interval leaves [0, 1]
    res = seed_image_bootstrap(y, scores, n_boot=500, seed=1)
    assert 0 <= res["ci_low"] <= res["mean"] <= res["ci_high"] <= 1
    assert res["mean"] == pytest.approx(aurocs.mean()) and res["n_seeds"] == 2 and res["n_images"] == 40
    assert res["method"].startswith("hierarchical")
    assert res["ci_low"] < aurocs[0] + 0.05  # the weak seed's value stays reachable


def test_image_draw_is_shared_across_seeds_and_one_seed_is_the_image_bootstrap():
    rng = np.random.default_rng(12)
    y = np.arange(100) % 2
    s = y * 0.8 + rng.normal(size=100)
    one = seed_image_bootstrap(y, [s], n_boot=300, seed=3)
    assert one["method"].startswith("image bootstrap (one seed")
    # three identical seeds: seed resampling changes nothing and the shared image draw gives every
    # replicate the single seed's value; independent draws per seed would narrow the interval
    three = seed_image_bootstrap(y, [s, s.copy(), s.copy()], n_boot=300, seed=3)
    assert three["ci_low"] == pytest.approx(one["ci_low"], abs=1e-12)
    assert three["ci_high"] == pytest.approx(one["ci_high"], abs=1e-12)
    direct = bootstrap_ci(y, s, roc_auc_score, n_boot=300, seed=3)
    assert three["ci_high"] - three["ci_low"] == pytest.approx(direct.high - direct.low, rel=0.3)


def test_interval_covers_the_population_auroc_in_a_simulation():
    """Scores = y * d_seed + image effect + seed noise with d_seed ~ N(1, 0.5) and both effects
    N(0, 0.5): the population mean AUROC is E[Phi(d / sqrt(2 * 0.5))]. 5 seeds, 100 images,
    50 replicates: the two-level interval covers it in 47 (nominal 47.5); resampling the images
    only (seed variation ignored) covers it in 34, one seed's image bootstrap less often still."""
    rng = np.random.default_rng(13)
    d = rng.normal(1.0, 0.5, 200_000)
    target = float(norm.cdf(d / math.sqrt(2 * 0.5)).mean())
    y = np.arange(100) % 2
    hits, image_only_hits = 0, 0
    for r in range(50):
        u = rng.normal(0, 0.5, 100)
        scores = [y * rng.normal(1.0, 0.5) + u + rng.normal(0, 0.5, 100) for _ in range(5)]
        res = seed_image_bootstrap(y, scores, n_boot=200, seed=r)
        hits += res["ci_low"] <= target <= res["ci_high"]
        one = seed_image_bootstrap(y, scores[:1], n_boot=200, seed=r)
        image_only_hits += one["ci_low"] <= target <= one["ci_high"]
    assert hits >= 42
    assert hits > image_only_hits


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(14)
    y = np.arange(150) % 2
    u = rng.normal(size=150)
    strong = [y * 1.6 + u + rng.normal(size=150) for _ in range(3)]
    weak = [y * 0.6 + u + rng.normal(size=150) for _ in range(3)]
    same = [y * 1.6 + u + rng.normal(size=150) for _ in range(3)]
    real = paired_seed_image_bootstrap(y, strong, weak, n_boot=400)
    assert real["ci_low"] > 0.05 and real["diff"] > real["ci_low"]
    null = paired_seed_image_bootstrap(y, strong, same, n_boot=400)
    assert null["ci_low"] < 0 < null["ci_high"] and abs(null["diff"]) < 0.05
    swapped = paired_seed_image_bootstrap(y, weak, strong, n_boot=400)
    assert swapped["diff"] == pytest.approx(-real["diff"]) and swapped["ci_high"] < 0
    with pytest.raises(ConfigError, match="same seeds"):
        paired_seed_image_bootstrap(y, strong, weak[:2])


def test_bootstrap_input_errors_say_what_to_fix():
    y = np.arange(10) % 2
    with pytest.raises(ConfigError, match="list of score arrays"):
        seed_image_bootstrap(y, np.zeros(10))
    with pytest.raises(ConfigError, match="n = 10"):
        seed_image_bootstrap(y, [np.zeros(9)])
    with pytest.raises(DataError, match="two classes"):
        seed_image_bootstrap(np.zeros(10), [np.zeros(10)])
    with pytest.raises(DataError, match="every class"):
        seed_image_bootstrap(np.zeros(10, dtype=int), [np.zeros((10, 3))])
