"""``ttl evaluate RUN``: evaluate a trained run folder on a split of a dataset."""

from __future__ import annotations

import argparse
from ttl.commands.argtypes import nonnegative_int


def register(sub: argparse._SubParsersAction) -> None:
    from ttl.commands.train import add_data_args

    p = sub.add_parser("evaluate", help="evaluate a trained run on a dataset split",
                       description="Rebuild the model of RUN (a folder written by `ttl train`), load its "
                                   "weights and report AUROC, AUPRC, balanced accuracy and F1 with bootstrap "
                                   "CIs on a split. Default dataset: the one it was trained on, with its recorded "
                                   "settings; each data option given here replaces only that setting.")
    p.add_argument("run", help="run folder holding result.json and model.pt")
    add_data_args(p)
    p.set_defaults(dataset=None)
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--device", default="auto")
    p.add_argument("--n-boot", type=nonnegative_int, default=1000)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ttl.cli import print_json
    from ttl.commands.train import data_overrides
    from ttl.data import load
    from ttl.train import TrainConfig, evaluate

    from ttl.train.loop import resolve_device
    from ttl.train.runs import load_run

    resolve_device(args.device)  # a typo is named before the run and the data are read
    model, params = load_run(args.run)
    data_params = params.get("data", {})
    recorded = data_params.get("dataset")
    dataset = args.dataset or recorded
    # the recorded data settings, each replaced only by an option given here (another dataset: none kept)
    kept = {k: v for k, v in data_params.items() if k not in ("dataset", "root")} if dataset == recorded else {}
    given = data_overrides(args)
    applied = {**kept, **given}
    if not args.json:
        shown = ", ".join(f"{k}={v}{'' if k in given else ' (recorded)'}" for k, v in applied.items())
        print(f"data: {dataset} {args.split}" + (f" with {shown}" if shown else ""))
    root = args.root or (data_params.get("root") if dataset == recorded else None)
    ds = load(dataset, root=root, split=args.split, **applied)
    trained_for = params.get("model", {}).get("num_classes")
    if trained_for is not None and len(ds.classes) != int(trained_for):
        from ttl.errors import ConfigError

        raise ConfigError(f"{args.run} was trained for {trained_for} classes but {dataset} has "
                          f"{len(ds.classes)} ({', '.join(ds.classes)}): evaluate it on a dataset with its classes")
    cfg = TrainConfig(device=args.device, n_boot=args.n_boot, image_size=params["train"].get("image_size"))
    metrics = evaluate(model, ds, cfg)
    if args.json:
        print_json({"run": args.run, "dataset": dataset, "split": args.split, "data": applied, "metrics": metrics})
    else:
        for name in ("auroc", "auprc", "balanced_accuracy", "f1"):
            m = metrics[name]
            ci = f" [{m['ci_low']:.3f}, {m['ci_high']:.3f}]" if m["ci_low"] is not None else ""
            print(f"{name:>17}: {m['value']:.3f}{ci}")
    return 0
