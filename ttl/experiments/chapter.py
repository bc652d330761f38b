"""One call that gives a chapter what it needs: ``ch = open_chapter(globals())``.

A notebook declares its parameters once (the ``parameters`` cell, with types) and then asks for
everything else from here, so that its cells hold only the study's own steps:

- ``ch.params``: every declared parameter with the value it ran with (nanoGPT's ``config_keys``):
  recorded whole beside every table and figure, whatever a chapter adds later;
- ``ch.data`` (``{name: {split: ImageDataset}}``), ``ch.names``, and ``ch.lr_name``/``ch.lr_data``
  (the dataset whose validation split chooses learning rates), loaded with the dataset options the
  chapter declares (``n_per_class``, ``image_size``, ``data_seed`` and any kind option, e.g.
  ``contrast``, routed to the datasets of that kind only);
- ``ch.cfg``: the :class:`~ttl.train.TrainConfig` of its trainings (``epochs``, ``patience``,
  ``schedule``, ``batch_size``, ``device``, ``n_boot``; the first rate of ``lr_grid``);
- ``ch.base[name]``: the run folder of one dataset in the run store (``runs_dir``), where
  ``ttl.train.runs.get_or_train`` finds or trains every model;
- ``ch.save(df, name, t0)``, ``ch.table(df, name, caption, ...)``, ``ch.figure(fig, name)``:
  tables and figures written to ``output_dir`` with provenance and glued for the prose.

It also checks the parameters first (a wrong type, or a ``method``/``measure`` no registry holds,
is one ConfigError naming it, before any data or training), applies the house style and glues the
run's profile and hardware.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ttl.errors import ConfigError

#: the parameters a chapter passes to TrainConfig (others, e.g. image_size, stay out of the run key)
TRAIN_PARAMETERS = ("epochs", "patience", "schedule", "batch_size", "device", "n_boot")
#: the runner's parameters (ttl book passes them to every notebook)
RUNNER_PARAMETERS = ("output_dir", "profile")


def _cam_methods() -> Mapping[str, Any]:
    from ttl.explain import METHODS

    return METHODS


def _measures() -> Mapping[str, Any]:
    from ttl.analysis.measures import REGISTRY

    return REGISTRY


#: parameters whose value names an entry of a registry, checked before any work
REGISTRY_PARAMETERS = {"method": ("CAM method", _cam_methods), "measure": ("similarity measure", _measures)}


@dataclasses.dataclass
class Chapter:
    """What :func:`open_chapter` returns (see the module docstring)."""

    params: dict[str, Any]
    out: Path
    data: dict[str, dict[str, Any]]
    lr_name: str | None = None
    lr_data: dict[str, Any] | None = None
    cfg: Any = None
    base: dict[str, Path] = dataclasses.field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The chapter's datasets, by manifest name, in the order given."""
        return list(self.data)

    @property
    def device(self) -> Any:
        return self.params.get("device")

    def save(self, df: Any, name: str, t0: float | None = None, **extra: Any) -> Path:
        """``df`` as ``NAME.csv``/``NAME.json`` in ``out`` with the chapter's parameters; ``t0``: a
        ``time.perf_counter()`` reading whose elapsed time is recorded as the wall time."""
        from ttl.experiments.record import save_table

        wall = time.perf_counter() - t0 if t0 is not None else None
        return save_table(df, self.out, name, self.params, wall_time_s=wall, device=self.device, **extra)

    def table(self, df: Any, name: str, caption: str, **kwargs: Any) -> None:
        """A numbered table glued as ``name`` and saved with provenance (``glue_table``)."""
        from ttl.experiments.figures import glue_table

        glue_table(df, name, caption, output_dir=self.out, params=self.params, **kwargs)

    def figure(self, fig: Any, name: str) -> None:
        """``fig`` saved as ``NAME.png`` in ``out`` and glued as ``name``."""
        from ttl.experiments.figures import glue_figure

        glue_figure(fig, name, self.out)


def declared_parameters(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter the ``parameters`` cell declares (annotated names), with its value now,
    plus the runner's ``output_dir`` and ``profile``."""
    names = [*(namespace.get("__annotations__") or {}), *RUNNER_PARAMETERS]
    return {n: namespace[n] for n in dict.fromkeys(names) if n in namespace}


def data_options(params: Mapping[str, Any]) -> dict[str, Any]:
    """The load options a chapter's parameters give: sizes, seed and every kind option declared."""
    from ttl.data.kinds import kinds

    opts: dict[str, Any] = {}
    if "n_per_class" in params:
        opts["n_per_class"] = params["n_per_class"]
    if "image_size" in params:
        opts["size"] = params["image_size"]
    if "data_seed" in params:
        opts["seed"] = params["data_seed"]
    kind_names = {o for k in kinds().values() for o in k.option_names()} - {"size", "n_per_class", "seed"}
    opts.update({k: params[k] for k in params if k in kind_names})
    return opts


def open_chapter(namespace: Mapping[str, Any], *, load_data: bool = True) -> Chapter:
    """Check a notebook's parameters and give it its parameters, data, training config, run
    folders and save helpers (``namespace``: the notebook's ``globals()``)."""
    from ttl.experiments.datasets import dataset_name, load_all, load_splits, run_base
    from ttl.experiments.figures import glue_run
    from ttl.experiments.params import check_parameters
    from ttl.experiments.plots import house_style

    check_parameters(namespace)
    params = declared_parameters(namespace)
    for name, (what, registry) in REGISTRY_PARAMETERS.items():
        if isinstance(params.get(name), str) and params[name].lower() not in registry():
            raise ConfigError(f"{name}={params[name]!r} is not a registered {what}; known: {', '.join(registry())}")
    for name in RUNNER_PARAMETERS:
        if name not in params:
            raise ConfigError(f"the notebook has no {name!r}: run it through `ttl book` or pass "
                              f"-p {name} VALUE to papermill")
    house_style()
    glue_run(params["profile"], params.get("device"))
    out = Path(params["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    ch = Chapter(params=params, out=out, data={})
    if not load_data:
        return ch
    opts, root = data_options(params), params.get("root")
    if "datasets" in params:
        ch.data = load_all(params["datasets"], root, **opts)
    elif "dataset" in params:
        ch.data = {dataset_name(params["dataset"]): load_splits(params["dataset"], root, **opts)}
    if "lr_dataset" in params:
        ch.lr_name = dataset_name(params["lr_dataset"])
        ch.lr_data = (ch.data[ch.lr_name] if ch.lr_name in ch.data
                      else load_splits(params["lr_dataset"], root, **opts))
    if "epochs" in params:
        from ttl.train import TrainConfig

        given = {k: params[k] for k in TRAIN_PARAMETERS if k in params}
        lr = params["lr_grid"][0] if params.get("lr_grid") else TrainConfig.lr
        ch.cfg = TrainConfig(**given, lr=lr, progress=False)
    if "runs_dir" in params:
        names = [*ch.data, *([ch.lr_name] if ch.lr_name else [])]
        ch.base = {n: run_base(params["runs_dir"], n, params["arch"], params["source"]) for n in dict.fromkeys(names)}
    return ch
