"""``ttl pretrain``: FractalDB-style pre-training of a torchvision backbone (an offline source).

Also runnable alone: ``python -m ttl.commands.pretrain --arch resnet18 ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ttl.errors import TTLError
from ttl.commands.argtypes import image_size, nonnegative_float, nonnegative_int, positive_float, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``ttl pretrain``."""
    p.add_argument("--arch", default="resnet18", help="torchvision architecture (default resnet18)")
    p.add_argument("--classes", type=positive_int, default=64, help="number of fractal classes (IFS codes)")
    p.add_argument("--images-per-class", type=positive_int, default=64, help="training images per class")
    p.add_argument("--size", type=image_size, default=64, help="image size in pixels")
    p.add_argument("--epochs", type=positive_int, default=10)
    p.add_argument("--batch", type=positive_int, default=128, help="batch size")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate (default 0.1*batch/256 for sgd, 1e-3*batch/256 for adamw)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    p.add_argument("--weight-decay", type=nonnegative_float, default=None,
                   help="default 1e-4 for sgd, 0.05 for adamw")
    p.add_argument("--points", type=positive_int, default=None,
                   help="chaos-game points per image (default: one per pixel, 2k..100k)")
    p.add_argument("--render", choices=("point", "patch"), default="point",
                   help="draw points as pixels or as FractalDB's random 3x3 patches")
    p.add_argument("--val-per-class", type=positive_int, default=None,
                   help="held-out images per class (fresh instances; default images/5 in 4..50)")
    p.add_argument("--out", default=None, help="output folder (default runs/pretrain/<arch>)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:i]")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--register", action="store_true",
                   help="copy the exported backbone into weights/ and add it to weights/manifest.json")
    p.add_argument("--weights-dir", default=None, help="where --register writes (default $TTL_WEIGHTS_DIR, else the repository's weights/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the manifest entry as JSON")


def _check(args: argparse.Namespace) -> None:
    """An unknown architecture or a --weights-dir that is a file, refused before the pre-training."""
    from torchvision.models import list_models

    from ttl.errors import ConfigError

    if args.arch not in list_models():
        raise ConfigError(f"unknown torchvision architecture {args.arch!r} (see torchvision.models.list_models())")
    if args.register and args.weights_dir is not None and Path(args.weights_dir).exists() \
            and not Path(args.weights_dir).is_dir():
        raise ConfigError(f"--weights-dir {args.weights_dir} is a file: give the folder of the weights manifest")
    if args.register and args.weights_dir is None:
        from ttl.pretrain.train import default_weights_dir

        default_weights_dir()  # an installed package has no writable default: say so before training


def run(args: argparse.Namespace) -> int:
    """Handler: pre-train, optionally register; returns the exit code."""
    from ttl.pretrain.train import pretrain, register_weights

    _check(args)
    entry = pretrain(
        arch=args.arch, n_classes=args.classes, images_per_class=args.images_per_class,
        size=args.size, epochs=args.epochs, batch_size=args.batch, lr=args.lr,
        out_dir=args.out or f"runs/pretrain/{args.arch}", device=args.device, seed=args.seed,
        amp=not args.no_amp, optimizer=args.optimizer, weight_decay=args.weight_decay,
        val_per_class=args.val_per_class, n_points=args.points, render_mode=args.render,
        progress=not args.no_progress)
    if args.register:
        entry = register_weights(entry, args.weights_dir)
    if args.json:
        print(json.dumps(entry, indent=2))
    else:
        print(f"{entry['arch']}: val accuracy {entry['pretrain_val_accuracy']:.3f} "
              f"({entry['n_classes']} classes), {entry['wall_time_s']:.0f} s -> {entry['file']}"
              + (" (registered)" if args.register else ""))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``pretrain`` to the ``ttl`` sub-commands (handler in ``func``)."""
    p = subparsers.add_parser("pretrain", help="FractalDB-style pre-training of an offline weight source",
                              description=__doc__)
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (same options as ``ttl pretrain``)."""
    parser = argparse.ArgumentParser(prog="ttl pretrain", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except TTLError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
