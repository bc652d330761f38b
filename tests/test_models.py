import pytest
import torch

from ttl.errors import ChecksumError, ConfigError, WeightsUnavailableError
from ttl.models import build, cut_info, cut_points, feature_info, stage_boundaries
from ttl.provenance import sha256_file

ARCHS = ["resnet18", "resnet50", "densenet121"]


def test_cut_point_counts_and_names():
    r50 = cut_points("resnet50")
    assert len(r50) == 17 and r50[0] == "stem" and r50[-1] == "layer4.2" and "layer3.5" in r50
    assert len(cut_points("resnet18")) == 9
    dn = cut_points("densenet121")
    assert dn == ["stem", "denseblock1", "transition1", "denseblock2", "transition2",
                  "denseblock3", "transition3", "denseblock4"]
    assert stage_boundaries("resnet50") == ["layer1.2", "layer2.3", "layer3.5", "layer4.2"]


@pytest.mark.parametrize("arch", ARCHS)
def test_every_cut_builds_runs_and_shrinks(arch):
    x = torch.randn(2, 3, 64, 64)
    previous = None
    for info in feature_info(arch):
        model = build(arch, info.name, num_classes=3, source="scratch").eval()
        with torch.no_grad():
            feats = model.features(x)
            out = model(x)
        assert out.shape == (2, 3)
        assert feats.shape[1] == info.channels == model.head.in_features
        n = sum(p.numel() for p in model.parameters())
        if previous is not None:
            assert n > previous, f"{arch}: {info.name} should hold more parameters than the cut before"
        previous = n


def test_full_model_matches_torchvision_forward():
    import torchvision

    torch.manual_seed(0)
    ref = torchvision.models.densenet121(weights=None).eval()
    model = build("densenet121", None, num_classes=5, source="scratch").eval()
    model.backbone.load_state_dict({k: v for k, v in ref.state_dict().items() if k.startswith("features.")})
    model.head.load_state_dict(ref.classifier.state_dict() | {"weight": ref.classifier.weight[:5],
                                                              "bias": ref.classifier.bias[:5]})
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x)[:, :5], atol=1e-5)


def test_truncation_drops_discarded_parameters():
    full = build("resnet50", None, source="scratch")
    cut = build("resnet50", "layer3.5", source="scratch")
    n_full = sum(p.numel() for p in full.parameters())
    n_cut = sum(p.numel() for p in cut.parameters())
    assert n_cut < 0.40 * n_full
    assert not any(k.startswith("backbone.layer4") for k in cut.state_dict())
    assert cut.head.in_features == 1024


def test_checkpoint_source_loads_weights_and_checks_sha(source_checkpoint, tmp_path):
    path, state = source_checkpoint
    model = build("resnet18", "layer2.1", source=str(path))
    assert torch.equal(model.backbone.layer2[1].conv1.weight, state["layer2.1.conv1.weight"])
    assert torch.equal(model.backbone.bn1.running_mean, state["bn1.running_mean"])
    build("resnet18", "stem", source=str(path), sha256=sha256_file(path))
    with pytest.raises(ChecksumError, match="sha256"):
        build("resnet18", "stem", source=str(path), sha256="0" * 64)
    with pytest.raises(WeightsUnavailableError, match="do not fit"):
        build("resnet50", "stem", source=str(path))


def test_bad_arch_cut_and_source_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown architecture"):
        cut_points("vgg16")
    with pytest.raises(ConfigError, match="valid cuts"):
        cut_info("resnet18", "layer5.0")
    with pytest.raises(ConfigError, match="unknown weight source"):
        build("resnet18", "stem", source="imagenet21k")


def test_imagenet_offline_raises_a_clear_error(tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(WeightsUnavailableError, match="offline") as err:
        build("resnet18", "stem", source="imagenet")
    assert "resnet18-" in str(err.value) and str(tmp_path) in str(err.value)


def test_fractal_source_missing_arch_says_how_to_make_it():
    with pytest.raises(WeightsUnavailableError, match="ttl pretrain"):
        build("resnet152", "stem", source="fractal")


def _offline(monkeypatch, tmp_path):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)


def test_imagenet_version_names_select_torchvision_weights(tmp_path, monkeypatch):
    _offline(monkeypatch, tmp_path)
    with pytest.raises(WeightsUnavailableError, match="resnet50-0676ba61"):
        build("resnet50", "stem", source="imagenet:IMAGENET1K_V1")
    with pytest.raises(WeightsUnavailableError, match="resnet50-11ad3fa6"):
        build("resnet50", "stem", source="imagenet")
    # for densenet121 plain 'imagenet' is the offline Keras source; a version name still means torchvision's
    with pytest.raises(WeightsUnavailableError, match="densenet121-a639ec97"):
        build("densenet121", "stem", source="imagenet:IMAGENET1K_V1")
    with pytest.raises(ConfigError, match="IMAGENET1K_V1, IMAGENET1K_V2"):
        build("resnet50", "stem", source="imagenet:IMAGENET1K_V9")
    with pytest.raises(ConfigError, match="only for densenet121"):
        build("resnet18", "stem", source="imagenet:keras")
    with pytest.raises(ConfigError, match="no ':x' suffix"):
        build("resnet18", "stem", source="scratch:x")


def test_source_identity_names_the_weights_and_their_sha256(tmp_path, monkeypatch, source_checkpoint):
    from ttl.models import source_identity

    _offline(monkeypatch, tmp_path)
    plain = source_identity("imagenet", "resnet50")
    assert plain["variant"] == "IMAGENET1K_V2" and plain["name"] == "ResNet50_Weights.IMAGENET1K_V2"
    assert plain["origin"].endswith("resnet50-11ad3fa6.pth") and plain["sha256"] is None
    v1 = source_identity("imagenet:IMAGENET1K_V1", "resnet50")
    assert v1["variant"] == "IMAGENET1K_V1" and v1["hash_prefix"] == "0676ba61"
    cached = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in file")
    assert source_identity("imagenet:IMAGENET1K_V1", "resnet50")["sha256"] == sha256_file(cached)
    keras = source_identity("imagenet", "densenet121")
    assert keras["variant"] == "keras" and len(keras["sha256"]) == 64 and "MedMNIST" in keras["licences"]
    assert source_identity("imagenet:keras", "densenet121")["sha256"] == keras["sha256"]
    path, _ = source_checkpoint
    ckpt = source_identity(str(path), "resnet18")
    assert ckpt["sha256"] == sha256_file(path) and ckpt["name"] == "source.pt"
    assert source_identity("scratch", "resnet18")["sha256"] is None


def test_builder_values_that_would_be_ignored_or_crash_are_refused():
    from ttl.errors import ConfigError
    from ttl.models import build

    with pytest.raises(ConfigError, match="num_classes must be an integer >= 1, got 1.5"):
        build("resnet18", "layer1.0", num_classes=1.5, source="scratch")
    with pytest.raises(ConfigError, match="sha256 checks a checkpoint file; source 'scratch' is not one"):
        build("resnet18", "layer1.0", source="scratch", sha256="abc")


def test_measuring_cut_points_leaves_the_global_random_state_alone():
    """``feature_info`` is cached and builds a throw-away model on its first call: drawing its
    weights from the global generator made ``manual_seed(0); build(...)`` give another random head
    in a fresh process than after any earlier call (found by the wheel test in the full suite)."""
    import torch

    feature_info.cache_clear()
    torch.manual_seed(0)
    before = torch.random.get_rng_state()
    cut_points("resnet18")
    assert torch.equal(torch.random.get_rng_state(), before)
    feature_info.cache_clear()
    torch.manual_seed(0)
    cold = build("resnet18", "layer1.1", source="scratch").head.weight.detach().clone()
    torch.manual_seed(0)
    warm = build("resnet18", "layer1.1", source="scratch").head.weight.detach()
    assert torch.equal(cold, warm)
