"""Whether a process still runs: the one test behind stale run locks and stale book copies."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host (also when it belongs to another user).

    ``pid`` <= 0 names no single process (``os.kill`` would address a process group): False.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
