"""``ttl data``: list the dataset manifests, show a dataset's counts per split and class, or audit
a phantom level for shortcuts.

``ttl data list [--json]``
``ttl data show NAME [--root DIR] [--split SPLIT|all] [--out grid.png] [--json] [--size N] ...``
``ttl data audit LEVEL [--n-per-class N] [--size S] [--contrast C] [--seed K] [--n-boot B] [--json]``
"""

from __future__ import annotations

import argparse
import io
import json
from typing import Any
from ttl.commands.argtypes import image_size, nonnegative_int, positive_int
from ttl.commands.dataset_args import add_kind_options, kind_option_type, kind_overrides

SPLIT_CHOICES = ("all", "train", "val", "test")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command with its ``list`` and ``show`` actions."""
    p = subparsers.add_parser("data", help="list datasets, show class counts and example images",
                              description="Inspect the datasets described under data_manifests/.")
    actions = p.add_subparsers(dest="data_action", metavar="ACTION")
    p.set_defaults(func=lambda args: _usage(p))

    ls = actions.add_parser("list", help="list the shipped dataset manifests")
    ls.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ls.set_defaults(func=run_list)

    sc = actions.add_parser("schema", help="the JSON Schema of a dataset manifest (or of a book profile)",
                            description="Print the JSON Schema of dataset manifests (ttl.data.manifest."
                                        "ManifestSchema) or, with --profile, of book profiles, for an "
                                        "editor's YAML support (e.g. a yaml-language-server $schema line).")
    sc.add_argument("--profile", action="store_true", help="the schema of a book profile instead")
    sc.set_defaults(func=run_schema)

    sh = actions.add_parser("show", help="counts per split and class, and a grid of examples",
                            description="Load NAME (a manifest name or a path to a manifest YAML), print "
                                        "the number of images per split and class, and with --out write "
                                        "a grid of example images as PNG.")
    sh.add_argument("name", metavar="NAME", help="dataset name (see `ttl data list`) or manifest path")
    sh.add_argument("--root", default=None, help="folder holding the dataset's files (real datasets)")
    sh.add_argument("--split", default="all", choices=SPLIT_CHOICES, help="split to show (default: all)")
    sh.add_argument("--out", default=None, metavar="PNG", help="write a grid of examples to this PNG")
    sh.add_argument("--n", type=positive_int, default=16, help="number of examples in the grid (default 16)")
    sh.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sh.add_argument("--no-cache", action="store_true", help="do not read or write the decoded-image cache")
    g = sh.add_argument_group("overrides")
    g.add_argument("--size", type=image_size, default=None, help="image size in pixels (any dataset)")
    g.add_argument("--n-per-class", type=positive_int, default=None, help="phantoms: images per class and split")
    g.add_argument("--seed", type=nonnegative_int, default=None, help="phantoms: generator seed")
    add_kind_options(sh.add_argument_group("options of one dataset kind (ttl.data.kinds)"))
    sh.set_defaults(func=run_show)

    au = actions.add_parser("audit", help="shortcut audit of a phantom level (simple baselines on hand-made features)",
                            description="Generate train/test splits of phantom LEVEL, fit a logistic regression "
                                        "and gradient boosting on each family of hand-made features (intensity, "
                                        "edge energy, LBP and Gabor texture, blob shape, row/column profiles) and "
                                        "report each one's test AUROC with a bootstrap 95% CI. A family of a lower "
                                        "level than the label's passes when its AUROC is at most 0.60.")
    au.add_argument("level", metavar="LEVEL", help="low, mid or high (or phantom-low, ...)")
    au.add_argument("--n-per-class", type=positive_int, default=300, help="images per class in each split (default 300)")
    au.add_argument("--size", type=image_size, default=64, help="image size in pixels (default 64)")
    au.add_argument("--contrast", type=kind_option_type("phantom", "contrast"), default=1.0, help="lesion conspicuity (1 = calibrated default)")
    au.add_argument("--seed", type=nonnegative_int, default=0, help="generator seed (default 0)")
    au.add_argument("--n-boot", type=positive_int, default=500, help="bootstrap resamples of each CI (default 500)")
    au.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    au.set_defaults(func=run_audit)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out = {"size": args.size, "n_per_class": args.n_per_class, "seed": args.seed}
    return {**{k: v for k, v in out.items() if v is not None}, **kind_overrides(args)}


def run_schema(args: argparse.Namespace) -> int:
    if args.profile:
        from ttl.book import ProfileSchema as model
    else:
        from ttl.data.manifest import ManifestSchema as model
    print(json.dumps(model.model_json_schema(), indent=2))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ttl.data import list_datasets, load_manifest

    rows = []
    for name in list_datasets():
        m = load_manifest(name)
        rows.append({"name": name, "kind": m.kind, "task": m.task, "classes": len(m.classes),
                     "registration": m.data["access"]["registration"], "licence": m.data["licence"],
                     "source": m.source["url"]})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows) if rows else 4
    print(f"{'name':<{width}}  {'kind':<8}  {'task':<10}  {'K':>2}  {'registration':<12}  source")
    for r in rows:
        reg = "yes" if r["registration"] else "no"
        print(f"{r['name']:<{width}}  {r['kind']:<8}  {r['task']:<10}  {r['classes']:>2}  {reg:<12}  {r['source']}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ttl.data import load, load_manifest, summary
    from ttl.errors import ConfigError

    if args.n < 1:
        raise ConfigError(f"--n must be at least 1, got {args.n}")
    m = load_manifest(args.name)
    splits = ("train", "val", "test") if args.split == "all" else (args.split,)
    datasets = [load(m, root=args.root, split=s, cache=not args.no_cache, progress=not args.json,
                     **_overrides(args)) for s in splits]
    table = summary(datasets)
    out_path = None
    if args.out:
        out_path = _write_grid(datasets[0], args.out, args.n)
    if args.json:
        counts = {ds.split: dict(zip(ds.classes, (int(c) for c in ds.class_counts()))) for ds in datasets}
        doc = {"dataset": m.name, "task": m.task, "classes": m.classes, "synthetic": bool(m.data.get("synthetic")),
               "source": m.source["url"], "images": {ds.split: len(ds) for ds in datasets},
               "counts": counts, "image_shape": list(datasets[0].images.shape[1:]), "grid": out_path}
        print(json.dumps(doc, indent=2))
        return 0
    first = datasets[0]
    print(f"{m.name}: {m.task}, {len(m.classes)} classes, images {first.channels}x{first.size[0]}x{first.size[1]}"
          + (" (SYNTHETIC)" if m.data.get("synthetic") else ""))
    pivot = table.pivot_table(index="class", columns="split", values="count", aggfunc="sum", sort=False)
    pivot = pivot.reindex(index=m.classes, columns=[s for s in splits])
    if m.task != "multilabel":
        pivot.loc["total"] = pivot.sum()
    else:
        pivot.loc["images"] = [len(ds) for ds in datasets]
    print(pivot.astype(int).to_string())
    if out_path:
        print(f"examples written to {out_path}")
    return 0


def run_audit(args: argparse.Namespace) -> int:
    from ttl.data import phantoms
    from ttl.data.audit import format_table, shortcut_audit, verdict
    from ttl.errors import ConfigError

    level = args.level.removeprefix("phantom-")
    if level not in phantoms.LEVELS:
        raise ConfigError(f"audit LEVEL must be one of {list(phantoms.LEVELS)} (or phantom-<level>), "
                          f"got {args.level!r}")
    phantoms.PhantomParams(level, args.n_per_class, args.size, args.seed, contrast=args.contrast).validate()
    table = shortcut_audit(level, n_per_class=args.n_per_class, size=args.size, contrast=args.contrast,
                           seed=args.seed, n_boot=args.n_boot)
    if args.json:
        doc = {"level": level, "margin": float(table["margin"].iloc[0]), "passes": verdict(table),
               "rows": table.to_dict(orient="records")}
        print(json.dumps(doc, indent=2))
    else:
        print(format_table(table))
    return 0


def _write_grid(dataset: Any, out: str, n: int) -> str:
    from ttl.data.show import example_grid
    from ttl.provenance import atomic_write_bytes

    fig = example_grid(dataset, n=n)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    return str(atomic_write_bytes(out, buf.getvalue()))
