"""Experiment orchestration that the notebooks call: feature probes per cut, strategy grids.

Each function is resumable (trainings live in their own run folders and are read back) and
returns tidy pandas DataFrames; :mod:`ttl.experiments.plots` draws them.
"""

from ttl.experiments.compare import delong_runs, gpu_inference_table, run_scores
from ttl.experiments.curves import balanced_indices, best_cuts, block_layers, transferability_curves
from ttl.experiments.grid import StrategySpec, efficiency_table, run_strategies, summarise
from ttl.experiments.protocol import choose_cut, lrs_for, tune_lr, tune_strategy_lrs
from ttl.experiments.probe import feature_probe, probe_sources
from ttl.experiments.record import save_figure, save_table
from ttl.experiments.verdicts import choose_by_validation, paired_comparisons, summarise_runs, verdict

__all__ = ["StrategySpec", "balanced_indices", "best_cuts", "block_layers", "choose_by_validation", "choose_cut", "delong_runs",
           "efficiency_table", "feature_probe", "gpu_inference_table", "paired_comparisons", "probe_sources",
           "run_scores", "run_strategies", "save_figure", "save_table", "summarise", "summarise_runs",
           "lrs_for", "transferability_curves", "tune_lr", "tune_strategy_lrs", "verdict"]
