import numpy as np
import pytest
import torch

from tiny import tiny_dataset
from ttl.train.batches import DeviceBatches, Preprocess, prepare_batch

PREP = Preprocess(24, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), augment=("random-resized-crop", "hflip"))


def test_streamed_path_gives_the_same_batches_as_the_resident_one():
    ds = tiny_dataset(40, size=32)
    resident = DeviceBatches(ds, 16, torch.device("cpu"), PREP, shuffle=True, seed=3)
    ds_np = tiny_dataset(40, size=32)
    ds_np.images = ds_np.images.numpy()  # like a memmap of the decoded cache
    streamed = DeviceBatches(ds_np, 16, torch.device("cpu"), PREP, shuffle=True, seed=3, max_device_bytes=0,
                             num_workers=0)
    assert resident.resident and not streamed.resident
    a, b = list(resident.epoch(2)), list(streamed.epoch(2))
    assert len(a) == len(b) == 3
    for (xa, ya), (xb, yb) in zip(a, b):
        assert sorted(ya.tolist()) == sorted(yb.tolist())
        assert xa.shape == xb.shape == (len(ya), 3, 24, 24)


def test_epochs_are_reproducible_and_differ_between_epochs():
    ds = tiny_dataset(32, size=32)
    b1 = DeviceBatches(ds, 8, torch.device("cpu"), PREP, shuffle=True, seed=0)
    b2 = DeviceBatches(ds, 8, torch.device("cpu"), PREP, shuffle=True, seed=0)
    e1 = [x for x, _ in b1.epoch(1)]
    assert all(torch.equal(x, y) for x, y in zip(e1, [x for x, _ in b2.epoch(1)]))
    assert not torch.equal(e1[0], next(iter(b1.epoch(2)))[0])


def test_prepare_batch_normalises_grey_to_three_channels_without_augmentation():
    x = torch.full((2, 1, 16, 16), 255, dtype=torch.uint8)
    out = prepare_batch(x, Preprocess(8, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)))
    assert out.shape == (2, 3, 8, 8)
    np.testing.assert_allclose(out.numpy(), 1.0, atol=1e-6)


def test_flips_only_keep_the_whole_image_and_manifest_augmentations_are_used():
    from ttl.train import TrainConfig
    from ttl.train.loop import augmentations

    x = torch.arange(16 * 16, dtype=torch.float32).view(1, 1, 16, 16).repeat(64, 1, 1, 1)
    g = torch.Generator().manual_seed(0)
    from ttl.train.batches import random_augment

    out = random_augment(x, 16, ("hflip", "vflip"), (0.7, 1.0), (1.0, 1.0), g)
    flips = {(bool(torch.allclose(o, x[0].flip(-1), atol=1e-3)), bool(torch.allclose(o, x[0].flip(-2), atol=1e-3)),
              bool(torch.allclose(o, x[0], atol=1e-3)), bool(torch.allclose(o, x[0].flip(-1, -2), atol=1e-3)))
             for o in out}
    assert len(flips) == 4  # identity, h, v and both flips all occur, and nothing else
    half = random_augment(x, 16, ("rot180",), (0.7, 1.0), (1.0, 1.0), g)
    kinds = [(bool(torch.allclose(o, x[0], atol=1e-3)), bool(torch.allclose(o, x[0].flip(-1, -2), atol=1e-3)))
             for o in half]
    assert set(kinds) == {(True, False), (False, True)}  # a half turn or nothing: never a mirror image
    ds = tiny_dataset(4)
    ds.meta = {"preprocessing": {"augment": ["hflip", "vflip"]}}
    assert augmentations(TrainConfig(), ds) == ("hflip", "vflip")
    assert augmentations(TrainConfig(augment=False), ds) == ()
    assert augmentations(TrainConfig(), tiny_dataset(4)) == ("random-resized-crop",)


def test_batches_after_the_first_build_no_tensors_from_host_values(monkeypatch):
    # On a GPU, a tensor built from Python values per batch is a blocking copy that stalls every step.
    ds = tiny_dataset(32, size=32)
    batches = DeviceBatches(ds, 8, torch.device("cpu"), PREP, shuffle=True, seed=0)
    first = next(iter(batches.epoch(0)))[0]
    made = []
    real_tensor = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(a) or real_tensor(*a, **k))
    again = [x for x, _ in batches.epoch(0)]
    assert made == []
    assert torch.equal(again[0], first)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_epoch_and_its_training_steps_never_synchronise_the_host():
    """fit's own step (ttl.train.loop.make_step: autocast, class-weighted loss, fused AdamW, the
    per-batch cosine scheduler) over an epoch of device batches, under sync-debug mode "error"."""
    from ttl.models import build
    from ttl.train import TrainConfig
    from ttl.train.loop import make_step

    dev = torch.device("cuda")
    ds = tiny_dataset(64, size=32)
    prep = Preprocess(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), augment=("random-resized-crop", "hflip"),
                      channels_last=True)
    batches = DeviceBatches(ds, 16, dev, prep, shuffle=True, seed=0, drop_last=True)
    model = build("resnet18", "layer2.1", num_classes=2, source="scratch").to(dev)
    model = model.to(memory_format=torch.channels_last)
    step = make_step(model, ds, TrainConfig(epochs=2, schedule="cosine", device="cuda"), dev, len(batches))

    def run_epoch(epoch: int) -> torch.Tensor:
        total = torch.zeros((), device=dev)
        for x, y in batches.epoch(epoch):
            loss, _ = step(x, y)
            total += loss
        return total

    run_epoch(0)  # warm-up: cuDNN autotuning, optimizer state, cached constants
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        total = run_epoch(1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(total).item()


def test_training_and_evaluation_resample_the_same_way():
    # 128 px noise shrunk to 64 px: an identity augmentation draw must give the evaluation image,
    # i.e. training antialiases exactly like evaluation (it used to resample without antialiasing).
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 1, 128, 128), dtype=torch.uint8, generator=g)
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    evaluation = prepare_batch(x, Preprocess(64, mean, std))
    identity_crop = Preprocess(64, mean, std, augment=("random-resized-crop",), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(prepare_batch(x, identity_crop, torch.Generator().manual_seed(1)), evaluation,
                               atol=1e-5, rtol=0)
    flipped = prepare_batch(x, Preprocess(64, mean, std, augment=("hflip",)), torch.Generator().manual_seed(2))
    kinds = []
    for train_img, eval_img in zip(flipped, evaluation):
        same = torch.allclose(train_img, eval_img, atol=1e-5)
        mirrored = torch.allclose(train_img, eval_img.flip(-1), atol=1e-5)
        assert same or mirrored
        kinds.append(same)
    assert 0 < sum(kinds) < len(kinds)  # both flipped and unflipped images were checked
