"""``ttl probe``: linear probes on frozen pooled features at every cut, for several sources."""

from __future__ import annotations

import argparse
from pathlib import Path
from ttl.commands.argtypes import image_size, nonnegative_int


def register(sub: argparse._SubParsersAction) -> None:
    from ttl.commands.train import add_data_args

    p = sub.add_parser("probe", help="feature-level transferability: a linear probe at every cut",
                       description="Fit a logistic-regression probe on the frozen, globally pooled features of "
                                   "every cut of ARCH for each weight source (e.g. fractal vs scratch), on the "
                                   "train split; report test AUROC with bootstrap CIs.")
    p.add_argument("--arch", default="resnet18")
    p.add_argument("--sources", nargs="+", default=["fractal", "scratch"])
    add_data_args(p)
    p.add_argument("--size", type=image_size, default=None, help="image size fed to the network")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--n-boot", type=nonnegative_int, default=200)
    p.add_argument("--out", default=None, help="save the table as JSON with provenance")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ttl.cli import print_json
    from ttl.commands.train import load_splits
    from ttl.experiments import probe_sources
    from ttl.provenance import stopwatch, write_result

    from ttl.commands.train import check_model_args, check_out_file

    for source in args.sources:  # every name checked before the data are made
        check_model_args(args.arch, None, source, args.device)
    check_out_file(args.out)
    data = load_splits(args, ("train", "test"))
    with stopwatch() as t:
        df = probe_sources(args.arch, args.sources, data["train"], data["test"], image_size=args.size,
                           device=args.device, seed=args.seed, n_boot=args.n_boot)
    rows = df.to_dict(orient="records")
    if args.out:
        params = {k: v for k, v in vars(args).items() if k != "func"}
        write_result(Path(args.out), {"rows": rows}, params, device=args.device, wall_time_s=t["seconds"])
    if args.json:
        print_json({"rows": rows})
        return 0
    wide = df.pivot(index="cut_index", columns="source", values="auroc")
    wide.index = df.drop_duplicates("cut_index").set_index("cut_index")["cut"]
    print(f"linear-probe test AUROC per cut ({args.arch}, {data['test'].name})")
    print(wide.round(3).to_string())
    return 0
