"""``ttl train``: finetune one strategy on one dataset; resumable; writes result.json."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ttl.strategies import REGISTRY
from ttl.commands.argtypes import (
    image_size, nonnegative_float, nonnegative_int, positive_float, positive_int, width_factor)
from ttl.commands.dataset_args import add_kind_options, kind_overrides


def add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="phantom-mid",
                   help="dataset name (see data_manifests/) or path to a manifest YAML (default: phantom-mid)")
    p.add_argument("--root", default=None, help="folder holding the dataset (real datasets)")
    p.add_argument("--n-per-class", type=positive_int, default=None, help="phantoms: images per class and split")
    p.add_argument("--data-size", type=image_size, default=None, help="resize images to this size when loading")
    p.add_argument("--data-seed", type=nonnegative_int, default=None, help="phantoms: generator seed")
    add_kind_options(p.add_argument_group("options of one dataset kind (ttl.data.kinds)"))


def data_overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {"n_per_class": args.n_per_class, "size": args.data_size, "seed": args.data_seed}
    return {**{k: v for k, v in out.items() if v is not None}, **kind_overrides(args)}


def epoch_logger(epochs: int) -> Callable[[int, dict[str, float]], None]:
    """One line per epoch on stderr, for runs without a terminal (logs, CI, nohup) where no bar is drawn."""
    def log(epoch: int, row: dict[str, float]) -> None:
        print(f"epoch {epoch + 1}/{epochs}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
              f"val AUROC {row['val_auroc']:.4f}, lr {row['lr']:.2g}, {row['seconds']:.1f} s",
              file=sys.stderr, flush=True)
    return log


def check_model_args(arch: str, cut: str | None, source: str, device: str | None = None) -> None:
    """Fail fast (a ConfigError) on an unknown architecture, cut, source (an ImageNet version too) or
    device, before any data work."""
    from ttl.errors import ConfigError
    from ttl.models.cuts import cut_info
    from ttl.models.sources import available_sources, imagenet_variant, split_source

    cut_info(arch, cut)
    name, variant = split_source(source)
    if name not in available_sources() and not Path(source).is_file():
        raise ConfigError(f"unknown weight source {source!r}: use one of {', '.join(available_sources())}, "
                          f"'imagenet:NAME', or the path of an existing checkpoint file")
    if name == "imagenet":
        imagenet_variant(arch, variant)  # an unknown version (imagenet:NOPE) is named now, not after the data
    if device is not None:
        from ttl.train.loop import resolve_device

        resolve_device(device)


def check_out_file(out: str | None) -> None:
    """A ConfigError when an output *file* option names an existing folder (found before the work)."""
    from ttl.errors import ConfigError

    if out is not None and Path(out).is_dir():
        raise ConfigError(f"--out {out} is a folder: give the path of the JSON file to write")


def check_strategy_options(args: argparse.Namespace) -> None:
    """A ConfigError for options the chosen strategy would ignore (they would be recorded as if applied)."""
    from ttl.errors import ConfigError

    if args.strategy == "full" and args.cut is not None:
        raise ConfigError("--strategy full trains the whole network: drop --cut (or use --strategy ttl/lwft)")
    if args.strategy != "transfusion" and (args.width is not None or args.slim_from is not None):
        raise ConfigError("--width and --slim-from apply to --strategy transfusion only")
    if args.strategy in ("lwft", "transfusion") and args.cut is None:
        raise ConfigError(f"--strategy {args.strategy} needs --cut (the last block it freezes or reuses)")
    if args.slim_from is not None:
        from ttl.models.cuts import cut_info

        try:
            slim = cut_info(args.arch, args.slim_from)
        except ConfigError as exc:
            raise ConfigError(f"--slim-from: {exc}") from None
        if slim.index <= cut_info(args.arch, args.cut).index:
            raise ConfigError(f"--slim-from {args.slim_from} must come after the cut {args.cut}")


def source_label(source: str) -> str:
    """A folder-safe name of a source: ``fractal``, ``imagenet-IMAGENET1K_V1``, a checkpoint's file stem."""
    name, variant = source.partition(":")[0], source.partition(":")[2]
    if Path(source).suffix or "/" in source:
        return Path(source).stem
    return f"{name}-{variant}" if variant else name


def load_splits(args: argparse.Namespace, splits: tuple[str, ...] = ("train", "val", "test")) -> dict[str, Any]:
    from ttl.data import load

    return {s: load(args.dataset, root=args.root, split=s, **data_overrides(args)) for s in splits}


def train_defaults() -> dict[str, Any]:
    """:class:`ttl.train.TrainConfig`'s field defaults: the training options of ``ttl train`` and
    ``ttl search`` take theirs from here, so the CLI and the Python API never drift apart."""
    from dataclasses import fields

    from ttl.train import TrainConfig

    return {f.name: f.default for f in fields(TrainConfig)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="finetune a model with one transfer strategy",
                       description="Train ARCH with STRATEGY on a dataset, select the epoch with the best "
                                   "validation AUROC, evaluate on test, write OUT/result.json. Rerunning the "
                                   "same command resumes an interrupted run or reuses a finished one.")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--strategy", default="ttl", choices=tuple(REGISTRY))  # every registered strategy
    p.add_argument("--cut", default=None, help="cut point name (see `ttl cuts ARCH`); none = full model")
    p.add_argument("--source", default="fractal",
                   help="fractal (shipped, works offline) | imagenet | imagenet:VERSION | scratch | path to a checkpoint")
    p.add_argument("--width", type=width_factor, default=None,
                   help="TransFusion width factor of the slimmed blocks (default: 0.5; TransFusion only)")
    p.add_argument("--slim-from", default=None, help="TransFusion: first slimmed block (default: first after cut)")
    add_data_args(p)
    defaults = train_defaults()
    p.add_argument("--epochs", type=positive_int, default=defaults["epochs"])
    p.add_argument("--batch", type=positive_int, default=defaults["batch_size"])
    p.add_argument("--lr", type=positive_float, default=defaults["lr"])
    p.add_argument("--weight-decay", type=nonnegative_float, default=defaults["weight_decay"])
    p.add_argument("--schedule", default=defaults["schedule"], choices=("cosine", "plateau", "constant"))
    p.add_argument("--patience", type=nonnegative_int, default=defaults["patience"],
                   help="early-stopping patience in epochs (0: off)")
    p.add_argument("--no-class-weights", action="store_true", help="plain (unweighted) loss")
    p.add_argument("--size", type=image_size, default=None, help="training image size (default: the data's)")
    p.add_argument("--amp", default=defaults["amp"], choices=("auto", "bf16", "fp16", "off"))
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=nonnegative_int, default=defaults["seed"])
    p.add_argument("--n-boot", type=nonnegative_int, default=defaults["n_boot"], help="bootstrap resamples for the CIs")
    p.add_argument("--out", default=None,
                   help="run folder (default: runs/<dataset>/<arch>-<source>-<strategy>-<cut>-s<seed>)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ttl.cli import print_json
    from ttl.train import TrainConfig
    from ttl.train.runs import RunSpec, TrainJob, run_job, run_params

    check_model_args(args.arch, args.cut, args.source, args.device)
    check_strategy_options(args)
    width = 0.5 if args.width is None else args.width  # recorded for every strategy (part of the run key)
    data = load_splits(args)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, weight_decay=args.weight_decay,
                      schedule=args.schedule, patience=args.patience, class_weighted=not args.no_class_weights,
                      image_size=args.size, amp=args.amp, compile=args.compile, device=args.device,
                      seed=args.seed, n_boot=args.n_boot)
    train = data["train"]
    default_out = (f"runs/{train.name}/{args.arch}-{source_label(args.source)}-{args.strategy}-"
                   f"{args.cut or 'full'}-s{args.seed}")
    out = Path(args.out or default_out)
    params = run_params(args.strategy, args.arch, args.cut, args.source, width, args.slim_from,
                        _num_outputs(train), args.dataset, root=args.root, **data_overrides(args))
    job = TrainJob(RunSpec(args.strategy, args.cut, width, args.slim_from, lr=args.lr, seed=args.seed), args.arch,
                   args.source, cfg, str(out), params)  # the run layer's one path to a training
    result = run_job(job, data, on_epoch_end=None if sys.stderr.isatty() else epoch_logger(args.epochs))
    summary = {"result": str(result.path), "reused": result.reused, "best_epoch": result.best_epoch,
               "metrics": result.metrics}
    if args.json:
        print_json(summary)
    else:
        for split, m in result.metrics.items():
            auc = m["auroc"]
            ci = f" [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]" if auc.get("ci_low") is not None else ""
            print(f"{split}: AUROC {auc['value']:.3f}{ci}  balanced acc {m['balanced_accuracy']['value']:.3f}")
        print(f"result: {result.path}{' (reused)' if result.reused else ''}")
    return 0


def _num_outputs(dataset: Any) -> int:
    return len(dataset.classes)
