"""FractalDB-style images from random iterated function systems (Kataoka et al., ACCV 2020 / IJCV 2022).

One class is one IFS code: ``n`` affine maps ``(x, y) -> (a x + b y + e, c x + d y + f)`` whose six
parameters are drawn uniformly from [-1, 1], each map chosen with probability proportional to
``|a d - b c|``. A code is kept only if its rendered attractor covers at least ``fill_rate`` of the
image (the paper's "filling rate", 0.2 at 512 px with 100k points), so degenerate dots, lines and
divergent systems are discarded.

Instances of a class follow the paper's intra-category expansion: one of the six parameters
(the same one in every map) is multiplied by a factor in {0.8, 0.9, 1.0, 1.1, 1.2} (25 distinct
variants), the image is flipped (none, vertical, horizontal, both: 4 variants), and each image has
its own chaos-game randomness. Probabilities are kept from the base code, as in the original.

Rendering runs the chaos game for many images and many chains per image at once: every step is
a handful of tensor ops over all chains, so it runs on the GPU when ``device`` is CUDA. Points
are drawn in grey (value 127 on black, as FractalDB's grey variant), either as single pixels
(``mode="point"``) or as random 3x3 patches (``mode="patch"``, the paper's patch rendering).
Images are single-channel uint8; training repeats them to 3 channels (grey suits the grey
target phantoms and medical images).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ttl.errors import ConfigError
from ttl.seeding import derive_seed
from ttl.train.loop import resolve_device

# Normalisation used by FractalDB's pre-training (on [0, 1] pixel values), 3 channels.
FRACTAL_MEAN = (0.2, 0.2, 0.2)
FRACTAL_STD = (0.5, 0.5, 0.5)
POINT_VALUE = 127
JITTER_FACTORS = (0.8, 0.9, 1.1, 1.2)
N_FLIPS = 4
# The paper's search: fill rate >= 0.2 on 512 x 512 images of 100k points. We search at a smaller
# size with the same number of points per pixel.
PAPER_FILL_RATE = 0.2
PAPER_POINTS_PER_PIXEL = 100_000 / 512**2

_BURN_IN = 24      # chaos-game steps discarded per chain (transient towards the attractor)
_STEPS = 64        # recorded steps per chain; chains per image = ceil(n_points / _STEPS)
_REDRAWS = 3       # new weightings tried for a degenerate instance before the unweighted code
_DIVERGED = 1e6    # coordinates beyond this are treated as escaped points


def _generator(seed: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed) & (2**63 - 1))
    return g


def _pad(size: int) -> int:
    """Border left free around the fractal (FractalDB: 6 px of 512)."""
    return max(1, round(size * 6 / 512))


def filling_rate(images: torch.Tensor) -> torch.Tensor:
    """Fraction of non-zero pixels per image, shape (N,), for uint8 images (N, [C,] H, W)."""
    flat = images.reshape(images.shape[0], -1)
    return (flat != 0).float().mean(dim=1)


def _random_codes(n: int, n_maps: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    """``n`` random IFS codes (n, max_maps, 7): columns a b c d e f p; unused maps have p = 0."""
    lo, hi = n_maps
    counts = torch.randint(lo, hi + 1, (n,), generator=g)
    params = torch.rand((n, hi, 6), generator=g, dtype=torch.float64) * 2 - 1
    used = torch.arange(hi)[None, :] < counts[:, None]
    params = params * used[..., None]
    det = (params[..., 0] * params[..., 3] - params[..., 1] * params[..., 2]).abs()
    prob = det / det.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return torch.cat([params, prob[..., None]], dim=-1).float()


def sample_ifs_codes(n_classes: int, seed: int, *, n_maps: tuple[int, int] = (2, 4),
                     fill_rate: float = PAPER_FILL_RATE, search_size: int = 256,
                     search_points: int | None = None, batch: int = 1024,
                     max_tries: int = 200_000, progress: bool = False) -> torch.Tensor:
    """Search ``n_classes`` IFS codes whose attractor fills at least ``fill_rate`` of the image.

    Returns float32 (n_classes, n_maps[1], 7), rows ``[a, b, c, d, e, f, p]`` (``p`` sums to 1 per
    code; padded maps are all zero). Candidates are rendered at ``search_size`` px with
    ``search_points`` points (default: the paper's 100k points per 512^2 pixels, scaled). The
    search always runs on the CPU, so the codes depend only on the arguments, not the device.
    """
    if n_classes < 1:
        raise ConfigError(f"n_classes must be >= 1, got {n_classes}")
    lo, hi = n_maps
    if not 1 <= lo <= hi:
        raise ConfigError(f"n_maps must be (min, max) with 1 <= min <= max, got {n_maps}")
    if not 0.0 <= fill_rate < 1.0:
        raise ConfigError(f"fill_rate must be in [0, 1), got {fill_rate}")
    if search_points is None:
        search_points = max(1000, round(PAPER_POINTS_PER_PIXEL * search_size**2))
    g = _generator(derive_seed(seed, "ifs-codes"), torch.device("cpu"))
    kept: list[torch.Tensor] = []
    tried = 0
    bar = tqdm(total=n_classes, desc="IFS search", unit="class", disable=not progress, leave=False)
    while sum(len(k) for k in kept) < n_classes:
        if tried >= max_tries:
            raise ConfigError(
                f"found only {sum(len(k) for k in kept)} of {n_classes} IFS codes with filling rate "
                f">= {fill_rate} in {tried} candidates: lower fill_rate or raise max_tries")
        cand = _random_codes(batch, (lo, hi), g)
        # cheap pre-filter at a quarter of the size (same points per pixel): a coarse image is
        # filled at least about as much as a fine one, so with a margin it rejects no keeper
        small = max(16, search_size // 4)
        imgs = render(cand, max(300, search_points * small**2 // search_size**2), small,
                      seed=derive_seed(seed, "prefilter", tried), device="cpu", mode="point")
        cand = cand[filling_rate(imgs) >= 0.8 * fill_rate]
        if len(cand):
            imgs = render(cand, search_points, search_size, seed=derive_seed(seed, "search", tried),
                          device="cpu", mode="point")
            kept.append(cand[filling_rate(imgs) >= fill_rate])
        tried += batch
        bar.update(min(sum(len(k) for k in kept), n_classes) - bar.n)
    bar.close()
    return torch.cat(kept)[:n_classes].contiguous()


def jitter_codes(codes: torch.Tensor, param: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Multiply parameter ``param[i]`` (0..5 = a..f) of every map of ``codes[i]`` by ``factor[i]``."""
    out = codes.clone()
    idx = param.long().to(codes.device)
    rows = torch.arange(codes.shape[0], device=codes.device)
    out[rows, :, idx] = codes[rows, :, idx] * factor.to(codes)[:, None]
    return out


def instance_variants(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random (param, factor, flip) for ``n`` instances: one of FractalDB's 25 weightings x 4 flips.

    Variant 0 is the unweighted code; variants 1..24 weight parameter ``(v-1) // 4`` by
    ``JITTER_FACTORS[(v-1) % 4]``.
    """
    n_var = 1 + 6 * len(JITTER_FACTORS)
    v = torch.randint(0, n_var, (n,), generator=g)
    flips = torch.randint(0, N_FLIPS, (n,), generator=g)
    factors = torch.tensor((1.0, *JITTER_FACTORS))
    param = torch.where(v == 0, torch.zeros_like(v), (v - 1) // len(JITTER_FACTORS))
    factor = torch.where(v == 0, factors[0], factors[1 + (v - 1).clamp_min(0) % len(JITTER_FACTORS)])
    return param, factor, flips


def _chaos_points(codes: torch.Tensor, n_points: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the chaos game for all codes at once: points (B, P, 2) and a validity mask (B, P)."""
    b, m, _ = codes.shape
    dev = codes.device
    chains = math.ceil(n_points / _STEPS)
    cum = codes[..., 6].cumsum(dim=1)
    cum = cum / cum[:, -1:].clamp_min(1e-12)
    cum = torch.where(cum > 1 - 1e-5, torch.full_like(cum, 2.0), cum)  # rounding: never pick padding
    coef = codes[..., :6]
    x = torch.rand((b, chains), generator=g, device=dev) * 2 - 1
    y = torch.rand((b, chains), generator=g, device=dev) * 2 - 1
    xs = torch.empty((b, chains, _STEPS), device=dev)
    ys = torch.empty((b, chains, _STEPS), device=dev)
    for step in range(_BURN_IN + _STEPS):
        u = torch.rand((b, chains, 1), generator=g, device=dev)
        k = (u > cum[:, None, :]).sum(dim=-1).clamp_max(m - 1)          # (B, chains)
        p = torch.gather(coef, 1, k[..., None].expand(b, chains, 6))     # (B, chains, 6)
        x, y = (p[..., 0] * x + p[..., 1] * y + p[..., 4],
                p[..., 2] * x + p[..., 3] * y + p[..., 5])
        # escaped chains would overflow to inf/nan: pin them (and mark them invalid below)
        x = torch.nan_to_num(x, nan=2 * _DIVERGED, posinf=2 * _DIVERGED, neginf=-2 * _DIVERGED).clamp(-2 * _DIVERGED, 2 * _DIVERGED)
        y = torch.nan_to_num(y, nan=2 * _DIVERGED, posinf=2 * _DIVERGED, neginf=-2 * _DIVERGED).clamp(-2 * _DIVERGED, 2 * _DIVERGED)
        if step >= _BURN_IN:
            xs[..., step - _BURN_IN] = x
            ys[..., step - _BURN_IN] = y
    pts = torch.stack([xs.reshape(b, -1)[:, :n_points], ys.reshape(b, -1)[:, :n_points]], dim=-1)
    valid = (pts.abs() < _DIVERGED).all(dim=-1)
    return pts, valid


def _rasterise(pts: torch.Tensor, valid: torch.Tensor, size: int, mode: str,
               g: torch.Generator) -> torch.Tensor:
    """Scale each image's points into [pad, size - pad] (min/max as FractalDB) and draw them."""
    b = pts.shape[0]
    dev = pts.device
    pad = _pad(size)
    big = torch.finfo(pts.dtype).max
    lo = torch.where(valid[..., None], pts, torch.full_like(pts, big)).amin(dim=1)     # (B, 2)
    hi = torch.where(valid[..., None], pts, torch.full_like(pts, -big)).amax(dim=1)
    has = valid.any(dim=1)
    lo = torch.where(has[:, None], lo, torch.zeros_like(lo))
    span = torch.where(has[:, None], hi - lo, torch.ones_like(lo)).clamp_min(1e-12)
    extent = size - 2 * pad - (3 if mode == "patch" else 1)
    ij = ((pts - lo[:, None, :]) / span[:, None, :] * extent + pad).round().long()
    ij = ij.clamp(0, size - 1)
    ix, iy = ij[..., 0], ij[..., 1]
    base = torch.arange(b, device=dev)[:, None] * size * size
    img = torch.zeros(b * size * size, dtype=torch.uint8, device=dev)
    if mode == "point":
        flat = (base + iy * size + ix)[valid]
        img[flat] = POINT_VALUE
    else:  # random 3x3 patch per point: a non-empty 9-bit mask (FractalDB's patch rendering)
        masks = torch.randint(1, 512, ix.shape, generator=g, device=dev)
        for bit in range(9):
            dy, dx = divmod(bit, 3)
            sel = valid & ((masks >> (8 - bit)) & 1).bool()
            px, py = (ix + dx).clamp_max(size - 1), (iy + dy).clamp_max(size - 1)
            img[(base + py * size + px)[sel]] = POINT_VALUE
    return img.view(b, 1, size, size)


def render(codes: torch.Tensor, n_points: int, size: int, seed: int,
           device: str | torch.device | None = "cpu", *, flips: torch.Tensor | None = None,
           mode: str = "point", chunk_points: int | None = None,
           progress: bool = False) -> torch.Tensor:
    """Render one image per IFS code: uint8 (B, 1, size, size), points of value 127 on black.

    ``codes``: (B, M, 7) rows ``[a, b, c, d, e, f, p]``; ``flips`` (B,) in 0..3 (none, vertical,
    horizontal, both). Deterministic for a given ``seed`` and device (CPU and CUDA random streams
    differ). Images are rendered in chunks of at most ``chunk_points`` chaos-game points.
    """
    if codes.ndim != 3 or codes.shape[-1] != 7:
        raise ConfigError(f"codes must have shape (B, M, 7), got {tuple(codes.shape)}")
    if mode not in ("point", "patch"):
        raise ConfigError(f"mode must be 'point' or 'patch', got {mode!r}")
    if n_points < 1 or size < 8:
        raise ConfigError(f"need n_points >= 1 and size >= 8, got n_points={n_points}, size={size}")
    dev = resolve_device(device)
    g = _generator(derive_seed(seed, "render"), dev)
    if chunk_points is None:
        chunk_points = 2**26 if dev.type == "cuda" else 2**21
    per = max(1, chunk_points // n_points)
    codes = codes.to(dev, torch.float32)
    out = torch.empty((codes.shape[0], 1, size, size), dtype=torch.uint8, device=dev)
    for start in tqdm(range(0, codes.shape[0], per), desc="render fractals", unit="chunk",
                      disable=not progress, leave=False):
        pts, valid = _chaos_points(codes[start:start + per], n_points, g)
        out[start:start + per] = _rasterise(pts, valid, size, mode, g)
    if flips is not None:
        flips = flips.to(dev)
        v = ((flips == 1) | (flips == 3))[:, None, None, None]
        h = ((flips == 2) | (flips == 3))[:, None, None, None]
        out = torch.where(v, out.flip(2), out)
        out = torch.where(h, out.flip(3), out)
    return out


def default_points(size: int) -> int:
    """Points per image: one per pixel, within [2k, 100k] (dense but not solid at 32-224 px)."""
    return int(min(100_000, max(2_000, size * size)))


class FractalDataset(Dataset):
    """Rendered fractal instances: ``images`` uint8 (N, 1, S, S), ``labels`` int64 (N,).

    Follows the package's ImageDataset contract (``classes``, ``task``, ``name``,
    ``__getitem__ -> (image, label)``) and keeps ``codes`` (the class IFS codes) and the
    per-instance ``variants`` (param, factor, flip).
    """

    task = "multiclass"

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, codes: torch.Tensor,
                 variants: dict[str, torch.Tensor], name: str = "fractal") -> None:
        if images.shape[0] != labels.shape[0]:
            raise ConfigError(f"images ({images.shape[0]}) and labels ({labels.shape[0]}) differ in length")
        self.images = images
        self.labels = labels
        self.codes = codes
        self.variants = variants
        self.classes = [f"ifs{i:05d}" for i in range(codes.shape[0])]
        self.name = name

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]


def make_dataset(n_classes: int, images_per_class: int, size: int, seed: int,
                 device: str | torch.device | None = "cpu", *, codes: torch.Tensor | None = None,
                 split: str = "train", n_points: int | None = None, mode: str = "point",
                 n_maps: tuple[int, int] = (2, 4), fill_rate: float = PAPER_FILL_RATE,
                 min_fill_rate: float = 0.5, progress: bool = False) -> FractalDataset:
    """A FractalDB-style dataset of ``n_classes`` x ``images_per_class`` images of ``size`` px.

    The class codes come from :func:`sample_ifs_codes` (``seed``) unless ``codes`` is given; the
    instances (weighting, flip, chaos-game randomness) depend on ``seed`` and ``split``, so
    ``split="val"`` gives fresh instances of the same classes. Instances filling less than
    ``min_fill_rate * fill_rate`` of the image are redrawn (FractalDB does not; at small sizes a
    near-empty image is a mislabelled sample). Images stay on ``device``.
    """
    if images_per_class < 1:
        raise ConfigError(f"images_per_class must be >= 1, got {images_per_class}")
    if codes is None:
        codes = sample_ifs_codes(n_classes, seed, n_maps=n_maps, fill_rate=fill_rate, progress=progress)
    elif codes.shape[0] != n_classes:
        raise ConfigError(f"codes holds {codes.shape[0]} classes but n_classes={n_classes}")
    n_points = n_points or default_points(size)
    g = _generator(derive_seed(seed, "instances", split), torch.device("cpu"))
    labels = torch.arange(n_classes).repeat_interleave(images_per_class)
    param, factor, flips = instance_variants(labels.numel(), g)
    images = render(jitter_codes(codes[labels], param, factor), n_points, size,
                    seed=derive_seed(seed, "pixels", split), device=device, flips=flips, mode=mode,
                    progress=progress)
    dev = images.device
    # A weighting can push a code over the edge (divergent or collapsed): redraw such instances
    # with another variant, and after a few tries with the unweighted code, which passed the search.
    for attempt in range(_REDRAWS + 1):
        bad = (filling_rate(images) < min_fill_rate * fill_rate).cpu()
        if not bad.any():
            break
        idx = bad.nonzero().squeeze(1)
        if attempt < _REDRAWS:
            param[idx], factor[idx], _ = instance_variants(len(idx), g)
        else:
            param[idx], factor[idx] = 0, 1.0
        images[idx.to(dev)] = render(
            jitter_codes(codes[labels[idx]], param[idx], factor[idx]), n_points, size,
            seed=derive_seed(seed, "pixels", split, attempt), device=device, flips=flips[idx], mode=mode)
    return FractalDataset(images, labels.to(dev), codes,
                          {"param": param, "factor": factor, "flip": flips},
                          name=f"fractal{n_classes}-{split}")


__all__: Sequence[str] = (
    "FRACTAL_MEAN", "FRACTAL_STD", "FractalDataset", "default_points", "filling_rate",
    "instance_variants", "jitter_codes", "make_dataset", "render", "sample_ifs_codes",
)
