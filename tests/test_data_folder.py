"""Folder/CSV datasets: decoding, splits, the decoded cache, and a clear error for each bad input."""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib

import numpy as np
import pytest
from PIL import Image

from ttl.data import load, load_manifest
from ttl.errors import ChecksumError, DataError

VALUES = {"cat": 40, "dog": 200}  # each class's images are filled with its grey value


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TTL_CACHE", str(tmp_path / "cache"))


def _png(path, value, size=(30, 20), mode="L"):
    """A flat image of ``value``; one corner pixel differs per file name, so no two files are
    byte-identical (identical files in two splits are leakage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = value if mode == "L" else (value, value // 2, 255 - value)
    img = Image.new(mode, size, colour)
    mark = zlib.crc32(str(path.name).encode()) % 256
    img.putpixel((0, 0), mark if mode == "L" else (mark, mark, mark))
    img.save(path)


def _manifest(**changes):
    m = {
        "name": "toy", "task": "binary", "classes": ["cat", "dog"],
        "source": {"kind": "folder", "url": "https://example.org/toy"},
        "licence": "test data", "access": {"registration": False},
        "layout": {"description": "ROOT/labels.csv and ROOT/img/*.png", "image_dirs": ["."]},
        "labels": {"file": "labels.csv", "path_column": "path", "label_columns": ["label"]},
        "split": {"rule": "random", "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}, "seed": 0,
                  "group_column": "patient"},
        "preprocessing": {"channels": 1, "size": 16},
    }
    for key, value in changes.items():
        node = m
        parts = key.split(".")
        for p in parts[:-1]:
            node = node[p]
        node[parts[-1]] = value
    return m


def _folder(root, n_per_class=10, per_patient=2):
    rows = ["path,label,patient"]
    for cls, value in VALUES.items():
        for i in range(n_per_class):
            rel = f"img/{cls}_{i}.png"
            _png(root / rel, value)
            rows.append(f"{rel},{cls},{cls}-p{i // per_patient}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_load_decodes_resizes_and_splits_by_group(tmp_path):
    root = _folder(tmp_path / "data")
    splits = {s: load(_manifest(), root=root, split=s, progress=False) for s in ("train", "val", "test")}
    assert sum(len(d) for d in splits.values()) == 20
    for ds in splits.values():
        assert ds.images.dtype.itemsize == 1 and tuple(ds.images.shape[1:]) == (1, 16, 16)
        # the label matches the pixels the image was drawn with
        means = ds.images.float().mean((1, 2, 3)).numpy()
        expected = np.array([VALUES[ds.classes[k]] for k in ds.labels.tolist()])
        assert np.allclose(means, expected, atol=1)
        assert set(ds.labels.tolist()) == {0, 1}  # stratified: both classes in every split
    patients = {s: {i.split("_")[0] + str(int(i.split("_")[1][:-4]) // 2) for i in d.ids} for s, d in splits.items()}
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    again = load(_manifest(), root=root, split="val", progress=False)
    assert again.ids == splits["val"].ids  # the split is reproducible


def test_decoded_cache_is_reused_and_invalidated(tmp_path):
    root = _folder(tmp_path / "data")
    first = load(_manifest(), root=root, split="train", progress=False)
    assert first.meta["cache"]["hit"] is False
    second = load(_manifest(), root=root, split="train", progress=False)
    assert second.meta["cache"]["hit"] is True
    assert np.array_equal(first.images.numpy(), second.images.numpy())
    # replacing one image's content changes its size/mtime, so the cache entry is not used
    target = root / first.ids[0]
    _png(target, 123, size=(31, 20))
    os.utime(target, ns=(1, 1))
    third = load(_manifest(), root=root, split="train", progress=False)
    assert third.meta["cache"]["hit"] is False
    assert abs(float(third.images[0].float().mean()) - 123) < 1


def test_rgb_and_size_override(tmp_path):
    root = tmp_path / "data"
    rows = ["path,label,patient"]
    for i in range(10):
        cls = "cat" if i % 2 else "dog"
        _png(root / f"{i}.png", VALUES[cls], size=(40, 24), mode="RGB")
        rows.append(f"{i}.png,{cls},p{i}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = load(_manifest(**{"preprocessing.channels": 3}), root=root, split="train", size=12, progress=False)
    assert tuple(ds.images.shape[1:]) == (3, 12, 12)
    img = ds.images[0].float().mean((1, 2)).numpy()
    v = VALUES[ds.classes[int(ds.labels[0])]]
    assert np.allclose(img, [v, v // 2, 255 - v], atol=1)


def test_missing_image_names_csv_line(tmp_path):
    root = _folder(tmp_path / "data")
    (root / "img" / "dog_3.png").unlink()
    lines = (root / "labels.csv").read_text().splitlines()
    line = next(i + 1 for i, t in enumerate(lines) if t.startswith("img/dog_3.png"))
    with pytest.raises(DataError, match=rf"labels\.csv, line {line}: image 'img/dog_3.png' not found"):
        for s in ("train", "val", "test"):
            load(_manifest(), root=root, split=s, progress=False)


def test_corrupt_image_names_line_and_writes_nothing(tmp_path):
    root = _folder(tmp_path / "data")
    (root / "img" / "cat_1.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    lines = (root / "labels.csv").read_text().splitlines()
    line = next(i + 1 for i, t in enumerate(lines) if t.startswith("img/cat_1.png"))
    errors = []
    for s in ("train", "val", "test"):
        try:
            load(_manifest(), root=root, split=s, progress=False)
        except DataError as e:
            errors.append(str(e))
    assert len(errors) == 1 and f"line {line}: cannot read image" in errors[0]
    cache = tmp_path / "cache" / "decoded" / "toy"
    metas = list(cache.rglob("meta.json"))
    assert len(metas) == 2  # only the two good splits were stored
    assert not list(cache.rglob("*.tmp"))


def test_label_outside_classes(tmp_path):
    root = _folder(tmp_path / "data")
    text = (root / "labels.csv").read_text().replace("img/dog_4.png,dog", "img/dog_4.png,horse")
    (root / "labels.csv").write_text(text)
    line = text.splitlines().index(next(t for t in text.splitlines() if "horse" in t)) + 1
    with pytest.raises(DataError, match=rf"line {line}: label 'horse' is not one of the classes"):
        load(_manifest(), root=root, progress=False)


def test_empty_split(tmp_path):
    root = _folder(tmp_path / "data")
    m = _manifest(**{"split.fractions": {"train": 0.8, "val": 0.2, "test": 0.0}})
    assert len(load(m, root=root, split="train", progress=False)) > 0
    with pytest.raises(DataError, match="split 'test' is empty"):
        load(m, root=root, split="test", progress=False)


def test_duplicate_path_across_splits_is_leakage(tmp_path):
    root = _folder(tmp_path / "data", n_per_class=3)
    rows = (root / "labels.csv").read_text().splitlines()
    body = [r + ",train" for r in rows[1:]] + [rows[2] + ",test"]
    (root / "labels.csv").write_text("\n".join([rows[0] + ",split", *body]) + "\n")
    m = _manifest(**{"split": {"rule": "column", "column": "split"}})
    with pytest.raises(DataError, match=r"line 8: image 'img/cat_1.png' is in split 'test' and in split 'train' "
                                        r"\(.*line 3\): leakage"):
        load(m, root=root, progress=False)


def _column_split(root, splits):
    """Rewrite labels.csv with a split column: ``splits[i]`` for the i-th image row."""
    rows = (root / "labels.csv").read_text().splitlines()
    body = [f"{r},{s}" for r, s in zip(rows[1:], splits)]
    (root / "labels.csv").write_text("\n".join([rows[0] + ",split", *body]) + "\n")
    return _manifest(**{"split": {"rule": "column", "column": "split"}})


def test_a_copy_under_another_name_in_another_split_is_leakage(tmp_path):
    root = _folder(tmp_path / "data", n_per_class=3)
    m = _column_split(root, ["train", "train", "test", "train", "train", "test"])
    assert len(load(m, root=root, split="test", progress=False)) == 2  # distinct files: fine
    shutil.copy(root / "img/cat_0.png", root / "img/cat_2.png")  # cat_2 (test) now repeats cat_0 (train)
    with pytest.raises(DataError, match=r"image 'img/cat_2.png' \(split 'test'\) has the same bytes as "
                                        r"'img/cat_0.png' \(split 'train'.*leakage between splits"):
        load(m, root=root, split="train", progress=False, cache=False)


def test_a_symlink_or_absolute_path_to_a_file_of_another_split_is_leakage(tmp_path):
    root = _folder(tmp_path / "data", n_per_class=3)
    (root / "img/cat_2.png").unlink()
    (root / "img/cat_2.png").symlink_to(root / "img/cat_0.png")
    m = _column_split(root, ["train", "train", "test", "train", "train", "test"])
    with pytest.raises(DataError, match=r"'img/cat_2.png' \(split 'test'\) is the same file as 'img/cat_0.png'"):
        load(m, root=root, split="test", progress=False)
    root2 = _folder(tmp_path / "data2", n_per_class=3)
    rows = (root2 / "labels.csv").read_text().splitlines()
    rows.append(f"{root2 / 'img/dog_1.png'},dog,dog-p9")  # the same file again, by its absolute path
    (root2 / "labels.csv").write_text("\n".join(rows) + "\n")
    m2 = _column_split(root2, ["train"] * 6 + ["test"])
    with pytest.raises(DataError, match="is the same file as 'img/dog_1.png'"):
        load(m2, root=root2, split="test", progress=False)


def test_group_leakage_with_split_file(tmp_path):
    root = _folder(tmp_path / "data", n_per_class=4)
    (root / "split.csv").write_text("path,split\nimg/cat_0.png,train\nimg/cat_1.png,test\n"
                                    "img/dog_0.png,train\nimg/dog_2.png,val\n")
    m = _manifest(**{"split": {"rule": "file", "file": "split.csv", "group_column": "patient"}})
    with pytest.raises(DataError, match=r"group 'cat-p0' is in split 'test' and in split 'train'"):
        load(m, root=root, progress=False)


def test_split_file_and_checksums(tmp_path):
    root = _folder(tmp_path / "data", n_per_class=4)
    (root / "split.csv").write_text("path,split\nimg/cat_0.png,train\nimg/cat_2.png,test\n"
                                    "img/dog_0.png,train\nimg/dog_2.png,valid\n")
    sha = hashlib.sha256((root / "split.csv").read_bytes()).hexdigest()
    lab_sha = hashlib.sha256((root / "labels.csv").read_bytes()).hexdigest()
    m = _manifest(**{"split": {"rule": "file", "file": "split.csv", "sha256": sha}, "labels.sha256": lab_sha})
    val = load(m, root=root, split="val", progress=False)
    assert val.ids == ["img/dog_2.png"]
    bad = _manifest(**{"split": {"rule": "file", "file": "split.csv", "sha256": "0" * 64}})
    with pytest.raises(ChecksumError, match=r"split\.csv: sha256 of the split file is"):
        load(bad, root=root, progress=False)
    bad_labels = _manifest(**{"labels.sha256": "f" * 64})
    with pytest.raises(ChecksumError, match=r"labels\.csv: sha256 of the label file"):
        load(bad_labels, root=root, progress=False)


def test_missing_label_file_column_and_root(tmp_path):
    root = _folder(tmp_path / "data", n_per_class=3)
    with pytest.raises(DataError, match="pass root="):
        load(_manifest(), progress=False)
    with pytest.raises(DataError, match=r"nope\.csv: label file not found"):
        load(_manifest(**{"labels.file": "nope.csv"}), root=root, progress=False)
    with pytest.raises(DataError, match=r"labels\.csv: missing column\(s\) \['diagnosis'\]"):
        load(_manifest(**{"labels.label_columns": ["diagnosis"]}), root=root, progress=False)


def test_multilabel_uncertain_and_filter(tmp_path):
    root = tmp_path / "data"
    rows = ["Path,View,A,B"]
    values = [("1", "0"), ("-1", ""), ("0", "1"), ("1.0", "-1.0"), ("", "0"), ("0", "0")]
    for i, (a, b) in enumerate(values):
        _png(root / f"x{i}.png", 50 + i)
        rows.append(f"x{i}.png,{'Frontal' if i != 5 else 'Lateral'},{a},{b}")
    (root / "l.csv").write_text("\n".join(rows) + "\n")
    m = _manifest(task="multilabel", classes=["A", "B"],
                  labels={"file": "l.csv", "path_column": "Path", "label_columns": ["A", "B"],
                          "uncertain": "one", "filter": {"View": "Frontal"}},
                  split={"rule": "random", "fractions": {"train": 1.0, "val": 0.0, "test": 0.0}})
    ds = load(m, root=root, progress=False)
    got = {i: row.tolist() for i, row in zip(ds.ids, ds.labels)}
    assert got == {"x0.png": [1, 0], "x1.png": [1, 0], "x2.png": [0, 1], "x3.png": [1, 1], "x4.png": [0, 0]}
    (root / "l.csv").write_text("Path,View,A,B\nx0.png,Frontal,yes,0\n")
    with pytest.raises(DataError, match=r"l\.csv, line 2: column 'A': 'yes' is not 1, 0, -1 or blank"):
        load(m, root=root, progress=False)


def test_labels_from_file_names_and_template(tmp_path):
    root = tmp_path / "cxr"
    for i in range(8):
        _png(root / "CXR_png" / f"CHNCXR_{i:04d}_{i % 2}.png", 30 + 150 * (i % 2))
    m = _manifest(labels={"from_filename": {"glob": "CXR_png/CHNCXR_*", "regex": r"_(?P<label>[01])\.png$"},
                          "label_map": {"0": "cat", "1": "dog"}},
                  split={"rule": "random", "fractions": {"train": 0.5, "val": 0.25, "test": 0.25}})
    ds = load(m, root=root, split="train", progress=False)
    assert len(ds) == 4 and ds.labels.tolist().count(1) == 2
    assert all(int(i[-5]) == lab for i, lab in zip(ds.ids, ds.labels.tolist()))
    (root / "CXR_png" / "CHNCXR_0099_x.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"CHNCXR_0099_x\.png: file name does not match"):
        load(m, root=root, progress=False)
    # HAM10000-style: path built from a column, searched in several folders
    ham = tmp_path / "ham"
    _png(ham / "part1" / "ISIC_1.jpg", 40)
    _png(ham / "part2" / "ISIC_2.jpg", 220)
    (ham / "meta.csv").write_text("lesion_id,image_id,dx\nL1,ISIC_1,cat\nL2,ISIC_2,dog\n")
    m2 = _manifest(layout={"image_dirs": ["part1", "part2"]},
                   labels={"file": "meta.csv", "path_template": "{image_id}.jpg", "label_columns": ["dx"]},
                   split={"rule": "random", "fractions": {"train": 1.0, "val": 0.0, "test": 0.0},
                          "group_column": "lesion_id"})
    ds2 = load(m2, root=ham, progress=False)
    assert sorted(ds2.ids) == ["ISIC_1.jpg", "ISIC_2.jpg"]


def test_shipped_folder_manifests_point_at_real_layouts():
    chexpert = load_manifest("chexpert")
    assert chexpert.task == "multilabel" and chexpert.labels["path_column"] == "Path"
    assert load_manifest("ham10000").split["group_column"] == "lesion_id"
    assert load_manifest("bimcv-covid19").split["group_regex"]


def test_16_bit_images_and_pad_resize(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    ramp = np.tile(np.linspace(1000, 4000, 40).astype(np.uint16), (20, 1))  # 12-bit values in 16 bits
    Image.fromarray(ramp).save(root / "a.png")
    assert Image.open(root / "a.png").mode.startswith("I")
    (root / "labels.csv").write_text("path,label\na.png,cat\n")
    m = _manifest(split={"rule": "random", "fractions": {"train": 1.0, "val": 0.0, "test": 0.0}})
    img = load(m, root=root, size=20, resize="pad", progress=False).images[0, 0].numpy()
    assert img[:4].max() == 0 and img[-4:].max() == 0  # padded above and below the wide image
    middle = img[10]
    assert middle[0] < 15 and middle[-1] > 240 and np.all(np.diff(middle.astype(int)) >= 0)
    stretched = load(m, root=root, size=20, resize="stretch", progress=False).images[0, 0].numpy()
    assert stretched[0, 10] == stretched[19, 10]  # no padding when stretched


def test_group_regex_that_misses_a_path_is_an_error_not_one_group_per_image(tmp_path):
    root = _folder(tmp_path / "data")
    split = {"rule": "random", "fractions": {"train": 0.6, "val": 0.2, "test": 0.2}, "seed": 0}
    missing = _manifest(split={**split, "group_regex": r"patient-(\d+)"})
    with pytest.raises(DataError, match=r"group_regex .* does not match its path"):
        load(missing, root=root, split="train", cache=False, progress=False)
