"""One writer per run folder: a live holder blocks a second writer, a dead one's lock is taken over."""

import json
import socket
import subprocess
import sys

import pytest

from tiny import tiny_dataset
from ttl.errors import RunLockedError
from ttl.strategies import prepare
from ttl.train import TrainConfig, fit
from ttl.train.lock import LOCK_NAME, run_lock

CFG = TrainConfig(epochs=1, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0)


def _write_lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                "started": "2026-01-01T00:00:00"}))


@pytest.fixture
def live_process():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_second_writer_gets_a_clear_error(tmp_path, live_process):
    _write_lock(tmp_path / "run", live_process.pid)
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    with pytest.raises(RunLockedError, match=f"being written by pid {live_process.pid}"):
        fit(model, tiny_dataset(32), tiny_dataset(32, seed=1), CFG, out_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "result.json").exists()  # nothing trained, nothing replaced


def test_the_same_folder_cannot_be_entered_twice(tmp_path):
    with run_lock(tmp_path / "run"):
        with pytest.raises(RunLockedError):
            with run_lock(tmp_path / "run"):
                pass
    with run_lock(tmp_path / "run"):  # released at the end of the first block
        pass
    assert not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_dead_holders_lock_is_taken_over_and_the_run_completes(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_lock(tmp_path / "run", dead.pid)
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    with pytest.warns(UserWarning, match="taking over the lock"):
        res = fit(model, tiny_dataset(32), tiny_dataset(32, seed=1), CFG, out_dir=tmp_path / "run")
    assert res.path.exists() and not (tmp_path / "run" / LOCK_NAME).exists()


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    _write_lock(tmp_path / "run", 1, host="some-other-machine")
    with pytest.raises(RunLockedError, match="some-other-machine"):
        with run_lock(tmp_path / "run"):
            pass


def test_orphan_temp_files_are_removed_on_the_next_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    orphan = run / ".checkpoint.pt.abc123.tmp"  # what a writer killed inside atomic_write leaves
    orphan.write_bytes(b"\0" * 1024)
    keep = run / "notes.txt"
    keep.write_text("mine")
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    fit(model, tiny_dataset(32), tiny_dataset(32, seed=1), CFG, out_dir=run)
    assert not orphan.exists() and keep.read_text() == "mine"


def test_stale_running_notebooks_are_found_by_their_dead_pid(tmp_path):
    from ttl.book import stale_running_copies

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    executed = tmp_path / "01_data.ipynb"
    left = tmp_path / f".01_data.{dead.pid}.running.ipynb"
    mine = tmp_path / f".01_data.{__import__('os').getpid()}.running.ipynb"
    other = tmp_path / f".02_other.{dead.pid}.running.ipynb"
    for path in (left, mine, other):
        path.write_text("{}")
    assert stale_running_copies(executed) == [left]


def test_atomic_writes_follow_the_umask(tmp_path):
    import os

    from ttl.provenance import atomic_write_json

    old = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "result.json", {"a": 1})
        assert (path.stat().st_mode & 0o777) == 0o644  # not mkstemp's 0600
        os.umask(0o077)
        assert (atomic_write_json(tmp_path / "private.json", {}).stat().st_mode & 0o777) == 0o600
    finally:
        os.umask(old)


def test_pid_alive_tells_live_dead_and_non_processes_apart(live_process):
    from ttl.processes import pid_alive

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert pid_alive(live_process.pid) and not pid_alive(dead.pid)
    assert not pid_alive(0) and not pid_alive(-1)  # a process group, never one writer
