"""FractalDB-style formula-driven pre-training: an offline weight source (``source="fractal"``).

- :mod:`ttl.pretrain.fractal`: IFS code search, vectorised chaos-game rendering, datasets;
- :mod:`ttl.pretrain.train`: pre-training, backbone export, ``weights/manifest.json`` registration.
"""

from ttl.pretrain.fractal import (FRACTAL_MEAN, FRACTAL_STD, FractalDataset, filling_rate,
                                  make_dataset, render, sample_ifs_codes)
from ttl.pretrain.train import MANIFEST_KEYS, pretrain, register_weights

__all__ = [
    "FRACTAL_MEAN", "FRACTAL_STD", "FractalDataset", "MANIFEST_KEYS", "filling_rate",
    "make_dataset", "pretrain", "register_weights", "render", "sample_ifs_codes",
]
