"""Layer-by-layer similarity of two models and across layers of one, each with its chance level.

Typical use (Peng et al. Fig. 4): the same blocks of a pretrained and a finetuned network,
compared on the same images with SVCCA or CKA, each against its permutation null
(:func:`ttl.analysis.permutation_null`: rows shuffled between the two sides, same SVD step and
kept dimensions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ttl.analysis.capture import Reducer, _as_images, capture, check_layers, spatial_pool
from ttl.analysis.cka import linear_cka
from ttl.analysis.conv import (DEFAULT_MAX_SAMPLES, Mode, check_mode, common_size, pool_to,
                               position_indices)
from ttl.analysis.measures import get_measure
from ttl.analysis.null import Measure, PermutationNull, check_measure, check_statistic, permutation_null
from ttl.analysis.svcca import GOOGLE_THRESHOLD, Keep, svcca
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


def _similarity(a: np.ndarray, b: np.ndarray, measure: str, keep: Keep, epsilon: float,
                statistic: str = "mean", threshold: float = GOOGLE_THRESHOLD) -> dict[str, Any]:
    """The value (per ``statistic``) and the measure's details (SVCCA: both summaries, coefficients,
    kept dims): the registered measure's ``compare``."""
    return get_measure(measure).compare(a, b, keep=keep, epsilon=epsilon, statistic=statistic, threshold=threshold)


def _null(a: np.ndarray, b: np.ndarray, measure: str, draws: int, seed: int, keep: Keep,
          epsilon: float, statistic: str, threshold: float, quantiles: tuple[float, float]
          ) -> PermutationNull:
    return permutation_null(a, b, measure, draws=draws, seed=seed, keep=keep, epsilon=epsilon,
                            statistic=statistic, threshold=threshold, quantiles=quantiles)


def layer_similarity(model_a: nn.Module, model_b: nn.Module, images: Any, layers: LayerPairs,
                     measure: Measure = "svcca", mode: Mode = "pool", *, keep: Keep = 0.99,
                     epsilon: float = 1e-10, max_samples: int | None = DEFAULT_MAX_SAMPLES,
                     null_draws: int = 20, quantiles: tuple[float, float] = (0.05, 0.95),
                     statistic: str = "mean", threshold: float = GOOGLE_THRESHOLD,
                     batch_size: int = 64, device: str | torch.device = "cpu", seed: int = 0,
                     progress: bool = False) -> pd.DataFrame:
    """Similarity of the same (or paired) layers of two models on the same images.

    ``layers``: names in ``named_modules()`` shared by both models, ``(name_a, name_b)`` pairs, or
    a mapping name_a -> name_b. ``mode``: how conv maps become (samples, channels), see
    :mod:`ttl.analysis.conv` (in ``positions`` mode each pair is pooled to its smaller spatial
    size and the same ``max_samples`` positions are drawn for both models). ``statistic``
    (SVCCA): ``"mean"`` of all coefficients or google/svcca's ``"thresholded"`` mean; it is
    ``value`` and what the null is computed for. The chance level is the permutation null of
    the same comparison (``null_draws`` row permutations, same SVD step and kept dimensions;
    0 to skip): ``null_mean``, ``null_low``/``null_high`` (``quantiles``), ``p_value`` and
    ``above_null`` (value > null_high).

    Returns one row per pair: ``layer, layer_a, layer_b, measure, statistic, value, null_mean,
    null_low, null_high, p_value, above_null, n_samples, dim_a, dim_b, kept_a, kept_b`` and for
    SVCCA ``svcca_mean, svcca_thresholded, n_thresholded`` (both summaries). ``kept_*`` are the
    directions kept by the SVD step (the raw widths for CKA). For SVCCA,
    ``df.attrs["coefficients"]`` maps each layer to its coefficient curve; ``df.attrs["nulls"]``
    maps each layer to its null (:meth:`PermutationNull.as_dict`).
    """
    check_measure(measure)
    check_mode(mode)
    check_statistic(statistic)
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
    rows, curves, nulls = [], {}, {}
    for la, lb in tqdm(pairs, desc=f"{measure} per layer", disable=not progress):
        a, b = feats_a[la], feats_b[lb]
        label = la if la == lb else f"{la} / {lb}"
        sim = _similarity(a, b, measure, keep, epsilon, statistic, threshold)
        row: dict[str, Any] = dict(
            layer=label, layer_a=la, layer_b=lb, measure=measure,
            statistic=get_measure(measure).statistic_label(statistic), value=sim["value"],
            null_mean=np.nan, null_low=np.nan, null_high=np.nan, p_value=np.nan,
            above_null=None, n_samples=a.shape[0], dim_a=a.shape[1], dim_b=b.shape[1],
            kept_a=sim["kept_a"], kept_b=sim["kept_b"])
        if measure == "svcca":
            row.update(svcca_mean=sim["svcca_mean"], svcca_thresholded=sim["svcca_thresholded"],
                       n_thresholded=sim["n_thresholded"])
            curves[label] = sim["coefficients"]
        if null_draws > 0:
            null = _null(a, b, measure, null_draws, seed, keep, epsilon, statistic, threshold,
                         quantiles)
            row.update(null_mean=null.mean, null_low=null.low, null_high=null.high,
                       p_value=null.p_value, above_null=null.above)
            nulls[label] = null.as_dict()
        rows.append(row)
    df = pd.DataFrame(rows)
    df.attrs.update(coefficients=curves, nulls=nulls,
                    params=dict(measure=measure, mode=mode, keep=keep, epsilon=epsilon,
                                max_samples=max_samples, null_draws=null_draws,
                                quantiles=list(quantiles), statistic=statistic,
                                threshold=threshold, seed=seed))
    return df


def cross_layer_similarity(model: nn.Module, images: Any, layers: Sequence[str],
                           measure: Measure = "cka", mode: Mode = "pool", *, keep: Keep = 0.99,
                           epsilon: float = 1e-10, max_samples: int | None = DEFAULT_MAX_SAMPLES,
                           null_draws: int = 0, quantiles: tuple[float, float] = (0.05, 0.95),
                           statistic: str = "mean", threshold: float = GOOGLE_THRESHOLD,
                           batch_size: int = 64, device: str | torch.device = "cpu",
                           seed: int = 0, progress: bool = False) -> pd.DataFrame:
    """Symmetric matrix (DataFrame indexed by layer) of similarities between layers of one model.

    In ``positions`` mode every conv map is first pooled to the smallest spatial size among the
    layers, so that positions correspond. With ``null_draws > 0`` every off-diagonal cell also
    gets its permutation null, kept as nested lists (k x k) in ``mat.attrs``: ``null_mean``,
    ``null_high``, ``p_value``, ``above_null`` (bool; the diagonal counts as above) and, as
    per-layer lists, ``kept`` (directions kept by the SVD step, SVCCA) and ``dims``.
    :func:`cross_layer_table` turns them into a long table.
    """
    check_measure(measure)
    check_mode(mode)
    check_statistic(statistic)
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
    k = len(names)
    mat = np.eye(k)
    null_mean, null_high, p_value = np.full((k, k), np.nan), np.full((k, k), np.nan), np.zeros((k, k))
    above = np.eye(k, dtype=bool)
    kept = [0] * k
    todo = [(i, j) for i in range(k) for j in range(i, k)]
    for i, j in tqdm(todo, desc=f"{measure} across layers", disable=not progress):
        a, b = feats[names[i]], feats[names[j]]
        sim = _similarity(a, b, measure, keep, epsilon, statistic, threshold)
        mat[i, j] = mat[j, i] = sim["value"]
        kept[i], kept[j] = sim["kept_a"], sim["kept_b"]
        if null_draws > 0 and i != j:
            null = _null(a, b, measure, null_draws, seed, keep, epsilon, statistic, threshold,
                         quantiles)
            null_mean[i, j] = null_mean[j, i] = null.mean
            null_high[i, j] = null_high[j, i] = null.high
            p_value[i, j] = p_value[j, i] = null.p_value
            above[i, j] = above[j, i] = null.above
    df = pd.DataFrame(mat, index=names, columns=names)
    df.attrs.update(measure=measure, statistic=get_measure(measure).statistic_label(statistic),
                    kept=kept, dims=[int(feats[n].shape[1]) for n in names],
                    n_samples=int(feats[names[0]].shape[0]), null_draws=int(null_draws))
    if null_draws > 0:
        # nested lists, not arrays: pandas compares attrs with == (in concat, for instance)
        df.attrs.update(null_mean=null_mean.tolist(), null_high=null_high.tolist(),
                        p_value=p_value.tolist(), above_null=above.tolist(),
                        quantiles=list(quantiles))
    return df


def cross_layer_table(mat: pd.DataFrame, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """A :func:`cross_layer_similarity` matrix as one row per pair (upper triangle): ``layer_a,
    layer_b, value`` and, when it has a null, ``null_mean, null_high, p_value, above_null``,
    plus ``kept_a, kept_b`` (SVD step) and ``dim_a, dim_b``. ``labels`` rename the layers."""
    names = [str(n) for n in (labels if labels is not None else mat.index)]
    if len(names) != len(mat):
        raise ConfigError(f"cross_layer_table: {len(names)} labels for {len(mat)} layers")
    m = mat.to_numpy()
    at = {k: (np.asarray(v) if k in ("null_mean", "null_high", "p_value", "above_null") else v)
          for k, v in mat.attrs.items()}
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            row: dict[str, Any] = dict(layer_a=names[i], layer_b=names[j], value=m[i, j])
            if "null_mean" in at:
                row.update(null_mean=at["null_mean"][i, j], null_high=at["null_high"][i, j],
                           p_value=at["p_value"][i, j], above_null=bool(at["above_null"][i, j]))
            if "kept" in at:
                row.update(kept_a=at["kept"][i], kept_b=at["kept"][j], dim_a=at["dims"][i],
                           dim_b=at["dims"][j])
            rows.append(row)
    return pd.DataFrame(rows)
