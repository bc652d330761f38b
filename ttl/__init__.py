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
__all__ = ["__version__"]
