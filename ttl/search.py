"""Where to cut: the two-stage hierarchical search of Peng et al. and the exhaustive sweep.

:func:`hierarchical` first trains at the stage boundaries (after ``layer1`` .. ``layer4`` of a
ResNet, after each transition / the last dense block of a DenseNet), then refines inside the best
boundary's neighbourhood and picks the cut with the best **validation** metric (mean over seeds).
Test metrics are computed for the chosen cut only (and for every trial only with
``test_all=True``, for reporting; they never take part in the choice). :func:`exhaustive` trains
every cut. Both are resumable and share their trial folders: a trial lives in
``out_dir/<cut>-lr<lr>-s<seed>/`` (:meth:`ttl.train.runs.RunSpec.name`; TTL at the last cut is full
TL, in ``out_dir/../full/``) and :func:`ttl.train.fit` reads a finished one back instead of
training again, so a sweep run after a search (same ``out_dir``) only trains the missing cuts.

Cost is counted as if every trial was trained (the seconds recorded when it was), in two ways:
``train_seconds``, the sum of the per-epoch times in the trials' histories (training steps plus
the per-epoch validation), and ``wall_seconds``, the sum of each trial's wall time (model
building, training, the final evaluations and writing its folder). Neither includes the one-off
warm-up of a process (CUDA context, cuDNN autotuning, first loads of the weights, allocator):
before the first trial it trains, a procedure runs an explicit, untimed warm-up, one epoch of the
deepest cut on a few training batches, and reports its duration as ``warmup_seconds``.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ttl.errors import ConfigError
from ttl.models.cuts import CutInfo, cut_info, feature_info, stage_boundaries
from ttl.provenance import atomic_write_json, read_json, write_result
from ttl.train import TrainConfig, evaluate, fit, resolve_device
from ttl.strategies import cut_strategies
from ttl.train.runs import RunSpec, run_job, run_params

METRICS = ("auroc", "auprc", "balanced_accuracy", "f1", "loss")
NEIGHBOURHOODS = ("stage", "adjacent")
SUMMARY = {"hierarchical": "search.json", "exhaustive": "exhaustive.json"}
TRIAL_COST = "trial_cost.json"  # a trial's wall time, written next to its result.json
_WARMED: set[tuple[Any, ...]] = set()  # (arch, strategy, source, device, training config) warmed up


@dataclass
class Trial:
    """One training of one cut with one seed."""

    cut: str
    cut_index: int
    stage: int
    seed: int
    phase: str  # "stage1" | "stage2" | "sweep"
    val: float | None
    test: float | None = None
    train_seconds: float = 0.0
    params: int = 0
    trainable_params: int = 0
    best_epoch: int = -1
    reused: bool = False
    run_dir: str = ""
    wall_seconds: float | None = None  # None: trained before wall times were recorded


@dataclass
class SearchResult:
    """A search's (or sweep's) choice, every trial and what it cost."""

    kind: str  # "hierarchical" | "exhaustive"
    arch: str
    strategy: str
    source: str
    metric: str
    chosen_cut: str
    chosen_val: float | None  # mean validation metric over seeds
    trials: list[Trial]
    cost: dict[str, Any]
    chosen_test: dict[str, Any] | None = None  # {"mean", "per_seed", "metrics"} when a test set was given
    stage1: list[str] = field(default_factory=list)
    stage2: list[str] = field(default_factory=list)
    best_boundary: str | None = None
    neighbourhood: str | int | None = None
    seeds: list[int] = field(default_factory=list)
    path: Path | None = None

    @property
    def higher_is_better(self) -> bool:
        return self.metric != "loss"

    @property
    def df(self) -> pd.DataFrame:
        """One row per trial."""
        rows = []
        for t in self.trials:
            row = asdict(t)
            row[f"val_{self.metric}"] = row.pop("val")
            row[f"test_{self.metric}"] = row.pop("test")
            row["chosen"] = t.cut == self.chosen_cut
            rows.append(row)
        return pd.DataFrame(rows)

    def per_cut(self) -> pd.DataFrame:
        """Mean (and sd) over seeds of the validation metric per cut, in cut order."""
        df = self.df
        val = f"val_{self.metric}"
        out = (df.groupby(["cut_index", "cut", "stage"], sort=True)
               .agg(**{f"{val}_mean": (val, "mean"), f"{val}_sd": (val, "std"), "n_seeds": ("seed", "count"),
                       "train_seconds": ("train_seconds", "sum"), "params": ("params", "first"),
                       "phase": ("phase", "first")})
               .reset_index())
        out["chosen"] = out["cut"] == self.chosen_cut
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "arch": self.arch, "strategy": self.strategy, "source": self.source,
                "metric": self.metric, "higher_is_better": self.higher_is_better,
                "chosen_cut": self.chosen_cut, "chosen_val": self.chosen_val, "chosen_test": self.chosen_test,
                "stage1": self.stage1, "stage2": self.stage2, "best_boundary": self.best_boundary,
                "neighbourhood": self.neighbourhood, "seeds": self.seeds, "cost": self.cost,
                "trials": [asdict(t) for t in self.trials]}


def read_search(path: str | os.PathLike) -> SearchResult:
    """A :class:`SearchResult` read back from its ``search.json`` / ``exhaustive.json``."""
    doc = read_json(path)
    keys = ("kind", "arch", "strategy", "source", "metric", "chosen_cut", "chosen_val", "cost", "chosen_test",
            "stage1", "stage2", "best_boundary", "neighbourhood", "seeds")
    return SearchResult(trials=[Trial(**t) for t in doc["trials"]], path=Path(path),
                        **{k: doc.get(k) for k in keys})


# ---------------------------------------------------------------------------------------------
# one trial
# ---------------------------------------------------------------------------------------------

@dataclass
class _Context:
    train: Any
    val: Any
    test: Any
    arch: str
    source: str | os.PathLike
    cfg: TrainConfig
    out_dir: Path
    strategy: str
    metric: str
    test_all: bool
    data_params: dict[str, Any]
    done: dict[tuple[str, int], Trial] = field(default_factory=dict)
    trained_now: int = 0
    warmup_seconds: float = 0.0
    executor: Any = None  # ttl.executors: None/local trains each trial here, in order
    remote: dict[str, Any] = field(default_factory=dict)  # run folder -> RunOutcome of a remote training


def _metric_value(metrics: dict[str, Any], metric: str) -> float | None:
    if metric == "loss":
        return float(metrics["loss"])
    value = metrics.get(metric, {}).get("value")
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _num_classes(dataset: Any) -> int:
    return len(dataset.classes)


def _as_trained(ctx: _Context, cut: str) -> tuple[str, str | None]:
    """The (strategy, cut) a trial trains: TTL at the network's last cut *is* full TL, filed as
    ``full`` so grids and searches share that run."""
    if ctx.strategy == "ttl" and cut == feature_info(ctx.arch)[-1].name:
        return "full", None
    return ctx.strategy, cut


def _model_spec(ctx: _Context, cut: str) -> dict[str, Any]:
    # the same parameter blocks as `ttl train` and ttl.experiments, so run folders are interchangeable
    strategy, trained_cut = _as_trained(ctx, cut) if cut != "-" else (ctx.strategy, cut)
    return run_params(strategy, ctx.arch, trained_cut, ctx.source, 0.5 if strategy == "transfusion" else 1.0,
                      None, _num_classes(ctx.train), getattr(ctx.train, "name", "unnamed"), **ctx.data_params)


def _trial_run(ctx: _Context, cut: str, seed: int) -> Path:
    strategy, trained_cut = _as_trained(ctx, cut)
    if strategy != ctx.strategy:  # the full network: <base>/full/..., beside <base>/ttl/...
        return trial_dir(ctx.out_dir.parent / strategy, trained_cut, seed, ctx.cfg.lr, strategy)
    return trial_dir(ctx.out_dir, cut, seed, ctx.cfg.lr, ctx.strategy)


def trial_dir(out_dir: str | os.PathLike, cut: str, seed: int, lr: float = 1e-3, strategy: str = "ttl") -> Path:
    """Where the trial of ``cut`` with ``seed`` lives: ``out_dir/<RunSpec.name()>``, with ``out_dir``
    the strategy's folder under a base runs folder (``<base>/ttl``), exactly where
    :func:`ttl.train.runs.get_or_train` files the same training."""
    width = 0.5 if strategy == "transfusion" else 1.0
    return Path(out_dir) / RunSpec(strategy, cut, width, lr=float(lr), seed=int(seed)).name()


def _prepare_model(ctx: _Context, cut: str, seed: int) -> Any:
    from ttl.strategies import prepare

    strategy, trained_cut = _as_trained(ctx, cut)
    m = _model_spec(ctx, cut)["model"]
    return prepare(strategy, ctx.arch, cut=trained_cut, num_classes=m["num_classes"], source=ctx.source,
                   width=m["width"], slim_from=m["slim_from"], seed=seed)



def _head(dataset: Any, n: int) -> Any:
    """A shallow copy of ``dataset`` holding ``n`` of its images, evenly spaced (so classes stored in
    blocks are all represented)."""
    idx = np.unique(np.linspace(0, len(dataset) - 1, min(n, len(dataset))).round().astype(np.int64))
    sub = copy.copy(dataset)
    sub.images = dataset.images[idx]
    sub.labels = dataset.labels[idx]
    return sub


def _warm_up(ctx: _Context) -> None:
    """Untimed warm-up before the first trial a process trains with this configuration: one epoch
    of the deepest cut on two training batches (and a validation batch), no folder written. It pays
    the one-off costs (CUDA context and kernels, cuDNN autotuning of every layer shape, first load
    of the weights) that would otherwise be billed to whichever trial comes first."""
    cfg = replace(ctx.cfg, epochs=1, n_boot=0, patience=0, progress=False)
    key = (ctx.arch, ctx.strategy, str(ctx.source), str(resolve_device(cfg.device)),
           tuple(sorted((k, repr(v)) for k, v in asdict(replace(cfg, seed=0)).items())))
    if key in _WARMED:
        return
    t0 = time.perf_counter()
    model = _prepare_model(ctx, feature_info(ctx.arch)[-1].name, ctx.cfg.seed)
    fit(model, _head(ctx.train, 2 * cfg.batch_size), _head(ctx.val, cfg.batch_size), cfg)
    _WARMED.add(key)
    ctx.warmup_seconds += time.perf_counter() - t0


def _finished(run: Path) -> bool:
    return (run / "result.json").exists() and (run / "model.pt").exists()


def _run_trial(ctx: _Context, cut: str, seed: int, phase: str) -> Trial:
    if (cut, seed) in ctx.done:
        return ctx.done[(cut, seed)]
    from ttl.efficiency import count_params

    run = _trial_run(ctx, cut, seed)
    remote = ctx.remote.pop(str(run), None)  # trained by the executor: read back here, counted as trained
    if not _finished(run):
        _warm_up(ctx)
    t0 = time.perf_counter()
    info = cut_info(ctx.arch, cut)
    cfg = replace(ctx.cfg, seed=seed)
    res = run_job(_trial_job(ctx, cut, seed), _splits(ctx))  # the run layer's one path to a training
    test_value = None
    if ctx.test_all and ctx.test is not None:
        test_metrics = res.metrics.get("test") or evaluate(res.model, ctx.test, cfg)
        test_value = _metric_value(test_metrics, ctx.metric)
    wall: float | None = time.perf_counter() - t0
    if remote is not None and not remote.reused:  # trained now, by a worker: its wall time
        res.reused, wall = False, remote.wall_seconds
        atomic_write_json(run / TRIAL_COST, {"wall_seconds": wall})
    elif res.reused:  # the wall time recorded when it was trained
        wall = read_json(run / TRIAL_COST).get("wall_seconds") if (run / TRIAL_COST).exists() else None
    else:
        atomic_write_json(run / TRIAL_COST, {"wall_seconds": wall})
    trial = Trial(cut=info.name, cut_index=info.index, stage=info.stage, seed=seed, phase=phase,
                  val=_metric_value(res.metrics["val"], ctx.metric), test=test_value,
                  train_seconds=float(sum(r.get("seconds", 0.0) for r in res.history)),
                  params=count_params(res.model), trainable_params=count_params(res.model, trainable_only=True),
                  best_epoch=int(res.best_epoch), reused=bool(res.reused), run_dir=str(run), wall_seconds=wall)
    ctx.trained_now += int(not res.reused)
    ctx.done[(cut, seed)] = trial
    return trial


def _splits(ctx: _Context) -> dict[str, Any]:
    """The search's datasets as the run layer takes them (``train``, ``val``, ``test`` when given)."""
    return {"train": ctx.train, "val": ctx.val, **({"test": ctx.test} if ctx.test is not None else {})}


def _trial_job(ctx: _Context, cut: str, seed: int) -> Any:
    """The trial as a :class:`ttl.train.runs.TrainJob` (for an executor), filed where
    :func:`_run_trial` reads it back."""
    from ttl.train.runs import TrainJob

    strategy, trained_cut = _as_trained(ctx, cut)
    m = _model_spec(ctx, cut)
    spec = RunSpec(strategy, trained_cut, m["model"]["width"], m["model"]["slim_from"], lr=float(ctx.cfg.lr),
                   seed=int(seed))
    return TrainJob(spec, ctx.arch, str(ctx.source), replace(ctx.cfg, seed=seed), str(_trial_run(ctx, cut, seed)),
                    m, score_test=ctx.test_all and ctx.test is not None)


def _run_remote(ctx: _Context, jobs: Sequence[tuple[str, int]], desc: str) -> None:
    """Train a phase's unfinished trials at once on the executor (each stage is one batch of tasks)."""
    todo = [(c, s) for c, s in jobs if not _finished(_trial_run(ctx, c, s))]
    if not todo:
        return
    trial_jobs = [_trial_job(ctx, c, s) for c, s in todo]
    outcomes = ctx.executor.run(trial_jobs, _splits(ctx), desc=desc, progress=ctx.cfg.progress)
    for job, outcome in zip(trial_jobs, outcomes):
        ctx.remote[job.run_dir] = outcome


def _run_phase(ctx: _Context, cuts: Sequence[str], seeds: Sequence[int], phase: str, desc: str) -> list[Trial]:
    jobs = [(c, s) for c in cuts for s in seeds if (c, s) not in ctx.done]
    if ctx.executor is not None and getattr(ctx.executor, "name", "local") != "local":
        _run_remote(ctx, jobs, desc)
    bar = tqdm(jobs, desc=desc, disable=None if ctx.cfg.progress is None else not ctx.cfg.progress)
    for cut, seed in bar:
        bar.set_postfix(cut=cut, seed=seed)
        _run_trial(ctx, cut, seed, phase)
    bar.close()
    return [ctx.done[(c, s)] for c in cuts for s in seeds]


# ---------------------------------------------------------------------------------------------
# choice, cost, test of the choice
# ---------------------------------------------------------------------------------------------

def _cut_means(trials: Sequence[Trial]) -> dict[str, tuple[int, float]]:
    """cut -> (cut index, mean validation value over seeds; NaN when undefined)."""
    by: dict[str, list[float]] = {}
    idx: dict[str, int] = {}
    for t in trials:
        by.setdefault(t.cut, []).append(np.nan if t.val is None else t.val)
        idx[t.cut] = t.cut_index
    return {c: (idx[c], float(np.mean(v))) for c, v in by.items()}


def best_cut(trials: Sequence[Trial], higher_is_better: bool = True) -> tuple[str, float | None]:
    """The cut with the best mean validation value; ties go to the shallower (cheaper) cut."""
    means = _cut_means(trials)
    if not means:
        raise ConfigError("no trials to choose from")
    sign = 1.0 if higher_is_better else -1.0

    def key(item: tuple[str, tuple[int, float]]) -> tuple[float, int]:
        _, (index, value) = item
        return (-math.inf if math.isnan(value) else sign * value, -index)

    cut, (_, value) = max(means.items(), key=key)
    return cut, None if math.isnan(value) else value


def _cost(ctx: _Context, trials: Sequence[Trial]) -> dict[str, Any]:
    """What the trials cost, each as recorded when it was trained, warm-up excluded.

    ``train_seconds``: sum of the per-epoch times (training plus per-epoch validation);
    ``wall_seconds``: sum of the trials' wall times (None when a trial has none recorded);
    ``warmup_seconds``: the untimed warm-up this call ran (0 when the process was already warm).
    """
    device = resolve_device(ctx.cfg.device).type
    seconds = float(sum(t.train_seconds for t in trials))
    walls = [t.wall_seconds for t in trials]
    return {"trainings": len(trials), "trained_now": ctx.trained_now,
            "reused": sum(t.reused for t in trials), "train_seconds": seconds,
            "wall_seconds": None if any(w is None for w in walls) else float(sum(walls)),
            "warmup_seconds": ctx.warmup_seconds,
            "warm_up": "explicit, untimed: one epoch of the deepest cut on two batches before the first trial",
            "device": device, "unit": "GPU-seconds" if device == "cuda" else "CPU-seconds",
            "epochs_per_training": ctx.cfg.epochs}


def _test_choice(ctx: _Context, cut: str, seeds: Sequence[int]) -> dict[str, Any] | None:
    """Test metrics of the chosen cut, one model per seed (read back from its trial folder)."""
    if ctx.test is None:
        return None
    from ttl.train.runs import load_run

    per_seed: dict[str, float | None] = {}
    full: dict[str, Any] = {}
    for seed in seeds:
        model, _ = load_run(_trial_run(ctx, cut, seed))
        metrics = evaluate(model, ctx.test, replace(ctx.cfg, seed=seed))
        full[str(seed)] = metrics
        per_seed[str(seed)] = _metric_value(metrics, ctx.metric)
    values = [v for v in per_seed.values() if v is not None]
    return {"cut": cut, "metric": ctx.metric, "mean": float(np.mean(values)) if values else None,
            "per_seed": per_seed, "metrics": full}


def _check(arch: str, strategy: str, metric: str, seeds: Sequence[int]) -> list[int]:
    feature_info(arch)  # ConfigError for an unknown architecture
    if strategy not in cut_strategies():  # every registered strategy that takes a cut
        raise ConfigError(f"search: strategy {strategy!r} has no cut to search; use one of "
                          f"{', '.join(cut_strategies())}")
    if metric not in METRICS:
        raise ConfigError(f"search: metric must be one of {', '.join(METRICS)}, not {metric!r}")
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"search: seeds must be a non-empty list of distinct integers, not {seeds}")
    return seeds


def neighbourhood_cuts(arch: str, boundary: str, neighbourhood: str | int = "stage") -> list[str]:
    """The cuts refined in stage 2 around the best stage ``boundary``.

    ``"stage"``: every cut of the boundary's stage (the paper's second step). ``"adjacent"``: every
    cut strictly between the neighbouring boundaries (the chosen stage and the next one; from the
    stem on for the first stage), where the optimum lies if the metric is unimodal in depth.
    An integer ``r``: the cuts within ``r`` positions of the boundary.
    """
    infos = feature_info(arch)
    b = cut_info(arch, boundary)
    if isinstance(neighbourhood, int) and not isinstance(neighbourhood, bool):
        if neighbourhood < 0:
            raise ConfigError("search: a neighbourhood radius must be >= 0")
        return [c.name for c in infos if abs(c.index - b.index) <= neighbourhood]
    if neighbourhood == "stage":
        return [c.name for c in infos if c.stage == b.stage]
    if neighbourhood == "adjacent":
        bounds = [cut_info(arch, c).index for c in stage_boundaries(arch)]
        k = bounds.index(b.index)
        low = bounds[k - 1] if k > 0 else -1
        high = bounds[k + 1] if k + 1 < len(bounds) else len(infos)
        return [c.name for c in infos if low < c.index < high]
    raise ConfigError(f"search: neighbourhood must be one of {', '.join(NEIGHBOURHOODS)} or an integer radius, "
                      f"not {neighbourhood!r}")


def _summary_params(ctx: _Context, kind: str, seeds: Sequence[int], **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "arch": ctx.arch, "strategy": ctx.strategy, "source": str(ctx.source),
            "metric": ctx.metric, "seeds": list(seeds), "test_all": ctx.test_all, "train": asdict(ctx.cfg),
            "data": _model_spec(ctx, "-")["data"], **extra}


# ---------------------------------------------------------------------------------------------
# the two procedures
# ---------------------------------------------------------------------------------------------

def _executor(executor: Any) -> Any:
    from ttl.executors import make_executor

    return make_executor(executor)


def hierarchical(train: Any, val: Any, arch: str, source: str | os.PathLike, cfg: TrainConfig,
                 out_dir: str | os.PathLike, strategy: str = "ttl", test: Any = None,
                 seeds: Sequence[int] = (0,), neighbourhood: str | int = "stage", metric: str = "auroc",
                 test_all: bool = False, data_params: dict[str, Any] | None = None,
                 executor: Any = None) -> SearchResult:
    """Two-stage cut search: stage boundaries first, then the best boundary's neighbourhood.

    The chosen cut has the best mean validation ``metric`` over ``seeds`` among all trials
    (higher is better, except ``"loss"``); ties go to the shallower cut. ``test`` is evaluated
    for the chosen cut only (every trial too with ``test_all``, never for the choice).
    Writes ``out_dir/search.json``; rerunning reuses every finished trial. ``executor``
    (:func:`ttl.executors.make_executor`: ``local``, ``ray`` or an executor) trains each stage's
    trials; with Ray they run at once as tasks, stage by stage.
    """
    seeds = _check(arch, strategy, metric, seeds)
    neighbourhood_cuts(arch, stage_boundaries(arch)[0], neighbourhood)  # validate early
    t0 = time.perf_counter()
    ctx = _Context(train, val, test, arch, source, cfg, Path(out_dir), strategy, metric, test_all,
                   dict(data_params or {}), executor=_executor(executor))
    higher = metric != "loss"
    stage1 = stage_boundaries(arch)
    first = _run_phase(ctx, stage1, seeds, "stage1", f"{arch} search: stage boundaries")
    boundary, _ = best_cut(first, higher)
    stage2 = neighbourhood_cuts(arch, boundary, neighbourhood)
    _run_phase(ctx, stage2, seeds, "stage2", f"{arch} search: around {boundary}")
    trials = sorted(ctx.done.values(), key=lambda t: (t.cut_index, t.seed))
    chosen, chosen_val = best_cut(trials, higher)
    result = SearchResult("hierarchical", arch, strategy, str(source), metric, chosen, chosen_val, trials,
                          _cost(ctx, trials), _test_choice(ctx, chosen, seeds), stage1, stage2, boundary,
                          neighbourhood, seeds)
    params = _summary_params(ctx, "hierarchical", seeds, neighbourhood=neighbourhood)
    result.path = write_result(ctx.out_dir / SUMMARY["hierarchical"], result.as_dict(), params,
                               device=resolve_device(cfg.device),
                               wall_time_s=time.perf_counter() - t0 - ctx.warmup_seconds)
    return result


def exhaustive(train: Any, val: Any, arch: str, source: str | os.PathLike, cfg: TrainConfig,
               out_dir: str | os.PathLike, strategy: str = "ttl", test: Any = None,
               seeds: Sequence[int] = (0,), metric: str = "auroc", test_all: bool = False,
               data_params: dict[str, Any] | None = None, cuts: Sequence[str] | None = None,
               executor: Any = None) -> SearchResult:
    """Train every cut (or ``cuts``) with every seed; choose like :func:`hierarchical`.

    Writes ``out_dir/exhaustive.json``; shares trial folders with a search in the same ``out_dir``.
    ``executor`` as in :func:`hierarchical` (with Ray, the whole sweep is one batch of tasks).
    """
    seeds = _check(arch, strategy, metric, seeds)
    names = [cut_info(arch, c).name for c in cuts] if cuts is not None else [c.name for c in feature_info(arch)]
    t0 = time.perf_counter()
    ctx = _Context(train, val, test, arch, source, cfg, Path(out_dir), strategy, metric, test_all,
                   dict(data_params or {}), executor=_executor(executor))
    trials = _run_phase(ctx, names, seeds, "sweep", f"{arch} sweep: every cut")
    trials = sorted(trials, key=lambda t: (t.cut_index, t.seed))
    chosen, chosen_val = best_cut(trials, metric != "loss")
    result = SearchResult("exhaustive", arch, strategy, str(source), metric, chosen, chosen_val, trials,
                          _cost(ctx, trials), _test_choice(ctx, chosen, seeds), seeds=seeds)
    result.path = write_result(ctx.out_dir / SUMMARY["exhaustive"], result.as_dict(),
                               _summary_params(ctx, "exhaustive", seeds, cuts=names),
                               device=resolve_device(cfg.device),
                               wall_time_s=time.perf_counter() - t0 - ctx.warmup_seconds)
    return result


# ---------------------------------------------------------------------------------------------
# comparison and plot
# ---------------------------------------------------------------------------------------------

def compare(hier: SearchResult, exh: SearchResult) -> dict[str, Any]:
    """Did the search find the sweep's best cut? Its rank, the metric gaps and the cost ratios.

    Cost: ``search_seconds``/``sweep_seconds``/``seconds_ratio`` are training seconds (the sum of
    the per-epoch times, the figure to quote); ``*_wall_seconds``/``wall_ratio`` the trials' wall
    times. Both are warm-up free and count every trial as it was first trained.

    Gaps are "how much worse the search's choice is" (>= 0 on validation by construction when
    both share their trials): ``val_gap`` from the sweep's per-cut means, ``test_gap`` between the
    two choices' test means (when both have one).
    """
    for attr in ("arch", "metric", "strategy"):
        if getattr(hier, attr) != getattr(exh, attr):
            raise ConfigError(f"compare: the two results differ in {attr} "
                              f"({getattr(hier, attr)!r} vs {getattr(exh, attr)!r})")
    sign = 1.0 if exh.higher_is_better else -1.0
    means = _cut_means(exh.trials)
    ranked = sorted(means, key=lambda c: (-(sign * means[c][1]) if not math.isnan(means[c][1]) else math.inf,
                                          means[c][0]))
    choice = hier.chosen_cut
    best_val = exh.chosen_val
    choice_val = means[choice][1] if choice in means else hier.chosen_val
    val_gap = None if best_val is None or choice_val is None else sign * (best_val - choice_val)
    test_gap = None
    ht, et = (hier.chosen_test or {}).get("mean"), (exh.chosen_test or {}).get("mean")
    if ht is not None and et is not None:
        test_gap = sign * (et - ht)
    hc, ec = hier.cost, exh.cost
    hw, ew = hc.get("wall_seconds"), ec.get("wall_seconds")
    return {"metric": exh.metric, "search_choice": choice, "sweep_best": exh.chosen_cut,
            "found_best": choice == exh.chosen_cut,
            "rank_in_sweep": ranked.index(choice) + 1 if choice in ranked else None, "n_cuts": len(ranked),
            "search_val": choice_val, "sweep_best_val": best_val, "val_gap": val_gap,
            "search_test": ht, "sweep_best_test": et, "test_gap": test_gap,
            "search_trainings": hc["trainings"], "sweep_trainings": ec["trainings"],
            "trainings_ratio": hc["trainings"] / ec["trainings"] if ec["trainings"] else None,
            "search_seconds": hc["train_seconds"], "sweep_seconds": ec["train_seconds"],
            "seconds_ratio": hc["train_seconds"] / ec["train_seconds"] if ec["train_seconds"] else None,
            "search_wall_seconds": hw, "sweep_wall_seconds": ew,
            "wall_ratio": hw / ew if hw is not None and ew else None,
            "unit": ec.get("unit")}


def plot_search(hier: SearchResult, exh: SearchResult | None = None, ax: Any = None) -> Any:
    """Validation metric per cut: the sweep as a line (seeds as dots), the search's trials
    highlighted (squares: stage boundaries, circles: refinement), both choices starred."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 3.5))
    infos: list[CutInfo] = list(feature_info(hier.arch))
    label = hier.metric.upper() if hier.metric in ("auroc", "auprc", "f1") else hier.metric.replace("_", " ")
    if exh is not None:
        means = _cut_means(exh.trials)
        xs = sorted(v[0] for v in means.values())
        ys = [next(v[1] for v in means.values() if v[0] == x) for x in xs]
        ax.plot(xs, ys, color="0.4", marker=".", label=f"sweep (mean of {len(exh.seeds or [0])} seeds)")
        ax.scatter([t.cut_index for t in exh.trials], [np.nan if t.val is None else t.val for t in exh.trials],
                   s=8, color="0.7", zorder=1)
        best = means[exh.chosen_cut]
        ax.scatter([best[0]], [best[1]], marker="*", s=220, color="tab:green", zorder=4,
                   label=f"sweep best: {exh.chosen_cut}")
    hmeans = _cut_means(hier.trials)
    for phase, marker, color, name in (("stage1", "s", "tab:blue", "search: stage boundaries"),
                                       ("stage2", "o", "tab:orange", "search: refinement")):
        cuts = sorted({t.cut for t in hier.trials if t.phase == phase}, key=lambda c: hmeans[c][0])
        if cuts:
            ax.scatter([hmeans[c][0] for c in cuts], [hmeans[c][1] for c in cuts], marker=marker, s=60,
                       facecolors="none", edgecolors=color, linewidths=1.8, zorder=3, label=name)
    chosen = hmeans[hier.chosen_cut]
    ax.scatter([chosen[0]], [chosen[1]], marker="*", s=120, color="tab:red", zorder=5,
               label=f"search choice: {hier.chosen_cut}")
    ax.set_xticks([c.index for c in infos])
    ax.set_xticklabels([c.name for c in infos], rotation=45, ha="right")
    ax.set_xlabel("cut")
    ax.set_ylabel(f"validation {label}")
    ax.legend(frameon=False, fontsize=8, loc="best")
    return ax
