import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
# hermetic: the decoded-data cache of a test session lives in a temporary folder of its own, never
# in the repository (set TTL_CACHE to share one between sessions)
if "TTL_CACHE" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="ttl-test-cache-")
    os.environ["TTL_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, True)
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
