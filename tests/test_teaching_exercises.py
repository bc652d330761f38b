"""The teaching page's exercises as written: every papermill parameter they pass exists in the
notebook the exercise names and has the type its parameters cell declares (checked by the same
``check_parameters`` the notebooks run first), and every ``ttl`` command they quote parses with
the real command line. Executing all exercises would take hours; this catches the renamed or
mistyped parameter and the stale command before a student does."""

from __future__ import annotations

import re
import shlex
import typing
from pathlib import Path

import papermill
import pytest
import yaml
from papermill.cli import _resolve_type

from ttl.cli import build_parser
from ttl.experiments.params import check_parameters

REPO = Path(__file__).resolve().parent.parent
TEACHING = (REPO / "book" / "teaching.md").read_text(encoding="utf-8")
EXERCISES = re.findall(r"^\s*(\d+)\. \*\*(.+?)\*\*(.*?)(?=^\s*\d+\. \*\*|^The command-line tools|\Z)",
                       TEACHING.split("## Exercises", 1)[1], flags=re.S | re.M)


def _annotations(notebook: str) -> dict[str, typing.Any]:
    declared = papermill.inspect_notebook(str(REPO / "notebooks" / f"{notebook}.ipynb"))
    names = {"Union": typing.Union, "Optional": typing.Optional, "list": list, "dict": dict, "int": int,
             "float": float, "str": str, "bool": bool}
    return {k: eval(v["inferred_type_name"], names) for k, v in declared.items()}  # noqa: S307 - our own cells


def _parameters(text: str) -> dict[str, typing.Any]:
    """``-p NAME VALUE`` (papermill's own typing of VALUE) and ``-y 'NAME: YAML'`` fragments."""
    text = " ".join(text.split())  # fragments wrap across lines in the Markdown
    found = {m[0]: _resolve_type(m[1]) for m in re.findall(r"-p (\w+) ([^\s`']+)", text)}
    for fragment in re.findall(r"-y '([^']+)'", text):
        found.update(yaml.safe_load(fragment))
    return found


def test_the_exercises_are_found():
    assert len(EXERCISES) >= 12 and [int(n) for n, _, _ in EXERCISES] == list(range(1, len(EXERCISES) + 1))


@pytest.mark.parametrize("number,title,body", EXERCISES, ids=[f"{n}-{t}" for n, t, _ in EXERCISES])
def test_exercise_parameters_exist_and_have_the_declared_types(number, title, body):
    notebooks = sorted(set(re.findall(r"`(0\d_\w+)`", body)))
    params = _parameters(body)
    if not params:
        return
    assert notebooks, f"exercise {number} passes parameters but names no notebook"
    annotations = {}
    for nb in notebooks:
        annotations.update(_annotations(nb))
    unknown = sorted(set(params) - set(annotations))
    assert not unknown, f"exercise {number} passes {unknown}, declared by none of {notebooks}"
    check_parameters({"__annotations__": {k: annotations[k] for k in params}, **params})


@pytest.mark.parametrize("number,title,body", EXERCISES, ids=[f"{n}-{t}" for n, t, _ in EXERCISES])
def test_exercise_commands_parse(number, title, body):
    parser = build_parser()
    for command in re.findall(r"`(ttl [^`]+)`", " ".join(body.split())):
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit as exc:
            pytest.fail(f"exercise {number}: `{command}` does not parse (exit {exc.code})")
