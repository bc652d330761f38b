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


def test_manifest_folder_comes_from_TTL_MANIFEST_DIR_with_a_clear_error_when_missing(tmp_path):
    import subprocess
    import sys

    (tmp_path / "mine.yaml").write_text((MANIFEST_DIR / "phantom-low.yaml").read_text().replace(
        "name: phantom-low", "name: mine"))
    code = ("from ttl.data.manifest import list_datasets, load_manifest\n"
            "print(list_datasets())\n"
            "try:\n    load_manifest('phantom-low')\nexcept Exception as e:\n    print(e)\n")
    env = {**os.environ, "TTL_MANIFEST_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "['mine']" in out and "unknown dataset 'phantom-low'" in out and "known datasets: mine" in out
    env["TTL_MANIFEST_DIR"] = str(tmp_path / "absent")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "does not exist" in out and "TTL_MANIFEST_DIR" in out
