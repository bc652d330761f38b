"""``load(name_or_manifest, root=None, split="train", **overrides) -> ImageDataset``.

Dispatches on the manifest's ``source.kind`` (phantom, medmnist, idx, folder), applies overrides,
and keeps decoded (or generated) uint8 arrays in the disk cache so a second run skips the work.
``n_per_class`` on a real dataset draws a class-balanced subset (seeded by ``seed``), so the
notebooks can run a file-backed dataset at the sizes they use for phantoms.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ttl.errors import ConfigError, DataError
from ttl.provenance import stable_hash

from . import cache as _cache
from .kinds import (DatasetKind, FolderOptions, LoadOptions, MedmnistOptions, PhantomManifestParams,
                    PhantomOptions, get_kind, register_kind)
from .manifest import Manifest, _validate_folder, _validate_idx, _validate_medmnist, _validate_phantom, load_manifest

if TYPE_CHECKING:
    from .dataset import ImageDataset

SPLITS = ("train", "val", "test")


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 (N, C, H, W) to (N, C, size, size) with antialiased bilinear interpolation."""
    if images.shape[-2:] == (size, size):
        return images
    import torch
    import torch.nn.functional as F

    out = np.empty((images.shape[0], images.shape[1], size, size), np.uint8)
    for i in range(0, len(images), 512):
        x = torch.from_numpy(np.asarray(images[i:i + 512])).float()
        y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[i:i + 512] = y.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def _cached(m: Manifest, split: str, key_parts: Mapping[str, Any], use_cache: bool,
            cache: str | os.PathLike | None, make: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays from the cache entry for ``key_parts``, or ``make()`` and store them."""
    key = stable_hash({"manifest": m.data, "split": split, **key_parts})
    folder = _cache.entry_dir(m.name, f"{split}-{key}", cache) if use_cache else None
    if folder is not None:
        hit = _cache.load_arrays(folder)
        if hit is not None:
            arrays, meta = hit
            meta["cache"] = {"key": key, "path": str(folder), "hit": True}
            return arrays, meta
    arrays, meta = make()
    meta = {**meta, "cache_key": key}
    if folder is not None:
        _cache.save_arrays(folder, arrays, meta)
    meta["cache"] = {"key": key, "path": str(folder) if folder is not None else None, "hit": False}
    return arrays, meta


def load(manifest_or_name: str | os.PathLike | Manifest | Mapping[str, Any],
         root: str | os.PathLike | None = None, split: str = "train", *, cache: bool = True,
         cache_dir: str | os.PathLike | None = None, progress: bool = True,
         **overrides: Any) -> ImageDataset:
    """Load one split of a dataset as decoded uint8 images.

    ``manifest_or_name``: a shipped dataset's name (see :func:`list_datasets`), a path to a
    manifest YAML, a :class:`Manifest` or a mapping. ``root``: where the files of a folder
    dataset lie (a MedMNIST folder holding the npz may be given too). ``overrides``: the options
    of the manifest's kind (:mod:`ttl.data.kinds`): ``size``, ``n_per_class`` and ``seed`` for
    every kind; phantoms: ``balance``, ``label_noise``, ``contrast``; MedMNIST: ``npz`` (a file to
    read instead of the cache/download; not checksummed) and ``download``; folders: ``resize``. ``cache=False`` skips the disk cache;
    ``cache_dir`` replaces ``$TTL_CACHE``.
    """
    from .dataset import ImageDataset

    m = load_manifest(manifest_or_name)
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    kind = get_kind(m.kind)
    overrides = kind.check_options(overrides, m.name)
    if root is None and m.layout.get("default_root"):
        root = Path(m.layout["default_root"]).expanduser()
    file_opts = {k: v for k, v in overrides.items() if not (kind.subset and k in SUBSET_OPTIONS)}
    arrays, meta = kind.load(m, root, split, cache, cache_dir, progress, file_opts)
    if kind.subset and overrides.get("n_per_class") is not None:
        arrays, meta = _subset(m, split, arrays, meta, overrides["n_per_class"], int(overrides.get("seed", 0)))
    images, labels = arrays["images"], arrays["labels"]
    if len(images) == 0:
        raise DataError(f"dataset {m.name!r}: split '{split}' is empty")
    ids = [str(x) for x in arrays["ids"]] if "ids" in arrays else None
    meta.update(manifest=str(Path(m.path).resolve()) if m.path else None,
                manifest_sha256=stable_hash(m.data) if m.path is None else _sha256_file(m.path),
                root=str(Path(root).expanduser().resolve()) if root is not None else None,
                preprocessing=dict(m.preprocessing), source=m.source.get("url"),
                synthetic=bool(m.data.get("synthetic", False)))
    return ImageDataset(images, labels, m.classes, m.task, m.name, split, ids=ids, meta=meta)


SUBSET_OPTIONS = ("n_per_class", "seed")  # on a real dataset: a balanced subset, drawn after decoding


def _sha256_file(path: str | os.PathLike) -> str:
    from ttl.provenance import sha256_file

    return sha256_file(path)


def _subset(m: Manifest, split: str, arrays: dict[str, np.ndarray], meta: dict[str, Any],
            n_per_class: int | Mapping[str, int], seed: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """At most ``n_per_class`` images of each class (multilabel: ``n * classes`` images), drawn
    with a seed derived from ``seed``, the dataset and the split; order kept. The subset is part of
    the data's fingerprint (``cache_key``), so runs on different subsets never share a run key."""
    from ttl.seeding import derive_seed

    from .phantoms import resolve_n

    n = resolve_n(n_per_class, split)
    if n < 1:
        raise ConfigError(f"dataset {m.name!r}: n_per_class must be >= 1, got {n}")
    labels = np.asarray(arrays["labels"])
    rng = np.random.default_rng(derive_seed(seed, "subset", m.name, split))
    if m.task == "multilabel":
        pick = np.sort(rng.permutation(len(labels))[:n * len(m.classes)])
        short = {}
    else:
        parts, short = [], {}
        for c in range(len(m.classes)):
            idx = np.flatnonzero(labels == c)
            if len(idx) < n:
                short[m.classes[c]] = int(len(idx))
            parts.append(idx[rng.permutation(len(idx))[:n]])
        pick = np.sort(np.concatenate(parts))
    arrays = {k: np.asarray(v)[pick] for k, v in arrays.items()}
    subset = {"n_per_class": n, "seed": seed, "short_classes": short}
    key = stable_hash({"data": meta.get("cache_key") or meta.get("cache", {}).get("key"), "subset": subset})
    return arrays, {**meta, "subset": subset, "cache_key": key}


# --------------------------------------------------------------------------------------------


def _load_phantom(m: Manifest, root: Any, split: str, use_cache: bool, cache: Any, progress: bool,
                  overrides: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from . import phantoms

    params = {**m.source["params"], "size": m.preprocessing["size"]}
    params.update(overrides)
    params["balance"] = phantoms.parse_balance(params["balance"])
    n = phantoms.resolve_n(params["n_per_class"], split)
    gen_args = dict(level=params["level"], n_per_class=n, size=int(params["size"]), seed=int(params["seed"]),
                    balance=float(params["balance"]), label_noise=float(params["label_noise"]),
                    contrast=float(params.get("contrast", 1.0)))
    phantoms.PhantomParams(**gen_args).validate()

    def make() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        images, labels, info = phantoms.generate(**gen_args, split=split, progress=progress)
        arrays = {"images": images, "labels": labels, "clean_labels": info["clean_labels"],
                  "lesion_xy": info["lesion_xy"], "lesion_radius": info["lesion_radius"]}
        return arrays, {"params": gen_args, "split_seed": info["split_seed"],
                        "generator_version": phantoms.GENERATOR_VERSION}

    key = {"params": gen_args, "generator_version": phantoms.GENERATOR_VERSION}
    arrays, meta = _cached(m, split, key, use_cache, cache, make)
    for extra in ("clean_labels", "lesion_xy", "lesion_radius"):  # ground truth for analyses
        meta[extra] = np.asarray(arrays.pop(extra))
    return arrays, meta


def _load_medmnist(m: Manifest, root: Any, split: str, use_cache: bool, cache: Any, progress: bool,
                   overrides: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from . import medmnist

    size = int(overrides.get("size", m.preprocessing["size"]))
    files = m.source["files"]
    if "npz" in overrides:
        path, spec = Path(overrides["npz"]).expanduser(), None
    else:
        src_size = medmnist.pick_size(list(files), size)
        spec = dict(files[src_size])
        name = spec.get("filename", medmnist.npz_filename(m.source["flag"], src_size))
        local = Path(root).expanduser() / name if root is not None else None
        if local is not None and local.is_file():
            medmnist.verify(local, spec)
            path = local
        else:
            path = medmnist.fetch(m.source["flag"], src_size, spec, cache,
                                  download=bool(overrides.get("download", True)), progress=progress)
    if not path.is_file():
        raise DataError(f"{path}: npz file not found")
    st = path.stat()
    key = {"npz": str(path.resolve()), "npz_size": st.st_size, "npz_mtime": st.st_mtime_ns, "size": size,
           "channels": m.preprocessing["channels"]}

    def make() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        images, labels = medmnist.read_npz(path, split, len(m.classes), m.task == "multilabel")
        images = _match_channels(images, m.preprocessing["channels"])
        images = resize_images(images, size)
        return {"images": images, "labels": labels}, {"npz": str(path), "size": size}

    return _cached(m, split, key, use_cache, cache, make)


def _load_idx(m: Manifest, root: Any, split: str, use_cache: bool, cache: Any, progress: bool,
              overrides: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from ttl.seeding import derive_seed

    from . import idx

    if root is None:
        raise DataError(f"dataset {m.name!r} is read from IDX files ({m.source['url']}); pass root=... "
                        f"(CLI: --root) pointing at the folder holding them")
    root_path = Path(root).expanduser()
    files = idx.locate(m.source["files"], root_path, m.name)
    part = "test" if split == "test" else "train"
    size = int(overrides.get("size", m.preprocessing["size"]))
    stats = {k: (str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for k, p in files.items()
             if k.startswith(part)}
    fraction = float(m.split["fractions"]["val"])
    key = {"files": stats, "size": size, "channels": m.preprocessing["channels"], "val_fraction": fraction}

    def make() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        spec = m.source["files"]
        images = idx.read(files[f"{part}-images"], spec[f"{part}-images"].get("content_sha256"))
        labels = idx.read(files[f"{part}-labels"], spec[f"{part}-labels"].get("content_sha256"))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"dataset {m.name!r}: {part} images {images.shape} and labels {labels.shape} "
                            "do not pair up (expected (N, H, W) and (N,))")
        images, labels = idx.select_classes(images, labels, m.labels["label_map"], list(m.classes))
        order = np.arange(len(labels))
        if part == "train":  # val is carved from the training file, stratified and seeded
            kept, carved = idx.carve(labels, fraction, derive_seed(int(m.split.get("seed", 0)), "split", m.name))
            order = carved if split == "val" else kept
        images = _match_channels(np.ascontiguousarray(images[order][:, None]), m.preprocessing["channels"])
        images = resize_images(images, size)
        return ({"images": images, "labels": labels[order], "ids": np.array([f"{part}:{i}" for i in order])},
                {"root": str(root_path), "size": size})

    return _cached(m, split, key, use_cache, cache, make)


def _match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=1)
    w = np.array([0.299, 0.587, 0.114], np.float32)[None, :, None, None]
    return np.rint((images.astype(np.float32) * w).sum(1, keepdims=True)).astype(np.uint8)


def _load_folder(m: Manifest, root: Any, split: str, use_cache: bool, cache: Any, progress: bool,
                 overrides: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    from . import folder as fd

    root_path = fd._require_root(m, root)
    size = int(overrides.get("size", m.preprocessing["size"]))
    mode = overrides.get("resize", m.preprocessing.get("resize", "center-crop"))
    channels = int(m.preprocessing["channels"])
    records = fd.read_records(m, root_path)
    by_split = fd.assign_splits(m, records, root_path)
    recs = by_split[split]
    if not recs:
        counts = {s: len(v) for s, v in by_split.items()}
        raise DataError(f"dataset {m.name!r}: split '{split}' is empty (split rule "
                        f"'{m.split['rule']}', images per split: {counts}; manifest {m.where})")
    fd.resolve_paths(m, recs, root_path)
    key = {"root": str(root_path.resolve()), "size": size, "resize": mode, "channels": channels,
           "files": fd.fingerprint(m, root_path, recs)}

    def make() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        others = [r for s, rs in by_split.items() if s != split for r in rs]
        fd.resolve_paths(m, others, root_path, missing_ok=True)
        fd.check_content_leakage(by_split)  # decoded only on a cache miss, so checked then
        images = fd.decode_records(recs, channels, size, mode, progress, desc=f"{m.name} {split}")
        if m.task == "multilabel":
            labels = np.stack([r.label for r in recs]).astype(np.float32)
        else:
            labels = np.array([r.label for r in recs], np.int64)
        ids = np.array([r.rel for r in recs])
        return {"images": images, "labels": labels, "ids": ids}, {"root": str(root_path), "size": size,
                                                                  "resize": mode}

    return _cached(m, split, key, use_cache, cache, make)


# --------------------------------------------------------------------------------------------
# the shipped kinds (ttl.data.kinds): one registration each

register_kind(DatasetKind(
    "phantom", "images generated by ttl.data.phantoms at a feature level", _load_phantom, PhantomOptions,
    split_rules=("generated",), needs=("source.params",), params=PhantomManifestParams, check=_validate_phantom,
    subset=False))
register_kind(DatasetKind(
    "medmnist", "the npz files of the MedMNIST project", _load_medmnist, MedmnistOptions,
    split_rules=("official",), needs=("source.flag", "source.files"), check=_validate_medmnist))
register_kind(DatasetKind(
    "idx", "MNIST-style IDX files (e.g. Fashion-MNIST from Debian)", _load_idx, LoadOptions,
    split_rules=("per_file",), needs=("source.files", "labels.label_map", "split.fractions"), check=_validate_idx))
register_kind(DatasetKind(
    "folder", "images under a root, labels from a CSV or the paths (ImageFolder trees)", _load_folder,
    FolderOptions, split_rules=("random", "column", "file", "per_file", "path"), needs=("labels",),
    check=_validate_folder))
