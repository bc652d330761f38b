"""Attack 2: corrupt files. A run folder's result.json, model.pt and checkpoint.pt; the weights
manifest (a temporary copy: ``ttl.models.sources.WEIGHTS_DIR`` pointed at it); dataset manifests
and book profiles written to a temporary folder. Promise: a clear error naming the file, or (for
a run folder ``ttl train`` owns) a warning and a retrain that ends with the same numbers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import yaml

from harness import Attempt, Result, run_cli

TINY = ["--dataset", "phantom-low", "--n-per-class", "4", "--data-size", "32", "--source", "scratch",
        "--cut", "layer1.0", "--epochs", "2", "--n-boot", "0", "--patience", "0"]


def train_argv(out: Path, extra: list[str] | None = None) -> list[str]:
    return ["train", *TINY, *(extra or []), "--out", str(out)]


def numbers(run: Path) -> dict:
    """What must not change between two trainings of one run: its history without timings, metrics."""
    doc = json.loads((run / "result.json").read_text())
    return {"history": [{k: v for k, v in r.items() if k != "seconds"} for r in doc["history"]],
            "metrics": doc["metrics"], "best_epoch": doc["best_epoch"]}


def interrupted_run(out: Path) -> Result:
    """``ttl train`` stopped by Ctrl-C after its first epoch: leaves checkpoint.pt, no result.json."""
    import ttl.commands.train as train_cmd

    def logger(epochs: int) -> Callable:
        def stop(epoch: int, row: dict) -> None:
            raise KeyboardInterrupt
        return stop

    with mock.patch.object(train_cmd, "epoch_logger", logger):
        return run_cli(train_argv(out))


def _retrains_to(reference: dict, out: Path) -> Callable[[Result], str | None]:
    def check(res: Result) -> str | None:
        if res.rc != 0 or "Traceback" in res.err:
            return None  # judged by exit code and stderr
        try:
            return None if numbers(out) == reference else "silent_wrong"
        except Exception:
            return "data_losses"
    return check


def run_file_attempts(tmp: Path) -> list[Attempt]:
    base = tmp / "base_run"
    assert run_cli(train_argv(base)).rc == 0, "the reference training failed"
    reference = numbers(base)
    ckpt_dir = tmp / "interrupted"
    assert interrupted_run(ckpt_dir).rc == 130 and (ckpt_dir / "checkpoint.pt").exists()
    real_ckpt = (ckpt_dir / "checkpoint.pt").read_bytes()
    result_text = (base / "result.json").read_text()
    doc = json.loads(result_text)
    model_bytes = (base / "model.pt").read_bytes()

    def drop(key: str) -> str:
        return json.dumps({k: v for k, v in doc.items() if k != key})

    corrupt: dict[str, dict[str, Callable[[Path], None]]] = {
        "result.json": {
            "empty": lambda p: p.write_text(""), "half": lambda p: p.write_text(result_text[: len(result_text) // 2]),
            "a list": lambda p: p.write_text("[]"), "null": lambda p: p.write_text("null"),
            "an empty object": lambda p: p.write_text("{}"), "binary": lambda p: p.write_bytes(b"\x80\x81\xfe" * 50),
            "a folder": lambda p: (p.unlink(), p.mkdir()), "no metrics": lambda p: p.write_text(drop("metrics")),
            "no history": lambda p: p.write_text(drop("history")),
            "no provenance": lambda p: p.write_text(drop("provenance")),
        },
        "model.pt": {
            "empty": lambda p: p.write_bytes(b""), "half": lambda p: p.write_bytes(model_bytes[: len(model_bytes) // 2]),
            "garbage": lambda p: p.write_bytes(b"garbage" * 100), "a folder": lambda p: (p.unlink(), p.mkdir()),
            "another network's weights": lambda p: __import__("torch").save({"w": __import__("torch").zeros(3)}, p),
        },
    }
    attempts = []
    for fname, variants in corrupt.items():
        for label, damage in variants.items():
            for action in ("evaluate", "train"):
                folder = tmp / f"{fname}-{label.replace(' ', '_')}-{action}"

                def go(folder: Path = folder, damage: Callable = damage, fname: str = fname, action: str = action) -> Result:
                    shutil.copytree(base, folder)
                    damage(folder / fname)
                    if action == "evaluate":
                        return run_cli(["evaluate", str(folder), "--n-boot", "0", "--device", "cpu"])
                    return run_cli(train_argv(folder))
                # evaluate needs the model block and model.pt only; a folder in place of a file is an
                # error for both (exit 2 naming it); anything else ttl train repairs by retraining
                ok = (action == "train" and label != "a folder") or label in ("no metrics", "no history")
                attempts.append(Attempt("corrupt files", f"{fname} {label}: ttl {action}", go,
                                        expect="ok" if ok else "error", mentions=None if ok else fname,
                                        check=_retrains_to(reference, folder) if action == "train" else None))
    ckpt_variants: dict[str, Callable[[Path], None]] = {
        "empty": lambda p: p.write_bytes(b""), "half": lambda p: p.write_bytes(real_ckpt[: len(real_ckpt) // 2]),
        "garbage": lambda p: p.write_bytes(b"\x00" * 999), "a folder": lambda p: (p.unlink(), p.mkdir()),
        "its run key but no state": lambda p: _keyed_stub(p, real_ckpt),
    }
    for label, damage in ckpt_variants.items():
        folder = tmp / f"checkpoint-{label.replace(' ', '_')}"

        def go(folder: Path = folder, damage: Callable = damage) -> Result:
            shutil.copytree(ckpt_dir, folder)
            damage(folder / "checkpoint.pt")
            return run_cli(train_argv(folder))
        folder_case = label == "a folder"
        attempts.append(Attempt("corrupt files", f"checkpoint.pt {label}: ttl train resumes or restarts", go,
                                expect="error" if folder_case else "ok", mentions="checkpoint.pt" if folder_case else None,
                                check=_retrains_to(reference, folder)))
    replaced, alone = tmp / "replaced-by-seed-1", tmp / "seed-1-alone"

    def other_seed() -> Result:
        shutil.copytree(base, replaced)
        res = run_cli(train_argv(replaced, ["--seed", "1"]))
        if res.rc == 0 and run_cli(train_argv(alone, ["--seed", "1"])).rc == 0 and numbers(replaced) != numbers(alone):
            res.err += "\nDIFFERENT"
        return res
    attempts.append(Attempt("corrupt files", "a finished run trained again with another seed: the new model's scores",
                            other_seed, expect="ok", check=lambda r: "silent_wrong" if "DIFFERENT" in r.err else None))
    attempts += unreadable_attempts(tmp, base)
    attempts += weights_attempts(tmp)
    attempts += manifest_attempts(tmp)
    return attempts


@contextlib.contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """Opening ``path`` fails with EACCES (root reads every file, so permissions cannot be used)."""
    import builtins
    import io

    real = io.open

    def refuse(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(path):
            raise PermissionError(errno.EACCES, "Permission denied", str(file))
        return real(file, *args, **kwargs)
    with mock.patch.object(io, "open", refuse), mock.patch.object(builtins, "open", refuse):
        yield


def unreadable_attempts(tmp: Path, base: Path) -> list[Attempt]:
    from ttl.book import PROFILES_DIR
    from ttl.data.manifest import MANIFEST_DIR

    manifest, profile = tmp / "unreadable.yaml", tmp / "unreadable_profile.yaml"
    manifest.write_text((MANIFEST_DIR / "phantom-low.yaml").read_text())
    profile.write_text((PROFILES_DIR / "smoke.yaml").read_text())
    cases = [("result.json", ["evaluate", str(base), "--n-boot", "0"]), ("model.pt", ["evaluate", str(base)]),
             ("result.json", train_argv(base)), ("model.pt", train_argv(base)),
             (manifest, ["data", "show", str(manifest), "--n", "2"]),
             (profile, ["book", "--profile", str(profile), "--no-build", "--executed-dir", str(tmp / "ux"),
                        "--results-dir", str(tmp / "ur")])]
    attempts = []
    for target, argv in cases:
        path = base / target if isinstance(target, str) else target

        def go(path: Path = path, argv: list[str] = argv) -> Result:
            with unreadable(path):
                return run_cli(argv, guard=True)
        attempts.append(Attempt("corrupt files", f"unreadable {path.name}: ttl {argv[0]}", go, mentions=path.name))
    return attempts


def _keyed_stub(path: Path, real: bytes) -> None:
    import io

    import torch

    key = torch.load(io.BytesIO(real), map_location="cpu", weights_only=False)["params_hash"]
    torch.save({"params_hash": key, "epoch": 0}, path)


# ------------------------------------------------------------------------------- weights manifest

def weights_attempts(tmp: Path) -> list[Attempt]:
    import ttl.models.sources as sources

    shipped = json.loads((sources.WEIGHTS_DIR / "manifest.json").read_text())
    entry = shipped["resnet18"]
    argv_for = lambda out: ["train", *TINY[:6], "--source", "fractal", "--cut", "layer1.0", "--epochs", "1",  # noqa: E731
                            "--n-boot", "0", "--out", str(out)]

    def variant(name: str, doc: object | str | bytes, file: str = "link") -> Attempt:
        folder = tmp / f"weights-{name.replace(' ', '_')}"

        def go() -> Result:
            folder.mkdir()
            target = folder / entry["file"]
            if file == "link":
                target.symlink_to(sources.WEIGHTS_DIR / entry["file"])
            elif file == "folder":
                target.mkdir()
            elif file == "garbage":
                target.write_bytes(b"not a checkpoint")
            path = folder / "manifest.json"
            if isinstance(doc, bytes):
                path.write_bytes(doc)
            else:
                path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
            with mock.patch.object(sources, "WEIGHTS_DIR", folder):
                return run_cli(argv_for(tmp / f"run-weights-{name.replace(' ', '_')}"))
        ok = name.startswith("valid")
        mentions = "sha256" if "sha256" in name else "manifest.json" if file == "link" else entry["file"]
        return Attempt("corrupt files", f"weights/manifest.json {name}", go, expect="ok" if ok else "error",
                       mentions=None if ok else mentions)

    def edited(**change: object) -> dict:
        e = {k: v for k, v in entry.items() if k not in change or change[k] is not None}
        e.update({k: v for k, v in change.items() if v is not None})
        return {"resnet18": e}

    import hashlib

    garbage_sha = hashlib.sha256(b"not a checkpoint").hexdigest()
    return [
        variant("valid copy", {"resnet18": entry}), variant("valid nested under weights", {"weights": {"resnet18": entry}}),
        variant("empty", ""), variant("truncated", json.dumps(shipped)[:200]), variant("a list", "[1, 2]"),
        variant("binary", b"\xff\xfe\x00"), variant("entry without sha256", edited(sha256=None)),
        variant("entry a string", {"resnet18": "resnet18_fractal.pt"}), variant("wrong sha256", edited(sha256="0" * 64)),
        variant("entry without file", edited(file=None)), variant("mean of two numbers", edited(mean=[0.2, 0.2])),
        variant("std zero", edited(std=[0.5, 0, 0.5])), variant("no resnet18 entry", {"resnet50": entry}),
        variant("file missing", {"resnet18": entry}, file="none"),
        variant("file is a folder", {"resnet18": entry}, file="folder"),
        variant("garbage file with its sha256", edited(sha256=garbage_sha), file="garbage"),
    ]


# ------------------------------------------------------------------------- dataset manifests, profiles

def manifest_attempts(tmp: Path) -> list[Attempt]:
    from ttl.data.manifest import MANIFEST_DIR

    good = yaml.safe_load((MANIFEST_DIR / "phantom-low.yaml").read_text())
    folder = tmp / "manifests"
    folder.mkdir()

    def with_(path: tuple[str, ...], value: object) -> dict:
        data = json.loads(json.dumps(good))
        node = data
        for key in path[:-1]:
            node = node[key]
        if value is _DROP:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return data

    cases: list[tuple[str, object, str | None]] = [
        ("empty", "", "empty"), ("a list", "- a\n- b\n", "list"), ("not utf-8", b"name: caf\xe9\n", "UTF-8"),
        ("bad yaml", "name: [unclosed\n", "YAML"), ("unknown key", with_(("colour",), "red"), "colour"),
        ("no task", with_(("task",), _DROP), "task"), ("size a string", with_(("preprocessing", "size"), "abc"), "size"),
        ("normalisation zscore", with_(("preprocessing", "normalisation"), "zscore"), "normalisation"),
        ("to_rgb yes", with_(("preprocessing", "to_rgb"), "yes"), "to_rgb"),
        ("augment rotate", with_(("preprocessing", "augment"), ["rotate"]), "augment"),
        ("one class", with_(("classes",), ["only"]), "classes"),
        ("negative n_per_class", with_(("source", "params", "n_per_class"), -5), "n_per_class"),
        ("generator size 5", with_(("source", "params", "size"), 5), "size"),
        ("unknown kind", with_(("source", "kind"), "ftp"), "kind"),
    ]
    attempts = []
    for label, content, mentions in cases:
        path = folder / f"{label.replace(' ', '_')}.yaml"

        def go(path: Path = path, content: object = content) -> Result:
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
            return run_cli(["data", "show", str(path), "--n", "2"], guard=True)
        attempts.append(Attempt("corrupt files", f"dataset manifest {label}", go, mentions=mentions))
    for how in ("imagenet", "none"):
        path = folder / f"normalisation_{how}.yaml"
        out = tmp / f"run-normalisation-{how}"

        def go(path: Path = path, how: str = how, out: Path = out) -> Result:
            path.write_text(yaml.safe_dump(with_(("preprocessing", "normalisation"), how)))
            return run_cli(["train", "--dataset", str(path), *TINY[2:], "--out", str(out)])

        def recorded(res: Result, how: str = how, out: Path = out) -> str | None:
            if res.rc != 0:
                return None
            doc = json.loads((out / "result.json").read_text())
            return None if doc["provenance"]["params"].get("input", {}).get("normalisation") == how else "silent_wrong"
        attempts.append(Attempt("corrupt files", f"dataset manifest normalisation {how}: trained as asked", go,
                                expect="ok", check=recorded))
    return attempts + profile_attempts(tmp)


_DROP = object()


def profile_attempts(tmp: Path) -> list[Attempt]:
    from ttl.book import PROFILES_DIR

    smoke = yaml.safe_load((PROFILES_DIR / "smoke.yaml").read_text())
    folder = tmp / "profiles"
    folder.mkdir()
    cases: list[tuple[str, object, str | None]] = [
        ("empty", "", "mapping"), ("a list", "- 01_data\n", "mapping"), ("bad yaml", "defaults: {a: [\n", "YAML"),
        ("unknown key", {**smoke, "colour": "red"}, "colour"), ("no notebooks", {"defaults": smoke["defaults"]}, "notebooks"),
        ("notebooks empty", {**smoke, "notebooks": []}, "empty"),
        ("unknown notebook", {**smoke, "notebooks": [{"name": "99_nothing"}]}, "99_nothing"),
        ("notebook listed twice", {**smoke, "notebooks": ["03_svcca", "03_svcca"]}, "twice"),
        ("notebook name with .ipynb", {**smoke, "notebooks": ["03_svcca.ipynb"]}, "ipynb"),
        ("defaults typo", {**smoke, "defaults": {**smoke["defaults"], "epohcs": 1}}, "epohcs"),
        ("parameter not an identifier", {**smoke, "defaults": {"bad-name": 1}}, "bad-name"),
        ("runner parameter", {**smoke, "defaults": {"output_dir": "x"}}, "output_dir"),
        ("time budget a string", {**smoke, "time_budget_minutes": "soon"}, "time_budget_minutes"),
        ("unknown notebook key", {**smoke, "notebooks": [{"name": "03_svcca", "params": {}}]}, "params"),
    ]
    attempts = []
    for label, content, mentions in cases:
        path = folder / f"{label.replace(' ', '_')}.yaml"

        def go(path: Path = path, content: object = content) -> Result:
            path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
            return run_cli(["book", "--profile", str(path), "--no-build", "--executed-dir", str(tmp / "book-ex"),
                            "--results-dir", str(tmp / "book-res"), "--runs-dir", str(tmp / "book-runs")], guard=True)
        attempts.append(Attempt("book profiles", f"profile {label}", go, mentions=mentions))
    return attempts
