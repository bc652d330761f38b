"""The one training engine (ttl.train.engine) and the data config a model carries."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from tiny import tiny_dataset
from ttl.errors import DataError
from ttl.models.data_config import DataConfig
from ttl.strategies import prepare
from ttl.train import TrainConfig, fit
from ttl.train.engine import TrainStep, make_scheduler, train_one_epoch, warmup_cosine
from ttl.train.loop import predict
from ttl.train.runs import load_run, run_params

CFG = dict(epochs=1, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0)


@pytest.fixture()
def counted_steps(monkeypatch):
    """How many times the engine's step ran (fit, pretrain and the benchmark all go through it)."""
    calls = {"n": 0}
    original = TrainStep.__call__

    def counting(self, x, y):
        calls["n"] += 1
        return original(self, x, y)

    monkeypatch.setattr(TrainStep, "__call__", counting)
    return calls


def test_fit_pretrain_and_bench_train_all_step_through_the_engine(counted_steps, tmp_path):
    from ttl.bench import bench_train
    from ttl.pretrain.train import pretrain

    train, val = tiny_dataset(64, seed=1), tiny_dataset(32, seed=2)
    fit(prepare("ttl", "resnet18", cut="layer1.1", source="scratch"), train, val, TrainConfig(**CFG))
    assert counted_steps["n"] == 64 // 16  # one epoch, drop_last
    before = counted_steps["n"]
    pretrain("resnet18", n_classes=2, images_per_class=8, size=32, epochs=1, batch_size=8, out_dir=tmp_path / "p",
             device="cpu", progress=False)
    assert counted_steps["n"] - before == 16 // 8
    before = counted_steps["n"]
    out = bench_train("resnet18", "layer1.0", size=32, batch=8, device="cpu", steps=2, warmup=1, repeats=2,
                      dataset_images=32)
    # two rounds of (warm-up + timed) steps for each of the bound and the real path
    assert counted_steps["n"] - before == 2 * 2 * (1 + 2)
    assert out["real_img_s"] > 0 and out["bound_img_s"] > 0


def test_bench_train_steps_the_learning_rate_schedule_as_fit_does(monkeypatch):
    """The benchmark times fit's whole step: its per-batch cosine scheduler steps too."""
    from ttl.bench import bench_train

    stepped = {"n": 0}
    original = torch.optim.lr_scheduler.CosineAnnealingLR.step

    def counting(self, *a, **k):
        stepped["n"] += 1
        return original(self, *a, **k)

    monkeypatch.setattr(torch.optim.lr_scheduler.CosineAnnealingLR, "step", counting)
    bench_train("resnet18", "stem", size=32, batch=8, device="cpu", steps=2, warmup=1, repeats=1, dataset_images=16)
    assert stepped["n"] >= 3  # warm-up + timed steps of each path (plus the one at construction)


def test_warmup_cosine_ramps_then_decays_to_zero_and_follows_a_longer_run():
    f = warmup_cosine(total_steps=20, warmup_steps=4)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0 and f(20) == 0.0 and 0.0 < f(12) < 1.0
    assert f(12) == pytest.approx(0.5 * (1 + math.cos(math.pi * 8 / 16)))
    # a LambdaLR checkpoint keeps the step count only: loaded into a longer schedule it decays slower
    p = nn.Parameter(torch.zeros(1))
    short = make_scheduler(torch.optim.SGD([p], lr=1.0), "warmup-cosine", 20, 4)
    for _ in range(10):
        short.optimizer.step()
        short.step()
    opt = torch.optim.SGD([p], lr=1.0)
    longer = make_scheduler(opt, "warmup-cosine", 40, 4)
    longer.load_state_dict(short.state_dict())
    longer.optimizer.step()
    longer.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(warmup_cosine(40, 4)(11))


def test_train_one_epoch_reports_the_mean_loss_and_accuracy_of_its_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.randn(12, 4), torch.tensor([0, 1] * 6)
    batches = [(x[:8], y[:8]), (x[8:], y[8:])]
    with torch.no_grad():
        expect_acc = float((model(x).argmax(1) == y).float().mean())
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the model does not move, so sums are checkable
    loss_fn = nn.CrossEntropyLoss()
    step = TrainStep(model, loss_fn, opt, torch.device("cpu"))
    stats = train_one_epoch(step, batches, count_correct=True)
    with torch.no_grad():
        expect_loss = (loss_fn(model(x[:8]), y[:8]) * 8 + loss_fn(model(x[8:]), y[8:]) * 4) / 12
    assert stats["n"] == 12 and stats["accuracy"] == pytest.approx(expect_acc)
    assert stats["loss"] == pytest.approx(float(expect_loss), rel=1e-6)


def test_a_trained_model_carries_its_data_config_and_load_run_restores_it(tmp_path):
    """Trained at 48 px on 32-px images: the model's data config says 48, and a run read back is
    fed at 48 without being told (scores equal to those training recorded)."""
    train, val, test = tiny_dataset(64, seed=1), tiny_dataset(32, seed=2), tiny_dataset(32, seed=3)
    model = prepare("ttl", "resnet18", cut="layer1.1", source="scratch")
    assert model.data_config is None and model.pretrained_cfg.channels == 3
    cfg = TrainConfig(**CFG, image_size=48)
    res = fit(model, train, val, cfg, out_dir=tmp_path,
              params=run_params("ttl", "resnet18", "layer1.1", "scratch", 1.0, None, 2, "tiny"))
    dc = res.model.data_config
    assert isinstance(dc, DataConfig) and dc.input_size == 48 and dc.channels == 3 and dc.to_rgb
    assert dc.mean == res.model.pretrained_cfg.mean
    _, trained_scores, _ = predict(res.model, test, cfg)
    loaded, params = load_run(tmp_path)
    assert loaded.data_config == dc and params["input"] == dc.to_dict()
    _, scores, _ = predict(loaded, test)  # no image size passed: the model's own
    assert torch.equal(torch.as_tensor(scores), torch.as_tensor(trained_scores))


def test_a_data_config_refuses_inconsistent_statistics_and_reads_old_records():
    with pytest.raises(DataError, match="same, non-zero length"):
        DataConfig((0.5, 0.5, 0.5), (0.2, 0.2))
    with pytest.raises(DataError, match="std must be > 0"):
        DataConfig((0.5,), (0.0,))
    old = DataConfig.from_dict({"normalisation": "source", "mean": [0.1, 0.2, 0.3], "std": [1, 1, 1], "to_rgb": True})
    assert old.input_size is None and old.channels == 3
    with pytest.raises(DataError, match="lacks or mistypes"):
        DataConfig.from_dict({"std": [1, 1, 1]})


def test_the_run_index_lists_finished_runs_of_grids_and_searches_and_nothing_else(tmp_path):
    from ttl.experiments.grid import StrategySpec, run_strategies
    from ttl.train.runs import index_runs

    data = {"train": tiny_dataset(48, seed=1), "val": tiny_dataset(32, seed=2)}
    df = run_strategies([StrategySpec("ttl", "stem"), StrategySpec("linear_probe", "layer1.0")], "resnet18",
                        "scratch", data, TrainConfig(**CFG), [0, 1], tmp_path)
    (tmp_path / "ttl" / "broken").mkdir()
    (tmp_path / "ttl" / "broken" / "result.json").write_text("{not json")  # not a run: left out
    (tmp_path / "ttl" / "broken" / "model.pt").write_bytes(b"")
    index = index_runs(tmp_path)
    assert sorted(index["run_dir"]) == sorted(df["run_dir"])
    row = index.set_index("run_dir").loc[df["run_dir"][0]]
    assert (row["strategy"], row["cut"], row["seed"], row["lr"]) == ("ttl", "stem", 0, CFG["lr"])
    assert row["val_auroc"] == df["val_auroc"][0] and len(set(index["params_hash"])) == 4
