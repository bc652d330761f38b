"""Verdicts a reviewer can check: seed summaries with two-level bootstrap intervals, paired
comparisons of one model against each alternative (bootstrap interval, DeLong, Holm), a stated
verdict rule, and choices of cut or learning rate by validation only.

Pure functions on arrays and DataFrames: no training. Scores come from the runs' predictions
on the test set (:func:`ttl.experiments.compare.run_scores`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ttl.errors import ConfigError, DataError
from ttl.stats import (delong_contrast, delong_test, format_p, holm, paired_seed_image_bootstrap,
                       per_seed_auroc, seed_image_bootstrap)

__all__ = ["CLAIMS", "VERDICTS", "choose_by_validation", "paired_comparisons", "summarise_runs", "verdict"]

CLAIMS = ("better", "not_worse")
VERDICTS = ("held", "tie (within noise)", "inconclusive", "refuted")

_COMBINED_P = ("DeLong contrast test of the mean AUROC difference over seeds (weights +1/S on the "
               "reference's seeds, -1/S on the other's), with the full covariance of the 2S AUROCs "
               "on the shared test images; conditional on the trained models (test-image variation "
               "only, the interval adds seed variation)")


def verdict(diff: float, ci_low: float, ci_high: float, claim: str = "better", margin: float = 0.02) -> str:
    """The verdict on the claim "the reference is ``claim`` than the other" from the interval of
    ``diff = AUROC(reference) - AUROC(other)``.

    Rule (checked in this order; ``margin`` is the equivalence margin in AUROC):

    - ``refuted``: the interval excludes 0 in the opposite direction (``ci_high < 0``);
    - ``held``: for ``claim="better"`` the interval excludes 0 in the claimed direction
      (``ci_low > 0``); for ``claim="not_worse"`` (non-inferiority) the interval lies above
      ``-margin`` (``ci_low > -margin``);
    - ``tie (within noise)`` (``claim="better"`` only; for ``not_worse`` a tie is ``held``):
      the interval contains 0 and lies inside ``(-margin, margin)``: the two are equivalent
      within the margin (the interval version of the two one-sided tests);
    - ``inconclusive``: anything else (the interval contains 0 and reaches past the margin),
      and any NaN input.
    """
    if claim not in CLAIMS:
        raise ConfigError(f"verdict: claim must be one of {CLAIMS}, got {claim!r}")
    if not (isinstance(margin, (int, float)) and margin >= 0 and math.isfinite(margin)):
        raise ConfigError(f"verdict: margin must be a finite number >= 0 (AUROC units), got {margin!r}")
    values = [float(v) for v in (diff, ci_low, ci_high)]
    if any(math.isnan(v) for v in values):
        return "inconclusive"
    _, low, high = values
    if low > high:
        raise ConfigError(f"verdict: ci_low ({low}) is above ci_high ({high}); pass them in order")
    if high < 0:
        return "refuted"
    if claim == "better":
        if low > 0:
            return "held"
        return "tie (within noise)" if -margin < low and high < margin else "inconclusive"
    return "held" if low > -margin else "inconclusive"


def _seed_list(scores_by_label: dict[str, Sequence[Any]], label: str) -> list[np.ndarray]:
    if label not in scores_by_label:
        raise ConfigError(f"no scores for {label!r}; labels with scores: {sorted(scores_by_label)}")
    scores = scores_by_label[label]
    if isinstance(scores, np.ndarray) and scores.ndim == 1:
        raise ConfigError(f"scores of {label!r}: pass a list with one score array per seed")
    return [np.asarray(s) for s in scores]


def _per_seed_delong(labels: np.ndarray, ref: list[np.ndarray], other: list[np.ndarray]) -> tuple[float, float, str]:
    """(combined z, combined p, per-seed p text) for binary scores; NaNs for multiclass."""
    if ref[0].ndim != 1:
        return math.nan, math.nan, "n/a (multiclass)"
    per_seed = [delong_test(labels, a, b) for a, b in zip(ref, other)]
    s = len(ref)
    combined = delong_contrast(labels, np.vstack(ref + other), [1 / s] * s + [-1 / s] * s)
    text = "; ".join(format_p(r.p_value, r.log10_p) for r in per_seed)
    return combined.z, combined.p_value, text


def paired_comparisons(labels: Any, scores_by_label: dict[str, Sequence[Any]], reference: str,
                       others: Sequence[str] | None = None, n_boot: int = 1000, seed: int = 0,
                       alpha: float = 0.05, claim: str = "better", margin: float = 0.02,
                       simultaneous: bool = True) -> pd.DataFrame:
    """The reference against each other label, seeds paired by index, on the same test images.

    ``scores_by_label[label]``: one score array per seed ((n,) binary, (n, k) multiclass), seed j
    of every label trained with the same seed. Per comparison: ``diff`` = mean over seeds of
    AUROC(reference) - AUROC(other); ``ci_low``/``ci_high`` its paired two-level percentile
    bootstrap interval (:func:`ttl.stats.paired_seed_image_bootstrap`), at level
    ``1 - alpha / m`` for the m comparisons when ``simultaneous`` (Bonferroni, so all verdicts
    hold together), else ``1 - alpha``; ``p_delong_per_seed`` DeLong's test on each seed;
    ``p_delong_combined`` DeLong's contrast test of the mean difference over seeds (binary only;
    it uses the covariance between seeds, which share test images, instead of combining per-seed
    p-values as if independent); ``p_holm`` Holm's adjustment of the combined p-values over the
    family of comparisons; ``verdict`` from :func:`verdict` on the interval.

    Columns: reference, other, auroc_reference, auroc_other, diff, ci_low, ci_high, ci_level,
    z_combined, p_delong_combined, p_holm, p_text (``p_holm`` formatted), p_delong_per_seed,
    n_seeds, n_images, claim, margin, verdict, method.
    """
    others = [k for k in scores_by_label if k != reference] if others is None else list(others)
    if not others:
        raise ConfigError(f"paired_comparisons: nothing to compare {reference!r} with; "
                          "give scores for at least one other label")
    if reference in others:
        raise ConfigError(f"paired_comparisons: {reference!r} is the reference; drop it from others")
    verdict(0.0, 0.0, 0.0, claim, margin)  # checks claim and margin before any work
    y = np.asarray(labels)
    ref = _seed_list(scores_by_label, reference)
    level_alpha = alpha / len(others) if simultaneous else alpha
    rows = []
    for name in others:
        other = _seed_list(scores_by_label, name)
        if len(other) != len(ref):
            raise ConfigError(f"paired_comparisons: {reference!r} has {len(ref)} seeds, {name!r} "
                              f"{len(other)}; pass the same seeds in the same order for both")
        boot = paired_seed_image_bootstrap(y, ref, other, n_boot=n_boot, seed=seed, alpha=level_alpha)
        z, p, per_seed = _per_seed_delong(y, ref, other)
        rows.append({"reference": reference, "other": name, "auroc_reference": boot["auroc_a"],
                     "auroc_other": boot["auroc_b"], "diff": boot["diff"], "ci_low": boot["ci_low"],
                     "ci_high": boot["ci_high"], "ci_level": 1 - level_alpha, "z_combined": z,
                     "p_delong_combined": p, "p_delong_per_seed": per_seed, "n_seeds": boot["n_seeds"],
                     "n_images": boot["n_images"], "claim": claim, "margin": margin,
                     "verdict": verdict(boot["diff"], boot["ci_low"], boot["ci_high"], claim, margin),
                     "method": f"interval: {boot['method']}; combined p: "
                               + (_COMBINED_P if boot["task"] == "binary" else "n/a for multiclass")})
    df = pd.DataFrame(rows)
    df.insert(df.columns.get_loc("p_delong_per_seed"), "p_holm", holm(df["p_delong_combined"].to_numpy()))
    df.insert(df.columns.get_loc("p_delong_per_seed"), "p_text",
              [format_p(p) for p in df["p_holm"]])
    return df


def choose_by_validation(df: pd.DataFrame, group_cols: Sequence[str], candidate_col: str = "cut",
                         value_col: str = "val_auroc", seed_col: str = "seed", tie_col: str | None = None,
                         report_cols: Sequence[str] = ()) -> pd.DataFrame:
    """Per group, the candidate with the highest mean ``value_col`` over seeds (validation only).

    Ties (equal means) go to the smallest ``tie_col``: by default ``cut_index`` (the shallower
    cut) when ``candidate_col == "cut"``, else the candidate itself (e.g. the smaller learning
    rate for ``candidate_col="lr"``). Only ``group_cols``, ``candidate_col``, ``tie_col``,
    ``seed_col`` and ``value_col`` are read for the choice; ``report_cols`` (e.g. ``test_auroc``)
    are averaged over the chosen candidate's seeds afterwards, to report, never to choose.

    Columns: group_cols, candidate_col, tie_col (if other), ``<value_col>_mean``,
    ``<value_col>_sd``, n_seeds, n_candidates, ``<report_col>_mean`` for each report column.
    """
    group_cols = list(group_cols)
    if value_col.startswith("test"):
        raise ConfigError(f"choose_by_validation: {value_col!r} is a test metric; choose on a "
                          "validation column such as 'val_auroc' and report test values via report_cols")
    if tie_col is None:
        tie_col = "cut_index" if candidate_col == "cut" else candidate_col
    needed = group_cols + [candidate_col, tie_col, value_col, seed_col]
    missing = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if missing:
        raise ConfigError(f"choose_by_validation: the frame lacks columns {missing}; "
                          f"it has {list(df.columns)}")
    if df[value_col].isna().any():
        bad = df.loc[df[value_col].isna(), group_cols + [candidate_col, seed_col]]
        raise DataError(f"choose_by_validation: {value_col} is missing for rows\n{bad.to_string()}")
    keys = group_cols + [candidate_col]
    dup = df.duplicated(keys + [seed_col])
    if dup.any():
        raise DataError(f"choose_by_validation: repeated (group, candidate, seed) rows:\n"
                        f"{df.loc[dup, keys + [seed_col]].to_string()}")
    tie_per = df.groupby(keys, sort=False, dropna=False)[tie_col].nunique()
    if (tie_per > 1).any():
        raise DataError(f"choose_by_validation: a candidate has several {tie_col} values: "
                        f"{tie_per[tie_per > 1].index.tolist()}")
    spec = {f"{value_col}_mean": (value_col, "mean"), f"{value_col}_sd": (value_col, "std"),
            "n_seeds": (seed_col, "nunique")}
    if tie_col not in keys:
        spec = {tie_col: (tie_col, "first"), **spec}
    agg = df.groupby(keys, sort=False, dropna=False).agg(**spec).reset_index()
    rows = []
    for _, cands in agg.groupby(group_cols, sort=False, dropna=False) if group_cols else [((), agg)]:
        ordered = cands.sort_values([f"{value_col}_mean", tie_col], ascending=[False, True], kind="stable")
        row = ordered.iloc[0].to_dict()
        row["n_candidates"] = len(cands)
        chosen = df
        for col in keys:
            chosen = chosen[chosen[col] == row[col]]
        for col in report_cols:
            row[f"{col}_mean"] = float(chosen[col].astype(float).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def _stop_reasons(values: pd.Series) -> str:
    counts = values.fillna("unknown").astype(str).value_counts()
    return ", ".join(f"{k}: {v}" for k, v in counts.items())


def summarise_runs(runs: pd.DataFrame, scores_by_label: dict[str, Sequence[Any]], labels: Any,
                   n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, value: str = "test_auroc",
                   label_col: str = "label", seed_col: str = "seed") -> pd.DataFrame:
    """Per label: mean and sd over seeds of the test AUROC with a two-level bootstrap interval.

    ``runs``: one row per (label, seed), as :func:`ttl.experiments.run_strategies` returns;
    ``scores_by_label[label]``: the test scores of that label's runs in ascending seed order
    (:func:`ttl.experiments.compare.run_scores`); ``labels``: the test labels. The AUROCs are
    recomputed from the scores (a warning when they differ from ``runs[value]`` by more than
    1e-4, e.g. scores in the wrong seed order). Interval: :func:`ttl.stats.seed_image_bootstrap`.

    Columns: label, ``<value>_mean``, ``<value>_sd``, ``<value>_ci_low``, ``<value>_ci_high``,
    n_seeds, n_images, method; ``best_epoch_mean`` when ``runs`` has ``best_epoch``;
    ``best_before_cap`` (fraction of runs whose best epoch, counted from 0 as :func:`ttl.train.fit`
    does, came before the last allowed epoch ``epochs_cap - 1``) when it also has ``epochs_cap``;
    ``stop_reasons`` (counts) when it has ``stop_reason``; the first strategy and cut and the mean
    params, trainable_params and train_seconds when present.
    """
    for col in (label_col, seed_col):
        if col not in runs.columns:
            raise ConfigError(f"summarise_runs: the runs frame lacks the {col!r} column")
    out = []
    for label, group in runs.groupby(label_col, sort=False):
        group = group.sort_values(seed_col)
        scores = _seed_list(scores_by_label, label)
        if len(scores) != len(group):
            raise DataError(f"summarise_runs: {label!r} has {len(group)} runs but {len(scores)} score arrays")
        boot = seed_image_bootstrap(labels, scores, n_boot=n_boot, seed=seed, alpha=alpha)
        if value in group.columns and group[value].notna().all():
            gap = np.abs(per_seed_auroc(labels, scores) - group[value].astype(float).to_numpy()).max()
            if gap > 1e-4:
                warnings.warn(f"summarise_runs: {label!r}: AUROC from the scores differs from runs[{value!r}] "
                              f"by {gap:.2g}; pass the scores in ascending seed order", RuntimeWarning,
                              stacklevel=2)
        row: dict[str, Any] = {label_col: label, f"{value}_mean": boot["mean"], f"{value}_sd": boot["sd_seeds"],
                               f"{value}_ci_low": boot["ci_low"], f"{value}_ci_high": boot["ci_high"],
                               "n_seeds": boot["n_seeds"], "n_images": boot["n_images"], "method": boot["method"]}
        if "best_epoch" in group.columns:
            row["best_epoch_mean"] = float(group["best_epoch"].mean())
            if "epochs_cap" in group.columns:
                # best_epoch counts from 0 in ttl.train.fit: the last allowed epoch is epochs_cap - 1
                row["best_before_cap"] = float((group["best_epoch"] < group["epochs_cap"] - 1).mean())
        if "stop_reason" in group.columns:
            row["stop_reasons"] = _stop_reasons(group["stop_reason"])
        for col in ("strategy", "cut"):
            if col in group.columns:
                row[col] = group[col].iloc[0]
        for col in ("params", "trainable_params", "train_seconds"):
            if col in group.columns:
                row[col] = float(group[col].mean())
        out.append(row)
    return pd.DataFrame(out)
