"""IDX files (the MNIST family's format): read, check, and pick classes.

An IDX file is a big-endian header (two zero bytes, a type code, the number of dimensions, one
uint32 per dimension) followed by the array; MNIST-style datasets ship one gzipped file for the
training images, one for their labels, and the same for the test set. Fashion-MNIST (Xiao,
Rasul and Vollgraf 2017, MIT licence) comes this way from its GitHub project and from Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``). Debian recompresses
the files, so the checksums a manifest gives (``content_sha256``) are of the *decompressed*
bytes, which are the same whoever gzipped them.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ttl.errors import ChecksumError, DataError

# IDX type codes -> numpy dtypes (big-endian where it matters)
_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
FILE_KEYS = ("train-images", "train-labels", "test-images", "test-labels")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, decompressed when it is gzipped (by content, not by name)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
    return raw


def parse(raw: bytes, where: str) -> np.ndarray:
    """The array an IDX byte string holds; :class:`DataError` naming ``where`` if it is not IDX."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _DTYPES:
        raise DataError(f"{where}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype, ndim = _DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{where}: IDX header cut short")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{where}: IDX file has {len(raw)} bytes, its header {shape} needs {expected} "
                        "(truncated or corrupt)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read(path: str | os.PathLike, content_sha256: str | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or not), checking the decompressed bytes' sha256 when given."""
    raw = read_bytes(path)
    if content_sha256:
        got = hashlib.sha256(raw).hexdigest()
        if got != content_sha256.lower():
            raise ChecksumError(f"{path}: sha256 of the decompressed content is {got}, the manifest expects "
                                f"{content_sha256}; the file changed or is another dataset's")
    return parse(raw, str(path))


def locate(files: dict[str, dict[str, Any]], root: Path, name: str) -> dict[str, Path]:
    """The four files under ``root`` (by each entry's ``filename``, or without its ``.gz``)."""
    found, missing = {}, []
    for key in FILE_KEYS:
        spec = files[key]
        fname = spec.get("filename") or Path(spec["url"]).name
        candidates = [root / fname, root / fname.removesuffix(".gz")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            missing.append((key, fname, spec["url"]))
        else:
            found[key] = hit
    if missing:
        lines = "; ".join(f"{k}: {f} ({u})" for k, f, u in missing)
        raise DataError(f"dataset {name!r}: missing under {root}: {lines}. Download them into that folder, "
                        "or on Debian/Ubuntu `apt install dataset-fashion-mnist` for Fashion-MNIST, "
                        "and pass root=... (CLI: --root)")
    return found


def select_classes(images: np.ndarray, labels: np.ndarray, label_map: dict[str, str],
                   classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Keep the images whose raw label ``label_map`` names, relabelled to indices of ``classes``."""
    raw_to_index = {int(raw): classes.index(name) for raw, name in label_map.items()}
    keep = np.isin(labels, list(raw_to_index))
    mapped = np.array([raw_to_index[int(v)] for v in labels[keep]], np.int64)
    return images[keep], mapped


def carve(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, carved) splitting ``labels`` stratified, ``fraction`` of each class carved."""
    rng = np.random.default_rng(seed)
    kept, carved = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n = int(round(fraction * len(idx)))
        carved.append(idx[:n])
        kept.append(idx[n:])
    return np.sort(np.concatenate(kept)), np.sort(np.concatenate(carved))
