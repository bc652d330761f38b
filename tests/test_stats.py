"""Bootstrap CIs, DeLong's test (against explicit pairwise loops) and seed summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from ttl.errors import DataError
from ttl.stats import bootstrap_ci, delong_test, summarise_seeds


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
