import json

import numpy as np
import pytest
import torch
from scipy.special import expit

from tiny import tiny_dataset
from ttl.errors import TrainingDivergedError
from ttl.metrics import compute_metrics
from ttl.strategies import prepare
from ttl.train import TrainConfig, evaluate, fit
from ttl.train.loop import predictions_path

CFG = dict(epochs=2, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0)


def _data():
    return tiny_dataset(64, seed=1), tiny_dataset(48, seed=2), tiny_dataset(48, seed=3)


def _model(seed=0):
    return prepare("ttl", "resnet18", cut="layer1.1", source="scratch", seed=seed)


def test_two_epochs_beat_chance_and_write_result(tmp_path):
    train, val, test = _data()
    untrained = evaluate(_model(), test, TrainConfig(n_boot=0))["auroc"]["value"]
    res = fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path, test=test, params={"note": "x"})
    auc = res.metrics["test"]["auroc"]["value"]
    assert auc > 0.8 and auc > untrained
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["metrics"]["test"]["auroc"]["value"] == pytest.approx(auc)
    prov = doc["provenance"]
    assert prov["params"]["note"] == "x" and prov["params"]["train"]["epochs"] == 2
    assert {"git", "packages", "hardware", "wall_time_s"} <= set(prov)
    assert prov["packages"]["torch"].startswith("2.")
    assert prov["hardware"]["cpu_capability"] in ("DEFAULT", "NO AVX", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256")
    assert prov["hardware"]["cpu_count"] >= 1 and "cpu_model" in prov["hardware"]
    assert doc["model"]["params"] == sum(p.numel() for p in res.model.parameters())
    assert not (tmp_path / "checkpoint.pt").exists()
    again = fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path, test=test, params={"note": "x"})
    assert again.reused and again.metrics == res.metrics


def test_same_seed_same_numbers_and_other_seed_differs():
    train, val, _ = _data()
    a = fit(_model(), train, val, TrainConfig(**CFG)).history
    b = fit(_model(), train, val, TrainConfig(**CFG)).history
    c = fit(_model(seed=1), train, val, TrainConfig(**{**CFG, "seed": 1})).history
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    train, val, test = _data()
    full = fit(_model(), train, val, TrainConfig(**CFG), test=test)

    def interrupt(epoch, row):
        if epoch == 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path, test=test, on_epoch_end=interrupt)
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "result.json").exists()
    seen = []
    resumed = fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path, test=test,
                  on_epoch_end=lambda e, r: seen.append(e))
    assert seen == [1]  # only the second epoch ran again
    assert [r["train_loss"] for r in resumed.history] == pytest.approx([r["train_loss"] for r in full.history])
    assert resumed.metrics["test"]["auroc"]["value"] == pytest.approx(full.metrics["test"]["auroc"]["value"])


@pytest.fixture
def threads():
    """Set torch's thread count inside a test; the count is restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_a_run_resumed_under_another_thread_count_says_so_and_records_both(tmp_path, threads):
    train, val, _ = _data()

    def interrupt(epoch, row):
        if epoch == 0:
            raise KeyboardInterrupt

    threads(1)
    with pytest.raises(KeyboardInterrupt):
        fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path, on_epoch_end=interrupt)
    threads(2)
    with pytest.warns(UserWarning, match=r"resumed at epoch 1 with 2 torch threads; epochs 0-0 ran with 1"):
        fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path)
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["torch_threads"] == [{"from_epoch": 0, "threads": 1}, {"from_epoch": 1, "threads": 2}]


def test_an_uninterrupted_run_records_its_thread_count(tmp_path, threads):
    threads(1)
    fit(_model(), *_data()[:2], TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    assert json.loads((tmp_path / "result.json").read_text())["torch_threads"] == [{"from_epoch": 0, "threads": 1}]


def test_checkpoint_of_other_parameters_is_not_resumed(tmp_path):
    train, val, _ = _data()
    with pytest.raises(KeyboardInterrupt):
        fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path,
            on_epoch_end=lambda e, r: (_ for _ in ()).throw(KeyboardInterrupt))
    seen = []
    fit(_model(), train, val, TrainConfig(**{**CFG, "lr": 1e-3}), out_dir=tmp_path,
        on_epoch_end=lambda e, r: seen.append(e))
    assert seen == [0, 1]


def test_early_stopping_stops_when_validation_stalls():
    train, val, _ = _data()
    cfg = TrainConfig(**{**CFG, "epochs": 6, "patience": 1, "lr": 1e-9, "schedule": "constant"})
    res = fit(_model(), train, val, cfg)
    assert len(res.history) < 6


def test_metrics_binary_multiclass_multilabel_with_ci():
    rng = torch.Generator().manual_seed(0)
    y = torch.randint(0, 2, (200,), generator=rng).numpy()
    s = (y + torch.randn(200, generator=rng).numpy() * 0.8)
    m = compute_metrics(y, expit(s), "binary", n_boot=200)
    assert 0.7 < m["auroc"]["value"] < 1.0
    assert m["auroc"]["ci_low"] < m["auroc"]["value"] < m["auroc"]["ci_high"]
    y3 = torch.randint(0, 3, (150,), generator=rng).numpy()
    p3 = torch.softmax(torch.nn.functional.one_hot(torch.as_tensor(y3), 3).float() * 2
                       + torch.randn(150, 3, generator=rng), 1).numpy()
    m3 = compute_metrics(y3, p3, "multiclass", n_boot=0)
    assert m3["auroc"]["value"] > 0.7 and m3["balanced_accuracy"]["value"] > 0.5
    yl = torch.randint(0, 2, (120, 4), generator=rng).numpy()
    pl = torch.sigmoid(torch.as_tensor(yl * 2.0 - 1) + torch.randn(120, 4, generator=rng)).numpy()
    ml = compute_metrics(yl, pl, "multilabel", n_boot=0)
    assert ml["auroc"]["value"] > 0.7
    assert compute_metrics(y, 1 - s, "binary", n_boot=0)["auroc"]["value"] < 0.3


def test_reused_run_is_scored_on_a_test_set_it_was_not_given(tmp_path):
    train, val, test = _data()
    fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    again = fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path, test=test)
    assert again.reused and again.metrics["test"]["n"] == len(test)
    direct = evaluate(again.model, test, TrainConfig(**{**CFG, "epochs": 1}))
    assert again.metrics["test"]["auroc"]["value"] == pytest.approx(direct["auroc"]["value"])
    assert again.metrics["test"]["loss"] == pytest.approx(direct["loss"], rel=1e-5)
    with np.load(predictions_path(tmp_path, test)) as f:  # kept for paired tests without rerunning the model
        assert f["labels"].tolist() == test.labels.tolist() and f["scores"].shape == (len(test),)


def test_reading_a_finished_run_never_rewrites_it(tmp_path):
    train, val, test = _data()
    fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    before = (tmp_path / "result.json").read_bytes()
    again = fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path, test=test)
    assert again.reused and "test" in again.metrics
    assert (tmp_path / "result.json").read_bytes() == before


def test_runtime_and_scoring_options_do_not_change_the_run_key(tmp_path):
    """Changing the progress bar, the bootstrap count, compile or the device string reuses the run."""
    train, val, _ = _data()
    first = fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    for change in ({"progress": True}, {"n_boot": 7}, {"device": "cpu"}, {"channels_last": False}):
        again = fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1, **change}), out_dir=tmp_path)
        assert again.reused, change
        assert again.history == first.history
    again = fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1, "weight_decay": 0.0}), out_dir=tmp_path)
    assert not again.reused  # a parameter that changes the model does retrain


def test_stop_reason_and_epoch_cap_are_recorded(tmp_path):
    train, val, _ = _data()
    capped = fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path / "a")
    assert capped.stop_reason == "epoch_cap" and len(capped.history) == CFG["epochs"]
    doc = json.loads((tmp_path / "a" / "result.json").read_text())
    assert doc["stop_reason"] == "epoch_cap" and doc["epochs_cap"] == CFG["epochs"]
    cfg = TrainConfig(**{**CFG, "epochs": 8, "patience": 1, "lr": 1e-9, "schedule": "constant"})
    stopped = fit(_model(), train, val, cfg, out_dir=tmp_path / "b")
    assert stopped.stop_reason == "patience" and len(stopped.history) < 8
    assert json.loads((tmp_path / "b" / "result.json").read_text())["stop_reason"] == "patience"


def test_a_diverged_run_fails_and_is_never_stored_as_finished(tmp_path):
    train, val, _ = _data()
    model = _model()
    with torch.no_grad():  # poison one weight: the first forward pass makes the loss NaN
        model.head.weight[0, 0] = float("nan")
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        fit(model, train, val, TrainConfig(**CFG), out_dir=tmp_path)
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "model.pt").exists()


def test_a_run_on_other_data_is_not_reused(tmp_path):
    train, val, _ = _data()
    fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    other = tiny_dataset(64, seed=9)
    with pytest.warns(UserWarning, match="made with other parameters; training now replaces it"):
        again = fit(_model(), other, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    assert not again.reused


def test_a_finished_run_without_its_weights_is_trained_again_without_a_warning(tmp_path, recwarn):
    train, val, _ = _data()
    fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    (tmp_path / "model.pt").unlink()
    again = fit(_model(), train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path)
    assert not again.reused and (tmp_path / "model.pt").exists()
    assert not [w for w in recwarn if "other parameters" in str(w.message)]


@pytest.mark.parametrize("strategy, cut", [("ttl", "layer1.0"), ("scratch", "layer1.0"), ("full", None),
                                           ("lwft", "layer1.0"), ("transfusion", "layer2.0"),
                                           ("linear_probe", "layer1.0")])
def test_a_reloaded_run_scores_exactly_like_the_trained_model(strategy, cut, tmp_path):
    """``load_run`` rebuilds every strategy with the preprocessing its training used (a scratch run
    recorded with source fractal was once normalised with fractal statistics on reload)."""
    from ttl.train import predict
    from ttl.train.runs import load_run, run_params

    train, val, test = _data()
    model = prepare(strategy, "resnet18", cut=cut, source="fractal", width=0.5)
    params = run_params(strategy, "resnet18", cut, "fractal", 0.5, None, 2, "tiny")
    res = fit(model, train, val, TrainConfig(**{**CFG, "epochs": 1}), out_dir=tmp_path, test=test, params=params)
    reloaded, _ = load_run(tmp_path)
    _, trained_scores, _ = predict(res.model, test, TrainConfig(**CFG))
    _, reloaded_scores, _ = predict(reloaded, test, TrainConfig(**CFG))
    np.testing.assert_allclose(reloaded_scores, trained_scores, atol=1e-6)


@pytest.mark.parametrize("field, value", [
    ("lr", float("nan")), ("weight_decay", -1), ("weight_decay", float("nan")), ("patience", -1), ("image_size", 0),
    ("image_size", 7), ("image_size", 32.5), ("seed", -1), ("seed", 2**70), ("n_boot", -5), ("epochs", 1.5),
    ("augment", ("rotate",)),
])
def test_a_config_out_of_range_is_refused_when_made(field, value):
    from ttl.errors import ConfigError

    with pytest.raises(ConfigError, match=f"{field}"):
        TrainConfig(**{field: value})


def test_configs_the_profiles_use_are_accepted():
    TrainConfig(epochs=np.int64(3), lr=0.0003, image_size=64, seed=2**31, augment=("hflip", "vflip"), patience=0)


def test_a_run_trained_again_in_its_folder_never_reads_the_old_models_scores(tmp_path):
    train, val, test = _data()
    fit(_model(), train, val, TrainConfig(**CFG), out_dir=tmp_path, test=test)  # seed 0: scores cached
    assert any((tmp_path / "predictions").iterdir())
    alone = fit(_model(seed=1), train, val, TrainConfig(**{**CFG, "seed": 1}), test=test)
    with pytest.warns(UserWarning, match="made with other parameters"):
        replaced = fit(_model(seed=1), train, val, TrainConfig(**{**CFG, "seed": 1}), out_dir=tmp_path, test=test)
    assert replaced.metrics["test"] == alone.metrics["test"]
