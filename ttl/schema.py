"""The one schema library of the package: pydantic models for manifests, profiles and dataset options.

Models derive from :class:`Strict` (unknown keys refused, no type coercion: ``"3"`` is not 3 and
``true`` is not 1). :func:`validate` checks plain data against a model and turns pydantic's first
error into one line in the package's own error type, naming where the data came from and the dotted
key at fault::

    shenzhen-cxr.yaml: key 'task': expected a string, got int 3
    shenzhen-cxr.yaml: unknown key 'labels.label_colums' (known here: file, sha256, ...)

:func:`either` declares a field that takes one of several shapes (a string or a mapping, say), chosen
by the value's Python type, so its errors read "expected a string or a mapping" instead of one
error per alternative. The models check shapes and single values; the rules that tie several keys
together stay in the code that owns them (``ttl.data.manifest.validate``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, ValidationError

from ttl.errors import TTLError

__all__ = ["Strict", "either", "validate", "describe_fields", "type_text"]


class Strict(BaseModel):
    """Base of every schema model: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


_TYPE_TEXT = {str: "a string", int: "an integer", float: "a number", bool: "true/false",
              list: "a list", dict: "a mapping", type(None): "null"}
_ERROR_TEXT = {"string_type": "a string", "int_type": "an integer", "float_type": "a number",
               "bool_type": "true/false", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping", "model_attributes_type": "a mapping", "tuple_type": "a list"}


def type_text(tp: Any) -> str:
    """How an error names a type: ``a string``, ``a mapping``, ... (the origin of a generic)."""
    origin = typing.get_origin(tp) or tp
    if isinstance(origin, type) and issubclass(origin, BaseModel):
        return "a mapping"
    return _TYPE_TEXT.get(origin, getattr(origin, "__name__", str(origin)))


def _tag(tp: Any) -> str:
    return f"<{type_text(tp)}>"


def either(*alternatives: Any) -> Any:
    """A field type taking one of ``alternatives``, chosen by the value's Python type.

    ``either(str, dict[str, str])``: a string, or a mapping of strings. An int or a bool where
    ``float`` is an alternative counts as a number (bool never does)."""
    def pick(value: Any) -> str | None:
        for tp in alternatives:
            origin = typing.get_origin(tp) or tp
            if origin is float and isinstance(value, (int, float)) and not isinstance(value, bool):
                return _tag(tp)
            if origin is int and isinstance(value, bool):
                continue
            if isinstance(origin, type) and issubclass(origin, BaseModel) and isinstance(value, Mapping):
                return _tag(tp)
            if isinstance(origin, type) and isinstance(value, origin):
                return _tag(tp)
        return None

    members = tuple(Annotated[tp, Tag(_tag(tp))] for tp in alternatives)
    return Annotated[Union[members], Discriminator(pick)]  # noqa: UP007 (a runtime-built union)


def _strip(tp: Any) -> Any:
    """The type under Optional[...] and Annotated[...] (an ``either`` union is kept)."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            meta = tp.__metadata__
            if any(isinstance(m, Discriminator) for m in meta):
                return tp
            tp = typing.get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _step(tp: Any, part: Any) -> Any:
    """The type one step down ``tp`` along a location part (field, key, index or union tag)."""
    tp = _strip(tp)
    origin = typing.get_origin(tp)
    if origin is Annotated:  # an either(): the part names the alternative taken
        union = typing.get_args(tp)[0]
        for member in typing.get_args(union):
            if isinstance(part, str) and _tag(typing.get_args(member)[0]) == part:
                return typing.get_args(member)[0]
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    if origin in (dict, Mapping):
        return typing.get_args(tp)[1]
    if origin in (list, tuple):
        return typing.get_args(tp)[0]
    return None


def _type_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    """The (stripped) type a location points at in ``model``, or None where it cannot be followed."""
    tp: Any = model
    parts = list(loc)
    while parts and tp is not None:
        part = parts.pop(0)
        if parts and parts[0] == "[key]":  # the error is in the key of a mapping, not its value
            parts.pop(0)
            stripped = _strip(tp)
            tp = typing.get_args(stripped)[0] if typing.get_origin(stripped) in (dict, Mapping) else None
            continue
        tp = _step(tp, part)
    return _strip(tp) if tp is not None else None


def _key(loc: tuple[Any, ...], prefix: str = "") -> str:
    text = prefix
    for part in loc:
        if part == "[key]" or (isinstance(part, str) and part.startswith("<") and part.endswith(">")):
            continue  # an either() tag or pydantic's mark of a mapping's key, not a key
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _message(error: Mapping[str, Any], model: type[BaseModel], prefix: str) -> str:
    loc = tuple(error["loc"])
    key, kind, value = _key(loc, prefix), error["type"], error.get("input")
    if kind == "missing" or (value is None and kind.endswith("_type")):
        return f"missing required key '{key}'"
    if kind == "extra_forbidden":
        parent: Any = model
        for part in loc[:-1]:
            parent = _step(parent, part) if parent is not None else None
        parent = _strip(parent) if parent is not None else None
        known = (f" (known here: {', '.join(parent.model_fields)})"
                 if isinstance(parent, type) and issubclass(parent, BaseModel) else "")
        return f"unknown key '{key}'{known}"
    if kind == "literal_error":
        tp = _type_at(model, loc)
        choices = list(typing.get_args(tp)) if tp is not None and typing.get_origin(tp) is Literal else []
        if choices and not any(type(value) is type(c) for c in choices):
            return (f"key '{key}': expected {type_text(type(choices[0]))}, got {type(value).__name__} "
                    f"{value!r}")
        return f"key '{key}': {value!r} is not one of {choices or '[' + error['ctx']['expected'] + ']'}"
    if kind == "union_tag_not_found" or kind == "union_tag_invalid":
        tp = _type_at(model, loc)
        union = typing.get_args(tp)[0] if tp is not None and typing.get_origin(tp) is Annotated else None
        names = " or ".join(type_text(typing.get_args(m)[0]) for m in typing.get_args(union)) if union else "?"
        return f"key '{key}': expected {names}, got {type(value).__name__} {value!r}"
    if kind in _ERROR_TEXT:
        return f"key '{key}': expected {_ERROR_TEXT[kind]}, got {type(value).__name__} {value!r}"
    msg = str(error["msg"])
    msg = msg.removeprefix("Value error, ")
    return f"key '{key}': {msg[:1].lower()}{msg[1:]}, got {value!r}"


def validate(model: type[BaseModel], data: Any, where: str, error: type[TTLError] = TTLError,
             prefix: str = "") -> BaseModel:
    """``model`` checked from ``data``; a failure is ``error("<where>: <one line>")``.

    ``prefix`` is prepended to the dotted keys (the place of ``data`` inside a larger document)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()  # an unknown key first: it is most often a typo of the missing one
        first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        raise error(f"{where}: {_message(first, model, prefix)}") from None


def describe_fields(model: type[BaseModel]) -> dict[str, dict[str, Any]]:
    """``{field: {"type", "default", "doc", "required"}}`` of a model, for help texts and docs."""
    out = {}
    for name, field in model.model_fields.items():
        out[name] = {"type": field.annotation, "default": None if field.is_required() else field.default,
                     "doc": field.description or "", "required": field.is_required()}
    return out
