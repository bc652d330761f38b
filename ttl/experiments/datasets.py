"""The notebooks' datasets: a shipped name or a manifest path, loaded split by split.

Every notebook takes ``dataset`` (or ``datasets``) and ``root``; options of one dataset kind
(``contrast``: phantoms) reach datasets of that kind only (the kind registry, :mod:`ttl.data.kinds`), and ``n_per_class``/``data_seed`` draw a balanced subset of a
real dataset, so one notebook runs on the phantoms, on Fashion-MNIST or on an ImageFolder tree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ttl.data import ImageDataset, load, load_manifest
from ttl.data.kinds import get_kind, kinds
from ttl.errors import ConfigError

SPLITS = ("train", "val", "test")
Root = str | os.PathLike | Mapping[str, str] | None


def dataset_name(dataset: str | os.PathLike) -> str:
    """The manifest's ``name`` (a path to a YAML file is read; a shipped name is itself)."""
    return load_manifest(dataset).name


def short_name(name: str) -> str:
    """``phantom-mid`` -> ``mid`` (the phantoms' level); other names unchanged."""
    return name.removeprefix("phantom-")


def root_for(dataset: str | os.PathLike, root: Root) -> str | None:
    """``root`` for this dataset: one folder for all, or ``{dataset: folder}`` (by name or as given)."""
    if isinstance(root, Mapping):
        if str(dataset) in root:
            return str(root[str(dataset)])
        folder = root.get(dataset_name(dataset))
        return None if folder is None else str(folder)
    return None if root is None else str(root)


def kind_options(dataset: str | os.PathLike, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of ``options`` that ``dataset``'s kind takes (:mod:`ttl.data.kinds`).

    An option only other kinds take (``contrast`` on a real dataset) is dropped when it holds its
    neutral value (``contrast=1.0``, or None) and is an error otherwise, so a typo or a phantom
    setting is never silently ignored on another dataset."""
    kind = get_kind(load_manifest(dataset).kind)
    taken = kind.options.model_fields
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key in taken:
            out[key] = value
            continue
        owners = [k for k in kinds().values() if key in k.options.model_fields]
        if not owners:
            raise ConfigError(f"unknown dataset option {key!r}; the dataset kinds take "
                              f"{sorted({o for k in kinds().values() for o in k.option_names()})}")
        extra = owners[0].options.model_fields[key].json_schema_extra or {}
        if value is None or value == extra.get("neutral"):
            continue
        names = ", ".join(k.name for k in owners)
        leave = f"leave {key} at {extra['neutral']}" if "neutral" in extra else f"leave {key} at None"
        raise ConfigError(f"{key}={value} applies to {names} datasets only; {dataset_name(dataset)!r} is of kind "
                          f"{kind.name!r}: {leave}")
    return out


def load_splits(dataset: str | os.PathLike, root: Root = None, *, n_per_class: Any = None,
                size: int | None = None, seed: int = 0, splits: Sequence[str] = SPLITS,
                **options: Any) -> dict[str, ImageDataset]:
    """``{split: ImageDataset}`` of one dataset. ``seed`` is the generator's (phantoms) or that of
    a real dataset's balanced ``n_per_class`` subset; ``options`` are kind options
    (:func:`kind_options`: ``contrast`` reaches phantoms only)."""
    opts = kind_options(dataset, {"n_per_class": n_per_class, "size": size, "seed": seed, **options})
    folder = root_for(dataset, root)
    return {split: load(dataset, root=folder, split=split, progress=False, **opts) for split in splits}


def load_all(datasets: Sequence[str], root: Root = None, **options: Any) -> dict[str, dict[str, ImageDataset]]:
    """``{name: {split: ImageDataset}}`` for several datasets (keyed by manifest name)."""
    if not datasets:
        raise ConfigError("datasets is empty: give at least one dataset name or manifest path")
    out = {dataset_name(d): load_splits(d, root, **options) for d in datasets}
    if len(out) != len(datasets):
        raise ConfigError(f"datasets {list(datasets)} name the same dataset twice")
    return out


def run_base(runs_dir: str | os.PathLike, name: str, arch: str, source: str) -> Path:
    """The folder of one dataset's runs of one network and source: ``runs_dir/name/arch-source``."""
    return Path(runs_dir) / name / f"{arch}-{source}"


def names_text(names: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (plain text: glue inserts it verbatim, not as Markdown)."""
    quoted = list(names)
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
