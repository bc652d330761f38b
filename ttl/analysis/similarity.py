"""Layer-by-layer similarity of two models (with a random baseline) and across layers of one.

Typical use (Peng et al. Fig. 4): the same blocks of a pretrained and a finetuned network,
compared on the same images with SVCCA, each against the band of uncorrelated random features
of the same shapes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ttl.analysis.baseline import Measure, RandomBaseline, check_measure, random_baseline
from ttl.analysis.capture import Reducer, _as_images, capture, check_layers, spatial_pool
from ttl.analysis.cka import linear_cka
from ttl.analysis.conv import (DEFAULT_MAX_SAMPLES, Mode, check_mode, common_size, pool_to,
                               position_indices)
from ttl.analysis.svcca import Keep, svcca
from ttl.errors import ConfigError

LayerPairs = Sequence[str | tuple[str, str]] | Mapping[str, str]


def _pairs(layers: LayerPairs) -> list[tuple[str, str]]:
    if isinstance(layers, str):
        layers = [layers]
    if isinstance(layers, Mapping):
        pairs = [(str(a), str(b)) for a, b in layers.items()]
    else:
        pairs = []
        for item in layers:
            if isinstance(item, str):
                pairs.append((item, item))
            elif isinstance(item, (tuple, list)) and len(item) == 2:
                pairs.append((str(item[0]), str(item[1])))
            else:
                raise ConfigError(f"layers: expected names or (name_a, name_b) pairs, got {item!r}")
    if not pairs:
        raise ConfigError("layers: give at least one layer")
    return pairs


def output_shapes(model: nn.Module, images: Any, layers: Sequence[str],
                  device: str | torch.device = "cpu") -> dict[str, tuple[int, ...]]:
    """Shape of each layer's output for one image (leading dimension 1)."""
    x = _as_images(images)[:1]
    names = list(dict.fromkeys(check_layers(model, layers)))
    out = capture(model, x, {n: (lambda t, _s, _n: t) for n in names}, batch_size=1, device=device)
    return {n: tuple(out[n].shape) for n in names}


def _positions_reducer(n_total: int, size: tuple[int, int], max_samples: int | None,
                       seed: int) -> Reducer:
    img, row, col = position_indices(n_total, size[0], size[1], max_samples, seed)

    def reduce(t: torch.Tensor, start: int, _n: int) -> torch.Tensor:
        pooled = pool_to(t, size)
        sel = (img >= start) & (img < start + t.shape[0])
        idx = [torch.as_tensor(v[sel], device=t.device) for v in (img - start, row, col)]
        return pooled[idx[0], :, idx[1], idx[2]]
    return reduce


def _features(model: nn.Module, images: torch.Tensor, shapes: Mapping[str, tuple[int, ...]],
              targets: Mapping[str, tuple[int, int]], mode: str, max_samples: int | None,
              seed: int, batch_size: int, device: str | torch.device, progress: bool
              ) -> dict[str, np.ndarray]:
    """(samples, features) float64 matrices per layer, reduced batch by batch."""
    reducers: dict[str, Reducer] = {}
    for name, shape in shapes.items():
        if len(shape) not in (2, 4):
            raise ConfigError(f"layer {name!r} outputs shape {shape}; only (N, F) and (N, C, H, W) "
                              "outputs can be compared")
        if mode == "positions" and len(shape) == 4:
            reducers[name] = _positions_reducer(images.shape[0], targets[name], max_samples, seed)
        else:
            reducers[name] = lambda t, _s, _n: spatial_pool(t)
    out = capture(model, images, reducers, batch_size=batch_size, device=device, progress=progress)
    return {name: t.double().numpy() for name, t in out.items()}


def _similarity(a: np.ndarray, b: np.ndarray, measure: str, keep: Keep, epsilon: float
                ) -> tuple[float, list[float] | None, int | None, int | None]:
    if measure == "cka":
        return linear_cka(a, b), None, None, None
    res = svcca(a, b, keep=keep, epsilon=epsilon)
    return res.mean, res.coefficients.tolist(), res.kept_a, res.kept_b


def layer_similarity(model_a: nn.Module, model_b: nn.Module, images: Any, layers: LayerPairs,
                     measure: Measure = "svcca", mode: Mode = "pool", *, keep: Keep = 0.99,
                     epsilon: float = 1e-10, max_samples: int | None = DEFAULT_MAX_SAMPLES,
                     baseline_draws: int = 10, quantiles: tuple[float, float] = (0.025, 0.975),
                     batch_size: int = 64, device: str | torch.device = "cpu", seed: int = 0,
                     progress: bool = False) -> pd.DataFrame:
    """Similarity of the same (or paired) layers of two models on the same images.

    ``layers``: names in ``named_modules()`` shared by both models, ``(name_a, name_b)`` pairs, or
    a mapping name_a -> name_b. ``mode``: how conv maps become (samples, channels), see
    :mod:`ttl.analysis.conv` (in ``positions`` mode each pair is pooled to its smaller spatial
    size and the same ``max_samples`` positions are drawn for both models). The random baseline
    (``baseline_draws`` draws of Gaussian features of the same shapes; 0 to skip) gives
    ``baseline_mean``/``baseline_low``/``baseline_high``.

    Returns one row per pair: ``layer, layer_a, layer_b, measure, value, baseline_mean,
    baseline_low, baseline_high, n_samples, dim_a, dim_b, kept_a, kept_b``. For SVCCA,
    ``df.attrs["coefficients"]`` maps each layer to its coefficient curve and
    ``df.attrs["baselines"]`` to its baseline (:meth:`RandomBaseline.as_dict`).
    """
    check_measure(measure)
    check_mode(mode)
    pairs = _pairs(layers)
    x = _as_images(images)
    shapes_a = output_shapes(model_a, x, [a for a, _ in pairs], device)
    shapes_b = output_shapes(model_b, x, [b for _, b in pairs], device)
    targets_a: dict[str, tuple[int, int]] = {}
    targets_b: dict[str, tuple[int, int]] = {}
    if mode == "positions":
        for la, lb in pairs:
            sa, sb = shapes_a[la], shapes_b[lb]
            if (len(sa) == 4) != (len(sb) == 4):
                raise ConfigError(f"positions mode: {la!r} {sa} and {lb!r} {sb} are not both "
                                  "conv maps; use mode='pool'")
            if len(sa) == 4:
                t = common_size(sa, sb)
                targets_a[la] = common_size(targets_a[la], t) if la in targets_a else t
                targets_b[lb] = common_size(targets_b[lb], t) if lb in targets_b else t
        for la, lb in pairs:
            if la in targets_a and targets_a[la] != targets_b[lb]:
                raise ConfigError(f"positions mode: {la!r} and {lb!r} end up at different spatial "
                                  "sizes because they appear in several pairs; compare them in "
                                  "separate calls or use mode='pool'")
    feats_a = _features(model_a, x, shapes_a, targets_a, mode, max_samples, seed, batch_size,
                        device, progress)
    feats_b = _features(model_b, x, shapes_b, targets_b, mode, max_samples, seed, batch_size,
                        device, progress)
    rows, curves, baselines = [], {}, {}
    cache: dict[tuple[int, int, int], RandomBaseline] = {}
    for la, lb in tqdm(pairs, desc=f"{measure} per layer", disable=not progress):
        a, b = feats_a[la], feats_b[lb]
        label = la if la == lb else f"{la} / {lb}"
        value, coefs, ka, kb = _similarity(a, b, measure, keep, epsilon)
        row = dict(layer=label, layer_a=la, layer_b=lb, measure=measure, value=value,
                   baseline_mean=np.nan, baseline_low=np.nan, baseline_high=np.nan,
                   n_samples=a.shape[0], dim_a=a.shape[1], dim_b=b.shape[1], kept_a=ka, kept_b=kb)
        if baseline_draws > 0:
            key = (a.shape[0], a.shape[1], b.shape[1])
            if key not in cache:
                cache[key] = random_baseline(*key, measure=measure, draws=baseline_draws,
                                             keep=keep, epsilon=epsilon, seed=seed,
                                             quantiles=quantiles)
            base = cache[key]
            row.update(baseline_mean=base.mean, baseline_low=base.low, baseline_high=base.high)
            baselines[label] = base.as_dict()
        if coefs is not None:
            curves[label] = coefs
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs.update(coefficients=curves, baselines=baselines,
                    params=dict(measure=measure, mode=mode, keep=keep, epsilon=epsilon,
                                max_samples=max_samples, baseline_draws=baseline_draws,
                                quantiles=list(quantiles), seed=seed))
    return df


def cross_layer_similarity(model: nn.Module, images: Any, layers: Sequence[str],
                           measure: Measure = "cka", mode: Mode = "pool", *, keep: Keep = 0.99,
                           epsilon: float = 1e-10, max_samples: int | None = DEFAULT_MAX_SAMPLES,
                           batch_size: int = 64, device: str | torch.device = "cpu",
                           seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Symmetric matrix (DataFrame indexed by layer) of similarities between layers of one model.

    In ``positions`` mode every conv map is first pooled to the smallest spatial size among the
    layers, so that positions correspond.
    """
    check_measure(measure)
    check_mode(mode)
    names = list(dict.fromkeys([layers] if isinstance(layers, str) else layers))
    x = _as_images(images)
    shapes = output_shapes(model, x, names, device)
    targets: dict[str, tuple[int, int]] = {}
    if mode == "positions":
        dims = {len(s) for s in shapes.values()}
        if dims != {4}:
            raise ConfigError("positions mode needs conv maps (N, C, H, W) at every layer; "
                              "use mode='pool'")
        size = common_size(*shapes.values())
        targets = dict.fromkeys(names, size)
    feats = _features(model, x, shapes, targets, mode, max_samples, seed, batch_size, device,
                      progress)
    mat = np.eye(len(names))
    todo = [(i, j) for i in range(len(names)) for j in range(i, len(names))]
    for i, j in tqdm(todo, desc=f"{measure} across layers", disable=not progress):
        mat[i, j] = mat[j, i] = _similarity(feats[names[i]], feats[names[j]], measure, keep,
                                            epsilon)[0]
    return pd.DataFrame(mat, index=names, columns=names)
