"""Corrupt files, bad manifests and full disks end in clear messages (or a clean retrain), never a traceback."""

import re
import warnings

import pytest
import torch

import ttl.data
from tiny import tiny_dataset
from ttl.cli import main
from ttl.data import load_manifest
from ttl.errors import DataError
from ttl.strategies import prepare
from ttl.train import TrainConfig, fit
from ttl.train.runs import load_run, run_params

CFG = TrainConfig(epochs=1, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0)


def _losses(result):
    return [(h["train_loss"], h["val_loss"], h["val_auroc"]) for h in result.history]


def _train(folder):
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    params = run_params("ttl", "resnet18", "layer1.0", "scratch", 1.0, None, 2, "tiny")
    return fit(model, tiny_dataset(32), tiny_dataset(32, seed=1), CFG, out_dir=folder, params=params)


def test_a_truncated_result_or_model_is_retrained_not_a_crash(tmp_path):
    first = _train(tmp_path)
    result = (tmp_path / "result.json").read_text()
    (tmp_path / "result.json").write_text(result[: len(result) // 2])
    with pytest.warns(UserWarning, match="not readable JSON.*training the run again"):
        again = _train(tmp_path)
    assert not again.reused and again.best_epoch == first.best_epoch
    (tmp_path / "model.pt").write_bytes((tmp_path / "model.pt").read_bytes()[:100])
    with pytest.raises(DataError, match=r"model.pt: unreadable weights"):
        load_run(tmp_path)
    with pytest.warns(UserWarning, match=r"model.pt: unreadable .*training the run again"):
        assert not _train(tmp_path).reused


def test_a_corrupt_checkpoint_restarts_from_the_first_epoch(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="checkpoint.pt: unreadable"):
        res = _train(tmp_path)
    assert [h["epoch"] for h in res.history] == [0]


def test_evaluate_reports_corrupt_run_files_as_errors(tmp_path, capsys):
    _train(tmp_path)
    (tmp_path / "result.json").write_text("{\"truncated\": ")
    assert main(["evaluate", str(tmp_path), "--device", "cpu"]) == 2
    assert "result.json: not readable JSON" in capsys.readouterr().err


def test_evaluate_refuses_a_dataset_with_other_classes(tmp_path, capsys, monkeypatch):
    _train(tmp_path)
    three = tiny_dataset(12)
    three.classes = ["a", "b", "c"]
    monkeypatch.setattr(ttl.data, "load", lambda *a, **k: three)
    assert main(["evaluate", str(tmp_path), "--dataset", "phantom-mid", "--device", "cpu"]) == 2
    assert "trained for 2 classes but phantom-mid has 3" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (b"", "the manifest is empty"),
    (b"- a\n- b\n", "the manifest is a YAML list"),
    (b"name: caf\xe9\n", "not a UTF-8 text file"),
])
def test_unusable_manifest_files(tmp_path, content, message):
    path = tmp_path / "mine.yaml"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_manifest(path)


def test_an_unknown_augmentation_is_refused_when_the_manifest_is_read():
    from ttl.data.manifest import AUGMENTATIONS
    from ttl.train.batches import AUGMENTATIONS as USED

    data = dict(load_manifest("phantom-low").data)
    data["preprocessing"] = {**data["preprocessing"], "augment": ["hflip", "rotate"]}
    with pytest.raises(DataError, match=r"preprocessing.augment\[1\]': 'rotate' is not one of"):
        load_manifest(data)
    assert AUGMENTATIONS == USED


def test_no_space_left_is_a_message(monkeypatch, capsys):
    import ttl.commands.cuts as cuts

    def full_disk(args):
        raise OSError(28, "No space left on device", "runs/x/checkpoint.pt")

    monkeypatch.setattr(cuts, "run", full_disk)
    assert main(["cuts", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device: 'runs/x/checkpoint.pt'" in err and "Traceback" not in err


def _weights_dir(tmp_path, monkeypatch, edit):
    """A copy of the shipped resnet18 fractal entry (file linked, not copied) with ``edit`` applied."""
    import json

    import ttl.models.sources as sources

    shipped = json.loads((sources.WEIGHTS_DIR / "manifest.json").read_text())["resnet18"]
    (tmp_path / shipped["file"]).symlink_to(sources.WEIGHTS_DIR / shipped["file"])
    entry = dict(shipped)
    edit(entry)
    (tmp_path / "manifest.json").write_text(json.dumps({"resnet18": entry}))
    monkeypatch.setattr(sources, "WEIGHTS_DIR", tmp_path)
    return sources


@pytest.mark.parametrize("edit, message", [
    (lambda e: e.pop("sha256"), r"entry 'resnet18' has no sha256"),
    (lambda e: e.update(sha256="abc"), r"entry 'resnet18': sha256 must be 64 hex digits"),
    (lambda e: e.pop("mean"), r"entry 'resnet18' has no mean"),
    (lambda e: e.update(std=[0.5, 0.0, 0.5]), r"entry 'resnet18': std must be 3 finite numbers > 0"),
    (lambda e: e.pop("file"), r"entry 'resnet18' has no file"),
])
def test_a_weights_entry_that_cannot_be_checked_is_refused(tmp_path, monkeypatch, edit, message):
    sources = _weights_dir(tmp_path, monkeypatch, edit)
    with pytest.raises(DataError, match=re.escape(f"{tmp_path / 'manifest.json'}: ") + message):
        sources.source_state_dict("fractal", "resnet18")
    with pytest.raises(DataError, match=message):  # never a silent fallback to other statistics
        sources.normalization("fractal", "resnet18")


def test_a_weights_manifest_that_is_not_an_object_is_refused(tmp_path, monkeypatch):
    sources = _weights_dir(tmp_path, monkeypatch, lambda e: None)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="manifest.json: not a JSON object"):
        sources.source_state_dict("fractal", "resnet18")


def test_the_shipped_weights_entries_are_complete():
    import ttl.models.sources as sources

    for arch in ("resnet18", "resnet50"):
        assert len(sources.manifest_entry("fractal", arch)["sha256"]) == 64


def test_a_cache_that_cannot_be_written_is_skipped_with_a_warning(tmp_path, monkeypatch):
    import errno

    import ttl.data.cache as cache

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(cache, "atomic_write", full)
    with pytest.warns(UserWarning, match=r"could not write the data cache .*No space left on device.*"
                                         r"the data are used without caching"):
        data = ttl.data.load("phantom-low", split="val", n_per_class=4, size=32, cache_dir=tmp_path / "c")
    assert len(data) == 8 and not list((tmp_path / "c").rglob("meta.json"))


def test_a_read_only_cache_folder_is_skipped_with_a_warning(tmp_path, monkeypatch):
    import os

    if os.geteuid() == 0:  # root writes into read-only folders: stand in with a folder that is a file
        (tmp_path / "c").write_text("not a folder")
    else:
        (tmp_path / "c").mkdir(mode=0o555)
    with pytest.warns(UserWarning, match="could not write the data cache"):
        data = ttl.data.load("phantom-low", split="val", n_per_class=4, size=32, cache_dir=tmp_path / "c")
    assert len(data) == 8


def test_a_full_disk_while_writing_a_run_is_an_exit_2_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    import ttl.train.engine as engine
    import ttl.train.loop as loop

    def full(path, obj):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(engine, "atomic_torch_save", full)  # the checkpoint, written by the engine
    monkeypatch.setattr(loop, "atomic_torch_save", full)    # model.pt
    monkeypatch.setenv("TTL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    code = main(["train", "--source", "scratch", "--dataset", "phantom-low", "--n-per-class", "4", "--data-size",
                 "32", "--epochs", "1", "--n-boot", "0", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and f"No space left on device: '{out / 'checkpoint.pt'}'" in err and "Traceback" not in err
    assert not (out / "result.json").exists()


@pytest.mark.parametrize("content, message", [
    ("[]", r"not a finished run's result \(a JSON list\)"),
    ("null", r"not a finished run's result \(a JSON NoneType\)"),
    ("{}", r"no valid params_hash, metrics, history, best_epoch"),
])
def test_result_json_of_another_shape_is_retrained_or_named(tmp_path, capsys, content, message):
    first = _train(tmp_path)
    (tmp_path / "result.json").write_text(content)
    assert main(["evaluate", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "result.json: records no model block" in err and "Traceback" not in err
    with pytest.warns(UserWarning, match=message):
        again = _train(tmp_path)
    assert not again.reused and _losses(again) == _losses(first)


def test_a_result_json_without_its_history_is_retrained(tmp_path):
    import json

    first = _train(tmp_path)
    doc = json.loads((tmp_path / "result.json").read_text())
    del doc["history"]
    (tmp_path / "result.json").write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="no valid history"):
        assert _losses(_train(tmp_path)) == _losses(first)


def test_weights_of_another_network_are_named_or_retrained(tmp_path, capsys):
    first = _train(tmp_path)
    other = prepare("ttl", "resnet18", cut="layer2.0", source="scratch").state_dict()
    torch.save(other, tmp_path / "model.pt")
    assert main(["evaluate", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "model.pt: weights of another network" in err and "Traceback" not in err
    with pytest.warns(UserWarning, match=r"model.pt: weights of another network.*training the run again"):
        again = _train(tmp_path)
    assert not again.reused and _losses(again) == _losses(first)


def test_a_checkpoint_missing_a_part_restarts_cleanly(tmp_path):
    first = _train(tmp_path)
    key = __import__("json").loads((tmp_path / "result.json").read_text())["params_hash"]
    for name in ("result.json", "model.pt"):
        (tmp_path / name).unlink()
    torch.save({"params_hash": key, "epoch": 0}, tmp_path / "checkpoint.pt")
    with pytest.warns(UserWarning, match=r"not a usable checkpoint of this run \(missing model, optimizer"):
        again = _train(tmp_path)
    assert again.history[0]["train_loss"] == first.history[0]["train_loss"]


def test_a_run_file_that_cannot_be_read_is_an_error_not_a_retrain(tmp_path, monkeypatch):
    import errno

    _train(tmp_path)
    real = torch.load

    def denied(path, *args, **kwargs):
        if str(path).endswith("model.pt"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", denied)
    before = (tmp_path / "model.pt").read_bytes()
    with pytest.raises(PermissionError, match="model.pt"):
        _train(tmp_path)
    assert (tmp_path / "model.pt").read_bytes() == before
