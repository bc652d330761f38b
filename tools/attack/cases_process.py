"""Attack 3: a process under stress. Ctrl-C (SIGINT) and SIGTERM at random moments of a small
training, then the same command again (it must resume to the uninterrupted run's numbers); two
trainings into one folder at once; a full or read-only disk (a tiny tmpfs when this user may
mount one, else a write that raises ENOSPC).
"""

from __future__ import annotations

import contextlib
import errno
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from harness import Attempt, Result, child_env, run_child, run_cli, ttl_child
from cases_files import numbers, train_argv

LONGER = ["train", "--dataset", "phantom-low", "--n-per-class", "24", "--data-size", "64", "--source", "scratch",
          "--epochs", "6", "--n-boot", "0", "--patience", "0"]


def _one_message(err: str) -> bool:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith("epoch ")]
    return "Traceback" not in err and len(lines) <= 1


def interruption_attempts(tmp: Path, n: int = 12, seed: int = 0) -> list[Attempt]:
    env = child_env(TTL_CACHE=str(tmp / "cache"))
    reference: dict = {}

    def ref() -> dict:
        if not reference:
            res = run_child([*LONGER, "--out", str(tmp / "interrupt-reference")], tmp, env)
            assert res.rc == 0, res.err
            reference.update(numbers(tmp / "interrupt-reference"))
        return reference

    rng = random.Random(seed)
    attempts = []
    for i in range(n):
        sig = (signal.SIGINT, signal.SIGTERM)[i % 2]
        delay = rng.uniform(0.3, 9.0)
        out = tmp / f"interrupt-{i}"

        def go(sig: signal.Signals = sig, delay: float = delay, out: Path = out) -> Result:
            want = ref()
            proc = ttl_child([*LONGER, "--out", str(out)], tmp, env)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=delay)
            if proc.poll() is None:
                proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            first = Result(proc.returncode, err=err)
            epochs = err.count("\nepoch ") + err.startswith("epoch ")
            stage = ("finished before the signal" if proc.returncode == 0 else
                     f"stopped after {epochs} of 6 epochs" + (", checkpoint kept" if (out / "checkpoint.pt").exists()
                                                              else ", nothing kept") if epochs else "stopped in start-up")
            if "Traceback" in err or (sig == signal.SIGINT and proc.returncode not in (0, 130)) \
                    or (proc.returncode == 130 and not _one_message(err)):
                return Result(1, err="interrupted run: " + err[-2000:], exc=RuntimeError("traceback"))
            again = run_child([*LONGER, "--out", str(out)], tmp, env)
            again.note = f"exit {proc.returncode}, {stage}"
            if again.rc != 0:
                return again
            same = numbers(out) == want
            return Result(0, err=first.err + again.err if same else "DIFFERENT", note=again.note)
        attempts.append(Attempt("interruption", f"{sig.name} after {delay:.1f} s, then the same command", go,
                                expect="ok", check=lambda r: "silent_wrong" if r.err == "DIFFERENT" else None))
    return attempts


def concurrency_attempts(tmp: Path) -> list[Attempt]:
    env = child_env(TTL_CACHE=str(tmp / "cache"))
    ref_dir = tmp / "concurrent-reference"
    attempts = []

    def pair(name: str, argv_a: list[str], argv_b: list[str], folder: Path) -> Attempt:
        def go() -> Result:
            if not ref_dir.exists():
                assert run_child(train_argv(ref_dir), tmp, env).rc == 0
            a, b = ttl_child(argv_a, tmp, env), ttl_child(argv_b, tmp, env)
            (_, ea), (_, eb) = a.communicate(timeout=300), b.communicate(timeout=300)
            codes = sorted((a.returncode, b.returncode))
            if "Traceback" in ea + eb:
                return Result(1, err=ea + eb, exc=RuntimeError("traceback"))
            if codes not in ([0, 0], [0, 2]) or (codes == [0, 2] and "being written by pid" not in ea + eb):
                return Result(1 if 1 in codes else 2, err=f"exit codes {codes}: {ea[-300:]} {eb[-300:]}")
            try:
                got = numbers(folder)
            except Exception:
                return Result(0, err="LOST")
            return Result(0, err=ea + eb) if got in (numbers(ref_dir), numbers_or_none(folder, argv_b)) \
                else Result(0, err="DIFFERENT")
        return Attempt("concurrency", name, go, expect="ok",
                       check=lambda r: {"LOST": "data_losses", "DIFFERENT": "silent_wrong"}.get(r.err))

    for i in range(2):
        folder = tmp / f"concurrent-same-{i}"
        attempts.append(pair(f"two identical trainings into one folder ({i + 1})", train_argv(folder),
                             train_argv(folder), folder))
    folder = tmp / "concurrent-other"
    attempts.append(pair("two trainings with other seeds into one folder", train_argv(folder),
                         train_argv(folder, ["--seed", "1"]), folder))

    def two_caches() -> Result:
        cache_env = child_env(TTL_CACHE=str(tmp / "fresh-cache"))
        argv = ["data", "show", "phantom-low", "--n-per-class", "6", "--size", "32", "--n", "2", "--split", "val"]
        procs = [ttl_child([*argv, "--out", str(tmp / f"grid{i}.png")], tmp, cache_env) for i in range(2)]
        errs = [p.communicate(timeout=300)[1] for p in procs]
        codes = [p.returncode for p in procs]
        return Result(0 if codes == [0, 0] else max(codes), err="".join(errs))
    attempts.append(Attempt("concurrency", "two processes filling one data cache entry", two_caches, expect="ok"))
    return attempts


# ------------------------------------------------------------------------------------------- disk

@contextlib.contextmanager
def tmpfs(path: Path, size: str, readonly: bool = False) -> Iterator[bool]:
    """A tmpfs of ``size`` at ``path`` (True), or nothing mounted when this user may not (False)."""
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True).returncode == 0
    try:
        yield ok
    finally:
        if ok:
            subprocess.run(["umount", str(path)], capture_output=True)


@contextlib.contextmanager
def full_below(path: Path) -> Iterator[None]:
    """Fallback: every atomic write under ``path`` fails with ENOSPC."""
    import ttl.provenance as prov

    real = prov.atomic_write

    def write(target, fn):  # type: ignore[no-untyped-def]
        if str(target).startswith(str(path)):
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        return real(target, fn)
    with mock.patch.object(prov, "atomic_write", write):
        yield


def disk_attempts(tmp: Path) -> list[Attempt]:
    attempts = []
    for size in ("4k", "16k", "64k", "256k", "700k", "1m", "2m", "4m"):
        mnt = tmp / f"full-runs-{size}"

        def go(mnt: Path = mnt, size: str = size) -> Result:
            with tmpfs(mnt, size) as mounted, (contextlib.nullcontext() if mounted else full_below(mnt)):
                res = run_cli(train_argv(mnt / "run"))
                if res.rc == 0:
                    return Result(0, err="FITS")  # the run fitted in: not a full-disk case
                left = list((mnt / "run").glob(".*.tmp")) if (mnt / "run").is_dir() else []
                half = (mnt / "run" / "result.json").exists()
                return Result(res.rc, res.out, res.err + ("\nORPHANS" if left else "") + ("\nHALF" if half else ""),
                              exc=res.exc)
        attempts.append(Attempt("disk full", f"runs folder on a {size} disk: exit 2 naming the file", go,
                                mentions="No space left on device",
                                check=lambda r: "as_promised" if r.err == "FITS" else
                                ("silent_wrong" if "ORPHANS" in r.err or "HALF" in r.err else None)))
    for size in ("4k", "100k"):
        mnt = tmp / f"full-cache-{size}"

        def go_cache(mnt: Path = mnt, size: str = size) -> Result:
            with tmpfs(mnt, size) as mounted, (contextlib.nullcontext() if mounted else full_below(mnt)):
                res = run_cli(train_argv(tmp / f"run-full-cache-{size}", ["--data-seed", "7"]),
                              env={"TTL_CACHE": str(mnt)})
                res.err += f"\nCACHED={len(list(mnt.rglob('meta.json')))}"  # counted while mounted
                return res
        def cached_or_warned(r: Result) -> str | None:
            if r.rc != 0 or "could not write the data cache" in r.err:
                return None
            return None if "CACHED=3" in r.err else "silent_wrong"  # no warning: every split was cached
        attempts.append(Attempt("disk full", f"data cache on a {size} disk: trains on (a warning if it is full)",
                                go_cache, expect="ok", check=cached_or_warned))
    for what in ("runs", "cache"):
        mnt = tmp / f"readonly-{what}"

        def go_ro(mnt: Path = mnt, what: str = what) -> Result:
            with tmpfs(mnt, "1m", readonly=True) as mounted:
                if not mounted:
                    return Result(2 if what == "runs" else 0, err="Read-only file system (not mounted: skipped)")
                if what == "runs":
                    return run_cli(train_argv(mnt / "run"))
                return run_cli(train_argv(tmp / "run-readonly-cache", ["--data-seed", "8"]), env={"TTL_CACHE": str(mnt)})
        attempts.append(Attempt("disk full", f"read-only {what} folder", go_ro, expect="error" if what == "runs" else "ok",
                                mentions="Read-only file system" if what == "runs" else None))
    return attempts


def numbers_or_none(folder: Path, argv: list[str]) -> dict | None:
    """The numbers of the run ``argv`` would make, trained alone in a side folder."""
    side = folder.with_name(folder.name + "-alone")
    if not side.exists():
        argv = [*argv[:-1], str(side)]
        if run_cli(argv).rc != 0:
            return None
    return numbers(side)
