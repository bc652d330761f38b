"""Argument types and help formatting shared by every ``ttl`` sub-command.

Each type turns the text of one option into a value or raises ``argparse.ArgumentTypeError``, so a
bad value ends in argparse's one-line usage error (exit 2) before any data is generated or read:
``ttl train --lr nan`` says ``argument --lr: must be a finite number > 0, got 'nan'``.
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable

MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 2048  # pixels a network is fed; smaller images carry no lesion


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def bounded(kind: type, low: float | None = None, high: float | None = None, *, low_open: bool = False,
            high_open: bool = False) -> Callable[[str], float | int]:
    """A type accepting ``kind`` values within ``[low, high]`` (an open end with ``low_open``/``high_open``)."""
    noun = "an integer" if kind is int else "a finite number"
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    rule = f"must be {noun}" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> float | int:
        value = _number(text, kind)
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"{rule}, got {text!r}")
        return value

    parse.__name__ = f"{kind.__name__}_{rule.replace(' ', '_')}"  # argparse names the type in errors
    return parse


positive_int = bounded(int, 1)
nonnegative_int = bounded(int, 0)
positive_float = bounded(float, 0, low_open=True)
nonnegative_float = bounded(float, 0)
image_size = bounded(int, MIN_IMAGE_SIZE, MAX_IMAGE_SIZE)
width_factor = bounded(float, 0, 1, low_open=True)  # TransFusion: fraction of channels kept


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions as written and appends ``(default: X)`` to every option with a default."""

    def _format_action(self, action: argparse.Action) -> str:
        text = (action.help or "").strip()
        if _shows_default(action) and "default" not in text:
            default = action.default
            value = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
            action = copy.copy(action)
            action.help = f"{text} (default: {value.replace('%', '%%')})".strip()
        return super()._format_action(action)


def _shows_default(action: argparse.Action) -> bool:
    default = action.default
    hidden = default is None or default is False or default is argparse.SUPPRESS
    return (not hidden and bool(action.option_strings)
            and not isinstance(action, (argparse._HelpAction, argparse._VersionAction)))


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser with :class:`HelpFormatter` unless told otherwise (used for every sub-command)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
