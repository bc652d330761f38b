"""``ttl cuts ARCH``: the natural cut points of an architecture."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("cuts", help="list the cut points of an architecture",
                       description="List the natural cut points (block boundaries) of ARCH with "
                                   "channels, stride and the parameters kept up to each cut.")
    p.add_argument("arch", help="torchvision ResNet or DenseNet name, e.g. resnet50")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ttl.cli import print_json
    from ttl.efficiency import count_params
    from ttl.models import build, feature_info

    rows = []
    for info in feature_info(args.arch):
        model = build(args.arch, info.name, source="scratch")
        rows.append({**info.as_dict(), "params_kept": count_params(model.backbone)})
    if args.json:
        print_json({"arch": args.arch, "cuts": rows})
        return 0
    print(f"{args.arch}: {len(rows)} cut points")
    print(f"{'#':>3}  {'cut':<13} {'channels':>8} {'stride':>6} {'params kept':>12}")
    for r in rows:
        print(f"{r['index']:>3}  {r['name']:<13} {r['channels']:>8} {r['reduction']:>6} {r['params_kept']:>12,}")
    return 0
