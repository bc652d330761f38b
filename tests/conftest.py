import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TTL_CACHE", str(Path(__file__).parent.parent / ".cache" / "test-cache"))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture()
def source_checkpoint(tmp_path: Path):
    """A real checkpoint file of a randomly initialised resnet18 (a stand-in pretrained source)."""
    import torchvision

    torch.manual_seed(123)
    model = torchvision.models.resnet18(weights=None)
    # make BN statistics non-trivial so "copied or not" is observable
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    path = tmp_path / "source.pt"
    torch.save(model.state_dict(), path)
    return path, model.state_dict()
