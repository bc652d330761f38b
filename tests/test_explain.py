import numpy as np
import pytest
import torch

from tiny import tiny_dataset
from ttl.errors import ConfigError
from ttl.explain import METHODS, faithfulness, gradcam, model_inputs, plot_cams, to_display
from ttl.models.sources import normalization
from ttl.strategies import prepare
from ttl.train import TrainConfig, fit

SQUARE = 32 // 3  # tiny_dataset's square side at 32 px


@pytest.fixture(scope="module")
def trained():
    """resnet18 kept up to layer2.1, trained two epochs on the tiny set (positives: a bright square)."""
    model = prepare("ttl", "resnet18", cut="layer2.1", source="scratch", seed=0)
    cfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, n_boot=0, progress=False, patience=0)
    res = fit(model, tiny_dataset(64, seed=1), tiny_dataset(48, seed=2), cfg)
    assert res.metrics["val"]["auroc"]["value"] > 0.9
    test = tiny_dataset(24, seed=5)
    pos = np.flatnonzero(test.labels.numpy() == 1)
    return res.model, test, pos


def _square_mask(image: torch.Tensor) -> np.ndarray:
    """Where the bright square is: the SQUARE x SQUARE window of highest mean intensity."""
    box = torch.nn.functional.avg_pool2d(image.float().mean(0)[None, None], SQUARE, stride=1)[0, 0]
    r, c = np.unravel_index(int(box.argmax()), tuple(box.shape))
    mask = np.zeros(image.shape[-2:], bool)
    mask[r:r + SQUARE, c:c + SQUARE] = True
    return mask


def test_heat_concentrates_on_the_square_of_positives(trained):
    model, test, pos = trained
    res = gradcam(model, model_inputs(model, test)[pos], targets=[1] * len(pos))
    ratios = []
    for j, i in enumerate(pos):
        mask = _square_mask(test.images[i])
        ratios.append(res.heatmaps[j][mask].mean() / (res.heatmaps[j][~mask].mean() + 1e-6))
    ratios = np.array(ratios)
    assert np.median(ratios) > 1.5
    assert (ratios > 1).mean() >= 0.8


def test_deletion_of_salient_pixels_beats_random_order(trained):
    model, test, pos = trained
    x = model_inputs(model, test)[pos]
    cam = gradcam(model, x, targets=[1] * len(pos))
    dele = faithfulness(model, x, cam.heatmaps, targets=[1] * len(pos), steps=8, seed=0)  # blurred baseline
    assert dele.mean_auc < dele.mean_random_auc
    assert dele.beats_random >= 0.75
    # nothing replaced at fraction 0: the model's own probability; everything replaced at 1: same image
    np.testing.assert_allclose(dele.curves[:, 0], cam.scores, atol=1e-5)
    np.testing.assert_allclose(dele.curves[:, -1], dele.random_curves[:, -1], atol=1e-5)
    ins = faithfulness(model, x, cam.heatmaps, targets=[1] * len(pos), steps=8, mode="insertion",
                       baseline="mean")
    assert ins.mean_auc > ins.mean_random_auc
    doc = dele.as_dict()
    assert doc["lower_is_better"] and len(doc["curve"]) == 9 and doc["fractions"][-1] == 1.0


def test_faithfulness_is_seeded_and_road_runs(trained):
    model, test, pos = trained
    x = model_inputs(model, test)[pos[:4]]
    heat = gradcam(model, x).heatmaps
    a = faithfulness(model, x, heat, steps=4, seed=3, road=True)
    b = faithfulness(model, x, heat, steps=4, seed=3)
    np.testing.assert_array_equal(a.random_curves, b.random_curves)
    assert a.road_error is None and a.road.shape == (4,) and np.isfinite(a.road).all()
    with pytest.raises(ConfigError, match="baseline"):
        faithfulness(model, x, heat, baseline="noise")
    with pytest.raises(ConfigError, match="do not match"):
        faithfulness(model, x, heat[:, :8])


def test_shapes_ranges_and_default_target_is_the_predicted_class(trained):
    model, test, _ = trained
    x = model_inputs(model, test)[:6]
    res = gradcam(model, x, batch_size=4)
    assert res.heatmaps.shape == (6, 32, 32) and res.heatmaps.dtype == np.float32
    assert res.heatmaps.min() >= 0 and res.heatmaps.max() <= 1 and res.heatmaps.max() > 0.5
    assert res.overlays.shape == (6, 32, 32, 3) and res.overlays.dtype == np.uint8
    with torch.no_grad():
        predicted = model.eval()(x).argmax(1).numpy()
    np.testing.assert_array_equal(res.targets, predicted)
    assert res.method == "gradcam" and res.cut == "layer2.1" and ((0 <= res.scores) & (res.scores <= 1)).all()


def test_to_display_undoes_the_normalisation():
    img = torch.rand(2, 3, 8, 8)
    mean, std = normalization("imagenet")
    norm = (img - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    disp = to_display(norm, mean, std)
    assert disp.shape == (2, 8, 8, 3) and disp.dtype == np.float32
    np.testing.assert_allclose(disp, img.permute(0, 2, 3, 1).numpy(), atol=1e-5)
    assert to_display(norm[0], mean, std).shape == (8, 8, 3)


def test_default_target_layer_is_the_last_kept_block(trained):
    model, test, _ = trained
    x = model_inputs(model, test)[:4]
    default = gradcam(model, x)
    assert default.layer == "backbone.layer2.1"
    np.testing.assert_allclose(default.heatmaps, gradcam(model, x, target_layer=model.backbone.layer2[1]).heatmaps)
    np.testing.assert_allclose(default.heatmaps, gradcam(model, x, target_layer="layer2.1").heatmaps)
    earlier = gradcam(model, x, target_layer="layer1.1")
    assert earlier.layer == "backbone.layer1.1" and not np.allclose(earlier.heatmaps, default.heatmaps)
    shallow = prepare("ttl", "resnet18", cut="layer1.0", source="scratch")
    assert gradcam(shallow, x[:1]).layer == "backbone.layer1.0"
    with pytest.raises(ConfigError, match="layer3.0"):
        gradcam(model, x, target_layer="layer3.0")  # cut away


@pytest.mark.parametrize("arch, cut, name", [
    ("resnet18", "stem", "backbone.maxpool"), ("resnet18", "layer1.0", "backbone.layer1.0"),
    ("densenet121", "stem", "backbone.features.pool0"),
    ("densenet121", "transition1", "backbone.features.transition1"),
    ("densenet121", "denseblock4", "final_act")])
def test_default_target_outputs_the_cut_itself_after_its_activation(arch, cut, name):
    # The Grad-CAM target must be the module whose output *is* the feature map at the cut: not
    # the block's first module (conv1 before BN/ReLU/pool), and after DenseNet's final ReLU.
    from ttl.explain import resolve_target_layer
    from ttl.models import build

    model = build(arch, cut, source="scratch", seed=0).eval()
    layer, layer_name = resolve_target_layer(model)
    assert layer is model.last_block() and layer_name == name
    assert resolve_target_layer(model, cut)[1] == name
    seen = []
    handle = layer.register_forward_hook(lambda _m, _i, out: seen.append(out))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.features(x)
        model(x)
    handle.remove()
    assert len(seen) == 2 and torch.equal(seen[0], feats)
    if cut in ("stem", "denseblock4"):
        assert (feats >= 0).all()  # after the activation


def test_gradcam_default_is_the_stem_output_not_conv1():
    model = prepare("ttl", "resnet18", cut="stem", source="scratch", seed=0)
    x = torch.randn(2, 3, 32, 32)
    default = gradcam(model, x)
    assert default.layer == "backbone.maxpool"
    np.testing.assert_allclose(default.heatmaps, gradcam(model, x, target_layer="backbone.maxpool").heatmaps)
    assert not np.allclose(default.heatmaps, gradcam(model, x, target_layer="backbone.conv1").heatmaps)


def test_mode_grads_and_requires_grad_are_restored():
    model = prepare("linear_probe", "resnet18", cut="layer1.1", source="scratch", seed=0)
    model.train()
    modes = {n: m.training for n, m in model.named_modules()}
    req = {n: p.requires_grad for n, p in model.named_parameters()}
    assert not all(modes.values()) and any(modes.values())  # frozen blocks stay in eval mode
    marker = torch.full_like(model.head.weight, 7.0)
    model.head.weight.grad = marker
    x = torch.randn(3, 3, 32, 32)
    res = gradcam(model, x)  # the whole backbone is frozen: gradients still reach the block
    assert res.heatmaps.max() > 0
    assert {n: m.training for n, m in model.named_modules()} == modes
    assert {n: p.requires_grad for n, p in model.named_parameters()} == req
    assert model.head.weight.grad is marker
    assert all(p.grad is None for n, p in model.named_parameters() if n != "head.weight")
    faithfulness(model, x, res.heatmaps, steps=2, n_random=1)
    assert {n: m.training for n, m in model.named_modules()} == modes


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_runs(method, trained):
    model, test, pos = trained
    res = gradcam(model, model_inputs(model, test)[pos[:2]], method=method, batch_size=64)
    assert res.method == method and res.heatmaps.shape == (2, 32, 32)
    assert np.isfinite(res.heatmaps).all() and res.heatmaps.max() <= 1 and res.heatmaps.min() >= 0


def test_unknown_method_lists_the_valid_ones():
    model = prepare("ttl", "resnet18", cut="stem", source="scratch")
    with pytest.raises(ConfigError, match="gradcam\\+\\+.*ablationcam"):
        gradcam(model, torch.randn(1, 3, 32, 32), method="smoothgrad")


def test_plot_cams_grid(trained):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, test, pos = trained
    x = model_inputs(model, test)[pos[:3]]
    results = {"layer1.1": gradcam(model, x, target_layer="layer1.1"), "layer2.1": gradcam(model, x)}
    fig = plot_cams(to_display(x, *normalization("scratch")), results, class_names=test.classes)
    assert len(fig.axes) == 3 * 3
    assert [ax.get_title() for ax in fig.axes[:3]] == ["image", "layer1.1", "layer2.1"]
    plt.close(fig)


def test_a_registered_cam_method_reaches_gradcam_and_faithfulness(trained, monkeypatch):
    """A CAM written against pytorch_grad_cam's BaseCAM (weights: one per channel, here the mean
    activation) and registered under a new name is what gradcam(method=...) computes."""
    from pytorch_grad_cam.base_cam import BaseCAM

    from ttl import explain

    class MeanActivationCAM(BaseCAM):
        def get_cam_weights(self, input_tensor, target_layer, targets, activations, grads):
            return activations.mean(axis=(2, 3))

    made = []

    def make(model, layer, batch_size):
        made.append(layer)
        return MeanActivationCAM(model=model, target_layers=[layer])

    monkeypatch.setitem(explain.METHODS, "meanact", explain.CamMethod("meanact", "mean activation", make))
    model, test, pos = trained
    x = model_inputs(model, test)[pos]
    res = gradcam(model, x, method="meanact", targets=[1] * len(pos))
    assert res.method == "meanact" and res.heatmaps.shape == (len(pos), 32, 32) and made
    assert made[0] is model.last_block()
    eigen = gradcam(model, x, method="eigencam", targets=[1] * len(pos))
    assert not np.allclose(res.heatmaps, eigen.heatmaps)  # its own weights, not a shipped method's
    with pytest.raises(ConfigError, match="unknown CAM method 'nope'; known: gradcam, .*meanact"):
        gradcam(model, x, method="nope")
    with pytest.raises(ConfigError, match="registered twice"):
        explain.register_cam("gradcam", "again")(make)
