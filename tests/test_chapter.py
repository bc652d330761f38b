"""open_chapter: the one call a notebook makes for its parameters, data, training config, run
folders and save helpers (notebooks as thin clients)."""

from __future__ import annotations

import json
from typing import Optional, Union

import pytest

from ttl.errors import ConfigError
from ttl.experiments.chapter import data_options, open_chapter


def _namespace(tmp_path, **changes):
    """What a notebook's globals hold after papermill: the annotated parameters cell, then the runner's."""
    values = dict(datasets=["phantom-low", "phantom-mid"], root=None, arch="resnet18", source="scratch",
                  n_per_class={"train": 4, "val": 3, "test": 2}, image_size=32, data_seed=1, contrast=1.0,
                  epochs=3, patience=2, schedule="cosine", batch_size=8, lr_grid=[3e-3, 1e-3],
                  lr_dataset="phantom-high", seeds=[0, 1], device="cpu", n_boot=0, probe_cuts=None,
                  runs_dir=str(tmp_path / "runs"))
    annotations = {k: type(v) if v is not None else Optional[str] for k, v in values.items()}
    annotations["root"] = Union[str, dict, None]
    annotations["n_per_class"] = Union[dict, int, None]
    annotations["probe_cuts"] = Optional[list]
    values.update(changes)
    return {"__annotations__": annotations, **values, "output_dir": str(tmp_path / "out"), "profile": "test",
            "unrelated": 5}


def test_open_chapter_gives_params_data_config_runs_and_save(tmp_path):
    from ttl.train import TrainConfig
    from ttl.train.loop import run_key_params

    ns = _namespace(tmp_path)
    ch = open_chapter(ns)
    # every declared parameter, recorded whole (and nothing else of the namespace)
    assert set(ch.params) == set(ns["__annotations__"]) | {"output_dir", "profile"}
    assert ch.params["probe_cuts"] is None and "unrelated" not in ch.params
    assert ch.names == ["phantom-low", "phantom-mid"] and ch.lr_name == "phantom-high"
    assert [len(ch.data["phantom-mid"][s]) for s in ("train", "val", "test")] == [8, 6, 4]
    assert ch.data["phantom-low"]["train"].images.shape[-1] == 32 and len(ch.lr_data["val"]) == 6
    # the config the notebooks built by hand before, to the run key (image_size stays out of it)
    by_hand = TrainConfig(epochs=3, patience=2, schedule="cosine", batch_size=8, lr=3e-3, device="cpu", n_boot=0,
                          progress=False)
    assert run_key_params(ch.cfg, None, {}) == run_key_params(by_hand, None, {})
    assert ch.base["phantom-high"] == tmp_path / "runs" / "phantom-high" / "resnet18-scratch"
    assert set(ch.base) == {"phantom-low", "phantom-mid", "phantom-high"}
    import pandas as pd

    path = ch.save(pd.DataFrame({"a": [1, 2]}), "toy", t0=0.0)
    saved = json.loads(path.read_text())
    assert saved["provenance"]["params"] == json.loads(json.dumps(ch.params)) and saved["rows"] == [{"a": 1}, {"a": 2}]
    assert (tmp_path / "out" / "toy.csv").is_file() and saved["provenance"]["wall_time_s"] > 0


def test_lr_dataset_among_the_datasets_is_not_loaded_twice(tmp_path):
    ch = open_chapter(_namespace(tmp_path, lr_dataset="phantom-mid"))
    assert ch.lr_data is ch.data["phantom-mid"]


def test_a_single_dataset_chapter_and_kind_options(tmp_path):
    ns = _namespace(tmp_path, contrast=2.0)
    ns.pop("datasets")
    ns["__annotations__"] = {("dataset" if k == "datasets" else k): (str if k == "datasets" else v)
                             for k, v in ns["__annotations__"].items()}
    ns["dataset"] = "phantom-mid"
    ch = open_chapter(ns)
    assert ch.names == ["phantom-mid"]
    assert ch.data["phantom-mid"]["train"].meta["params"]["contrast"] == 2.0  # the kind option reached it
    assert data_options(ch.params) == {"n_per_class": ns["n_per_class"], "size": 32, "seed": 1, "contrast": 2.0}


def test_open_chapter_refuses_wrong_types_and_a_missing_runner_parameter(tmp_path):
    with pytest.raises(ConfigError, match=r"epochs must be int, got 'abc'"):
        open_chapter(_namespace(tmp_path, epochs="abc"))
    ns = _namespace(tmp_path, method="gradcam+")
    ns["__annotations__"]["method"] = str
    with pytest.raises(ConfigError, match=r"method='gradcam\+' is not a registered CAM method; known: gradcam, "):
        open_chapter(ns)
    ns = _namespace(tmp_path)
    ns.pop("output_dir")
    with pytest.raises(ConfigError, match=r"no 'output_dir': run it through `ttl book`"):
        open_chapter(ns)
