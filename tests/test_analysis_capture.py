"""Activation capture with hooks, layer-wise and cross-layer similarity, and the plots."""

from __future__ import annotations

import copy
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ttl.analysis import (activations, cross_layer_similarity, cross_layer_table,  # noqa: E402
                          flatten_pair, layer_similarity, linear_cka, permutation_null,
                          random_baseline, svcca)
from ttl.analysis.plots import (plot_similarity_curve, plot_similarity_matrix,  # noqa: E402
                                plot_svcca_coefficients)
from ttl.errors import ConfigError  # noqa: E402


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6)
        self.relu = nn.ReLU(inplace=True)  # shared, like torchvision's ResNet blocks
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.conv2(x))
        return self.head(self.drop(x.mean(dim=(2, 3))))


def _net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():  # non-trivial batch-norm statistics
        net.bn1.running_mean.uniform_(-0.5, 0.5)
        net.bn1.running_var.uniform_(0.5, 2.0)
    return net


def _images(n: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def test_activations_match_a_manual_forward_and_restore_modes():
    net, x = _net(), _images(7)
    net.train()
    net.bn1.eval()  # mixed modes must come back as they were
    acts = activations(net, x, ["bn1", "conv2", "head"], batch_size=3)
    assert net.training and not net.bn1.training and net.drop.training
    with torch.no_grad():
        net.eval()
        bn = net.bn1(net.conv1(x))
        conv2 = net.conv2(torch.relu(bn))
        head = net.head(torch.relu(conv2).mean(dim=(2, 3)))
    torch.testing.assert_close(acts["bn1"], bn)
    assert (acts["bn1"] < 0).any()  # kept before the in-place ReLU changed it
    torch.testing.assert_close(acts["conv2"], conv2)
    torch.testing.assert_close(acts["head"], head)  # eval mode: dropout off
    assert not acts["head"].requires_grad and acts["conv2"].shape == (7, 8, 4, 4)
    pooled = activations(net, x.double().numpy(), ["conv2"], batch_size=4, reduce="pool")
    torch.testing.assert_close(pooled["conv2"], conv2.mean(dim=(2, 3)))


def test_activations_errors():
    net, x = _net(), _images(4)
    with pytest.raises(ConfigError, match="did you mean 'conv1'"):
        activations(net, x, ["conv_1"])
    with pytest.raises(ConfigError, match="ran 2 times"):
        activations(net, x, ["relu"])
    with pytest.raises(ConfigError, match="floating point"):
        activations(net, (x * 50).clamp(0, 255).to(torch.uint8), ["conv1"])
    assert net.training  # restored after the failure too
    assert not net.conv1._forward_hooks  # hooks removed


def test_layer_similarity_same_and_changed_models():
    net, x = _net(0), _images(48)
    twin = copy.deepcopy(net)
    changed = copy.deepcopy(net)
    torch.manual_seed(5)
    changed.conv2.reset_parameters()  # a re-initialised top layer, as after heavy finetuning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = layer_similarity(net, twin, x, ["conv1", "conv2"], null_draws=4)
        diff = layer_similarity(net, changed, x, ["conv1", "conv2"], null_draws=4)
        cka = layer_similarity(net, changed, x, ["conv1", "conv2"], measure="cka",
                               null_draws=4)
    assert list(same["layer"]) == ["conv1", "conv2"]
    np.testing.assert_allclose(same["value"], 1.0, atol=1e-6)
    assert diff["value"].iloc[0] == pytest.approx(1.0, abs=1e-6)  # untouched bottom layer
    assert diff["value"].iloc[1] < 0.99
    for df in (same, diff, cka):
        assert (df["null_low"] <= df["null_mean"]).all()
        assert (df["null_mean"] <= df["null_high"]).all()
        assert df["above_null"].all()  # identical or related layers are above chance
    assert cka["value"].iloc[1] < cka["value"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    assert same.attrs["coefficients"]["conv2"][0] == pytest.approx(1.0, abs=1e-6)
    assert same.attrs["nulls"]["conv1"]["n_samples"] == 48


def test_layer_similarity_null_is_the_permutation_null_of_the_real_features():
    net, other, x = _net(0), _net(1), _images(40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = layer_similarity(net, other, x, ["conv1", "conv2"], null_draws=5, seed=2)
    acts_a = activations(net, x, ["conv1", "conv2"], reduce="pool")
    acts_b = activations(other, x, ["conv1", "conv2"], reduce="pool")
    for i, layer in enumerate(["conv1", "conv2"]):
        a, b = acts_a[layer].double().numpy(), acts_b[layer].double().numpy()
        res = svcca(a, b)
        null = permutation_null(a, b, "svcca", draws=5, seed=2)
        row = df.iloc[i]
        assert (row.kept_a, row.kept_b) == (res.kept_a, res.kept_b)  # kept dimensions reported
        assert row.svcca_mean == pytest.approx(res.mean, abs=1e-6) == row.value
        assert row.svcca_thresholded == pytest.approx(res.mean_thresholded, abs=1e-6)
        assert row.null_mean == pytest.approx(null.mean, abs=1e-6)
        assert row.null_high == pytest.approx(null.high, abs=1e-6)
        assert row.above_null == (row.value > row.null_high)
    assert df.attrs["nulls"]["conv2"]["kept_a"] == df["kept_a"].iloc[1]
    google = layer_similarity(net, other, x, ["conv2"], null_draws=3, statistic="thresholded")
    assert google["value"].iloc[0] == pytest.approx(df["svcca_thresholded"].iloc[1], abs=1e-9)


def test_cross_layer_similarity_has_a_chance_level_per_cell():
    net, x = _net(3), _images(40)
    layers = ["conv1", "conv2", "head"]
    mat = cross_layer_similarity(net, x, layers, measure="cka", null_draws=6, seed=1)
    acts = activations(net, x, layers, reduce="pool")
    null = permutation_null(acts["conv1"].double(), acts["head"].double(), "cka", draws=6, seed=1)
    assert np.asarray(mat.attrs["null_mean"])[0, 2] == pytest.approx(null.mean, abs=1e-9)
    assert np.asarray(mat.attrs["above_null"])[0, 2] == null.above
    assert np.asarray(mat.attrs["above_null"]).diagonal().all()
    table = cross_layer_table(mat)
    assert len(table) == 3 and list(table.layer_a) == ["conv1", "conv1", "conv2"]
    assert {"null_mean", "null_high", "p_value", "above_null", "kept_a", "dim_b"} <= set(table)
    svm = cross_layer_similarity(net, x, layers[:2], measure="svcca", null_draws=3)
    assert cross_layer_table(svm).kept_a.iloc[0] == svcca(acts["conv1"], acts["conv2"]).kept_a


def test_positions_mode_equals_flattening_full_maps():
    net, x = _net(1), _images(10)
    other = _net(2)
    df = layer_similarity(net, other, x, [("conv1", "conv2")], mode="positions",
                          max_samples=120, null_draws=0, batch_size=4, seed=7)
    a = activations(net, x, ["conv1"])["conv1"]
    b = activations(other, x, ["conv2"])["conv2"]
    fa, fb = flatten_pair(a, b, "positions", max_samples=120, seed=7)
    assert df["n_samples"].iloc[0] == 120 and df["layer"].iloc[0] == "conv1 / conv2"
    assert df["value"].iloc[0] == pytest.approx(svcca(fa, fb).mean, abs=1e-5)
    assert np.isnan(df["null_mean"].iloc[0])


def test_cross_layer_similarity_matrix():
    net, x = _net(3), _images(30)
    layers = ["conv1", "bn1", "conv2", "head"]
    mat = cross_layer_similarity(net, x, layers, measure="cka")
    assert list(mat.index) == layers and list(mat.columns) == layers
    np.testing.assert_allclose(mat.to_numpy(), mat.to_numpy().T)
    np.testing.assert_allclose(np.diag(mat), 1.0, atol=1e-9)
    acts = activations(net, x, layers, reduce="pool")
    assert mat.loc["conv1", "head"] == pytest.approx(
        linear_cka(acts["conv1"].double(), acts["head"].double()), abs=1e-6)
    # conv1 -> bn1 is a per-channel affine map in eval mode: pooled CCA sees it as identical
    svm = cross_layer_similarity(net, x, layers[:3], measure="svcca", keep=None)
    assert svm.loc["conv1", "bn1"] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ConfigError, match="pool"):
        cross_layer_similarity(net, x, layers, mode="positions")


def test_plots_draw_values_and_band():
    rng = np.random.default_rng(0)
    df = layer_similarity(_net(0), _net(1), _images(40), ["conv1", "conv2"], null_draws=3)
    ax = plot_similarity_curve(df)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1", "conv2"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), df["value"])
    assert len(ax.collections) >= 1  # the shaded null band (and hollow points not above it)
    np.testing.assert_allclose(ax.lines[1].get_ydata(), df["null_mean"])
    ax2 = plot_svcca_coefficients(df.attrs["coefficients"], random_baseline(40, 6, 6, draws=3))
    assert len(ax2.lines) == 3 and len(ax2.collections) == 1
    mat = rng.uniform(size=(3, 3))
    ax3 = plot_similarity_matrix(mat, ["a", "b", "c"])
    assert ax3.images[0].get_array().shape == (3, 3)
    with pytest.raises(ConfigError, match="square"):
        plot_similarity_matrix(rng.uniform(size=(2, 3)))
    import matplotlib.pyplot as plt

    plt.close("all")


def test_heat_map_hatches_cells_not_above_chance_and_stays_legible_when_wide():
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ttl.analysis.plots import COLUMN_INCHES, MIN_FONT

    net, x = _net(3), _images(40)
    mat = cross_layer_similarity(net, x, ["conv1", "conv2", "head"], measure="cka", null_draws=6)
    below = ~np.asarray(mat.attrs["above_null"])
    fig, ax = plt.subplots(figsize=(2 * COLUMN_INCHES, 6))  # shrunk by 2 in the book's column
    plot_similarity_matrix(mat, ax=ax)
    hatched = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch()]
    assert len(hatched) == int(below.sum())
    assert len(fig.axes) == 2  # the colour bar
    for label in ax.get_xticklabels() + ax.get_yticklabels() + fig.axes[1].get_yticklabels():
        assert label.get_fontsize() / 2 >= MIN_FONT  # >= 9 pt as rendered at the column width
    # an explicit mask wins
    ax2 = plot_similarity_matrix(mat.to_numpy(), ["a", "b", "c"], mask=np.eye(3, dtype=bool))
    assert len([p for p in ax2.patches if p.get_hatch()]) == 3
    with pytest.raises(ConfigError, match="mask"):
        plot_similarity_matrix(mat.to_numpy(), mask=np.eye(2, dtype=bool))
    plt.close("all")


def test_a_registered_measure_reaches_layer_similarity_and_its_null(monkeypatch):
    """A measure added to the registry (here: the mean absolute correlation of matched feature
    pairs) is taken by layer_similarity, cross_layer_similarity and permutation_null, its null
    drawn with the same permutations as the shipped measures'."""
    from ttl.analysis import measures
    from ttl.analysis.null import permutation_null

    def compare(a, b, **_):
        x, y = np.asarray(a, float), np.asarray(b, float)
        k = min(x.shape[1], y.shape[1])
        r = [abs(np.corrcoef(x[:, i], y[:, i])[0, 1]) for i in range(k)]
        return dict(value=float(np.mean(r)), kept_a=k, kept_b=k)

    class Prepared:
        def __init__(self, a, b, **_):
            self.a, self.b = np.asarray(a, float), np.asarray(b, float)
            self.kept_a = self.kept_b = min(self.a.shape[1], self.b.shape[1])

        def stat(self, perm=None):
            return compare(self.a if perm is None else self.a[perm], self.b)["value"]

    monkeypatch.setitem(measures.REGISTRY, "paired_corr",
                        measures.SimilarityMeasure("paired_corr", "mean |r| of matched features", compare, Prepared))
    net, x = _net(0), _images(40)
    twin = copy.deepcopy(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = layer_similarity(net, twin, x, ["conv1"], measure="paired_corr", null_draws=5)
        mat = cross_layer_similarity(net, x, ["conv1", "conv2"], measure="paired_corr", null_draws=3)
    assert same["value"].iloc[0] == pytest.approx(1.0) and same["measure"].iloc[0] == "paired_corr"
    assert mat.attrs["statistic"] == "paired_corr"
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((60, 4)), rng.standard_normal((60, 4))
    null = permutation_null(a, a + 0.1 * b, "paired_corr", draws=8, seed=3)
    assert null.value > 0.9 and null.high < 0.5 and null.p_value == pytest.approx(1 / 9)
    assert null.value == compare(a, a + 0.1 * b)["value"]  # the registered measure, not a shipped one
    from ttl.seeding import derive_seed

    perm = np.random.default_rng(derive_seed(3, "permutation_null", 0)).permutation(60)
    assert null.values[0] == compare(a[perm], a + 0.1 * b)["value"]
    with pytest.raises(ConfigError, match="unknown similarity measure 'nope'; known: svcca, cka, paired_corr"):
        permutation_null(a, b, "nope")
