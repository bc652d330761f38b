"""``--executor`` and the Ray options shared by ``ttl search`` and ``ttl bench sweep``."""

from __future__ import annotations

import argparse
from typing import Any

from ttl.commands.argtypes import bounded, nonnegative_int, positive_int

positive_fraction = bounded(float, 0.0, None, low_open=True)
nonnegative_float = bounded(float, 0.0, None)


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
    p.add_argument("--ray-threads-per-task", type=positive_int, default=None,
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
