"""FractalDB-style IFS codes and rendering (ttl.pretrain.fractal), on tiny CPU images."""

from __future__ import annotations

import pytest
import torch

from ttl.errors import ConfigError
from ttl.pretrain import fractal as fr


@pytest.fixture(scope="module")
def codes() -> torch.Tensor:
    return fr.sample_ifs_codes(6, seed=1)


def test_codes_are_seeded_and_well_formed(codes):
    assert torch.equal(codes, fr.sample_ifs_codes(6, seed=1))
    assert not torch.equal(codes, fr.sample_ifs_codes(6, seed=2))
    assert codes.shape == (6, 4, 7)
    p = codes[..., 6]
    torch.testing.assert_close(p.sum(dim=1), torch.ones(6))
    n_maps = (p > 0).sum(dim=1)
    assert ((n_maps >= 2) & (n_maps <= 4)).all()
    assert codes[..., :6].abs().max() <= 1.0
    # probabilities follow |det| of each map
    det = (codes[..., 0] * codes[..., 3] - codes[..., 1] * codes[..., 2]).abs()
    torch.testing.assert_close(p, det / det.sum(dim=1, keepdim=True))


def test_codes_pass_the_filling_rate(codes):
    # re-rendered with other chaos-game randomness at the search resolution, the kept codes
    # still fill about the paper's 20 % of the image
    pts = round(fr.PAPER_POINTS_PER_PIXEL * 256**2)
    fill = fr.filling_rate(fr.render(codes, pts, 256, seed=99))
    assert (fill >= 0.18).all(), fill


def test_random_codes_are_often_degenerate():
    # the filter matters: most raw random codes fall below the threshold
    g = torch.Generator().manual_seed(0)
    raw = fr._random_codes(64, (2, 4), g)
    fill = fr.filling_rate(fr.render(raw, 1500, 64, seed=0))
    assert (fill < fr.PAPER_FILL_RATE).float().mean() > 0.5


def test_render_is_deterministic_per_seed(codes):
    a = fr.render(codes, 2000, 32, seed=3)
    assert a.dtype == torch.uint8 and a.shape == (6, 1, 32, 32)
    assert torch.equal(a, fr.render(codes, 2000, 32, seed=3))
    assert not torch.equal(a, fr.render(codes, 2000, 32, seed=4))
    assert set(a.unique().tolist()) <= {0, fr.POINT_VALUE}


def test_classes_render_differently(codes):
    imgs = fr.render(codes, 3000, 48, seed=0).float()
    for i in range(len(codes)):
        for j in range(i + 1, len(codes)):
            # fraction of pixels where the two classes disagree
            assert (imgs[i] != imgs[j]).float().mean() > 0.05, (i, j)


def test_flips_mirror_the_image(codes):
    base = fr.render(codes[:1].repeat(4, 1, 1), 2000, 32, seed=5)
    flipped = fr.render(codes[:1].repeat(4, 1, 1), 2000, 32, seed=5, flips=torch.arange(4))
    assert torch.equal(flipped[0], base[0])
    assert torch.equal(flipped[1], base[1].flip(1))
    assert torch.equal(flipped[2], base[2].flip(2))
    assert torch.equal(flipped[3], base[3].flip(1).flip(2))


def test_jitter_weights_one_parameter_of_every_map(codes):
    g = torch.Generator().manual_seed(0)
    param, factor, flips = fr.instance_variants(200, g)
    allowed = torch.tensor([1.0, *fr.JITTER_FACTORS])
    assert torch.isclose(factor[:, None], allowed[None, :]).any(dim=1).all()
    assert len(factor.unique()) == 5  # all five weights occur in 200 draws
    assert ((param >= 0) & (param < 6)).all() and ((flips >= 0) & (flips < 4)).all()
    j = fr.jitter_codes(codes[:2], torch.tensor([0, 5]), torch.tensor([1.2, 0.8]))
    torch.testing.assert_close(j[0, :, 0], codes[0, :, 0] * 1.2)
    torch.testing.assert_close(j[1, :, 5], codes[1, :, 5] * 0.8)
    torch.testing.assert_close(j[0, :, 1:], codes[0, :, 1:])
    torch.testing.assert_close(j[1, :, :5], codes[1, :, :5])


def test_patch_rendering_covers_more_than_points(codes):
    pts = fr.render(codes, 800, 48, seed=0, mode="point")
    patch = fr.render(codes, 800, 48, seed=0, mode="patch")
    assert (fr.filling_rate(patch) > fr.filling_rate(pts)).all()


def test_divergent_code_gives_an_empty_image_not_nan():
    expanding = torch.tensor([[[2.0, 0.0, 0.0, 2.0, 0.5, 0.5, 1.0]]])
    img = fr.render(expanding, 1000, 32, seed=0)
    assert fr.filling_rate(img).item() < 0.01


def test_dataset_contract_and_no_degenerate_instances(codes):
    ds = fr.make_dataset(6, 10, 32, seed=1, codes=codes)
    assert ds.images.shape == (60, 1, 32, 32) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64 and ds.labels.bincount().tolist() == [10] * 6
    assert len(ds) == 60 and len(ds.classes) == 6 and ds.task == "multiclass"
    img, label = ds[13]
    assert img.shape == (1, 32, 32) and int(label) == 1
    fill = fr.filling_rate(ds.images)
    assert (fill >= 0.5 * fr.PAPER_FILL_RATE).all() and (fill < 0.95).all()
    # validation split: same classes, fresh instances
    val = fr.make_dataset(6, 10, 32, seed=1, codes=codes, split="val")
    assert torch.equal(val.codes, ds.codes) and not torch.equal(val.images, ds.images)
    again = fr.make_dataset(6, 10, 32, seed=1, codes=codes)
    assert torch.equal(again.images, ds.images)


def test_bad_arguments_are_reported():
    with pytest.raises(ConfigError, match="n_maps"):
        fr.sample_ifs_codes(2, seed=0, n_maps=(3, 2))
    with pytest.raises(ConfigError, match="shape"):
        fr.render(torch.zeros(2, 3), 100, 32, seed=0)
    with pytest.raises(ConfigError, match="mode"):
        fr.render(torch.zeros(1, 2, 7), 100, 32, seed=0, mode="blob")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_render_on_cuda(codes):
    imgs = fr.render(codes, 4000, 64, seed=0, device="cuda")
    assert imgs.is_cuda and torch.equal(imgs, fr.render(codes, 4000, 64, seed=0, device="cuda"))
    cpu = fr.render(codes, 4000, 64, seed=0, device="cpu")
    # other random stream, same fractals: similar coverage
    torch.testing.assert_close(fr.filling_rate(imgs).cpu(), fr.filling_rate(cpu), atol=0.05, rtol=0)
