"""Shortcut audit (ttl.data.audit): the features measure what they say, a planted shortcut is caught,
and the calibrated phantoms pass."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ttl.data import audit
from ttl.errors import ConfigError

REQUIRED = {"feature_family", "model", "auroc", "ci_low", "ci_high", "margin", "passes"}


def _stripes(n: int, vertical: bool, period: float = 5.0, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(int(vertical))
    yy, xx = np.mgrid[0:size, 0:size]
    coord = xx if vertical else yy
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    return 0.5 + 0.3 * np.cos(2 * np.pi * coord[None] / period + phase)


def test_edge_energy_grows_with_sharpness():
    rng = np.random.default_rng(0)
    sharp = rng.random((4, 32, 32))
    blurred = ndimage.gaussian_filter(sharp, (0, 1.5, 1.5))
    e_sharp, e_blur = audit.edge_features(sharp), audit.edge_features(blurred)
    assert (e_sharp[:, :2] > 5 * e_blur[:, :2]).all()  # mean squared gradient and Laplacian


def test_lbp_histograms_and_gabor_orientation():
    h, v = _stripes(3, False), _stripes(3, True)
    lbp = audit.lbp_features(h)
    assert lbp.shape == (3, 20) and np.allclose(lbp[:, :10].sum(1), 1) and np.allclose(lbp[:, 10:].sum(1), 1)
    gh, gv = audit.gabor_features(h), audit.gabor_features(v)
    # columns: period-major, then theta 0, 45, 90, 135 deg (mean, p99); period 5 px: theta 0 = along x
    mean_5 = slice(8, 16, 2)
    assert gv[:, mean_5][:, 0].min() > 10 * gv[:, mean_5][:, 2].max()  # vertical stripes vary along x
    assert gh[:, mean_5][:, 2].min() > 10 * gh[:, mean_5][:, 0].max()


def test_blob_and_profile_features():
    img = np.full((2, 48, 48), 0.2)
    img[0, 10:16, 10:16] = 0.9  # one square blob
    img[1, 10:14, 10:14] = 0.9
    img[1, 30:34, 30:34] = 0.9  # two smaller blobs
    b = audit.blob_features(img)
    assert b[0, 0] == 1 and b[1, 0] == 2 and b[0, 2] > b[1, 2]  # count, largest area
    raw, srt = audit.profile_features(img, sort=False), audit.profile_features(img, sort=True)
    assert raw.shape == srt.shape == (2, 96) and np.all(np.diff(srt[:, :48], axis=1) >= 0)


def _plant_edge_shortcut(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Sharpen class-1 images (more gradient energy), as version 2's longer spiculated borders did."""
    x = images.astype(np.float32)
    blur = ndimage.gaussian_filter(x, (0, 0, 1.0, 1.0))
    sharp = np.clip(x + 0.8 * (x - blur), 0, 255)
    out = np.where(labels[:, None, None, None] == 1, sharp, x)
    return np.rint(out).astype(np.uint8)


@pytest.fixture(scope="module")
def mid_tables():
    # 150 per class: an AUROC's standard error is about 0.033, so chance stays well below the margin
    clean = audit.shortcut_audit("mid", n_per_class=150, size=48, seed=1, n_boot=100)
    planted = audit.shortcut_audit("mid", n_per_class=60, size=48, seed=1, n_boot=100,
                                   transform=_plant_edge_shortcut)
    return clean, planted


def test_audit_catches_a_planted_edge_energy_shortcut(mid_tables):
    _, planted = mid_tables
    edge = planted[planted["feature_family"] == "edge-energy"]
    assert edge["auroc"].max() > 0.8 and not edge["passes"].all()
    assert audit.verdict(planted) is False
    assert "FAIL" in audit.format_table(planted)


def test_calibrated_mid_passes_the_audit(mid_tables):
    clean, _ = mid_tables
    assert REQUIRED <= set(clean.columns)
    assert set(clean["feature_family"]) == set(audit.FAMILIES) and set(clean["model"]) == set(audit.MODELS)
    judged = clean[clean["judged"]]
    assert set(judged["feature_family"]) == set(audit.JUDGED["mid"])
    assert (judged["auroc"] <= audit.MARGIN).all(), judged[["feature_family", "model", "auroc"]]
    assert (clean["ci_low"] <= clean["auroc"]).all() and (clean["auroc"] <= clean["ci_high"]).all()
    assert clean.loc[~clean["judged"], "passes"].isna().all()
    assert audit.verdict(clean) is True


def test_low_level_is_solved_by_its_own_features_only():
    """Gabor energy (the label's own level) finds the grain; global intensity does not."""
    table = audit.shortcut_audit("low", n_per_class=150, size=48, seed=2, n_boot=50)
    best = table.groupby("feature_family")["auroc"].max()
    assert best["texture-gabor"] > 0.7 and best["intensity"] <= audit.MARGIN
    assert audit.verdict(table) is True


def test_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="level"):
        audit.audit_features({}, np.zeros(2), {}, np.zeros(2), "extreme")
    with pytest.raises(ConfigError, match="n_per_class"):
        audit.shortcut_audit("mid", n_per_class=3)
