"""Train a grid of strategies x seeds on one dataset; summarise over seeds; measure model cost."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ttl.efficiency import count_flops, count_params, time_forward
from ttl.models import cut_info
from ttl.stats import summarise_seeds
from ttl.strategies import StrategySpec, prepare
from ttl.train import TrainConfig
from ttl.executors import Executor, make_executor
from ttl.train.runs import RunSpec, train_job

__all__ = ["StrategySpec", "efficiency_table", "run_strategies", "summarise"]


def run_dir_name(spec: StrategySpec, seed: int, lr: float = 1e-3) -> str:
    """The run folder of ``spec`` (relative to a base folder): :meth:`ttl.train.runs.RunSpec.folder`."""
    return _run_spec(spec, seed, lr).folder()


def _run_spec(spec: StrategySpec, seed: int, lr: float) -> RunSpec:
    return RunSpec(spec.name, spec.cut, spec.width, spec.slim_from, lr=float(lr), seed=int(seed))


def run_strategies(specs: list[StrategySpec], arch: str, source: str | os.PathLike, data: dict[str, Any],
                   cfg: TrainConfig, seeds: list[int] | tuple[int, ...], out_dir: str | Path,
                   data_params: dict[str, Any] | None = None, lrs: dict[str, float] | None = None,
                   desc: str | None = None, executor: str | Executor | None = None) -> pd.DataFrame:
    """Fit every ``spec`` with every seed (resumable: finished runs are read back).

    ``data`` holds the ``train``, ``val`` and ``test`` datasets; ``lrs`` maps a spec's label to its
    learning rate (default: ``cfg.lr``); ``executor`` runs the trainings (``local`` one after
    another, ``ray`` as Ray tasks: :mod:`ttl.executors`). One row per (spec, seed) with validation
    and test metrics, best epoch, epoch cap and stop reason, training time, parameter counts and the
    run folder (:func:`ttl.train.runs.train_job` files each run).
    """
    pairs = [(spec, seed, (lrs or {}).get(spec.label, cfg.lr)) for spec in specs for seed in seeds]
    jobs = [train_job(_run_spec(spec, seed, lr), arch, source, data, cfg, out_dir, data_params)
            for spec, seed, lr in pairs]
    outcomes = make_executor(executor).run(jobs, data, desc=desc or f"{arch} strategies", progress=cfg.progress)
    rows = []
    for (spec, seed, lr), res in zip(pairs, outcomes):
        test = res.metrics.get("test", {})
        rows.append({
            "strategy": spec.name, "label": spec.label, "cut": spec.cut or "full",
            "cut_index": cut_info(arch, spec.cut).index, "width": spec.width, "dataset": data["train"].name,
            "seed": seed, "lr": lr, "val_auroc": res.metrics["val"]["auroc"]["value"],
            "test_auroc": test.get("auroc", {}).get("value"), "test_auroc_low": test.get("auroc", {}).get("ci_low"),
            "test_auroc_high": test.get("auroc", {}).get("ci_high"),
            "test_auprc": test.get("auprc", {}).get("value"),
            "test_balanced_accuracy": test.get("balanced_accuracy", {}).get("value"),
            "best_epoch": res.best_epoch, "epochs_run": len(res.history), "epochs_cap": cfg.epochs,
            "stop_reason": res.stop_reason,
            "train_seconds": sum(r["seconds"] for r in res.history),
            "params": res.params, "trainable_params": res.trainable_params,
            "reused": res.reused, "run_dir": res.run_dir})
    return pd.DataFrame(rows)


def summarise(df: pd.DataFrame, value: str = "test_auroc", by: tuple[str, ...] = ("label",)) -> pd.DataFrame:
    """Mean, sd and t-interval over seeds of ``value`` per group, with the mean of the other numbers."""
    out = []
    for key, group in df.groupby(list(by), sort=False):
        s = summarise_seeds(group[value].astype(float).to_numpy())
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update({f"{value}_mean": s["mean"], f"{value}_sd": s["sd"], f"{value}_ci_low": s["ci_low"],
                    f"{value}_ci_high": s["ci_high"], "n_seeds": s["n"]})
        for col in ("strategy", "cut", "params", "trainable_params", "train_seconds"):
            if col in group and col not in row:
                numeric = pd.api.types.is_numeric_dtype(group[col])
                row[col] = float(group[col].mean()) if numeric else group[col].iloc[0]
        out.append(row)
    return pd.DataFrame(out)


def efficiency_table(specs: list[StrategySpec], arch: str, size: int = 224, device: str = "cpu",
                     repeats: int = 5, warmup: int = 2, latency: bool = True) -> pd.DataFrame:
    """Params, FLOPs and (optionally) batch-1 latency of each strategy's model (random weights)."""
    rows = []
    for spec in specs:
        model = prepare(spec.name, arch, cut=spec.cut, source="scratch", width=spec.width, slim_from=spec.slim_from)
        row = {"label": spec.label, **asdict(spec), "params": count_params(model),
               "flops": count_flops(model, size), "size": size}
        if latency:
            t = time_forward(model, 1, size, device, warmup=warmup, repeats=repeats)
            row.update(latency_ms=t.median_ms, device=t.device)
        rows.append(row)
    return pd.DataFrame(rows)
