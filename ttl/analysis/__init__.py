"""Representation analysis: SVCCA, linear CKA, random baselines and activation capture.

Numpy-only parts (``svcca``, ``linear_cka``, ``random_baseline``, ...) import without torch;
``activations``, ``layer_similarity`` and ``cross_layer_similarity`` import torch when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from ttl.analysis.baseline import RandomBaseline, baseline_for, random_baseline
from ttl.analysis.cka import linear_cka
from ttl.analysis.conv import flatten_conv, flatten_pair, position_indices
from ttl.analysis.svcca import FewSamplesWarning, SVCCAResult, cca, svcca, svd_reduce

_LAZY = {
    "activations": "ttl.analysis.capture",
    "layer_similarity": "ttl.analysis.similarity",
    "cross_layer_similarity": "ttl.analysis.similarity",
    "output_shapes": "ttl.analysis.similarity",
    "plot_similarity_curve": "ttl.analysis.plots",
    "plot_similarity_matrix": "ttl.analysis.plots",
    "plot_svcca_coefficients": "ttl.analysis.plots",
}

__all__ = [
    "FewSamplesWarning", "RandomBaseline", "SVCCAResult", "baseline_for", "cca", "flatten_conv",
    "flatten_pair", "linear_cka", "position_indices", "random_baseline", "svcca", "svd_reduce",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ttl.analysis' has no attribute {name!r}")
