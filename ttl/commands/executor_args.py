"""``--executor`` and the Ray options shared by ``ttl search`` and ``ttl bench sweep``."""

from __future__ import annotations

import argparse
from typing import Any

from ttl.commands.argtypes import bounded, nonnegative_int

MAX_RESOURCES = 1024  # more CPUs or GPUs than any one task gets: a typo, not a request Ray could meet
MAX_THREADS = 1024  # torch.set_num_threads overflows far above this


def ray_quantity(low_open: bool) -> Any:
    """A Ray resource request: a fraction of one unit (shares it) or a whole number of units,
    at most MAX_RESOURCES (Ray refuses 1.5 GPUs with a traceback; we say so as a usage error)."""
    base = bounded(float, 0.0, MAX_RESOURCES, low_open=low_open)

    def parse(text: str) -> float:
        value = base(text)
        if value > 1 and value != int(value):
            raise argparse.ArgumentTypeError(f"must be a fraction of one (at most 1) or a whole number, got {text!r}")
        return value

    parse.__name__ = "ray_quantity"
    return parse


positive_fraction = ray_quantity(low_open=True)
nonnegative_float = ray_quantity(low_open=False)
threads_count = bounded(int, 1, MAX_THREADS)


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """The options choosing where trainings run (:mod:`ttl.executors`)."""
    from ttl.executors import EXECUTORS

    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="local: one training after another here; ray: Ray tasks (pip install 'ttl-study[ray]')")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster to join (auto, ray://HOST:10001); default: start a local Ray on this machine")
    p.add_argument("--ray-cpus-per-task", type=positive_fraction, default=1.0, help="CPUs each training asks for")
    p.add_argument("--ray-gpus-per-task", type=nonnegative_float, default=None,
                   help="GPUs each training asks for (fractions share a GPU; default: 1 with CUDA, else 0)")
    p.add_argument("--ray-threads-per-task", type=threads_count, default=None,
                   help="torch threads of each CPU training (default: its CPUs, rounded down, at least 1; this "
                        "process's count gives numbers identical to a local run's)")
    p.add_argument("--ray-retries", type=nonnegative_int, default=3,
                   help="retries of a training whose worker dies (it resumes from its checkpoint)")


def executor_from_args(args: argparse.Namespace) -> Any:
    """The executor the options ask for."""
    from ttl.executors import make_executor

    if args.executor != "ray" and (args.ray_address or args.ray_gpus_per_task is not None
                                   or args.ray_threads_per_task is not None):
        from ttl.errors import ConfigError

        raise ConfigError("--ray-address, --ray-gpus-per-task and --ray-threads-per-task need --executor ray")
    return make_executor(args.executor, address=args.ray_address, cpus_per_task=args.ray_cpus_per_task,
                         gpus_per_task=args.ray_gpus_per_task, threads_per_task=args.ray_threads_per_task,
                         max_retries=args.ray_retries)
