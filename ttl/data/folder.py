"""Folder/CSV datasets: a label file (image path column + label column(s)) under a user-given root.

Reads the records a manifest describes, assigns train/val/test splits (random grouped and
stratified, a split column, a split file, or one label file per split), refuses leakage (an
image or group in two splits), checks sha256 of label and split files, then decodes and resizes
the images of one split with PIL. Every problem is a :class:`DataError` naming the file and, for
CSV rows, the line (the header is line 1; quoted multi-line fields are not supported).
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ttl.errors import ChecksumError, DataError
from ttl.provenance import sha256_file
from ttl.seeding import derive_seed

from .manifest import Manifest

SPLITS = ("train", "val", "test")
_DEFAULT_SPLIT_VALUES = {"train": ["train"], "val": ["val", "valid", "validation"], "test": ["test"]}


@dataclasses.dataclass
class Record:
    """One image of a folder dataset, with where it was listed (for error messages)."""

    rel: str
    label: Any  # class index (int) or (K,) float32 array for multilabel
    source: str  # the label file (or the glob) that listed it
    line: int  # 1-based line in ``source``; 0 when listed by a glob
    group: str
    split: str | None = None
    path: Path | None = None  # resolved on disk

    def where(self) -> str:
        return f"{self.source}, line {self.line}" if self.line else self.source


def _csv(path: Path) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError as e:
        raise DataError(f"{path}: file not found") from e
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: cannot read as CSV: {e}") from e


def verify_sha256(path: Path, expected: str | None, what: str) -> str:
    """The file's sha256; :class:`ChecksumError` if ``expected`` is given and differs."""
    if not path.is_file():
        raise DataError(f"{path}: {what} not found")
    got = sha256_file(path)
    if expected and got.lower() != expected.lower():
        raise ChecksumError(f"{path}: sha256 of the {what} is {got}, the manifest expects {expected}; "
                            "the file changed or is a different version")
    return got


def _require_root(m: Manifest, root: str | os.PathLike | None) -> Path:
    if root is None:
        raise DataError(f"dataset {m.name!r} is read from files you download yourself "
                        f"({m.source['url']}); pass root=... (CLI: --root) pointing at them. "
                        f"Expected layout: {m.layout.get('description', 'see ' + m.where)}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"dataset {m.name!r}: root {path} is not a folder")
    return path


def _label_files(m: Manifest, root: Path) -> list[tuple[str | None, Path, str | None]]:
    """(split or None, path, expected sha256 or None) for each label file."""
    lab = m.labels
    files, shas = lab["file"], lab.get("sha256")
    if isinstance(files, dict):
        bad = [k for k in files if k not in SPLITS]
        if bad:
            raise m.error("labels.file", f"keys must be among {SPLITS}, got {bad}")
        shas = shas if isinstance(shas, dict) else {}
        return [(k, root / v, shas.get(k)) for k, v in files.items()]
    return [(None, root / files, shas if isinstance(shas, str) else None)]


def _parse_label(m: Manifest, raw: Sequence[str], where: str) -> Any:
    classes, lab = m.classes, m.labels
    if m.task == "multilabel":
        out = np.zeros(len(classes), np.float32)
        uncertain = 1.0 if lab.get("uncertain") == "one" else 0.0
        for k, (col, v) in enumerate(zip(lab["label_columns"], raw)):
            v = v.strip()
            try:
                x = float(v) if v else 0.0
            except ValueError:
                x = None
            if x not in (0.0, 1.0, -1.0):
                raise DataError(f"{where}: column {col!r}: {v!r} is not 1, 0, -1 or blank")
            out[k] = uncertain if x == -1.0 else x
        return out
    value = raw[0].strip()
    name = lab.get("label_map", {}).get(value, value)
    if name not in classes:
        raise DataError(f"{where}: label {value!r} is not one of the classes {classes}"
                        + (f" (after label_map {lab['label_map']})" if lab.get("label_map") else ""))
    return classes.index(name)


def _group(m: Manifest, rel: str, row: Any = None) -> str:
    sp = m.split
    if sp.get("group_column") and row is not None:
        return str(row[sp["group_column"]])
    if sp.get("group_regex"):
        hit = re.search(sp["group_regex"], rel)
        if not hit:  # falling back to one group per image would silently drop the grouping
            raise DataError(f"image {rel!r}: split.group_regex {sp['group_regex']!r} does not match its path, "
                            "so its group (patient, study) is unknown; fix the regex for this layout")
        return hit.group(1) if hit.groups() else hit.group(0)
    return rel


def read_records(m: Manifest, root: Path) -> list[Record]:
    """Every record the manifest's label source lists (filtered), with labels parsed."""
    lab = m.labels
    if "from_filename" in lab:
        spec = lab["from_filename"]
        paths = sorted(root.glob(spec["glob"]))
        src = f"{root}/{spec['glob']}"
        if not paths:
            raise DataError(f"{src}: no file matches labels.from_filename.glob; expected layout: "
                            f"{m.layout.get('description', '')}")
        out = []
        for p in paths:
            rel = p.relative_to(root).as_posix()
            hit = re.search(spec["regex"], rel)
            if not hit:
                raise DataError(f"{p}: file name does not match labels.from_filename.regex {spec['regex']!r}")
            raw = hit.group("label") if "label" in hit.groupdict() else hit.group(1)
            rec = Record(rel, _parse_label(m, [raw], str(p)), src, 0, _group(m, rel), path=p)
            if m.split["rule"] == "path":  # an ImageFolder tree: <split>/<class>/<image>
                rec.split = _split_value(m, hit.group("split"), str(p))
            out.append(rec)
        return out
    out = []
    for split, path, expected in _label_files(m, root):
        if not path.is_file():
            raise DataError(f"{path}: label file not found (dataset {m.name!r}); expected layout: "
                            f"{m.layout.get('description', 'see ' + m.where)}")
        if expected:
            verify_sha256(path, expected, "label file")
        df = _csv(path)
        cols = list(lab["label_columns"])
        need = cols + ([lab["path_column"]] if "path_column" in lab else [])
        need += list(lab.get("filter", {}))
        if m.split.get("group_column"):
            need.append(m.split["group_column"])
        if m.split["rule"] == "column":
            need.append(m.split["column"])
        if "path_template" in lab:
            need += re.findall(r"{(\w+)", lab["path_template"])
        missing = [c for c in dict.fromkeys(need) if c not in df.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {missing}; columns present: {list(df.columns)}")
        keep = np.ones(len(df), bool)
        for col, val in lab.get("filter", {}).items():
            vals = [str(v) for v in (val if isinstance(val, list) else [val])]
            keep &= df[col].isin(vals).to_numpy()
        for i in np.flatnonzero(keep):
            row = df.iloc[i]
            line = int(i) + 2
            where = f"{path}, line {line}"
            rel = (str(row[lab["path_column"]]).strip() if "path_column" in lab
                   else lab["path_template"].format(**row.to_dict()))
            if not rel:
                raise DataError(f"{where}: empty image path")
            label = _parse_label(m, [str(row[c]) for c in cols], where)
            rec = Record(rel, label, str(path), line, _group(m, rel, row), split)
            if m.split["rule"] == "column":
                rec.split = _split_value(m, str(row[m.split["column"]]).strip(), where)
            out.append(rec)
    return out


def _split_value(m: Manifest, value: str, where: str) -> str:
    values = m.split.get("values") or _DEFAULT_SPLIT_VALUES
    for split, vals in values.items():
        if value in ([vals] if isinstance(vals, str) else [str(v) for v in vals]):
            return split
    raise DataError(f"{where}: split value {value!r} is not one of {dict(values)}")


def _assign_random(m: Manifest, records: list[Record], fractions: dict[str, float],
                   targets: Iterable[str], key: str) -> None:
    """Give groups of ``records`` (stratified by label unless multilabel) to ``targets``."""
    sp = m.split
    rng = np.random.default_rng(derive_seed(int(sp.get("seed", 0)), "split", m.name, key))
    groups: dict[str, list[Record]] = {}
    for r in records:
        groups.setdefault(r.group, []).append(r)
    strata: dict[Any, list[str]] = {}
    stratify = sp.get("stratify", True) and m.task != "multilabel"
    for g in sorted(groups):
        strata.setdefault(groups[g][0].label if stratify else 0, []).append(g)
    targets = list(targets)
    total = sum(fractions.get(t, 0.0) for t in targets)
    for _, keys in sorted(strata.items(), key=lambda kv: str(kv[0])):
        order = [keys[i] for i in rng.permutation(len(keys))]
        cuts = np.rint(np.cumsum([fractions.get(t, 0.0) / total for t in targets]) * len(order)).astype(int)
        start = 0
        for t, stop in zip(targets, cuts):
            for g in order[start:stop]:
                for r in groups[g]:
                    r.split = t
            start = stop


def assign_splits(m: Manifest, records: list[Record], root: Path) -> dict[str, list[Record]]:
    """Split name -> records, after checking that no image or group is in two splits."""
    sp, rule = m.split, m.split["rule"]
    if rule == "random":
        _assign_random(m, records, dict(sp["fractions"]), SPLITS, "random")
    elif rule in ("per_file", "path"):
        present = {r.split for r in records}
        carve = [s for s in SPLITS if s not in present and sp.get("fractions", {}).get(s, 0) > 0]
        if carve:
            train = [r for r in records if r.split == "train"]
            fr = {s: sp["fractions"][s] for s in carve}
            fr["train"] = max(0.0, 1.0 - sum(fr.values()))
            _assign_random(m, train, fr, ["train", *carve], "carve")
    elif rule == "file":
        _assign_from_file(m, records, root)
    by_split: dict[str, list[Record]] = {s: [] for s in SPLITS}
    for r in records:
        if r.split is not None:
            by_split[r.split].append(r)
    check_leakage(by_split, check_groups=bool(sp.get("group_column") or sp.get("group_regex")))
    return by_split


def _assign_from_file(m: Manifest, records: list[Record], root: Path) -> None:
    sp = m.split
    path = root / sp["file"]
    verify_sha256(path, sp.get("sha256"), "split file")
    df = _csv(path)
    pcol, scol = sp.get("path_column", "path"), sp.get("split_column", "split")
    missing = [c for c in (pcol, scol) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; columns present: {list(df.columns)}")
    by_rel = {os.path.normpath(r.rel): r for r in records}
    seen: dict[str, int] = {}
    for i, (rel, value) in enumerate(zip(df[pcol], df[scol])):
        line, key = i + 2, os.path.normpath(str(rel).strip())
        if key in seen:
            raise DataError(f"{path}, line {line}: image {rel!r} is listed twice (first at line {seen[key]})")
        seen[key] = line
        if key not in by_rel:
            raise DataError(f"{path}, line {line}: image {rel!r} is not in the label file(s)")
        by_rel[key].split = _split_value(m, str(value).strip(), f"{path}, line {line}")


def check_leakage(by_split: dict[str, list[Record]], check_groups: bool = False) -> None:
    """:class:`DataError` if one image (or, with ``check_groups``, one group) is in two splits."""
    seen: dict[str, tuple[str, Record]] = {}
    groups: dict[str, tuple[str, Record]] = {}
    for split, recs in by_split.items():
        for r in recs:
            key = os.path.normpath(r.rel)
            if key in seen:
                s0, r0 = seen[key]
                if s0 == split:
                    raise DataError(f"{r.where()}: image {r.rel!r} is listed twice in split '{split}' "
                                    f"(also at {r0.where()})")
                raise DataError(f"{r.where()}: image {r.rel!r} is in split '{split}' and in split "
                                f"'{s0}' ({r0.where()}): leakage between splits")
            seen[key] = (split, r)
            if check_groups:
                g = groups.get(r.group)
                if g is not None and g[0] != split:
                    raise DataError(f"{r.where()}: group {r.group!r} is in split '{split}' and in split "
                                    f"'{g[0]}' ({g[1].where()}): leakage between splits")
                groups.setdefault(r.group, (split, r))


def resolve_paths(m: Manifest, records: list[Record], root: Path, missing_ok: bool = False) -> None:
    """Find each image under the layout's ``image_dirs``; DataError for the first missing one
    (``missing_ok``: leave its ``path`` None)."""
    dirs = [root / d for d in (m.layout.get("image_dirs") or ["."])]
    for r in records:
        if r.path is not None:
            continue
        for d in dirs:
            p = d / r.rel
            if p.is_file():
                r.path = p
                break
        else:
            if missing_ok:
                continue
            raise DataError(f"{r.where()}: image {r.rel!r} not found under "
                            f"{', '.join(str(d) for d in dirs)}")


def check_content_leakage(by_split: dict[str, list[Record]]) -> None:
    """:class:`DataError` when one image file reaches two splits under different names: the same file
    (a symlink, an absolute path, ``a/../b``) or byte-identical copies. Only files whose size
    occurs in more than one split are hashed. Records without a resolved ``path`` are skipped."""
    real: dict[str, tuple[str, Record]] = {}
    by_size: dict[int, list[tuple[str, Record]]] = {}
    for split, recs in by_split.items():
        for r in recs:
            if r.path is None:
                continue
            key = os.path.realpath(r.path)
            if key in real and real[key][0] != split:
                s0, r0 = real[key]
                raise DataError(f"{r.where()}: image {r.rel!r} (split '{split}') is the same file as {r0.rel!r} "
                                f"(split '{s0}', {r0.where()}): {key}: leakage between splits")
            if key not in real:
                real[key] = (split, r)
                by_size.setdefault(os.path.getsize(key), []).append((split, r))
    for entries in by_size.values():
        if len({split for split, _ in entries}) < 2:
            continue
        digests: dict[str, tuple[str, Record]] = {}
        for split, r in entries:
            digest = sha256_file(r.path)
            if digest in digests and digests[digest][0] != split:
                s0, r0 = digests[digest]
                raise DataError(f"{r.where()}: image {r.rel!r} (split '{split}') has the same bytes as {r0.rel!r} "
                                f"(split '{s0}', {r0.where()}): the same image under two names, leakage between "
                                "splits; remove one copy or put both in one split")
            digests.setdefault(digest, (split, r))


def _to_mode(im: Any, channels: int) -> Any:
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        im = Image.fromarray(np.rint(arr).astype(np.uint8), "L")
    return im.convert("L" if channels == 1 else "RGB")


def _resize(im: Any, size: int, mode: str) -> Any:
    from PIL import Image

    resample = Image.Resampling.BICUBIC
    w, h = im.size
    if mode == "stretch":
        return im.resize((size, size), resample)
    if mode == "pad":
        side = max(w, h)
        canvas = Image.new(im.mode, (side, side), 0)
        canvas.paste(im, ((side - w) // 2, (side - h) // 2))
        return canvas.resize((size, size), resample)
    scale = size / min(w, h)  # center-crop: shorter side to size, then the central square
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    im = im.resize((nw, nh), resample)
    left, top = (nw - size) // 2, (nh - size) // 2
    return im.crop((left, top, left + size, top + size))


def decode_image(path: Path, channels: int, size: int, mode: str = "center-crop") -> np.ndarray:
    """One image as uint8 (C, size, size); 16-bit and float images are min-max scaled to 8 bits."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        im = _resize(_to_mode(im, channels), size, mode)
        arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def decode_records(records: Sequence[Record], channels: int, size: int, mode: str,
                   progress: bool = True, desc: str = "decoding") -> np.ndarray:
    """Decode and resize every record's image into one uint8 (N, C, size, size) array."""
    out = np.empty((len(records), channels, size, size), np.uint8)

    def work(i: int) -> Exception | None:
        try:
            out[i] = decode_image(records[i].path, channels, size, mode)
            return None
        except Exception as e:  # noqa: BLE001 - reported with its record below
            return e

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results: Iterable = pool.map(work, range(len(records)))
        if progress:
            from tqdm.auto import tqdm

            results = tqdm(results, total=len(records), desc=desc, unit="img")
        errors = list(results)
    for r, e in zip(records, errors):
        if e is not None:
            raise DataError(f"{r.where()}: cannot read image {r.path}: {type(e).__name__}: {e}") from e
    return out


def fingerprint(m: Manifest, root: Path, records: Sequence[Record]) -> dict[str, Any]:
    """What the decoded cache depends on: label/split file hashes and each image's size and mtime."""
    import hashlib

    fp: dict[str, Any] = {}
    if "file" in m.labels:
        for split, path, expected in _label_files(m, root):
            fp[f"labels:{split}"] = verify_sha256(path, expected, "label file")
    if m.split["rule"] == "file":
        fp["split_file"] = sha256_file(root / m.split["file"])
    h = hashlib.sha256()
    for r in records:
        st = r.path.stat()
        h.update(f"{r.rel}\0{st.st_size}\0{st.st_mtime_ns}\0{r.split}\n".encode())
    fp["images"] = h.hexdigest()
    return fp
