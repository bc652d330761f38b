"""The cache folder (``$TTL_CACHE`` or ``~/.cache/ttl``) and atomic NumPy writes.

Decoded, resized images are kept as uint8 ``.npy`` files under ``<cache>/decoded/<name>/<key>/``
where ``key`` hashes the manifest, the load parameters and the label/split files (and the size and
modification time of every image file), so a second run skips decoding. A folder is complete only
once its ``meta.json`` exists: it is written last, and every file is written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ttl.provenance import atomic_write, atomic_write_json, read_json

CACHE_ENV = "TTL_CACHE"


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$TTL_CACHE``, else ``~/.cache/ttl`` (created if needed)."""
    path = _root(override)
    path.mkdir(parents=True, exist_ok=True)
    return path


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """``np.save`` to a temporary file beside ``path``, then rename it into place."""
    return atomic_write(path, lambda f: np.save(f, np.ascontiguousarray(array), allow_pickle=False))


def _root(override: str | os.PathLike | None = None) -> Path:
    """The cache folder :func:`cache_dir` names, not created."""
    if override is not None:
        return Path(override).expanduser()
    return Path(os.environ[CACHE_ENV]).expanduser() if os.environ.get(CACHE_ENV) else Path.home() / ".cache" / "ttl"


def entry_dir(name: str, key: str, root: str | os.PathLike | None = None) -> Path:
    """Where the decoded arrays of one dataset split lie (created only when written)."""
    return _root(root) / "decoded" / name / key


def save_arrays(folder: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> bool:
    """Write each array as ``<name>.npy`` then ``meta.json`` (the completion marker).

    The cache is an optimisation: when it cannot be written (a full disk, a read-only or missing
    folder: any OSError) the files written so far are removed, a warning says why, and False is
    returned; the caller goes on with the arrays in memory.
    """
    try:
        for name, arr in arrays.items():
            atomic_save_npy(folder / f"{name}.npy", arr)
        atomic_write_json(folder / "meta.json", {**dict(meta), "arrays": sorted(arrays)})
    except OSError as exc:
        for name in arrays:
            with contextlib.suppress(OSError):
                (folder / f"{name}.npy").unlink(missing_ok=True)
        warnings.warn(f"could not write the data cache {folder} ({exc}); the data are used without caching "
                      f"and decoded or generated again next time (free space or point {CACHE_ENV} elsewhere)",
                      stacklevel=3)
        return False
    return True


def load_arrays(folder: Path, mmap_bytes: int = 2 << 30) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The arrays and meta of a complete entry, or None (missing, partial or unreadable).

    Arrays larger than ``mmap_bytes`` are memory-mapped read-only instead of read.
    """
    marker = folder / "meta.json"
    if not marker.is_file():
        return None
    try:
        meta = read_json(marker)
        out = {}
        for name in meta.get("arrays", []):
            p = folder / f"{name}.npy"
            mode = "r" if p.stat().st_size > mmap_bytes else None
            out[name] = np.load(p, mmap_mode=mode, allow_pickle=False)
        return out, meta
    except (OSError, ValueError, json.JSONDecodeError):
        return None
