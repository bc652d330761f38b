"""Fit and evaluate: AdamW, cosine or plateau schedule, early stopping on validation AUROC,
class-weighted loss, bf16 autocast and channels_last on GPU, a checkpoint every epoch (an
interrupted run resumes where it stopped), and ``result.json`` with full provenance.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ttl.errors import ConfigError, TrainingDivergedError
from ttl.metrics import compute_metrics, scores_from_logits
from ttl.provenance import (atomic_torch_save, atomic_write, atomic_write_json, params_hash, read_json,
                            remove_orphan_temps, write_result)
from ttl.seeding import seed_everything
from ttl.train.batches import DeviceBatches, Preprocess
from ttl.train.engine import (amp_dtype, autocast, finite_weights, make_train_step, save_checkpoint,
                              train_one_epoch)
from ttl.train.engine import make_optimizer  # noqa: F401  (re-exported: callers import it from here)
from ttl.models.data_config import DataConfig
from ttl.train.inputs import check_fit_inputs, input_pipeline, resolve_data_config
from ttl.train.lock import run_lock
from ttl.train.resume import finished, finished_weights, read_checkpoint, recorded_input, restore


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved in ``result.json``)."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # "cosine" | "plateau" | "constant"
    patience: int = 5  # early stopping on validation AUROC; 0 disables
    class_weighted: bool = True
    image_size: int | None = None  # None: the dataset's own size
    # None: the dataset manifest's list (phantoms: flips only, as crops can cut a lesion off);
    # True: random resized crop; False: none; or a tuple of names from ttl.train.batches.AUGMENTATIONS
    augment: bool | tuple[str, ...] | None = None
    amp: str = "auto"  # "auto" (bf16 on CUDA, off on CPU) | "bf16" | "fp16" | "off"
    channels_last: bool | None = None  # None: on CUDA only
    compile: bool = False
    device: str = "auto"
    seed: int = 0
    n_boot: int = 1000
    progress: bool | None = None  # None: tqdm decides (off when not a terminal)

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "plateau", "constant"):
            raise ConfigError(f"schedule must be cosine, plateau or constant, not {self.schedule!r}")
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ConfigError(f"amp must be auto, bf16, fp16 or off, not {self.amp!r}")
        check_config_numbers(self)
        if self.augment not in (None, True, False):
            from ttl.train.batches import AUGMENTATIONS

            unknown = [a for a in self.augment if a not in AUGMENTATIONS] if isinstance(self.augment, (list, tuple)) \
                else [self.augment]
            if unknown:
                raise ConfigError(f"augment must be None, True, False or names from {list(AUGMENTATIONS)}, "
                                  f"got {unknown}")


def check_config_numbers(cfg: TrainConfig) -> None:
    """A ConfigError naming the first field of ``cfg`` outside its range (the CLI's rules)."""
    from ttl.commands.argtypes import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE

    def integer(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    def number(value: Any) -> bool:
        return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)

    rules = [("epochs", integer(cfg.epochs) and cfg.epochs >= 1, "an integer >= 1"),
             ("batch_size", integer(cfg.batch_size) and cfg.batch_size >= 1, "an integer >= 1"),
             ("lr", number(cfg.lr) and cfg.lr > 0, "a finite number > 0"),
             ("weight_decay", number(cfg.weight_decay) and cfg.weight_decay >= 0, "a finite number >= 0"),
             ("patience", integer(cfg.patience) and cfg.patience >= 0, "an integer >= 0 (0: no early stopping)"),
             ("image_size", cfg.image_size is None or (integer(cfg.image_size)
                                                       and MIN_IMAGE_SIZE <= cfg.image_size <= MAX_IMAGE_SIZE),
              f"None or an integer in [{MIN_IMAGE_SIZE}, {MAX_IMAGE_SIZE}]"),
             ("seed", integer(cfg.seed) and 0 <= cfg.seed < 2**63, "an integer in [0, 2**63)"),
             ("n_boot", integer(cfg.n_boot) and cfg.n_boot >= 0, "an integer >= 0")]
    for name, ok, rule in rules:
        if not ok:
            raise ConfigError(f"TrainConfig.{name} must be {rule}, got {getattr(cfg, name)!r}")


# TrainConfig fields that do not change the trained model: how it runs (device, progress bar,
# compilation, memory layout) and how it is scored (bootstrap resamples). They are recorded in
# provenance but left out of the run key, so changing them never retrains a finished run.
RUNTIME_FIELDS = ("device", "progress", "n_boot", "compile", "channels_last")


def run_key_params(cfg: TrainConfig, params: dict[str, Any] | None, data_keys: dict[str, str]) -> dict[str, Any]:
    """What decides a trained model: the config without :data:`RUNTIME_FIELDS`, the caller's
    model/data blocks and the training/validation data fingerprints."""
    train = {k: v for k, v in asdict(cfg).items() if k not in RUNTIME_FIELDS}
    return {"train": train, **(params or {}), "data_key": dict(data_keys)}


@dataclass
class FitResult:
    model: nn.Module
    history: list[dict[str, float]]
    best_epoch: int
    metrics: dict[str, Any]
    path: Path | None = None
    reused: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None  # "patience" (early stop) | "epoch_cap" (ran out of epochs)


def data_key(dataset: Any) -> str:
    """A fingerprint of a dataset: its cache key when it has one, else a hash of labels and pixels."""
    key = (getattr(dataset, "meta", None) or {}).get("cache_key")
    if key:
        return str(key)
    import hashlib

    h = hashlib.sha256(np.asarray(dataset.labels).tobytes())
    h.update(np.ascontiguousarray(np.asarray(dataset.images)).tobytes())
    return h.hexdigest()[:20]


def data_files(dataset: Any) -> dict[str, Any]:
    """Where a dataset came from, for the run record (not the run key): the manifest's absolute
    path and sha256 and the absolute data root, as :func:`ttl.data.load` notes them."""
    meta = getattr(dataset, "meta", None) or {}
    return {k: meta.get(k) for k in ("manifest", "manifest_sha256", "root", "subset")}


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> CUDA when available, else CPU; a clear error for CUDA without a GPU."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ConfigError(f"device={device!r} is not a device: use auto, cpu or cuda") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} was asked for but no CUDA GPU is available: use cpu or auto")
    return dev


def make_loss(dataset: Any, cfg: TrainConfig, device: torch.device) -> nn.Module:
    """Cross-entropy (binary/multiclass) or BCE (multilabel), class-weighted when asked."""
    labels = np.asarray(dataset.labels)
    if dataset.task == "multilabel":
        pos = labels.sum(0)
        weight = torch.tensor((len(labels) - pos) / np.maximum(pos, 1), dtype=torch.float32)
        return nn.BCEWithLogitsLoss(pos_weight=weight.to(device) if cfg.class_weighted else None)
    k = len(dataset.classes)
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    weight = torch.tensor(len(labels) / (k * np.maximum(counts, 1)), dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight.to(device) if cfg.class_weighted else None)


def preprocess_for(model: nn.Module, dataset: Any, cfg: TrainConfig, device: torch.device,
                   train: bool) -> Preprocess:
    """How batches of ``dataset`` are prepared for ``model`` (:func:`ttl.train.inputs.input_pipeline`)."""
    mean, std, to_rgb = input_pipeline(model, dataset)
    own = getattr(model, "data_config", None)  # a trained model is fed at its training size
    size = cfg.image_size or (own.input_size if isinstance(own, DataConfig) else None) or int(dataset.images.shape[-1])
    channels_last = cfg.channels_last if cfg.channels_last is not None else device.type == "cuda"
    return Preprocess(size, mean, std, augment=augmentations(cfg, dataset) if train else (),
                      channels_last=channels_last, to_rgb=to_rgb)


def augmentations(cfg: TrainConfig, dataset: Any) -> tuple[str, ...]:
    """The training augmentations: the config's, or the dataset manifest's when it says None."""
    if cfg.augment is None:
        listed = (getattr(dataset, "meta", None) or {}).get("preprocessing", {}).get("augment")
        return tuple(listed) if listed is not None else ("random-resized-crop",)
    if cfg.augment is True:
        return ("random-resized-crop",)
    return tuple(cfg.augment or ())


@torch.no_grad()
def predict(model: nn.Module, dataset: Any, cfg: TrainConfig | None = None,
            device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """(labels, scores, mean loss) of ``model`` on ``dataset`` without augmentation."""
    cfg = cfg or TrainConfig()
    dev = resolve_device(device or cfg.device)
    model = model.to(dev)
    was_training = model.training
    model.eval()
    batches = DeviceBatches(dataset, cfg.batch_size * 2, dev, preprocess_for(model, dataset, cfg, dev, False),
                            shuffle=False)
    loss_fn = make_loss(dataset, replace(cfg, class_weighted=False), dev)
    outs, ys, loss_sum = [], [], torch.zeros((), device=dev)
    amp = amp_dtype(cfg.amp, dev)
    for x, y in batches.epoch(0):
        with autocast(amp, dev):
            logits = model(x)
        logits = logits.float()
        loss_sum += loss_fn(logits, y) * len(y)
        outs.append(logits)
        ys.append(y)
    model.train(was_training)
    logits = torch.cat(outs).cpu()
    labels = torch.cat(ys).cpu().numpy()
    return labels, scores_from_logits(logits, dataset.task), float(loss_sum) / max(len(labels), 1)


def evaluate(model: nn.Module, dataset: Any, cfg: TrainConfig | None = None,
             device: str | torch.device | None = None, n_boot: int | None = None) -> dict[str, Any]:
    """Metrics with bootstrap CIs of ``model`` on ``dataset``."""
    cfg = cfg or TrainConfig()
    labels, scores, loss = predict(model, dataset, cfg, device)
    metrics = compute_metrics(labels, scores, dataset.task,
                              n_boot=cfg.n_boot if n_boot is None else n_boot, seed=cfg.seed)
    return {"loss": loss, "n": int(len(labels)), **metrics}


def _auroc_only(model: nn.Module, dataset: Any, cfg: TrainConfig, device: torch.device) -> tuple[float, float]:
    labels, scores, loss = predict(model, dataset, cfg, device)
    value = compute_metrics(labels, scores, dataset.task, n_boot=0)["auroc"]["value"]
    return (float("nan") if value is None else value), loss


def make_step(model: nn.Module, train: Any, cfg: TrainConfig, device: torch.device, steps_per_epoch: int):
    """The training step of ``cfg`` for ``model`` on ``train`` (:func:`ttl.train.engine.make_train_step`):
    AdamW over the trainable parameters, the class-weighted loss, ``cfg.schedule`` over
    ``cfg.epochs * steps_per_epoch`` batches, autocast and compilation as ``cfg`` says.
    ``ttl bench train`` times this same step."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ConfigError("the model has no trainable parameters")
    return make_train_step(model, make_loss(train, cfg, device), device, lr=cfg.lr, weight_decay=cfg.weight_decay,
                           schedule=cfg.schedule, total_steps=cfg.epochs * steps_per_epoch, amp=cfg.amp,
                           compile=cfg.compile, params=trainable)


def _count_params(model: nn.Module) -> dict[str, int]:
    return {"params": sum(p.numel() for p in model.parameters()),
            "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def fit(model: nn.Module, train: Any, val: Any, cfg: TrainConfig | None = None,
        out_dir: str | Path | None = None, test: Any = None, params: dict[str, Any] | None = None,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None) -> FitResult:
    """Train ``model`` on ``train``, select the epoch with the best validation AUROC.

    With ``out_dir``: a checkpoint after every epoch (resumed when present and the parameters
    match), and ``result.json`` at the end; a finished run with the same parameters is read back
    instead of retrained. ``params`` are extra parameters to record (strategy, dataset, ...). A
    second process writing the same ``out_dir`` meanwhile gets :class:`~ttl.errors.RunLockedError`.
    A run resumed under another torch thread count is resumed, with a warning on CPU (its numbers
    then match neither uninterrupted run); ``result.json`` records every count (``torch_threads``).
    Before the first epoch every split must hold two classes and share one input pipeline
    (:func:`ttl.train.inputs.check_fit_inputs`).
    """
    if out_dir is None:
        return _fit(model, train, val, cfg, None, test, params, on_epoch_end)
    with run_lock(out_dir):  # one writer per run folder
        remove_orphan_temps(out_dir)  # half-written files of a killed earlier writer
        return _fit(model, train, val, cfg, Path(out_dir), test, params, on_epoch_end)


def _fit(model: nn.Module, train: Any, val: Any, cfg: TrainConfig | None, out_dir: Path | None, test: Any,
         params: dict[str, Any] | None, on_epoch_end: Callable[[int, dict[str, float]], None] | None) -> FitResult:
    cfg = cfg or TrainConfig()
    device = resolve_device(cfg.device)
    keyed = run_key_params(cfg, params, {"train": data_key(train), "val": data_key(val)})
    key = params_hash(keyed)
    # what the network is fed (the manifest's normalisation and to_rgb) and where the data came from:
    # provenance, not the run key (the manifest is already hashed into the data fingerprints)
    feed = resolve_data_config(model, train, cfg.image_size)  # the run's data config
    record = {**keyed, "train": {**asdict(cfg), "device": str(device)}, "input": feed.to_dict(),
              "data_files": {"train": data_files(train), "val": data_files(val)}}
    out = Path(out_dir) if out_dir is not None else None
    done = finished(out) if out is not None else None
    if done is not None:
        state = finished_weights(out / "model.pt", model) if done.get("params_hash") == key else None
        if state is not None:
            model.load_state_dict(state)
            recorded = recorded_input(done)
            model.data_config = DataConfig.from_dict(recorded) if recorded else feed
            metrics = dict(done["metrics"])
            if test is not None:  # e.g. a search trial, now reported: scored beside, result.json untouched
                metrics["test"] = _test_metrics(model, test, cfg, device, out)
            return FitResult(model, done["history"], done["best_epoch"], metrics, out / "result.json",
                             reused=True, stop_reason=done.get("stop_reason"))
        if done.get("params_hash") != key:  # (same parameters but no model.pt: simply trained again)
            warnings.warn(f"{out}: the finished run there was made with other parameters; training now "
                          "replaces it (give each parameter set its own runs folder to keep both)", stacklevel=2)

    check_fit_inputs(model, train, val, test)  # one-class splits, mixed pipelines, channels: before any epoch
    model.data_config = feed
    seed_everything(cfg.seed, deterministic=device.type == "cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fastest kernels; CPU runs stay bit-reproducible
    model = model.to(device)
    if cfg.channels_last if cfg.channels_last is not None else device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    batches = DeviceBatches(train, cfg.batch_size, device, preprocess_for(model, train, cfg, device, True),
                            shuffle=True, seed=cfg.seed, drop_last=len(train) > cfg.batch_size)
    step = make_step(model, train, cfg, device, len(batches))

    history: list[dict[str, float]] = []
    best = {"auroc": -math.inf, "epoch": -1, "state": None}
    start_epoch, bad_epochs, elapsed = 0, 0, 0.0
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    ckpt = read_checkpoint(ckpt_path) if ckpt_path is not None and ckpt_path.exists() else None
    threads = [{"from_epoch": 0, "threads": torch.get_num_threads()}]
    if isinstance(ckpt, dict) and ckpt.get("params_hash") == key:
        if restore(ckpt, ckpt_path, model, step.optimizer, step.any_scheduler):
            history, best, bad_epochs = ckpt["history"], ckpt["best"], ckpt["bad_epochs"]
            start_epoch, elapsed = ckpt["epoch"] + 1, ckpt["elapsed"]
            threads = _resumed_threads(ckpt.get("torch_threads"), start_epoch, device, out)
        else:  # the optimizer may have taken part of it: start both afresh
            step = make_step(model, train, cfg, device, len(batches))

    bar = tqdm(range(start_epoch, cfg.epochs), initial=start_epoch, total=cfg.epochs, desc="epochs",
               disable=None if cfg.progress is None else not cfg.progress, leave=False)
    for epoch in bar:
        if cfg.patience and bad_epochs >= cfg.patience:  # e.g. resumed after the epoch that reached it
            break
        t0 = time.perf_counter()
        train_loss = train_one_epoch(step, batches.epoch(epoch))["loss"]
        if not math.isfinite(train_loss) or not finite_weights(model):
            raise TrainingDivergedError(
                f"training diverged at epoch {epoch}: the {'loss' if not math.isfinite(train_loss) else 'weights'}"
                f" became non-finite (lr={cfg.lr:g}); the run is not stored as finished"
                + (f" (last good checkpoint kept in {out})" if out is not None else "")
                + ". Fix: lower the learning rate or check the data for NaN/Inf values.")
        val_auroc, val_loss = _auroc_only(model, val, cfg, device)
        if step.epoch_scheduler is not None:
            step.epoch_scheduler.step(val_auroc)
        row = {"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
               "val_auroc": val_auroc, "lr": step.optimizer.param_groups[0]["lr"],
               "seconds": time.perf_counter() - t0}
        history.append(row)
        elapsed += row["seconds"]
        if val_auroc > best["auroc"] or best["state"] is None:
            best = {"auroc": val_auroc, "epoch": epoch,
                    "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
            bad_epochs = 0
        else:
            bad_epochs += 1
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", val_auroc=f"{val_auroc:.3f}")
        if ckpt_path is not None:
            save_checkpoint(ckpt_path, key, epoch, step, history=history, best=best, bad_epochs=bad_epochs,
                            elapsed=elapsed, torch_threads=threads)
        if on_epoch_end is not None:
            on_epoch_end(epoch, row)
    bar.close()
    stop_reason = "patience" if cfg.patience and bad_epochs >= cfg.patience else "epoch_cap"

    model.load_state_dict(best["state"])
    metrics = {"val": evaluate(model, val, cfg, device)}
    if out is not None:
        drop_scores(out)  # scores a replaced model left would be read back as this model's
        atomic_torch_save(out / "model.pt", {k: v.cpu() for k, v in model.state_dict().items()})
    if test is not None:
        metrics["test"] = _test_metrics(model, test, cfg, device, out)
    result = FitResult(model, history, int(best["epoch"]), metrics, stop_reason=stop_reason)
    if out is not None:
        result.path = write_result(out / "result.json", {
            "params_hash": key, "metrics": metrics, "best_epoch": result.best_epoch, "history": history,
            "stop_reason": stop_reason, "epochs_cap": cfg.epochs, "model": _count_params(model),
            "train_seconds": elapsed, "torch_threads": threads}, record, device=device, wall_time_s=elapsed)
        ckpt_path.unlink(missing_ok=True)
    return result


def _resumed_threads(earlier: list[dict[str, Any]] | None, start_epoch: int, device: torch.device,
                     out: Path | None) -> list[dict[str, Any]]:
    """The thread counts a resumed run trained with, one entry per stretch of epochs.

    CPU kernels split their sums by thread, so epochs run with another ``torch.get_num_threads()``
    differ in the last bits: a run resumed under another count matches neither uninterrupted run.
    It is not refused (the epochs done are kept) but warned about on CPU, and both counts are
    recorded (``torch_threads`` in the checkpoint and ``result.json``). A checkpoint written before
    counts were recorded gives ``threads: None`` for its epochs.
    """
    now = torch.get_num_threads()
    stretches = list(earlier) if earlier else [{"from_epoch": 0, "threads": None}]
    before = stretches[-1]["threads"]
    if before != now and device.type == "cpu":
        ran = f"ran with {before}" if before is not None else "ran with an unrecorded count"
        warnings.warn(f"{out}: resumed at epoch {start_epoch} with {now} torch threads; epochs "
                      f"{stretches[-1]['from_epoch']}-{start_epoch - 1} {ran}. CPU results then match neither "
                      f"uninterrupted run in the last digits; for identical numbers rerun with "
                      f"{before if before is not None else 'the earlier count'} threads (OMP_NUM_THREADS / "
                      "torch.set_num_threads) or delete checkpoint.pt to train from the start. Both counts are "
                      "recorded in result.json (torch_threads).", stacklevel=4)
    if before != now:
        stretches.append({"from_epoch": start_epoch, "threads": now})
    return stretches


SCORE_DIRS = ("predictions", "evaluations")


def drop_scores(run_dir: Path) -> None:
    """Delete a run folder's cached scores (``predictions/``, ``evaluations/``): they belong to the
    model.pt they were computed with, and a newly trained model replaces it."""
    import shutil

    for name in SCORE_DIRS:
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)


def predictions_path(run_dir: str | Path, dataset: Any) -> Path:
    """Where a run folder keeps its labels and scores on ``dataset`` (one file per data fingerprint)."""
    return Path(run_dir) / "predictions" / f"{data_key(dataset)}.npz"


def run_predictions(model: nn.Module, dataset: Any, cfg: TrainConfig, device: torch.device,
                    run_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray, float]:
    """(labels, scores, mean loss) of ``model`` on ``dataset``, read from / saved to the run
    folder's ``predictions/`` when there is one (so paired tests never rebuild or rerun a model)."""
    path = predictions_path(run_dir, dataset) if run_dir is not None else None
    if path is not None and path.exists():
        with np.load(path) as f:
            return f["labels"], f["scores"], float(f["loss"])
    labels, scores, loss = predict(model, dataset, cfg, device)
    if path is not None:
        def write(fh: Any) -> None:
            np.savez(fh, labels=labels, scores=scores, loss=np.float64(loss))
        atomic_write(path, write)
    return labels, scores, loss


def _test_metrics(model: nn.Module, test: Any, cfg: TrainConfig, device: torch.device,
                  run_dir: Path | None) -> dict[str, Any]:
    """Test metrics of a run: scored once per test set and kept in ``evaluations/`` beside
    ``result.json`` (which is never rewritten by reading a run)."""
    name = f"test-{data_key(test)}-boot{cfg.n_boot}-seed{cfg.seed}.json"
    path = Path(run_dir) / "evaluations" / name if run_dir is not None else None
    if path is not None and path.exists():
        return read_json(path)
    labels, scores, loss = run_predictions(model, test, cfg, device, run_dir)
    metrics = {"loss": loss, "n": int(len(labels)),
               **compute_metrics(labels, scores, test.task, n_boot=cfg.n_boot, seed=cfg.seed)}
    if path is not None:
        atomic_write_json(path, metrics)
    return metrics

