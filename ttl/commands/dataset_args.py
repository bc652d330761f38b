"""CLI flags for the dataset kinds' own options, generated from the kind registry (:mod:`ttl.data.kinds`).

Each option that not every kind takes (phantoms' ``balance``, ``label_noise``, ``contrast``;
MedMNIST's ``npz``, ``download``; folders' ``resize``) becomes one flag with the option's type,
bounds and help: ``--label-noise 0.5`` is argparse's usage error "must be a finite number >= 0
and < 0.5", exactly the bound :class:`~ttl.data.kinds.PhantomOptions` declares. A new kind's
options reach ``ttl data show``, ``ttl train``, ``ttl search``, ``ttl evaluate`` and ``ttl probe``
without touching them.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable
from typing import Any, Literal

import annotated_types

from ttl.commands.argtypes import bounded


def _bounds(metadata: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            out.update(low=m.ge)
        elif isinstance(m, annotated_types.Gt):
            out.update(low=m.gt, low_open=True)
        elif isinstance(m, annotated_types.Le):
            out.update(high=m.le)
        elif isinstance(m, annotated_types.Lt):
            out.update(high=m.lt, high_open=True)
    return out


def _base_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) is not Literal and args else annotation


def kind_options() -> dict[str, tuple[Any, list[str]]]:
    """``{option: (pydantic field, [kinds taking it])}`` for every option not all kinds take."""
    from ttl.data.kinds import kinds, kind_only_options

    out: dict[str, tuple[Any, list[str]]] = {}
    for name, kind in kinds().items():
        for option in kind_only_options(name):
            field = kind.options.model_fields[option]
            out.setdefault(option, (field, []))[1].append(name)
    return out


def option_type(field: Any) -> tuple[Callable[[str], Any] | None, dict[str, Any]]:
    """The argparse ``type`` of one option and extra ``add_argument`` keywords (choices, action)."""
    tp = _base_type(field.annotation)
    if typing.get_origin(tp) is Literal:
        return None, {"choices": list(typing.get_args(tp))}
    if tp is bool:
        return None, {"action": argparse.BooleanOptionalAction}
    if tp in (int, float):
        return bounded(tp, **_bounds(field.metadata)), {}
    return str, {}


def kind_option_type(kind: str, option: str) -> Callable[[str], Any]:
    """The argparse type of one option of one kind (``kind_option_type("phantom", "contrast")``), for
    commands that take it outside the generated flags (``ttl data audit``, ``ttl bench sweep``)."""
    from ttl.data.kinds import get_kind

    parse, _ = option_type(get_kind(kind).options.model_fields[option])
    if parse is None:
        raise TypeError(f"{kind}.{option} is not a number or text option")
    return parse


def add_kind_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> list[str]:
    """One flag per kind-specific option (default None: the manifest's value); their names."""
    names = []
    for option, (field, owners) in kind_options().items():
        kind, extra = option_type(field)
        kwargs: dict[str, Any] = {"default": None, "help": f"{', '.join(owners)}: {field.description}", **extra}
        if kind is not None:
            kwargs["type"] = kind
        parser.add_argument(f"--{option.replace('_', '-')}", **kwargs)
        names.append(option)
    return names


def kind_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The kind-specific options given on the command line (those left unset dropped)."""
    return {k: getattr(args, k) for k in kind_options() if getattr(args, k, None) is not None}
