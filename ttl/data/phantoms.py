"""Synthetic, radiograph-like phantoms whose label lives at a chosen level of visual feature.

**These images are synthetic.** They are drawn by a small procedural program, not acquired from
patients; they look vaguely like a chest radiograph (a bright body, two dark lung fields, a heart
shadow, a spine band, curved rib-like bands and smooth low-frequency noise) and carry one or two
bright "lesions". They are the study's controlled experiment: Truncated Transfer Learning (TTL)
predicts that a shallow cut of a pretrained network suffices when the label is a low-level
feature and that deeper cuts are needed when it is a global arrangement. Nothing learnt on them
says anything about real patients.

Every image is turned by a random angle in [-25, 25] degrees (patient positioning) and holds one
to three plain round nodules (distractors, no grain, no strands) in its lung fields. Every lesion
has the same ingredients: a soft bright core with a smooth, slightly lobulated border, filled with
a fine sinusoidal grain of some orientation, and 5 to 8 thin tapering strands spread around it a
small gap beyond the border. What decides the class depends on ``level``:

``"low"`` -- classes ``grain-horizontal`` / ``grain-vertical``: the orientation of the fine grain
    inside the lesion (period 3 to 8 pixels, in the image's axes). Its amplitude is uniform down to
    zero, so faint grains are undecidable. Strands, size and place do not depend on the class.
``"mid"`` -- classes ``swirl-clockwise`` / ``swirl-anticlockwise`` (version 4): the handedness of
    the strand pattern. A ``"mid"`` lesion has 4 to 6 longer strands, evenly spread a little farther
    out, and all of them are turned from radial by one angle (uniform in 0 to 60 degrees), so the
    lesion looks like a pinwheel turning clockwise (class 0) or anticlockwise (class 1) on screen.
    Telling the two apart needs each strand's orientation *relative to its place around the core*:
    a configuration of parts. Class 1's images are drawn as the mirror images of class 0's (every
    other parameter has a mirror-symmetric distribution; only the heart's side is not mirrored), so
    any statistic that a mirror leaves unchanged -- intensity histograms, gradient, Laplacian and
    band-pass energy, rotation-invariant LBP, Gabor energy averaged over random orientation, blob
    shape, sorted profiles -- has the same distribution in both classes: the shortcut audit is at
    chance by construction, at every size and conspicuity. Lesions turned little are nearly radial,
    so some images are undecidable and no model saturates. Versions 2 and 3 (smooth vs spiculated,
    radial vs randomly turned strands) leaked into edge energy or Gabor/LBP statistics at every
    conspicuity where a network learnt them (results/calibration/).
``"high"`` -- classes ``symmetric`` / ``offset``: both lung fields hold one lesion, and the two
    are identical (same core, strands, grain). ``symmetric``: they sit at the same height in the
    body's frame (within half a percent); ``offset``: their heights differ by at least 8 % of the
    image. Each lesion's own place has the same distribution in both classes. Because the body is
    turned and distractor nodules add bright rows anywhere, the image's row and column profiles no
    longer tell the class (version 2: gradient boosting on the sorted row profile, AUROC 0.93);
    only the relation between the two lesions and the body's axis does.

Calibration (generator version 4; ``"mid"`` changed, ``"low"`` and ``"high"`` are version 3's):
``contrast=1`` means the calibrated conspicuity (``CONSPICUITY`` per level multiplies the lesions'
drawn contrast), chosen so that :func:`ttl.data.audit.shortcut_audit` finds no lower-level shortcut
(judged families at most AUROC 0.60) while a converged network learns the level at 64 px without
saturating. Measured with ``scripts/check_phantom_level.py`` (ResNet-18 from the fractal source,
100 training images per class, early stopping; results/calibration/): ``"mid"`` TTL at layer2.1
0.937, ``"low"`` TTL at layer2.1 0.85, ``"high"`` TTL at layer3.1 0.71. ``contrast`` stays available
to make the lesions fainter or more conspicuous.

The ``"low"`` and ``"high"`` classes are invariant to horizontal and vertical flips; a mirror flip
turns a ``"mid"`` swirl the other way, so ``"mid"`` allows only half turns (``rot180``). Crops that
cut a lesion off would corrupt ``"high"`` labels, so prefer flips only there.

Generation is vectorised with NumPy (and torch for the smooth-noise upsampling), chunked so the
memory stays bounded, and deterministic: the same parameters give the same bytes. The train, val
and test splits use different seeds derived with :func:`ttl.seeding.derive_seed`, so they never
share an image.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ttl.errors import ConfigError
from ttl.seeding import derive_seed

LEVELS = ("low", "mid", "high")
CLASSES: dict[str, list[str]] = {
    "low": ["grain-horizontal", "grain-vertical"],
    "mid": ["swirl-clockwise", "swirl-anticlockwise"],
    "high": ["symmetric", "offset"],
}
SPLITS = ("train", "val", "test")
GENERATOR_VERSION = 4  # bump whenever the pixels a given seed produces change (it keys the cache)
_TABLE = 360  # angular bins of a lesion's radius table
_SPIKES = 8  # strand slots of a lesion (some get zero length)
# calibration (see the module docstring): `contrast=1` multiplies the lesions' contrast by these
CONSPICUITY = {"low": 6.0, "mid": 10.0, "high": 3.0}
ROTATION = math.radians(25.0)  # the body is turned by a uniform angle in [-ROTATION, ROTATION]
R0 = {"low": (0.11, 0.15), "mid": (0.11, 0.15), "high": (0.08, 0.11)}  # core radius / image side
GRAIN_AMP = {"low": (0.0, 0.35), "mid": (0.15, 0.35), "high": (0.15, 0.35)}  # low: faint grains undecidable
GAP = (0.3, 0.6)  # a strand's gap beyond the core's border, in core radii
RADIAL_JITTER = 0.15  # radians: how far a spiculated lesion's strands stray from radial
STRAND_LEVEL = (0.3, 0.8)  # a lesion's strands' brightness relative to its core (faint: hard)
STRAND_WIDTH = (0.10, 0.16)  # a strand's half-width at its wide end, in core radii
DISTRACTORS = 3  # plain nodules per image: 1 to 3
MID_STRANDS = (4, 6)  # "mid": strands per lesion (fewer, longer and farther out than the other levels')
MID_LENGTH = (0.8, 1.2)  # "mid": strand length, in core radii
MID_GAP = (0.4, 0.7)  # "mid": a strand's gap beyond the core's border, in core radii
SWIRL = (0.0, math.radians(60.0))  # "mid": how far the strands turn from radial (uniform)
MIN_OFFSET = 0.08  # "offset" lesions' least height difference in the body frame


@dataclasses.dataclass(frozen=True)
class PhantomParams:
    """Parameters of one generated split (``balance`` is the fraction of class 1)."""

    level: str
    n_per_class: int = 600
    size: int = 64
    seed: int = 0
    balance: float = 0.5
    label_noise: float = 0.0
    contrast: float = 1.0  # lesion conspicuity: multiplies the lesion's contrast (and so its grain's)

    def validate(self) -> PhantomParams:
        """Checked against the phantom kind's option schema (:class:`ttl.data.kinds.PhantomOptions`:
        one place for the bounds the CLI, the loader and the generator share)."""
        from ttl.data.kinds import PhantomOptions
        from ttl.schema import validate

        if self.level not in LEVELS:
            raise ConfigError(f"phantom level must be one of {LEVELS}, got {self.level!r}")
        values = {k: v.item() if isinstance(v, np.generic) else v for k, v in dataclasses.asdict(self).items()}
        n = values.pop("n_per_class")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ConfigError(f"phantom n_per_class must be a positive integer, got {self.n_per_class!r}")
        values.pop("level")
        validate(PhantomOptions, values, "phantom", ConfigError)
        return self


def resolve_n(n_per_class: int | Mapping[str, int], split: str) -> int:
    """``n_per_class`` may be one number for every split or a mapping ``{split: n}``."""
    if isinstance(n_per_class, Mapping):
        if split not in n_per_class:
            raise ConfigError(f"phantom n_per_class has no entry for split {split!r}: {dict(n_per_class)}")
        return int(n_per_class[split])
    return int(n_per_class)


def split_seed(seed: int, level: str, split: str) -> int:
    """The seed of one split: different splits never share a random stream (hence an image)."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    return derive_seed(int(seed), "phantom", level, split)


def class_counts(n_per_class: int, balance: float) -> tuple[int, int]:
    """Images of class 0 and class 1 for ``2 * n_per_class`` images, a ``balance`` of them class 1."""
    total = 2 * int(n_per_class)
    n1 = min(total - 1, max(1, int(round(total * float(balance)))))
    return total - n1, n1


def generate(level: str, n_per_class: int = 600, size: int = 64, seed: int = 0, balance: float = 0.5,
             label_noise: float = 0.0, split: str = "train",
             progress: bool = False, contrast: float = 1.0) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Generate one split of phantoms.

    Returns ``(images, labels, info)``: uint8 images of shape (N, 1, size, size), int64 labels
    (N,) after label noise, and ``info`` with the clean labels (``"clean_labels"``), the indices
    whose label was flipped (``"flipped"``), the lesions' centres in pixels (``"lesion_xy"``,
    (N, L, 2) as x, y) and core radii (``"lesion_radius"``), the classes and the split's seed.
    """
    p = PhantomParams(level, n_per_class, size, seed, balance, label_noise, contrast).validate()
    s_seed = split_seed(p.seed, p.level, split)
    rng = np.random.default_rng(s_seed)
    n0, n1 = class_counts(p.n_per_class, p.balance)
    clean = rng.permutation(np.r_[np.zeros(n0, np.int64), np.ones(n1, np.int64)])
    n = clean.size
    params = _draw_params(rng, clean, p.level)
    params["contrast"] = params["contrast"] * np.float32(p.contrast * CONSPICUITY[p.level])
    images = np.empty((n, 1, p.size, p.size), np.uint8)
    chunk = max(8, int(2**22 // (p.size * p.size)))
    starts = range(0, n, chunk)
    if progress and n > chunk:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"phantom-{p.level} {split}", unit="chunk")
    for k, start in enumerate(starts):
        sl = slice(start, min(n, start + chunk))
        crng = np.random.default_rng([s_seed, k])
        sub = {key: val[sl] for key, val in params.items()}
        images[sl, 0] = _render(sub, p.size, crng)
    labels = clean.copy()
    n_flip = int(round(p.label_noise * n))
    flipped = np.sort(rng.choice(n, size=n_flip, replace=False)) if n_flip else np.zeros(0, np.int64)
    labels[flipped] = 1 - labels[flipped]
    ix, iy = to_image_frame(params["lx"], params["ly"], params["rot"][:, None])
    lesions = np.stack([ix, iy], -1) * p.size  # (N, L, 2) pixel centres (x, y) in the image
    info = {"classes": list(CLASSES[p.level]), "clean_labels": clean, "flipped": flipped,
            "lesion_xy": lesions.astype(np.float32), "lesion_radius": (params["r0"] * p.size).astype(np.float32),
            "split_seed": s_seed, "params": dataclasses.asdict(p), "split": split,
            "generator_version": GENERATOR_VERSION}
    return images, labels, info


# ---------------------------------------------------------------------------------------------
# parameters (drawn once for all images, so the pixels do not depend on the chunk size)


def _u(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    return rng.uniform(lo, hi, n).astype(np.float32)


def _draw_params(rng: np.random.Generator, y: np.ndarray, level: str) -> dict[str, np.ndarray]:
    n = y.size
    q: dict[str, np.ndarray] = {}
    # anatomy (in the body's own frame; the body is then turned by `rot` about the image centre)
    q["cy"] = 0.50 + rng.normal(0, 0.015, n).astype(np.float32)
    q["cxl"] = 0.30 + rng.normal(0, 0.012, n).astype(np.float32)
    q["cxr"] = 0.70 + rng.normal(0, 0.012, n).astype(np.float32)
    q["ax"] = _u(rng, 0.135, 0.160, n)
    q["ay"] = _u(rng, 0.28, 0.32, n)
    q["body"] = _u(rng, 0.50, 0.62, n)
    q["lung"] = _u(rng, 0.16, 0.26, n)
    q["heart_x"] = 0.56 + rng.normal(0, 0.015, n).astype(np.float32)
    q["heart"] = _u(rng, 0.08, 0.14, n)
    q["rib_period"] = _u(rng, 0.095, 0.12, n)
    q["rib_phase"] = _u(rng, 0, 2 * math.pi, n)
    q["rib_curv"] = _u(rng, 0.5, 1.0, n)
    q["rib_amp"] = _u(rng, 0.03, 0.07, n)
    q["noise_amp"] = _u(rng, 0.025, 0.05, n)
    q["pix_noise"] = _u(rng, 0.012, 0.03, n)
    q["gamma"] = _u(rng, 0.85, 1.15, n)
    q["rot"] = _u(rng, -ROTATION, ROTATION, n)  # patient positioning, radians
    # lesion appearance (shared by both lesions of a "high" image)
    q["r0"] = _u(rng, *R0[level], n)
    q["contrast"] = _u(rng, 0.08, 0.15, n)
    q["grain_amp"] = _u(rng, *GRAIN_AMP[level], n)
    q["grain_phase"] = _u(rng, 0, 2 * math.pi, n)
    q["grain_frac"] = _u(rng, 0.85, 1.15, n)  # period multiplier
    if level == "low":  # class = grain orientation: 0 = horizontal stripes, 1 = vertical stripes
        q["grain_angle"] = (y * (math.pi / 2) + rng.uniform(-0.2, 0.2, n)).astype(np.float32)
    else:
        q["grain_angle"] = _u(rng, 0, math.pi, n)
    q["radius_table"] = _radius_tables(rng, n)
    if level == "mid":
        q.update(_swirl_spikes(rng, y, q["radius_table"]))
    else:
        q.update(_spikes(rng, rng.random(n) < 0.5, q["radius_table"]))
    # distractors: up to DISTRACTORS plain round nodules (no grain, no strands) anywhere in the lung
    # fields, the same in every class: they blur any class signal in intensity profiles
    side = np.where(rng.random((n, DISTRACTORS)) < 0.5, q["cxl"][:, None], q["cxr"][:, None])
    rad = np.sqrt(rng.random((n, DISTRACTORS)))
    ang = rng.uniform(0, 2 * math.pi, (n, DISTRACTORS))
    q["nod_x"] = (side + 0.6 * q["ax"][:, None] * rad * np.cos(ang)).astype(np.float32)
    q["nod_y"] = (q["cy"][:, None] + 0.8 * q["ay"][:, None] * rad * np.sin(ang)).astype(np.float32)
    q["nod_r"] = (rng.uniform(0.5, 0.9, (n, DISTRACTORS)) * q["r0"][:, None]).astype(np.float32)
    q["nod_r"] *= np.arange(DISTRACTORS)[None, :] < rng.integers(1, DISTRACTORS + 1, (n, 1))
    # lesion places (body frame, normalised coordinates, x to the right, y down)
    if level == "high":
        # each lesion's place has the same marginal distribution in both classes: x uniform in its
        # field's central band, y uniform in [cy - H/2, cy + H/2]; "symmetric" copies the height,
        # "offset" rotates it by a uniform shift in [MIN, H - MIN] modulo H (still uniform).
        span, min_off = 0.36, MIN_OFFSET
        x_l = q["cxl"] + q["ax"] * _u(rng, -0.4, 0.4, n)
        x_r = q["cxr"] + q["ax"] * _u(rng, -0.4, 0.4, n)
        t_l = _u(rng, 0, span, n)
        offset = np.mod(t_l + _u(rng, min_off, span - min_off, n), span)
        same = np.clip(t_l + rng.normal(0, 0.004, n), 0, span)
        t_r = np.where(y == 1, offset, same).astype(np.float32)
        swap = rng.random(n) < 0.5  # which side gets the drawn height first
        t_l, t_r = np.where(swap, t_r, t_l), np.where(swap, t_l, t_r)
        base = q["cy"] - span / 2
        q["lx"] = np.stack([x_l, x_r], 1)
        q["ly"] = np.stack([base + t_l, base + t_r], 1)
    else:
        right = rng.random(n) < 0.5
        cx = np.where(right, q["cxr"], q["cxl"])
        rad = np.sqrt(rng.random(n)).astype(np.float32)
        ang = _u(rng, 0, 2 * math.pi, n)
        q["lx"] = (cx + 0.50 * q["ax"] * rad * np.cos(ang))[:, None]
        q["ly"] = (q["cy"] + 0.60 * q["ay"] * rad * np.sin(ang))[:, None]
    return q


def _radius_tables(rng: np.random.Generator, n: int) -> np.ndarray:
    """Relative radius of a lesion's smooth (slightly lobulated) core per angle bin, (N, _TABLE)."""
    th = np.linspace(0, 2 * math.pi, _TABLE, endpoint=False, dtype=np.float32)[None, :]
    base = (1.0 + _u(rng, 0, 0.14, n)[:, None] * np.cos(2 * (th - _u(rng, 0, math.pi, n)[:, None]))
            + _u(rng, 0, 0.07, n)[:, None] * np.cos(3 * (th - _u(rng, 0, math.pi, n)[:, None])))
    return base.astype(np.float32)


def _spikes(rng: np.random.Generator, radial: np.ndarray, table: np.ndarray) -> dict[str, np.ndarray]:
    """Strands around every lesion: place angle, length, half-width, start (in core radii), orientation.

    Every lesion gets the same kind of thin tapering strands, a gap beyond its core's border;
    ``radial`` ones point away from the core (a spiculated lesion), the others are turned about
    their own middle by a uniform angle (a smooth lesion among tangled strands). Both carry the same
    bright area, edge length and (over a lesion) the same spread of strand orientations.
    """
    n = radial.size
    k_used = rng.integers(5, _SPIKES + 1, n)
    used = np.arange(_SPIKES)[None, :] < k_used[:, None]
    # evenly spread around the core (so neither kind overlaps itself more), with a little jitter
    slot = np.arange(_SPIKES)[None, :] * (2 * math.pi / k_used[:, None])
    angle = rng.uniform(0, 2 * math.pi, (n, 1)) + slot + rng.uniform(-0.15, 0.15, (n, _SPIKES))
    length = rng.uniform(0.4, 0.8, (n, _SPIKES)) * used
    half_width = rng.uniform(*STRAND_WIDTH, (n, 1)) * np.ones((1, _SPIKES))
    gap = rng.uniform(*GAP, (n, _SPIKES))
    wrapped = np.angle(np.exp(1j * angle))
    idx = ((wrapped + math.pi) * (_TABLE / (2 * math.pi))).astype(np.int64) % _TABLE
    start = np.take_along_axis(table, idx, 1) + gap
    turn = np.where(radial[:, None], rng.normal(0, RADIAL_JITTER, (n, _SPIKES)),
                    rng.uniform(-math.pi, math.pi, (n, _SPIKES)))
    return {"spike_angle": angle.astype(np.float32), "spike_len": length.astype(np.float32),
            "spike_width": half_width.astype(np.float32), "spike_start": start.astype(np.float32),
            "spike_orient": (angle + turn).astype(np.float32),
            "spike_level": rng.uniform(*STRAND_LEVEL, n).astype(np.float32)}


def _swirl_spikes(rng: np.random.Generator, y: np.ndarray, table: np.ndarray) -> dict[str, np.ndarray]:
    """``"mid"`` strands: a pinwheel around the core whose handedness is the class.

    Every strand of a lesion is turned from radial by the same angle, drawn uniformly in ``SWIRL``,
    clockwise on screen for class 0 and anticlockwise for class 1 (with a little jitter per strand).
    Class 1's parameters are thus distributed as the mirror image of class 0's: number, length,
    width, gap, brightness and the size of the turn are drawn the same way, only its sign differs.
    Strands turned little are nearly radial, so some lesions are hard to decide.
    """
    n = y.size
    k_used = rng.integers(MID_STRANDS[0], MID_STRANDS[1] + 1, n)
    used = np.arange(_SPIKES)[None, :] < k_used[:, None]
    slot = np.arange(_SPIKES)[None, :] * (2 * math.pi / k_used[:, None])
    angle = rng.uniform(0, 2 * math.pi, (n, 1)) + slot + rng.uniform(-0.15, 0.15, (n, _SPIKES))
    length = rng.uniform(*MID_LENGTH, (n, _SPIKES)) * used
    half_width = rng.uniform(*STRAND_WIDTH, (n, 1)) * np.ones((1, _SPIKES))
    gap = rng.uniform(*MID_GAP, (n, _SPIKES))
    wrapped = np.angle(np.exp(1j * angle))
    idx = ((wrapped + math.pi) * (_TABLE / (2 * math.pi))).astype(np.int64) % _TABLE
    start = np.take_along_axis(table, idx, 1) + gap
    # image y points down, so a positive turn of the strand's axis is clockwise on screen
    sign = np.where(y == 0, 1.0, -1.0)[:, None]
    turn = sign * (rng.uniform(*SWIRL, (n, 1)) + rng.normal(0, 0.08, (n, _SPIKES)))
    return {"spike_angle": angle.astype(np.float32), "spike_len": length.astype(np.float32),
            "spike_width": half_width.astype(np.float32), "spike_start": start.astype(np.float32),
            "spike_orient": (angle + turn).astype(np.float32),
            "spike_level": rng.uniform(*STRAND_LEVEL, n).astype(np.float32)}


# ---------------------------------------------------------------------------------------------
# rendering


def _smooth_noise(rng: np.random.Generator, n: int, size: int, grid: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    g = torch.from_numpy(rng.standard_normal((n, 1, grid, grid)).astype(np.float32))
    out = F.interpolate(g, size=(size, size), mode="bicubic", align_corners=False)
    return out[:, 0].numpy()


def _sig(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _body_frame(rot: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Body-frame coordinates (N, S, S) of every pixel centre of an image turned by ``rot``."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    cs, sn = np.cos(rot)[:, None, None], np.sin(rot)[:, None, None]
    x0, y0 = c[None, None, :], c[None, :, None]
    return (0.5 + x0 * cs + y0 * sn).astype(np.float32), (0.5 - x0 * sn + y0 * cs).astype(np.float32)


def to_image_frame(x: np.ndarray, y: np.ndarray, rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised image coordinates of body-frame points ``(x, y)`` (``rot`` broadcast against them)."""
    cs, sn = np.cos(rot), np.sin(rot)
    return 0.5 + (x - 0.5) * cs - (y - 0.5) * sn, 0.5 + (x - 0.5) * sn + (y - 0.5) * cs


def _render(q: Mapping[str, np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    n = q["cy"].size
    X, Y = _body_frame(q["rot"], size)

    def col(name: str) -> np.ndarray:
        return q[name][:, None, None]

    body = _sig((1.0 - ((X - 0.5) / 0.47) ** 2 - ((Y - 0.56) / 0.62) ** 2) / 0.06)
    img = 0.06 + col("body") * body
    # lung fields: ellipses, a little wider at the bottom, soft edges
    lungs = np.zeros((n, size, size), np.float32)
    for cx in ("cxl", "cxr"):
        rel_y = (Y - col("cy")) / col("ay")
        ax = col("ax") * (0.85 + 0.22 * np.clip(rel_y, -1, 1))
        e = ((X - col(cx)) / ax) ** 2 + rel_y**2
        lungs = np.maximum(lungs, _sig((1.0 - e) / 0.10))
    img = img - (col("body") - col("lung")) * lungs
    # heart shadow and spine band
    heart = _sig((1.0 - ((X - col("heart_x")) / 0.13) ** 2 - ((Y - col("cy") - 0.14) / 0.12) ** 2) / 0.12)
    img = img + col("heart") * heart * lungs + 0.05 * np.exp(-(((X - 0.5) / 0.035) ** 2)) * body
    # rib-like bands, curving down away from the spine
    phase = 2 * math.pi * (Y - col("rib_curv") * (X - 0.5) ** 2) / col("rib_period") + col("rib_phase")
    img = img + col("rib_amp") * (0.5 + 0.5 * np.cos(phase)) ** 2 * (0.4 + 0.6 * lungs) * body
    # smooth noise
    img = img + col("noise_amp") * (_smooth_noise(rng, n, size, 6) + 0.5 * _smooth_noise(rng, n, size, 12))
    # lesions
    img = img + _lesions(q, size, X, Y)
    img = np.clip(img, 0.0, 1.0) ** col("gamma")
    img = img + col("pix_noise") * rng.standard_normal((n, size, size), dtype=np.float32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _lesions(q: Mapping[str, np.ndarray], size: int, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Sum of the lesions' intensity: a soft core from the radius table plus radial strands, filled with grain."""
    n, n_les = q["lx"].shape
    col = {k: q[k][:, None, None] for k in ("r0", "contrast", "grain_amp", "grain_phase",
                                           "grain_angle", "grain_frac")}
    px = np.arange(size, dtype=np.float32)
    period = np.clip(size / 16.0, 3.2, 8.0) * col["grain_frac"]  # in pixels
    ang = col["grain_angle"]
    # grain, in the image's own axes: stripes whose normal points along `ang` (0: horizontal stripes)
    grain = np.cos(2 * math.pi * (px[None, None, :] * np.sin(ang) + px[None, :, None] * np.cos(ang))
                   / period + col["grain_phase"])
    table = q["radius_table"]
    out = np.zeros((n, size, size), np.float32)
    edge = 0.7 / size
    r0 = col["r0"]
    for j in range(n_les):
        dx = X - q["lx"][:, j, None, None]
        dy = Y - q["ly"][:, j, None, None]
        rho = np.sqrt(dx**2 + dy**2)
        theta = np.arctan2(dy, dx)
        idx = ((theta + math.pi) * (_TABLE / (2 * math.pi))).astype(np.int64) % _TABLE
        border = np.take_along_axis(table, idx.reshape(n, -1), 1).reshape(n, size, size) * r0
        core = _sig((border - rho) / edge) * (1.0 - 0.35 * np.clip(rho / np.maximum(border, 1e-6), 0, 1) ** 2)
        strands = np.zeros_like(core)
        for k in range(_SPIKES):
            length = q["spike_len"][:, k, None, None] * r0
            if not (length > 0).any():
                continue
            phi = q["spike_angle"][:, k, None, None]
            psi = q["spike_orient"][:, k, None, None]
            mid = q["spike_start"][:, k, None, None] * r0 + 0.5 * length  # the strand's middle
            mx, my = dx - mid * np.cos(phi), dy - mid * np.sin(phi)
            along = mx * np.cos(psi) + my * np.sin(psi) + 0.5 * length  # 0 at its wide end
            across = np.abs(my * np.cos(psi) - mx * np.sin(psi))
            half = q["spike_width"][:, k, None, None] * r0 * (1.0 - along / np.maximum(length, 1e-6))
            strand = _sig((half - across) / edge) * _sig(along / edge) * (length > 0)
            strands = np.maximum(strands, strand)
        mask = np.maximum(core, q["spike_level"][:, None, None] * strands)
        out += col["contrast"] * mask * (1.0 + col["grain_amp"] * grain)
    for j in range(q["nod_r"].shape[1]):
        r = q["nod_r"][:, j, None, None]
        rho = np.sqrt((X - q["nod_x"][:, j, None, None]) ** 2 + (Y - q["nod_y"][:, j, None, None]) ** 2)
        disc = _sig((r - rho) / edge) * (1.0 - 0.35 * np.clip(rho / np.maximum(r, 1e-6), 0, 1) ** 2) * (r > 0)
        out += col["contrast"] * disc
    return out


def describe(level: str) -> str:
    """One line on what decides the class at ``level``."""
    return {
        "low": "fine grain orientation inside the lesion (horizontal vs vertical stripes)",
        "mid": "handedness of the lesion's strand pinwheel (clockwise vs anticlockwise, mirror-matched)",
        "high": "arrangement of two identical lesions (same height vs offset heights)",
    }[level]


def parse_balance(balance: float | Sequence[float]) -> float:
    """Accept a fraction of class 1 or a pair of class weights."""
    if isinstance(balance, (list, tuple)):
        if len(balance) != 2 or min(balance) <= 0:
            raise ConfigError(f"phantom balance as weights needs two positive numbers, got {balance!r}")
        return float(balance[1]) / float(sum(balance))
    return float(balance)
