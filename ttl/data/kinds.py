"""The registry of dataset kinds: what a manifest's ``source.kind`` may be, and all that goes with it.

A :class:`DatasetKind` holds, in one place, a kind's loader, its load-time options (one pydantic
model: names, types, bounds, defaults and help), the split rules its manifests may use, the
manifest keys it needs, the schema of its ``source.params`` and its own cross-key checks. From the
registry follow: the manifest schema's ``source.kind`` choices and per-kind rules
(:mod:`ttl.data.manifest`), the overrides :func:`ttl.data.load` accepts, the options the notebooks
pass to phantoms only (:mod:`ttl.experiments.datasets`) and the CLI's dataset flags
(:func:`ttl.commands.argtypes.add_dataset_options`). The four shipped kinds are registered by
:mod:`ttl.data.loader`; a new kind is one more :func:`register_kind` call (ARCHITECTURE.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
from pydantic import Field

from ttl.errors import ConfigError
from ttl.registry import Registry
from ttl.schema import Strict, either, validate

SizeMap = dict[Literal["train", "val", "test"], int]


class LoadOptions(Strict):
    """Options every kind takes when loaded (``ttl.data.load(..., **options)``)."""

    size: int | None = Field(None, ge=8, le=4096, description="image side in pixels (default: the manifest's)")
    n_per_class: either(int, SizeMap) | None = Field(  # type: ignore[valid-type]
        None, description="images per class (one number, or per split); a real dataset draws a balanced subset")
    seed: int | None = Field(None, ge=0, description="the generator's seed, or the seed of a real dataset's subset")


class PhantomOptions(LoadOptions):
    """The phantom generator's options (bounds: :class:`ttl.data.phantoms.PhantomParams`)."""

    size: int | None = Field(None, ge=32, le=512, description="image side in pixels")
    balance: float | None = Field(None, gt=0, lt=1, description="fraction of class 1")
    label_noise: float | None = Field(None, ge=0, lt=0.5, description="fraction of flipped labels")
    contrast: float | None = Field(None, ge=0.1, le=10, description="lesion conspicuity (1 = the calibrated default)",
                                   json_schema_extra={"neutral": 1.0})


class PhantomManifestParams(Strict):
    """A phantom manifest's ``source.params``: the generator's defaults for this dataset."""

    level: Literal["low", "mid", "high"]
    n_per_class: either(int, SizeMap)  # type: ignore[valid-type]
    size: int
    seed: int
    balance: float
    label_noise: float
    contrast: float | None = Field(None, description="lesion conspicuity multiplier (1 = the generator's default)")


class MedmnistOptions(LoadOptions):
    npz: str | None = Field(None, description="an npz file to read instead of the cache or a download (not checksummed)")
    download: bool | None = Field(None, description="download the npz when it is not cached (default true)")


class FolderOptions(LoadOptions):
    resize: Literal["center-crop", "stretch", "pad"] | None = Field(None, description="how images are brought to size")


Loader = Callable[..., tuple[dict[str, np.ndarray], dict[str, Any]]]


@dataclasses.dataclass(frozen=True)
class DatasetKind:
    """One ``source.kind``: its loader, options, split rules, needed keys, params schema, checks.

    ``load(manifest, root, split, use_cache, cache_dir, progress, options) -> (arrays, meta)``;
    ``subset``: ``n_per_class``/``seed`` draw a balanced subset after loading (file-backed kinds);
    ``check(data, where)`` raises a ``DataError`` for a manifest its rules refuse."""

    name: str
    summary: str
    load: Loader
    options: type[LoadOptions]
    split_rules: tuple[str, ...]
    needs: tuple[str, ...] = ()
    params: type[Strict] | None = None
    check: Callable[[dict[str, Any], str], None] | None = None
    subset: bool = True

    def option_names(self) -> tuple[str, ...]:
        return tuple(self.options.model_fields)

    def check_options(self, options: Mapping[str, Any], dataset: str) -> dict[str, Any]:
        """``options`` (None values dropped) checked against :attr:`options`; ConfigError naming the
        dataset and the option otherwise."""
        given = {k: _plain(v) for k, v in options.items() if v is not None}
        unknown = [k for k in given if k not in self.options.model_fields]
        if unknown:
            raise ConfigError(f"dataset {dataset!r} ({self.name}): unknown override(s) {unknown}; "
                              f"allowed: {list(self.option_names())}")
        validate(self.options, given, f"dataset {dataset!r} ({self.name})", ConfigError)
        return given


def _plain(value: Any) -> Any:
    """NumPy scalars as Python ones (a notebook's ``np.int64(64)`` is a valid size)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


REGISTRY: Registry[DatasetKind] = Registry("dataset kind")


def register_kind(kind: DatasetKind) -> DatasetKind:
    """Add ``kind`` to the registry (a second kind of the same name is an error)."""
    return REGISTRY.add(kind.name, kind)


def get_kind(name: str) -> DatasetKind:
    _ensure_loaded()
    return REGISTRY.lookup(name)


def kinds() -> dict[str, DatasetKind]:
    """Every registered kind, by name (the shipped four registered on first use)."""
    _ensure_loaded()
    return dict(REGISTRY)


def kind_only_options(kind: str) -> tuple[str, ...]:
    """The options ``kind`` takes that not every kind does (phantom: balance, label_noise, contrast)."""
    every = set.intersection(*(set(k.option_names()) for k in kinds().values()))
    return tuple(o for o in get_kind(kind).option_names() if o not in every)


def _ensure_loaded() -> None:
    from ttl.data import loader  # noqa: F401  (registers the shipped kinds)
