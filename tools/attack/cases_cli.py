"""Attack 1: command-line values for every ``ttl`` sub-command (in this process, real work guarded).

Every numeric option gets the same hostile values; whether a value is valid is read from the rule
its type states (``must be an integer >= 1``: what ``--help`` and the error say). Then names, paths
and choices: unknown architectures, cuts, sources, devices, datasets; files that are folders and
folders that are files; missing files.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from harness import Attempt, run_cli

HOSTILE = ("nan", "abc", "-1", "0", "1.5", "1e999", "99999999999999999999")
TINY = ["--dataset", "phantom-low", "--n-per-class", "4", "--data-size", "32"]


def _subparsers(parser: argparse.ArgumentParser, path: list[str]) -> list[tuple[list[str], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _subparsers(sub, path + [name])
    return out


def _rule(type_name: str) -> tuple[type, float | None, bool, float | None, bool] | None:
    """(kind, low, low_open, high, high_open) from a bounded type's name, None for other types."""
    m = re.match(r"(int|float)_must_be_an?_(?:integer|finite_number)(.*)$", type_name)
    if not m:
        return None
    kind = int if m.group(1) == "int" else float
    low = high = None
    low_open = high_open = False
    for op, num in re.findall(r"(>=|>|<=|<)_([-0-9.e]+)", m.group(2)):
        if op.startswith(">"):
            low, low_open = float(num), op == ">"
        else:
            high, high_open = float(num), op == "<"
    return kind, low, low_open, high, high_open


def _valid(text: str, rule: tuple) -> bool:
    kind, low, low_open, high, high_open = rule
    try:
        value = kind(text)
    except ValueError:
        return False
    if isinstance(value, float) and not math.isfinite(value):
        return False
    if low is not None and (value <= low if low_open else value < low):
        return False
    return not (high is not None and (value >= high if high_open else value > high))


POSITIONALS = {("cuts",): ["resnet18"], ("data", "show"): ["phantom-low"], ("data", "audit"): ["low"]}


def numeric_attempts(run_dir: Path) -> list[Attempt]:
    from ttl.cli import build_parser

    attempts = []
    for path, parser in _subparsers(build_parser(), []):
        base = [*path, *POSITIONALS.get(tuple(path), [])]
        if path == ["evaluate"]:
            base.append(str(run_dir))
        for action in parser._actions:
            rule = _rule(getattr(action.type, "__name__", "")) if action.type else None
            if rule is None or not action.option_strings:
                continue
            opt = action.option_strings[-1]
            for value in HOSTILE:
                ok = _valid(value, rule)
                argv = [*base, opt, value]
                attempts.append(Attempt("cli arguments", " ".join(argv), lambda argv=argv: run_cli(argv, guard=True),
                                        expect="ok" if ok else "error", mentions=None if ok else f"argument {opt}"))
    return attempts


def named_attempts(tmp: Path, run_dir: Path) -> list[Attempt]:
    """Names, choices and paths (errors a user makes by typing)."""
    a_file = tmp / "a_file.txt"
    a_file.write_text("not a folder\n")
    a_dir = tmp / "a_dir"
    a_dir.mkdir(exist_ok=True)
    empty_run = tmp / "empty_run"
    empty_run.mkdir(exist_ok=True)
    missing = tmp / "no" / "such" / "thing"
    G, T = True, TINY  # guard real work; tiny data when the value is only checked after loading
    cases: list[tuple[list[str], bool, str | None]] = [
        ([], G, None), (["nosuchcommand"], G, "invalid choice"), (["train", "--no-such-option"], G, "unrecognized"),
        (["cuts"], G, "arch"), (["cuts", "vgg16"], G, "unknown architecture"), (["cuts", ""], G, "unknown architecture"),
        (["train", "--arch", "resnet9"], G, "unknown architecture"), (["train", "--cut", "layer9.9"], G, "unknown cut"),
        (["train", "--cut", ""], G, "cut"), (["train", "--source", "imagenet:NOPE"], G, "NOPE"),
        (["train", "--source", str(missing)], G, "unknown weight source"),
        (["train", "--source", str(a_dir)], G, "source"), (["train", "--source", str(a_file), "--cut", "layer1.0", *T],
                                                            False, "checkpoint"),
        (["train", "--strategy", "bogus"], G, "invalid choice"), (["train", "--schedule", "linear"], G, "invalid choice"),
        (["train", "--amp", "int8"], G, "invalid choice"),
        (["train", "--strategy", "transfusion", "--cut", "layer2.1", "--slim-from", "layer9"], G, "slim"),
        (["train", "--dataset", "nosuchdata"], G, "nosuchdata"), (["train", "--dataset", str(a_dir)], G, "a_dir"),
        (["train", "--dataset", str(a_file)], G, "a_file"), (["train", "--dataset", str(missing) + ".yaml"], G, "such"),
        (["train", "--dataset", "breastmnist", "--root", str(missing), "--data-size", "28"], False, None),
        (["train", "--dataset", "ham10000", "--root", str(missing)], False, "ham10000"),
        (["train", "--dataset", "ham10000", "--root", str(a_file)], False, "ham10000"),
        (["train", "--n-per-class", "4", "--data-size", "16"], False, "size"),
        (["train", "--device", "tpu", *T, "--source", "scratch"], False, "device"),
        (["train", "--device", "cuda:7", *T, "--source", "scratch"], False, "cuda"),
        (["train", "--device", "", *T, "--source", "scratch"], False, "device"),
        (["train", "--out", str(a_file), *T, "--source", "scratch", "--epochs", "1"], False, "a_file"),
        (["train", "--out", "/proc/ttl-attack", *T, "--source", "scratch", "--epochs", "1"], False, "/proc/ttl-attack"),
        (["evaluate"], G, "run"), (["evaluate", str(missing)], G, "such"), (["evaluate", str(a_file)], G, "a_file"),
        (["evaluate", str(empty_run)], G, "not a finished run"),
        (["evaluate", str(run_dir), "--split", "bogus"], G, "bogus"),
        (["evaluate", str(run_dir), "--dataset", "nosuchdata"], G, "nosuchdata"),
        (["evaluate", str(run_dir), "--dataset", "phantom-low", "--root", str(a_file), "--n-per-class", "4",
          "--data-size", "32"], False, "OK"),  # --root is for real datasets: generated phantoms ignore it
        (["evaluate", str(run_dir), "--device", "tpu"], False, "device"),
        (["probe", "--sources", "bogus"], G, "bogus"), (["probe", "--arch", "vgg"], G, "vgg"),
        (["probe", "--sources"], G, "sources"), (["probe", "--dataset", "nosuchdata"], G, "nosuchdata"),
        (["bench"], G, None), (["bench", "infer", "--arch", "vgg"], G, "vgg"),
        (["bench", "infer", "--cuts", "layer9"], G, "layer9"), (["bench", "train", "--cut", "layer9"], G, "layer9"),
        (["bench", "infer", "--dtype", "int8"], G, "invalid choice"), (["bench", "train", "--amp", "x"], G, "invalid"),
        (["bench", "sweep", "--source", "bogus"], G, "bogus"), (["bench", "sweep", "--dataset", "nosuchdata"], G, "nosuch"),
        (["bench", "infer", "--out", str(a_dir)], G, None),
        (["data"], G, None), (["data", "show"], G, "name"), (["data", "show", "nosuchdata"], G, "nosuchdata"),
        (["data", "show", "phantom-low", "--split", "bogus"], G, "invalid choice"),
        (["data", "show", "phantom-low", "--npz", str(a_dir)], G, "npz"),
        (["data", "show", "pneumoniamnist", "--npz", str(missing), "--size", "28"], False, "such"),
        (["data", "show", "pneumoniamnist", "--npz", str(a_file), "--size", "28"], False, "a_file"),
        (["data", "show", "pneumoniamnist", "--no-download", "--size", "28"], False, None),
        (["data", "show", "phantom-low", "--n-per-class", "2", "--size", "32", "--out", str(a_dir)], False, None),
        (["data", "audit", "extreme"], G, "extreme"), (["data", "audit"], G, "level"),
        (["pretrain", "--arch", "vgg"], G, "vgg"), (["pretrain", "--render", "x"], G, "invalid choice"),
        (["pretrain", "--optimizer", "lion"], G, "invalid choice"),
        (["pretrain", "--weights-dir", str(a_file), "--register"], G, None),
        (["search", "--strategy", "full"], G, "invalid choice"), (["search", "--metric", "accuracy"], G, "invalid"),
        (["search", "--neighbourhood", "-3"], G, "neighbourhood"), (["search", "--neighbourhood", "nan"], G, "neighbourhood"),
        (["search", "--neighbourhood", "everything"], G, "neighbourhood"), (["search", "--cut", "x"], G, "unrecognized"),
        (["search", "--source", str(missing)], G, "unknown weight source"), (["search", "--arch", "vgg"], G, "vgg"),
        (["book", "--profile", "nosuchprofile"], G, "nosuchprofile"), (["book", "--profile", str(a_dir)], G, "a_dir"),
        (["book", "--profile", str(missing) + ".yaml"], G, "such"),
        (["book", "--profile", "smoke", "--only", "99_nothing", "--no-build", "--executed-dir", str(tmp / "ex"),
          "--results-dir", str(tmp / "res"), "--runs-dir", str(tmp / "runs")], G, "99_nothing"),
        (["book", "--profile", "smoke", "--notebooks-dir", str(missing), "--no-build", "--executed-dir",
          str(tmp / "ex"), "--results-dir", str(tmp / "res")], G, None),
    ]
    attempts = []
    for argv, guard, mentions in cases:
        expect = "ok" if mentions == "OK" else "error"  # ([], bench, data: no command is help and exit 2)
        attempts.append(Attempt("cli arguments", " ".join(argv) or "(no command)",
                                lambda argv=argv, guard=guard: run_cli(argv, guard=guard), expect=expect,
                                mentions=None if expect == "ok" else mentions))
    return attempts
