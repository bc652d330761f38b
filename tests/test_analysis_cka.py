"""Linear CKA against the HSIC (Gram-matrix) formula, and its invariances."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ttl.analysis import linear_cka
from ttl.errors import ConfigError, DataError


def _hsic_cka(x, y):
    """CKA from centred Gram matrices: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l_ = x @ x.T, y @ y.T

    def hsic(p, q):
        return np.trace(p @ h @ q @ h) / (n - 1) ** 2

    return hsic(k, l_) / np.sqrt(hsic(k, k) * hsic(l_, l_))


@pytest.mark.parametrize("shape", [(60, 5, 4), (20, 40, 30)])  # feature- and sample-space paths
def test_matches_hsic_formula(shape):
    n, fa, fb = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, fa)) + 2.0
    b = a[:, : min(fa, fb)] @ rng.standard_normal((min(fa, fb), fb)) + rng.standard_normal((n, fb))
    assert linear_cka(a, b) == pytest.approx(_hsic_cka(a, b), abs=1e-10)
    assert linear_cka(a, b) == pytest.approx(linear_cka(b, a), abs=1e-12)


def test_self_similarity_and_invariances():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((80, 10))
    b = np.tanh(a @ rng.standard_normal((10, 6))) + 0.3 * rng.standard_normal((80, 6))
    assert linear_cka(a, a) == pytest.approx(1.0, abs=1e-12)
    ref = linear_cka(a, b)
    q, _ = np.linalg.qr(rng.standard_normal((10, 10)))
    assert linear_cka(a @ q, b) == pytest.approx(ref, abs=1e-10)
    assert linear_cka(0.01 * a, 50.0 * b) == pytest.approx(ref, abs=1e-10)
    assert linear_cka(a + 5.0, b - 3.0) == pytest.approx(ref, abs=1e-10)
    # not invariant to arbitrary invertible maps (so the checks above can fail)
    m = np.diag(np.geomspace(1.0, 100.0, 10))
    assert abs(linear_cka(a @ m, b) - ref) > 1e-3


def test_torch_input_and_errors():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((30, 3))
    assert linear_cka(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(
        linear_cka(a, b), abs=1e-12)
    assert 0.0 <= linear_cka(a, b) < linear_cka(a, a[:, :3] + 0.1 * b)
    with pytest.raises(ConfigError, match="same number of samples"):
        linear_cka(a, b[:10])
    with pytest.raises(DataError, match="no variance"):
        linear_cka(np.ones((30, 2)), b)
