"""Transfer strategies, each set up with one call.

========================  ==============================================================
``full``                  Full TL: the whole pretrained network, every layer finetuned.
``ttl``                   Truncated TL: keep blocks up to ``cut``, finetune them, new head.
``lwft``                  Layer-wise finetuning: the whole network, blocks up to ``cut`` frozen
                          (no gradients, batch-norm statistics frozen too), the rest finetuned.
``transfusion``           Raghu et al. 2019: blocks up to ``cut`` pretrained, the blocks after it
                          re-initialised; from ``slim_from`` on their width is scaled by
                          ``width`` (ResNets); everything trains.
``scratch``               Random initialisation (optionally truncated at ``cut``), all trained.
``linear_probe``          Frozen pretrained backbone up to ``cut``; only the linear head trains.
========================  ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ttl.errors import ConfigError
from ttl.registry import Registry
from ttl.models.cuts import cut_info, family, feature_info
from ttl.models.truncated import TTLModel, build

@dataclass(frozen=True)
class Strategy:
    """A registered transfer strategy: how its model is built and what it takes.

    ``build(arch, cut, num_classes, source, width, slim_from, seed)`` returns the model with its
    frozen parts set; ``takes_cut``: the strategy keeps, freezes or re-initialises up to a cut (so
    the cut search can tune it and tables label it ``name(cut)``); ``needs_cut``: it has no meaning
    without one.
    """

    name: str
    build: Callable[..., TTLModel]
    summary: str
    takes_cut: bool = True
    needs_cut: bool = False


REGISTRY: Registry[Strategy] = Registry("strategy")


def register_strategy(name: str, summary: str, takes_cut: bool = True,
                      needs_cut: bool = False) -> Callable[[Callable[..., TTLModel]], Callable[..., TTLModel]]:
    """Decorator adding a model builder to :data:`REGISTRY` (the CLI's choices, the search's
    strategies and ``prepare`` follow)."""
    def add(fn: Callable[..., TTLModel]) -> Callable[..., TTLModel]:
        REGISTRY.add(name, Strategy(name, fn, summary, takes_cut, needs_cut))
        return fn
    return add


@register_strategy("full", "the whole pretrained network, every layer finetuned", takes_cut=False)
def _full(arch, cut, num_classes, source, width, slim_from, seed):
    return build(arch, None, num_classes, source=source, seed=seed)


@register_strategy("ttl", "blocks up to the cut, finetuned, with a new head")
def _ttl(arch, cut, num_classes, source, width, slim_from, seed):
    return build(arch, cut, num_classes, source=source, seed=seed)


@register_strategy("lwft", "the whole network with blocks up to the cut frozen", needs_cut=True)
def _lwft(arch, cut, num_classes, source, width, slim_from, seed):
    model = build(arch, None, num_classes, source=source, seed=seed)
    info = cut_info(arch, cut)
    model.freeze([m for c in feature_info(arch)[: info.index + 1] for m in c.modules])
    return model


@register_strategy("transfusion", "blocks up to the cut pretrained, the rest re-initialised (and slimmed)",
                   needs_cut=True)
def _transfusion(arch, cut, num_classes, source, width, slim_from, seed):
    return transfusion(arch, cut, num_classes, source=source, width=width, slim_from=slim_from, seed=seed)


@register_strategy("scratch", "random initialisation (optionally truncated at the cut), all trained")
def _scratch(arch, cut, num_classes, source, width, slim_from, seed):
    return build(arch, cut, num_classes, source="scratch", seed=seed)


@register_strategy("linear_probe", "frozen pretrained backbone up to the cut; only the head trains")
def _linear_probe(arch, cut, num_classes, source, width, slim_from, seed):
    model = build(arch, cut, num_classes, source=source, seed=seed)
    model.freeze([n for n, _ in model.backbone.named_children()])
    return model


STRATEGIES = tuple(REGISTRY)  # ("full", "ttl", "lwft", "transfusion", "scratch", "linear_probe")


def cut_strategies() -> tuple[str, ...]:
    """The registered strategies that take a cut (what the cut search can tune)."""
    return tuple(name for name, s in REGISTRY.items() if s.takes_cut)


@dataclass(frozen=True)
class StrategySpec:
    """A strategy with its arguments: what ``prepare`` builds and what results record."""

    name: str
    cut: str | None = None
    width: float = 1.0
    slim_from: str | None = None

    @property
    def label(self) -> str:
        strategy = REGISTRY.get(self.name)
        if strategy is not None and strategy.takes_cut and self.cut:
            extra = f", width={self.width:g}" if self.name == "transfusion" and self.width != 1 else ""
            return f"{self.name}({self.cut}{extra})"
        return self.name


def _check(strategy: str) -> None:
    REGISTRY.lookup(strategy)


def prepare(strategy: str, arch: str, cut: str | int | None = None, num_classes: int = 2,
            source: str | os.PathLike = "imagenet", width: float = 1.0,
            slim_from: str | None = None, seed: int = 0) -> TTLModel:
    """Build the model of ``strategy`` (a name in :data:`REGISTRY`) with its trainable and frozen parts set."""
    _check(strategy)
    spec = REGISTRY[strategy]
    if spec.needs_cut and cut is None:
        raise ConfigError(f"strategy {strategy!r} needs a cut (the last block to freeze/reuse)")
    return spec.build(arch, cut, num_classes, source, width, slim_from, seed)


def reinitialise(module: nn.Module) -> None:
    """Fresh torchvision-style init: Kaiming convs, unit/zero batch-norm with reset statistics."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
        elif isinstance(m, nn.Linear):
            m.reset_parameters()


def _slim_resnet_block(block: nn.Module, inplanes: int, width: float, groups: int,
                       base_width: int) -> nn.Module:
    """A new, randomly initialised residual block like ``block`` with ``width`` times the planes."""
    cls = type(block)
    planes = max(1, round(block.conv1.out_channels * width)) if cls.__name__ == "BasicBlock" else None
    if planes is None:  # Bottleneck: conv3 outputs planes * expansion
        planes = max(1, round(block.conv3.out_channels / cls.expansion * width))
    stride = block.stride
    out = planes * cls.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                   nn.BatchNorm2d(out))
    new = cls(inplanes, planes, stride=stride, downsample=downsample, groups=groups,
              base_width=base_width)
    reinitialise(new)
    return new


def transfusion(arch: str, cut: str | int | None, num_classes: int = 2,
                source: str | os.PathLike = "imagenet", width: float = 1.0,
                slim_from: str | None = None, seed: int = 0) -> TTLModel:
    """TransFusion: reuse blocks up to ``cut``; re-initialise (and from ``slim_from`` on, slim) the rest."""
    if not 0 < width <= 1:
        raise ConfigError(f"TransFusion width must be in (0, 1], got {width}")
    model = build(arch, None, num_classes, source=source, seed=seed)
    infos = feature_info(arch)
    keep = cut_info(arch, cut).index
    slim_at = keep + 1 if slim_from is None else cut_info(arch, slim_from).index
    if slim_at <= keep:
        raise ConfigError(f"slim_from={slim_from!r} must come after the cut {cut!r}")
    modules = dict(model.backbone.named_modules())
    if family(arch) == "densenet" or width == 1:
        if width != 1:
            raise ConfigError("TransFusion slimming (width < 1) is implemented for ResNets only; "
                              "use width=1 for DenseNets (re-initialise without slimming)")
        for info in infos[keep + 1:]:
            for m in info.modules:
                reinitialise(modules[m])
        return model
    channels = infos[keep].channels
    groups, base_width = _group_width(model)
    for info in infos[keep + 1:]:
        (name,) = info.modules
        stage, idx = name.removeprefix("layer").split(".")
        layer = getattr(model.backbone, f"layer{stage}")
        old = layer[int(idx)]
        w = width if info.index >= slim_at else 1.0
        new = _slim_resnet_block(old, channels, w, groups, base_width)
        layer[int(idx)] = new
        channels = new.conv3.out_channels if hasattr(new, "conv3") else new.conv2.out_channels
    model.head = nn.Linear(channels, num_classes)
    model.out_channels = channels
    return model


def _group_width(model: TTLModel) -> tuple[int, int]:
    """torchvision's ``groups`` and ``width_per_group`` recovered from ``layer1.0``."""
    block = model.backbone.layer1[0]
    groups = block.conv2.groups
    if not hasattr(block, "conv3"):  # BasicBlock supports only groups=1, width 64
        return 1, 64
    return groups, block.conv1.out_channels // groups
