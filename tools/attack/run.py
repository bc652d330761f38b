"""Run the repeat attack on ``ttl`` and write ``tools/attack/totals.json``.

    python tools/attack/run.py [--only AREA ...] [--out tools/attack/totals.json]

Everything happens in a temporary folder (``TTL_CACHE``, ``TORCH_HOME`` and ``MPLCONFIGDIR`` too):
nothing touches ``~/.cache`` or the repository's runs. Run it as root to test a full disk with a
tiny tmpfs (otherwise writes are made to fail with ENOSPC in the process). About 10-15 minutes of CPU on 2 cores. Each attempt that is neither a clear
error nor as promised is listed with its last stderr line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

AREAS = ("cli", "files", "api", "interruption", "concurrency", "disk")


def collect(area: str, tmp: Path) -> list:
    from cases_api import api_attempts
    from cases_cli import named_attempts, numeric_attempts
    from cases_files import run_file_attempts, train_argv
    from cases_process import concurrency_attempts, disk_attempts, interruption_attempts
    from harness import run_cli

    if area == "cli":
        run_dir = tmp / "cli-run"
        assert run_cli(train_argv(run_dir)).rc == 0
        return numeric_attempts(run_dir) + named_attempts(tmp, run_dir)
    return {"files": lambda: run_file_attempts(tmp), "api": api_attempts,
            "interruption": lambda: interruption_attempts(tmp), "concurrency": lambda: concurrency_attempts(tmp),
            "disk": lambda: disk_attempts(tmp)}[area]()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=AREAS, default=list(AREAS))
    parser.add_argument("--out", type=Path, default=HERE / "totals.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ttl-attack-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["TTL_CACHE"] = str(tmp / "cache")
        os.environ["TORCH_HOME"] = str(tmp / "torch")  # ImageNet look-ups (offline: they fail) stay here
        os.environ["MPLCONFIGDIR"] = str(tmp / "matplotlib")
        os.chdir(tmp)  # default run folders (runs/...) land here
        import torch

        torch.set_num_threads(1)
        from harness import Totals, run_attempt

        totals, findings, log, start = Totals(), [], [], time.perf_counter()
        for area in args.only:
            area_dir = tmp / area
            area_dir.mkdir()
            t0 = time.perf_counter()
            for attempt in collect(area, area_dir):
                verdict = run_attempt(attempt)
                totals.add(attempt.area, verdict)
                log.append({"area": attempt.area, "attempt": attempt.name, "class": verdict,
                            **({"note": attempt.note} if attempt.note else {})})
                if verdict not in ("clear_errors", "as_promised"):
                    findings.append({"area": attempt.area, "attempt": attempt.name, "class": verdict,
                                     "detail": attempt.detail})
                    print(f"  {verdict}: {attempt.name}: {attempt.detail}", file=sys.stderr)
            print(f"{area}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    rows = totals.by_area
    total = {k: sum(r[k] for r in rows.values()) for k in next(iter(rows.values()))}
    doc = {"command": "python tools/attack/run.py", "seconds": round(time.perf_counter() - start, 1),
           "areas": rows, "total": total, "findings": findings}
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    args.out.with_name(args.out.stem + "_attempts.json").write_text(json.dumps(log, indent=1) + "\n")
    print(json.dumps({"total": total}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
