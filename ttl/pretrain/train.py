"""Pre-train a torchvision classifier on FractalDB-style images and export its backbone.

The data live on the device as uint8 tensors and go through the finetuning path's own batches
(:class:`ttl.train.batches.DeviceBatches`: random resized crop of 35-100% of the area and a
horizontal flip, one ``grid_sample`` per batch, then normalisation) and training engine
(:mod:`ttl.train.engine`: one :class:`~ttl.train.engine.TrainStep` per batch, a ``LambdaLR``
warm-up + cosine schedule). On CUDA the network runs in channels_last with bf16 autocast. A
checkpoint is written atomically after every epoch, so calling :func:`pretrain` again with the same ``out_dir`` resumes (with more
``epochs`` it continues training). The backbone (the state dict without the classifier) is
exported in fp16 and described by a weights-manifest entry; :func:`register_weights` copies it
into ``weights/`` and merges the entry into ``weights/manifest.json``.
"""

from __future__ import annotations

import math
import os
import shlex
import time
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from tqdm.auto import tqdm

from ttl.errors import ChecksumError, ConfigError, WeightsUnavailableError
from ttl.pretrain.fractal import FRACTAL_MEAN, FRACTAL_STD, default_points, make_dataset, sample_ifs_codes
from ttl.provenance import (atomic_torch_save, atomic_write_bytes, atomic_write_json, git_commit,
                            hardware, params_hash, read_json, sha256_file, write_result)
from ttl.resources import in_checkout, shipped
from ttl.seeding import seed_everything
from ttl.train.batches import DeviceBatches, Preprocess
from ttl.train.engine import make_train_step, predict_logits, save_checkpoint, train_one_epoch
from ttl.train.loop import resolve_device

MANIFEST_KEYS = (
    "arch", "file", "sha256", "num_params", "mean", "std", "image_size", "command", "git",
    "hardware", "wall_time_s", "pretrain_val_accuracy", "n_classes", "images_per_class", "epochs",
)
CHECKPOINT = "checkpoint.pt"
# parameters that may change between a run and its resumption
_RESUMABLE = ("epochs", "device", "amp")


def build_classifier(arch: str, n_classes: int) -> nn.Module:
    """``torchvision.models.get_model(arch, weights=None, num_classes=n_classes)``."""
    try:
        return torchvision.models.get_model(arch, weights=None, num_classes=n_classes)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"unknown torchvision architecture {arch!r}: {exc}") from exc


def classifier_prefix(model: nn.Module, n_classes: int) -> str:
    """Name of the top-level module holding the classifier (``fc`` for ResNet, ``classifier``
    for DenseNet): the one containing the last Linear layer with ``n_classes`` outputs."""
    last = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and mod.out_features == n_classes:
            last = name
    if last is None:
        raise ConfigError(f"{type(model).__name__} has no Linear layer with {n_classes} outputs")
    return last.split(".")[0]


def backbone_state_dict(model: nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """The state dict without ``prefix.*``, floating tensors in fp16, all on the CPU."""
    out = {}
    for k, v in model.state_dict().items():
        if k == prefix or k.startswith(prefix + "."):
            continue
        v = v.detach().cpu()
        out[k] = v.half() if v.is_floating_point() else v.clone()
    return out


# the pretraining crop keeps 35-100% of the area (FractalDB-style), wider than finetuning's 70-100%
CROP_SCALE = (0.35, 1.0)


def preprocess(size: int, train: bool) -> Preprocess:
    """How fractal batches are fed: grey -> RGB, the fractal statistics, channels_last; training
    batches also take a random resized crop and a horizontal flip."""
    return Preprocess(size, tuple(FRACTAL_MEAN), tuple(FRACTAL_STD),
                      augment=("random-resized-crop", "hflip") if train else (), scale=CROP_SCALE,
                      channels_last=True)


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and normalisation parameters."""
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def accuracy(model: nn.Module, batches: DeviceBatches, amp: bool) -> float:
    """Top-1 accuracy on un-augmented batches (:func:`ttl.train.engine.predict_logits`)."""
    logits, labels = predict_logits(model, batches.epoch(0), torch.bfloat16 if amp else None, batches.device)
    return int((logits.argmax(dim=1) == labels).sum()) / max(1, len(labels))


def format_command(params: dict[str, Any]) -> str:
    """The ``ttl pretrain`` command line that reproduces ``params``."""
    flags = [
        ("--arch", params["arch"]), ("--classes", params["n_classes"]),
        ("--images-per-class", params["images_per_class"]), ("--size", params["size"]),
        ("--epochs", params["epochs"]), ("--batch", params["batch_size"]), ("--lr", params["lr"]),
        ("--optimizer", params["optimizer"]), ("--weight-decay", params["weight_decay"]),
        ("--points", params["n_points"]), ("--render", params["render_mode"]),
        ("--val-per-class", params["val_per_class"]), ("--seed", params["seed"]),
    ]
    parts = ["ttl", "pretrain"] + [str(x) for f, v in flags for x in (f, v)]
    if not params.get("amp", True):
        parts.append("--no-amp")
    return shlex.join(parts)


def pretrain(arch: str = "resnet18", n_classes: int = 64, images_per_class: int = 64,
             size: int = 64, epochs: int = 10, batch_size: int = 128, lr: float | None = None,
             out_dir: str | os.PathLike = "runs/pretrain", device: str | torch.device | None = "auto",
             seed: int = 0, amp: bool = True, *, optimizer: str = "sgd",
             weight_decay: float | None = None, val_per_class: int | None = None,
             n_points: int | None = None, render_mode: str = "point", label_smoothing: float = 0.1,
             command: str | None = None, progress: bool = True) -> dict[str, Any]:
    """Pre-train ``arch`` on a FractalDB-style set; export its backbone; return its manifest entry.

    ``lr`` defaults to 0.1 x batch/256 for SGD (momentum 0.9, Nesterov) and 1e-3 x batch/256 for
    AdamW; the schedule is a linear warm-up then cosine decay, stepped per batch. ``amp`` means
    bf16 autocast, used on CUDA only. Writes ``checkpoint.pt`` (each epoch), ``result.json`` and
    ``<arch>_fractal.pt`` in ``out_dir``. The entry's ``file`` is the exported file's path
    (:func:`register_weights` makes it relative to ``weights/``).
    """
    t_start = time.perf_counter()
    for name, val in (("n_classes", n_classes), ("images_per_class", images_per_class),
                      ("epochs", epochs), ("batch_size", batch_size)):
        if int(val) < 1:
            raise ConfigError(f"{name} must be >= 1, got {val}")
    if n_classes < 2:
        raise ConfigError(f"n_classes must be >= 2 for a classifier, got {n_classes}")
    if size < 16:
        raise ConfigError(f"size must be >= 16 px, got {size}")
    if optimizer not in ("sgd", "adamw"):
        raise ConfigError(f"optimizer must be 'sgd' or 'adamw', got {optimizer!r}")
    dev = resolve_device(device)
    use_amp = bool(amp) and dev.type == "cuda"
    if lr is None:
        lr = (0.1 if optimizer == "sgd" else 1e-3) * batch_size / 256
    if weight_decay is None:
        weight_decay = 1e-4 if optimizer == "sgd" else 0.05
    if val_per_class is None:
        val_per_class = max(4, min(50, images_per_class // 5))
    n_points = n_points or default_points(size)
    params = dict(arch=arch, n_classes=n_classes, images_per_class=images_per_class, size=size,
                  epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                  weight_decay=weight_decay, label_smoothing=label_smoothing,
                  val_per_class=val_per_class, n_points=n_points, render_mode=render_mode,
                  seed=seed, amp=bool(amp), device=str(dev), mean=FRACTAL_MEAN, std=FRACTAL_STD)
    run_key = params_hash({k: v for k, v in params.items() if k not in _RESUMABLE})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT

    seed_everything(seed, deterministic=dev.type == "cpu")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = build_classifier(arch, n_classes)
    prefix = classifier_prefix(model, n_classes)
    model = model.to(dev, memory_format=torch.channels_last)
    groups = _param_groups(model, weight_decay)
    opt: torch.optim.Optimizer
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=lr)
    n = n_classes * images_per_class  # make_dataset draws images_per_class of every class
    bs = min(batch_size, n)
    steps_per_epoch = max(1, n // bs)  # drop the last partial batch (BN needs > 1 sample)
    total = steps_per_epoch * epochs
    warmup = min(steps_per_epoch, max(1, total // 20))
    step = make_train_step(model, nn.CrossEntropyLoss(label_smoothing=label_smoothing), dev, lr=lr,
                           weight_decay=weight_decay, schedule="warmup-cosine", total_steps=total,
                           warmup_steps=warmup, amp="bf16" if use_amp else "off", optimizer=opt)

    start_epoch, history, elapsed_before = 0, [], 0.0
    if ckpt_path.exists():
        try:
            ckpt = torch.load(ckpt_path, map_location=dev, weights_only=True)
        except Exception as exc:
            raise ConfigError(f"cannot read checkpoint {ckpt_path}: {exc}; delete it to start over") from exc
        if ckpt.get("params_hash") != run_key:
            raise ConfigError(
                f"{ckpt_path} belongs to a run with other parameters ({ckpt.get('params')}); "
                f"use another --out folder or delete it to start over")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step.scheduler.load_state_dict(ckpt["scheduler"])  # the step count; the decay follows `epochs`
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        if start_epoch > epochs:
            raise ConfigError(f"{ckpt_path} already holds {start_epoch} epochs, more than epochs={epochs}: "
                              f"ask for at least {start_epoch} or use another --out folder")
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
    resumed_from = start_epoch

    # data: same codes for both splits, fresh instances for validation
    t_data = time.perf_counter()
    codes = sample_ifs_codes(n_classes, seed, progress=progress)
    train = make_dataset(n_classes, images_per_class, size, seed, dev, codes=codes, split="train",
                         n_points=n_points, mode=render_mode, progress=progress)
    val = make_dataset(n_classes, val_per_class, size, seed, dev, codes=codes, split="val",
                       n_points=n_points, mode=render_mode, progress=progress)
    data_s = time.perf_counter() - t_data

    train_batches = DeviceBatches(train, bs, dev, preprocess(size, True), shuffle=True, seed=seed, drop_last=True)
    val_batches = DeviceBatches(val, 2 * bs, dev, preprocess(size, False), shuffle=False)

    bar = tqdm(range(start_epoch, epochs), desc=f"pretrain {arch}", unit="epoch", disable=not progress)
    for epoch in bar:
        t_epoch = time.perf_counter()
        stats = train_one_epoch(step, train_batches.epoch(epoch), count_correct=True)
        if not math.isfinite(stats["loss"]):
            raise ConfigError(f"training diverged at epoch {epoch + 1} (loss {stats['loss']}): lower --lr")
        val_acc = accuracy(model, val_batches, use_amp)
        history.append({"epoch": epoch + 1, "train_loss": stats["loss"], "train_accuracy": stats["accuracy"],
                        "val_accuracy": val_acc, "lr": opt.param_groups[0]["lr"],
                        "seconds": time.perf_counter() - t_epoch})
        bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['accuracy']:.3f}", val=f"{val_acc:.3f}")
        save_checkpoint(ckpt_path, run_key, epoch + 1, step, history=history, params=params,
                        elapsed_s=elapsed_before + time.perf_counter() - t_start)
    bar.close()

    # (a finished run called again trains nothing and re-exports; its history is the stored one)
    final_train, final_val = history[-1]["train_accuracy"], history[-1]["val_accuracy"]

    weights = backbone_state_dict(model, prefix)
    file = out / f"{arch}_fractal.pt"
    atomic_torch_save(file, weights)
    num_params = sum(p.numel() for k, p in model.named_parameters()
                     if not (k == prefix or k.startswith(prefix + ".")))
    wall = elapsed_before + time.perf_counter() - t_start
    entry = {
        "arch": arch, "file": str(file), "sha256": sha256_file(file), "num_params": num_params,
        "mean": list(FRACTAL_MEAN), "std": list(FRACTAL_STD), "image_size": size,
        "command": command or format_command(params), "git": git_commit(), "hardware": hardware(dev),
        "wall_time_s": round(wall, 2), "pretrain_val_accuracy": final_val, "n_classes": n_classes,
        "images_per_class": images_per_class, "epochs": epochs,
    }
    write_result(out / "result.json", {
        "train_accuracy": final_train, "val_accuracy": final_val, "chance_accuracy": 1 / n_classes,
        "resumed_from_epoch": resumed_from, "data_seconds": round(data_s, 2),
        "classifier_removed": prefix, "history": history, "weights": entry,
    }, params=params, device=dev, wall_time_s=wall)
    return entry


def _manifest_root(doc: dict[str, Any]) -> dict[str, Any]:
    """The arch -> entry mapping of a manifest (top level, or under ``"weights"``)."""
    inner = doc.get("weights")
    return inner if isinstance(inner, dict) else doc


def default_weights_dir() -> Path:
    """Where ``--register`` writes without ``--weights-dir``: ``$TTL_WEIGHTS_DIR``, else the
    repository's ``weights/``; an installed package's shipped weights are never written."""
    if os.environ.get("TTL_WEIGHTS_DIR"):
        return Path(os.environ["TTL_WEIGHTS_DIR"])
    if not in_checkout():
        raise ConfigError("--register needs a weights folder of your own: pass --weights-dir or set "
                          "TTL_WEIGHTS_DIR (the weights shipped inside the installed package are read-only); "
                          "set TTL_WEIGHTS_DIR to that folder to use what you register as a source")
    return shipped("weights")


def register_weights(entry: dict[str, Any], weights_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Copy ``entry["file"]`` into ``weights_dir`` (default: the repository's ``weights/``) and
    merge the entry, keyed by arch and with ``file`` relative to that folder, into its
    ``manifest.json``; both writes are atomic. Returns the stored entry."""
    missing = [k for k in MANIFEST_KEYS if k not in entry]
    if missing:
        raise ConfigError(f"weights entry lacks {', '.join(missing)} (need {', '.join(MANIFEST_KEYS)})")
    src = Path(entry["file"])
    if not src.exists():
        raise WeightsUnavailableError(f"weights file {src} (entry['file']) does not exist")
    dst_dir = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    dst = dst_dir / src.name
    if src.resolve() != dst.resolve():
        atomic_write_bytes(dst, src.read_bytes())
    got = sha256_file(dst)
    if got != entry["sha256"]:
        raise ChecksumError(f"{dst} has sha256 {got} but the entry says {entry['sha256']}")
    stored = {k: entry[k] for k in MANIFEST_KEYS}
    stored["file"] = dst.name
    manifest_path = dst_dir / "manifest.json"
    doc = read_json(manifest_path) if manifest_path.exists() else {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{manifest_path} is not a JSON object; fix or remove it")
    _manifest_root(doc)[entry["arch"]] = stored
    atomic_write_json(manifest_path, doc)
    return stored
