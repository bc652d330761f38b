"""Trainings fanned out as Ray tasks (ttl.executors), on a local Ray with 2 CPU workers.

Each test checks a promise of the executor against the local one on real (tiny) phantom data:
the same numbers, no run trained twice when two sweeps share it, a killed worker retried until
its run completes from its checkpoint, and the data put into Ray's object store once per call.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import threading
import time
from pathlib import Path

import pytest

from ttl.errors import ConfigError
from ttl.executors import LocalExecutor, RayExecutor, make_executor
from ttl.experiments.grid import StrategySpec, run_strategies
from ttl.search import exhaustive
from ttl.train import TrainConfig

pytestmark = pytest.mark.slow
ray = pytest.importorskip("ray")

CFG = TrainConfig(epochs=2, batch_size=16, n_boot=0, progress=False, patience=0, device="cpu")
SPECS = [StrategySpec("ttl", "layer1.0"), StrategySpec("ttl", "layer1.1")]


@pytest.fixture(scope="module")
def cluster():
    """A local Ray with two CPU workers for the whole module."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    import torch

    # the local runs' thread count, so that numbers are identical to the last bit
    yield RayExecutor(threads_per_task=torch.get_num_threads())
    ray.shutdown()


@pytest.fixture(scope="module")
def data():
    from ttl.data import load

    return {s: load("phantom-low", split=s, n_per_class=16, size=32, progress=False) for s in ("train", "val", "test")}


def _numbers(df):
    return df[["label", "seed", "val_auroc", "test_auroc", "best_epoch", "epochs_run"]].to_dict("records")


def test_ray_gives_the_local_numbers_in_the_same_run_store(cluster, data, tmp_path):
    local = run_strategies(SPECS, "resnet18", "scratch", data, CFG, [0, 1], tmp_path / "local")
    remote = run_strategies(SPECS, "resnet18", "scratch", data, CFG, [0, 1], tmp_path / "ray", executor=cluster)
    assert _numbers(remote) == _numbers(local)
    assert not remote["reused"].any()
    from ttl.provenance import read_json

    for a, b in zip(local["run_dir"], remote["run_dir"]):  # to the last bit: training losses per epoch
        docs = [read_json(Path(d) / "result.json") for d in (a, b)]
        assert [h["train_loss"] for h in docs[0]["history"]] == [h["train_loss"] for h in docs[1]["history"]]
        assert docs[0]["torch_threads"] == docs[1]["torch_threads"]  # the count asked for, not Ray's default
    assert [Path(p).relative_to(tmp_path / "ray") for p in remote["run_dir"]] == \
        [Path(p).relative_to(tmp_path / "local") for p in local["run_dir"]]
    # finished runs are read back, never retrained, by either executor
    again = run_strategies(SPECS, "resnet18", "scratch", data, CFG, [0, 1], tmp_path / "ray")
    assert again["reused"].all() and _numbers(again) == _numbers(local)
    # a sweep through Ray chooses and scores like the local one
    sweep_local = exhaustive(data["train"], data["val"], "resnet18", "scratch", CFG, tmp_path / "sl",
                             cuts=["stem", "layer1.0"], test=data["test"])
    sweep_ray = exhaustive(data["train"], data["val"], "resnet18", "scratch", CFG, tmp_path / "sr",
                           cuts=["stem", "layer1.0"], test=data["test"], executor=cluster)
    assert [(t.cut, t.val) for t in sweep_ray.trials] == [(t.cut, t.val) for t in sweep_local.trials]
    assert sweep_ray.chosen_cut == sweep_local.chosen_cut and sweep_ray.cost["trained_now"] == 2
    assert not any(t.reused for t in sweep_ray.trials)


def test_two_sweeps_sharing_runs_train_each_once(cluster, data, tmp_path):
    out = tmp_path / "shared"
    results = {}

    def sweep(name, cuts):
        results[name] = exhaustive(data["train"], data["val"], "resnet18", "scratch", CFG, out, cuts=cuts,
                                   executor=cluster)

    # both sweeps ask for layer1.0 at once: two tasks on the two workers, one run folder
    threads = [threading.Thread(target=sweep, args=("a", ["layer1.0"])),
               threading.Thread(target=sweep, args=("b", ["layer1.0"]))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert set(results) == {"a", "b"}
    shared = [t for r in results.values() for t in r.trials if t.cut == "layer1.0"]
    assert len(shared) == 2 and sum(not t.reused for t in shared) == 1  # trained once, read back once
    assert shared[0].val == shared[1].val
    assert results["a"].cost["trained_now"] + results["b"].cost["trained_now"] == 1


def test_a_worker_killed_mid_training_is_retried_and_the_run_completes(cluster, data, tmp_path):
    from ttl.experiments.grid import _run_spec
    from ttl.train.runs import train_job

    cfg = TrainConfig(epochs=6, batch_size=8, n_boot=0, progress=False, patience=0, device="cpu")
    spec = _run_spec(StrategySpec("ttl", "layer1.1"), 0, 1e-3)
    expected, = LocalExecutor().run([train_job(spec, "resnet18", "scratch", data, cfg, tmp_path / "local")], data)
    job = train_job(spec, "resnet18", "scratch", data, cfg, tmp_path / "ray")
    run = Path(job.run_dir)
    result = {}
    worker = threading.Thread(target=lambda: result.update(out=cluster.run([job], data)))
    worker.start()
    deadline = time.time() + 300
    while not (run / "checkpoint.pt").exists() and time.time() < deadline:  # an epoch done, more to come
        time.sleep(0.05)
    killed = json.loads((run / ".lock").read_text())["pid"]
    os.kill(killed, signal.SIGKILL)
    worker.join(timeout=600)
    outcome, = result["out"]
    assert outcome.worker_pid != killed  # Ray retried the task in another worker
    assert (run / "result.json").exists() and not (run / "checkpoint.pt").exists()
    # resumed from the checkpoint to the numbers of an uninterrupted run
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(outcome.history) == strip(expected.history) and len(outcome.history) == 6
    assert outcome.metrics["val"]["auroc"] == expected.metrics["val"]["auroc"]


def test_the_data_go_to_the_object_store_once_per_call(cluster, data, tmp_path, monkeypatch):
    puts = []
    real_put = ray.put

    def counting_put(value, *a, **k):
        puts.append(value)
        return real_put(value, *a, **k)

    monkeypatch.setattr(ray, "put", counting_put)
    specs = [StrategySpec("ttl", "stem"), StrategySpec("ttl", "layer1.0"), StrategySpec("linear_probe", "layer1.0")]
    run_strategies(specs, "resnet18", "scratch", data, CFG, [0], tmp_path, executor=cluster)
    assert len(puts) == 1 and puts[0] is data  # one object for the three tasks
    from ttl.experiments.grid import _run_spec
    from ttl.train.runs import train_job

    job = train_job(_run_spec(specs[0], 0, 1e-3), "resnet18", "scratch", data, CFG, tmp_path)
    assert len(pickle.dumps(job)) < 20_000 < len(pickle.dumps(data))  # tasks carry specs, not images


def test_executor_names_and_a_missing_ray_are_clear_errors(monkeypatch):
    assert isinstance(make_executor(None), LocalExecutor) and isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(ConfigError, match="executor must be one of local, ray"):
        make_executor("dask")
    with pytest.raises(ConfigError, match="cpus_per_task must be > 0"):
        RayExecutor(cpus_per_task=0)
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'ttl-study\[ray\]'"):
        RayExecutor().run([object()], {})


def test_cpu_tasks_default_to_one_thread_per_cpu_they_ask_for(cluster, data, tmp_path):
    """Two tasks with two threads each on two cores oversubscribe them (7x slower measured): by
    default a CPU task runs as many torch threads as CPUs it asks for."""
    from ttl.experiments.grid import _run_spec
    from ttl.provenance import read_json
    from ttl.train.runs import train_job

    job = train_job(_run_spec(StrategySpec("ttl", "stem"), 0, 1e-3), "resnet18", "scratch", data, CFG, tmp_path)
    RayExecutor().run([job], data)
    assert read_json(Path(job.run_dir) / "result.json")["torch_threads"] == [{"from_epoch": 0, "threads": 1}]
