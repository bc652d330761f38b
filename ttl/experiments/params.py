"""Check a notebook's parameters against the types its ``parameters`` cell declares.

Papermill injects parameters as plain assignments after the annotated ``parameters`` cell, so a
wrong value (``papermill -p epochs abc``, a profile's ``seeds: 3``) would otherwise fail deep
inside a training with a traceback. Each notebook calls :func:`check_parameters` first; IPython
keeps the cell's annotations in the namespace's ``__annotations__``.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from ttl.errors import ConfigError


def _allowed(annotation: Any) -> tuple[type, ...]:
    """The runtime types an annotation such as ``int``, ``float`` or ``dict | None`` accepts."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return tuple(t for arg in typing.get_args(annotation) for t in _allowed(arg))
    if annotation is None or annotation is type(None):
        return (type(None),)
    if annotation is float:
        return (float, int)  # 1 is a fine float
    origin = typing.get_origin(annotation)
    return (origin if isinstance(origin, type) else annotation,) if isinstance(origin or annotation, type) else ()


def _fits(value: Any, allowed: tuple[type, ...]) -> bool:
    if not allowed:  # an annotation we cannot check at run time
        return True
    if isinstance(value, bool) and bool not in allowed:
        return False  # True is an int to Python, not to a user who wrote epochs: True
    return isinstance(value, allowed)


def _name(allowed: tuple[type, ...]) -> str:
    return " or ".join("None" if t is type(None) else t.__name__ for t in dict.fromkeys(allowed))


def check_parameters(namespace: Mapping[str, Any]) -> None:
    """:class:`ConfigError` naming every parameter whose value does not have its declared type."""
    annotations = namespace.get("__annotations__") or {}
    bad = []
    for name, annotation in annotations.items():
        if name not in namespace:
            continue
        allowed, value = _allowed(annotation), namespace[name]
        if not _fits(value, allowed):
            bad.append(f"{name} must be {_name(allowed)}, got {value!r} ({type(value).__name__})")
    if bad:
        raise ConfigError("notebook parameter(s) of the wrong type: " + "; ".join(bad)
                          + " (papermill: -p NAME VALUE for numbers and text, -y 'NAME: [..]' for lists and mappings)")
