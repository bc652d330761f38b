"""Save an experiment's table beside its provenance: ``NAME.csv`` and ``NAME.json`` (atomic)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from ttl.provenance import atomic_write_bytes, write_result


def save_table(df: pd.DataFrame, output_dir: str | Path, name: str, params: dict[str, Any],
               wall_time_s: float | None = None, device: Any = None, **extra: Any) -> Path:
    """Write ``df`` as CSV and as JSON rows with params, git commit, versions, hardware, wall time."""
    out = Path(output_dir)
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    atomic_write_bytes(out / f"{name}.csv", buf.getvalue().encode())
    rows = df.astype(object).where(df.notna(), None).to_dict(orient="records")
    return write_result(out / f"{name}.json", {"table": name, "rows": rows, **extra}, params,
                        device=device, wall_time_s=wall_time_s)


def save_figure(fig: Any, output_dir: str | Path, name: str, dpi: int = 130) -> Path:
    """Save a matplotlib figure as PNG beside the tables (the notebook also shows it inline)."""
    path = Path(output_dir) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
