"""Calibrate the phantom generator: converged finetuning, frozen-feature probes and the shortcut audit.

Rerun with ``.venv/bin/python scripts/calibrate_phantoms.py --out /tmp/phantom_calibration.md``.
Every finished training is appended to ``<work>/runs.jsonl`` and skipped when the script is run
again, so an interrupted calibration resumes. Settings are those the book's profiles use: 64 px,
n_per_class {train: 300, val: 150, test: 150}, ResNet-18, AdamW lr 1e-3, cosine schedule over at
most 40 epochs, batch 32, flips, early stopping on validation AUROC with patience 6.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

N_PER_CLASS = {"train": 300, "val": 150, "test": 150}
# (strategy, cut, source) per level; TTL cuts at the depth the probes favour for each level
RUNS = {
    "low": [("full", None, "fractal"), ("ttl", "layer1.1", "fractal"), ("scratch", None, "scratch")],
    "mid": [("full", None, "fractal"), ("ttl", "layer2.1", "fractal"), ("scratch", None, "scratch")],
    "high": [("full", None, "fractal"), ("ttl", "layer3.1", "fractal"), ("scratch", None, "scratch")],
}


def _data(level: str, seed: int, contrast: float, cache_dir: str) -> dict[str, Any]:
    from ttl.data import load

    return {s: load(f"phantom-{level}", split=s, n_per_class=N_PER_CLASS[s], size=64, seed=seed,
                    contrast=contrast, cache_dir=cache_dir, progress=False) for s in N_PER_CLASS}


def train_one(level: str, strategy: str, cut: str | None, source: str, data: dict[str, Any],
              epochs: int, seed: int) -> dict[str, Any]:
    """One converged finetuning; returns the test AUROC, its CI and the best epoch."""
    from ttl.strategies import prepare
    from ttl.train import TrainConfig, fit

    model = prepare(strategy, "resnet18", cut=cut, source=source, seed=seed)
    cfg = TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, schedule="cosine", patience=6, device="cpu",
                      seed=seed, n_boot=500)
    t0 = time.time()
    res = fit(model, data["train"], data["val"], cfg, test=data["test"])
    test = res.metrics["test"]["auroc"]
    return {"level": level, "strategy": strategy, "cut": cut or "full", "source": source,
            "test_auroc": test["value"], "ci_low": test["ci_low"], "ci_high": test["ci_high"],
            "val_auroc": res.metrics["val"]["auroc"]["value"], "best_epoch": res.best_epoch,
            "epochs_run": len(res.history), "wall_s": round(time.time() - t0, 1)}


def probe_table(levels: list[str], seed: int, contrast: float, cache_dir: str) -> pd.DataFrame:
    """Linear probes of frozen fractal and random features at every cut; the best cut per level."""
    from ttl.experiments.probe import probe_sources

    rows = []
    for level in levels:
        d = _data(level, seed, contrast, cache_dir)
        df = probe_sources("resnet18", ["fractal", "scratch"], d["train"], d["test"], device="cpu", n_boot=200)
        df["level"] = level
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", default="low,mid,high")
    ap.add_argument("--work", default="/tmp/phantom_calibration", help="folder for runs.jsonl and the data cache")
    ap.add_argument("--out", default="/tmp/phantom_calibration.md")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--contrast", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None, help="strategies to train, e.g. full,ttl (default: all)")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-probe", action="store_true")
    ap.add_argument("--skip-audit", action="store_true")
    args = ap.parse_args()

    import torch

    from ttl.data import phantoms
    from ttl.data.audit import format_table, shortcut_audit

    torch.set_num_threads(args.threads)
    levels = args.levels.split(",")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cache = str(work / "cache")
    log = work / "runs.jsonl"
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    only = set(args.only.split(",")) if args.only else None
    sections = [f"# Phantom calibration (generator version {phantoms.GENERATOR_VERSION}, contrast {args.contrast})\n"]

    if not args.skip_train:
        order = [(lv, r) for i in range(3) for lv in levels for r in RUNS[lv][i:i + 1]]  # full first
        for level, (strategy, cut, source) in order:
            if only and strategy not in only:
                continue
            key = dict(level=level, strategy=strategy, cut=cut or "full", source=source)
            if any(all(r.get(k) == v for k, v in key.items()) and r.get("contrast") == args.contrast
                   and r.get("generator_version") == phantoms.GENERATOR_VERSION for r in done):
                continue
            row = train_one(level, strategy, cut, source, _data(level, args.seed, args.contrast, cache),
                            args.epochs, args.seed)
            row.update(contrast=args.contrast, generator_version=phantoms.GENERATOR_VERSION)
            print(json.dumps(row), flush=True)
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            done.append(row)
    runs = pd.DataFrame([r for r in done if r.get("contrast") == args.contrast
                         and r.get("generator_version") == phantoms.GENERATOR_VERSION])
    if len(runs):
        cols = ["level", "strategy", "cut", "source", "test_auroc", "ci_low", "ci_high", "val_auroc",
                "best_epoch", "epochs_run", "wall_s"]
        sections.append("## Converged finetuning (test AUROC, 95% bootstrap CI)\n\n"
                        + runs[cols].to_markdown(index=False, floatfmt=".3f") + "\n")
    if not args.skip_probe:
        probes = probe_table(levels, args.seed, args.contrast, cache)
        best = probes.loc[probes.groupby(["level", "source"])["auroc"].idxmax(),
                          ["level", "source", "cut", "cut_index", "auroc", "auroc_low", "auroc_high"]]
        wide = probes.pivot_table(index="cut", columns=["level", "source"], values="auroc", sort=False)
        sections.append("## Frozen-feature linear probes (test AUROC per cut)\n\n"
                        + wide.to_markdown(floatfmt=".3f") + "\n\nBest cut per level and source:\n\n"
                        + best.to_markdown(index=False, floatfmt=".3f") + "\n")
        print(best.to_string(index=False), flush=True)
    if not args.skip_audit:
        for level in levels:
            table = shortcut_audit(level, n_per_class=300, size=64, contrast=args.contrast, seed=args.seed)
            print(format_table(table), flush=True)
            sections.append(f"## Shortcut audit, phantom-{level}\n\n```\n{format_table(table)}\n```\n")
    Path(args.out).write_text("\n".join(sections))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
