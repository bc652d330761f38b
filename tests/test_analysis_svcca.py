"""SVCCA against independent computations (PCA by eigendecomposition, CCA by whitening and by
principal angles), its invariances, and the conv flattening helpers."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sla
import torch

from ttl.analysis import FewSamplesWarning, flatten_conv, flatten_pair, svcca
from ttl.errors import ConfigError, DataError


def _data(n=300, fa=12, fb=9, seed=0):
    """a with decaying variances (so 99% keeps fewer than all), b partly driven by a."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, fa)) * np.geomspace(3.0, 0.01, fa)
    mix = rng.standard_normal((fa, fb))
    b = a @ mix + 0.5 * rng.standard_normal((n, fb)) * np.geomspace(2.0, 0.02, fb)
    return a, b


def _pca_project(x, keep):
    """Centre, eigendecompose the covariance, keep the leading components (independent route)."""
    xc = x - x.mean(0)
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    order = np.argsort(evals)[::-1]
    evals, evecs = evals[order], evecs[:, order]
    if isinstance(keep, int):
        k = keep
    else:
        k = next(i + 1 for i in range(evals.size) if evals[: i + 1].sum() / evals.sum() >= keep)
    return xc @ evecs[:, :k]


def _cca_whitening(x, y):
    """Canonical correlations: SVD of Cxx^-1/2 Cxy Cyy^-1/2 (plain scipy)."""
    n = x.shape[0]
    xc, yc = x - x.mean(0), y - y.mean(0)
    cxx, cyy, cxy = xc.T @ xc / (n - 1), yc.T @ yc / (n - 1), xc.T @ yc / (n - 1)
    wx = np.real(sla.inv(sla.sqrtm(cxx)))
    wy = np.real(sla.inv(sla.sqrtm(cyy)))
    return np.linalg.svd(wx @ cxy @ wy, compute_uv=False)


def _cca_angles(x, y):
    """Canonical correlations as cosines of the principal angles between the centred spans."""
    return np.sort(np.cos(sla.subspace_angles(x - x.mean(0), y - y.mean(0))))[::-1]


@pytest.mark.parametrize("keep", [0.99, 0.9, 4])
def test_matches_independent_routes(keep):
    a, b = _data()
    pa, pb = _pca_project(a, keep), _pca_project(b, keep)
    res = svcca(a, b, keep=keep)
    assert (res.kept_a, res.kept_b) == (pa.shape[1], pb.shape[1])
    assert 1 < res.kept_a < a.shape[1]  # the SVD step really truncated
    expected = _cca_whitening(pa, pb)
    np.testing.assert_allclose(res.coefficients, expected, atol=1e-6)
    np.testing.assert_allclose(res.coefficients, _cca_angles(pa, pb), atol=1e-6)
    assert res.mean == pytest.approx(expected.mean(), abs=1e-6)
    assert np.all(np.diff(res.coefficients) <= 1e-12)  # sorted descending


def test_keep_none_is_plain_cca():
    a, b = _data(fa=6, fb=5, seed=3)
    res = svcca(a, b, keep=None, epsilon=0)
    np.testing.assert_allclose(res.coefficients, _cca_angles(a, b), atol=1e-6)
    assert res.coefficients.size == 5


def test_identical_inputs_give_ones():
    a, _ = _data(seed=1)
    np.testing.assert_allclose(svcca(a, a).coefficients, 1.0, atol=1e-8)
    np.testing.assert_allclose(svcca(a, a, keep=None, epsilon=0).coefficients, 1.0, atol=1e-8)


def test_invariance_to_invertible_transforms_within_kept_subspace():
    rng = np.random.default_rng(5)
    # exactly rank-5 activations in 12 features: any invertible map keeps the kept subspace
    a = rng.standard_normal((200, 5)) @ rng.standard_normal((5, 12))
    b = a[:, :5] @ rng.standard_normal((5, 7)) + rng.standard_normal((200, 7))
    m = rng.standard_normal((12, 12)) + 3 * np.eye(12)
    assert abs(np.linalg.det(m)) > 1e-3
    base = svcca(a, b)
    assert base.kept_a <= 5
    np.testing.assert_allclose(svcca(a @ m, b).coefficients, base.coefficients, atol=1e-6)
    np.testing.assert_allclose(svcca(b, a @ m).coefficients, base.coefficients, atol=1e-6)
    # full-rank data: orthogonal maps and isotropic scaling keep the SVD spectrum
    a2, b2 = _data(seed=2)
    q, _ = np.linalg.qr(rng.standard_normal((12, 12)))
    ref = svcca(a2, b2)
    np.testing.assert_allclose(svcca(7.5 * a2 @ q + 3.0, b2).coefficients, ref.coefficients,
                               atol=1e-6)
    # and with no SVD step (nor regularisation), plain CCA is invariant to any invertible map
    np.testing.assert_allclose(svcca(a2 @ m, b2, keep=None, epsilon=0).coefficients,
                               svcca(a2, b2, keep=None, epsilon=0).coefficients, atol=1e-6)


def test_unrelated_features_score_lower_than_related():
    a, b = _data(seed=4)
    noise = np.random.default_rng(9).standard_normal(b.shape)
    assert svcca(a, noise).mean < 0.3 < svcca(a, b).mean


def test_torch_input_matches_numpy():
    a, b = _data(seed=6)
    r_np = svcca(a, b)
    r_t = svcca(torch.from_numpy(a).float(), torch.from_numpy(b).double())
    np.testing.assert_allclose(r_t.coefficients, r_np.coefficients, atol=1e-4)


def test_epsilon_regularises():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((300, 6))
    b = a[:, :5] + rng.standard_normal((300, 5))
    a = np.hstack([a, a[:, :1] * 2.0])  # exactly collinear column: singular covariance
    plain = svcca(a, b, keep=None, epsilon=1e-10).coefficients
    assert np.isfinite(plain).all() and plain.max() <= 1.0
    np.testing.assert_allclose(plain, _cca_angles(a[:, :6], b), atol=1e-6)
    shrunk = svcca(a, b, keep=None, epsilon=0.05).coefficients
    assert shrunk.size == plain.size == 5
    assert np.all(shrunk <= plain + 1e-12) and shrunk.mean() < plain.mean() - 1e-3


def test_few_samples_warns_and_bad_input_raises():
    rng = np.random.default_rng(0)
    with pytest.warns(FewSamplesWarning, match="samples"):
        res = svcca(rng.standard_normal((10, 20)), rng.standard_normal((10, 20)))
    assert res.kept_a <= 9
    with pytest.raises(ConfigError, match="same number of samples"):
        svcca(rng.standard_normal((10, 3)), rng.standard_normal((11, 3)))
    with pytest.raises(ConfigError, match="at least 2"):
        svcca(np.ones((1, 3)), np.ones((1, 3)))
    for bad in (0, 1.5, 0.0, True, "all"):
        with pytest.raises(ConfigError, match="keep"):
            svcca(rng.standard_normal((30, 3)), rng.standard_normal((30, 3)), keep=bad)
    with pytest.raises(DataError, match="no variance"):
        svcca(np.ones((30, 3)), rng.standard_normal((30, 3)))
    with pytest.raises(DataError, match="NaN"):
        svcca(np.full((30, 3), np.nan), rng.standard_normal((30, 3)))
    with pytest.raises(ConfigError, match="flatten"):
        svcca(rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((4, 2, 3, 3)))


def test_flatten_conv_modes():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5, 6)).astype(np.float32)
    pooled = flatten_conv(x, "pool")
    assert pooled.dtype == np.float64 and pooled.shape == (4, 3)
    np.testing.assert_allclose(pooled[2, 1], x[2, 1].mean(), rtol=1e-6)
    every = flatten_conv(x, "positions", max_samples=None)
    np.testing.assert_array_equal(every, np.moveaxis(x, 1, -1).reshape(-1, 3))
    sub = flatten_conv(torch.from_numpy(x), "positions", max_samples=50, seed=3)
    assert sub.shape == (50, 3)
    rows = {tuple(r) for r in every.astype(np.float32)}
    assert all(tuple(r) in rows for r in sub.astype(np.float32))  # real positions ...
    assert len({tuple(r) for r in sub}) == 50  # ... drawn without replacement
    np.testing.assert_array_equal(sub, flatten_conv(x, "positions", max_samples=50, seed=3))
    assert not np.array_equal(sub, flatten_conv(x, "positions", max_samples=50, seed=4))
    with pytest.raises(ConfigError, match="mode"):
        flatten_conv(x, "mean")


def test_flatten_pair_aligns_spatial_sizes():
    rng = np.random.default_rng(2)
    big = rng.standard_normal((6, 4, 8, 8))
    small = big.reshape(6, 4, 4, 2, 4, 2).mean(axis=(3, 5))  # 2x2 block means
    fa, fb = flatten_pair(big, small, "positions", max_samples=60, seed=1)
    assert fa.shape == fb.shape == (60, 4)
    np.testing.assert_allclose(fa, fb, atol=1e-12)
    np.testing.assert_allclose(svcca(fa, fb).coefficients, 1.0, atol=1e-8)
    with pytest.raises(ConfigError, match="pool"):
        flatten_pair(big, rng.standard_normal((6, 4)), "positions")
