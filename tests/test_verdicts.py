"""Verdict rule, paired comparisons against each alternative, choice by validation and seed
summaries with two-level bootstrap intervals (small simulated score sets; one tiny real grid)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from tiny import tiny_dataset
from ttl.errors import ConfigError, DataError
from ttl.experiments import (choose_by_validation, delong_runs, paired_comparisons, run_scores, run_strategies,
                             summarise_runs, verdict)
from ttl.stats import delong_test, format_p, holm, per_seed_auroc
from ttl.strategies import StrategySpec
from ttl.train import TrainConfig


# ---------------------------------------------------------------- verdict rule
@pytest.mark.parametrize("low, high, claim, expected", [
    (0.01, 0.08, "better", "held"),
    (-0.08, -0.01, "better", "refuted"),
    (-0.01, 0.015, "better", "tie (within noise)"),
    (-0.01, 0.05, "better", "inconclusive"),
    (-0.03, 0.01, "better", "inconclusive"),
    (-0.015, 0.05, "not_worse", "held"),  # non-inferior within the margin
    (0.01, 0.05, "not_worse", "held"),
    (-0.05, 0.01, "not_worse", "inconclusive"),
    (-0.01, -0.001, "not_worse", "refuted"),  # worse beyond noise, even if by little
])
def test_verdict_rule(low, high, claim, expected):
    assert verdict((low + high) / 2, low, high, claim, margin=0.02) == expected


def test_verdict_margin_and_bad_input():
    assert verdict(0.0, -0.01, 0.015, "better", margin=0.005) == "inconclusive"
    assert verdict(math.nan, math.nan, math.nan) == "inconclusive"
    with pytest.raises(ConfigError, match="claim"):
        verdict(0.0, -0.1, 0.1, "worse")
    with pytest.raises(ConfigError, match="margin"):
        verdict(0.0, -0.1, 0.1, margin=-0.02)
    with pytest.raises(ConfigError, match="in order"):
        verdict(0.0, 0.1, -0.1)


# ---------------------------------------------------------------- paired comparisons
def _scores(seed: int = 0, n: int = 150, seeds: int = 3) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    u = rng.normal(size=n)  # image difficulty shared by every model

    def model(d: float) -> list[np.ndarray]:
        return [y * d + u + rng.normal(size=n) for _ in range(seeds)]

    return y, {"ttl": model(1.6), "full": model(0.6), "lwft": model(1.6)}


def test_paired_comparisons_against_each_alternative():
    y, scores = _scores()
    df = paired_comparisons(y, scores, "ttl", n_boot=400)
    assert list(df.columns[:9]) == ["reference", "other", "auroc_reference", "auroc_other", "diff", "ci_low",
                                    "ci_high", "ci_level", "z_combined"]
    for col in ("p_delong_combined", "p_holm", "p_text", "p_delong_per_seed", "n_seeds", "n_images", "verdict",
                "method"):
        assert col in df.columns
    assert list(df["other"]) == ["full", "lwft"] and (df["n_seeds"] == 3).all()
    full, lwft = df.iloc[0], df.iloc[1]
    assert full["verdict"] == "held" and full["ci_low"] > 0 and full["p_delong_combined"] < 1e-3
    assert lwft["verdict"] in ("tie (within noise)", "inconclusive")
    assert lwft["ci_low"] < 0 < lwft["ci_high"] and lwft["p_delong_combined"] > 0.05
    np.testing.assert_allclose(df["p_holm"], holm(df["p_delong_combined"]))
    assert df["ci_level"].iloc[0] == pytest.approx(1 - 0.05 / 2)  # Bonferroni over 2 comparisons
    assert "0.0" not in set(df["p_text"]) and len(full["p_delong_per_seed"].split("; ")) == 3
    expected = np.mean(per_seed_auroc(y, scores["ttl"]) - per_seed_auroc(y, scores["full"]))
    assert full["diff"] == pytest.approx(expected, abs=1e-12)
    wider = paired_comparisons(y, scores, "ttl", n_boot=400, simultaneous=False)
    assert (wider["ci_high"] - wider["ci_low"] < df["ci_high"] - df["ci_low"]).all()


def test_one_seed_combined_p_is_delong_and_multiclass_has_no_p():
    y, scores = _scores(seeds=1)
    df = paired_comparisons(y, scores, "full", others=["ttl"], n_boot=200, claim="not_worse")
    ref = delong_test(y, scores["full"][0], scores["ttl"][0])
    assert df["p_delong_combined"].iloc[0] == pytest.approx(ref.p_value, rel=1e-10)
    assert df["verdict"].iloc[0] == "refuted" and df["method"].iloc[0].startswith("interval: paired image bootstrap")
    rng = np.random.default_rng(3)
    yk = np.arange(90) % 3
    probs = {name: [rng.dirichlet(np.ones(3), 90) + w * np.eye(3)[yk] for _ in range(2)]
             for name, w in (("a", 1.0), ("b", 0.1))}
    mc = paired_comparisons(yk, probs, "a", n_boot=200)
    assert mc["ci_low"].iloc[0] > 0 and mc["verdict"].iloc[0] == "held"
    assert math.isnan(mc["p_delong_combined"].iloc[0]) and mc["p_text"].iloc[0] == "n/a"


def test_paired_comparisons_input_errors():
    y, scores = _scores()
    with pytest.raises(ConfigError, match="no scores for 'tl'"):
        paired_comparisons(y, scores, "tl")
    with pytest.raises(ConfigError, match="same seeds"):
        paired_comparisons(y, {**scores, "full": scores["full"][:2]}, "ttl")
    with pytest.raises(ConfigError, match="at least one other"):
        paired_comparisons(y, {"ttl": scores["ttl"]}, "ttl")


# ---------------------------------------------------------------- choice by validation
def test_choose_by_validation_ignores_test_values():
    rows = []
    # task A: layer2 best on validation, layer3 best on test; task B: a tie on validation
    for seed in (0, 1):
        rows += [dict(task="A", cut="layer1", cut_index=1, seed=seed, val_auroc=0.80, test_auroc=0.70),
                 dict(task="A", cut="layer2", cut_index=2, seed=seed, val_auroc=0.90 + seed * 0.02, test_auroc=0.75),
                 dict(task="A", cut="layer3", cut_index=3, seed=seed, val_auroc=0.85, test_auroc=0.99),
                 dict(task="B", cut="layer3", cut_index=3, seed=seed, val_auroc=0.88, test_auroc=0.95),
                 dict(task="B", cut="layer1", cut_index=1, seed=seed, val_auroc=0.88, test_auroc=0.60)]
    df = pd.DataFrame(rows)
    chosen = choose_by_validation(df, ["task"], report_cols=["test_auroc"]).set_index("task")
    assert chosen.loc["A", "cut"] == "layer2" and chosen.loc["A", "val_auroc_mean"] == pytest.approx(0.91)
    assert chosen.loc["A", "test_auroc_mean"] == pytest.approx(0.75)  # reported, not chosen on
    assert chosen.loc["B", "cut"] == "layer1"  # tie on validation: the shallower cut
    assert chosen.loc["A", "n_seeds"] == 2 and chosen.loc["A", "n_candidates"] == 3
    # shuffling the test column changes nothing in the choice
    shuffled = df.assign(test_auroc=df["test_auroc"].to_numpy()[::-1])
    again = choose_by_validation(shuffled, ["task"]).set_index("task")
    assert list(again["cut"]) == list(chosen["cut"])
    with pytest.raises(ConfigError, match="test metric"):
        choose_by_validation(df, ["task"], value_col="test_auroc")


def test_choose_learning_rate_by_validation():
    df = pd.DataFrame([dict(cut="layer2", lr=lr, seed=s, val_auroc=v, test_auroc=t)
                       for lr, v, t in ((1e-4, 0.90, 0.99), (1e-3, 0.93, 0.80), (1e-2, 0.93, 0.85))
                       for s in (0, 1, 2)])
    chosen = choose_by_validation(df, ["cut"], candidate_col="lr")
    assert chosen["lr"].iloc[0] == 1e-3 and chosen["n_seeds"].iloc[0] == 3  # tie 1e-3/1e-2: the smaller
    with pytest.raises(ConfigError, match="lacks columns"):
        choose_by_validation(df, ["task"], candidate_col="lr")
    with pytest.raises(DataError, match="missing"):
        choose_by_validation(df.assign(val_auroc=np.nan), ["cut"], candidate_col="lr")


# ---------------------------------------------------------------- seed summaries
def test_summarise_runs_with_bootstrap_interval_and_training_stats():
    y, scores = _scores(seeds=2)
    runs = pd.DataFrame([dict(label=label, strategy=label, seed=seed, best_epoch=best, epochs_cap=10,
                              stop_reason=reason, params=1e6,
                              test_auroc=per_seed_auroc(y, scores[label])[i])
                         for label in ("ttl", "full")
                         for i, (seed, best, reason) in enumerate(((0, 3, "patience"), (1, 9, "epoch_cap")))])
    out = summarise_runs(runs, scores, y, n_boot=300).set_index("label")
    for label in ("ttl", "full"):
        row = out.loc[label]
        aurocs = per_seed_auroc(y, scores[label])
        assert row["test_auroc_mean"] == pytest.approx(aurocs.mean())
        assert row["test_auroc_sd"] == pytest.approx(aurocs.std(ddof=1))
        assert 0 <= row["test_auroc_ci_low"] <= row["test_auroc_mean"] <= row["test_auroc_ci_high"] <= 1
        assert row["n_seeds"] == 2 and row["n_images"] == 150
        assert row["best_epoch_mean"] == 6 and row["best_before_cap"] == 0.5  # epoch 9 is the last of 10
        assert row["stop_reasons"] == "patience: 1, epoch_cap: 1"
    swapped = {"ttl": scores["ttl"][::-1], "full": scores["full"]}
    with pytest.warns(RuntimeWarning, match="ascending seed order"):
        summarise_runs(runs, swapped, y, n_boot=50)
    with pytest.raises(DataError, match="2 runs but 1 score"):
        summarise_runs(runs, {"ttl": scores["ttl"][:1], "full": scores["full"]}, y, n_boot=50)


def test_run_scores_from_a_tiny_grid_feed_the_summary(tmp_path):
    data = {"train": tiny_dataset(32, size=16, seed=1), "val": tiny_dataset(16, size=16, seed=2),
            "test": tiny_dataset(24, size=16, seed=3)}
    specs = [StrategySpec("linear_probe", "stem"), StrategySpec("ttl", "stem")]
    cfg = TrainConfig(epochs=1, batch_size=16, n_boot=0, progress=False, image_size=16)
    runs = run_strategies(specs, "resnet18", "scratch", data, cfg, [0, 1], tmp_path)
    labels, scores = run_scores(runs, data["test"])
    assert list(scores) == list(runs["label"].unique()) and all(len(v) == 2 for v in scores.values())
    for label, group in runs.groupby("label"):
        np.testing.assert_allclose(per_seed_auroc(labels, scores[label]), group.sort_values("seed")["test_auroc"],
                                   atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        summary = summarise_runs(runs, scores, labels, n_boot=50)
    assert list(summary["n_seeds"]) == [2, 2]
    first = runs[runs["seed"] == 0].set_index("label")["run_dir"]
    one = delong_runs(first.iloc[0], first.iloc[1], data["test"])
    ref = delong_test(labels, scores[first.index[0]][0], scores[first.index[1]][0])
    assert one["p_value"] == pytest.approx(ref.p_value) and one["log10_p"] == pytest.approx(ref.log10_p)
    assert one["p_text"] == format_p(ref.p_value, ref.log10_p)
    with pytest.raises(DataError, match="different seeds"):
        run_scores(runs[~((runs["label"] == runs["label"].iloc[0]) & (runs["seed"] == 1))], data["test"])
