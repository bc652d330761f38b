"""MedMNIST npz files: download with checksum into the cache, or read a file you put there.

The MedMNIST project (medmnist.com, Yang et al., Scientific Data 2023) publishes one npz per
dataset and size on Zenodo (``<flag>.npz`` for 28 px, ``<flag>_<size>.npz`` for 64/128/224 px)
with the keys ``train_images``, ``train_labels``, ``val_images``, ``val_labels``, ``test_images``,
``test_labels``; images are uint8 (N, H, W) for grey sets and (N, H, W, 3) for colour sets,
labels are (N, 1) class indices (or (N, K) 0/1 for multilabel sets). Checksums are the md5
values the project publishes; a file in the cache with a wrong checksum is a
:class:`ChecksumError`, never silently used. Without internet a :class:`DataError` says which
URL could not be fetched and where to put the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ttl.errors import ChecksumError, DataError

from .cache import cache_dir

SIZES = (28, 64, 128, 224)
TIMEOUT_S = 60


def npz_filename(flag: str, size: int) -> str:
    """The file name MedMNIST uses: ``pneumoniamnist.npz`` (28 px) or ``pneumoniamnist_64.npz``."""
    return f"{flag}.npz" if int(size) == 28 else f"{flag}_{int(size)}.npz"


def file_digest(path: str | os.PathLike, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _expected(spec: dict[str, Any]) -> tuple[str, str] | None:
    for algo in ("sha256", "md5"):
        if spec.get(algo):
            return algo, str(spec[algo]).lower()
    return None


def verify(path: Path, spec: dict[str, Any]) -> None:
    """:class:`ChecksumError` if ``path`` does not have the md5/sha256 ``spec`` gives."""
    exp = _expected(spec)
    if exp is None:
        return
    algo, want = exp
    got = file_digest(path, algo)
    if got != want:
        raise ChecksumError(f"{path}: {algo} is {got}, expected {want} (from {spec.get('url', 'the manifest')}); "
                            "the file is corrupt or a different version: delete it and download it again")


def fetch(flag: str, size: int, spec: dict[str, Any], cache: str | os.PathLike | None = None,
          download: bool = True, progress: bool = True) -> Path:
    """The verified npz for ``flag`` at ``size``: from ``<cache>/medmnist/`` or downloaded there.

    ``spec`` holds ``url`` and ``md5`` or ``sha256``. The download goes to a temporary file in
    the same folder, is verified, then renamed into place, so nothing half-written remains.
    """
    folder = cache_dir(cache) / "medmnist"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.get("filename", npz_filename(flag, size))
    if target.is_file():
        verify(target, spec)
        return target
    url = spec["url"]
    hint = (f"To work offline, download {url} elsewhere and put it at {target} "
            f"(or pass npz=PATH / --npz PATH, or set $TTL_CACHE to the folder above 'medmnist/').")
    if not download:
        raise DataError(f"{target} is not there and downloading is off. {hint}")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
    try:
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                bar = None
                if progress:
                    from tqdm.auto import tqdm

                    bar = tqdm(total=total, unit="B", unit_scale=True, desc=target.name)
                while block := resp.read(1 << 20):
                    out.write(block)
                    if bar is not None:
                        bar.update(len(block))
                if bar is not None:
                    bar.close()
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise DataError(f"could not download {url}: {e}. {hint}") from e
        verify(Path(tmp), spec)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return target


def read_npz(path: str | os.PathLike, split: str, num_classes: int,
             multilabel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, C, H, W) and labels of ``split`` from a MedMNIST npz file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: npz file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.keys())
            ik, lk = f"{split}_images", f"{split}_labels"
            missing = [k for k in (ik, lk) if k not in keys]
            if missing:
                raise DataError(f"{path}: missing key(s) {missing}; keys present: {keys}")
            images, labels = z[ik], z[lk]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable npz file: {e}") from e
    if images.dtype != np.uint8:
        raise DataError(f"{path}: {split}_images must be uint8, got {images.dtype}")
    if images.ndim == 3:
        images = images[:, None]
    elif images.ndim == 4 and images.shape[-1] in (1, 3):
        images = images.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{path}: {split}_images must be (N, H, W) or (N, H, W, 3), got {images.shape}")
    if len(labels) != len(images):
        raise DataError(f"{path}: {len(images)} {split} images but {len(labels)} labels")
    if len(images) == 0:
        raise DataError(f"{path}: split '{split}' is empty")
    labels = np.asarray(labels)
    if multilabel:
        if labels.ndim != 2 or labels.shape[1] != num_classes or not np.isin(labels, (0, 1)).all():
            raise DataError(f"{path}: {split}_labels must be (N, {num_classes}) of 0/1, got {labels.shape}")
        return np.ascontiguousarray(images), labels.astype(np.float32)
    labels = labels.reshape(len(labels), -1)
    if labels.shape[1] != 1:
        raise DataError(f"{path}: {split}_labels must be (N, 1) class indices, got {labels.shape}")
    labels = labels[:, 0].astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise DataError(f"{path}: {split}_labels[{bad[0]}] = {labels[bad[0]]} is outside the "
                        f"{num_classes} classes")
    return np.ascontiguousarray(images), labels


def pick_size(available: list[int], size: int) -> int:
    """The published size to use for ``size``: itself if published, else the next larger (or largest)."""
    available = sorted(available)
    if size in available:
        return size
    larger = [s for s in available if s > size]
    return larger[0] if larger else available[-1]
