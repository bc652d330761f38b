"""``TTLModel``: a backbone kept up to a cut point, global average pooling and a linear head."""

from __future__ import annotations

import os
from collections import OrderedDict

import torch
from torch import nn

from ttl.errors import ConfigError, WeightsUnavailableError
from ttl.models.cuts import CutInfo, cut_info, empty_model, family, feature_info
from ttl.models.data_config import DataConfig, source_data_config
from ttl.models.sources import bn_eps, source_state_dict


class TTLModel(nn.Module):
    """Backbone (torchvision module names kept) + pool + linear head.

    ``frozen`` lists module prefixes (relative to ``backbone``) that get no gradients and stay in
    eval mode even under ``model.train()``, so frozen batch-norm statistics never drift.
    ``pretrained_cfg`` is the source's :class:`~ttl.models.data_config.DataConfig`;
    ``data_config`` what the trained network is fed (None until :func:`ttl.train.fit` or
    :func:`ttl.train.runs.load_run` sets it).
    """

    def __init__(self, arch: str, backbone: nn.Module, cut: CutInfo, num_classes: int,
                 pool: str = "avg", final_relu: bool = False, source: str = "scratch") -> None:
        super().__init__()
        self.arch = arch
        self.cut = cut
        self.source = str(source)
        self.backbone = backbone
        self.final_relu = final_relu
        if final_relu:  # a module (no parameters), so that hooks such as Grad-CAM's can see it
            self.final_act = nn.ReLU()
        self.out_channels = cut.channels
        if pool == "avg":
            self.pool: nn.Module = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        elif pool == "max":
            self.pool = nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(1))
        else:
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.head = nn.Linear(cut.channels, num_classes)
        self.frozen: list[str] = []
        self.data_config: DataConfig | None = None

    @property
    def pretrained_cfg(self) -> DataConfig:
        """The source's data config: the statistics it was trained with, three channels, any size."""
        return source_data_config(self.source, self.arch)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map at the cut (N, C, h, w)."""
        x = self.backbone(x)
        return self.final_act(x) if self.final_relu else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))

    def block_modules(self) -> list[tuple[str, list[nn.Module]]]:
        """The kept blocks in cut order: (cut name, its modules)."""
        mods = dict(self.backbone.named_modules())
        out = []
        for info in feature_info(self.arch)[: self.cut.index + 1]:
            out.append((info.name, [mods[m] for m in info.modules]))
        return out

    def last_block(self) -> nn.Module:
        """The module whose output is the cut, i.e. the last module of the last kept block after
        its activation (the default Grad-CAM target): a ResNet block (which ends with its ReLU),
        the stem's max-pool, a DenseNet block or transition, or for DenseNet's full cut the ReLU
        that follows ``norm5``."""
        if self.final_relu:
            return self.final_act
        return self.block_modules()[-1][1][-1]

    def freeze(self, prefixes: list[str]) -> None:
        """Freeze backbone modules whose names start with any prefix (no grad, eval mode)."""
        self.frozen = list(prefixes)
        for name, p in self.backbone.named_parameters():
            if _matches(name, self.frozen):
                p.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> TTLModel:
        super().train(mode)
        if mode and self.frozen:
            for name, m in self.backbone.named_modules():
                if name and _matches(name, self.frozen):
                    m.eval()
        return self

    def extra_repr(self) -> str:
        return f"arch={self.arch}, cut={self.cut.name!r}, channels={self.out_channels}, source={self.source!r}"


def _matches(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _truncate_resnet(model: nn.Module, cut: CutInfo) -> nn.Module:
    parts: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=model.conv1, bn1=model.bn1, relu=model.relu, maxpool=model.maxpool)
    if cut.name != "stem":
        stage, idx = cut.name.removeprefix("layer").split(".")
        for s in range(1, int(stage) + 1):
            layer = getattr(model, f"layer{s}")
            parts[f"layer{s}"] = layer if s < int(stage) else layer[: int(idx) + 1]
    return nn.Sequential(parts)


def _truncate_densenet(model: nn.Module, arch: str, cut: CutInfo) -> nn.Module:
    kept = feature_info(arch)[: cut.index + 1]
    names = [m.removeprefix("features.") for info in kept for m in info.modules]
    features = nn.Sequential(OrderedDict((n, getattr(model.features, n)) for n in names))
    return nn.Sequential(OrderedDict(features=features))


def truncate(model: nn.Module, arch: str, cut: CutInfo) -> tuple[nn.Module, bool]:
    """The backbone of ``model`` up to ``cut`` (sharing modules) and whether a final ReLU follows.

    Module names inside the backbone are torchvision's (``layer3.5``, ``features.denseblock2``).
    DenseNet applies a ReLU after ``norm5`` in its ``forward``: kept when the cut is the full stack.
    """
    if family(arch) == "resnet":
        return _truncate_resnet(model, cut), False
    return _truncate_densenet(model, arch, cut), cut.name == "denseblock4"


def load_backbone_weights(model: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """Load a source state dict into a full torchvision model, ignoring its classifier."""
    head = ("fc.", "classifier.")
    state = {k: v for k, v in state.items() if not k.startswith(head)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).split("\n\t")[1] if "\n\t" in str(exc) else str(exc)[:300]
        raise WeightsUnavailableError(f"weights do not fit {arch}: {first}") from exc
    missing = [k for k in missing if not k.startswith(head)]
    if missing or unexpected:
        raise WeightsUnavailableError(
            f"weights do not fit {arch}: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")


def set_bn_eps(model: nn.Module, eps: float) -> None:
    """Set ``eps`` of every batch-norm layer (e.g. Keras' 1.001e-5 for weights trained with Keras)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eps = eps


def build(arch: str, cut: str | int | None = None, num_classes: int = 2,
          source: str | os.PathLike = "imagenet", pool: str = "avg", sha256: str | None = None,
          seed: int | None = None) -> TTLModel:
    """A pretrained ``arch`` kept up to ``cut`` (None = full) with global pooling and a linear head.

    The discarded layers are dropped: their parameters are not held by the returned model.
    Batch-norm layers take the source's eps when it differs from torch's (:func:`bn_eps`).
    ``seed`` makes the random parts (head, scratch weights) reproducible.
    """
    info = cut_info(arch, cut)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    if seed is not None:
        torch.manual_seed(seed)
    full = empty_model(arch)
    eps = bn_eps(source, arch)
    if eps is not None:
        set_bn_eps(full, eps)
    state = source_state_dict(source, arch, sha256=sha256)
    if state is not None:
        load_backbone_weights(full, state, arch)
    backbone, final_relu = truncate(full, arch, info)
    model = TTLModel(arch, backbone, info, num_classes, pool=pool, final_relu=final_relu, source=str(source))
    return model


def describe(model: TTLModel) -> dict[str, object]:
    """A JSON-friendly summary: arch, cut, channels, parameter counts, normalisation."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    own = getattr(model, "data_config", None)  # what training fed it, else its source's
    cfg = own if isinstance(own, DataConfig) else model.pretrained_cfg
    mean, std = cfg.mean, cfg.std
    return {"arch": model.arch, "cut": model.cut.name, "cut_index": model.cut.index,
            "channels": model.out_channels, "params": total, "trainable_params": trainable,
            "source": model.source, "mean": list(mean), "std": list(std)}
