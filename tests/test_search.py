import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tiny import tiny_dataset
from ttl.errors import ConfigError
from ttl.models import cut_points, feature_info
from ttl.search import compare, exhaustive, hierarchical, neighbourhood_cuts, plot_search, read_search
from ttl.train import TrainConfig

CFG = TrainConfig(epochs=1, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0, device="cpu")
BOUNDARIES = ["layer1.1", "layer2.1", "layer3.1", "layer4.1"]


@pytest.fixture(scope="module")
def data():
    return tiny_dataset(64, seed=1), tiny_dataset(48, seed=2), tiny_dataset(48, seed=3)


FIT_CALLS: list[tuple[object, int]] = []  # (out_dir, training images) of every fit the first search made


@pytest.fixture(scope="module")
def searched(data, tmp_path_factory):
    """A hierarchical search of resnet18 cuts on the tiny set, chosen by validation loss, in a
    process that has not warmed up yet (the calls to fit are recorded)."""
    import ttl.search

    train, val, test = data
    out = tmp_path_factory.mktemp("search")
    ttl.search._WARMED.clear()
    real_fit = ttl.search.fit

    def recording_fit(model, train_set, *args, **kwargs):
        FIT_CALLS.append((kwargs.get("out_dir"), len(train_set)))
        return real_fit(model, train_set, *args, **kwargs)

    import ttl.train

    # the warm-up calls fit from ttl.search, the trials through the run layer (ttl.train.runs.run_job)
    ttl.search.fit = ttl.train.fit = recording_fit
    try:
        res = hierarchical(train, val, "resnet18", "scratch", CFG, out, test=test, seeds=(0,), metric="loss")
    finally:
        ttl.search.fit = ttl.train.fit = real_fit
    return out, res


def _mean_val_per_cut(res):
    return res.df.groupby("cut")[f"val_{res.metric}"].mean()


def test_stage_one_at_boundaries_then_the_best_stage(searched):
    out, res = searched
    df = res.df
    assert res.stage1 == BOUNDARIES
    stage1 = df[df.phase == "stage1"].set_index("cut")["val_loss"]
    assert sorted(stage1.index) == BOUNDARIES and res.best_boundary == stage1.idxmin()
    stage = {c.name: c.stage for c in feature_info("resnet18")}
    assert res.stage2 == [c for c in cut_points("resnet18") if stage[c] == stage[res.best_boundary]]
    assert set(df.cut) == set(BOUNDARIES) | set(res.stage2) and len(df) == res.cost["trainings"]
    means = _mean_val_per_cut(res)
    assert res.chosen_cut == means.idxmin() and res.chosen_val == pytest.approx(means.min())
    # test metrics: for the chosen cut only, never per trial
    assert df["test_loss"].isna().all()
    assert res.chosen_test["cut"] == res.chosen_cut and set(res.chosen_test["per_seed"]) == {"0"}
    assert res.cost["train_seconds"] == pytest.approx(df.train_seconds.sum()) and res.cost["device"] == "cpu"
    assert all((Path(t.run_dir) / "result.json").exists() for t in res.trials)
    lr = f"lr{CFG.lr:g}-s0"  # TTL at the last cut is full TL: filed beside, as the grids file it
    assert {Path(t.run_dir).relative_to(out.parent).as_posix() for t in res.trials} == \
        {f"full/full-{lr}" if c == "layer4.1" else f"{out.name}/{c}-{lr}" for c in df.cut}
    doc = json.loads((out / "search.json").read_text())
    assert doc["chosen_cut"] == res.chosen_cut and doc["provenance"]["params"]["kind"] == "hierarchical"
    back = read_search(out / "search.json")
    assert back.chosen_cut == res.chosen_cut and len(back.trials) == len(res.trials)


def test_cost_reports_training_and_wall_seconds_without_the_warm_up(searched):
    out, res = searched
    # an explicit, untimed warm-up (no folder, two batches) came before the first timed trial
    assert FIT_CALLS[0] == (None, 2 * CFG.batch_size)
    assert all(o is not None for o, _ in FIT_CALLS[1:]) and len(FIT_CALLS) == 1 + res.cost["trainings"]
    cost = res.cost
    assert cost["warmup_seconds"] > 0 and "warm_up" in cost
    walls = [t.wall_seconds for t in res.trials]
    assert cost["wall_seconds"] == pytest.approx(sum(walls))
    for t in res.trials:  # a trial's wall time holds its training time, and is kept in its folder
        assert t.wall_seconds > t.train_seconds > 0
        assert json.loads((Path(t.run_dir) / "trial_cost.json").read_text())["wall_seconds"] == t.wall_seconds
    doc = json.loads((out / "search.json").read_text())
    assert doc["cost"]["wall_seconds"] == pytest.approx(cost["wall_seconds"])
    assert read_search(out / "search.json").trials[0].wall_seconds == walls[0]


def test_rerun_reuses_every_trial(searched, data):
    out, first = searched
    train, val, test = data
    again = hierarchical(train, val, "resnet18", "scratch", CFG, out, test=test, seeds=(0,), metric="loss")
    assert again.cost["trained_now"] == 0 and all(t.reused for t in again.trials)
    assert again.cost["reused"] == first.cost["trainings"] == again.cost["trainings"]
    assert again.chosen_cut == first.chosen_cut and again.chosen_val == first.chosen_val
    assert again.cost["train_seconds"] == pytest.approx(first.cost["train_seconds"])
    assert again.cost["wall_seconds"] == pytest.approx(first.cost["wall_seconds"])  # as recorded
    assert again.cost["warmup_seconds"] == 0  # nothing trained, nothing warmed
    assert first.cost["trained_now"] == first.cost["trainings"]


def test_test_set_never_decides(searched, data):
    out, first = searched
    train, val, test = data
    flipped = replace(test, labels=1 - test.labels)
    res = hierarchical(train, val, "resnet18", "scratch", CFG, out, test=flipped, seeds=(0,), metric="loss",
                       test_all=True)
    assert res.chosen_cut == first.chosen_cut and res.cost["trained_now"] == 0
    df = res.df.set_index("cut")
    assert df["test_loss"].notna().all()
    assert (df["test_loss"] > df["val_loss"]).all()  # the flipped labels were really evaluated
    # the chosen cut's test value read back from its folder equals the one of the trial in memory
    assert res.chosen_test["mean"] == pytest.approx(df.loc[res.chosen_cut, "test_loss"], rel=1e-5)


def test_exhaustive_shares_trials_and_compares(searched, data):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out, hier = searched
    train, val, test = data
    exh = exhaustive(train, val, "resnet18", "scratch", CFG, out, test=test, seeds=(0,), metric="loss")
    assert [t.cut for t in exh.trials] == cut_points("resnet18")
    assert exh.cost["trained_now"] == len(cut_points("resnet18")) - hier.cost["trainings"]
    means = _mean_val_per_cut(exh)
    assert exh.chosen_cut == means.idxmin()
    assert (out / "exhaustive.json").exists() and (out / "search.json").exists()
    c = compare(hier, exh)
    assert c["found_best"] == (hier.chosen_cut == exh.chosen_cut)
    assert c["val_gap"] == pytest.approx(means[hier.chosen_cut] - means.min()) and c["val_gap"] >= 0
    assert c["rank_in_sweep"] == int((means < means[hier.chosen_cut]).sum()) + 1
    assert c["trainings_ratio"] == pytest.approx(hier.cost["trainings"] / 9)
    assert 0 < c["seconds_ratio"] < 1
    assert c["search_seconds"] == pytest.approx(hier.cost["train_seconds"])  # training seconds
    assert c["search_wall_seconds"] == pytest.approx(hier.cost["wall_seconds"])
    assert c["wall_ratio"] == pytest.approx(hier.cost["wall_seconds"] / exh.cost["wall_seconds"])
    assert exh.cost["warmup_seconds"] == 0  # the process was warm already
    ax = plot_search(hier, exh)
    assert [t.get_text() for t in ax.get_xticklabels()] == cut_points("resnet18")
    plt.close(ax.figure)


def test_choice_uses_the_mean_over_seeds(data, tmp_path):
    train, val, test = data
    res = exhaustive(train, val, "resnet18", "scratch", CFG, tmp_path, test=test, seeds=(0, 1), metric="loss",
                     cuts=["stem", "layer1.0"])
    df = res.df
    assert len(df) == 4 and sorted(set(df.seed)) == [0, 1]
    assert not torch.isclose(torch.tensor(df.val_loss[df.seed == 0].to_numpy()),
                             torch.tensor(df.val_loss[df.seed == 1].to_numpy())).all()  # seeds differ
    means = _mean_val_per_cut(res)
    assert res.chosen_cut == means.idxmin() and res.chosen_val == pytest.approx(means.min())
    assert set(res.chosen_test["per_seed"]) == {"0", "1"}
    assert res.chosen_test["mean"] == pytest.approx(sum(res.chosen_test["per_seed"].values()) / 2)


def test_neighbourhoods():
    assert neighbourhood_cuts("resnet50", "layer3.5") == [f"layer3.{i}" for i in range(6)]
    assert neighbourhood_cuts("resnet50", "layer3.5", "adjacent") == [f"layer3.{i}" for i in range(6)] + [
        "layer4.0", "layer4.1"]
    assert neighbourhood_cuts("resnet50", "layer1.2", "adjacent") == ["stem", "layer1.0", "layer1.1", "layer1.2",
                                                                      "layer2.0", "layer2.1", "layer2.2"]
    assert neighbourhood_cuts("resnet50", "layer2.3", 1) == ["layer2.2", "layer2.3", "layer3.0"]
    assert neighbourhood_cuts("densenet121", "transition2") == ["denseblock2", "transition2"]
    with pytest.raises(ConfigError, match="neighbourhood"):
        neighbourhood_cuts("resnet18", "layer1.1", "everything")


@pytest.mark.parametrize("kwargs, message", [
    ({"strategy": "full"}, "no cut"), ({"metric": "accuracy"}, "metric"), ({"seeds": ()}, "seeds"),
    ({"neighbourhood": "wide"}, "neighbourhood")])
def test_bad_arguments(kwargs, message, data, tmp_path):
    train, val, _ = data
    with pytest.raises(ConfigError, match=message):
        hierarchical(train, val, "resnet18", "scratch", CFG, tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing trained


def test_cli_search_json(tmp_path, capsys):
    data = pytest.importorskip("ttl.data")
    if not hasattr(data, "load"):
        pytest.skip("ttl.data.load is not available")
    from ttl.cli import main

    out = tmp_path / "runs"
    argv = ["search", "--arch", "resnet18", "--dataset", "phantom-low", "--n-per-class", "6", "--data-size", "32",
            "--source", "scratch", "--epochs", "1", "--batch", "8", "--seeds", "0", "--metric", "loss",
            "--neighbourhood", "0", "--n-boot", "0", "--device", "cpu", "--out", str(out), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)["search"]
    assert doc["chosen_cut"] in BOUNDARIES and doc["cost"]["trainings"] == 4 and doc["test_loss"] is not None
    assert (out / "search.json").exists()
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["search"]["cost"]["trained_now"] == 0
    with pytest.raises(SystemExit):  # argparse rejects a strategy without a cut
        main([*argv, "--strategy", "full"])


def test_a_search_reads_back_the_runs_a_strategy_grid_trained(data, tmp_path):
    """Grids and searches file the same training in the same folder (RunSpec), so a search after
    a chapter's grid trains only what is missing (here: nothing at the boundaries it shares)."""
    from ttl.experiments import run_strategies
    from ttl.strategies import StrategySpec

    train, val, test = data
    specs = [StrategySpec("ttl", c) for c in BOUNDARIES[:-1]] + [StrategySpec("full")]
    grid = run_strategies(specs, "resnet18", "scratch", {"train": train, "val": val, "test": test}, CFG, [0],
                          tmp_path)
    res = hierarchical(train, val, "resnet18", "scratch", CFG, tmp_path / "ttl", seeds=(0,), metric="loss")
    reused = {t.cut: t.reused for t in res.trials}
    assert all(reused[c] for c in BOUNDARIES), reused
    assert {str(Path(t.run_dir)) for t in res.trials if t.cut in BOUNDARIES} == set(grid["run_dir"])
