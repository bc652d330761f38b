"""Natural cut points of torchvision CNNs: block boundaries that never cut a skip connection.

ResNets: the stem (conv1, bn1, relu, maxpool), then after every residual block
(``layer1.0`` ... ``layer4.2`` for ResNet-50: 17 cuts). DenseNets: the stem, then after every dense
block and every transition (``denseblock1``, ``transition1``, ..., ``denseblock4``; the last one also
keeps ``norm5`` and the final ReLU, i.e. the full feature stack).

Like timm's ``feature_info``, :func:`feature_info` gives each cut's channel count and reduction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn

from ttl.errors import ConfigError

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
           "wide_resnet50_2", "wide_resnet101_2")
DENSENETS = ("densenet121", "densenet161", "densenet169", "densenet201")
SUPPORTED_ARCHS = RESNETS + DENSENETS


@dataclass(frozen=True)
class CutInfo:
    """One cut point: its name, the modules of the block that ends there, output channels, stride."""

    index: int
    name: str
    modules: tuple[str, ...]
    channels: int
    reduction: int
    stage: int

    def as_dict(self) -> dict[str, object]:
        return {"index": self.index, "name": self.name, "modules": list(self.modules),
                "channels": self.channels, "reduction": self.reduction, "stage": self.stage}


def family(arch: str) -> str:
    """``"resnet"`` or ``"densenet"``; a ConfigError for anything else."""
    if arch in RESNETS:
        return "resnet"
    if arch in DENSENETS:
        return "densenet"
    raise ConfigError(
        f"unknown architecture {arch!r}: supported are {', '.join(SUPPORTED_ARCHS)}")


def empty_model(arch: str) -> nn.Module:
    """The torchvision model with random weights (no download)."""
    import torchvision

    family(arch)
    return torchvision.models.get_model(arch, weights=None)


def _resnet_blocks(model: nn.Module) -> list[tuple[str, tuple[str, ...], int]]:
    blocks = [("stem", ("conv1", "bn1", "relu", "maxpool"), 0)]
    for stage in range(1, 5):
        layer = getattr(model, f"layer{stage}")
        for i in range(len(layer)):
            blocks.append((f"layer{stage}.{i}", (f"layer{stage}.{i}",), stage))
    return blocks


def _densenet_blocks(model: nn.Module) -> list[tuple[str, tuple[str, ...], int]]:
    blocks = [("stem", ("features.conv0", "features.norm0", "features.relu0", "features.pool0"), 0)]
    for stage in range(1, 5):
        if stage < 4:
            blocks.append((f"denseblock{stage}", (f"features.denseblock{stage}",), stage))
            blocks.append((f"transition{stage}", (f"features.transition{stage}",), stage))
        else:
            blocks.append(("denseblock4", ("features.denseblock4", "features.norm5"), stage))
    return blocks


@lru_cache(maxsize=None)
def feature_info(arch: str) -> tuple[CutInfo, ...]:
    """Every cut point of ``arch`` with channels and reduction, measured by a tiny forward pass.

    Leaves torch's global random state as it found it (the result is cached: a first call that
    drew random weights would make ``manual_seed(s); build(...)`` depend on the call history)."""
    fam = family(arch)
    with torch.random.fork_rng(devices=[]):  # the throw-away model must not move the global RNG:
        model = empty_model(arch).eval()     # a later seeded build would depend on the cache
    blocks = _resnet_blocks(model) if fam == "resnet" else _densenet_blocks(model)
    modules = dict(model.named_modules())
    x = torch.zeros(1, 3, 64, 64)
    out: list[CutInfo] = []
    with torch.no_grad():
        for i, (name, mods, stage) in enumerate(blocks):
            for m in mods:
                x = modules[m](x)
            out.append(CutInfo(i, name, mods, int(x.shape[1]), 64 // int(x.shape[-1]), stage))
    return tuple(out)


def cut_points(arch: str) -> list[str]:
    """The ordered natural cut points of ``arch`` (e.g. 17 for resnet50, 9 for resnet18)."""
    return [c.name for c in feature_info(arch)]


def cut_info(arch: str, cut: str | int | None) -> CutInfo:
    """Look a cut up by name or 0-based index; ``None`` is the last cut (the full model)."""
    infos = feature_info(arch)
    if cut is None:
        return infos[-1]
    if isinstance(cut, int) and not isinstance(cut, bool):
        if not -len(infos) <= cut < len(infos):
            raise ConfigError(f"cut index {cut} out of range for {arch} (0..{len(infos) - 1})")
        return infos[cut]
    for info in infos:
        if info.name == cut:
            return info
    aliases = {"maxpool": "stem", "features.pool0": "stem", "full": infos[-1].name}
    if cut in aliases:
        return cut_info(arch, aliases[cut])
    raise ConfigError(f"unknown cut {cut!r} for {arch}; valid cuts: {', '.join(c.name for c in infos)}")


def stage_boundaries(arch: str) -> list[str]:
    """The last cut of every stage (used by the coarse step of the hierarchical search)."""
    infos = feature_info(arch)
    last: dict[int, str] = {}
    for info in infos:
        last[info.stage] = info.name
    return [last[s] for s in sorted(last) if s > 0]
