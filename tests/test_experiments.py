import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from tiny import tiny_dataset  # noqa: E402
from ttl.experiments import efficiency_table, feature_probe, run_strategies, summarise  # noqa: E402
from ttl.experiments.plots import plot_accuracy_vs_cost, plot_cut_curves  # noqa: E402
from ttl.experiments.probe import cut_features  # noqa: E402
from ttl.models import build  # noqa: E402
from ttl.strategies import StrategySpec  # noqa: E402
from ttl.train import TrainConfig  # noqa: E402


def test_cut_features_equal_truncated_models_pooled_output():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    for arch in ("resnet18", "densenet121"):
        full = build(arch, None, source="scratch", seed=0).eval()
        feats = cut_features(full, arch, x)
        for cut in ("stem", list(feats)[3], list(feats)[-1]):
            truncated = build(arch, cut, source="scratch", seed=0).eval()
            with torch.no_grad():
                ref = truncated.pool(truncated.features(x)).numpy()
            np.testing.assert_allclose(feats[cut], ref, rtol=1e-4, atol=1e-5)


def test_feature_probe_separates_an_easy_task_and_reports_every_cut():
    train, test = tiny_dataset(64, seed=1), tiny_dataset(48, seed=3)
    df = feature_probe("resnet18", "scratch", train, test, n_boot=20)
    assert list(df["cut"]) == ["stem", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1",
                               "layer4.0", "layer4.1"]
    assert df["auroc"].max() > 0.8  # a bright square is visible even to random features
    plot_cut_curves(df, title="probe")


def test_strategy_grid_is_resumable_and_summarised(tmp_path):
    data = {"train": tiny_dataset(48, seed=1), "val": tiny_dataset(32, seed=2), "test": tiny_dataset(32, seed=3)}
    specs = [StrategySpec("ttl", "layer1.1"), StrategySpec("linear_probe", "layer1.1")]
    cfg = TrainConfig(epochs=1, batch_size=16, n_boot=20, progress=False)
    first = run_strategies(specs, "resnet18", "scratch", data, cfg, [0, 1], tmp_path)
    again = run_strategies(specs, "resnet18", "scratch", data, cfg, [0, 1], tmp_path)
    assert len(first) == 4 and not first["reused"].any() and again["reused"].all()
    assert np.allclose(first["test_auroc"], again["test_auroc"])
    lp = first[first.strategy == "linear_probe"]
    assert (lp["trainable_params"] == 2 * 64 + 2).all()
    summary = summarise(first)
    assert list(summary["n_seeds"]) == [2, 2]
    assert (summary["test_auroc_ci_low"] <= summary["test_auroc_mean"]).all()
    cost = efficiency_table(specs, "resnet18", size=32, latency=False)
    plot_accuracy_vs_cost(summary.merge(cost[["label", "flops"]], on="label"), cost="flops")


def test_grid_rows_record_lr_stop_reason_and_scratch_at_a_cut(tmp_path):
    data = {"train": tiny_dataset(48, seed=1), "val": tiny_dataset(32, seed=2), "test": tiny_dataset(32, seed=3)}
    specs = [StrategySpec("ttl", "layer1.1"), StrategySpec("scratch", "layer1.1")]
    cfg = TrainConfig(epochs=1, batch_size=16, n_boot=0, progress=False)
    df = run_strategies(specs, "resnet18", "scratch", data, cfg, [0], tmp_path, lrs={"ttl(layer1.1)": 3e-3})
    assert list(df["label"]) == ["ttl(layer1.1)", "scratch(layer1.1)"]  # the control has its own label
    assert list(df["lr"]) == [3e-3, 1e-3] and set(df["stop_reason"]) == {"epoch_cap"}
    assert list(df["epochs_cap"]) == [1, 1]
    assert df["run_dir"].str.contains("lr0.003-s0").iloc[0]
    assert df["params"].iloc[0] == df["params"].iloc[1]  # same truncated network, other initialisation


def test_cut_and_lr_are_chosen_on_validation_and_their_trials_reused(tmp_path):
    from ttl.experiments import choose_cut, tune_lr

    data = {"train": tiny_dataset(48, seed=1), "val": tiny_dataset(32, seed=2), "test": tiny_dataset(32, seed=3)}
    cfg = TrainConfig(epochs=1, batch_size=16, n_boot=0, progress=False)
    cut, trials = choose_cut("ttl", ["stem", "layer1.1"], "resnet18", "scratch", data, cfg, [0, 1], tmp_path)
    means = trials.groupby(["cut_index", "cut"])["val_auroc"].mean().reset_index()
    best = means[means["val_auroc"] == means["val_auroc"].max()].sort_values("cut_index")  # ties: shallower
    assert cut == best["cut"].iloc[0] and len(trials) == 4
    chosen, lr_trials = tune_lr([StrategySpec("ttl", cut)], [1e-3, 1e-2], "resnet18", "scratch", data, cfg, [0],
                                tmp_path)
    by_lr = lr_trials.sort_values("lr").set_index("lr")["val_auroc"]
    assert chosen == {f"ttl({cut})": float(by_lr.idxmax())}  # idxmax: first maximum, i.e. the smaller rate
    assert lr_trials[lr_trials["lr"] == 1e-3]["reused"].all()  # the cut trial at the default lr is read back
