"""The teaching exercises executed: each exercise's notebook parameters, exactly as the page
writes them, run through ``ttl book`` on top of the smoke profile's sizes (tiny data, one epoch),
so a parameter combination that breaks a notebook (a cut an architecture lacks, a mapping a
notebook cannot take, a dataset that fails to load) fails here rather than in a classroom. The
exercises' own sizes (their full runs take up to hours of CPU) are what the smoke profile
replaces: epochs, images per class, image size and seeds unless the exercise sets them.
``tests/test_teaching_exercises.py`` checks the names and types statically; the ``ttl`` commands
the exercises quote run here too, except the GPU profile's book (exercise 12)."""

from __future__ import annotations

import shlex
import re
from pathlib import Path

import pytest
import yaml

from ttl.cli import main
from tests.test_teaching_exercises import EXERCISES, REPO, _annotations, _parameters

pytestmark = pytest.mark.slow
FASHION = Path("/usr/share/datasets/fashion-mnist")
SMOKE = yaml.safe_load((REPO / "profiles" / "smoke.yaml").read_text())
# commands not run: a whole GPU book (hours on a CPU); its profile is validated by test_book
NOT_RUN = ("ttl book --profile gpu",)
WITH_PARAMETERS = [(n, t, b) for n, t, b in EXERCISES if _parameters(b)]


def exercise_profile(body: str, runs: Path) -> dict:
    """The smoke profile restricted to the exercise's notebooks, with the exercise's parameters."""
    params = _parameters(body)
    notebooks, declared_any = [], set()
    for spec in SMOKE["notebooks"]:
        if f"`{spec['name']}`" not in body:
            continue
        declared = _annotations(spec["name"])
        mine = {k: v for k, v in params.items() if k in declared}
        if mine:
            notebooks.append({"name": spec["name"], "parameters": {**spec.get("parameters", {}), **mine}})
            declared_any |= set(declared)
    # a profile's defaults must be declared by one of its notebooks (ttl book refuses others)
    defaults = {k: v for k, v in {**SMOKE["defaults"], "runs_dir": str(runs)}.items() if k in declared_any}
    return {"description": "a teaching exercise at the smoke profile's size", "hardware": SMOKE["hardware"],
            "time_budget_minutes": 10, "defaults": defaults, "notebooks": notebooks}


@pytest.mark.parametrize("number,title,body", WITH_PARAMETERS, ids=[f"{n}-{t}" for n, t, _ in WITH_PARAMETERS])
def test_exercise_notebooks_run_with_its_parameters(number, title, body, tmp_path, capsys):
    if "fashion-mnist" in body and not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Debian's dataset-fashion-mnist is not installed (CI installs it)")
    profile = exercise_profile(body, tmp_path / "runs")
    assert profile["notebooks"], f"exercise {number}: no notebook takes its parameters"
    path = tmp_path / f"exercise{number}.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    code = main(["book", "--profile", str(path), "--no-build", "--no-progress",
                 "--executed-dir", str(tmp_path / "executed"), "--results-dir", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert code == 0, f"exercise {number} failed:\n{err[-3000:]}"
    for spec in profile["notebooks"]:
        executed = tmp_path / "executed" / f"{spec['name']}.ipynb"
        assert executed.is_file()
        nb = executed.read_text()
        assert '"output_type": "error"' not in nb
        for name, value in spec["parameters"].items():  # the exercise's values reached the notebook
            assert re.search(rf"^{name} = ", _injected(executed), re.M), f"{name} not injected"


def _injected(executed: Path) -> str:
    import json

    cells = json.loads(executed.read_text())["cells"]
    return "".join(next("".join(c["source"]) for c in cells
                        if "injected-parameters" in c.get("metadata", {}).get("tags", [])))


COMMANDS = [(n, c) for n, _, b in EXERCISES for c in re.findall(r"`(ttl [^`]+)`", " ".join(b.split()))
            if not c.startswith(NOT_RUN) and len(shlex.split(c)) > 2]


@pytest.mark.parametrize("number,command", COMMANDS, ids=[f"{n}-{c}" for n, c in COMMANDS])
def test_exercise_commands_run(number, command, capsys):
    code = main(shlex.split(command)[1:])
    out = capsys.readouterr()
    assert code in (0, None), f"exercise {number}: `{command}` exited {code}:\n{out.err[-2000:]}"
    assert out.out.strip(), f"exercise {number}: `{command}` printed nothing"
