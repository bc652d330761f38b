"""``ttl bench infer|train``: cost of each cut and finetuning throughput, as JSON with provenance."""

from __future__ import annotations

import argparse
from pathlib import Path
from ttl.commands.argtypes import image_size, nonnegative_int, positive_int
from ttl.commands.dataset_args import kind_option_type
from ttl.commands.executor_args import add_executor_args, executor_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: inference cost per cut, training throughput",
                       description="Benchmarks. Results print as a table (or --json) and, with --out, are "
                                   "saved as JSON with provenance.")
    bsub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    i = bsub.add_parser("infer", help="params, FLOPs, latency and throughput of every cut")
    i.add_argument("--arch", default=["resnet50"], nargs="+", help="one or more architectures")
    i.add_argument("--cuts", nargs="*", default=None, help="cuts to measure (default: all)")
    i.add_argument("--size", type=image_size, default=224, help="input image size in pixels (default: 224)")
    i.add_argument("--latency-batch", type=positive_int, default=1, help="batch size of the latency timing (default: 1)")
    i.add_argument("--throughput-batch", type=positive_int, default=64,
                   help="batch size of the throughput timing (default: 64)")
    i.add_argument("--warmup", type=nonnegative_int, default=3, help="untimed forward passes first (default: 3)")
    i.add_argument("--repeats", type=positive_int, default=10, help="timed forward passes; the median is reported (default: 10)")
    i.add_argument("--dtype", default="float32", choices=("float32", "bf16", "fp16"),
                   help="float32, or autocast to bf16/fp16 (default: float32)")
    _common(i)
    i.set_defaults(func=run_infer)
    t = bsub.add_parser("train", help="images/s of the real finetuning path vs the pure-compute bound")
    t.add_argument("--arch", default="resnet50", help="architecture (default: resnet50; see ttl cuts)")
    t.add_argument("--cut", default=None, help="keep the blocks up to this cut, e.g. layer2.3 (default: full model)")
    t.add_argument("--size", type=image_size, default=224, help="training image size in pixels (default: 224)")
    t.add_argument("--batch", type=positive_int, default=128, help="batch size (default: 128)")
    t.add_argument("--amp", default="bf16", choices=("bf16", "fp16", "off"),
                   help="autocast precision on GPU (default: bf16; the CPU always runs float32)")
    t.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory format on GPU")
    t.add_argument("--compile", action="store_true", help="torch.compile the model")
    t.add_argument("--steps", type=positive_int, default=20, help="training steps per timed repeat (default: 20)")
    t.add_argument("--warmup", type=nonnegative_int, default=5, help="untimed steps before each timing (default: 5)")
    t.add_argument("--repeats", type=positive_int, default=3, help="timed repeats; medians are reported (default: 3)")
    t.add_argument("--dataset-images", type=positive_int, default=2048,
                   help="size of the synthetic uint8 grey image set of the real path (default: 2048)")
    _common(t)
    t.set_defaults(func=run_train)
    w = bsub.add_parser("sweep", help="wall time of the exhaustive cut sweep vs the hierarchical search")
    w.add_argument("--arch", default="resnet50", help="architecture (default: resnet50)")
    w.add_argument("--dataset", default="phantom-mid", help="dataset name or manifest path (default: phantom-mid)")
    w.add_argument("--source", default="fractal", help="pretrained source weights (default: fractal)")
    w.add_argument("--epochs", type=positive_int, default=2, help="epochs per training (default: 2)")
    w.add_argument("--batch", type=positive_int, default=64, help="batch size (default: 64)")
    w.add_argument("--size", type=image_size, default=None, help="image size (default: the dataset's)")
    w.add_argument("--n-per-class", type=positive_int, default=None, help="phantoms: images per class and split")
    w.add_argument("--contrast", type=kind_option_type("phantom", "contrast"), default=None, help="phantoms: lesion conspicuity")
    w.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0], help="training seeds per cut (default: 0)")
    w.add_argument("--runs", default="runs/bench-sweep", help="folder for the trials (emptied first)")
    add_executor_args(w)
    _common(w)
    w.set_defaults(func=run_sweep)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda (default: auto)")
    p.add_argument("--out", default=None, help="save JSON with provenance to this file")
    p.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")


def _check(args: argparse.Namespace, archs: list[str], cuts: list[str | None], source: str | None = None) -> None:
    """Architectures, cuts, source, device and --out checked before anything is measured."""
    from ttl.commands.train import check_model_args, check_out_file

    for arch in archs:
        for cut in cuts or [None]:
            check_model_args(arch, cut, source or "scratch", args.device)
    check_out_file(args.out)


def _save(args: argparse.Namespace, payload: dict, seconds: float) -> None:
    from ttl.provenance import write_result

    if args.out:
        params = {k: v for k, v in vars(args).items() if k not in ("func",)}
        write_result(Path(args.out), payload, params, device=payload.get("device"), wall_time_s=seconds)


def run_infer(args: argparse.Namespace) -> int:
    from ttl.bench import bench_infer
    from ttl.cli import print_json
    from ttl.provenance import stopwatch

    _check(args, args.arch, args.cuts or [])
    rows = []
    with stopwatch() as t:
        for arch in args.arch:
            rows += bench_infer(arch, args.cuts, args.size, args.device, args.latency_batch,
                                args.throughput_batch, args.warmup, args.repeats, args.dtype)
    payload = {"rows": rows, "device": rows[0]["device"] if rows else None}
    _save(args, payload, t["seconds"])
    if args.json:
        print_json(payload)
        return 0
    print(f"{'arch':<12} {'cut':<12} {'params':>11} {'GFLOPs':>8} {'ratio':>6} {'lat ms':>8} {'img/s':>9}")
    for r in rows:
        print(f"{r['arch']:<12} {r['cut']:<12} {r['params']:>11,} {r['flops'] / 1e9:>8.2f} "
              f"{r['flops_ratio']:>6.2f} {r['latency_ms']:>8.2f} {r['throughput_img_s']:>9.1f}")
    print(f"device: {payload['device']}")
    return 0


def run_train(args: argparse.Namespace) -> int:
    from ttl.bench import bench_train
    from ttl.cli import print_json
    from ttl.provenance import stopwatch

    _check(args, [args.arch], [args.cut])
    with stopwatch() as t:
        res = bench_train(args.arch, args.cut, args.size, args.batch, args.device, args.amp,
                          not args.no_channels_last, args.compile, args.steps, args.warmup, args.repeats,
                          args.dataset_images)
    _save(args, res, t["seconds"])
    if args.json:
        print_json(res)
        return 0
    print(f"{res['arch']} cut={res['cut']} size={res['size']} batch={res['batch']} on {res.get('gpu', res['device'])}")
    print(f"  real finetuning path: {res['real_img_s']:9.1f} images/s")
    print(f"  pure-compute bound:   {res['bound_img_s']:9.1f} images/s")
    print(f"  ratio:                {res['ratio']:9.3f}")
    if "peak_memory_gb" in res:
        print(f"  peak GPU memory:      {res['peak_memory_gb']:9.2f} GiB")
    if "note" in res:
        print(f"  note: {res['note']}")
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from ttl.bench import bench_sweep
    from ttl.cli import print_json
    from ttl.provenance import stopwatch

    _check(args, [args.arch], [], args.source)
    executor = executor_from_args(args)
    if args.executor == "ray":
        from ttl.executors import require_ray

        require_ray()
    from ttl.data import load_manifest

    load_manifest(args.dataset)  # an unknown dataset is named before any training
    with stopwatch() as t:
        res = bench_sweep(args.arch, args.dataset, args.source, args.epochs, args.batch, args.size,
                          args.n_per_class, args.contrast, tuple(args.seeds), args.device, args.runs,
                          executor=executor)
    _save(args, res, t["seconds"])
    if args.json:
        print_json(res)
        return 0
    for kind in ("hierarchical", "exhaustive"):
        r = res[kind]
        print(f"{kind:>12}: {r['wall_s']:8.1f} s wall, {r['cost']['trainings']:3d} trainings, "
              f"chose {r['chosen_cut']} (val {r['chosen_val']:.3f})")
    c = res["compare"]
    print(f"search/sweep wall time: {res['wall_ratio']:.2f}; found the sweep's best cut: {c['found_best']} "
          f"(rank {c['rank_in_sweep']} of {c['n_cuts']}); device: {res.get('gpu', res['device'])}")
    if "executors" in res:
        e = res["executors"]
        for kind in ("hierarchical", "exhaustive"):
            print(f"{kind:>12}: local {e['local'][kind]:8.1f} s, ray {e['ray'][kind]:8.1f} s wall "
                  f"(x{e['speedup'][kind]:.2f}) on {e['workers'].get('cpus')} CPUs, {e['workers'].get('gpus')} GPUs")
        print(f"same choices: {e['same_choice']}; same validation numbers: {e['same_validation']}")
    return 0
