"""Put a notebook's figures, tables and numbers into the book's prose with myst-nb ``glue``.

A code cell computes and glues; a markdown cell places what was glued (see ARCHITECTURE.md,
"Writing a chapter")::

    glue_figure(fig, "examples_low", out)           # PNG with provenance + glue, nothing shown
    glue_table(df, "faithfulness", "Deletion AUC per model.", formats={"auc": "{:.3f}"})
    glue_value("best_auc", 0.812)                     # {glue:text}`best_auc:.3f` in the prose
    glue_run(profile, device)                         # {glue:text}`run_profile`, `run_hardware`

Nothing here draws: :mod:`ttl.experiments.plots` does (and sets the house style).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ttl.experiments.record import save_figure

FIGURE_DPI = 150  # dots per inch of every PNG the book shows (the house style sets it)


class PlainText(str):
    """A string whose ``repr`` is itself, so ``{glue:text}`` shows it without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _glue(name: str, value: Any, display: bool = False) -> None:
    from myst_nb import glue

    glue(name, value, display=display)


def plain(value: Any) -> Any:
    """A Python scalar (numpy scalars unwrapped) or :class:`PlainText` for anything else."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None:
        return PlainText(str(value))
    if isinstance(value, numbers.Number):
        return value
    return PlainText(str(value))


def glue_value(name: str, value: Any) -> None:
    """Glue a number or a string for ``{glue:text}`name:.3f``` (numbers keep their precision).

    Like every ``glue_*`` helper it returns None, so a cell ending with it shows nothing."""
    _glue(name, plain(value))


def label(name: str, kind: str = "fig") -> str:
    """The cross-reference target of a glued figure/table: ``fig-class-balance`` for ``class_balance``."""
    return f"{kind}-{name.replace('_', '-')}"


def describe_hardware(hw: Mapping[str, Any]) -> str:
    """One line from a provenance ``hardware`` block: CPU model and cores, and the GPU if used."""
    cpu = hw.get("cpu_model") or hw.get("processor") or hw.get("machine") or "unknown CPU"
    text = f"{cpu}, {hw.get('cpu_count', '?')} CPU cores"
    if hw.get("device", "cpu") != "cpu" and hw.get("gpu"):
        text = f"one {hw['gpu']} GPU ({text})"
    return text


def glue_run(profile: str, device: Any = None) -> None:
    """Glue ``run_profile`` and ``run_hardware`` (this machine, as provenance records it)."""
    from ttl.provenance import hardware

    facts = {"run_profile": profile, "run_hardware": describe_hardware(hardware(device))}
    for key, text in facts.items():
        _glue(key, PlainText(text))


def glue_figure(fig: Any, name: str, output_dir: str | Path, *, close: bool = True) -> None:
    """Save ``fig`` as ``NAME.png`` in ``output_dir`` and glue it under ``name`` (not displayed here).

    The markdown places it: ``:::{glue:figure} NAME`` with ``:name: fig-NAME``, ``:alt:`` and a
    caption paragraph. The glued PNG and the saved one use the house dpi (:data:`FIGURE_DPI`).
    """
    save_figure(fig, output_dir, name, dpi=FIGURE_DPI)
    fig.set_dpi(FIGURE_DPI)
    _glue(name, fig)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)


Format = str | Callable[[Any], str]


def _cell(value: Any, fmt: Format | None) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    if isinstance(value, np.generic):
        value = value.item()
    if fmt is not None:
        text = fmt(value) if callable(fmt) else fmt.format(value)
    elif isinstance(value, float):
        text = f"{value:.3f}"
    elif isinstance(value, (list, tuple)):
        text = ", ".join(map(str, value))
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame, formats: Mapping[str, Format] | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
    """A pipe table without the index: floats to 3 decimals unless ``formats`` says otherwise
    (a ``str.format`` pattern or a function per column), columns renamed by ``headers``."""
    formats, headers = dict(formats or {}), dict(headers or {})
    cols = [str(c) for c in df.columns]
    head = [headers.get(c, c).replace("|", "\\|") for c in cols]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if n else ":---" for n in numeric) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v, formats.get(c)) for v, c in zip(row, cols)) + " |")
    return "\n".join(lines)


def table_markdown(df: pd.DataFrame, name: str, caption: str,
                   formats: Mapping[str, Format] | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
    """MyST for a numbered, captioned table with the target ``tbl-NAME`` (a ``~~~`` fence: a
    backtick fence cannot hold a caption with inline code)."""
    return (f"~~~{{table}} {caption.strip()}\n:name: {label(name, 'tbl')}\n\n"
            f"{markdown_table(df, formats, headers)}\n~~~\n")


def glue_table(df: pd.DataFrame, name: str, caption: str, *,
               formats: Mapping[str, Format] | None = None, headers: Mapping[str, str] | None = None,
               output_dir: str | Path | None = None, params: Mapping[str, Any] | None = None,
               **save_kwargs: Any) -> None:
    """Glue ``df`` as a numbered, captioned table (markdown) under ``name``.

    Place it with ``:::{glue:md} NAME`` + ``:format: myst`` + ``:::``; cite it with
    ``{numref}`tbl-NAME```. With ``output_dir`` and ``params`` the full-precision table is also
    saved as ``NAME.csv`` / ``NAME.json`` with provenance (:func:`~ttl.experiments.save_table`).
    A table and a figure of one chapter need different names (one glue key each).
    """
    from IPython.display import Markdown

    if output_dir is not None and params is not None:
        from ttl.experiments.record import save_table

        save_table(df, output_dir, name, dict(params), **save_kwargs)
    _glue(name, Markdown(table_markdown(df, name, caption, formats, headers)))

