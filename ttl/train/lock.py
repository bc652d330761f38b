"""One writer per run folder: a lock file naming its holder, taken over only when the holder is gone.

Two trainings started into the same folder would otherwise both run and one result would be lost.
``run_lock(folder)`` creates ``folder/.lock`` atomically (``O_EXCL``) holding the writer's pid, host
and start time; a second writer gets :class:`~ttl.errors.RunLockedError` naming the holder. A lock
left by a killed process on this host (its pid no longer exists) is stale and is taken over with a
warning, so an interrupted run still resumes. Locks from another host are never taken over: remove
the file by hand once that run is known to be dead.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from ttl.errors import RunLockedError
from ttl.processes import pid_alive

LOCK_NAME = ".lock"


def read_holder(path: Path) -> dict:
    """The lock's content (``{}`` when unreadable, e.g. written half-way by a killed process)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _is_stale(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    pid = holder.get("pid")
    return not isinstance(pid, int) or not pid_alive(pid)


def _create(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                   "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f)
    return True


@contextlib.contextmanager
def run_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder/.lock`` for the duration of the block (the folder is created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    if not _create(path):
        holder = read_holder(path)
        if not _is_stale(holder):
            raise RunLockedError(
                f"run folder {folder} is being written by pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} since {holder.get('started', '?')}; wait for that run to end or "
                f"give this one another folder (if that process is gone, delete {path})")
        warnings.warn(f"{folder}: taking over the lock of pid {holder.get('pid', '?')}, which no longer runs "
                      "(an interrupted run; it resumes from its checkpoint)", stacklevel=3)
        path.unlink(missing_ok=True)
        if not _create(path):
            raise RunLockedError(f"run folder {folder}: another process took the lock at the same moment; "
                                 "give each run its own folder")
    try:
        yield path
    finally:
        if read_holder(path).get("pid") == os.getpid():
            path.unlink(missing_ok=True)
