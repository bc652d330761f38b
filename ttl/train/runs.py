"""Read back finished run folders written by :func:`ttl.train.fit` (``result.json`` + ``model.pt``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ttl.errors import DataError
from ttl.provenance import read_json


def run_params(strategy: str, arch: str, cut: str | None, source: object, width: float, slim_from: str | None,
               num_classes: int, dataset: str, **data: Any) -> dict[str, Any]:
    """The ``model`` and ``data`` blocks every run records (``ttl train``, :mod:`ttl.experiments`,
    :mod:`ttl.search`): one layout, so run folders are interchangeable and :func:`load_run` can
    rebuild any of them."""
    return {"model": {"strategy": strategy, "arch": arch, "cut": cut, "source": str(source), "width": width,
                      "slim_from": slim_from, "num_classes": num_classes},
            "data": {"dataset": dataset, **data}}


def load_run(run_dir: str | Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the model of a run folder with its trained weights; return it and the run's parameters.

    The run's parameters must hold a ``model`` block (strategy, arch, cut, source, width, slim_from,
    num_classes), as ``ttl train`` and :mod:`ttl.experiments` record.
    """
    from ttl.strategies import prepare

    run_dir = Path(run_dir)
    if not (run_dir / "result.json").exists() or not (run_dir / "model.pt").exists():
        raise DataError(f"{run_dir} is not a finished run folder (needs result.json and model.pt)")
    params = read_json(run_dir / "result.json")["provenance"]["params"]
    spec = params.get("model")
    if not spec:
        raise DataError(f"{run_dir / 'result.json'} records no model block: cannot rebuild the model")
    model = prepare(spec["strategy"], spec["arch"], cut=spec["cut"], num_classes=spec["num_classes"],
                    source="scratch", width=spec.get("width", 1.0), slim_from=spec.get("slim_from"))
    model.source = spec["source"]
    model.load_state_dict(torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True))
    return model, params
