"""MedMNIST npz loading, checksummed download into the cache, and clear offline failures (no network)."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request

import numpy as np
import pytest

from ttl.data import load, medmnist
from ttl.errors import ChecksumError, DataError

URL = "https://zenodo.example/files/toymnist_64.npz?download=1"


@pytest.fixture(autouse=True)
def _no_network(tmp_path, monkeypatch):
    """Every test runs with its own cache, and any real download attempt fails loudly."""
    monkeypatch.setenv("TTL_CACHE", str(tmp_path / "cache"))

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def _npz(path, n=(12, 4, 6), size=28, rgb=False, classes=2, seed=0):
    """A small npz in MedMNIST's format: {split}_images uint8 (N,H,W[,3]), {split}_labels (N,1)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        shape = (k, size, size, 3) if rgb else (k, size, size)
        labels = (np.arange(k) % classes).astype(np.uint8)[:, None]
        images = rng.integers(0, 20, shape, dtype=np.uint8) + (labels[:, 0] * 100).astype(np.uint8).reshape(
            (k,) + (1,) * (len(shape) - 1))
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    np.savez_compressed(path, **arrays)
    return path


def _manifest(md5, size=64, channels=1):
    return {
        "name": "toymnist", "task": "binary", "classes": ["a", "b"],
        "source": {"kind": "medmnist", "url": "https://zenodo.example", "flag": "toymnist",
                   "files": {size: {"url": URL, "md5": md5}}},
        "licence": "test", "access": {"registration": False}, "split": {"rule": "official"},
        "preprocessing": {"channels": channels, "size": size},
    }


def test_read_npz_path_override(tmp_path):
    path = _npz(tmp_path / "x.npz")
    ds = load("pneumoniamnist", split="val", npz=str(path), size=28, progress=False)
    assert tuple(ds.images.shape) == (4, 1, 28, 28) and ds.classes == ["normal", "pneumonia"]
    assert ds.labels.tolist() == [0, 1, 0, 1]
    # labels are tied to the pixels the test drew
    assert (ds.images.float().mean((1, 2, 3)) > 50).long().tolist() == ds.labels.tolist()
    big = load("pneumoniamnist", split="test", npz=str(path), size=40, progress=False)
    assert tuple(big.images.shape) == (6, 1, 40, 40)


def test_rgb_npz_is_channels_first(tmp_path):
    path = _npz(tmp_path / "d.npz", rgb=True, classes=7)
    ds = load("dermamnist", split="train", npz=str(path), size=28, progress=False)
    assert tuple(ds.images.shape) == (12, 3, 28, 28) and ds.task == "multiclass" and len(ds.classes) == 7


def test_offline_download_fails_clearly_and_leaves_nothing(tmp_path):
    with pytest.raises(DataError) as err:
        load("pneumoniamnist", progress=False)
    msg = str(err.value)
    assert "could not download https://zenodo.org/records/10519652/files/pneumoniamnist_64.npz" in msg
    assert str(tmp_path / "cache" / "medmnist" / "pneumoniamnist_64.npz") in msg
    assert not list((tmp_path / "cache" / "medmnist").iterdir())
    with pytest.raises(DataError, match="downloading is off"):
        load("pneumoniamnist", download=False, progress=False)


def _serve(monkeypatch, payload, calls):
    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    def fake(url, timeout=None):
        calls.append(url)
        return Response(payload)

    monkeypatch.setattr(urllib.request, "urlopen", fake)


def test_download_checksum_and_cache(tmp_path, monkeypatch):
    payload = _npz(tmp_path / "src.npz", size=64).read_bytes()
    calls: list[str] = []
    _serve(monkeypatch, payload, calls)
    m = _manifest(hashlib.md5(payload).hexdigest())
    ds = load(m, split="train", progress=False)
    assert calls == [URL] and tuple(ds.images.shape) == (12, 1, 64, 64)
    cached = tmp_path / "cache" / "medmnist" / "toymnist_64.npz"
    assert cached.read_bytes() == payload
    again = load(m, split="test", progress=False)  # file from the cache, no second download
    assert calls == [URL] and len(again) == 6
    # a corrupted cached file is refused, not used
    cached.write_bytes(payload[:-10] + b"0123456789")
    with pytest.raises(ChecksumError, match="toymnist_64.npz: md5 is"):
        load(m, split="val", progress=False)


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, monkeypatch):
    payload = _npz(tmp_path / "src.npz", size=64).read_bytes()
    _serve(monkeypatch, payload, [])
    with pytest.raises(ChecksumError, match="expected 00000000"):
        load(_manifest("0" * 32), progress=False)
    assert not list((tmp_path / "cache" / "medmnist").iterdir())


def test_root_folder_with_published_name_is_checksummed(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    _npz(folder / "pneumoniamnist_64.npz", size=64)  # not the published file, so its md5 differs
    with pytest.raises(ChecksumError, match="pneumoniamnist_64.npz: md5 is .* expected 8f4eceb4"):
        load("pneumoniamnist", root=folder, progress=False)


def test_bad_npz_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(DataError, match=r"junk\.npz: not a readable npz"):
        load("breastmnist", npz=str(junk), progress=False)
    partial = tmp_path / "partial.npz"
    np.savez(partial, train_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"missing key\(s\) \['train_labels'\]"):
        load("breastmnist", npz=str(partial), progress=False)
    out_of_range = tmp_path / "range.npz"
    np.savez(out_of_range, train_images=np.zeros((2, 28, 28), np.uint8), train_labels=np.array([[0], [5]]))
    with pytest.raises(DataError, match=r"train_labels\[1\] = 5 is outside the 2 classes"):
        load("breastmnist", npz=str(out_of_range), progress=False)
    with pytest.raises(DataError, match="npz file not found"):
        load("breastmnist", npz=str(tmp_path / "absent.npz"), progress=False)


def test_pick_size_and_file_names():
    assert medmnist.pick_size([28, 64, 128, 224], 64) == 64
    assert medmnist.pick_size([28, 64, 128, 224], 100) == 128
    assert medmnist.pick_size([28, 64, 128, 224], 300) == 224
    assert medmnist.npz_filename("breastmnist", 28) == "breastmnist.npz"
    assert medmnist.npz_filename("breastmnist", 224) == "breastmnist_224.npz"
