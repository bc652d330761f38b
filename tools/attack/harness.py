"""The attack's machinery: run one attempt (a ``ttl`` command, in this process or a child, or an API
call) and classify what happened from its exit code, its stderr and an optional check.

Classes (the keys of ``totals.json``):

- ``clear_errors``: refused as promised: exit 2 (API: a ``TTLError`` or a ``ValueError``/``TypeError``
  raised by ttl's own code), a message, no traceback;
- ``as_promised``: a valid use that did what the documentation says (and its check passed);
- ``misleading_errors``: an error that names the wrong thing, or refuses something valid;
- ``raw_tracebacks``: a Python traceback reached the user;
- ``silent_wrong``: a bad value was accepted (work started) or a check of the result failed;
- ``data_losses``: a finished result was destroyed or replaced by a different one.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

CLASSES = ("clear_errors", "as_promised", "misleading_errors", "raw_tracebacks", "silent_wrong", "data_losses")
REPO = Path(__file__).resolve().parents[2]


class WorkStarted(BaseException):
    """Raised by a guarded entry point: the command got past its validation and began real work."""


class TimedOut(WorkStarted):
    """An in-process attempt still working after :data:`LIMIT_S` (a valid value asking for a lot)."""


LIMIT_S = 45


@contextlib.contextmanager
def time_limit(seconds: float = LIMIT_S) -> Iterator[None]:
    """Raise :class:`TimedOut` in this (main) thread after ``seconds``."""
    import signal

    def expire(signum: int, frame: Any) -> None:
        raise TimedOut

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Result:
    rc: int | None
    out: str = ""
    err: str = ""
    work_started: bool = False
    exc: BaseException | None = None
    note: str = ""  # what happened, for the attempt log


@dataclass
class Attempt:
    area: str
    name: str
    run: Callable[[], Result]
    expect: str = "error"  # "error" | "ok"
    mentions: str | None = None  # an error must name this (case-insensitive)
    check: Callable[[Result], str | None] | None = None  # returns a class to override, or None
    verdict: str = ""
    detail: str = ""
    note: str = ""


@dataclass
class Totals:
    by_area: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, area: str, verdict: str) -> None:
        row = self.by_area.setdefault(area, {"attempts": 0, **{c: 0 for c in CLASSES}})
        row["attempts"] += 1
        row[verdict] += 1


# ----------------------------------------------------------------------------------------- running

GUARDED = ("ttl.data.phantoms.generate", "ttl.data.folder.decode_records", "ttl.data.medmnist.read_npz", "ttl.bench.bench_infer", "ttl.bench.bench_train",
           "ttl.bench.bench_sweep", "ttl.pretrain.train.pretrain", "ttl.book.execute_notebook",
           "ttl.book.build_html", "ttl.experiments.probe_sources")


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Every entry point of real work raises :class:`WorkStarted` (argument attacks stay cheap)."""
    import importlib

    def stop(*args: Any, **kwargs: Any) -> None:
        raise WorkStarted

    with contextlib.ExitStack() as stack:
        for dotted in GUARDED:
            module, _, name = dotted.rpartition(".")
            stack.enter_context(mock.patch.object(importlib.import_module(module), name, stop))
        yield


def run_cli(argv: list[str], guard: bool = False, env: dict[str, str] | None = None) -> Result:
    """``ttl ARGV`` in this process (what the ``ttl`` script does: ``sys.exit(main())``)."""
    from ttl.cli import main

    out, err = io.StringIO(), io.StringIO()
    res = Result(None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("always")
        if env:
            stack.enter_context(mock.patch.dict(os.environ, env))
        if guard:
            stack.enter_context(guarded())
        try:
            with time_limit():
                res.rc = main(argv)
        except SystemExit as e:
            res.rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if not isinstance(e.code, int) and e.code is not None:
                print(e.code, file=sys.stderr)
        except WorkStarted:
            res.rc, res.work_started = 0, True
        except BaseException as e:  # what would reach the user as a traceback
            traceback.print_exc()
            res.rc, res.exc = 1, e
    res.out, res.err = out.getvalue(), err.getvalue()
    return res


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child ``ttl``: this checkout first on the path, one thread, no colour."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "NO_COLOR": "1", **extra}


def ttl_child(argv: list[str], cwd: Path, env: dict[str, str], **popen: Any) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ttl.cli", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def run_child(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> Result:
    proc = ttl_child(argv, cwd, env)
    out, err = proc.communicate(timeout=timeout)
    return Result(proc.returncode, out, err)


def run_api(call: Callable[[], Any]) -> Result:
    """An API call: a raised exception is judged by where it came from (see :func:`api_class`)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("always")
        try:
            with time_limit():
                call()
        except WorkStarted:
            return Result(0, err=err.getvalue(), work_started=True)
        except BaseException as e:
            return Result(2 if api_clear(e) else 1, err=err.getvalue() + f"{type(e).__name__}: {e}", exc=e)
    return Result(0, err=err.getvalue())


def api_clear(exc: BaseException) -> bool:
    """A ``TTLError``, or a ValueError/TypeError raised in ttl's own code (a validation, not a crash
    deep inside torch or NumPy)."""
    from ttl.errors import TTLError

    if isinstance(exc, TTLError):
        return True
    if not isinstance(exc, (ValueError, TypeError)):
        return False
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and "/ttl/" in frames[-1].filename.replace(os.sep, "/")


# ------------------------------------------------------------------------------------- classifying

def classify(a: Attempt, res: Result) -> str:
    if a.check is not None:
        forced = a.check(res)
        if forced:
            return forced
    if "Traceback" in res.err or (res.exc is not None and res.rc == 1):
        return "raw_tracebacks"
    if a.expect == "error":
        if res.work_started or res.rc == 0:
            return "silent_wrong"
        if res.rc == 2 and (res.err.strip() or res.out.strip()):
            if a.mentions and a.mentions.lower() not in (res.err + res.out).lower():
                return "misleading_errors"
            return "clear_errors"
        return "misleading_errors"
    if res.rc == 0 or (res.work_started and a.expect == "ok"):
        return "as_promised"
    return "misleading_errors"


def run_attempt(a: Attempt) -> str:
    try:
        res = a.run()
    except BaseException as e:  # the harness's own setup failed: count it against ttl, say so
        res = Result(1, err="".join(traceback.format_exception(e)), exc=e)
    a.verdict = classify(a, res)
    a.note = res.note
    if a.verdict not in ("clear_errors", "as_promised"):
        a.detail = (res.err.strip().splitlines() or [res.out.strip()[:200]])[-1][:300]
    return a.verdict
