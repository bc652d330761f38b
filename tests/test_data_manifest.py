"""Manifest schema: every shipped manifest validates; bad ones name the file and the key."""

from __future__ import annotations

import os

import pytest
import yaml

from ttl.data import list_datasets, load_manifest
from ttl.data.manifest import MANIFEST_DIR
from ttl.errors import DataError

EXPECTED = {"bimcv-covid19", "chexpert", "shenzhen-cxr", "ham10000", "midog-patches", "pneumoniamnist",
            "breastmnist", "dermamnist", "phantom-low", "phantom-mid", "phantom-high"}


def test_all_shipped_manifests_validate():
    names = set(list_datasets())
    assert EXPECTED <= names
    for name in names:
        m = load_manifest(name)
        assert m.name == name, f"{name}.yaml declares name {m.name!r}"
        assert m.data["source"]["url"] and m.data["licence"]


def test_access_and_synthetic_flags():
    registration = {n: load_manifest(n).data["access"]["registration"] for n in EXPECTED}
    assert registration["chexpert"] and registration["bimcv-covid19"] and registration["midog-patches"]
    assert not registration["shenzhen-cxr"] and not registration["ham10000"]
    assert "CC BY-NC" in load_manifest("ham10000").data["licence"]
    for level in ("low", "mid", "high"):
        m = load_manifest(f"phantom-{level}")
        assert m.data["synthetic"] is True and m.source["url"] == "generated"
        assert m.source["params"]["level"] == level and "SYNTHETIC" in m.data["description"]


def _write(tmp_path, data, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _base():
    return yaml.safe_load((MANIFEST_DIR / "shenzhen-cxr.yaml").read_text())


def test_unknown_key_names_file_and_key(tmp_path):
    data = _base()
    data["labels"]["label_colums"] = ["x"]
    path = _write(tmp_path, data)
    with pytest.raises(DataError, match=rf"{path}: unknown key 'labels.label_colums'"):
        load_manifest(path)


@pytest.mark.parametrize("key,value,message", [
    ("task", 3, r"key 'task': expected a string, got int"),
    ("task", "regression", r"key 'task': 'regression' is not one of"),
    ("classes", "normal", r"key 'classes': expected a list"),
    ("access", {"registration": "no"}, r"key 'access.registration': expected true/false"),
    ("preprocessing", {"channels": 2, "size": 64}, r"key 'preprocessing.channels': 2 is not one of"),
    ("split", {"rule": "official"}, r"key 'split.rule': 'official' does not fit source.kind 'folder'"),
])
def test_wrong_types_and_values(tmp_path, key, value, message):
    data = _base()
    data[key] = value
    path = _write(tmp_path, data)
    with pytest.raises(DataError, match=rf"{path}: {message}"):
        load_manifest(path)


def test_missing_key_and_cross_checks(tmp_path):
    data = _base()
    del data["licence"]
    with pytest.raises(DataError, match=r"missing required key 'licence'"):
        load_manifest(_write(tmp_path, data))
    data = _base()
    data["classes"] = ["a", "b", "c"]
    with pytest.raises(DataError, match=r"binary task has exactly two classes"):
        load_manifest(_write(tmp_path, data))
    data = _base()
    data["split"]["fractions"] = {"train": 0.5, "val": 0.1, "test": 0.1}
    with pytest.raises(DataError, match=r"fractions must add up to 1"):
        load_manifest(_write(tmp_path, data))
    ph = yaml.safe_load((MANIFEST_DIR / "phantom-mid.yaml").read_text())
    ph["source"]["params"]["size"] = 32
    with pytest.raises(DataError, match=r"source.params.size"):
        load_manifest(_write(tmp_path, ph))


def test_yaml_syntax_error_names_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\ntask: binary\nclasses: [a, b\nlicence: y\n")
    with pytest.raises(DataError, match=rf"{path}, line \d+: not valid YAML"):
        load_manifest(path)


def test_unknown_name_lists_known_ones():
    with pytest.raises(DataError, match=r"unknown dataset 'no-such-set'.*phantom-low"):
        load_manifest("no-such-set")


def test_TTL_MANIFEST_DIR_adds_folders_searched_before_the_shipped_ones(tmp_path):
    """A user's folders (os.pathsep list) add to the shipped manifests, win on a shared name, and
    a folder that does not exist is an error rather than silently ignored."""
    import subprocess
    import sys

    mine, other = tmp_path / "mine", tmp_path / "other"
    mine.mkdir(), other.mkdir()
    (mine / "mine.yaml").write_text((MANIFEST_DIR / "phantom-low.yaml").read_text().replace(
        "name: phantom-low", "name: mine"))
    # a user copy of a shipped name, with another description: the user's copy is the one loaded
    (other / "phantom-low.yaml").write_text((MANIFEST_DIR / "phantom-low.yaml").read_text().replace(
        "name: phantom-low", "name: phantom-low-user-copy"))
    code = ("from ttl.data.manifest import list_datasets, load_manifest\n"
            "names = list_datasets(); print('mine' in names, 'phantom-mid' in names, 'phantom-low' in names)\n"
            "print(load_manifest('phantom-low').name, load_manifest('mine').name, load_manifest('phantom-mid').name)\n"
            "try:\n    load_manifest('no-such-set')\nexcept Exception as e:\n    print(e)\n")
    env = {**os.environ, "TTL_MANIFEST_DIR": os.pathsep.join([str(mine), str(other)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "True True True"
    assert lines[1] == "phantom-low-user-copy mine phantom-mid"
    assert "unknown dataset 'no-such-set'" in lines[2] and str(mine) in lines[2] and "phantom-mid" in lines[2]
    env["TTL_MANIFEST_DIR"] = str(tmp_path / "absent")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "does not exist" in out.stderr and "TTL_MANIFEST_DIR" in out.stderr
