"""Train a grid of strategies x seeds on one dataset; summarise over seeds; measure model cost."""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from ttl.efficiency import count_flops, count_params, time_forward
from ttl.models import cut_info
from ttl.stats import summarise_seeds
from ttl.strategies import StrategySpec, prepare
from ttl.train import TrainConfig, fit
from ttl.train.runs import run_params

__all__ = ["StrategySpec", "efficiency_table", "run_strategies", "summarise"]


def run_dir_name(spec: StrategySpec, seed: int) -> str:
    """``<strategy>/<cut>[-w<width>]-s<seed>``: TTL runs share folders with :mod:`ttl.search` trials
    (``ttl.search.hierarchical(out_dir=<base>/ttl)``), so a sweep after a search trains only what is missing."""
    cut = spec.cut or "full"
    width = f"-w{spec.width:g}" if spec.name == "transfusion" and spec.width != 1 else ""
    return f"{spec.name}/{cut}{width}-s{seed}"


def run_strategies(specs: list[StrategySpec], arch: str, source: str | os.PathLike, data: dict[str, Any],
                   cfg: TrainConfig, seeds: list[int] | tuple[int, ...], out_dir: str | Path,
                   data_params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Fit every ``spec`` with every seed (resumable: finished runs are read back).

    ``data`` holds the ``train``, ``val`` and ``test`` datasets. One row per (spec, seed) with
    validation and test metrics, training time, parameter counts and the run folder.
    """
    rows = []
    jobs = [(spec, seed) for spec in specs for seed in seeds]
    for spec, seed in tqdm(jobs, desc=f"{arch} strategies", disable=None):
        model = prepare(spec.name, arch, cut=spec.cut, num_classes=len(data["train"].classes), source=source,
                        width=spec.width, slim_from=spec.slim_from, seed=seed)
        params = run_params(spec.name, arch, spec.cut, source, spec.width, spec.slim_from,
                            len(data["train"].classes), data["train"].name, **(data_params or {}))
        run = Path(out_dir) / run_dir_name(spec, seed)
        res = fit(model, data["train"], data["val"], replace(cfg, seed=seed), out_dir=run,
                  test=data.get("test"), params=params)
        test = res.metrics.get("test", {})
        rows.append({
            "strategy": spec.name, "label": spec.label, "cut": spec.cut or "full",
            "cut_index": cut_info(arch, spec.cut).index, "width": spec.width, "dataset": data["train"].name,
            "seed": seed, "val_auroc": res.metrics["val"]["auroc"]["value"],
            "test_auroc": test.get("auroc", {}).get("value"), "test_auroc_low": test.get("auroc", {}).get("ci_low"),
            "test_auroc_high": test.get("auroc", {}).get("ci_high"),
            "test_auprc": test.get("auprc", {}).get("value"),
            "test_balanced_accuracy": test.get("balanced_accuracy", {}).get("value"),
            "best_epoch": res.best_epoch, "epochs_run": len(res.history),
            "train_seconds": sum(r["seconds"] for r in res.history),
            "params": count_params(res.model), "trainable_params": count_params(res.model, trainable_only=True),
            "reused": res.reused, "run_dir": str(run)})
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
