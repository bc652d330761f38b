"""IDX datasets (Fashion-MNIST's format), balanced subsets of real datasets, and the notebooks'
dataset and parameter helpers, on small files written here."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
import yaml

from ttl.data import load, load_manifest
from ttl.data.idx import parse, read
from ttl.errors import ChecksumError, ConfigError, DataError
from ttl.experiments.datasets import load_splits, names_text, root_for
from ttl.experiments.params import check_parameters
from ttl.train.loop import data_key


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(root, n_train: int = 60, n_test: int = 20, seed: int = 0) -> dict:
    """Three raw classes (0, 1, 2), images whose mean tells the class; returns the manifest."""
    rng = np.random.default_rng(seed)
    files = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 3
        images = (rng.integers(0, 50, (n, 28, 28)) + 60 * labels[:, None, None]).astype(np.uint8)
        for kind, arr in (("images", images), ("labels", labels)):
            raw = idx_bytes(arr)
            name = f"{part}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz"
            (root / name).write_bytes(gzip.compress(raw))
            files[f"{'test' if part == 't10k' else 'train'}-{kind}"] = {
                "url": f"https://example.org/{name}", "filename": name,
                "content_sha256": hashlib.sha256(raw).hexdigest()}
    return {"name": "tiny-idx", "task": "binary", "classes": ["zero", "two"],
            "source": {"kind": "idx", "url": "https://example.org", "files": files},
            "licence": "test", "access": {"registration": False},
            "labels": {"label_map": {0: "zero", 2: "two"}},
            "split": {"rule": "per_file", "fractions": {"val": 0.25}, "seed": 0},
            "preprocessing": {"channels": 1, "to_rgb": True, "size": 32}}


def test_idx_splits_keep_the_mapped_classes_and_never_share_an_image(tmp_path):
    manifest = write_idx_dataset(tmp_path)
    splits = {s: load(manifest, root=tmp_path, split=s, cache=False, progress=False) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 30, "val": 10, "test": 13}
    assert set(splits["train"].ids).isdisjoint(splits["val"].ids)
    # raw label 2 became class 1 and raw label 1 was dropped: the brightest images are class 1
    means = splits["train"].images.float().mean(dim=(1, 2, 3))
    assert means[splits["train"].labels == 1].min() > means[splits["train"].labels == 0].max()
    assert splits["train"].images.shape[-1] == 32


def test_idx_checks_content_and_format(tmp_path):
    manifest = write_idx_dataset(tmp_path)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    good = manifest["source"]["files"]["train-labels"]["content_sha256"]
    assert read(path, good).shape == (60,)
    with pytest.raises(ChecksumError, match="decompressed"):
        read(path, "0" * 64)
    with pytest.raises(DataError, match="truncated or corrupt"):
        parse(gzip.decompress(path.read_bytes())[:-3], "x")
    with pytest.raises(DataError, match="not an IDX file"):
        parse(b"PK\x03\x04rest", "x")
    (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="test-images.*apt install dataset-fashion-mnist"):
        load(manifest, root=tmp_path, split="test", cache=False, progress=False)


def test_idx_manifest_validation_names_the_key():
    base = yaml.safe_load(yaml.safe_dump({"name": "x", "task": "binary", "classes": ["a", "b"],
                                          "source": {"kind": "idx", "url": "u", "files": {
                                              k: {"url": "u"} for k in ("train-images", "train-labels",
                                                                        "test-images", "test-labels")}},
                                          "licence": "l", "access": {"registration": False},
                                          "labels": {"label_map": {0: "a", 1: "b"}},
                                          "split": {"rule": "per_file", "fractions": {"val": 0.2}},
                                          "preprocessing": {"channels": 1, "size": 28}}))
    assert load_manifest(base).kind == "idx"
    bad_map = {**base, "labels": {"label_map": {0: "a", 1: "c"}}}
    with pytest.raises(DataError, match="label_map.1.*not one of the classes"):
        load_manifest(bad_map)
    bad_split = {**base, "split": {"rule": "per_file", "fractions": {"val": 1.5}}}
    with pytest.raises(DataError, match="split.fractions"):
        load_manifest(bad_split)
    missing = {**base, "source": {**base["source"], "files": {"train-images": {"url": "u"}}}}
    with pytest.raises(DataError, match="source.files"):
        load_manifest(missing)


def test_subset_of_a_real_dataset_is_balanced_seeded_and_part_of_the_run_key(tmp_path):
    manifest = write_idx_dataset(tmp_path, n_train=120)
    a = load(manifest, root=tmp_path, split="train", n_per_class=7, seed=1, cache=False, progress=False)
    b = load(manifest, root=tmp_path, split="train", n_per_class=7, seed=1, cache=False, progress=False)
    c = load(manifest, root=tmp_path, split="train", n_per_class=7, seed=2, cache=False, progress=False)
    full = load(manifest, root=tmp_path, split="train", cache=False, progress=False)
    assert np.bincount(a.labels.numpy()).tolist() == [7, 7]
    assert list(a.ids) == list(b.ids) and list(a.ids) != list(c.ids)
    assert data_key(a) == data_key(b) and len({data_key(a), data_key(c), data_key(full)}) == 3
    assert a.meta["subset"]["n_per_class"] == 7 and a.meta["root"] == str(tmp_path.resolve())


def test_notebook_loader_keeps_phantom_options_to_phantoms(tmp_path):
    manifest = write_idx_dataset(tmp_path)
    path = tmp_path / "tiny-idx.yaml"
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(ConfigError, match="contrast=2.0 applies to phantom datasets only; .* is of kind 'idx': leave contrast at 1.0"):
        load_splits(str(path), str(tmp_path), n_per_class=3, contrast=2.0)
    data = load_splits(str(path), {"tiny-idx": str(tmp_path)}, n_per_class=3, size=16)
    assert [len(d) for d in data.values()] == [6, 6, 6]
    phantom = load_splits("phantom-mid", None, n_per_class=2, size=32, contrast=0.5, splits=("val",))
    assert phantom["val"].meta["params"]["contrast"] == 0.5
    assert root_for(str(path), {"other": "x"}) is None and root_for("phantom-mid", "/r") == "/r"
    assert names_text(["a"]) == "a" and names_text(["a", "b", "c"]) == "a, b and c"


def test_check_parameters_names_each_wrong_type():
    from typing import Optional, Union

    ns = {"__annotations__": {"epochs": int, "lr": float, "sizes": Union[dict, int, None], "cuts": Optional[list],
                              "flag": bool},
          "epochs": 3, "lr": 1, "sizes": None, "cuts": None, "flag": False}
    check_parameters(ns)
    with pytest.raises(ConfigError, match=r"epochs must be int, got 'abc'"):
        check_parameters({**ns, "epochs": "abc"})
    with pytest.raises(ConfigError, match=r"epochs must be int, got True.*cuts must be list or None"):
        check_parameters({**ns, "epochs": True, "cuts": "layer1.1"})
    with pytest.raises(ConfigError, match="sizes must be dict or int or None"):
        check_parameters({**ns, "sizes": [1, 2]})
