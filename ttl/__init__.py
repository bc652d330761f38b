"""TTL Study: a reproducible study of Truncated Transfer Learning (Peng et al., BMVC 2023).

Submodules are imported lazily so ``import ttl`` stays fast:
``ttl.models``, ``ttl.strategies``, ``ttl.train``, ``ttl.metrics``, ``ttl.efficiency``,
``ttl.data``, ``ttl.analysis``, ``ttl.stats``, ``ttl.explain``, ``ttl.search``, ``ttl.pretrain``.
"""

from __future__ import annotations

import warnings

# tqdm.auto warns "IProgress not found" (with a local path) in a kernel without ipywidgets, then
# falls back to the plain bar the package uses anyway: not worth a warning in every chapter.
warnings.filterwarnings("ignore", message="IProgress not found")

__version__ = "0.1.0"
SUBPACKAGES = ("models", "strategies", "train", "metrics", "efficiency", "data", "analysis", "stats", "explain",
               "search", "pretrain", "experiments", "book", "provenance", "seeding", "errors")
__all__ = ["__version__", *SUBPACKAGES]


def __getattr__(name: str) -> object:
    """``ttl.models`` and the other submodules, imported on first use (PEP 562)."""
    if name in SUBPACKAGES:
        import importlib

        return importlib.import_module(f"ttl.{name}")
    raise AttributeError(f"module 'ttl' has no attribute {name!r}")
