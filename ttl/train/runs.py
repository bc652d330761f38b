"""Read back finished run folders written by :func:`ttl.train.fit` (``result.json`` + ``model.pt``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
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
    from ttl.models.sources import bn_eps
    from ttl.models.truncated import set_bn_eps
    from ttl.strategies import prepare
    from ttl.models.data_config import DataConfig
    from ttl.train.inputs import source_feed
    from ttl.train.resume import state_mismatch

    run_dir = Path(run_dir)
    if not (run_dir / "result.json").exists() or not (run_dir / "model.pt").exists():
        raise DataError(f"{run_dir} is not a finished run folder (needs result.json and model.pt)")
    doc = read_json(run_dir / "result.json")
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    params = prov.get("params") if isinstance(prov, dict) else None
    spec = params.get("model") if isinstance(params, dict) else None
    if not isinstance(spec, dict) or any(k not in spec for k in ("strategy", "arch", "cut", "source", "num_classes")):
        raise DataError(f"{run_dir / 'result.json'}: records no model block (provenance.params.model with strategy, "
                        "arch, cut, source, num_classes): cannot rebuild the model; rerun the training command")
    model = prepare(spec["strategy"], spec["arch"], cut=spec["cut"], num_classes=spec["num_classes"],
                    source="scratch", width=spec.get("width", 1.0), slim_from=spec.get("slim_from"))
    # the source whose preprocessing the training used: a scratch model was built (and normalised) as
    # "scratch" whatever source its run records
    model.source = "scratch" if spec["strategy"] == "scratch" else spec["source"]
    eps = bn_eps(spec["source"], spec["arch"]) if spec["strategy"] != "scratch" else None
    if eps is not None:  # e.g. Keras' DenseNet-121 ImageNet weights were trained with eps 1.001e-5
        set_bn_eps(model, eps)
    try:
        state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or corrupt
        raise DataError(f"{run_dir / 'model.pt'}: unreadable weights ({type(e).__name__}: {e}); rerun the "
                        "training command to rebuild the run") from e
    why = state_mismatch(model, state)
    if why:
        raise DataError(f"{run_dir / 'model.pt'}: {why}, not of the network {run_dir / 'result.json'} records; "
                        "rerun the training command to rebuild the run")
    model.load_state_dict(state)
    # what training fed the network; runs recorded before the manifest's choice was honoured all
    # used the source's statistics and grey repeated to RGB
    model.data_config = DataConfig.from_dict(params["input"]) if params.get("input") else source_feed(model)
    return model, params


@dataclass(frozen=True)
class RunSpec:
    """One training of the study: what :func:`get_or_train` builds, trains and files.

    Its folder name holds every model-changing choice the notebooks vary (strategy, cut, width,
    learning rate, seed); architecture, source and dataset name the base folder above it. The run
    key inside ``result.json`` (:func:`ttl.train.loop.run_key_params`) guards the rest.
    """

    strategy: str
    cut: str | None = None
    width: float = 1.0
    slim_from: str | None = None
    lr: float = 1e-3
    seed: int = 0

    @property
    def label(self) -> str:
        """The strategy's label in tables: ``ttl(layer2.1)``, ``scratch(layer2.1)``, ``full``."""
        if self.cut and self.strategy != "full":
            extra = f", width={self.width:g}" if self.strategy == "transfusion" and self.width != 1 else ""
            return f"{self.strategy}({self.cut}{extra})"
        return self.strategy

    def name(self) -> str:
        """``<cut>[-w<width>]-lr<lr>-s<seed>``: the run's folder inside its strategy's folder."""
        width = f"-w{self.width:g}" if self.strategy == "transfusion" and self.width != 1 else ""
        return f"{self.cut or 'full'}{width}-lr{self.lr:g}-s{self.seed}"

    def folder(self) -> str:
        """``<strategy>/<name>`` (relative to a base runs folder; :mod:`ttl.search` puts its trials
        in ``<base>/<strategy>/<name>``, so grids and searches share finished runs)."""
        return f"{self.strategy}/{self.name()}"


@dataclass(frozen=True)
class TrainJob:
    """Everything one training needs except the data: what an executor ships to a worker
    (:mod:`ttl.executors`). ``run_dir`` is where it is filed; ``params`` the run's model and data
    blocks (:func:`run_params`); ``score_test``: also score the test split."""

    spec: RunSpec
    arch: str
    source: str
    cfg: Any  # a ttl.train.TrainConfig whose lr and seed are the spec's
    run_dir: str
    params: dict[str, Any]
    score_test: bool = True


def train_job(spec: RunSpec, arch: str, source: str | os.PathLike, data: dict[str, Any], cfg: Any,
              base: str | Path, data_params: dict[str, Any] | None = None, run_dir: str | Path | None = None,
              score_test: bool = True) -> TrainJob:
    """The :class:`TrainJob` of ``spec`` filed under ``base`` (``base/<strategy>/<name>``, or ``run_dir``)."""
    params = run_params(spec.strategy, arch, spec.cut, source, spec.width, spec.slim_from,
                        len(data["train"].classes), data["train"].name, **(data_params or {}))
    folder = Path(run_dir) if run_dir is not None else Path(base) / spec.folder()
    return TrainJob(spec, arch, str(source), replace(cfg, lr=spec.lr, seed=spec.seed), str(folder), params,
                    score_test)


def run_job(job: TrainJob, data: dict[str, Any], on_epoch_end: Any = None) -> Any:
    """Read back the finished run of ``job`` or train it (resuming its checkpoint): a
    :class:`ttl.train.FitResult`. Every training goes through here: ``ttl train``, grids, sweeps
    and searches, locally and in a Ray worker. ``on_epoch_end(epoch, row)`` as in :func:`ttl.train.fit`."""
    from ttl.strategies import prepare
    from ttl.train import fit

    spec = job.spec
    model = prepare(spec.strategy, job.arch, cut=spec.cut, num_classes=len(data["train"].classes), source=job.source,
                    width=spec.width, slim_from=spec.slim_from, seed=spec.seed)
    return fit(model, data["train"], data["val"], job.cfg, out_dir=job.run_dir,
               test=data.get("test") if job.score_test else None, params=job.params, on_epoch_end=on_epoch_end)


def get_or_train(spec: RunSpec, arch: str, source: str | os.PathLike, data: dict[str, Any], cfg: Any,
                 base: str | Path, data_params: dict[str, Any] | None = None) -> tuple[Any, Path]:
    """Read back the finished run of ``spec`` under ``base`` or train it (resuming a checkpoint).

    ``data`` holds ``train``, ``val`` and optionally ``test``; ``cfg`` is a
    :class:`ttl.train.TrainConfig` whose ``lr`` and ``seed`` are replaced by the spec's. Returns
    the :class:`ttl.train.FitResult` and the run folder. Every caller (grids, searches, the CLI)
    goes through here or through :func:`run_job` (what executors run), so the same spec always
    lands in the same folder.
    """
    job = train_job(spec, arch, source, data, cfg, base, data_params)
    return run_job(job, data), Path(job.run_dir)


def index_runs(base: str | Path) -> Any:
    """Every finished run under ``base`` (any depth) as a DataFrame, one row per run folder: what
    it trained (strategy, arch, cut, source, width, dataset, lr, seed), how it ended (validation
    AUROC, best epoch, epochs run, stop reason) and its run key. Folders without a readable
    finished ``result.json`` (running, interrupted, foreign) are left out."""
    import pandas as pd

    from ttl.train.resume import finished

    rows = []
    for result in sorted(Path(base).rglob("result.json")):
        if not (result.parent / "model.pt").exists():
            continue
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a foreign result.json is simply not a run
            doc = finished(result.parent)
        params = ((doc or {}).get("provenance") or {}).get("params") or {}
        model, train = params.get("model"), params.get("train") or {}
        if doc is None or not isinstance(model, dict):
            continue
        auroc = ((doc["metrics"].get("val") or {}).get("auroc") or {}).get("value")
        rows.append({"run_dir": str(result.parent), "strategy": model.get("strategy"), "arch": model.get("arch"),
                     "cut": model.get("cut") or "full", "source": model.get("source"), "width": model.get("width"),
                     "dataset": (params.get("data") or {}).get("dataset"), "lr": train.get("lr"),
                     "seed": train.get("seed"), "val_auroc": auroc, "best_epoch": doc["best_epoch"],
                     "epochs_run": len(doc["history"]), "stop_reason": doc.get("stop_reason"),
                     "params_hash": doc["params_hash"]})
    columns = ["run_dir", "strategy", "arch", "cut", "source", "width", "dataset", "lr", "seed", "val_auroc",
               "best_epoch", "epochs_run", "stop_reason", "params_hash"]
    return pd.DataFrame(rows, columns=columns)
