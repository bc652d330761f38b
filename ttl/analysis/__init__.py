"""Representation analysis: SVCCA, linear CKA, their permutation nulls and activation capture.

Numpy-only parts (``svcca``, ``linear_cka``, ``permutation_null``, ...) import without torch;
``activations``, ``layer_similarity`` and ``cross_layer_similarity`` import torch when used.
``random_baseline`` (Gaussian features of given widths) is kept for teaching; it is not the
chance level of a comparison.
"""

from __future__ import annotations

import importlib
from typing import Any

from ttl.analysis.baseline import RandomBaseline, baseline_for, random_baseline
from ttl.analysis.cka import linear_cka
from ttl.analysis.conv import flatten_conv, flatten_pair, position_indices
from ttl.analysis.null import PermutationNull, permutation_null
from ttl.analysis.svcca import (GOOGLE_THRESHOLD, FewSamplesWarning, SVCCAResult, cca,
                                n_thresholded, svcca, svd_reduce, thresholded_mean)

_LAZY = {
    "activations": "ttl.analysis.capture",
    "layer_similarity": "ttl.analysis.similarity",
    "cross_layer_similarity": "ttl.analysis.similarity",
    "cross_layer_table": "ttl.analysis.similarity",
    "output_shapes": "ttl.analysis.similarity",
    "plot_similarity_curve": "ttl.analysis.plots",
    "plot_similarity_matrix": "ttl.analysis.plots",
    "plot_svcca_coefficients": "ttl.analysis.plots",
}

__all__ = [
    "GOOGLE_THRESHOLD", "FewSamplesWarning", "PermutationNull", "RandomBaseline", "SVCCAResult",
    "baseline_for", "cca", "flatten_conv", "flatten_pair", "linear_cka", "n_thresholded",
    "permutation_null", "position_indices", "random_baseline", "svcca", "svd_reduce",
    "thresholded_mean", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ttl.analysis' has no attribute {name!r}")
