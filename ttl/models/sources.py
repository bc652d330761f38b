"""Where pretrained weights come from: a small registry of named sources.

- ``"imagenet"``: torchvision's weights enums (``get_model_weights(arch).DEFAULT``), downloaded with
  torch's standard cache (``$TORCH_HOME/hub/checkpoints``). Offline, a clear error says so and how
  to place the file by hand.
- ``"scratch"``: random initialisation (torchvision's own init).
- ``"fractal"``: formula-driven (FractalDB-style) pretraining shipped under ``weights/`` and listed
  in ``weights/manifest.json`` with sha256 and provenance; loads offline.
- a path to a checkpoint (a state dict of the torchvision model, optionally wrapped in
  ``{"state_dict": ...}``), checked against a sha256 when one is given.

Every source also says which normalisation its network expects (:func:`normalization`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ttl.errors import ChecksumError, ConfigError, WeightsUnavailableError
from ttl.provenance import read_json, sha256_file

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_DIR = Path(os.environ.get("TTL_WEIGHTS_DIR", Path(__file__).resolve().parents[2] / "weights"))

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


@register_source("imagenet")
def _imagenet(arch: str) -> StateDict:
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).DEFAULT
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
    """The manifest of shipped checkpoints (``{}`` when none is shipped)."""
    path = Path(weights_dir or WEIGHTS_DIR) / "manifest.json"
    return read_json(path) if path.exists() else {}


def _manifest_entry(source: str, arch: str) -> dict[str, Any]:
    manifest = weights_manifest()
    entries = manifest.get("weights", manifest)
    entry = entries.get(arch) if isinstance(entries, dict) else None
    if entry is None:
        have = ", ".join(sorted(entries)) if isinstance(entries, dict) and entries else "none"
        raise WeightsUnavailableError(
            f"no {source!r} weights shipped for {arch} in {WEIGHTS_DIR / 'manifest.json'} "
            f"(shipped: {have}). Make them with `ttl pretrain --arch {arch} --register`, "
            f"or use source='imagenet' / 'scratch' / a checkpoint path.")
    return entry


@register_source("fractal")
def _fractal(arch: str) -> StateDict:
    entry = _manifest_entry("fractal", arch)
    return load_checkpoint(WEIGHTS_DIR / entry["file"], sha256=entry.get("sha256"))


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
    if isinstance(source, str) and source in _LOADERS:
        return _LOADERS[source](arch)
    path = Path(source)
    if path.suffix in {".pt", ".pth", ".bin", ".ckpt"} or path.exists():
        return load_checkpoint(path, sha256=sha256)
    raise ConfigError(f"unknown weight source {source!r}: use one of {', '.join(available_sources())} "
                      f"or a path to a checkpoint file")


def normalization(source: str | os.PathLike, arch: str | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the source's network was trained with (ImageNet statistics by default)."""
    if source == "fractal" and arch is not None:
        try:
            entry = _manifest_entry("fractal", arch)
            return tuple(entry["mean"]), tuple(entry["std"])
        except (WeightsUnavailableError, KeyError):
            pass
    return IMAGENET_MEAN, IMAGENET_STD
