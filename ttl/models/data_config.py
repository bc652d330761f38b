"""What a network is fed: its data config, carried by the model like timm's ``pretrained_cfg``.

A :class:`~ttl.models.truncated.TTLModel` holds two of them. ``model.pretrained_cfg`` is its
source's (the statistics the source was trained with, three channels, no fixed size), set by
:func:`~ttl.models.truncated.build`. ``model.data_config`` is what the trained network was fed
(the dataset manifest's normalisation and ``to_rgb``, the training image size), set by
:func:`ttl.train.fit` and by :func:`ttl.train.runs.load_run` from the run record
(``provenance.params.input``), so evaluation, probes and Grad-CAM feed a trained model as in
training whatever data they are handed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ttl.errors import DataError

NORMALISATIONS = ("source", "imagenet", "none")


@dataclass(frozen=True)
class DataConfig:
    """Mean and std per fed channel, the square input size (None: the data's own), the channels
    the first convolution takes, whether grey images are repeated to RGB, and where the statistics
    come from (``source``, ``imagenet`` or ``none``)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int | None = None
    channels: int = 3
    to_rgb: bool = True
    normalisation: str = "source"

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std) or not self.mean:
            raise DataError(f"data config: mean {self.mean} and std {self.std} need the same, non-zero length")
        if any(s <= 0 for s in self.std):
            raise DataError(f"data config: std must be > 0, got {self.std}")
        if self.normalisation not in NORMALISATIONS:
            raise DataError(f"data config: normalisation {self.normalisation!r} is not one of {list(NORMALISATIONS)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (lists for tuples), as runs record it."""
        d = asdict(self)
        d["mean"], d["std"] = [float(v) for v in self.mean], [float(v) for v in self.std]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataConfig:
        """Read a recorded config; records made before ``input_size``/``channels`` were kept give
        the data's own size and three channels (what every such run fed)."""
        try:
            return cls(mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]),
                       input_size=None if d.get("input_size") is None else int(d["input_size"]),
                       channels=int(d.get("channels", 3)), to_rgb=bool(d.get("to_rgb", True)),
                       normalisation=str(d.get("normalisation", "source")))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"data config {d!r} lacks or mistypes a field ({type(e).__name__}: {e})") from e


def source_data_config(source: object, arch: str | None) -> DataConfig:
    """The config of a pretrained source: its training statistics on three channels, any size."""
    from ttl.models.sources import normalization

    mean, std = normalization(source, arch)
    return DataConfig(tuple(float(v) for v in mean), tuple(float(v) for v in std))
