"""The manifest's normalisation and to_rgb decide what the network is fed; splits are checked before training."""

import numpy as np
import pytest
import torch
from torch import nn

from tiny import tiny_dataset
from ttl.data.manifest import NORMALISATIONS
from ttl.errors import DataError
from ttl.models.sources import IMAGENET_MEAN, IMAGENET_STD, normalization
from ttl.strategies import prepare
from ttl.train import TrainConfig, evaluate, fit
from ttl.train.batches import prepare_batch
from ttl.train.inputs import NORMALISATIONS as HONOURED
from ttl.train.loop import preprocess_for
from ttl.train.runs import load_run, run_params

CFG = TrainConfig(epochs=1, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0)
CPU = torch.device("cpu")


def _with(dataset, **preprocessing):
    dataset.meta = {"preprocessing": {"channels": int(dataset.images.shape[1]), "size": 32, **preprocessing}}
    return dataset


def _fed(model, dataset):
    """The first image as the network gets it (no augmentation)."""
    return prepare_batch(dataset.images[:1], preprocess_for(model, dataset, CFG, CPU, False))[0]


def test_every_normalisation_a_manifest_may_name_is_honoured():
    assert set(HONOURED) == set(NORMALISATIONS)


@pytest.mark.parametrize("how, source", [("source", "fractal"), ("imagenet", "fractal"), ("none", "fractal"),
                                         ("source", "scratch")])
def test_the_manifest_normalisation_is_what_the_network_gets(how, source):
    model = prepare("ttl", "resnet18", cut="layer1.0", source=source)
    data = _with(tiny_dataset(4), normalisation=how, to_rgb=True)
    pixels = data.images[0].float() / 255  # (1, H, W), grey
    mean, std = {"source": normalization(source, "resnet18"), "imagenet": (IMAGENET_MEAN, IMAGENET_STD),
                 "none": ((0, 0, 0), (1, 1, 1))}[how]
    want = torch.stack([(pixels[0] - m) / s for m, s in zip(mean, std)])
    assert torch.allclose(_fed(model, data), want, atol=1e-6)


def test_a_manifest_without_the_keys_keeps_the_sources_statistics():
    """The phantom manifests say `normalisation: source`, `to_rgb: true`: what every run was fed so far."""
    model = prepare("ttl", "resnet18", cut="layer1.0", source="fractal")
    plain = tiny_dataset(4)
    assert torch.equal(_fed(model, plain), _fed(model, _with(tiny_dataset(4), normalisation="source", to_rgb=True)))


def test_a_run_reloads_with_the_normalisation_it_was_trained_with(tmp_path):
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    train, val = _with(tiny_dataset(32), normalisation="none"), _with(tiny_dataset(32, seed=1), normalisation="none")
    params = run_params("ttl", "resnet18", "layer1.0", "scratch", 1.0, None, 2, "tiny")
    res = fit(model, train, val, CFG, out_dir=tmp_path, params=params)
    again, recorded = load_run(tmp_path)
    assert recorded["input"]["normalisation"] == "none"
    plain_val = tiny_dataset(32, seed=1)  # no manifest: the run's own choice still applies
    assert evaluate(again, plain_val, CFG)["auroc"] == res.metrics["val"]["auroc"]


def test_grey_images_without_to_rgb_need_a_one_channel_network(tmp_path):
    train, val = _with(tiny_dataset(32), to_rgb=False), _with(tiny_dataset(32, seed=1), to_rgb=False)
    three = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    with pytest.raises(DataError, match=r"1 channel\(s\), fed as stored \(to_rgb: false\), but the network's "
                                        r"first convolution takes 3"):
        fit(three, train, val, CFG, out_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written
    one = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    one.backbone.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)  # the first convolution adapted to grey
    res = fit(one, train, val, CFG)
    assert np.isfinite(res.history[0]["train_loss"])


def test_a_one_class_split_is_refused_before_the_first_epoch(tmp_path):
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    val = tiny_dataset(32, seed=1)
    val.labels = torch.zeros_like(val.labels)
    epochs = []
    with pytest.raises(DataError, match=r"the val split of tiny holds only class 'absent' \(32 images\)"):
        fit(model, tiny_dataset(32), val, CFG, out_dir=tmp_path, on_epoch_end=lambda e, row: epochs.append(e))
    assert epochs == [] and not (tmp_path / "checkpoint.pt").exists()
    train = tiny_dataset(32)
    train.labels = torch.ones_like(train.labels)
    with pytest.raises(DataError, match=r"the train split of tiny holds only class 'present'"):
        fit(model, train, tiny_dataset(32, seed=1), CFG)


def test_splits_fed_differently_are_refused():
    model = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    with pytest.raises(DataError, match=r"the val split .* preprocessing.normalisation 'imagenet' but the "
                                        r"training split .* 'source'"):
        fit(model, _with(tiny_dataset(32), normalisation="source"),
            _with(tiny_dataset(32, seed=1), normalisation="imagenet"), CFG)
