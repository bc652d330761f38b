"""Models and cut points: ``cut_points``, ``feature_info``, ``build`` and weight sources."""

from ttl.models.cuts import (SUPPORTED_ARCHS, CutInfo, cut_info, cut_points, family, feature_info,
                             stage_boundaries)
from ttl.models.sources import (available_sources, load_checkpoint, normalization, register_source,
                                source_identity)
from ttl.models.truncated import TTLModel, build, describe

__all__ = [
    "SUPPORTED_ARCHS", "CutInfo", "TTLModel", "available_sources", "build", "cut_info", "cut_points",
    "describe", "family", "feature_info", "load_checkpoint", "normalization", "register_source",
    "source_identity", "stage_boundaries",
]
