import pytest
import torch

from tiny import tiny_dataset
from ttl.errors import ConfigError
from ttl.strategies import STRATEGIES, prepare
from ttl.train import TrainConfig, fit


def _train_briefly(model):
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-2, n_boot=0, progress=False, patience=0)
    return fit(model, tiny_dataset(32, seed=1), tiny_dataset(16, seed=2), cfg).model


def _backbone_state(model):
    return {k.removeprefix("backbone."): v for k, v in model.state_dict().items() if k.startswith("backbone.")}


def test_all_strategies_known():
    assert set(STRATEGIES) == {"full", "ttl", "lwft", "transfusion", "scratch", "linear_probe"}
    with pytest.raises(ConfigError, match="unknown strategy"):
        prepare("fancy", "resnet18")
    with pytest.raises(ConfigError, match="needs a cut"):
        prepare("lwft", "resnet18")


def test_lwft_freezes_bottom_blocks_and_their_batchnorm(source_checkpoint):
    path, src = source_checkpoint
    model = _train_briefly(prepare("lwft", "resnet18", cut="layer2.0", source=str(path)))
    state = _backbone_state(model)
    for k, v in state.items():
        frozen = k.split(".")[0] in ("conv1", "bn1", "layer1") or k.startswith("layer2.0.")
        if frozen:  # weights and batch-norm running statistics untouched
            assert torch.equal(v, src[k]), k
    assert not torch.equal(state["layer3.0.conv1.weight"], src["layer3.0.conv1.weight"])
    assert not torch.equal(state["layer2.1.bn1.running_mean"], src["layer2.1.bn1.running_mean"])
    assert all(not p.requires_grad for n, p in model.named_parameters() if n.startswith("backbone.layer1"))


def test_linear_probe_trains_only_the_head(source_checkpoint):
    path, src = source_checkpoint
    model = prepare("linear_probe", "resnet18", cut="layer3.1", source=str(path))
    head_before = model.head.weight.detach().clone()
    model = _train_briefly(model)
    assert all(torch.equal(v, src[k]) for k, v in _backbone_state(model).items())
    assert not torch.equal(model.head.weight, head_before)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}


def test_ttl_reuses_source_up_to_cut_and_trains_everything(source_checkpoint):
    path, src = source_checkpoint
    model = prepare("ttl", "resnet18", cut="layer2.1", source=str(path))
    assert all(torch.equal(v, src[k]) for k, v in _backbone_state(model).items())
    assert all(p.requires_grad for p in model.parameters())
    trained = _backbone_state(_train_briefly(model))
    assert not torch.equal(trained["layer1.0.conv1.weight"], src["layer1.0.conv1.weight"])


def test_transfusion_keeps_bottom_blocks_with_bn_stats_and_slims_the_rest(source_checkpoint):
    path, src = source_checkpoint
    model = prepare("transfusion", "resnet18", cut="layer2.1", source=str(path), width=0.5)
    state = _backbone_state(model)
    for k in ("layer1.0.conv1.weight", "layer2.1.bn2.running_mean", "layer2.1.bn2.running_var", "bn1.weight"):
        assert torch.equal(state[k], src[k]), k
    assert state["layer3.0.conv1.weight"].shape[0] == src["layer3.0.conv1.weight"].shape[0] // 2
    assert model.head.in_features == 256
    assert all(p.requires_grad for p in model.parameters())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 2)
    same_width = _backbone_state(prepare("transfusion", "resnet18", cut="layer2.1", source=str(path), width=1.0))
    assert same_width["layer3.0.conv1.weight"].shape == src["layer3.0.conv1.weight"].shape
    assert not torch.equal(same_width["layer3.0.conv1.weight"], src["layer3.0.conv1.weight"])
    assert torch.equal(same_width["layer3.0.bn1.running_var"], torch.ones(256))


def test_scratch_and_full(source_checkpoint):
    path, src = source_checkpoint
    full = _backbone_state(prepare("full", "resnet18", source=str(path)))
    assert all(torch.equal(v, src[k]) for k, v in full.items())
    scratch = _backbone_state(prepare("scratch", "resnet18", source=str(path)))
    assert not torch.equal(scratch["layer1.0.conv1.weight"], src["layer1.0.conv1.weight"])


def test_a_registered_strategy_reaches_prepare_labels_the_search_and_the_cli(monkeypatch):
    """The extension point: one decorated builder makes a strategy known everywhere."""
    import ttl.strategies as st
    from ttl.cli import build_parser
    from ttl.strategies import StrategySpec, prepare, register_strategy

    monkeypatch.setitem(st.REGISTRY, "bn_only", None)  # registered for this test only (removed after it)
    del st.REGISTRY["bn_only"]

    @register_strategy("bn_only", "only batch-norm parameters and the head train")
    def _bn_only(arch, cut, num_classes, source, width, slim_from, seed):
        model = st.build(arch, cut, num_classes, source=source, seed=seed)
        for name, p in model.backbone.named_parameters():
            p.requires_grad_(".bn" in f".{name}" or "downsample.1" in name)
        return model

    model = prepare("bn_only", "resnet18", cut="layer1.1", source="scratch")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("bn" in n or n.startswith("head") for n in trainable)
    assert StrategySpec("bn_only", "layer1.1").label == "bn_only(layer1.1)"
    assert "bn_only" in st.cut_strategies()
    for command in ("search", "train"):
        assert build_parser().parse_args([command, "--strategy", "bn_only"]).strategy == "bn_only"
    from ttl.search import _check

    _check("resnet18", "bn_only", "auroc", (0,))  # the cut search accepts it
    with pytest.raises(ConfigError, match="strategy 'ttl' is registered twice"):
        register_strategy("ttl", "again")(_bn_only)
