"""The one schema library (ttl.schema) and the dataset-kind registry (ttl.data.kinds).

Manifests, profiles and kind options are pydantic models checked through ``ttl.schema.validate``:
one message form for all three. A kind registered in a test reaches the manifest schema, the loader,
the notebooks' option routing and the CLI flags without any other change."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import yaml
from pydantic import Field

from ttl.data.kinds import REGISTRY, DatasetKind, LoadOptions, kind_only_options, register_kind
from ttl.errors import ConfigError, DataError
from ttl.schema import Strict, either, validate


class Inner(Strict):
    level: int = Field(ge=1, le=3)


class Outer(Strict):
    name: str
    choice: either(str, dict[str, str]) | None = None  # type: ignore[valid-type]
    inner: Inner | None = None
    tags: list[str] | None = None


@pytest.mark.parametrize("data, message", [
    ({}, "missing required key 'name'"),
    ({"name": 3}, "key 'name': expected a string, got int 3"),
    ({"name": "a", "nmae": 1}, "unknown key 'nmae' (known here: name, choice, inner, tags)"),
    ({"name": "a", "inner": {"levl": 2}}, "unknown key 'inner.levl' (known here: level)"),
    ({"name": "a", "inner": {"level": 9}}, "key 'inner.level': input should be less than or equal to 3, got 9"),
    ({"name": "a", "inner": {"level": True}}, "key 'inner.level': expected an integer, got bool True"),
    ({"name": "a", "choice": 5}, "key 'choice': expected a string or a mapping, got int 5"),
    ({"name": "a", "choice": {"k": 1}}, "key 'choice.k': expected a string, got int 1"),
    ({"name": "a", "tags": ["x", 2]}, "key 'tags[1]': expected a string, got int 2"),
])
def test_validate_gives_one_line_naming_the_dotted_key(data, message):
    with pytest.raises(DataError) as err:
        validate(Outer, data, "thing.yaml", DataError)
    assert str(err.value) == f"thing.yaml: {message}"


def test_either_picks_the_alternative_by_type():
    assert validate(Outer, {"name": "a", "choice": "x"}, "w").choice == "x"
    assert validate(Outer, {"name": "a", "choice": {"k": "v"}}, "w").choice == {"k": "v"}


def test_manifest_and_profile_errors_read_alike(tmp_path):
    from ttl.book import parse_profile
    from ttl.data.manifest import MANIFEST_DIR, load_manifest

    data = yaml.safe_load((MANIFEST_DIR / "phantom-mid.yaml").read_text())
    data["source"]["params"]["levle"] = "mid"
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=r"m.yaml: unknown key 'source.params.levle' \(known here: level, "):
        load_manifest(path)
    data["source"]["params"].pop("levle")
    data["source"]["params"]["n_per_class"] = {"train": 10, "tset": 5}
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(DataError, match=r"key 'source.params.n_per_class.tset': 'tset' is not one of"):
        load_manifest(path)
    with pytest.raises(ConfigError, match=r"profile 'p': key 'notebooks\[1\]': expected a string or a mapping"):
        parse_profile({"notebooks": ["a", 7]}, "p")


@pytest.fixture
def toy_kind(monkeypatch):
    """A dataset kind of two constant-colour classes, with one option of its own (``shade``)."""
    class ToyOptions(LoadOptions):
        shade: int | None = Field(None, ge=0, le=255, description="the brightness of class 1",
                                  json_schema_extra={"neutral": 200})

    def load_toy(m, root, split, use_cache, cache_dir, progress, options):
        n, size, shade = int(options.get("n_per_class", 4)), int(options.get("size", 16)), options.get("shade", 200)
        labels = np.repeat([0, 1], n)
        images = np.where(labels[:, None, None, None] == 1, shade, 30).astype(np.uint8)
        return {"images": np.broadcast_to(images, (2 * n, 1, size, size)).copy(), "labels": labels}, {"split": split}

    kind = DatasetKind("toy", "two flat classes", load_toy, ToyOptions, split_rules=("generated",),
                       needs=("source.generator",), subset=False)
    monkeypatch.setitem(REGISTRY, "toy", kind)
    manifest = {"name": "toy", "task": "binary", "classes": ["dark", "bright"], "licence": "CC0",
                "access": {"registration": False}, "split": {"rule": "generated"},
                "source": {"kind": "toy", "url": "generated", "generator": "tests"},
                "preprocessing": {"channels": 1, "size": 16}}
    return kind, manifest


def test_a_registered_kind_reaches_manifests_loader_notebooks_and_cli(toy_kind, tmp_path):
    from ttl.commands.dataset_args import add_kind_options, kind_overrides
    from ttl.data import load, load_manifest
    from ttl.experiments.datasets import kind_options

    kind, manifest = toy_kind
    assert load_manifest(manifest).kind == "toy"  # the schema's source.kind follows the registry
    with pytest.raises(DataError, match=r"'split.rule': 'random' does not fit source.kind 'toy'"):
        load_manifest({**manifest, "split": {"rule": "random", "fractions": {"train": 1.0}}})
    with pytest.raises(DataError, match=r"missing required key 'source.generator' \(needed by source.kind 'toy'\)"):
        load_manifest({**manifest, "source": {"kind": "toy", "url": "generated"}})

    ds = load(manifest, split="val", cache=False, n_per_class=3, shade=120)
    assert ds.images.shape == (6, 1, 16, 16) and int(ds.images[ds.labels == 1].max()) == 120
    with pytest.raises(ConfigError, match=r"dataset 'toy' \(toy\): key 'shade': input should be less than or equal to 255"):
        load(manifest, cache=False, shade=300)
    with pytest.raises(ConfigError, match=r"unknown override\(s\) \['contrast'\]"):
        load(manifest, cache=False, contrast=1.0)

    assert kind_only_options("toy") == ("shade",)
    path = tmp_path / "toy.yaml"
    path.write_text(yaml.safe_dump(manifest))
    # the notebooks' routing: contrast (phantoms') at its neutral value is dropped, shade kept
    assert kind_options(str(path), {"size": 16, "contrast": 1.0, "shade": 90}) == {"size": 16, "shade": 90}
    with pytest.raises(ConfigError, match=r"shade=90 applies to toy datasets only; 'phantom-mid' is of kind 'phantom'"):
        kind_options("phantom-mid", {"shade": 90})
    assert kind_options("phantom-mid", {"shade": 200}) == {}  # its neutral value

    parser = argparse.ArgumentParser(exit_on_error=False)
    names = add_kind_options(parser)
    assert "shade" in names and "contrast" in names
    assert kind_overrides(parser.parse_args(["--shade", "7"])) == {"shade": 7}
    with pytest.raises(argparse.ArgumentError, match=r"must be an integer >= 0 and <= 255, got '256'"):
        parser.parse_args(["--shade", "256"])


def test_kinds_cannot_be_registered_twice_and_unknown_kinds_are_named():
    from ttl.data.kinds import get_kind

    with pytest.raises(ConfigError, match="registered twice"):
        register_kind(get_kind("phantom"))
    with pytest.raises(ConfigError, match="unknown dataset kind 'nope'; known: phantom, medmnist, idx, folder"):
        get_kind("nope")


def test_phantom_bounds_are_declared_once():
    """The generator, the loader and the CLI refuse the same out-of-range values with the bound of
    PhantomOptions (changing the bound there changes all three)."""
    from ttl.cli import build_parser
    from ttl.data import load
    from ttl.data.kinds import PhantomOptions
    from ttl.data.phantoms import PhantomParams

    bound = PhantomOptions.model_fields["label_noise"].metadata
    assert any(getattr(m, "lt", None) == 0.5 for m in bound)
    with pytest.raises(ConfigError, match="key 'label_noise': input should be less than 0.5"):
        PhantomParams("mid", label_noise=0.5).validate()
    with pytest.raises(ConfigError, match="key 'label_noise': input should be less than 0.5"):
        load("phantom-mid", cache=False, label_noise=0.5)
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "show", "phantom-mid", "--label-noise", "0.5"])


def test_ttl_data_schema_prints_a_json_schema_every_shipped_manifest_satisfies(capsys):
    """The exported JSON Schema (for editors) agrees with the pydantic model: each shipped manifest
    validates against it, a misspelt key does not."""
    import json

    import jsonschema

    from ttl.cli import main
    from ttl.data.manifest import MANIFEST_DIR

    assert main(["data", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    paths = sorted(MANIFEST_DIR.glob("*.yaml"))
    assert len(paths) >= 12
    for path in paths:
        data = json.loads(json.dumps(yaml.safe_load(path.read_text())))  # as an editor reads it: string keys
        jsonschema.validate(data, schema)
    data["preprocessing"]["sise"] = 64
    with pytest.raises(jsonschema.ValidationError, match="sise"):
        jsonschema.validate(data, schema)
    assert main(["data", "schema", "--profile"]) == 0
    assert json.loads(capsys.readouterr().out)["title"] == "ProfileSchema"
