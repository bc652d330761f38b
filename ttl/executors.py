"""Where the trainings of a grid, sweep or search run: here, one after another (``local``), or as
Ray tasks on this machine or a cluster (``ray``, the optional ``ray`` extra).

Both go through the run layer (:func:`ttl.train.runs.run_job`): a finished run is read back, never
retrained; an interrupted one resumes from its checkpoint; results land in the same run folders.
The Ray executor adds what a cluster needs:

- the datasets are put into Ray's object store once per call and handed to every task (workers
  never regenerate or reload them);
- each task asks for ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs (fractions share a GPU
  between small truncated models);
- a task whose worker dies (killed, pre-empted, out of memory) is retried by Ray up to
  ``max_retries`` times and resumes from the run's last checkpoint (the dead worker's run lock is
  taken over, :mod:`ttl.train.lock`);
- two calls that share runs never train one twice: a task that finds its run folder locked by a
  live writer waits for it and reads the finished run back;
- on a CPU, each task uses as many torch threads as the CPUs it asks for (one by default): more
  would oversubscribe the cores (on 2 cores, 2 tasks x 2 threads ran a sweep 7x slower). CPU
  kernels split their sums by thread, so the numbers then differ from a local run's in the last
  digits; ``threads_per_task`` equal to the local count gives identical numbers (each run records
  its count, ``torch_threads``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from ttl.errors import ConfigError, RunLockedError, TTLError
from ttl.train.runs import TrainJob, run_job

EXECUTORS = ("local", "ray")


@dataclass
class RunOutcome:
    """What a training returns to the caller (small and picklable: no model from a remote task)."""

    run_dir: str
    metrics: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    stop_reason: str | None
    reused: bool
    params: int
    trainable_params: int
    wall_seconds: float
    worker_pid: int
    model: Any = None  # the trained model, local executor only


def _outcome(res: Any, job: TrainJob, wall: float, keep_model: bool) -> RunOutcome:
    from ttl.efficiency import count_params

    return RunOutcome(job.run_dir, res.metrics, res.history, int(res.best_epoch), res.stop_reason, bool(res.reused),
                      count_params(res.model), count_params(res.model, trainable_only=True), wall, os.getpid(),
                      res.model if keep_model else None)


def run_waiting(job: TrainJob, data: dict[str, Any], lock_wait_s: float = 24 * 3600, poll_s: float = 0.5,
                keep_model: bool = False) -> RunOutcome:
    """:func:`~ttl.train.runs.run_job`, waiting while another live process writes the same run
    folder; then the run it finished is read back instead of trained again."""
    t0 = time.perf_counter()
    while True:
        try:
            res = run_job(job, data)
            break
        except RunLockedError:
            if time.perf_counter() - t0 > lock_wait_s:
                raise
            time.sleep(poll_s)
    return _outcome(res, job, time.perf_counter() - t0, keep_model)


class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[TrainJob], data: dict[str, Any], desc: str = "trainings",
            progress: bool | None = None) -> list[RunOutcome]:
        """Run every job on ``data``; the outcomes in the order of ``jobs``."""


class LocalExecutor:
    """One training after another in this process (the default; what the book runs)."""

    name = "local"

    def run(self, jobs: Sequence[TrainJob], data: dict[str, Any], desc: str = "trainings",
            progress: bool | None = None) -> list[RunOutcome]:
        bar = tqdm(jobs, desc=desc, disable=None if progress is None else not progress)
        out = [run_waiting(job, data, lock_wait_s=0.0, keep_model=True) for job in bar]
        bar.close()
        return out


def require_ray() -> Any:
    """The ray module, or a ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the ray executor needs Ray: pip install 'ttl-study[ray]' (or pip install ray); "
                          "the local executor needs nothing") from exc
    return ray


def _ray_task(job: TrainJob, data: dict[str, Any], threads: int | None, lock_wait_s: float) -> RunOutcome:
    """The body of one Ray task (in a worker process)."""
    if threads:
        torch.set_num_threads(threads)
    return run_waiting(job, data, lock_wait_s=lock_wait_s)


class RayExecutor:
    """Trainings as Ray tasks: ``address`` None starts (or joins) a local Ray, ``"auto"`` or
    ``"ray://host:10001"`` an existing cluster (``ray.init(address=...)``)."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
                 threads_per_task: int | None = None, max_retries: int = 3, lock_wait_s: float = 24 * 3600,
                 num_cpus: int | None = None) -> None:
        if cpus_per_task <= 0 or (gpus_per_task is not None and gpus_per_task < 0) or max_retries < 0:
            raise ConfigError("ray executor: cpus_per_task must be > 0, gpus_per_task >= 0, max_retries >= 0")
        self.address, self.cpus_per_task, self.gpus_per_task = address, float(cpus_per_task), gpus_per_task
        self.threads_per_task = threads_per_task
        self.max_retries, self.lock_wait_s, self.num_cpus = int(max_retries), float(lock_wait_s), num_cpus

    def start(self) -> Any:
        """Start (or join) Ray now, e.g. before timing; :meth:`run` does it when needed."""
        return self._init()

    def _init(self) -> Any:
        ray = require_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": self.address, "include_dashboard": False, "log_to_driver": False,
                                      "logging_level": logging.ERROR}  # Ray's start-up chatter stays out of the CLI
            if self.address is None and self.num_cpus is not None:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
        return ray

    def _gpus(self, jobs: Sequence[TrainJob]) -> float:
        if self.gpus_per_task is not None:
            return float(self.gpus_per_task)
        on_cpu = all(str(j.cfg.device) == "cpu" for j in jobs)
        return 1.0 if torch.cuda.is_available() and not on_cpu else 0.0

    def run(self, jobs: Sequence[TrainJob], data: dict[str, Any], desc: str = "trainings",
            progress: bool | None = None) -> list[RunOutcome]:
        if not jobs:
            return []
        ray = self._init()
        data_ref = ray.put(data)  # once: every task reads the same object
        gpus = self._gpus(jobs)
        threads = self.threads_per_task or (max(1, int(self.cpus_per_task)) if gpus == 0 else None)
        task = ray.remote(_ray_task).options(num_cpus=self.cpus_per_task, num_gpus=gpus, max_retries=self.max_retries)
        refs = [task.remote(job, data_ref, threads, self.lock_wait_s) for job in jobs]
        bar = tqdm(total=len(refs), desc=f"{desc} (ray)", disable=None if progress is None else not progress)
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                bar.update(len(done))
            return [_get(ray, r) for r in refs]
        finally:
            bar.close()


def _get(ray: Any, ref: Any) -> RunOutcome:
    """A task's outcome; a TTLError raised in the worker is raised here as itself (a clear CLI message)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, TTLError):
            raise cause from None
        raise


def make_executor(executor: str | Executor | None = "local", **options: Any) -> Executor:
    """An executor by name (``local``, ``ray``) or the one given; ``options`` go to :class:`RayExecutor`."""
    if executor is None or executor == "local":
        return LocalExecutor()
    if executor == "ray":
        return RayExecutor(**{k: v for k, v in options.items() if v is not None})
    if isinstance(executor, str):
        raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    return executor
