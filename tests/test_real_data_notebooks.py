"""All five notebooks on real, non-synthetic images: Fashion-MNIST from Debian's
``dataset-fashion-mnist`` package (its shipped manifest) and a torchvision-style ImageFolder tree
this test writes (the recipe in data_manifests/README.md), through ``ttl book`` with a profile of
its own; then the HTML is built and the chapters' text is checked to name these datasets."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from ttl.cli import main
from ttl.data import load

FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ("circle", "square")
PER_SPLIT = {"train": 12, "val": 8, "test": 8}

pytestmark = pytest.mark.slow


def _need_fashion() -> None:
    if not (FASHION / "train-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's dataset-fashion-mnist (.ci/setup-datasets.sh)")
        pytest.skip("Debian's dataset-fashion-mnist is not installed (apt install dataset-fashion-mnist)")


def write_image_folder(root: Path, per_split: dict[str, int], size: int = 40, seed: int = 0) -> None:
    """``root/<split>/<class>/<n>.png``: a bright disc or square on noise, anywhere in the image."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for split, n in per_split.items():
        for label in CLASSES:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.normal(60, 20, (size, size))
                cy, cx, r = rng.integers(10, size - 10), rng.integers(10, size - 10), rng.integers(4, 8)
                inside = ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r) if label == "circle" else \
                    ((abs(yy - cy) <= r) & (abs(xx - cx) <= r))
                img[inside] += 120
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:03d}.png")


IMAGE_FOLDER_MANIFEST = """\
name: tiny-shapes
description: Discs and squares on noise, written by tests/test_real_data_notebooks.py.
task: binary
classes: [circle, square]
source: {kind: folder, url: written by the test}
licence: test data
access: {registration: false}
labels:
  from_filename: {glob: "*/*/*.png", regex: "^(?P<split>[^/]+)/(?P<label>[^/]+)/"}
split: {rule: path}
preprocessing: {channels: 1, to_rgb: true, size: 32, normalisation: source, augment: [hflip]}
"""


def test_image_folder_recipe_reads_splits_and_classes_from_the_path(tmp_path):
    write_image_folder(tmp_path / "shapes", {"train": 3, "val": 2, "test": 1})
    manifest = tmp_path / "tiny-shapes.yaml"
    manifest.write_text(IMAGE_FOLDER_MANIFEST)
    counts = {s: load(manifest, root=tmp_path / "shapes", split=s, cache=False, progress=False)
              for s in PER_SPLIT}
    assert {s: len(ds) for s, ds in counts.items()} == {"train": 6, "val": 4, "test": 2}
    train = counts["train"]
    assert train.classes == list(CLASSES) and sorted(train.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    assert all(i.startswith("train/") for i in train.ids)
    assert train.images.shape[1:] == (1, 32, 32)


def test_fashion_mnist_pair_is_the_debian_files_subset_and_balanced():
    _need_fashion()
    test = load("fashion-mnist-shirts", split="test", cache=False, progress=False)
    assert len(test) == 2000 and test.labels.float().mean().item() == 0.5  # 1,000 of each class
    val = load("fashion-mnist-shirts", split="val", n_per_class=30, seed=1, cache=False, progress=False)
    assert len(val) == 60 and val.meta["root"] == str(FASHION) and len(val.meta["manifest_sha256"]) == 64


def test_every_notebook_runs_on_fashion_mnist_and_an_image_folder(tmp_path):
    _need_fashion()
    shapes = tmp_path / "shapes"
    write_image_folder(shapes, PER_SPLIT)
    manifest = tmp_path / "tiny-shapes.yaml"
    manifest.write_text(IMAGE_FOLDER_MANIFEST)
    both = ["fashion-mnist-shirts", str(manifest)]
    profile = {
        "description": "real images through every notebook (test)", "hardware": "the test machine",
        "time_budget_minutes": 10,
        "defaults": {"device": "cpu", "seeds": [0], "selection_seeds": [0], "data_seed": 0, "source": "fractal",
                     "arch": "resnet18", "image_size": 32, "n_per_class": dict(PER_SPLIT), "epochs": 1,
                     "patience": 0, "schedule": "cosine", "batch_size": 16, "lr_grid": [0.001],
                     "lr_dataset": "fashion-mnist-shirts", "lr_cut": "layer1.1", "n_boot": 20,
                     "root": {"tiny-shapes": str(shapes)}, "runs_dir": str(tmp_path / "runs")},
        "notebooks": [
            {"name": "01_data", "parameters": {"datasets": both, "n_examples": 4}},
            {"name": "02_feature_transferability",
             "parameters": {"datasets": both, "finetune_cuts": ["layer1.1", "layer4.1"], "scratch_full": False,
                            "probe_models": [["resnet18", "fractal"], ["resnet18", "scratch"]]}},
            {"name": "03_svcca", "parameters": {"dataset": "fashion-mnist-shirts", "n_images": 16,
                                                "baseline_draws": 2}},
            {"name": "04_gradcam", "parameters": {"dataset": str(manifest), "lr_dataset": str(manifest),
                                                  "cuts": ["layer1.1"], "n_images": 4, "n_faithfulness": 4}},
            {"name": "05_truncation_benchmark",
             "parameters": {"datasets": both, "cut_candidates": ["layer1.1"], "scratch_full": False,
                            "search": False, "latency_repeats": 1}},
        ],
    }
    path = tmp_path / "real.yaml"
    path.write_text(yaml.safe_dump(profile))
    code = main(["book", "--profile", str(path), "--executed-dir", str(tmp_path / "executed"),
                 "--results-dir", str(tmp_path / "results"), "--build-dir", str(tmp_path / "build"),
                 "--no-progress"])
    assert code == 0
    results = tmp_path / "results"
    bench = json.loads((results / "05_truncation_benchmark" / "benchmark.json").read_text())
    assert {r["dataset"] for r in bench["rows"]} == {"fashion-mnist-shirts", "tiny-shapes"}
    audit = (results / "01_data").glob("audit.csv")
    assert not list(audit), "the phantom audit ran on datasets that are not phantoms"
    # a run records where its data came from (absolute paths, manifest sha256), outside its key
    run = next((tmp_path / "runs" / "tiny-shapes").rglob("result.json"))
    files = json.loads(run.read_text())["provenance"]["params"]["data_files"]["train"]
    assert files["root"] == str(shapes.resolve()) and files["manifest"] == str(manifest.resolve())
    html = tmp_path / "build" / "_build" / "html" / "book" / "executed"
    text = {p.stem: re.sub(r"<[^>]+>", " ", p.read_text(encoding="utf-8")) for p in html.glob("*.html")}
    assert len(text) == 5, sorted(text)
    assert "fashion-mnist-shirts" in text["01_data"] and "tiny-shapes" in text["01_data"]
    assert "fashion-mnist-shirts" in text["03_svcca"] and "tiny-shapes" in text["04_gradcam"]
    assert "phantom-mid" not in text["05_truncation_benchmark"]
