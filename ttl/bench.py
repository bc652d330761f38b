"""Benchmarks: ``ttl bench infer`` (cost of every cut) and ``ttl bench train`` (finetuning speed).

``train`` measures images/s of the real finetuning path (uint8 dataset -> on-device augmentation
-> the :class:`~ttl.train.engine.TrainStep` that :func:`ttl.train.fit` builds with
:func:`ttl.train.loop.make_step`: autocast, class-weighted loss, AdamW, gradient scaler for fp16,
the per-batch cosine scheduler) and of the pure-compute bound (the same step on one batch already
on the device), with medians over repeats after warm-up, and the peak GPU memory. Results are
JSON with provenance; on a CPU-only machine they say so.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from ttl.efficiency import count_flops, count_params, time_forward
from ttl.models import build, cut_points
from ttl.train.batches import DeviceBatches, Preprocess
from ttl.train.loop import TrainConfig, make_step, resolve_device


def bench_infer(arch: str, cuts: list[str] | None = None, size: int = 224, device: str = "auto",
                latency_batch: int = 1, throughput_batch: int = 64, warmup: int = 3, repeats: int = 10,
                dtype: str = "float32", progress: bool | None = None) -> list[dict[str, Any]]:
    """Params, FLOPs, batch-1 latency and batch-N throughput for each cut of ``arch``."""
    dev = resolve_device(device)
    amp = {"float32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    cuts = cuts or cut_points(arch)
    full_flops = count_flops(build(arch, None, num_classes=2, source="scratch"), size)
    rows = []
    for cut in tqdm(cuts, desc=f"{arch} cuts", disable=None if progress is None else not progress):
        model = build(arch, cut, num_classes=2, source="scratch").eval()
        flops = count_flops(model, size)
        lat = time_forward(model, latency_batch, size, dev, warmup, repeats, dtype=amp)
        thr = time_forward(model, throughput_batch, size, dev, warmup, repeats, dtype=amp)
        rows.append({"arch": arch, "cut": cut, "params": count_params(model), "flops": flops,
                     "flops_ratio": flops / full_flops, "latency_ms": lat.median_ms,
                     "latency_p90_ms": lat.p90_ms, "throughput_img_s": thr.images_per_s,
                     "device": str(dev), "size": size, "dtype": dtype,
                     "latency_batch": latency_batch, "throughput_batch": throughput_batch})
    return rows


class _UInt8Set:
    """A synthetic uint8 image set shaped like a decoded cache (for the data path)."""

    def __init__(self, n: int, size: int, channels: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        self.classes, self.task, self.name = ["a", "b"], "binary", "synthetic-uint8"


def _steps_per_s(step: Callable[[], None], n_steps: int, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(n_steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n_steps / (time.perf_counter() - t0)


def bench_train(arch: str = "resnet50", cut: str | None = None, size: int = 224, batch: int = 128,
                device: str = "auto", amp: str = "bf16", channels_last: bool = True, compile: bool = False,
                steps: int = 20, warmup: int = 5, repeats: int = 3, dataset_images: int = 2048,
                channels: int = 1, seed: int = 0, dataset: Any = None) -> dict[str, Any]:
    """Images/s of the real finetuning path and of the pure-compute bound, and their ratio."""
    dev = resolve_device(device)
    if dev.type == "cpu":
        amp, channels_last = "off", False
    torch.manual_seed(seed)
    model = build(arch, cut, num_classes=2, source="scratch").to(dev)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = dataset or _UInt8Set(dataset_images, size, channels, seed)
    prep = Preprocess(size, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), augment=("random-resized-crop", "hflip"),
                      channels_last=channels_last)
    batches = DeviceBatches(data, batch, dev, prep, shuffle=True, seed=seed, drop_last=True)
    # fit's own step (loss, optimizer, scaler, per-batch scheduler), over a schedule long enough
    # that the learning rate never reaches zero while timing
    cfg = TrainConfig(lr=1e-4, weight_decay=1e-4, amp=amp, compile=compile, epochs=10_000, batch_size=batch,
                      channels_last=channels_last, device=str(dev), seed=seed)
    step = make_step(model, data, cfg, dev, max(1, len(batches)))
    x0 = torch.randn(batch, 3, size, size, device=dev)
    if channels_last:
        x0 = x0.contiguous(memory_format=torch.channels_last)
    y0 = torch.randint(0, 2, (batch,), device=dev)

    state = {"it": iter(()), "epoch": 0}

    def real_step() -> None:
        try:
            x, y = next(state["it"])
        except StopIteration:
            state["epoch"] += 1
            state["it"] = iter(batches.epoch(state["epoch"]))
            x, y = next(state["it"])
        step(x, y)

    def bound_step() -> None:
        step(x0, y0)

    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    model.train()
    results: dict[str, list[float]] = {"real": [], "bound": []}
    # two interleaved rounds (bound, real, bound, real) so that drifts in clock or temperature hit both
    rounds = [(repeats + 1) // 2, repeats // 2]
    for n_timed, name, fn in ((rounds[0], "bound", bound_step), (rounds[0], "real", real_step),
                              (rounds[1], "bound", bound_step), (rounds[1], "real", real_step)):
        if n_timed:
            _steps_per_s(fn, warmup, dev)
        for _ in range(n_timed):
            results[name].append(_steps_per_s(fn, steps, dev) * batch)
    real = statistics.median(results["real"])
    bound = statistics.median(results["bound"])
    out = {"arch": arch, "cut": cut or "full", "size": size, "batch": batch, "device": str(dev),
           "amp": amp, "channels_last": channels_last, "compile": compile, "steps": steps,
           "repeats": len(results["real"]), "real_img_s": real, "bound_img_s": bound, "ratio": real / bound,
           "real_samples": results["real"], "bound_samples": results["bound"],
           "data_resident_on_device": batches.resident, "params": count_params(model)}
    if dev.type == "cuda":
        out["peak_memory_gb"] = torch.cuda.max_memory_allocated(dev) / 2**30
        out["gpu"] = torch.cuda.get_device_name(dev)
    else:
        out["note"] = "measured on the CPU (no CUDA GPU available): not the GPU figures"
    return out


def _workers(executor: Any) -> dict[str, Any]:
    """What the Ray cluster offered (CPUs, GPUs), as Ray reports it."""
    try:
        import ray

        res = ray.cluster_resources()
        return {"cpus": res.get("CPU"), "gpus": res.get("GPU", 0.0),
                "cpus_per_task": getattr(executor, "cpus_per_task", None),
                "gpus_per_task": getattr(executor, "gpus_per_task", None),
                "threads_per_task": getattr(executor, "threads_per_task", None)
                or max(1, int(getattr(executor, "cpus_per_task", 1)))}
    except Exception:  # not a Ray executor, or Ray gone
        return {}


def bench_sweep(arch: str, dataset: str = "phantom-mid", source: str = "fractal", epochs: int = 2,
                batch: int = 64, size: int | None = None, n_per_class: Any = None, contrast: float | None = None,
                seeds: tuple[int, ...] = (0,), device: str = "auto", out_dir: str = "runs/bench-sweep",
                fresh: bool = True, executor: Any = None) -> dict[str, Any]:
    """Wall time of the exhaustive sweep over every cut versus the two-stage hierarchical search.

    Each procedure trains in its own folder (``fresh`` empties them first), so neither reuses the
    other's trials: the wall times are what a user pays for each alone. With an ``executor`` other
    than local (``ray``), both procedures run once more through it, in folders of their own, and
    ``executors`` reports both wall times, the speed-up and whether the choices agree.
    """
    import shutil
    from pathlib import Path

    from ttl.data import load
    from ttl.search import compare, exhaustive, hierarchical
    from ttl.train import TrainConfig

    overrides: dict[str, Any] = {k: v for k, v in {"size": size, "n_per_class": n_per_class,
                                                   "contrast": contrast}.items() if v is not None}
    data = {s: load(dataset, split=s, progress=False, **overrides) for s in ("train", "val", "test")}
    cfg = TrainConfig(epochs=epochs, batch_size=batch, device=device, n_boot=200, progress=False)
    from ttl.executors import make_executor

    def procedures(base: Path, how: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        summary, results = {}, {}
        for kind, fn in (("hierarchical", hierarchical), ("exhaustive", exhaustive)):
            folder = base / kind
            if fresh and folder.exists():
                shutil.rmtree(folder)
            t0 = time.perf_counter()
            res = fn(data["train"], data["val"], arch, source, cfg, folder, test=data["test"], seeds=seeds,
                     data_params=overrides, executor=how)
            results[kind] = res
            # wall time without the untimed warm-up the first procedure runs (see ttl.search)
            summary[kind] = {"wall_s": time.perf_counter() - t0 - res.cost["warmup_seconds"],
                             "chosen_cut": res.chosen_cut, "chosen_val": res.chosen_val,
                             "chosen_test": (res.chosen_test or {}).get("mean"), "cost": res.cost,
                             "cuts_trained": sorted({t.cut for t in res.trials}, key=cut_points(arch).index)}
        return summary, results

    out, results = procedures(Path(out_dir), None)
    out["compare"] = compare(results["hierarchical"], results["exhaustive"])
    out["wall_ratio"] = out["hierarchical"]["wall_s"] / out["exhaustive"]["wall_s"]
    other = make_executor(executor)
    if other.name != "local":
        if hasattr(other, "start"):
            other.start()  # Ray's start-up is not billed to the first procedure
        remote, remote_results = procedures(Path(out_dir) / other.name, other)
        out["executors"] = {
            "local": {k: out[k]["wall_s"] for k in ("hierarchical", "exhaustive")},
            other.name: {k: remote[k]["wall_s"] for k in ("hierarchical", "exhaustive")},
            "speedup": {k: out[k]["wall_s"] / remote[k]["wall_s"] for k in ("hierarchical", "exhaustive")},
            "same_choice": all(remote[k]["chosen_cut"] == out[k]["chosen_cut"] for k in remote),
            "same_validation": all([t.val for t in remote_results[k].trials] == [t.val for t in results[k].trials]
                                   for k in remote),
            "workers": _workers(other)}
    out.update(arch=arch, dataset=dataset, source=source, epochs=epochs, batch=batch, seeds=list(seeds),
               device=str(resolve_device(device)), data=overrides)
    if torch.cuda.is_available() and out["device"].startswith("cuda"):
        out["gpu"] = torch.cuda.get_device_name(0)
    return out
