"""Shortcut audit of the phantoms: can simple hand-made features of a lower level predict a label?

For one phantom level, a training and a test split are generated; each image is reduced to a few
families of hand-made features, and two simple models per family -- a standardised logistic
regression and a small gradient-boosted tree ensemble -- are fitted on the training split and
scored on the test split (AUROC with a stratified percentile-bootstrap 95% CI).

Feature families (all written here with NumPy/SciPy):

``intensity``       global intensity statistics (mean, std, percentiles, skew, kurtosis) and a
                    16-bin histogram;
``edge-energy``     mean squared gradient and Laplacian, gradient-magnitude percentiles and
                    difference-of-Gaussians energy at three scales;
``texture-lbp``     histogram of uniform 8-neighbour local binary patterns at radii 1 and 2;
``texture-gabor``   mean and spread of Gabor energy at 4 orientations x 3 periods;
``global-combined`` the four families above together;
``blob-shape``      statistics of the bright blobs left after a white top-hat and a threshold:
                    count, areas, perimeters, compactness, elongation, extent (local shape);
``profile-sorted``  row and column mean profiles, each sorted (position-free);
``profile-raw``     row and column mean profiles as they are (positions kept).

Verdict: a family is *judged* at a level when it describes a lower level of feature than the one
the label lives at (``JUDGED``): ``low`` -- intensity only; ``mid`` -- intensity, edge energy and
global texture; ``high`` -- those and local blob shape and the sorted profiles. A judged row
**passes** when its test AUROC is at most ``MARGIN`` = 0.60 (chance is 0.50), i.e. the label is
not recoverable from that family beyond a small margin. Other rows are reported, not judged
(``passes`` is None): e.g. Gabor energy is *meant* to solve ``low``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import ndimage

from ttl.errors import ConfigError

MARGIN = 0.60
FAMILIES = ("intensity", "edge-energy", "texture-lbp", "texture-gabor", "global-combined",
            "blob-shape", "profile-sorted", "profile-raw")
_LOW_LEVEL = ("intensity", "edge-energy", "texture-lbp", "texture-gabor", "global-combined")
JUDGED: dict[str, tuple[str, ...]] = {
    "low": ("intensity",),
    "mid": _LOW_LEVEL,
    "high": _LOW_LEVEL + ("blob-shape", "profile-sorted"),
}
MODELS = ("logistic", "boosting")


# ---------------------------------------------------------------------------------------------
# features: each takes float images (N, H, W) in [0, 1] and returns (N, F)


def intensity_features(x: np.ndarray) -> np.ndarray:
    """Mean, std, 7 percentiles, skew, kurtosis and a 16-bin histogram of every image."""
    flat = x.reshape(len(x), -1)
    mean, std = flat.mean(1), flat.std(1) + 1e-8
    z = (flat - mean[:, None]) / std[:, None]
    pct = np.percentile(flat, [1, 5, 25, 50, 75, 95, 99], axis=1).T
    hist = np.stack([np.histogram(f, bins=16, range=(0, 1))[0] for f in flat]) / flat.shape[1]
    return np.column_stack([mean, std, pct, (z**3).mean(1), (z**4).mean(1), hist])


def edge_features(x: np.ndarray) -> np.ndarray:
    """Gradient and Laplacian energy, gradient-magnitude percentiles, DoG energy at 3 scales."""
    gy, gx = np.gradient(x, axis=(1, 2))
    mag2 = gx**2 + gy**2
    lap = np.stack([ndimage.laplace(img, mode="reflect") for img in x])
    mag = np.sqrt(mag2).reshape(len(x), -1)
    cols = [mag2.mean((1, 2)), (lap**2).mean((1, 2)), np.abs(lap).mean((1, 2)), mag.mean(1),
            *np.percentile(mag, [50, 90, 99], axis=1)]
    for s in (0.7, 1.5, 3.0):
        dog = ndimage.gaussian_filter(x, (0, s, s)) - ndimage.gaussian_filter(x, (0, 2 * s, 2 * s))
        cols.append((dog**2).mean((1, 2)))
    return np.column_stack(cols)


def _lbp_codes(x: np.ndarray, radius: int) -> np.ndarray:
    """Uniform LBP label (0..9) of every interior pixel: 0-8 = number of brighter neighbours, 9 = other."""
    h, w = x.shape[1:]
    r = radius
    centre = x[:, r:h - r, r:w - r]
    bits = []
    for k in range(8):  # neighbour k on a circle of radius r, bilinearly interpolated (all images at once)
        a = 2 * math.pi * k / 8
        dy, dx = -r * math.sin(a), r * math.cos(a)
        y0, x0 = math.floor(dy), math.floor(dx)
        fy, fx = dy - y0, dx - x0
        nb = 0.0
        for oy, ox, wgt in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx),
                            (1, 1, fy * fx)):
            if wgt > 1e-9:
                ys, xs = r + y0 + oy, r + x0 + ox
                nb = nb + wgt * x[:, ys:ys + h - 2 * r, xs:xs + w - 2 * r]
        bits.append(nb >= centre - 1e-12)
    b = np.stack(bits, 0).astype(np.int8)
    transitions = np.abs(np.diff(np.concatenate([b, b[:1]], 0), axis=0)).sum(0)
    ones = b.sum(0)
    return np.where(transitions <= 2, ones, 9)


def lbp_features(x: np.ndarray) -> np.ndarray:
    """Normalised histograms of uniform LBP codes at radii 1 and 2 (20 values)."""
    out = []
    for r in (1, 2):
        codes = _lbp_codes(x, r).reshape(len(x), -1)
        out.append(np.stack([np.bincount(c, minlength=10) for c in codes]) / codes.shape[1])
    return np.column_stack(out)


def _gabor_kernel(period: float, theta: float) -> np.ndarray:
    sigma = 0.56 * period
    half = int(math.ceil(2.5 * sigma))
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    u = xx * math.cos(theta) + yy * math.sin(theta)
    env = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    k = env * np.exp(2j * math.pi * u / period)
    return k - env * (k.sum() / env.sum())  # zero mean


def gabor_features(x: np.ndarray) -> np.ndarray:
    """Mean and 99th percentile of Gabor energy at 4 orientations x 3 periods (2.5, 5 and 10 px)."""
    from scipy.signal import fftconvolve

    cols = []
    for period in (2.5, 5.0, 10.0):
        for theta in np.arange(4) * math.pi / 4:
            k = _gabor_kernel(period, theta)[None]
            e = np.abs(fftconvolve(x, k, mode="same", axes=(1, 2))) ** 2
            flat = e.reshape(len(x), -1)
            cols += [flat.mean(1), np.percentile(flat, 99, axis=1)]
    return np.column_stack(cols)


def blob_features(x: np.ndarray) -> np.ndarray:
    """Shape statistics of the bright blobs (white top-hat, threshold at mean + 2 std)."""
    size = max(5, x.shape[-1] // 6) | 1
    rows = []
    for img in x:
        smooth = ndimage.gaussian_filter(img, 0.7)
        top = smooth - ndimage.grey_opening(smooth, size=(size, size))
        mask = top > top.mean() + 2 * top.std()
        lab, n = ndimage.label(mask)
        if n == 0:
            rows.append(np.zeros(12))
            continue
        idx = np.arange(1, n + 1)
        area = ndimage.sum_labels(mask, lab, idx)
        edge = mask & ~ndimage.binary_erosion(mask)
        perim = ndimage.sum_labels(edge, lab, idx) + 1e-6
        compact = 4 * math.pi * area / perim**2
        elong, extent = [], []
        for sl, k in zip(ndimage.find_objects(lab), idx):
            ys, xs = np.nonzero(lab[sl] == k)
            cov = np.cov(np.stack([ys, xs])) if len(ys) > 2 else np.eye(2)
            ev = np.sort(np.linalg.eigvalsh(cov))
            elong.append(math.sqrt((ev[1] + 1e-6) / (ev[0] + 1e-6)))
            extent.append(len(ys) / lab[sl].size)
        big = int(np.argmax(area))
        rows.append([n, area.sum(), area.max(), area.mean(), perim.sum(), perim[big] / math.sqrt(area[big]),
                     compact.mean(), compact[big], np.mean(elong), elong[big], np.mean(extent), extent[big]])
    return np.asarray(rows, np.float64)


def profile_features(x: np.ndarray, sort: bool) -> np.ndarray:
    """Row and column mean profiles (each sorted when ``sort``), 2 * side values."""
    rows, cols = x.mean(2), x.mean(1)
    if sort:
        rows, cols = np.sort(rows, 1), np.sort(cols, 1)
    return np.column_stack([rows, cols])


def features(images: np.ndarray) -> dict[str, np.ndarray]:
    """Every feature family of uint8 images (N, 1, H, W) or (N, H, W)."""
    x = np.asarray(images, np.float64)
    x = x[:, 0] if x.ndim == 4 else x
    x = x / 255.0
    fam: dict[str, np.ndarray] = {
        "intensity": intensity_features(x), "edge-energy": edge_features(x),
        "texture-lbp": lbp_features(x), "texture-gabor": gabor_features(x),
    }
    fam["global-combined"] = np.column_stack([fam[k] for k in _LOW_LEVEL[:4]])
    fam["blob-shape"] = blob_features(x)
    fam["profile-sorted"] = profile_features(x, sort=True)
    fam["profile-raw"] = profile_features(x, sort=False)
    return fam


# ---------------------------------------------------------------------------------------------
# models and the audit


def _model(name: str, seed: int) -> object:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000))
    return HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                          l2_regularization=1.0, random_state=seed)


def audit_features(train: dict[str, np.ndarray], y_train: np.ndarray, test: dict[str, np.ndarray],
                   y_test: np.ndarray, level: str, n_boot: int = 500, seed: int = 0,
                   margin: float = MARGIN) -> pd.DataFrame:
    """Fit every model on every family of ``train`` features and score it on ``test``."""
    from sklearn.metrics import roc_auc_score

    from ttl.stats import bootstrap_ci

    if level not in JUDGED:
        raise ConfigError(f"audit level must be one of {tuple(JUDGED)}, got {level!r}")
    rows = []
    for fam in train:
        xt, xs = np.nan_to_num(train[fam]), np.nan_to_num(test[fam])
        for name in MODELS:
            model = _model(name, seed).fit(xt, y_train)
            score = model.predict_proba(xs)[:, 1]
            ci = bootstrap_ci(y_test, score, roc_auc_score, n_boot=n_boot, seed=seed)
            judged = fam in JUDGED[level]
            rows.append({"level": level, "feature_family": fam, "model": name, "n_features": xt.shape[1],
                         "auroc": float(ci[0]), "ci_low": float(ci[1]), "ci_high": float(ci[2]),
                         "margin": margin, "judged": judged,
                         "passes": bool(ci[0] <= margin) if judged else None})
    return pd.DataFrame(rows)


def shortcut_audit(level: str, n_per_class: int = 300, size: int = 64, contrast: float = 1.0, seed: int = 0,
                   n_boot: int = 500, margin: float = MARGIN,
                   transform: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None) -> pd.DataFrame:
    """Audit one phantom level: generated train/test splits of ``n_per_class`` images per class.

    Returns one row per feature family and model: ``feature_family, model, n_features, auroc,
    ci_low, ci_high, margin, judged, passes`` (``passes`` is None for families not judged at this
    level). ``transform(images, labels) -> images`` may alter the generated images first (e.g. to
    plant a shortcut in a test of the audit itself).
    """
    from ttl.data import phantoms

    if n_per_class < 10:
        raise ConfigError(f"shortcut_audit needs n_per_class >= 10 to fit and score, got {n_per_class}")
    if n_boot < 1:
        raise ConfigError(f"shortcut_audit: n_boot must be a positive integer, got {n_boot}")
    feats, labels = {}, {}
    for split in ("train", "test"):
        images, y, _ = phantoms.generate(level, n_per_class=n_per_class, size=size, seed=seed,
                                         contrast=contrast, split=split)
        if transform is not None:
            images = transform(images, y)
        feats[split], labels[split] = features(images), y
    return audit_features(feats["train"], labels["train"], feats["test"], labels["test"], level,
                          n_boot=n_boot, seed=seed, margin=margin)


def verdict(table: pd.DataFrame) -> bool:
    """True when every judged row of an audit table passes."""
    judged = table[table["judged"]]
    return bool(judged["passes"].all())


def format_table(table: pd.DataFrame) -> str:
    """A plain-text table with the margin and the overall verdict stated."""
    shown = table.assign(verdict=[("pass" if p else "FAIL") if j else "not judged"
                                  for j, p in zip(table["judged"], table["passes"])])
    cols = ["feature_family", "model", "n_features", "auroc", "ci_low", "ci_high", "verdict"]
    text = shown[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}")
    level = table["level"].iloc[0]
    margin = float(table["margin"].iloc[0])
    overall = "PASS" if verdict(table) else "FAIL"
    return (f"shortcut audit of phantom-{level}: a judged family passes when its test AUROC <= {margin:.2f} "
            f"(chance 0.50)\n{text}\nverdict: {overall} (judged at {level}: {', '.join(JUDGED[level])})")
