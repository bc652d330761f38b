"""Fractal pre-training (ttl.pretrain.train) and the ``ttl pretrain`` command, tiny and on CPU."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest
import torch
import torchvision

from ttl.commands import pretrain as cmd
from ttl.errors import ChecksumError, ConfigError
from ttl.pretrain.train import (MANIFEST_KEYS, classifier_prefix, pretrain, register_weights)
from ttl.provenance import read_json, sha256_file

TINY = dict(arch="resnet18", n_classes=4, images_per_class=16, size=32, batch_size=16,
            device="cpu", seed=0, progress=False)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """4 fractal classes x 64 images at 32 px, 2 epochs: enough to beat chance clearly."""
    out = tmp_path_factory.mktemp("learn")
    entry = pretrain("resnet18", n_classes=4, images_per_class=64, size=32, epochs=2, batch_size=8,
                     lr=3e-4, out_dir=out, device="cpu", seed=0, optimizer="adamw",
                     val_per_class=16, progress=False)
    return entry, out


def test_pretraining_beats_chance_on_fresh_instances(learned):
    entry, out = learned
    result = read_json(out / "result.json")
    assert result["chance_accuracy"] == 0.25
    # 64 held-out images: chance gives 0.25 +- 0.05
    assert entry["pretrain_val_accuracy"] >= 0.45
    assert result["val_accuracy"] == entry["pretrain_val_accuracy"]
    assert [h["epoch"] for h in result["history"]] == [1, 2]
    assert result["provenance"]["params"]["n_classes"] == 4


def test_export_is_a_fp16_backbone_that_resnet18_loads(learned):
    entry, out = learned
    assert set(entry) == set(MANIFEST_KEYS)
    assert entry["file"].endswith("resnet18_fractal.pt")
    assert sha256_file(entry["file"]) == entry["sha256"]
    assert len(entry["mean"]) == 3 and len(entry["std"]) == 3 and entry["image_size"] == 32
    assert entry["command"].startswith("ttl pretrain --arch resnet18")
    sd = torch.load(entry["file"], map_location="cpu", weights_only=True)
    assert isinstance(sd, dict) and not any(k.startswith("fc.") for k in sd)
    assert all(v.dtype == torch.float16 for v in sd.values() if v.is_floating_point())
    model = torchvision.models.resnet18(weights=None)
    res = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
    assert sorted(res.missing_keys) == ["fc.bias", "fc.weight"] and not res.unexpected_keys
    n_backbone = sum(p.numel() for k, p in model.named_parameters() if not k.startswith("fc."))
    assert entry["num_params"] == n_backbone


def test_resumes_from_the_epoch_checkpoint(tmp_path):
    first = pretrain(**TINY, epochs=1, out_dir=tmp_path)
    hist1 = read_json(tmp_path / "result.json")["history"]
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 1
    second = pretrain(**TINY, epochs=2, out_dir=tmp_path)
    res = read_json(tmp_path / "result.json")
    assert res["resumed_from_epoch"] == 1
    assert res["history"][0] == hist1[0]            # epoch 1 came from the checkpoint, not rerun
    assert [h["epoch"] for h in res["history"]] == [1, 2]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["epoch"] == 2
    assert second["sha256"] != first["sha256"]     # trained on: other weights
    # a finished run called again trains nothing and exports the same weights
    again = pretrain(**TINY, epochs=2, out_dir=tmp_path)
    assert again["sha256"] == second["sha256"]
    # a checkpoint of other parameters is refused, not silently mixed
    with pytest.raises(ConfigError, match="other parameters"):
        pretrain(**{**TINY, "size": 48}, epochs=2, out_dir=tmp_path)


def test_register_weights_merges_into_the_manifest(learned, tmp_path):
    entry, _ = learned
    wdir = tmp_path / "weights"
    stored = register_weights(entry, wdir)
    assert stored["file"] == "resnet18_fractal.pt"
    assert sha256_file(wdir / "resnet18_fractal.pt") == entry["sha256"]
    other = dict(entry, arch="resnet50")
    register_weights(other, wdir)
    manifest = read_json(wdir / "manifest.json")
    assert set(manifest) == {"resnet18", "resnet50"}
    assert manifest["resnet18"] == stored and set(manifest["resnet18"]) == set(MANIFEST_KEYS)
    # an existing manifest with a "weights" section is merged inside it
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "manifest.json").write_text(json.dumps({"version": 1, "weights": {"x": {}}}))
    register_weights(entry, nested)
    doc = read_json(nested / "manifest.json")
    assert doc["version"] == 1 and set(doc["weights"]) == {"x", "resnet18"}
    with pytest.raises(ChecksumError):
        register_weights(dict(entry, sha256="0" * 64), tmp_path / "bad")
    with pytest.raises(ConfigError, match="lacks"):
        register_weights({"arch": "resnet18"}, wdir)


def test_classifier_prefix_per_family():
    assert classifier_prefix(torchvision.models.resnet18(num_classes=7), 7) == "fc"
    assert classifier_prefix(torchvision.models.densenet121(num_classes=7), 7) == "classifier"


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="architecture"):
        pretrain(**{**TINY, "arch": "resnet_nope"}, epochs=1, out_dir=tmp_path)
    with pytest.raises(ConfigError, match="n_classes"):
        pretrain(**{**TINY, "n_classes": 1}, epochs=1, out_dir=tmp_path)


def test_cli_trains_registers_and_prints_json(tmp_path, capsys):
    sub = argparse.ArgumentParser(prog="ttl").add_subparsers(dest="command")
    cmd.register(sub)  # wires into a ttl-style parser
    argv = ["--arch", "resnet18", "--classes", "3", "--images-per-class", "8", "--size", "32",
            "--epochs", "1", "--batch", "8", "--device", "cpu", "--out", str(tmp_path / "run"),
            "--register", "--weights-dir", str(tmp_path / "w"), "--no-progress", "--json"]
    args = sub.choices["pretrain"].parse_args(argv)
    assert args.func is cmd.run
    assert cmd.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["file"] == "resnet18_fractal.pt" and printed["n_classes"] == 3
    assert read_json(tmp_path / "w" / "manifest.json")["resnet18"]["sha256"] == printed["sha256"]
    shutil.rmtree(tmp_path / "run")
    assert cmd.main(argv[:4] + ["--classes", "1"] + argv[6:]) == 2  # TTLError -> exit code 2


def test_same_parameters_give_the_same_weights_on_cpu(tmp_path):
    kw = dict(TINY, n_classes=3, images_per_class=8, epochs=1, batch_size=8)
    a = pretrain(**kw, out_dir=tmp_path / "a")
    b = pretrain(**kw, out_dir=tmp_path / "b")
    c = pretrain(**{**kw, "seed": 1}, out_dir=tmp_path / "c")
    assert a["sha256"] == b["sha256"] != c["sha256"]


def test_the_sources_page_draws_the_pretraining_curve_from_a_real_record(learned, tmp_path):
    from matplotlib.image import imread

    from ttl.book_pages import pretraining_curve

    _, out = learned
    text = pretraining_curve(out / "result.json", tmp_path)
    result = read_json(out / "result.json")
    last = result["history"][-1]
    assert f"{last['val_accuracy']:.0%} of held-out" in text and "4 classes of 64 images at 32 px" in text
    assert "2 epochs of ADAMW" in text and "chance 25%" in text
    png = imread(tmp_path / "pretraining.png")
    assert png.shape[1] <= 7 * 150 + 1 and png.shape[0] > 100  # within the book's 7-inch column at 150 dpi
    missing = pretraining_curve(tmp_path / "none.json", tmp_path)
    assert "No pretraining record" in missing and "ttl pretrain --arch resnet18" in missing
