"""The study's training protocol: choices made on validation only, the same for every strategy.

- :func:`choose_cut`: a strategy's cut (TTL, LWFT, TransFusion, scratch) chosen among candidate
  cuts by the mean validation AUROC over seeds (ties to the shallower cut), never by test data.
- :func:`tune_lr`: a strategy's learning rate chosen from a small grid by validation AUROC.

Both train through :func:`ttl.experiments.grid.run_strategies`, so every trial is a run folder
that later grids read back instead of retraining.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from ttl.errors import ConfigError
from ttl.experiments.grid import run_strategies
from ttl.experiments.verdicts import choose_by_validation
from ttl.strategies import StrategySpec
from ttl.train import TrainConfig


def choose_cut(strategy: str, candidates: list[str], arch: str, source: str | os.PathLike, data: dict[str, Any],
               cfg: TrainConfig, seeds: list[int], out_dir: str | Path, width: float = 1.0,
               data_params: dict[str, Any] | None = None, lr: float | None = None,
               executor: Any = None) -> tuple[str, pd.DataFrame]:
    """Train ``strategy`` at every candidate cut with every seed; return the cut with the best mean
    validation AUROC over seeds and the trials (one row per cut and seed). ``executor``: where the
    trainings run (:func:`ttl.executors.make_executor`)."""
    if not candidates:
        raise ConfigError(f"choose_cut({strategy!r}): give at least one candidate cut")
    specs = [StrategySpec(strategy, cut, width=width) for cut in candidates]
    lrs = {s.label: lr for s in specs} if lr is not None else None
    trials = run_strategies(specs, arch, source, data, cfg, seeds, out_dir, data_params, lrs=lrs,
                            desc=f"{strategy}: cut on validation", executor=executor)
    chosen = choose_by_validation(trials, ["strategy"], candidate_col="cut", tie_col="cut_index")
    return str(chosen["cut"].iloc[0]), trials


def tune_lr(specs: list[StrategySpec], lrs: list[float], arch: str, source: str | os.PathLike,
            data: dict[str, Any], cfg: TrainConfig, seeds: list[int], out_dir: str | Path,
            data_params: dict[str, Any] | None = None, executor: Any = None) -> tuple[dict[str, float], pd.DataFrame]:
    """Train every spec at every learning rate of ``lrs`` with ``seeds``; return each spec's label
    -> the learning rate with the best mean validation AUROC (ties to the smaller rate) and the trials."""
    if not lrs or any(not lr > 0 for lr in lrs):
        raise ConfigError(f"tune_lr: learning rates must be a non-empty list of positive numbers, not {lrs!r}")
    frames = [run_strategies(specs, arch, source, data, cfg, seeds, out_dir, data_params,
                             lrs={s.label: lr for s in specs}, desc=f"lr {lr:g} on validation", executor=executor)
              for lr in lrs]
    trials = pd.concat(frames, ignore_index=True)
    chosen = choose_by_validation(trials, ["label"], candidate_col="lr")
    return {str(r["label"]): float(r["lr"]) for _, r in chosen.iterrows()}, trials


def tuning_specs(cut: str, width: float = 0.5) -> list[StrategySpec]:
    """One spec per strategy of the benchmark, at ``cut`` where the strategy takes one: the grid
    :func:`tune_strategy_lrs` tunes (scratch at ``cut`` stands for every scratch model)."""
    return [StrategySpec("full"), StrategySpec("ttl", cut), StrategySpec("scratch", cut), StrategySpec("lwft", cut),
            StrategySpec("transfusion", cut, width=width), StrategySpec("linear_probe", cut)]


def tune_strategy_lrs(lr_grid: list[float], cut: str, arch: str, source: str | os.PathLike, data: dict[str, Any],
                      cfg: TrainConfig, seeds: list[int], out_dir: str | Path, width: float = 0.5,
                      strategies: list[str] | None = None, executor: Any = None) -> tuple[dict[str, float], pd.DataFrame]:
    """The learning rate of every strategy (name -> rate), each chosen on validation from ``lr_grid``
    at ``cut`` (see :func:`tuning_specs`); ``strategies`` limits the grid to some of them."""
    specs = [s for s in tuning_specs(cut, width) if strategies is None or s.name in strategies]
    chosen, trials = tune_lr(specs, lr_grid, arch, source, data, cfg, seeds, out_dir, executor=executor)
    return {s.name: chosen[s.label] for s in specs}, trials


def lrs_for(specs: list[StrategySpec], by_strategy: dict[str, float]) -> dict[str, float]:
    """Label -> learning rate for ``specs`` from a strategy -> rate map (rates of absent strategies: default)."""
    return {s.label: by_strategy[s.name] for s in specs if s.name in by_strategy}
