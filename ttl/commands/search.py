"""``ttl search``: the two-stage hierarchical cut search (optionally against the exhaustive sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ttl.commands.train import (add_data_args, check_model_args, data_overrides, load_splits, source_label,
                                train_defaults)
from ttl.commands.argtypes import image_size, nonnegative_int, positive_float, positive_int
from ttl.commands.executor_args import add_executor_args, executor_from_args


def _neighbourhood(text: str) -> str | int:
    """'stage', 'adjacent' or a radius >= 0, checked when parsed (not after stage 1's trainings)."""
    from ttl.search import NEIGHBOURHOODS

    if text.isdigit():
        return int(text)
    if text in NEIGHBOURHOODS:
        return text
    raise argparse.ArgumentTypeError(f"must be {' or '.join(NEIGHBOURHOODS)} or an integer radius >= 0, got {text!r}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find a cut: two-stage hierarchical search (and the full sweep)",
                       description="Train STRATEGY at the stage boundaries of ARCH, then at every cut around "
                                   "the best one, and choose the cut with the best mean validation metric "
                                   "over the seeds; the test split is evaluated for the chosen cut only. "
                                   "With --exhaustive, also train every cut and compare. Trials live in "
                                   "OUT/<cut>-s<seed>/; rerunning reuses finished ones. Writes OUT/search.json "
                                   "(and OUT/exhaustive.json).")
    p.add_argument("--arch", default="resnet18")
    from ttl.strategies import cut_strategies

    p.add_argument("--strategy", default="ttl", choices=cut_strategies(), help="a strategy that takes a cut")
    p.add_argument("--source", default="fractal",
                   help="fractal (shipped, works offline) | imagenet | imagenet:VERSION | scratch | path to a checkpoint")
    add_data_args(p)
    defaults = train_defaults()  # TrainConfig's own
    p.add_argument("--epochs", type=positive_int, default=defaults["epochs"])
    p.add_argument("--batch", type=positive_int, default=defaults["batch_size"])
    p.add_argument("--lr", type=positive_float, default=defaults["lr"])
    p.add_argument("--patience", type=nonnegative_int, default=defaults["patience"],
                   help="early-stopping patience in epochs (0: off)")
    p.add_argument("--size", type=image_size, default=None, help="training image size (default: the data's)")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0], help="seeds; the choice uses their mean")
    p.add_argument("--metric", default="auroc", choices=("auroc", "auprc", "balanced_accuracy", "f1", "loss"),
                   help="validation metric that chooses the cut (loss: lower is better)")
    p.add_argument("--neighbourhood", type=_neighbourhood, default="stage",
                   help="stage 2 around the best boundary: 'stage' (its stage), 'adjacent' (up to the "
                        "neighbouring boundaries) or an integer radius in cuts")
    p.add_argument("--test-all", action="store_true",
                   help="also report the test metric of every trial (never used to choose)")
    p.add_argument("--exhaustive", action="store_true", help="also train every cut and compare with the search")
    p.add_argument("--n-boot", type=nonnegative_int, default=defaults["n_boot"], help="bootstrap resamples for the test CIs")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None,
                   help="folder of the trials (default: runs/<dataset>/search-<arch>-<source>-<strategy>)")
    add_executor_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ttl.cli import print_json
    from ttl.search import compare, exhaustive, hierarchical
    from ttl.train import TrainConfig

    check_model_args(args.arch, None, args.source, args.device)
    executor = executor_from_args(args)  # an unknown option or a missing Ray before any data work
    if args.executor == "ray":
        from ttl.executors import require_ray

        require_ray()
    data = load_splits(args)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=args.lr, patience=args.patience,
                      image_size=args.size, device=args.device, n_boot=args.n_boot)
    train = data["train"]
    out = Path(args.out or f"runs/{train.name}/search-{args.arch}-{source_label(args.source)}-{args.strategy}")
    common: dict[str, Any] = dict(strategy=args.strategy, test=data["test"], seeds=args.seeds, metric=args.metric,
                                  test_all=args.test_all, executor=executor,
                                  data_params={"root": args.root, **data_overrides(args)})
    hier = hierarchical(train, data["val"], args.arch, args.source, cfg, out, neighbourhood=args.neighbourhood,
                        **common)
    summary: dict[str, Any] = {"search": _brief(hier)}
    if args.exhaustive:
        exh = exhaustive(train, data["val"], args.arch, args.source, cfg, out, **common)
        summary["exhaustive"] = _brief(exh)
        summary["comparison"] = compare(hier, exh)
    if args.json:
        print_json(summary)
        return 0
    print(hier.per_cut().to_string(index=False))
    _print(hier)
    if args.exhaustive:
        c = summary["comparison"]
        print(f"sweep best: {c['sweep_best']} ({'found' if c['found_best'] else 'missed'} by the search, "
              f"rank {c['rank_in_sweep']}/{c['n_cuts']}); search cost {c['trainings_ratio']:.0%} of the "
              f"sweep's trainings, {c['seconds_ratio']:.0%} of its {c['unit']}")
    return 0


def _brief(res: Any) -> dict[str, Any]:
    test = res.chosen_test or {}
    return {"chosen_cut": res.chosen_cut, f"val_{res.metric}": res.chosen_val,
            f"test_{res.metric}": test.get("mean"), "cost": res.cost, "summary": str(res.path),
            "trials": res.df.to_dict(orient="records")}


def _print(res: Any) -> None:
    test = (res.chosen_test or {}).get("mean")
    extra = f", test {res.metric} {test:.4f}" if test is not None else ""
    val = f"{res.chosen_val:.4f}" if res.chosen_val is not None else "n/a"
    cost = res.cost
    print(f"chosen cut: {res.chosen_cut} (val {res.metric} {val}{extra}); {cost['trainings']} trainings, "
          f"{cost['train_seconds']:.1f} {cost['unit']} ({cost['trained_now']} trained now, {cost['reused']} reused)")
    print(f"summary: {res.path}")
